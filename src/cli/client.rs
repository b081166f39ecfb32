//! `latchkey client ...`: register, list, show and delete clients.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::admin::{self, NewClient};
use crate::app;
use crate::clock::Clock;
use crate::config::Config;
use crate::model::{AuthMethod, Client};
use crate::oauth::GrantType;

use super::{JsonFlag, open};

#[derive(Debug, Subcommand)]
pub(super) enum ClientCmd {
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
pub(super) struct CreateClient {
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

fn parse_grant(s: &str) -> Result<GrantType, String> {
    s.parse().map_err(|_| {
        "expected authorization_code, implicit, password, client_credentials or refresh_token"
            .to_owned()
    })
}

fn parse_auth_method(s: &str) -> Result<AuthMethod, String> {
    AuthMethod::parse(s)
        .ok_or_else(|| "expected client_secret_basic, client_secret_post or none".to_owned())
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

pub(super) async fn client(cmd: ClientCmd, config: &Config) -> Result<()> {
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
