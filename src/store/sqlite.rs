//! The embedded store: one SQLite file in WAL mode. Writers queue on `busy_timeout`
//! instead of failing with "database is locked".

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::PoolSettings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
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
        Ok(Self { pool })
    }
}

super::sql::sql_store!(SqliteStore, sqlx::Sqlite, "sqlite", MIGRATOR);
