//! The issuer's keys, cached: discovery read once for `jwks_uri` (OpenID Connect Discovery
//! §4), the JWKS kept for its Cache-Control `max-age`, refetched for an unknown `kid` at
//! most once per refetch interval, and served stale while the issuer is unreachable.

use std::sync::{Arc, RwLock};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::{Error, FetchError};
use crate::jwk::{KeySet, VerifyKey, max_age};

/// Largest JWKS or discovery document read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// How long keys are trusted, in seconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CachePolicy {
    /// No fetch attempt within this long of the previous one.
    pub refetch_interval: i64,
    /// Freshness when the JWKS response has no `max-age`.
    pub default_max_age: i64,
    /// Upper bound on any `max-age`.
    pub max_max_age: i64,
    /// How long past freshness cached keys still verify while refetching fails.
    pub max_stale: i64,
}

struct Cached {
    keys: KeySet,
    fresh_until: i64,
}

#[derive(Default)]
struct FetchState {
    jwks_uri: Option<String>,
    last_attempt: Option<i64>,
    last_error: Option<FetchError>,
}

pub(crate) struct JwksCache {
    http: reqwest::Client,
    issuer: String,
    discovery_url: String,
    allow_http: bool,
    policy: CachePolicy,
    current: RwLock<Option<Arc<Cached>>>,
    fetch: Mutex<FetchState>,
}

impl JwksCache {
    pub fn new(
        http: reqwest::Client,
        issuer: String,
        jwks_uri: Option<String>,
        allow_http: bool,
        policy: CachePolicy,
    ) -> JwksCache {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        JwksCache {
            http,
            issuer,
            discovery_url,
            allow_http,
            policy,
            current: RwLock::new(None),
            fetch: Mutex::new(FetchState {
                jwks_uri,
                ..FetchState::default()
            }),
        }
    }

    fn current(&self) -> Option<Arc<Cached>> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key named `kid`, refetching the JWKS when the cache is stale or lacks it.
    pub async fn key(&self, kid: &str, now: i64) -> Result<Arc<VerifyKey>, Error> {
        let seen = self.current();
        if let Some(c) = &seen
            && now < c.fresh_until
        {
            if let Some(key) = c.keys.get(kid) {
                return Ok(key);
            }
            // Perhaps a key rotated in since we fetched; a failure leaves the kid unknown.
            let _ = self.refresh(now, &seen, true).await;
            return self
                .current()
                .and_then(|c| c.keys.get(kid))
                .ok_or(Error::UnknownKey);
        }
        // Stale or empty. Whoever holds a usable key does not queue behind a slow fetch.
        let have_key = seen.as_ref().is_some_and(|c| c.keys.get(kid).is_some());
        let outcome = self.refresh(now, &seen, !have_key).await;
        match self.current() {
            Some(c) if now < c.fresh_until.saturating_add(self.policy.max_stale) => {
                c.keys.get(kid).ok_or(Error::UnknownKey)
            }
            _ => Err(Error::KeysUnavailable(
                outcome.err().unwrap_or(FetchError::CoolingDown),
            )),
        }
    }

    /// Fetches now unless another task just did or the refetch interval has not passed
    /// since the last attempt. `wait: false` gives up at once if a fetch is in flight.
    async fn refresh(
        &self,
        now: i64,
        seen: &Option<Arc<Cached>>,
        wait: bool,
    ) -> Result<(), FetchError> {
        let mut st = if wait {
            self.fetch.lock().await
        } else {
            match self.fetch.try_lock() {
                Ok(st) => st,
                Err(_) => return Ok(()),
            }
        };
        let same = match (seen, &self.current()) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            return Ok(());
        }
        if let Some(t) = st.last_attempt
            && t <= now
            && now < t.saturating_add(self.policy.refetch_interval)
        {
            return Err(st.last_error.clone().unwrap_or(FetchError::CoolingDown));
        }
        self.fetch_locked(&mut st, now).await
    }

    /// Fetches now, whatever the rate limit says (startup, [`crate::Validator::preload`]).
    pub async fn refresh_now(&self, now: i64) -> Result<(), FetchError> {
        let mut st = self.fetch.lock().await;
        self.fetch_locked(&mut st, now).await
    }

    async fn fetch_locked(&self, st: &mut FetchState, now: i64) -> Result<(), FetchError> {
        st.last_attempt = Some(now);
        match self.fetch_keys(st).await {
            Ok((keys, max_age)) => {
                let p = self.policy;
                let age = max_age.unwrap_or(p.default_max_age).clamp(0, p.max_max_age);
                tracing::debug!(
                    keys = keys.len(),
                    max_age = age,
                    "fetched the issuer's JWKS"
                );
                let cached = Arc::new(Cached {
                    keys,
                    fresh_until: now.saturating_add(age),
                });
                match self.current.write() {
                    Ok(mut c) => *c = Some(cached),
                    Err(poisoned) => *poisoned.into_inner() = Some(cached),
                }
                st.last_error = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the issuer's JWKS");
                st.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    async fn fetch_keys(&self, st: &mut FetchState) -> Result<(KeySet, Option<i64>), FetchError> {
        let url = match &st.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let u = self.discover().await?;
                st.jwks_uri = Some(u.clone());
                u
            }
        };
        let (body, cache_control) = match self.get(&url).await {
            Ok(r) => r,
            Err(e) => {
                // A moved JWKS: read discovery again next time.
                if matches!(e, FetchError::Status { status: 404, .. }) {
                    st.jwks_uri = None;
                }
                return Err(e);
            }
        };
        let doc_err = |reason: String| FetchError::Document {
            url: url.clone(),
            reason,
        };
        let keys = KeySet::parse(&body).map_err(doc_err)?;
        if keys.len() == 0 {
            return Err(doc_err("no key usable for verifying access tokens".into()));
        }
        Ok((keys, max_age(cache_control.as_deref())))
    }

    /// Reads `jwks_uri` from the discovery document, whose `issuer` must be ours exactly.
    async fn discover(&self) -> Result<String, FetchError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let url = &self.discovery_url;
        let (body, _) = self.get(url).await?;
        let doc: Discovery = serde_json::from_slice(&body).map_err(|e| FetchError::Document {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if doc.issuer != self.issuer {
            return Err(FetchError::IssuerMismatch {
                expected: self.issuer.clone(),
                found: doc.issuer,
            });
        }
        if !crate::builder::url_ok(&doc.jwks_uri, self.allow_http) {
            return Err(FetchError::Document {
                url: url.clone(),
                reason: format!("jwks_uri {:?} is not an acceptable URL", doc.jwks_uri),
            });
        }
        Ok(doc.jwks_uri)
    }

    /// GET `url`: the body (bounded) and the Cache-Control header.
    async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<String>), FetchError> {
        let http_err = |e: reqwest::Error| FetchError::Http {
            url: url.to_owned(),
            reason: error_chain(&e.without_url()),
        };
        let mut res = self
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(http_err)?;
        if res.status() != http::StatusCode::OK {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: res.status().as_u16(),
            });
        }
        let cache_control = res
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let too_large = || FetchError::Document {
            url: url.to_owned(),
            reason: format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
        };
        if res
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(http_err)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, cache_control))
    }
}

/// An error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
