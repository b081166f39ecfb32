//! The authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636): issuing a code at the
//! end of /authorize, and redeeming it at /token.

use uuid::Uuid;

use crate::client_auth::AuthenticatedClient;
use crate::model::{AuthCodeRecord, Client, CodeBinding, Grant, Redeem, User};
use crate::oauth::{OAuthError, Params, ScopeSet, pkce};
use crate::secrets;

use super::{GrantCtx, IdTokenFor, TokenResponse, audience, first_refresh, user_tokens};

/// Mints a single-use, short-lived code bound to client, user and request; stores its hash.
pub async fn issue_code(
    ctx: &GrantCtx<'_>,
    client: &Client,
    user: &User,
    binding: CodeBinding,
) -> Result<String, OAuthError> {
    let code = secrets::random_token().map_err(OAuthError::server_error)?;
    let code_expires_at = ctx.now + ctx.app.config.tokens.code_ttl_secs;
    // The grant exists from now on (short-lived until redeemed), so that a replay racing
    // the first redemption still finds something to revoke.
    let grant = Grant {
        id: Uuid::new_v4().to_string(),
        client_id: client.id.clone(),
        user_id: user.id,
        scope: ScopeSet::parse(&binding.scope)?,
        auth_time: binding.auth_time,
        created_at: ctx.now,
        expires_at: code_expires_at,
    };
    ctx.app.store.create_grant(&grant, None).await?;
    let record = AuthCodeRecord {
        hash: secrets::token_hash(&code),
        grant_id: grant.id.clone(),
        client_id: client.id.clone(),
        user_id: user.id,
        binding,
        created_at: ctx.now,
        expires_at: code_expires_at,
    };
    ctx.app.store.insert_code(&record).await?;
    Ok(code)
}

fn invalid(why: &'static str) -> OAuthError {
    OAuthError::invalid_grant(why)
}

pub async fn handle(
    ctx: &GrantCtx<'_>,
    client: &AuthenticatedClient,
    p: &Params,
) -> Result<TokenResponse, OAuthError> {
    let app = ctx.app;
    let c = client.client();
    let code = p.required("code")?;
    // RFC 7636 §4.1: a verifier, if sent, must be well-formed.
    let verifier = p.get("code_verifier");
    if verifier.is_some_and(|v| !pkce::is_valid_verifier(v)) {
        return Err(OAuthError::invalid_request("code_verifier is malformed"));
    }
    let aud = audience(ctx, c, p)?;
    // RFC 6749 §4.1.2: single use. The code is spent here, whatever follows.
    let record = match app
        .store
        .redeem_code(&secrets::token_hash(code), ctx.now)
        .await?
    {
        Redeem::Redeemed(r) => r,
        Redeem::AlreadyUsed { grant_id } => {
            // RFC 6749 §4.1.2: a replay revokes what the first redemption issued.
            app.store.revoke_grant(&grant_id, ctx.now).await?;
            app.revocations.revoked();
            return Err(invalid(
                "the code was already used; the tokens it issued are revoked",
            ));
        }
        Redeem::Unknown => return Err(invalid("the code is invalid or expired")),
    };
    let b = &record.binding;
    // RFC 6749 §4.1.3: the code was issued to this client.
    if record.client_id != c.id {
        return Err(invalid("the code was issued to another client"));
    }
    // RFC 6749 §4.1.3: redirect_uri must repeat the authorization request's.
    match p.get("redirect_uri") {
        Some(r) if r == b.redirect_uri => {}
        None if !b.redirect_uri_sent => {}
        _ => {
            return Err(invalid(
                "redirect_uri does not match the authorization request",
            ));
        }
    }
    // RFC 7636 §4.6: the verifier must match the challenge; none may be sent without one.
    match (&b.code_challenge, verifier) {
        (None, None) => {}
        (None, Some(_)) => return Err(invalid("no code_challenge was sent for this code")),
        (Some(_), None) => return Err(invalid("code_verifier is required")),
        (Some(ch), Some(v)) => {
            let ok = match ch.split_once(':') {
                Some(("S256", challenge)) => pkce::s256_matches(v, challenge),
                Some(("plain", challenge)) => secrets::constant_time_eq(v, challenge),
                _ => false,
            };
            if !ok {
                return Err(invalid("code_verifier does not match the code_challenge"));
            }
        }
    }
    let user = match app.store.user(record.user_id).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(invalid("the user is no longer active")),
    };
    let scope = ScopeSet::parse(&b.scope)?;
    let first = first_refresh(ctx, c)?;
    let activated = app
        .store
        .activate_grant(
            &record.grant_id,
            first.expires_at,
            first.row.as_ref().map(|(h, e)| (h, *e)),
            ctx.now,
        )
        .await?;
    // RFC 6749 §4.1.2: this is the first use, so it is answered. A replay that raced it has
    // already revoked the grant: the access token is born dead and no refresh token exists.
    let refresh = first.token.filter(|_| activated);
    let t = IdTokenFor {
        user: &user,
        scope: &scope,
        auth_time: b.auth_time,
        nonce: b.nonce.as_deref(),
        access_token: None,
        code: None,
    };
    user_tokens(ctx, c, t, &record.grant_id, aud, refresh)
}
