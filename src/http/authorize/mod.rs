//! GET/POST /authorize (RFC 6749 §4.1.1, §4.2.1; OIDC Core §3.1.2, §3.2.2). client_id and
//! redirect_uri are proven first; until then errors are a page, never a redirect (RFC 9700
//! §4.1.3). Then the request is validated, and the session decides: login, consent, or an
//! answer at once.

mod request;
mod target;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::app::AppState;
use crate::clock::UnixTime;
use crate::model::{Client, PendingRequest, Session};
use crate::oauth::{OAuthError, ScopeSet};
use crate::secrets;

use super::extract::{PendingId, page_form};
use super::pages::error_page;
use super::{finish, session};

pub use request::AuthzRequest;
use request::validate;
pub use target::{AuthorizeError, RedirectTarget, ResponseMode, ResponseType, see_other};

pub async fn authorize_get(State(app): State<Arc<AppState>>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").as_bytes().to_vec();
    run(&app, &query, req.headers().clone()).await
}

pub async fn authorize_post(State(app): State<Arc<AppState>>, req: Request) -> Response {
    match page_form(req).await {
        Ok((headers, body)) => run(&app, &body, headers).await,
        Err(page) => page,
    }
}

async fn run(app: &Arc<AppState>, raw: &[u8], headers: HeaderMap) -> Response {
    let now = app.clock.now();
    let result = async {
        let (req, client) = validate(app, raw, now).await?;
        decide(app, req, &client, &headers, now).await
    }
    .await;
    match result {
        Ok(res) => res,
        Err(AuthorizeError::Page(e)) => error_page(&e),
        Err(AuthorizeError::Redirect(target, e)) => target.error(&app.config.issuer, &e),
    }
}

/// Whether `session` satisfies the request's authentication demands (prompt=login, max_age,
/// id_token_hint).
pub fn authenticated(req: &AuthzRequest, session: &Session, now: UnixTime) -> bool {
    let (Some(user), Some(auth_time)) = (session.user_id, session.auth_time) else {
        return false;
    };
    // OIDC Core §3.1.2.1 prompt=login: a login after the request was parked. A login always
    // starts a new session, so the session must differ from the parking one (a clock
    // comparison would let a login in the same second count).
    if req.prompt_login
        && req
            .parked_session
            .as_ref()
            .is_none_or(|parked| *parked == session.id.0)
    {
        return false;
    }
    if req.max_age.is_some_and(|m| now - auth_time > m) {
        return false;
    }
    req.hint_sub
        .as_ref()
        .is_none_or(|sub| *sub == user.to_string())
}

/// Login, consent, or answer now.
async fn decide(
    app: &Arc<AppState>,
    req: AuthzRequest,
    client: &Client,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Response, AuthorizeError> {
    let issuer = &app.config.issuer;
    let current = session::current(app, headers, now).await?;
    let signed_in = current.as_ref().filter(|s| authenticated(&req, s, now));
    let Some(sess) = signed_in else {
        if req.prompt_none {
            return Ok(req.fail(
                issuer,
                OAuthError::login_required("the user is not signed in"),
            ));
        }
        // Keep (or start) the browser session the login form will be bound to.
        let (cookie, sess) = match current {
            Some(s) => (None, s),
            None => {
                let (value, s) = session::start(app, None, now).await?;
                (Some(value), s)
            }
        };
        let id = park(app, &req, &sess, now).await?;
        let mut res = see_other(&format!("/login?request={id}"));
        if let Some(value) = cookie {
            session::set_cookie(app, &mut res, &value);
        }
        return Ok(res);
    };
    if needs_consent(app, &req, client, sess).await? {
        if req.prompt_none {
            return Ok(req.fail(
                issuer,
                OAuthError::consent_required("the user has not consented"),
            ));
        }
        let id = park(app, &req, sess, now).await?;
        return Ok(see_other(&format!("/consent?request={id}")));
    }
    Ok(finish::answer(app, &req, client, sess, now).await)
}

/// Stores the request for the login or consent step; returns its id.
pub async fn park(
    app: &AppState,
    req: &AuthzRequest,
    sess: &Session,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let id = secrets::random_b64(16).map_err(OAuthError::server_error)?;
    let parked = AuthzRequest {
        parked_session: Some(sess.id.0.clone()),
        ..req.clone()
    };
    let pending = PendingRequest {
        id: id.clone(),
        session_id: sess.id.clone(),
        client_id: req.client_id.clone(),
        request: serde_json::to_string(&parked).map_err(OAuthError::server_error)?,
        created_at: now,
        expires_at: now + session::PENDING_TTL_SECS,
    };
    app.store.put_pending(&pending).await?;
    Ok(id)
}

/// Consent is needed unless the client is first-party or the user already granted a
/// superset of the scope; prompt=consent always asks.
pub async fn needs_consent(
    app: &AppState,
    req: &AuthzRequest,
    client: &Client,
    sess: &Session,
) -> Result<bool, OAuthError> {
    if req.prompt_consent {
        return Ok(true);
    }
    if client.first_party {
        return Ok(false);
    }
    let Some(user) = sess.user_id else {
        return Ok(true);
    };
    let asked = ScopeSet::parse(&req.scope)?;
    Ok(!app
        .store
        .consent(user, &client.id)
        .await?
        .is_some_and(|granted| asked.is_subset(&granted)))
}

/// GET /authorize/resume?request=ID: continue a parked request after login.
pub async fn resume(
    State(app): State<Arc<AppState>>,
    PendingId(id): PendingId,
    headers: HeaderMap,
) -> Response {
    let now = app.clock.now();
    let expired = || {
        error_page(&OAuthError::invalid_request(
            "this sign-in request is unknown or has expired; start again from the application",
        ))
    };
    let Some(id) = id else {
        return expired();
    };
    let sess = match session::current(&app, &headers, now).await {
        Ok(Some(s)) => s,
        Ok(None) => return expired(),
        Err(e) => return error_page(&e),
    };
    let pending = match app.store.pending(&id, now).await {
        Ok(Some(p)) if p.session_id == sess.id => p,
        Ok(_) => return expired(),
        Err(e) => return error_page(&e.into()),
    };
    let Ok(req) = serde_json::from_str::<AuthzRequest>(&pending.request) else {
        return expired();
    };
    let client = match app.store.client(&req.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return expired(),
        Err(e) => return error_page(&e.into()),
    };
    if !authenticated(&req, &sess, now) {
        return see_other(&format!("/login?request={id}"));
    }
    match needs_consent(&app, &req, &client, &sess).await {
        Ok(true) => see_other(&format!("/consent?request={id}")),
        Ok(false) => match app.store.take_pending(&id, &sess.id, now).await {
            Ok(Some(_)) => finish::answer(&app, &req, &client, &sess, now).await,
            Ok(None) => expired(),
            Err(e) => error_page(&e.into()),
        },
        Err(e) => error_page(&e),
    }
}
