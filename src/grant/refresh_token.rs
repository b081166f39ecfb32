//! RFC 6749 §6 with rotation (RFC 9700 §4.14.2): every use spends the token; a reuse after
//! the grace period revokes the family.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::client_auth::AuthenticatedClient;
use crate::oauth::{OAuthError, Params, RefreshToken, ScopeSet};
use crate::secrets;
use crate::store::{RotatePolicy, Rotation};

use super::{GrantCtx, IdTokenFor, TokenResponse, audience, user_tokens};

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

pub async fn handle(
    ctx: &GrantCtx<'_>,
    client: &AuthenticatedClient,
    p: &Params,
) -> Result<TokenResponse, OAuthError> {
    let app = ctx.app;
    let c = client.client();
    let presented = RefreshToken::new(p.required("refresh_token")?);
    let hash = secrets::token_hash(presented.secret());

    // RFC 6749 §6: the token must have been issued to this client.
    // The token with its grant and user, in one lookup.
    let record = app.store.refresh_token(&hash).await?.ok_or_else(invalid)?;
    if record.grant.client_id != c.id {
        return Err(invalid());
    }
    // RFC 6749 §6: a narrower scope may be asked; never a wider one.
    let scope = match p.get("scope") {
        None => record.scope.clone(),
        Some(s) => {
            let asked = ScopeSet::parse(s)?;
            if !asked.is_subset(&record.scope) {
                return Err(OAuthError::invalid_scope(
                    "scope exceeds what was originally granted",
                ));
            }
            asked
        }
    };
    if !scope.is_subset(&c.scopes) {
        return Err(OAuthError::invalid_scope(
            "scope is no longer allowed for this client",
        ));
    }
    let aud = audience(ctx, c, p)?;
    // The user must still exist and be enabled.
    let user = match record.user {
        Some(u) if !u.disabled => u,
        _ => return Err(invalid()),
    };

    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(OAuthError::server_error)?;
    let successor = app.secret_hasher.refresh_successor(&presented, &nonce);
    let policy = RotatePolicy {
        nonce,
        now: ctx.now,
        grace_secs: app.config.tokens.refresh_grace_secs,
        idle_ttl: c
            .refresh_idle_ttl
            .unwrap_or(app.config.tokens.refresh_idle_ttl_secs),
    };
    let (record, successor) = match app
        .store
        .rotate_refresh(&hash, &secrets::token_hash(successor.secret()), policy)
        .await?
    {
        Rotation::Rotated(r) => (r, successor),
        // A retry within the grace period: the successor the first presentation minted.
        Rotation::Retried(r) => {
            let again = r
                .successor_nonce
                .as_deref()
                .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
                .map(|n| app.secret_hasher.refresh_successor(&presented, &n));
            match again {
                Some(s) if r.successor_hash.as_ref() == Some(&secrets::token_hash(s.secret())) => {
                    (r, s)
                }
                _ => return Err(invalid()),
            }
        }
        Rotation::Reused => {
            // The store revoked the family.
            app.revocations.revoked();
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; the grant is revoked",
            ));
        }
        Rotation::Invalid => return Err(invalid()),
    };
    let t = IdTokenFor {
        user: &user,
        scope: &scope,
        auth_time: record.grant.auth_time,
        nonce: None,
        access_token: None,
        code: None,
    };
    user_tokens(
        ctx,
        c,
        t,
        &record.grant.id,
        aud,
        Some(successor.secret().to_owned()),
    )
}
