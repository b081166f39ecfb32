//! POST /introspect (RFC 7662) for confidential clients: the claims of a live token, or
//! exactly `{"active": false}`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::oauth::OAuthError;
use crate::secrets::token_hash;

use super::extract::{ClientAuthHeader, OAuthForm};
use super::response::{json_no_store, with_client};
use super::revoke::authenticated;
use super::userinfo::{active_user, live_access_token};

pub async fn introspect(
    State(app): State<Arc<AppState>>,
    auth: Result<ClientAuthHeader, OAuthError>,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let (client, token) = match authenticated(&app, auth, form).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if client.client().is_public() {
        let e = OAuthError::invalid_client("public clients may not introspect tokens");
        return with_client(e.into_response(), Some(client.id()));
    }
    match inspect(&app, client.id(), &token).await {
        Ok(body) => json_no_store(&body, Some(client.id())),
        Err(e) => with_client(e.into_response(), Some(client.id())),
    }
}

async fn inspect(app: &AppState, caller: &str, token: &str) -> Result<Value, OAuthError> {
    let inactive = json!({ "active": false });
    if token.contains('.') {
        return Ok(match live_access_token(app, token).await {
            // A user's token is active only while the user is, as at userinfo.
            Ok(c) if c.has_user() && active_user(app, &c.sub).await?.is_none() => inactive,
            Ok(c) => json!({
                "active": true,
                "iss": c.iss,
                "sub": c.sub,
                "aud": c.aud,
                "client_id": c.client_id,
                "scope": c.scope,
                "exp": c.exp,
                "iat": c.iat,
                "jti": c.jti,
                "token_type": "Bearer",
            }),
            Err(super::response::BearerError::Error(e))
                if e.kind == crate::oauth::ErrorKind::TemporarilyUnavailable =>
            {
                return Err(e);
            }
            Err(_) => inactive,
        });
    }
    let now = app.clock.now();
    let Some(rt) = app.store.refresh_token(&token_hash(token)).await? else {
        return Ok(inactive);
    };
    // A refresh token is only described to the client holding it.
    let live = rt.used_at.is_none()
        && rt.expires_at > now
        && rt.grant.client_id == caller
        && !rt.grant_revoked
        && rt.user.as_ref().is_some_and(|u| !u.disabled);
    if !live {
        return Ok(inactive);
    }
    Ok(json!({
        "active": true,
        "iss": app.config.issuer,
        "sub": rt.grant.user_id.to_string(),
        "client_id": rt.grant.client_id,
        "scope": rt.scope.to_string(),
        "exp": rt.expires_at,
        "iat": rt.issued_at,
        "token_type": "refresh_token",
    }))
}
