//! The login and consent pages (server-rendered; inputs `username` and `password` are a
//! public contract). Forms carry a CSRF token bound to the browser session and the pending
//! request (RFC 6749 §10.12); a login starts a new session id (no fixation).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::app::AppState;
use crate::grant::GrantCtx;
use crate::grant::password::verify_login;
use crate::model::{Client, PendingRequest, Session};
use crate::oauth::{ErrorKind, OAuthError, Params, Password, ScopeSet};

use super::authorize::{AuthzRequest, authenticated, see_other};
use super::extract::{PeerIp, PendingId, page_form};
use super::pages::{error_page, render_redirecting_form};
use super::{finish, session};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    client_name: &'a str,
    request_id: &'a str,
    csrf: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    request_id: &'a str,
    csrf: &'a str,
    scopes: Vec<String>,
    username: &'a str,
}

fn expired() -> Response {
    error_page(&OAuthError::invalid_request(
        "this sign-in request is unknown or has expired; start again from the application",
    ))
}

fn forbidden(why: &'static str) -> Response {
    let mut res = error_page(&OAuthError::invalid_request(why));
    *res.status_mut() = StatusCode::FORBIDDEN;
    res
}

/// The pending request `id` of the browser's session, its parsed request and client.
async fn load(
    app: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Session, PendingRequest, AuthzRequest, Client), Response> {
    let now = app.clock.now();
    let sess = session::current(app, headers, now)
        .await
        .map_err(|e| error_page(&e))?
        .ok_or_else(expired)?;
    let pending = app
        .store
        .pending(id, now)
        .await
        .map_err(|e| error_page(&e.into()))?
        .ok_or_else(expired)?;
    if pending.session_id != sess.id {
        return Err(expired());
    }
    let req: AuthzRequest = serde_json::from_str(&pending.request).map_err(|_| expired())?;
    let client = app
        .store
        .client(&req.client_id)
        .await
        .map_err(|e| error_page(&e.into()))?
        .ok_or_else(expired)?;
    Ok((sess, pending, req, client))
}

fn login_page(
    app: &AppState,
    sess: &Session,
    id: &str,
    req: &AuthzRequest,
    client: &Client,
    username: &str,
    error: Option<&str>,
) -> Response {
    let csrf = session::csrf(app, &sess.id, &format!("login:{id}"));
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = LoginPage {
        client_name: &client.name,
        request_id: id,
        csrf: &csrf,
        username,
        error,
    };
    render_redirecting_form(status, &page, req.target.uri())
}

pub async fn login_get(
    State(app): State<Arc<AppState>>,
    PendingId(id): PendingId,
    headers: HeaderMap,
) -> Response {
    let Some(id) = id else {
        return expired();
    };
    match load(&app, &headers, &id).await {
        Ok((sess, _, req, client)) => login_page(
            &app,
            &sess,
            &id,
            &req,
            &client,
            req.login_hint.as_deref().unwrap_or(""),
            None,
        ),
        Err(res) => res,
    }
}

/// The form fields of a page POST: strict form parsing, duplicates refused.
async fn form(req: Request) -> Result<(HeaderMap, Params), Response> {
    let (headers, body) = page_form(req).await?;
    let params = Params::parse(&body).map_err(|e| error_page(&e))?;
    Ok((headers, params))
}

pub async fn login_post(
    State(app): State<Arc<AppState>>,
    PeerIp(peer): PeerIp,
    req: Request,
) -> Response {
    let (headers, p) = match form(req).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let Some(id) = p.get("request") else {
        return expired();
    };
    let (sess, _, req, client) = match load(&app, &headers, id).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    // RFC 6749 §10.12: the form must come from our page in this browser session.
    if !session::csrf_ok(&app, &sess.id, &format!("login:{id}"), p.get("csrf")) {
        return forbidden("the form has expired; go back to the application and start again");
    }
    let username = p.get("username").unwrap_or("");
    let Some(password) = p.get("password").filter(|_| !username.is_empty()) else {
        return login_page(
            &app,
            &sess,
            id,
            &req,
            &client,
            username,
            Some("Enter your username and password."),
        );
    };
    let now = app.clock.now();
    let ctx = GrantCtx::new(&app, now, peer);
    let user = match verify_login(&ctx, username, Password::new(password)).await {
        Ok(u) => u,
        Err(e) => {
            let message = match e.kind {
                ErrorKind::TooManyAttempts => {
                    "Too many failed attempts. Try again in a few minutes."
                }
                ErrorKind::InvalidGrant => "The username or password is incorrect.",
                ErrorKind::InvalidRequest => "The password is too long.",
                _ => return error_page(&e),
            };
            let mut res = login_page(&app, &sess, id, &req, &client, username, Some(message));
            if e.kind == ErrorKind::TooManyAttempts {
                *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                // RFC 6585 §4: say when to come back, as the token endpoint does.
                if let Some(secs) = e.retry_after {
                    res.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
            }
            return res;
        }
    };
    // A new session id at login (RFC 6265 §8.3 session fixation); the old one ends.
    let started = async {
        let (value, new_sess) = session::start(&app, Some(user.id), now).await?;
        app.store.rebind_pending(id, &sess.id, &new_sess.id).await?;
        app.store.delete_session(&sess.id).await?;
        Ok::<_, OAuthError>(value)
    }
    .await;
    match started {
        Ok(value) => {
            let mut res = see_other(&format!("/authorize/resume?request={id}"));
            session::set_cookie(&app, &mut res, &value);
            res
        }
        Err(e) => error_page(&e),
    }
}

/// Scope names in words for the consent page.
fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Confirm who you are".into(),
        "profile" => "See your name and profile".into(),
        "email" => "See your email address".into(),
        "offline_access" => "Stay connected when you are not using it".into(),
        other => format!("Use the permission “{other}”"),
    }
}

pub async fn consent_get(
    State(app): State<Arc<AppState>>,
    PendingId(id): PendingId,
    headers: HeaderMap,
) -> Response {
    let Some(id) = id else {
        return expired();
    };
    let (sess, _, req, client) = match load(&app, &headers, &id).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    // Only a session that meets the request's sign-in demands (prompt=login, max_age,
    // id_token_hint) may consent; otherwise the login page comes first.
    let Some(user_id) = sess
        .user_id
        .filter(|_| authenticated(&req, &sess, app.clock.now()))
    else {
        return see_other(&format!("/login?request={id}"));
    };
    let username = match app.store.user(user_id).await {
        Ok(Some(u)) => u.username,
        Ok(None) => return expired(),
        Err(e) => return error_page(&e.into()),
    };
    let scopes = ScopeSet::parse(&req.scope)
        .unwrap_or_default()
        .iter()
        .map(describe)
        .collect();
    let csrf = session::csrf(&app, &sess.id, &format!("consent:{id}"));
    let page = ConsentPage {
        client_name: &client.name,
        request_id: &id,
        csrf: &csrf,
        scopes,
        username: &username,
    };
    render_redirecting_form(StatusCode::OK, &page, req.target.uri())
}

pub async fn consent_post(State(app): State<Arc<AppState>>, req: Request) -> Response {
    let (headers, p) = match form(req).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let Some(id) = p.get("request") else {
        return expired();
    };
    let (sess, _, areq, client) = match load(&app, &headers, id).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    if !session::csrf_ok(&app, &sess.id, &format!("consent:{id}"), p.get("csrf")) {
        return forbidden("the form has expired; go back to the application and start again");
    }
    let now = app.clock.now();
    let Some(user_id) = sess.user_id.filter(|_| authenticated(&areq, &sess, now)) else {
        return see_other(&format!("/login?request={id}"));
    };
    // One decision per request: a second submission finds nothing to take.
    match app.store.take_pending(id, &sess.id, now).await {
        Ok(Some(_)) => {}
        Ok(None) => return expired(),
        Err(e) => return error_page(&e.into()),
    }
    let issuer = &app.config.issuer;
    match p.get("decision") {
        Some("approve") => {
            // Remembered consent grows: what was approved before stays approved.
            let asked = ScopeSet::parse(&areq.scope).unwrap_or_default();
            let saved = app
                .store
                .merge_consent(user_id, &client.id, &asked, now)
                .await;
            if let Err(e) = saved {
                return areq.fail(issuer, e.into());
            }
            finish::answer(&app, &areq, &client, &sess, now).await
        }
        _ => areq.fail(
            issuer,
            OAuthError::access_denied("the user denied the request"),
        ),
    }
}
