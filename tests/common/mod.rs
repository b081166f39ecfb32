//! Test fixtures: an in-process server on 127.0.0.1:0 over a fresh SQLite file or a fresh
//! PostgreSQL database (dropped afterwards), actors, and HTTP helpers that never follow
//! redirects.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use latchkey::admin::{self, NewClient, NewUser};
use latchkey::app::{self, AppState};
use latchkey::clock::Clock;
use latchkey::config::{Config, RawConfig};
use latchkey::model::{Profile, User};
use latchkey::oauth::{GrantType, Password};
use latchkey::store::{PoolSettings, Store};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` once per store.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Sqlite).await }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Postgres).await }
            )*
        }
    };
}

/// The PostgreSQL server tests create their databases on (`DATABASE_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/latchkey.db", dir.path().display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let admin = postgres_admin_url();
                let name = format!("latchkey_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("PostgreSQL tests need a server: set DATABASE_URL (see README)");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&name);
                TestDb {
                    url: url.to_string(),
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = postgres_admin_url();
        // Drop runs inside a runtime; do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A registered client as a test sees it.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

/// An HTTP answer, read fully.
#[derive(Debug)]
pub struct Res {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Res {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 6749 §5.2 error: status, code, JSON, no-store.
    #[track_caller]
    pub fn assert_error(&self, status: u16, error: &str, rule: &str) {
        assert_eq!(self.status, status, "{rule}: {}", self.text);
        assert_eq!(self.json["error"], error, "{rule}: {}", self.text);
        assert!(
            self.header("content-type")
                .unwrap_or("")
                .starts_with("application/json"),
            "{rule}"
        );
        assert_eq!(self.header("cache-control"), Some("no-store"), "{rule}");
        let d = self.json["error_description"].as_str().unwrap_or("");
        assert!(
            d.bytes()
                .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
            "{rule}: error_description has forbidden characters: {d}"
        );
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub state: Arc<AppState>,
    pub http: reqwest::Client,
    pub db: Arc<TestDb>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Real time, pinned so that tests move it by hand.
pub fn test_clock() -> Clock {
    Clock::fixed(Clock::System.now())
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut RawConfig)) -> TestServer {
        let db = Arc::new(TestDb::new(backend).await);
        Self::start_on(db, test_clock(), tweak).await
    }

    /// A server over an existing database (a second replica), with its own clock.
    pub async fn start_on(
        db: Arc<TestDb>,
        clock: Clock,
        tweak: impl FnOnce(&mut RawConfig),
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = RawConfig {
            database_url: db.url.clone(),
            issuer: format!("http://{addr}"),
            listen: addr.to_string(),
            database_max_connections: 8,
            ..RawConfig::default()
        };
        tweak(&mut raw);
        let config = Config::from_raw(raw).unwrap();
        let store = app::open_store(&config).await.unwrap();
        let state = AppState::build(config, store, clock).await.unwrap();
        let router = app::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        TestServer {
            addr,
            base: format!("http://{addr}"),
            state,
            http: http_client(),
            db,
            task,
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    pub fn issuer(&self) -> &str {
        &self.state.config.issuer
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn advance(&self, secs: i64) {
        self.state.clock.advance(secs);
    }

    pub fn now(&self) -> i64 {
        self.state.clock.now()
    }

    pub async fn reload_keys(&self) {
        self.state.keys.reload(self.store()).await.unwrap();
    }

    pub async fn client(&self, req: NewClient) -> TestClient {
        let (c, secret) = admin::create_client(
            self.store(),
            &self.state.secret_hasher,
            req,
            self.state.config.keys.retention_secs,
            self.now(),
        )
        .await
        .unwrap();
        TestClient {
            id: c.id,
            secret: secret.map(|s| s.secret().to_owned()),
        }
    }

    /// A confidential client allowed `grants` and `scope`.
    pub async fn confidential(&self, grants: &[GrantType], scope: &str) -> TestClient {
        self.client(NewClient {
            name: "Test App".into(),
            grant_types: grants.to_vec(),
            scope: Some(scope.into()),
            redirect_uris: vec!["https://app.example/cb".into()],
            ..Default::default()
        })
        .await
    }

    pub async fn user(&self, username: &str, password: &str) -> User {
        let profile = Profile {
            name: Some("Alice Example".into()),
            given_name: Some("Alice".into()),
            family_name: Some("Example".into()),
            email: Some(format!("{username}@example.com")),
            email_verified: true,
        };
        admin::create_user(
            self.store(),
            NewUser {
                username: username.into(),
                profile,
            },
            Password::new(password),
            1024,
            self.now(),
        )
        .await
        .unwrap()
    }

    pub async fn read(res: reqwest::Response) -> Res {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            text,
            json,
        }
    }

    /// POST a form with optional HTTP Basic credentials.
    pub async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> Res {
        let body = form_body(form);
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            req = req.header("authorization", basic_header(id, secret));
        }
        Self::read(req.send().await.unwrap()).await
    }

    /// POST /token authenticated with client_secret_basic.
    pub async fn token(&self, client: &TestClient, form: &[(&str, &str)]) -> Res {
        self.post_form(
            "/token",
            Some((&client.id, client.secret.as_deref().unwrap_or(""))),
            form,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Res {
        Self::read(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> Res {
        Self::read(
            self.http
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A password grant for `user`, returning the token response.
    pub async fn password_grant(
        &self,
        client: &TestClient,
        username: &str,
        password: &str,
        scope: &str,
    ) -> Res {
        self.token(
            client,
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
                ("scope", scope),
            ],
        )
        .await
    }

    pub async fn jwks(&self) -> Value {
        self.get("/jwks").await.json
    }
}

pub fn form_body(form: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        s.append_pair(k, v);
    }
    s.finish()
}

/// RFC 6749 §2.3.1: form-encode both parts, then base64.
pub fn basic_header(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// The decoded header and claims of a JWT, unverified.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let h = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    let c = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&h).unwrap(),
        serde_json::from_slice(&c).unwrap(),
    )
}

/// Verifies a JWT with the published JWK alone, as a resource server would.
pub fn verify_with_jwks(
    token: &str,
    jwks: &Value,
    issuer: &str,
    audience: &str,
) -> Result<Value, String> {
    let (header, _) = jwt_parts(token);
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let jwk = set.find(kid).ok_or("kid not in JWKS")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let alg = match jwk.common.key_algorithm {
        Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => jsonwebtoken::Algorithm::RS256,
        Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => jsonwebtoken::Algorithm::ES256,
        Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA) => jsonwebtoken::Algorithm::EdDSA,
        other => return Err(format!("unexpected alg {other:?}")),
    };
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| e.to_string())?;
    Ok(data.claims)
}

/// Settings for a store opened directly (contract tests).
pub fn pool_settings() -> PoolSettings {
    PoolSettings {
        max_connections: 8,
        acquire_timeout: std::time::Duration::from_secs(3),
    }
}

// ---- Users, refresh, revocation and introspection (issue 4) ----

/// Grants of a back-end client that logs users in with the password grant.
pub const USER_GRANTS: &[GrantType] = &[GrantType::Password, GrantType::RefreshToken];
/// Everything such a client may ask for.
pub const USER_SCOPE: &str = "openid profile email offline_access api";

impl TestServer {
    /// A confidential client allowed the password and refresh_token grants.
    pub async fn password_client(&self) -> TestClient {
        self.confidential(USER_GRANTS, USER_SCOPE).await
    }

    /// A successful password grant; panics with the answer otherwise.
    pub async fn login(
        &self,
        client: &TestClient,
        username: &str,
        password: &str,
        scope: &str,
    ) -> Value {
        let res = self.password_grant(client, username, password, scope).await;
        assert_eq!(res.status, 200, "login of {username}: {}", res.text);
        res.json
    }

    /// `latchkey_password_verifications_total` from GET /metrics.
    pub async fn verifications(&self) -> u64 {
        let res = self.get("/metrics").await;
        assert_eq!(res.status, 200, "{}", res.text);
        res.text
            .lines()
            .find_map(|l| l.strip_prefix("latchkey_password_verifications_total "))
            .expect("the verification counter is exported")
            .trim()
            .parse()
            .unwrap()
    }

    /// A refresh_token grant, with extra parameters (e.g. `scope`).
    pub async fn refresh(
        &self,
        client: &TestClient,
        refresh_token: &str,
        extra: &[(&str, &str)],
    ) -> Res {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        form.extend_from_slice(extra);
        self.token(client, &form).await
    }

    /// POST /revoke with client_secret_basic and an optional `token_type_hint`.
    pub async fn revoke(&self, client: &TestClient, token: &str, hint: Option<&str>) -> Res {
        let mut form = vec![("token", token)];
        if let Some(h) = hint {
            form.push(("token_type_hint", h));
        }
        self.post_form(
            "/revoke",
            Some((&client.id, client.secret.as_deref().unwrap_or(""))),
            &form,
        )
        .await
    }

    /// POST /introspect with client_secret_basic.
    pub async fn introspect(&self, client: &TestClient, token: &str) -> Res {
        self.post_form(
            "/introspect",
            Some((&client.id, client.secret.as_deref().unwrap_or(""))),
            &[("token", token)],
        )
        .await
    }

    /// Whether introspection calls `token` active (and always answers 200 no-store).
    pub async fn is_active(&self, client: &TestClient, token: &str) -> bool {
        let res = self.introspect(client, token).await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.header("cache-control"), Some("no-store"));
        res.json["active"].as_bool().unwrap()
    }

    /// POST /token with client_secret_basic and extra request headers.
    pub async fn token_with_headers(
        &self,
        client: &TestClient,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Res {
        let mut req = self
            .http
            .post(self.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                basic_header(&client.id, client.secret.as_deref().unwrap_or("")),
            )
            .body(form_body(form));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::read(req.send().await.unwrap()).await
    }
}

/// A JWT signed by a freshly generated ES256 key the server has never seen, with `kid` in
/// its header and `typ` as given.
pub fn foreign_jwt(claims: &Value, kid: &str, typ: &str) -> String {
    let rec = latchkey::keys::generate(latchkey::oauth::KeyAlg::ES256, 0, 0).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&rec.private_der),
    )
    .unwrap()
}
