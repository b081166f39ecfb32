//! The implicit grant (RFC 6749 §4.2; OIDC Core §3.2), for clients explicitly allowed it:
//! tokens in the fragment, never a refresh token. RFC 9700 §2.1.2 discourages it.

use uuid::Uuid;

use crate::clock::UnixTime;
use crate::model::{Client, Grant, User};
use crate::oauth::{OAuthError, ScopeSet};

use super::{GrantCtx, IdTokenFor, Subject, issue_access_token, issue_id_token};

pub async fn issue(
    ctx: &GrantCtx<'_>,
    client: &Client,
    user: &User,
    scope: &ScopeSet,
    auth_time: UnixTime,
    nonce: Option<&str>,
    with_id_token: bool,
) -> Result<Vec<(String, String)>, OAuthError> {
    // A grant row without refresh tokens, so that revoking the user's grants reaches these.
    let grant = Grant {
        id: Uuid::new_v4().to_string(),
        client_id: client.id.clone(),
        user_id: user.id,
        scope: scope.clone(),
        auth_time,
        created_at: ctx.now,
        expires_at: ctx.now + client.access_token_ttl,
    };
    ctx.app.store.create_grant(&grant, None).await?;
    let aud = crate::jwt::Audience::One(ctx.app.config.audience.clone());
    let subject = Subject::User {
        user,
        grant_id: &grant.id,
        auth_time,
    };
    let (access_token, _) = issue_access_token(ctx, client, subject, scope, aud)?;
    let mut fields = vec![
        ("access_token".to_owned(), access_token.clone()),
        ("token_type".to_owned(), "Bearer".to_owned()),
        ("expires_in".to_owned(), client.access_token_ttl.to_string()),
        ("scope".to_owned(), scope.to_string()),
    ];
    if with_id_token {
        let t = IdTokenFor {
            user,
            scope,
            auth_time,
            nonce,
            access_token: Some(&access_token),
            code: None,
        };
        fields.push(("id_token".to_owned(), issue_id_token(ctx, client, t)?));
    }
    Ok(fields)
}
