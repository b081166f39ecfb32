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
