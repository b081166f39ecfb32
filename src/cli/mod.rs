//! The command line (a public contract: flags and `--json` shapes are relied on by tools).
//! Parsing, dispatch and printing only; the work is in `admin` and `app`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::admin::AdminError;
use crate::app::{self, AppState};
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::store::Store;
use crate::telemetry;

mod client;
mod signing_keys;
mod user;

use client::{ClientCmd, client};
use signing_keys::{KeysCmd, keys_cmd};
use user::{UserCmd, user};

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "An OAuth 2 / OpenID Connect authorization server"
)]
pub struct Cli {
    /// A TOML configuration file (see config/default.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCmd),
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
}

#[derive(Debug, Args)]
struct JsonFlag {
    #[arg(long)]
    json: bool,
}

/// A usage mistake found after parsing (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// 2 for configuration and usage errors, 1 for everything else.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let usage = err.chain().any(|e| {
        e.is::<ConfigError>()
            || e.is::<UsageError>()
            || matches!(e.downcast_ref::<AdminError>(), Some(AdminError::Invalid(_)))
    });
    if usage { 2 } else { 1 }
}

pub async fn run() -> Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    telemetry::init(config.log_format, &config.log_level);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let store = open(&config).await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Client(cmd) => client(cmd, &config).await,
        Command::User(cmd) => user(cmd, &config).await,
        Command::Keys(cmd) => keys_cmd(cmd, &config).await,
    }
}

async fn open(config: &Config) -> Result<Arc<dyn Store>> {
    let store = app::open_store(config)
        .await
        .context("cannot open the database")?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

async fn serve(config: Config) -> Result<()> {
    let store = app::open_store(&config)
        .await
        .context("cannot open the database")?;
    let state = AppState::build(config, store, Clock::System)
        .await
        .context("cannot start")?;
    let c = &state.config;
    println!(
        "Latchkey {} is running: issuer {}",
        env!("CARGO_PKG_VERSION"),
        c.issuer
    );
    println!(
        "  listening on {}, store {} ({})",
        c.listen,
        state.store.backend(),
        redact_url(&c.database_url)
    );
    println!("  discovery: {}/.well-known/openid-configuration", c.issuer);
    println!("Next: create a client in another terminal:");
    println!(
        "  latchkey client create --name demo --grant-type client_credentials --scope \"api:read\" --json"
    );
    app::serve(state).await?;
    Ok(())
}

/// A database URL without its password, for printing.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
