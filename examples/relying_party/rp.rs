//! A minimal relying party (a server-side web app) that signs users in with Latchkey:
//! authorization code + PKCE (S256), state, nonce, RFC 9207 `iss` check, token exchange,
//! ID token verification through JWKS, and a userinfo call.
//!
//! Shared by `cargo run --example relying_party` and the browser end-to-end test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How the app is registered at Latchkey.
#[derive(Clone, Debug)]
pub struct RpConfig {
    pub issuer: String,
    pub client_id: String,
    /// None for a public client (PKCE alone).
    pub client_secret: Option<String>,
    pub redirect_uri: String,
}

/// One sign-in in progress, keyed by `state`.
struct Pending {
    verifier: String,
    nonce: String,
}

pub struct Rp {
    config: RpConfig,
    http: reqwest::Client,
    pending: Mutex<HashMap<String, Pending>>,
}

fn random() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(b)
}

pub fn router(config: RpConfig) -> Router {
    let rp = Arc::new(Rp {
        config,
        http: reqwest::Client::new(),
        pending: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/", get(home))
        .route("/login", get(start))
        .route("/callback", get(callback))
        .with_state(rp)
}

async fn home() -> Html<&'static str> {
    Html(
        r#"<!doctype html><title>Example app</title><h1>Example app</h1><a id="signin" href="/login">Sign in with Latchkey</a>"#,
    )
}

/// Step 1: send the browser to /authorize with PKCE, state and nonce.
async fn start(State(rp): State<Arc<Rp>>) -> Response {
    let (state, nonce, verifier) = (random(), random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut url = match url::Url::parse(&format!("{}/authorize", rp.config.issuer)) {
        Ok(u) => u,
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "bad issuer").into_response(),
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &rp.config.client_id)
        .append_pair("redirect_uri", &rp.config.redirect_uri)
        .append_pair("scope", "openid profile email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if let Ok(mut p) = rp.pending.lock() {
        p.insert(state, Pending { verifier, nonce });
    }
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string())]).into_response()
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        Html(format!("<!doctype html><title>Example app</title>{body}")),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Step 2: check state and iss, redeem the code, verify the ID token, call userinfo.
async fn callback(State(rp): State<Arc<Rp>>, Query(cb): Query<Callback>) -> Response {
    match finish(&rp, cb).await {
        Ok((sub, name)) => page(
            StatusCode::OK,
            format!(
                r#"<p id="result">Signed in as <b id="name">{}</b> (<code id="sub">{}</code>)</p>"#,
                escape(&name),
                escape(&sub)
            ),
        ),
        Err(e) => page(
            StatusCode::BAD_REQUEST,
            format!(r#"<p id="error">{}</p>"#, escape(&e)),
        ),
    }
}

async fn finish(rp: &Rp, cb: Callback) -> Result<(String, String), String> {
    if let Some(e) = cb.error {
        return Err(format!("authorization failed: {e}"));
    }
    let state = cb.state.ok_or("no state")?;
    let pending = rp
        .pending
        .lock()
        .map_err(|_| "lock")?
        .remove(&state)
        .ok_or("unknown state")?;
    // RFC 9207: the response must come from the issuer we sent the user to.
    if cb.iss.as_deref() != Some(rp.config.issuer.as_str()) {
        return Err("iss does not match".into());
    }
    let code = cb.code.ok_or("no code")?;
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", rp.config.redirect_uri.clone()),
        ("code_verifier", pending.verifier),
    ];
    let mut req = rp.http.post(format!("{}/token", rp.config.issuer));
    match &rp.config.client_secret {
        Some(secret) => req = req.basic_auth(&rp.config.client_id, Some(secret)),
        None => form.push(("client_id", rp.config.client_id.clone())),
    }
    let tokens: serde_json::Value = req
        .form(&form)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let id_token = tokens["id_token"]
        .as_str()
        .ok_or_else(|| format!("no id_token: {tokens}"))?;
    let access_token = tokens["access_token"].as_str().ok_or("no access_token")?;

    // Verify the ID token with the issuer's published keys.
    let jwks: jsonwebtoken::jwk::JwkSet = rp
        .http
        .get(format!("{}/jwks", rp.config.issuer))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(id_token).map_err(|e| e.to_string())?;
    let jwk = jwks
        .find(header.kid.as_deref().unwrap_or_default())
        .ok_or("unknown kid")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[&rp.config.issuer]);
    validation.set_audience(&[&rp.config.client_id]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    if claims["nonce"].as_str() != Some(pending.nonce.as_str()) {
        return Err("nonce does not match".into());
    }
    let info: serde_json::Value = rp
        .http
        .get(format!("{}/userinfo", rp.config.issuer))
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if info["sub"] != claims["sub"] {
        return Err("userinfo sub differs from the ID token's".into());
    }
    Ok((
        claims["sub"].as_str().unwrap_or_default().to_owned(),
        info["name"].as_str().unwrap_or_default().to_owned(),
    ))
}
