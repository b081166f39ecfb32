//! The production store: PostgreSQL, shared by every replica.

use std::str::FromStr;

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
