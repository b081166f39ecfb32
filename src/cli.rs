//! The command line (a public contract: flags and `--json` shapes are relied on by tools).
//! Parsing, dispatch and printing only; the work is in `admin` and `app`.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::admin::{self, AdminError, NewClient, NewUser};
use crate::app::{self, AppState};
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::keys;
use crate::model::{AuthMethod, Client, Profile, User};
use crate::oauth::{GrantType, KeyAlg, Password};
use crate::store::Store;
use crate::telemetry;

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

#[derive(Debug, Subcommand)]
enum ClientCmd {
    /// Register a client; a confidential client's secret is printed once.
    Create(CreateClient),
    List(JsonFlag),
    Show {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and revoke every token it holds.
    Delete {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Args)]
struct JsonFlag {
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CreateClient {
    #[arg(long)]
    name: String,
    /// A public client (no secret; PKCE required).
    #[arg(long)]
    public: bool,
    /// authorization_code, implicit, password, client_credentials or refresh_token; repeatable.
    #[arg(long = "grant-type", value_parser = parse_grant)]
    grant_types: Vec<GrantType>,
    /// An exact redirect URI; repeatable.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// A post-logout redirect URI (OIDC RP-Initiated Logout); repeatable.
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Space-separated scopes the client may ask for (and gets when it asks for none).
    #[arg(long)]
    scope: Option<String>,
    /// An RFC 8707 resource (token audience) the client may ask for; repeatable.
    #[arg(long = "resource")]
    resources: Vec<String>,
    /// Access-token lifetime in seconds (default 3600).
    #[arg(long)]
    access_token_ttl: Option<i64>,
    /// Refresh tokens unused this long die (default: tokens.refresh_idle_ttl_secs).
    #[arg(long)]
    refresh_idle_ttl: Option<i64>,
    /// A refresh family dies this long after sign-in (default: tokens.refresh_absolute_ttl_secs).
    #[arg(long)]
    refresh_absolute_ttl: Option<i64>,
    /// Skip the consent page.
    #[arg(long)]
    first_party: bool,
    /// Allow only this token-endpoint authentication method.
    #[arg(long, value_parser = parse_auth_method)]
    auth_method: Option<AuthMethod>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Create a user; the password is read from standard input.
    Create(CreateUser),
    List(JsonFlag),
    Show {
        /// The user's id or username.
        #[arg(allow_hyphen_values = true)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a user and revoke their tokens.
    Delete {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Set a new password, read from standard input.
    SetPassword {
        #[arg(allow_hyphen_values = true)]
        user: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Refuse the user's logins and tokens until enabled.
    Disable {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    Enable {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
}

#[derive(Debug, Args)]
struct CreateUser {
    #[arg(long)]
    username: String,
    #[arg(long)]
    email: Option<String>,
    /// Mark the email address as verified.
    #[arg(long)]
    email_verified: bool,
    /// Full name.
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    given_name: Option<String>,
    #[arg(long)]
    family_name: Option<String>,
    /// Read the password from standard input (one line). Passwords are never taken from argv.
    #[arg(long, required = true)]
    password_stdin: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Every key with its state (next, active, retiring, retired) and dates.
    List(JsonFlag),
    /// Make a new signing key: active at once, or with --staged published first.
    Rotate {
        #[arg(long, value_parser = parse_alg)]
        alg: Option<KeyAlg>,
        /// Publish now, sign only after one JWKS cache lifetime (the normal path).
        #[arg(long)]
        staged: bool,
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a key from JWKS at once (a leaked key).
    Retire {
        /// Key ids are base64url and may start with "-".
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    s.parse().map_err(|_| {
        "expected authorization_code, implicit, password, client_credentials or refresh_token"
            .to_owned()
    })
}

fn parse_alg(s: &str) -> Result<KeyAlg, String> {
    KeyAlg::parse(s).ok_or_else(|| "expected RS256, ES256 or EdDSA".to_owned())
}

fn parse_auth_method(s: &str) -> Result<AuthMethod, String> {
    AuthMethod::parse(s)
        .ok_or_else(|| "expected client_secret_basic, client_secret_post or none".to_owned())
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

fn read_password() -> Result<Password> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let pw = line.strip_suffix('\n').unwrap_or(&line);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    if pw.is_empty() {
        return Err(UsageError("no password on standard input".into()).into());
    }
    Ok(Password::new(pw))
}

fn client_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.id,
        "name": c.name,
        "type": c.kind.as_str(),
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "scope": c.scopes.to_string(),
        "resources": c.resources,
        "access_token_ttl": c.access_token_ttl,
        "refresh_idle_ttl": c.refresh_idle_ttl,
        "refresh_absolute_ttl": c.refresh_absolute_ttl,
        "first_party": c.first_party,
        "token_endpoint_auth_method": c.auth_method.map(AuthMethod::as_str),
        "created_at": c.created_at,
    })
}

fn print_client(c: &Client) {
    println!("client_id:     {}", c.id);
    println!("name:          {}", c.name);
    println!("type:          {}", c.kind.as_str());
    println!(
        "grant types:   {}",
        c.grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("scope:         {}", c.scopes);
    println!("redirect uris: {}", c.redirect_uris.join(" "));
    println!("token ttl:     {}s", c.access_token_ttl);
}

async fn client(cmd: ClientCmd, config: &Config) -> Result<()> {
    let store = open(config).await?;
    let now = Clock::System.now();
    match cmd {
        ClientCmd::Create(a) => {
            let hasher = app::secret_hasher(config, store.as_ref()).await?;
            let req = NewClient {
                name: a.name,
                public: a.public,
                grant_types: a.grant_types,
                redirect_uris: a.redirect_uris,
                post_logout_redirect_uris: a.post_logout_redirect_uris,
                scope: a.scope,
                resources: a.resources,
                access_token_ttl: a.access_token_ttl,
                refresh_idle_ttl: a.refresh_idle_ttl,
                refresh_absolute_ttl: a.refresh_absolute_ttl,
                first_party: a.first_party,
                auth_method: a.auth_method,
            };
            let (c, secret) = admin::create_client(
                store.as_ref(),
                &hasher,
                req,
                config.keys.retention_secs,
                now,
            )
            .await?;
            if a.json {
                let mut v = client_json(&c);
                if let Some(s) = &secret {
                    v["client_secret"] = json!(s.secret());
                }
                println!("{v}");
            } else {
                print_client(&c);
                if let Some(s) = &secret {
                    println!("client_secret: {}", s.secret());
                    println!("(the secret is shown only now; store it safely)");
                }
            }
        }
        ClientCmd::List(f) => {
            let clients = store.clients().await?;
            if f.json {
                println!(
                    "{}",
                    serde_json::Value::Array(clients.iter().map(client_json).collect())
                );
            } else {
                for c in &clients {
                    println!("{}  {}  {}", c.id, c.kind.as_str(), c.name);
                }
            }
        }
        ClientCmd::Show { id, json } => {
            let c = admin::client(store.as_ref(), &id).await?;
            if json {
                println!("{}", client_json(&c))
            } else {
                print_client(&c)
            }
        }
        ClientCmd::Delete { id } => {
            admin::delete_client(store.as_ref(), &id, now).await?;
            println!("deleted client {id}");
        }
    }
    Ok(())
}

fn user_json(u: &User) -> serde_json::Value {
    json!({
        "id": u.id.to_string(),
        "username": u.username,
        "name": u.profile.name,
        "given_name": u.profile.given_name,
        "family_name": u.profile.family_name,
        "email": u.profile.email,
        "email_verified": u.profile.email_verified,
        "disabled": u.disabled,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

fn print_user(u: &User) {
    println!("id:       {}", u.id);
    println!("username: {}", u.username);
    println!("name:     {}", u.profile.name.as_deref().unwrap_or(""));
    println!("email:    {}", u.profile.email.as_deref().unwrap_or(""));
    println!("disabled: {}", u.disabled);
}

async fn user(cmd: UserCmd, config: &Config) -> Result<()> {
    let store = open(config).await?;
    let now = Clock::System.now();
    let max = config.login.max_password_bytes;
    match cmd {
        UserCmd::Create(a) => {
            let password = read_password()?;
            let req = NewUser {
                username: a.username,
                profile: Profile {
                    name: a.name,
                    given_name: a.given_name,
                    family_name: a.family_name,
                    email: a.email,
                    email_verified: a.email_verified,
                },
            };
            let u = admin::create_user(store.as_ref(), req, password, max, now).await?;
            if a.json {
                println!("{}", user_json(&u))
            } else {
                print_user(&u)
            }
        }
        UserCmd::List(f) => {
            let users = store.users().await?;
            if f.json {
                println!(
                    "{}",
                    serde_json::Value::Array(users.iter().map(user_json).collect())
                );
            } else {
                for u in &users {
                    println!(
                        "{}  {}{}",
                        u.id,
                        u.username,
                        if u.disabled { "  (disabled)" } else { "" }
                    );
                }
            }
        }
        UserCmd::Show { user, json } => {
            let u = admin::user(store.as_ref(), &user).await?;
            if json {
                println!("{}", user_json(&u))
            } else {
                print_user(&u)
            }
        }
        UserCmd::Delete { user } => {
            admin::delete_user(store.as_ref(), &user, now).await?;
            println!("deleted user {user}");
        }
        UserCmd::SetPassword { user, .. } => {
            let password = read_password()?;
            admin::set_password(store.as_ref(), &user, password, max, now).await?;
            println!("password changed for {user}");
        }
        UserCmd::Disable { user } => {
            admin::set_disabled(store.as_ref(), &user, true, now).await?;
            println!("disabled {user}");
        }
        UserCmd::Enable { user } => {
            admin::set_disabled(store.as_ref(), &user, false, now).await?;
            println!("enabled {user}");
        }
    }
    Ok(())
}

async fn keys_cmd(cmd: KeysCmd, config: &Config) -> Result<()> {
    let store = open(config).await?;
    let now = Clock::System.now();
    let retention = config.keys.retention_secs;
    match cmd {
        KeysCmd::List(f) => {
            keys::ensure_signing_key(store.as_ref(), config.key_alg, now).await?;
            let list = admin::list_keys(store.as_ref(), now, retention).await?;
            if f.json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                for k in &list {
                    println!(
                        "{}  {:<5}  {:<8}  activates_at={}{}",
                        k.kid,
                        k.alg,
                        k.state,
                        k.activates_at,
                        k.published_until
                            .map(|u| format!("  published_until={u}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        KeysCmd::Rotate { alg, staged, json } => {
            let lead = staged.then(|| keys::staging_lead(config.keys.jwks_max_age_secs));
            let info = admin::rotate_keys(store.as_ref(), alg.unwrap_or(config.key_alg), now, lead)
                .await?;
            if json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                println!(
                    "new {} key {} ({}), signing from {}",
                    info.alg, info.kid, info.state, info.activates_at
                );
                println!(
                    "running servers pick it up within {} s",
                    config.keys.reload_secs
                );
            }
        }
        KeysCmd::Retire { kid } => {
            admin::retire_key(store.as_ref(), &kid, config.key_alg, now, retention).await?;
            println!(
                "retired key {kid}; it leaves JWKS within {} s",
                config.keys.reload_secs
            );
        }
    }
    Ok(())
}
