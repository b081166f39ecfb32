//! Configuration: compiled-in defaults, then `--config FILE` (TOML), then `LATCHKEY_*`
//! environment variables (`__` separates sections: `LATCHKEY_KEYS__ALGORITHM=ES256`).
//! `RawConfig` is what the sources say; [`Config`] is the validated result.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use crate::oauth::KeyAlg;

mod raw;

pub use raw::{HousekeepingConfig, KeysConfig, LoginConfig, RawConfig, TokensConfig};

/// A configuration problem: one line naming the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn bad(key: &str, problem: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{key}: {problem}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration, built once in `main` and passed down.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// The issuer identifier, without a trailing slash.
    pub issuer: String,
    pub database_url: String,
    pub database_acquire_timeout_secs: u64,
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    pub log_level: String,
    pub client_secret_pepper: Option<String>,
    pub trusted_proxies: Vec<IpAddr>,
    pub shutdown_grace_secs: u64,
    /// `aud` of access tokens when no `resource` is asked for.
    pub audience: String,
    pub tokens: TokensConfig,
    pub key_alg: KeyAlg,
    pub keys: KeysConfig,
    pub login: LoginConfig,
    pub housekeeping: HousekeepingConfig,
}

/// SQLite file used when no database is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/latchkey.db";

impl Config {
    /// Loads defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(bad(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig.merge(Env::prefixed("LATCHKEY_").split("__"));
        let raw: RawConfig = fig.extract().map_err(|e| {
            let first = e
                .into_iter()
                .next()
                .map(|e| e.to_string())
                .unwrap_or_default();
            ConfigError(first.replace('\n', " "))
        })?;
        Config::from_raw(raw)
    }

    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            bad(
                "listen",
                format!("{:?} is not an address like 127.0.0.1:8080", raw.listen),
            )
        })?;
        let issuer = validate_issuer(&raw.issuer)?;
        let database_url = if raw.database_url.is_empty() {
            DEFAULT_DATABASE_URL.to_owned()
        } else {
            raw.database_url.clone()
        };
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| database_url.starts_with(p))
        {
            return Err(bad(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        }
        let log_format = match raw.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(bad("log_format", format!("{other:?} is not text or json"))),
        };
        if tracing_subscriber::EnvFilter::try_new(&raw.log_level).is_err() {
            return Err(bad(
                "log_level",
                "is not a tracing filter such as info or latchkey=debug",
            ));
        }
        let key_alg = KeyAlg::parse(&raw.keys.algorithm)
            .ok_or_else(|| bad("keys.algorithm", "must be RS256, ES256 or EdDSA"))?;
        let trusted_proxies = raw
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|_| bad("trusted_proxies", format!("{p:?} is not an IP address")))
            })
            .collect::<Result<Vec<IpAddr>, _>>()?;
        positive(
            "database_acquire_timeout_secs",
            raw.database_acquire_timeout_secs as i64,
        )?;
        positive(
            "database_max_connections",
            raw.database_max_connections as i64,
        )?;
        positive("tokens.id_token_ttl_secs", raw.tokens.id_token_ttl_secs)?;
        positive(
            "tokens.refresh_idle_ttl_secs",
            raw.tokens.refresh_idle_ttl_secs,
        )?;
        positive(
            "tokens.refresh_absolute_ttl_secs",
            raw.tokens.refresh_absolute_ttl_secs,
        )?;
        positive("tokens.code_ttl_secs", raw.tokens.code_ttl_secs)?;
        if raw.tokens.code_ttl_secs > 600 {
            return Err(bad(
                "tokens.code_ttl_secs",
                "must be at most 600 (RFC 6749 §4.1.2)",
            ));
        }
        if !(0..=60).contains(&raw.tokens.refresh_grace_secs) {
            return Err(bad("tokens.refresh_grace_secs", "must be between 0 and 60"));
        }
        positive("keys.jwks_max_age_secs", raw.keys.jwks_max_age_secs)?;
        positive("keys.retention_secs", raw.keys.retention_secs)?;
        // A key stays published until every token it signed has expired (OIDC Core
        // §10.1.1); access-token TTLs are capped by it at client creation.
        if raw.keys.retention_secs < raw.tokens.id_token_ttl_secs {
            return Err(bad(
                "keys.retention_secs",
                "must be at least tokens.id_token_ttl_secs, or ID tokens outlive their key",
            ));
        }
        positive("keys.reload_secs", raw.keys.reload_secs as i64)?;
        if !(0..=3650).contains(&raw.keys.rotation_period_days) {
            return Err(bad(
                "keys.rotation_period_days",
                "must be 0 (off) or a number of days up to 3650",
            ));
        }
        if raw.keys.rotation_period_days > 0
            && raw.keys.rotation_period_days * 86400 <= 2 * raw.keys.jwks_max_age_secs
        {
            return Err(bad(
                "keys.rotation_period_days",
                "must be longer than twice the JWKS max-age",
            ));
        }
        positive("login.user_max_failures", raw.login.user_max_failures)?;
        positive("login.ip_max_failures", raw.login.ip_max_failures)?;
        positive("login.failure_window_secs", raw.login.failure_window_secs)?;
        positive("login.lock_secs", raw.login.lock_secs)?;
        positive("login.session_ttl_secs", raw.login.session_ttl_secs)?;
        positive(
            "login.max_password_bytes",
            raw.login.max_password_bytes as i64,
        )?;
        positive(
            "housekeeping.interval_secs",
            raw.housekeeping.interval_secs as i64,
        )?;
        positive("housekeeping.batch_size", raw.housekeeping.batch_size)?;
        let audience = if raw.tokens.audience.is_empty() {
            issuer.clone()
        } else {
            raw.tokens.audience.clone()
        };
        Ok(Config {
            listen,
            issuer,
            database_url,
            database_acquire_timeout_secs: raw.database_acquire_timeout_secs,
            database_max_connections: raw.database_max_connections,
            log_format,
            log_level: raw.log_level,
            client_secret_pepper: Some(raw.client_secret_pepper).filter(|p| !p.is_empty()),
            trusted_proxies,
            shutdown_grace_secs: raw.shutdown_grace_secs,
            audience,
            tokens: raw.tokens,
            key_alg,
            keys: raw.keys,
            login: raw.login,
            housekeeping: raw.housekeeping,
        })
    }

    /// The default configuration with another database and issuer (tests, tools).
    pub fn for_database(database_url: &str) -> Result<Config, ConfigError> {
        Config::from_raw(RawConfig {
            database_url: database_url.to_owned(),
            ..RawConfig::default()
        })
    }

    pub fn https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// Absolute URL of an endpoint path such as `/token`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

/// Upper bound of every duration and count: far beyond any sensible value, and small
/// enough that `now + value` can never overflow.
const MAX_SETTING: i64 = 10 * 365 * 86400;

fn positive(key: &str, v: i64) -> Result<(), ConfigError> {
    if v <= 0 {
        Err(bad(key, "must be greater than 0"))
    } else if v > MAX_SETTING {
        Err(bad(key, format!("must be at most {MAX_SETTING}")))
    } else {
        Ok(())
    }
}

fn validate_issuer(raw: &str) -> Result<String, ConfigError> {
    let url =
        url::Url::parse(raw).map_err(|e| bad("issuer", format!("{raw:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad(
            "issuer",
            "must be an https URL (http only for local use)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad(
            "issuer",
            "must not have a query, fragment or user info (OIDC Discovery §3)",
        ));
    }
    // Cookies, codes and tokens would travel in cleartext.
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    if url.scheme() == "http" && !loopback {
        return Err(bad(
            "issuer",
            "must be https (http is allowed only for loopback hosts)",
        ));
    }
    // Endpoints are served at the root of the host.
    if url.path() != "/" {
        return Err(bad(
            "issuer",
            "must not have a path (serve Latchkey at the root of its host)",
        ));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_parses_to_the_compiled_defaults() {
        let text = include_str!("../../config/default.toml");
        let parsed: RawConfig = Figment::from(Toml::string(text)).extract().unwrap();
        assert_eq!(parsed, RawConfig::default());
    }

    #[test]
    fn bad_values_name_their_key() {
        for (raw, key) in [
            (
                RawConfig {
                    listen: "nope".into(),
                    ..Default::default()
                },
                "listen",
            ),
            (
                RawConfig {
                    issuer: "ftp://x".into(),
                    ..Default::default()
                },
                "issuer",
            ),
            (
                RawConfig {
                    issuer: "https://x/?a=1".into(),
                    ..Default::default()
                },
                "issuer",
            ),
            (
                RawConfig {
                    issuer: "http://id.example.com".into(),
                    ..Default::default()
                },
                "issuer",
            ),
            (
                RawConfig {
                    issuer: "https://id.example.com/auth".into(),
                    ..Default::default()
                },
                "issuer",
            ),
            (
                RawConfig {
                    database_url: "mysql://x".into(),
                    ..Default::default()
                },
                "database_url",
            ),
            (
                RawConfig {
                    log_format: "xml".into(),
                    ..Default::default()
                },
                "log_format",
            ),
            (
                RawConfig {
                    keys: KeysConfig {
                        retention_secs: 600,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "keys.retention_secs",
            ),
        ] {
            let err = Config::from_raw(raw).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn audience_defaults_to_the_issuer() {
        let c = Config::from_raw(RawConfig::default()).unwrap();
        assert_eq!(c.audience, "http://127.0.0.1:8080");
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
    }
}
