//! POST /revoke (RFC 7009): refresh tokens take their whole grant with them; access tokens
//! go on a deny-list until they expire. Unknown tokens get 200 (§2.2).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::client_auth::{self, AuthenticatedClient};
use crate::jwt::{Rejection, verify_access_token};
use crate::oauth::OAuthError;
use crate::secrets::token_hash;

use super::extract::{ClientAuthHeader, OAuthForm};
use super::response::{NO_STORE, with_client};

pub async fn revoke(
    State(app): State<Arc<AppState>>,
    auth: Result<ClientAuthHeader, OAuthError>,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let (result, client_id) = match authenticated(&app, auth, form).await {
        Ok((client, token)) => (
            run(&app, &client, &token).await,
            Some(client.id().to_owned()),
        ),
        Err(e) => (Err(e), None),
    };
    let res = match result {
        Ok(()) => {
            let mut res = ().into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            res
        }
        Err(e) => e.into_response(),
    };
    with_client(res, client_id.as_deref())
}

/// Client authentication and the `token` parameter, shared with introspection.
pub async fn authenticated(
    app: &AppState,
    auth: Result<ClientAuthHeader, OAuthError>,
    form: Result<OAuthForm, OAuthError>,
) -> Result<(AuthenticatedClient, String), OAuthError> {
    let OAuthForm(params) = form?;
    let ClientAuthHeader(presented) = auth?;
    let client = client_auth::authenticate(
        &app.clients,
        app.clock.now(),
        &app.secret_hasher,
        presented,
        &params,
    )
    .await?;
    let token = params.required("token")?.to_owned();
    Ok((client, token))
}

async fn run(app: &AppState, client: &AuthenticatedClient, token: &str) -> Result<(), OAuthError> {
    let now = app.clock.now();
    // token_type_hint is only an optimisation (§2.1); both kinds are tried.
    if let Some(rt) = app.store.refresh_token(&token_hash(token)).await? {
        if rt.grant.client_id != client.id() {
            return Err(OAuthError::unauthorized_client(
                "the token was not issued to this client",
            ));
        }
        app.store.revoke_grant(&rt.grant.id, now).await?;
        app.revocations.revoked();
        return Ok(());
    }
    let keys = app.keys.view(now).map_err(OAuthError::server_error)?;
    match verify_access_token(token, &keys, &app.config.issuer, now) {
        Ok(claims) => {
            if claims.client_id != client.id() {
                return Err(OAuthError::unauthorized_client(
                    "the token was not issued to this client",
                ));
            }
            app.store
                .revoke_access_token(&claims.jti, claims.exp)
                .await?;
            app.revocations.revoked();
            Ok(())
        }
        // Expired, foreign or garbage: nothing to revoke (RFC 7009 §2.2).
        Err(Rejection::Expired | Rejection::Invalid) => Ok(()),
    }
}
