//! Settings of a [`Validator`]: issuer, audience, leeway, clock, cache policy, HTTP client.

use std::time::Duration;

use crate::clock::Clock;
use crate::error::ConfigError;
use crate::jwks::{CachePolicy, JwksCache};
use crate::validator::Validator;

/// Builds a [`Validator`]; see [`Validator::builder`].
#[derive(Debug)]
#[must_use]
pub struct ValidatorBuilder {
    issuer: String,
    audience: String,
    leeway: Duration,
    clock: Clock,
    jwks_uri: Option<String>,
    http: Option<reqwest::Client>,
    allow_http: bool,
    policy: CachePolicy,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl ValidatorBuilder {
    pub(crate) fn new(issuer: String, audience: String) -> ValidatorBuilder {
        ValidatorBuilder {
            issuer,
            audience,
            leeway: Duration::from_secs(30),
            clock: Clock::system(),
            jwks_uri: None,
            http: None,
            allow_http: false,
            policy: CachePolicy {
                refetch_interval: 10,
                default_max_age: 300,
                max_max_age: 86400,
                max_stale: 3600,
            },
        }
    }

    /// Clock skew tolerated on `exp` and `nbf`. Default 30 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Where time comes from. Default [`Clock::system`]; tests pass [`Clock::fixed`].
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The shortest time between two JWKS fetch attempts, including refetches for unknown
    /// kids and retries while the issuer is down. Default 10 s.
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.policy.refetch_interval = secs(interval);
        self
    }

    /// How long keys stay fresh when the JWKS response has no `max-age`. Default 5 min.
    pub fn default_max_age(mut self, age: Duration) -> Self {
        self.policy.default_max_age = secs(age);
        self
    }

    /// How long past freshness cached keys keep verifying while the issuer cannot be
    /// reached (like `stale-if-error`, RFC 5861). Default 1 hour; zero turns it off.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.policy.max_stale = secs(max_stale);
        self
    }

    /// Skips discovery and reads keys from this JWKS URI.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// The HTTP client for discovery and the JWKS (proxies, custom roots, timeouts).
    /// Default: a client with a 5 s timeout that follows at most 3 redirects.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Allows plain `http://` to a host that is not loopback (a trusted private network).
    /// Keys fetched over plain http can be swapped by anyone on the path, so the default
    /// allows it only for `localhost`, `127.0.0.0/8` and `::1`.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Checks the settings and builds the validator. No request is made yet.
    pub fn build(self) -> Result<Validator, ConfigError> {
        let url = reqwest::Url::parse(&self.issuer)
            .map_err(|_| ConfigError::Issuer(self.issuer.clone()))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(ConfigError::Issuer(self.issuer));
        }
        if !url_ok(&self.issuer, self.allow_http) {
            return Err(ConfigError::InsecureHttp(self.issuer));
        }
        if let Some(uri) = &self.jwks_uri {
            if !reqwest::Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(ConfigError::JwksUri(uri.clone()));
            }
            if !url_ok(uri, self.allow_http) {
                return Err(ConfigError::InsecureHttp(uri.clone()));
            }
        }
        if self.audience.is_empty() {
            return Err(ConfigError::Audience);
        }
        let http = match self.http {
            Some(c) => c,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .map_err(|e| ConfigError::HttpClient(e.to_string()))?,
        };
        let jwks = JwksCache::new(
            http,
            self.issuer.clone(),
            self.jwks_uri,
            self.allow_http,
            self.policy,
        );
        Ok(Validator::assemble(
            self.issuer,
            self.audience,
            secs(self.leeway),
            self.clock,
            jwks,
        ))
    }
}

/// Whether keys may be fetched from `url`: https, or http to loopback (or anywhere when
/// allowed).
pub(crate) fn url_ok(url: &str, allow_http: bool) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    match u.scheme() {
        "https" => true,
        "http" => {
            allow_http
                || u.host_str().is_some_and(|h| {
                    h.eq_ignore_ascii_case("localhost")
                        || h.trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builder_rules() {
        let ok = |issuer: &str| Validator::new(issuer, "aud").is_ok();
        assert!(ok("https://auth.example.com"));
        assert!(ok("http://127.0.0.1:8080"));
        assert!(ok("http://localhost:8080"));
        assert!(ok("http://[::1]:8080"));
        assert!(!ok("http://auth.example.com"), "plain http off loopback");
        assert!(!ok("ftp://auth.example.com"));
        assert!(!ok("https://auth.example.com?x=1"));
        assert!(!ok("auth.example.com"));
        assert!(
            Validator::builder("http://auth.internal", "aud")
                .allow_http(true)
                .build()
                .is_ok()
        );
        assert!(Validator::new("https://auth.example.com", "").is_err());
        assert!(
            Validator::builder("https://a.example", "aud")
                .jwks_uri("http://a.example/jwks")
                .build()
                .is_err()
        );
    }
}
