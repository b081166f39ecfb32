//! The embedded store: one SQLite file in WAL mode. Readers run in parallel; writers take
//! turns on an in-process queue (fair, no polling) and, against other processes such as
//! the CLI, on `busy_timeout`, instead of failing with "database is locked".

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::PoolSettings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// SQLite has one writer at a time; queueing here avoids its busy handler's sleeps.
    writer: Arc<tokio::sync::Mutex<()>>,
    acquire_timeout: Duration,
}

impl SqliteStore {
    /// Opens (creating if needed, with its folder) the SQLite file `url` names.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, super::StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| super::StoreError::Other(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(settings.acquire_timeout.max(Duration::from_secs(1)))
            .foreign_keys(true);
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                super::StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            acquire_timeout: settings.acquire_timeout,
        })
    }

    /// A turn to write, waited for at most the acquire timeout.
    async fn write_turn(
        &self,
    ) -> Result<Option<tokio::sync::MutexGuard<'_, ()>>, super::StoreError> {
        tokio::time::timeout(self.acquire_timeout, self.writer.lock())
            .await
            .map(Some)
            .map_err(|_| super::StoreError::Unavailable("timed out waiting to write".into()))
    }
}

super::sql::sql_store!(SqliteStore, sqlx::Sqlite, "sqlite", MIGRATOR);

impl SqliteStore {
    /// Spends `presented` if it is live and records its successor; `None` if it was not
    /// spendable. SQLite cannot write inside `WITH`: three statements in one transaction,
    /// which cost little on an in-process file (the caller holds the write turn).
    async fn spend_refresh(
        &self,
        presented: &TokenHash,
        successor: &TokenHash,
        policy: RotatePolicy,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let now = policy.now;
        let mut tx = self.pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2, successor_hash = $3, successor_nonce = $4 \
             WHERE hash = $1 AND used_at IS NULL AND expires_at > $2 \
             AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id \
                         AND g.revoked_at IS NULL AND g.expires_at > $2)",
        )
        .bind(&presented.0)
        .bind(now)
        .bind(&successor.0)
        .bind(URL_SAFE_NO_PAD.encode(policy.nonce))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 0 {
            // Even an UPDATE of no row took the write lock: give it back now, not whenever
            // the dropped transaction's rollback runs (a reader upgrading to a writer on
            // another connection meanwhile gets "database is locked" at once).
            tx.rollback().await?;
            return Ok(None);
        }
        let row = sqlx::query(&refresh_select())
            .bind(&presented.0)
            .fetch_one(&mut *tx)
            .await?;
        let record = refresh_row(&row)?;
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, grant_id, scope, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING",
        )
        .bind(&successor.0)
        .bind(&record.grant.id)
        .bind(record.scope.to_string())
        .bind(now)
        .bind((now + policy.idle_ttl).min(record.grant.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(record))
    }
}

impl SqliteStore {
    /// `Store::begin_login_attempt`: both keys counted in one transaction, or neither.
    async fn count_login_attempt(
        &self,
        user_key: &str,
        ip_key: &str,
        now: UnixTime,
        user: ThrottleLimit,
        ip: ThrottleLimit,
    ) -> Result<bool, StoreError> {
        // SQLite needs a WHERE in an upsert's SELECT (a parsing ambiguity otherwise).
        let count = count_failure_sql("$1", "$2", "$3", "$4", "$5", "WHERE true");
        // Every caller takes the user key first, then the IP key: no lock cycle.
        let mut tx = self.pool.begin().await?;
        for (key, limit) in [(user_key, user), (ip_key, ip)] {
            let counted = sqlx::query(&count)
                .bind(key)
                .bind(now)
                .bind(limit.max_failures)
                .bind(limit.window_secs)
                .bind(limit.lock_secs)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !counted {
                return Ok(false); // rolled back: nothing counted
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// `Store::login_succeeded`: the user's count cleared, the IP's given back.
    async fn settle_login(
        &self,
        user_key: &str,
        ip_key: &str,
        ip: ThrottleLimit,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(user_key)
            .execute(&mut *tx)
            .await?;
        sqlx::query(GIVE_BACK_SQL)
            .bind(ip_key)
            .bind(ip.max_failures)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
