//! The browser session cookie (RFC 6265 §4.1.2): an opaque random value naming a
//! server-side session, `HttpOnly; SameSite=Lax; Path=/`, `Secure` on https issuers.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use uuid::Uuid;

use crate::app::AppState;
use crate::clock::UnixTime;
use crate::model::Session;
use crate::oauth::{OAuthError, TokenHash};
use crate::secrets;

pub const COOKIE: &str = "lk_session";

/// How long a parked authorization request, and the anonymous session holding it, live.
pub const PENDING_TTL_SECS: i64 = 600;

/// The session the request's cookie names, if it is live.
pub async fn current(
    app: &AppState,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Option<Session>, OAuthError> {
    let jar = CookieJar::from_headers(headers);
    let Some(value) = jar.get(COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    if value.len() > 128 {
        return Ok(None);
    }
    Ok(app.store.session(&secrets::token_hash(&value), now).await?)
}

/// Starts a session (anonymous, or signed in as `user`); returns the cookie value.
pub async fn start(
    app: &AppState,
    user: Option<Uuid>,
    now: UnixTime,
) -> Result<(String, Session), OAuthError> {
    let value = secrets::random_token().map_err(OAuthError::server_error)?;
    let session = Session {
        id: secrets::token_hash(&value),
        user_id: user,
        auth_time: user.map(|_| now),
        created_at: now,
        // An anonymous session only carries a login in progress; a signed-in one lasts.
        expires_at: now
            + if user.is_some() {
                app.config.login.session_ttl_secs
            } else {
                PENDING_TTL_SECS
            },
    };
    app.store.create_session(&session).await?;
    Ok((value, session))
}

fn cookie_header(app: &AppState, value: &str, max_age: Option<i64>) -> Option<HeaderValue> {
    let secure = if app.config.https() { "; Secure" } else { "" };
    let max_age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/{secure}{max_age}"
    ))
    .ok()
}

pub fn set_cookie(app: &AppState, res: &mut Response, value: &str) {
    if let Some(v) = cookie_header(app, value, None) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn clear_cookie(app: &AppState, res: &mut Response) {
    if let Some(v) = cookie_header(app, "", Some(0)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The CSRF token of forms for one pending request in one session.
pub fn csrf(app: &AppState, session: &TokenHash, purpose: &str) -> String {
    app.secret_hasher.csrf_token(&session.0, purpose)
}

/// Constant-time check of a submitted CSRF token.
pub fn csrf_ok(
    app: &AppState,
    session: &TokenHash,
    purpose: &str,
    submitted: Option<&str>,
) -> bool {
    submitted.is_some_and(|s| app.secret_hasher.verify_csrf(&session.0, purpose, s))
}
