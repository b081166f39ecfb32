//! A real Latchkey in-process on 127.0.0.1:0 over a fresh SQLite file, with counters of
//! discovery and JWKS requests and a switch that takes it off the network; token helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::admin::{self, NewClient, NewUser};
use latchkey::app::{self, AppState};
use latchkey::clock::Clock as ServerClock;
use latchkey::config::{Config, RawConfig};
use latchkey::model::Profile;
use latchkey::oauth::{GrantType, KeyAlg, Password};
use latchkey_resource::{Clock, Validator};
use serde_json::{Value, json};

#[derive(Default)]
pub struct Counters {
    pub discovery: AtomicUsize,
    pub jwks: AtomicUsize,
}

async fn count(State(c): State<Arc<Counters>>, req: Request, next: Next) -> Response {
    match req.uri().path() {
        "/.well-known/openid-configuration" => c.discovery.fetch_add(1, Ordering::SeqCst),
        "/jwks" => c.jwks.fetch_add(1, Ordering::SeqCst),
        _ => 0,
    };
    next.run(req).await
}

/// A client as the tests see it.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: String,
}

pub struct Issuer {
    pub addr: SocketAddr,
    pub base: String,
    pub state: Arc<AppState>,
    pub counters: Arc<Counters>,
    http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Issuer {
    pub async fn start() -> Issuer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut RawConfig)) -> Issuer {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = RawConfig {
            database_url: format!("sqlite://{}/latchkey.db", dir.path().display()),
            issuer: format!("http://{addr}"),
            listen: addr.to_string(),
            database_max_connections: 4,
            ..RawConfig::default()
        };
        tweak(&mut raw);
        let config = Config::from_raw(raw).unwrap();
        let store = app::open_store(&config).await.unwrap();
        // Real time, pinned: the issuer's clock only moves when a test moves it.
        let clock = ServerClock::fixed(ServerClock::System.now());
        let state = AppState::build(config, store, clock).await.unwrap();
        let counters = Arc::new(Counters::default());
        let router = app::router(state.clone())
            .layer(middleware::from_fn_with_state(counters.clone(), count))
            .into_make_service_with_connect_info::<SocketAddr>();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Issuer {
            addr,
            base: format!("http://{addr}"),
            state,
            counters,
            http,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Takes the issuer off the network: the listener closes and open connections end,
    /// so a fetch finds the port refusing connections.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("issuer shuts down")
                .unwrap();
        }
    }

    pub fn issuer(&self) -> &str {
        &self.state.config.issuer
    }

    pub fn now(&self) -> i64 {
        self.state.clock.now()
    }

    pub fn jwks_fetches(&self) -> usize {
        self.counters.jwks.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.counters.discovery.load(Ordering::SeqCst)
    }

    /// A validator for this issuer and its default audience (the issuer URL), on a fixed
    /// clock starting at the issuer's time.
    pub fn validator(&self) -> (Validator, Clock) {
        self.validator_for(self.issuer())
    }

    pub fn validator_for(&self, audience: &str) -> (Validator, Clock) {
        let clock = Clock::fixed(self.now());
        let v = Validator::builder(self.issuer(), audience)
            .clock(clock.clone())
            .build()
            .unwrap();
        (v, clock)
    }

    pub async fn client(&self, req: NewClient) -> TestClient {
        let s = &self.state;
        let (c, secret) = admin::create_client(
            s.store.as_ref(),
            &s.secret_hasher,
            req,
            s.config.keys.retention_secs,
            self.now(),
        )
        .await
        .unwrap();
        TestClient {
            id: c.id,
            secret: secret.unwrap().secret().to_owned(),
        }
    }

    /// A confidential client allowed client_credentials and password, scopes `read write`.
    pub async fn app_client(&self) -> TestClient {
        self.client_with(|_| {}).await
    }

    pub async fn client_with(&self, tweak: impl FnOnce(&mut NewClient)) -> TestClient {
        let mut req = NewClient {
            name: "Resource test app".into(),
            grant_types: vec![GrantType::ClientCredentials, GrantType::Password],
            scope: Some("openid read write".into()),
            ..Default::default()
        };
        tweak(&mut req);
        self.client(req).await
    }

    pub async fn user(&self, username: &str, password: &str) -> String {
        let s = &self.state;
        let profile = Profile {
            name: Some("Alice Example".into()),
            given_name: None,
            family_name: None,
            email: Some(format!("{username}@example.com")),
            email_verified: true,
        };
        let u = admin::create_user(
            s.store.as_ref(),
            NewUser {
                username: username.into(),
                profile,
            },
            Password::new(password),
            1024,
            self.now(),
        )
        .await
        .unwrap();
        u.id.to_string()
    }

    /// POST /token with client_secret_basic; the JSON answer, asserted 200.
    pub async fn token(&self, client: &TestClient, form: &[(&str, &str)]) -> Value {
        let res = self
            .http
            .post(format!("{}/token", self.base))
            .basic_auth(&client.id, Some(&client.secret))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 200, "token request failed: {body}");
        body
    }

    /// A client_credentials access token.
    pub async fn client_token(&self, client: &TestClient, scope: &str) -> String {
        let t = self
            .token(
                client,
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
        t["access_token"].as_str().unwrap().to_owned()
    }

    /// A user access token (password grant) and the whole token response.
    pub async fn user_token(&self, client: &TestClient, scope: &str) -> (String, Value) {
        let _ = self.user("alice", "correct horse battery staple").await;
        let t = self
            .token(
                client,
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "correct horse battery staple"),
                    ("scope", scope),
                ],
            )
            .await;
        (t["access_token"].as_str().unwrap().to_owned(), t)
    }

    /// Emergency rotation in-process (`latchkey keys rotate`): the new key signs at once.
    pub async fn rotate_keys(&self, staged_lead: Option<i64>) -> String {
        let s = &self.state;
        let info = admin::rotate_keys(s.store.as_ref(), s.config.key_alg, self.now(), staged_lead)
            .await
            .unwrap();
        s.keys.reload(s.store.as_ref()).await.unwrap();
        info.kid
    }

    /// Claims like Latchkey's own for a client_credentials token, valid now for 5 minutes.
    pub fn claims(&self, client_id: &str) -> Value {
        let now = self.now();
        json!({
            "iss": self.issuer(), "sub": client_id, "aud": self.issuer(), "exp": now + 300,
            "iat": now, "jti": "test-jti", "client_id": client_id, "scope": "read",
        })
    }

    /// The signing key's standard header: alg, typ at+jwt, kid.
    pub fn header(&self) -> Value {
        let key = self.state.keys.view(self.now()).unwrap().signing.clone();
        json!({ "alg": key.alg.as_str(), "typ": "at+jwt", "kid": key.kid })
    }

    /// A token signed with the issuer's real signing key, with any header and claims.
    pub fn mint(&self, header: &Value, claims: &Value) -> String {
        let key = self.state.keys.view(self.now()).unwrap().signing.clone();
        let input = format!("{}.{}", b64_json(header), b64_json(claims));
        let sig = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

pub fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A fresh ES256 key the issuer never saw: its kid and a signer.
pub struct ForeignKey {
    pub kid: String,
    key: jsonwebtoken::EncodingKey,
}

impl ForeignKey {
    pub fn new() -> ForeignKey {
        let rec = latchkey::keys::generate(KeyAlg::ES256, 0, 0).unwrap();
        ForeignKey {
            kid: rec.kid,
            key: jsonwebtoken::EncodingKey::from_ec_der(&rec.private_der),
        }
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64_json(header), b64_json(claims));
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.key, jsonwebtoken::Algorithm::ES256)
                .unwrap();
        format!("{input}.{sig}")
    }
}

/// The decoded header and claims of a JWT, unverified.
pub fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let h = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    let c = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&h).unwrap(),
        serde_json::from_slice(&c).unwrap(),
    )
}
