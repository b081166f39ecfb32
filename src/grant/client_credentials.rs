//! RFC 6749 §4.4: the client acts on its own behalf.

use crate::client_auth::AuthenticatedClient;
use crate::oauth::{OAuthError, Params, ScopeSet};

use super::{GrantCtx, Subject, TokenResponse, audience, issue_access_token};

pub async fn handle(
    ctx: &GrantCtx<'_>,
    client: &AuthenticatedClient,
    p: &Params,
) -> Result<TokenResponse, OAuthError> {
    let c = client.client();
    // RFC 6749 §3.3: the scope must be within the client's; none asked means all of it.
    let scope = ScopeSet::grant(p.get("scope"), &c.scopes)?;
    // RFC 8707 §2: the audience the token is for.
    let aud = audience(ctx, c, p)?;
    // RFC 6749 §4.4.3: no refresh token.
    let (access_token, _) = issue_access_token(ctx, c, Subject::Client, &scope, aud)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: c.access_token_ttl,
        scope: scope.to_string(),
        refresh_token: None,
        id_token: None,
    })
}
