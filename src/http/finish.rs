//! The authorization response (RFC 6749 §4.1.2, §4.2.2; OIDC Core §3.1.2.5, §3.2.2.5):
//! a code, or implicit tokens, sent to the proven redirect URI.

use std::sync::Arc;

use axum::response::Response;

use crate::app::AppState;
use crate::clock::UnixTime;
use crate::grant::{self, GrantCtx};
use crate::model::{Client, CodeBinding, Session};
use crate::oauth::{OAuthError, ScopeSet};

use super::authorize::{AuthzRequest, ResponseType};
use super::response::with_client;

pub async fn answer(
    app: &Arc<AppState>,
    req: &AuthzRequest,
    client: &Client,
    sess: &Session,
    now: UnixTime,
) -> Response {
    let issuer = &app.config.issuer;
    let res = match run(app, req, client, sess, now).await {
        Ok(fields) => req.target.respond(issuer, fields),
        Err(e) => req.fail(issuer, e),
    };
    with_client(res, Some(&client.id))
}

async fn run(
    app: &Arc<AppState>,
    req: &AuthzRequest,
    client: &Client,
    sess: &Session,
    now: UnixTime,
) -> Result<Vec<(String, String)>, OAuthError> {
    let user_id = sess
        .user_id
        .ok_or_else(|| OAuthError::login_required("the user is not signed in"))?;
    let user = match app.store.user(user_id).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(OAuthError::access_denied("the account is not available")),
    };
    let auth_time = sess.auth_time.unwrap_or(now);
    let scope = ScopeSet::parse(&req.scope)?;
    let ctx = GrantCtx::new(app, now, None);
    match req.response_type {
        ResponseType::Code => {
            let binding = CodeBinding {
                redirect_uri: req.target.uri().to_owned(),
                redirect_uri_sent: req.redirect_uri_sent,
                scope: req.scope.clone(),
                nonce: req.nonce.clone(),
                code_challenge: req.code_challenge.clone(),
                auth_time,
            };
            let code = grant::authorization_code::issue_code(&ctx, client, &user, binding).await?;
            Ok(vec![("code".into(), code)])
        }
        ResponseType::Token | ResponseType::IdTokenToken => {
            let with_id_token = req.response_type == ResponseType::IdTokenToken;
            grant::implicit::issue(
                &ctx,
                client,
                &user,
                &scope,
                auth_time,
                req.nonce.as_deref(),
                with_id_token,
            )
            .await
        }
    }
}
