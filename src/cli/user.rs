//! `latchkey user ...`: create, list, show, delete, disable and enable users, set passwords.

use std::io::BufRead;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::admin::{self, NewUser};
use crate::clock::Clock;
use crate::config::Config;
use crate::model::{Profile, User};
use crate::oauth::Password;

use super::{JsonFlag, UsageError, open};

#[derive(Debug, Subcommand)]
pub(super) enum UserCmd {
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
pub(super) struct CreateUser {
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

pub(super) async fn user(cmd: UserCmd, config: &Config) -> Result<()> {
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
