//! GET/POST /userinfo (OIDC Core §5.3) with bearer tokens per RFC 6750 §2, §3.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::grant::user_claims;
use crate::jwt::{AccessClaims, Rejection, verify_access_token};
use crate::model::User;
use crate::oauth::{OAuthError, Params, ScopeSet};

use super::extract::{BearerSource, bearer_from_headers, is_form, read_body};
use super::response::{BearerError, json_no_store};

pub async fn userinfo_get(State(app): State<Arc<AppState>>, req: Request) -> Response {
    respond(&app, req).await
}

pub async fn userinfo_post(State(app): State<Arc<AppState>>, req: Request) -> Response {
    respond(&app, req).await
}

async fn respond(app: &Arc<AppState>, req: Request) -> Response {
    match run(app, req).await {
        Ok((body, client_id)) => json_no_store(&body, Some(&client_id)),
        Err(e) => e.into_response(),
    }
}

/// RFC 6750 §2: exactly one way of sending the token; never in the query (§2.3 is not
/// supported: URLs end up in logs).
async fn token_of(req: Request) -> Result<String, BearerError> {
    if req
        .uri()
        .query()
        .is_some_and(|q| Params::parse(q.as_bytes()).is_ok_and(|p| p.has("access_token")))
    {
        return Err(
            OAuthError::invalid_request("access tokens are not accepted in the URL").into(),
        );
    }
    let header = bearer_from_headers(req.headers())?;
    let body_token = if req.method() == Method::POST && is_form(req.headers()) {
        let bytes = read_body(req.into_body()).await?;
        Params::parse(&bytes)?
            .get("access_token")
            .map(str::to_owned)
    } else {
        None
    };
    match (header, body_token) {
        (BearerSource::Header(_), Some(_)) => {
            Err(OAuthError::invalid_request("send the access token one way only").into())
        }
        (BearerSource::Header(t), None) => Ok(t),
        (BearerSource::None, Some(t)) => Ok(t),
        (BearerSource::None, None) => Err(BearerError::Missing),
    }
}

/// Verifies one of our access tokens and that it is not revoked.
pub async fn live_access_token(app: &AppState, token: &str) -> Result<AccessClaims, BearerError> {
    let now = app.clock.now();
    let keys = app.keys.view(now).map_err(OAuthError::server_error)?;
    let claims =
        verify_access_token(token, &keys, &app.config.issuer, now).map_err(|r| match r {
            Rejection::Expired => OAuthError::invalid_token("the access token expired"),
            Rejection::Invalid => OAuthError::invalid_token("the access token is invalid"),
        })?;
    if app
        .revocations
        .access_token_revoked(
            app.store.as_ref(),
            &claims.jti,
            claims.grant_id.as_deref(),
            Some(&claims.client_id),
            now,
        )
        .await?
    {
        return Err(OAuthError::invalid_token("the access token was revoked").into());
    }
    Ok(claims)
}

/// The user a token names (its `sub`), if they exist and are enabled.
pub async fn active_user(app: &AppState, sub: &str) -> Result<Option<User>, OAuthError> {
    let Ok(id) = uuid::Uuid::parse_str(sub) else {
        return Ok(None);
    };
    Ok(app.store.user(id).await?.filter(|u| !u.disabled))
}

async fn run(app: &AppState, req: Request) -> Result<(serde_json::Value, String), BearerError> {
    let token = token_of(req).await?;
    let claims = live_access_token(app, &token).await?;
    let client_id = claims.client_id.clone();
    let fail = |e: OAuthError| BearerError::Error(e);
    // RFC 9068 §4: a token minted for another resource (RFC 8707) is not for us.
    if !claims.aud.contains(&app.config.audience) {
        return Err(fail(OAuthError::invalid_token(
            "the access token is for another audience",
        )));
    }
    // The seed system's rule: a client-only token cannot read a user's profile.
    if !claims.has_user() {
        return Err(fail(OAuthError::insufficient_scope(
            "this endpoint needs a token issued for a user",
        )));
    }
    if !claims.has_scope("openid") {
        return Err(fail(OAuthError::insufficient_scope(
            "the token lacks the openid scope",
        )));
    }
    let Some(user) = active_user(app, &claims.sub).await? else {
        return Err(fail(OAuthError::invalid_token(
            "the user is no longer active",
        )));
    };
    let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
    let mut body = user_claims(&user, &scope);
    body.insert("sub".into(), serde_json::Value::String(user.id.to_string()));
    Ok((serde_json::Value::Object(body), client_id))
}
