//! What the configuration sources say: every key with its compiled-in default, before
//! validation (`Config::load` turns it into a `Config`).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: String,
    pub issuer: String,
    pub database_url: String,
    pub database_acquire_timeout_secs: u64,
    pub database_max_connections: u32,
    pub log_format: String,
    pub log_level: String,
    pub client_secret_pepper: String,
    pub trusted_proxies: Vec<String>,
    pub shutdown_grace_secs: u64,
    pub tokens: TokensConfig,
    pub keys: KeysConfig,
    pub login: LoginConfig,
    pub housekeeping: HousekeepingConfig,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            issuer: "http://127.0.0.1:8080".into(),
            database_url: String::new(),
            database_acquire_timeout_secs: 3,
            database_max_connections: 16,
            log_format: "text".into(),
            log_level: "info".into(),
            client_secret_pepper: String::new(),
            trusted_proxies: Vec::new(),
            shutdown_grace_secs: 20,
            tokens: TokensConfig::default(),
            keys: KeysConfig::default(),
            login: LoginConfig::default(),
            housekeeping: HousekeepingConfig::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    pub audience: String,
    pub id_token_ttl_secs: i64,
    pub refresh_idle_ttl_secs: i64,
    pub refresh_absolute_ttl_secs: i64,
    pub refresh_grace_secs: i64,
    pub code_ttl_secs: i64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            audience: String::new(),
            id_token_ttl_secs: 3600,
            refresh_idle_ttl_secs: 14 * 86400,
            refresh_absolute_ttl_secs: 90 * 86400,
            refresh_grace_secs: 2,
            code_ttl_secs: 60,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub algorithm: String,
    pub jwks_max_age_secs: i64,
    pub rotation_period_days: i64,
    pub retention_secs: i64,
    pub reload_secs: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            algorithm: "RS256".into(),
            jwks_max_age_secs: 300,
            rotation_period_days: 0,
            retention_secs: 86400,
            reload_secs: 5,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    pub max_password_bytes: usize,
    pub user_max_failures: i64,
    pub ip_max_failures: i64,
    pub failure_window_secs: i64,
    pub lock_secs: i64,
    pub verify_concurrency: usize,
    pub session_ttl_secs: i64,
    pub require_pkce: bool,
    pub allow_plain_pkce: bool,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_password_bytes: 1024,
            user_max_failures: 5,
            ip_max_failures: 50,
            failure_window_secs: 900,
            lock_secs: 300,
            verify_concurrency: 0,
            session_ttl_secs: 28800,
            require_pkce: false,
            allow_plain_pkce: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HousekeepingConfig {
    pub interval_secs: u64,
    pub batch_size: i64,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        Self {
            interval_secs: 60,
            batch_size: 500,
        }
    }
}
