//! `latchkey keys ...`: list, rotate and retire signing keys.

use anyhow::Result;
use clap::Subcommand;

use crate::admin::{self};
use crate::clock::Clock;
use crate::config::Config;
use crate::keys;
use crate::oauth::KeyAlg;

use super::{JsonFlag, open};

#[derive(Debug, Subcommand)]
pub(super) enum KeysCmd {
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

fn parse_alg(s: &str) -> Result<KeyAlg, String> {
    KeyAlg::parse(s).ok_or_else(|| "expected RS256, ES256 or EdDSA".to_owned())
}

pub(super) async fn keys_cmd(cmd: KeysCmd, config: &Config) -> Result<()> {
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
