//! RFC 6749 §4.3: resource owner password credentials, for confidential clients allowed
//! it. Throttled per user and per IP (RFC 6819 §4.4.3.6); unknown users cost a hash too.

use uuid::Uuid;

use crate::client_auth::AuthenticatedClient;
use crate::model::Grant;
use crate::oauth::{OAuthError, Params, Password, ScopeSet};
use crate::store::ThrottleLimit;

use super::{GrantCtx, IdTokenFor, TokenResponse, audience, first_refresh, user_tokens};

/// Longest username an account can have.
const MAX_USERNAME_BYTES: usize = 255;

/// The same answer for an unknown user, a wrong password and a disabled account.
/// Longest wait for a password-hashing slot before answering 503.
const PASSWORD_QUEUE_WAIT_SECS: u64 = 10;

fn bad_credentials() -> OAuthError {
    OAuthError::invalid_grant("the username or password is incorrect")
}

/// Throttle keys of one attempt. Usernames are matched exactly, so they are counted
/// exactly: "Alice" and "alice" are two accounts, and one's failures do not lock the other.
pub fn throttle_keys(username: &str, peer: Option<std::net::IpAddr>) -> (String, String) {
    let ip = peer
        .map(|p| p.to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    (format!("user:{username}"), format!("ip:{ip}"))
}

/// A refusal if either throttle key is locked at `now`, with the lock's end.
async fn lock_refusal(
    ctx: &GrantCtx<'_>,
    user_key: &str,
    ip_key: &str,
) -> Result<Option<OAuthError>, OAuthError> {
    let until = ctx
        .app
        .store
        .login_locked_until(user_key, ip_key, ctx.now)
        .await?;
    Ok(until.map(|t| OAuthError::too_many_attempts((t - ctx.now) as u64)))
}

/// Checks a username and password with throttling; the one path every login takes.
pub async fn verify_login(
    ctx: &GrantCtx<'_>,
    username: &str,
    password: Password,
) -> Result<crate::model::User, OAuthError> {
    let app = ctx.app;
    let cfg = &app.config.login;
    if password.secret().len() > cfg.max_password_bytes {
        return Err(OAuthError::invalid_request("password is too long"));
    }
    // No account can have such a name (admin::create_user), so the answer is that of any
    // bad credential, without hashing; and it must not reach the store: PostgreSQL refuses
    // NUL and over-long index keys.
    if username.len() > MAX_USERNAME_BYTES || username.chars().any(char::is_control) {
        return Err(bad_credentials());
    }
    let (user_key, ip_key) = throttle_keys(username, ctx.peer);
    let limit = |max_failures| ThrottleLimit {
        max_failures,
        window_secs: cfg.failure_window_secs,
        lock_secs: cfg.lock_secs,
    };
    let (user_limit, ip_limit) = (limit(cfg.user_max_failures), limit(cfg.ip_max_failures));
    // A locked attempt is refused before any hashing, without queueing for a turn.
    if let Some(refusal) = lock_refusal(ctx, &user_key, &ip_key).await? {
        return Err(refusal);
    }
    let user = app.store.user_by_username(username).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let active = user.as_ref().is_some_and(|u| !u.disabled);
    // The attempt is counted (atomically, refused if a lock was set meanwhile) when it is
    // admitted, and settled before its turn ends: a burst queued behind the failure that
    // sets a lock is never hashed, while only admitted attempts count ahead of their
    // outcome, fewer per key than its limit, so a burst of right passwords queues and
    // succeeds. A flood queues, but not forever: past the wait it is told to come back.
    let wait = std::time::Duration::from_secs(PASSWORD_QUEUE_WAIT_SECS);
    let cap = |l: ThrottleLimit| usize::try_from(l.max_failures - 1).unwrap_or(1);
    let keys = [
        (user_key.as_str(), cap(user_limit)),
        (ip_key.as_str(), cap(ip_limit)),
    ];
    let turn = tokio::time::timeout(wait, app.passwords.turn(keys))
        .await
        .map_err(|_| OAuthError::temporarily_unavailable("password verification queue is full"))?
        .map_err(OAuthError::server_error)?;
    // Once counted, the attempt is settled even if the client goes away meanwhile (the
    // request's future is dropped, the task is not): a closed connection must not leave a
    // failure counted against a right password.
    let store = app.store.clone();
    let (now, keys) = (ctx.now, (user_key.clone(), ip_key.clone()));
    let admitted = tokio::spawn(async move {
        let (user_key, ip_key) = keys;
        if !store
            .begin_login_attempt(&user_key, &ip_key, now, user_limit, ip_limit)
            .await?
        {
            return Ok(Attempt::Locked);
        }
        let ok = turn
            .verify(password, hash)
            .await
            .map_err(OAuthError::server_error)?;
        if !(ok && active) {
            return Ok(Attempt::Failed); // already counted
        }
        store.login_succeeded(&user_key, &ip_key, ip_limit).await?;
        Ok::<_, OAuthError>(Attempt::Verified)
    });
    match admitted.await.map_err(OAuthError::server_error)?? {
        Attempt::Verified => user.ok_or_else(bad_credentials),
        Attempt::Failed => Err(bad_credentials()),
        Attempt::Locked => {
            let refusal = lock_refusal(ctx, &user_key, &ip_key).await?;
            Err(refusal.unwrap_or_else(|| OAuthError::too_many_attempts(1)))
        }
    }
}

/// How an admitted attempt ended.
enum Attempt {
    Verified,
    Failed,
    Locked,
}

pub async fn handle(
    ctx: &GrantCtx<'_>,
    client: &AuthenticatedClient,
    p: &Params,
) -> Result<TokenResponse, OAuthError> {
    let c = client.client();
    // RFC 6749 §4.3.2: username and password are required.
    let username = p.required("username")?;
    let password = Password::new(p.required("password")?);
    // RFC 6749 §3.3: scope within the client's.
    let scope = ScopeSet::grant(p.get("scope"), &c.scopes)?;
    let aud = audience(ctx, c, p)?;
    let user = verify_login(ctx, username, password).await?;

    let first = first_refresh(ctx, c)?;
    let grant = Grant {
        id: Uuid::new_v4().to_string(),
        client_id: c.id.clone(),
        user_id: user.id,
        scope: scope.clone(),
        auth_time: ctx.now,
        created_at: ctx.now,
        expires_at: first.expires_at,
    };
    ctx.app
        .store
        .create_grant(&grant, first.row.as_ref().map(|(h, e)| (h, *e)))
        .await?;

    let t = IdTokenFor {
        user: &user,
        scope: &scope,
        auth_time: ctx.now,
        nonce: None,
        access_token: None,
        code: None,
    };
    user_tokens(ctx, c, t, &grant.id, aud, first.token)
}
