//! POST /token (RFC 6749 §3.2): parse, pick the grant, authenticate the client, check it
//! may use the grant, then one exhaustive dispatch.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::client_auth;
use crate::grant::{self, GrantCtx};
use crate::oauth::{GrantType, OAuthError};

use super::extract::{ClientAuthHeader, OAuthForm, PeerIp};
use super::response::{token_response, with_client};

pub async fn token(
    State(app): State<Arc<AppState>>,
    PeerIp(peer): PeerIp,
    auth: Result<ClientAuthHeader, OAuthError>,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    match run(&app, peer, auth, form).await {
        Ok((body, client_id)) => token_response(body, &client_id),
        Err((e, client_id)) => with_client(e.into_response(), client_id.as_deref()),
    }
}

async fn run(
    app: &Arc<AppState>,
    peer: Option<std::net::IpAddr>,
    auth: Result<ClientAuthHeader, OAuthError>,
    form: Result<OAuthForm, OAuthError>,
) -> Result<(grant::TokenResponse, String), (OAuthError, Option<String>)> {
    let OAuthForm(params) = form.map_err(|e| (e, None))?;
    let ClientAuthHeader(presented) = auth.map_err(|e| (e, None))?;
    // RFC 6749 §5.2: grant_type first; no database work before it is known.
    let grant: GrantType = params
        .required("grant_type")
        .and_then(str::parse)
        .map_err(|e| (e, None))?;
    // RFC 6749 §4.2: the implicit grant has no token-endpoint step.
    let implicit = || OAuthError::unsupported_grant_type("implicit is not a token-endpoint grant");
    if grant == GrantType::Implicit {
        return Err((implicit(), None));
    }
    // The one reading of the clock for this request.
    let now = app.clock.now();
    let client =
        client_auth::authenticate(&app.clients, now, &app.secret_hasher, presented, &params)
            .await
            .map_err(|e| (e, None))?;
    let id = client.id().to_owned();
    let fail = |e: OAuthError| (e, Some(id.clone()));
    client.client().ensure_allows(grant).map_err(fail)?;
    let ctx = GrantCtx::new(app, now, peer);
    let res = match grant {
        GrantType::ClientCredentials => {
            grant::client_credentials::handle(&ctx, &client, &params).await
        }
        GrantType::Password => grant::password::handle(&ctx, &client, &params).await,
        GrantType::RefreshToken => grant::refresh_token::handle(&ctx, &client, &params).await,
        GrantType::AuthorizationCode => {
            grant::authorization_code::handle(&ctx, &client, &params).await
        }
        GrantType::Implicit => Err(implicit()),
    };
    res.map(|b| (b, id.clone())).map_err(fail)
}
