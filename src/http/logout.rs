//! OpenID Connect RP-Initiated Logout 1.0 (`end_session_endpoint`): with a valid
//! id_token_hint the session ends at once; without one the user confirms (CSRF-protected).
//! post_logout_redirect_uri must be registered for the client, by exact match.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;

use crate::app::AppState;
use crate::jwt;
use crate::oauth::{OAuthError, Params};

use super::authorize::see_other;
use super::extract::page_form;
use super::pages::{error_page, render, render_redirecting_form};
use super::session;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    done: bool,
    csrf: &'a str,
    post_logout_redirect_uri: Option<&'a str>,
    state: Option<&'a str>,
    client_id: Option<&'a str>,
}

pub async fn logout(State(app): State<Arc<AppState>>, req: Request) -> Response {
    let is_post = req.method() == Method::POST;
    let (headers, params) = if is_post {
        match page_form(req).await {
            Ok((headers, body)) => (headers, Params::parse(&body)),
            Err(page) => return page,
        }
    } else {
        let query = Params::parse(req.uri().query().unwrap_or("").as_bytes());
        (req.headers().clone(), query)
    };
    match params {
        Ok(p) => run(&app, &headers, &p, is_post)
            .await
            .unwrap_or_else(|e| error_page(&e)),
        Err(e) => error_page(&e),
    }
}

async fn run(
    app: &AppState,
    headers: &HeaderMap,
    p: &Params,
    is_post: bool,
) -> Result<Response, OAuthError> {
    let now = app.clock.now();
    let keys = app.keys.view(now).map_err(OAuthError::server_error)?;
    // The hint may have expired; it still names the client and user (RP-Initiated §2).
    let hint = match p.get("id_token_hint") {
        None => None,
        Some(h) => Some(
            jwt::verify_id_token(h, &keys, &app.config.issuer, now)
                .map(|(claims, _)| claims)
                .map_err(|_| {
                    OAuthError::invalid_request("id_token_hint is not a valid ID token")
                })?,
        ),
    };
    let client_id = match (hint.as_ref().map(|c| c.aud.as_str()), p.get("client_id")) {
        (Some(a), Some(b)) if a != b => {
            return Err(OAuthError::invalid_request(
                "client_id does not match the id_token_hint",
            ));
        }
        (Some(a), _) => Some(a.to_owned()),
        (None, b) => b.map(str::to_owned),
    };
    let redirect = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = match &client_id {
                Some(id) => app.store.client(id).await?,
                None => None,
            };
            let registered =
                client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return Err(OAuthError::invalid_request(
                    "post_logout_redirect_uri is not registered for this client",
                ));
            }
            Some(uri.to_owned())
        }
    };
    // RP-Initiated Logout §2: an RP may send its request by GET or POST; a POST carrying a
    // CSRF token is our own confirmation form.
    let our_form = is_post && p.has("csrf");
    if let Some(s) = session::current(app, headers, now).await? {
        // Without a hint for this user, only our own confirmation form ends the session.
        let confirmed = if our_form {
            session::csrf_ok(app, &s.id, "logout", p.get("csrf"))
        } else {
            hint.as_ref()
                .is_some_and(|h| s.user_id.is_some_and(|u| u.to_string() == h.sub))
        };
        if !confirmed && our_form {
            return Err(OAuthError::invalid_request(
                "the form has expired; try signing out again",
            ));
        }
        if !confirmed {
            let csrf = session::csrf(app, &s.id, "logout");
            let page = LogoutPage {
                done: false,
                csrf: &csrf,
                post_logout_redirect_uri: redirect.as_deref(),
                state: p.get("state"),
                client_id: client_id.as_deref(),
            };
            // The confirmation's POST may end in a redirect to the client.
            let target = redirect.as_deref().unwrap_or_default();
            return Ok(render_redirecting_form(StatusCode::OK, &page, target));
        }
        app.store.delete_session(&s.id).await?;
    }
    let mut res = match redirect {
        Some(uri) => {
            let mut target = url::Url::parse(&uri)
                .map_err(|_| OAuthError::invalid_request("bad post_logout_redirect_uri"))?;
            if let Some(state) = p.get("state") {
                target.query_pairs_mut().append_pair("state", state);
            }
            see_other(target.as_str())
        }
        None => render(
            StatusCode::OK,
            &LogoutPage {
                done: true,
                csrf: "",
                post_logout_redirect_uri: None,
                state: None,
                client_id: None,
            },
        ),
    };
    session::clear_cookie(app, &mut res);
    Ok(res)
}
