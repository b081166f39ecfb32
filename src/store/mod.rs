//! Persistence. `Store` is the one interface; `SqliteStore` (embedded default) and `PgStore`
//! (production) implement it from one body of SQL (see `sql.rs`). Methods are named for
//! intent, each atomic; one-time credentials go in as hashes.

mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::clock::UnixTime;
use crate::model::{
    AuthCodeRecord, Client, Grant, PendingRequest, Redeem, Session, SigningKeyRecord, User,
};
use crate::oauth::{OAuthError, ScopeSet, TokenHash};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, or no connection freed up in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint refused the write.
    #[error("already exists ({constraint})")]
    Conflict { constraint: String },
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
                constraint: db.constraint().unwrap_or("unique").to_owned(),
            },
            // SQLITE_BUSY / SQLITE_CANTOPEN and friends: the file is locked or unreadable.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("5" | "6" | "14" | "261" | "517")) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(format!("migration failed: {e}"))
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => OAuthError::temporarily_unavailable(e),
            StoreError::Conflict { .. } | StoreError::Other(_) => OAuthError::server_error(e),
        }
    }
}

/// A refresh token as stored (its hash is the key).
#[derive(Clone, Debug)]
pub struct RefreshRecord {
    pub grant: Grant,
    /// Whether the grant (the token's family) was revoked.
    pub grant_revoked: bool,
    /// The scope this token grants (the grant's original scope).
    pub scope: ScopeSet,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
    /// Once spent: the successor's hash and, within the grace period, the nonce it was
    /// derived with (base64url).
    pub successor_hash: Option<TokenHash>,
    pub successor_nonce: Option<String>,
    /// The grant's user, read with the token; `None` once the user is deleted.
    pub user: Option<User>,
}

/// Outcome of presenting a refresh token (RFC 9700 §4.14.2).
#[derive(Debug)]
pub enum Rotation {
    /// First use: spent; the successor (whose hash was given) is now the live token.
    Rotated(RefreshRecord),
    /// A retry within the grace period: the same successor is returned again.
    Retried(RefreshRecord),
    /// A rotated token came back after the grace period: the whole family is revoked.
    Reused,
    /// Unknown, expired, or its family revoked or expired.
    Invalid,
}

/// Settings for one rotation.
#[derive(Clone, Copy, Debug)]
pub struct RotatePolicy {
    pub now: UnixTime,
    pub grace_secs: i64,
    pub idle_ttl: i64,
    /// The random input the successor was derived with, kept through the grace period.
    pub nonce: [u8; 16],
}

/// Throttle limits for failed password attempts.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleLimit {
    pub max_failures: i64,
    pub window_secs: i64,
    pub lock_secs: i64,
}

/// What counts as expired for one housekeeping pass.
#[derive(Clone, Copy, Debug)]
pub struct PurgeCutoffs {
    pub now: UnixTime,
    /// Grants whose family ended before this go (late enough that their access tokens
    /// have expired too).
    pub grants_before: UnixTime,
    /// Throttle records whose window started before this, and are not locked, go.
    pub throttle_before: UnixTime,
    /// Successor nonces of tokens spent before this are cleared (the grace period is over).
    pub nonces_before: UnixTime,
    pub batch: i64,
}

/// Rows deleted by one housekeeping pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct Purged {
    pub refresh_tokens: u64,
    pub grants: u64,
    pub revoked_access_tokens: u64,
    pub throttle: u64,
    pub browser: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// A round trip to the database.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Stores `value` unless the setting exists; returns the value now stored.
    async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError>;

    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError>;
    async fn clients(&self) -> Result<Vec<Client>, StoreError>;
    /// A cheap summary of the client table that changes when clients are added, removed or
    /// re-registered: lets callers skip re-reading it.
    async fn clients_fingerprint(&self) -> Result<(i64, i64, i64), StoreError>;
    /// Every registered redirect URI of every client (for CORS origins).
    async fn registered_redirect_uris(&self) -> Result<Vec<String>, StoreError>;
    /// Deletes the client and revokes every grant it holds.
    async fn delete_client(&self, id: &str, now: UnixTime) -> Result<bool, StoreError>;

    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError>;
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Deletes the user and revokes every grant they hold.
    async fn delete_user(&self, id: Uuid, now: UnixTime) -> Result<bool, StoreError>;
    async fn set_password(&self, id: Uuid, hash: &str, now: UnixTime) -> Result<bool, StoreError>;
    async fn set_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    async fn insert_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    async fn keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    async fn retire_key(&self, kid: &str, now: UnixTime) -> Result<bool, StoreError>;

    /// Records a new grant and, if given, its first refresh token.
    async fn create_grant(
        &self,
        grant: &Grant,
        refresh: Option<(&TokenHash, UnixTime)>,
    ) -> Result<(), StoreError>;
    /// Makes a grant created with a code live for its full lifetime, with its first refresh
    /// token; false if the grant was revoked meanwhile (a code replay raced the redemption).
    async fn activate_grant(
        &self,
        grant_id: &str,
        expires_at: UnixTime,
        refresh: Option<(&TokenHash, UnixTime)>,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Spends a refresh token and records its successor, in one atomic step.
    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        successor: &TokenHash,
        policy: RotatePolicy,
    ) -> Result<Rotation, StoreError>;
    /// A refresh token's record, whatever its state.
    async fn refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, StoreError>;
    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> Result<(), StoreError>;
    async fn grant_revoked(&self, grant_id: &str) -> Result<bool, StoreError>;

    async fn revoke_access_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError>;
    /// Whether an access token was revoked: by its jti, through its grant, or because its
    /// client (if given) was deleted.
    async fn access_token_revoked(
        &self,
        jti: &str,
        grant_id: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// The latest `locked_until` of the two throttle keys, if it is after `now`.
    async fn login_locked_until(
        &self,
        user_key: &str,
        ip_key: &str,
        now: UnixTime,
    ) -> Result<Option<UnixTime>, StoreError>;
    /// Counts a password attempt against both keys before it is verified, in one atomic
    /// step, so that parallel attempts cannot all pass a lock check; a key reaching its
    /// limit is locked. False, with nothing counted, when either key is locked at `now`.
    async fn begin_login_attempt(
        &self,
        user_key: &str,
        ip_key: &str,
        now: UnixTime,
        user: ThrottleLimit,
        ip: ThrottleLimit,
    ) -> Result<bool, StoreError>;
    /// The counted attempt succeeded: the user's count is cleared, the IP's given back.
    async fn login_succeeded(
        &self,
        user_key: &str,
        ip_key: &str,
        ip: ThrottleLimit,
    ) -> Result<(), StoreError>;

    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    async fn session(&self, id: &TokenHash, now: UnixTime) -> Result<Option<Session>, StoreError>;
    async fn delete_session(&self, id: &TokenHash) -> Result<bool, StoreError>;

    async fn put_pending(&self, req: &PendingRequest) -> Result<(), StoreError>;
    async fn pending(&self, id: &str, now: UnixTime) -> Result<Option<PendingRequest>, StoreError>;
    /// Moves a pending request to another session (the one a login just created).
    async fn rebind_pending(
        &self,
        id: &str,
        from: &TokenHash,
        to: &TokenHash,
    ) -> Result<bool, StoreError>;
    /// Removes and returns a pending request of `session`: one caller gets it.
    async fn take_pending(
        &self,
        id: &str,
        session: &TokenHash,
        now: UnixTime,
    ) -> Result<Option<PendingRequest>, StoreError>;

    async fn insert_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError>;
    /// Spends a code by one conditional write (RFC 6749 §4.1.2: single use).
    async fn redeem_code(&self, hash: &TokenHash, now: UnixTime) -> Result<Redeem, StoreError>;

    /// The scope a user has consented to for a client, if any.
    async fn consent(&self, user_id: Uuid, client_id: &str)
    -> Result<Option<ScopeSet>, StoreError>;
    /// Adds `scope` to what the user consented to for the client, atomically: of two
    /// concurrent approvals neither loses the other's scopes. Returns the merged scope.
    async fn merge_consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        scope: &ScopeSet,
        now: UnixTime,
    ) -> Result<ScopeSet, StoreError>;

    /// Deletes up to `cutoffs.batch` expired rows of each kind.
    async fn purge_expired(&self, cutoffs: PurgeCutoffs) -> Result<Purged, StoreError>;
}

/// Connection settings shared by both backends.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// Opens the store a URL names (`sqlite:…` or `postgres://…`), without migrating.
pub async fn connect(url: &str, settings: PoolSettings) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, settings).await?))
    } else {
        Ok(Arc::new(PgStore::connect(url, settings).await?))
    }
}

pub(crate) fn join(items: &[String]) -> String {
    items.join(" ")
}

pub(crate) fn split(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}
