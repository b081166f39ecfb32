//! The production store: PostgreSQL, shared by every replica.

use std::str::FromStr;
use std::sync::LazyLock;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::PoolSettings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects lazily: a running server rides out an outage (503s, `/readyz` failing) and
    /// recovers by itself. At start, migrations need the database, so `serve` fails fast with
    /// one line when it is down, for the supervisor to retry.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, super::StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| super::StoreError::Other(format!("bad PostgreSQL URL: {e}")))?
            .application_name("latchkey")
            // NOTICEs ("relation already exists, skipping" on every migrate) would reach
            // the log and every CLI command's stderr; warnings and errors still do.
            .options([
                ("client_min_messages", "warning"),
                // No statement outlives a request: a stuck query ends as an error, not a hang.
                ("statement_timeout", "10s"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options);
        Ok(Self { pool })
    }
}

impl PgStore {
    /// PostgreSQL takes concurrent writers itself: no turn to wait for.
    async fn write_turn(&self) -> Result<Option<()>, super::StoreError> {
        Ok(None)
    }
}

super::sql::sql_store!(PgStore, sqlx::Postgres, "postgres", MIGRATOR);

/// Spends a refresh token and records its successor in one statement, so one round trip
/// and one commit: `spent` matches only a live, unused token of a live grant (of two
/// concurrent presentations, the second waits for the first's row lock, then no longer
/// matches `used_at IS NULL`), and returns it as `refresh_row` reads it.
static SPEND_REFRESH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH spent AS ( \
           UPDATE refresh_tokens r \
           SET used_at = $2, successor_hash = $3, successor_nonce = $4 \
           FROM grants g LEFT JOIN users u ON u.id = g.user_id \
           WHERE r.hash = $1 AND r.used_at IS NULL AND r.expires_at > $2 \
             AND g.id = r.grant_id AND g.revoked_at IS NULL AND g.expires_at > $2 \
           RETURNING {REFRESH_COLUMNS}), \
         successor AS ( \
           INSERT INTO refresh_tokens (hash, grant_id, scope, issued_at, expires_at) \
           SELECT $3, id, rt_scope, $2, LEAST($2 + $5, expires_at) FROM spent \
           ON CONFLICT (hash) DO NOTHING) \
         SELECT * FROM spent"
    )
});

impl PgStore {
    /// Spends `presented` if it is live and records its successor; `None` if it was not
    /// spendable.
    async fn spend_refresh(
        &self,
        presented: &TokenHash,
        successor: &TokenHash,
        policy: RotatePolicy,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        sqlx::query(&SPEND_REFRESH)
            .bind(&presented.0)
            .bind(policy.now)
            .bind(&successor.0)
            .bind(URL_SAFE_NO_PAD.encode(policy.nonce))
            .bind(policy.idle_ttl)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| refresh_row(&r))
            .transpose()
    }
}

/// `Store::begin_login_attempt` in one statement (one round trip, one commit). Both keys are
/// counted only if neither is locked in the statement's snapshot (`free`), and the IP only
/// if the user was (`u` is read first, which also takes the rows in the order every caller
/// does: user, then IP, so no lock cycle). Each upsert checks its own key again on the
/// row's latest version: if the IP was locked by a transaction that committed in between,
/// the user's count stays, so that rare race errs towards locking.
static COUNT_ATTEMPT: LazyLock<String> = LazyLock::new(|| {
    let user = count_failure_sql("$1", "$2", "$3", "$4", "$5", "FROM free");
    let from_ip = "FROM free WHERE EXISTS (SELECT 1 FROM u)";
    let ip = count_failure_sql("$6", "$2", "$7", "$8", "$9", from_ip);
    format!(
        "WITH free AS (SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM login_throttle \
                 WHERE key IN ($1, $6) AND locked_until > $2)), \
             u AS ({user}), i AS ({ip}) \
         SELECT (SELECT COUNT(*) FROM u) + (SELECT COUNT(*) FROM i)"
    )
});

/// `Store::login_succeeded` in one statement: the user's count cleared, the IP's given back.
/// The IP's update reads `cleared`, so the user's row is taken first, as everywhere.
static SETTLE_LOGIN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH cleared AS (DELETE FROM login_throttle WHERE key = $3 RETURNING key) \
         {GIVE_BACK_SQL} AND (SELECT COUNT(*) FROM cleared) >= 0"
    )
});

impl PgStore {
    async fn count_login_attempt(
        &self,
        user_key: &str,
        ip_key: &str,
        now: UnixTime,
        user: ThrottleLimit,
        ip: ThrottleLimit,
    ) -> Result<bool, StoreError> {
        let counted: i64 = sqlx::query_scalar(&COUNT_ATTEMPT)
            .bind(user_key)
            .bind(now)
            .bind(user.max_failures)
            .bind(user.window_secs)
            .bind(user.lock_secs)
            .bind(ip_key)
            .bind(ip.max_failures)
            .bind(ip.window_secs)
            .bind(ip.lock_secs)
            .fetch_one(&self.pool)
            .await?;
        Ok(counted == 2)
    }

    async fn settle_login(
        &self,
        user_key: &str,
        ip_key: &str,
        ip: ThrottleLimit,
    ) -> Result<(), StoreError> {
        sqlx::query(&SETTLE_LOGIN)
            .bind(ip_key)
            .bind(ip.max_failures)
            .bind(user_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
