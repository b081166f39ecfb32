//! The key ring: which stored key signs and which are published at a given moment.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::clock::UnixTime;
use crate::model::SigningKeyRecord;
use crate::oauth::KeyAlg;
use crate::store::Store;

use super::KeyError;
use super::material::LoadedKey;
use super::rotation::ensure_signing_key;

/// Where a key stands at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not yet signing (staged rotation).
    Next,
    /// Signing.
    Active,
    /// Published so tokens it signed still verify; no longer signing.
    Retiring { until: UnixTime },
    /// Withdrawn.
    Retired,
}

impl KeyState {
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring { .. } => "retiring",
            KeyState::Retired => "retired",
        }
    }
}

/// The state of every record at `now`. Records are sorted by activation; the newest
/// activated, unretired key signs; a key stops signing when its successor activates and
/// stays published for `retention` after that.
pub fn states(records: &[SigningKeyRecord], now: UnixTime, retention: i64) -> Vec<KeyState> {
    let live: Vec<usize> = (0..records.len())
        .filter(|i| records[*i].retired_at.is_none())
        .collect();
    let active = live
        .iter()
        .rev()
        .find(|i| records[**i].activates_at <= now)
        .copied()
        .or_else(|| live.first().copied());
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if r.retired_at.is_some() {
                return KeyState::Retired;
            }
            if Some(i) == active {
                return KeyState::Active;
            }
            if r.activates_at > now {
                return KeyState::Next;
            }
            // Superseded: by the next live key that has activated.
            let superseded_at = live
                .iter()
                .filter(|j| **j > i && records[**j].activates_at <= now)
                .map(|j| records[*j].activates_at)
                .next()
                .unwrap_or(now);
            let until = superseded_at + retention;
            if until > now {
                KeyState::Retiring { until }
            } else {
                KeyState::Retired
            }
        })
        .collect()
}

/// What a server signs and verifies with at one moment, and the JWKS it publishes.
#[derive(Debug)]
pub struct KeyView {
    pub signing: Arc<LoadedKey>,
    pub published: HashMap<String, Arc<LoadedKey>>,
    /// The serialised JWKS document.
    pub jwks: String,
    /// The view holds until this moment (a staged activation or a retention ends).
    valid_until: UnixTime,
    computed_at: UnixTime,
}

impl KeyView {
    pub fn key(&self, kid: &str) -> Option<&Arc<LoadedKey>> {
        self.published.get(kid)
    }
}

struct Loaded {
    records: Vec<SigningKeyRecord>,
    parsed: HashMap<String, Arc<LoadedKey>>,
}

/// The server's key ring: records from the store, parsed keys, and the current view.
pub struct KeyRing {
    retention: i64,
    loaded: RwLock<Arc<Loaded>>,
    view: RwLock<Option<Arc<KeyView>>>,
}

impl KeyRing {
    /// Loads the keys, generating a first one if the store has none that can sign.
    pub async fn open(
        store: &dyn Store,
        alg: KeyAlg,
        retention: i64,
        now: UnixTime,
    ) -> Result<KeyRing, KeyError> {
        ensure_signing_key(store, alg, now).await?;
        let ring = KeyRing {
            retention,
            loaded: RwLock::new(Arc::new(Loaded {
                records: Vec::new(),
                parsed: HashMap::new(),
            })),
            view: RwLock::new(None),
        };
        ring.reload(store).await?;
        Ok(ring)
    }

    /// Re-reads the records; parses only keys not seen before. Cheap when nothing changed.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), KeyError> {
        let records = store.keys().await?;
        let old = self.loaded_now();
        let same = old.records.len() == records.len()
            && old.records.iter().zip(&records).all(|(a, b)| {
                a.kid == b.kid && a.retired_at == b.retired_at && a.activates_at == b.activates_at
            });
        if same {
            return Ok(());
        }
        let mut parsed = HashMap::new();
        for r in records.iter().filter(|r| r.retired_at.is_none()) {
            let key = match old.parsed.get(&r.kid) {
                Some(k) => k.clone(),
                // One bad record must not stop this server from seeing every later change.
                None => match LoadedKey::parse(r) {
                    Ok(k) => Arc::new(k),
                    Err(e) => {
                        tracing::error!(kid = %r.kid, cause = %e, "skipping a signing key that cannot be parsed");
                        continue;
                    }
                },
            };
            parsed.insert(r.kid.clone(), key);
        }
        let loaded = Arc::new(Loaded { records, parsed });
        if let Ok(mut slot) = self.loaded.write() {
            *slot = loaded;
        }
        if let Ok(mut v) = self.view.write() {
            *v = None;
        }
        Ok(())
    }

    fn loaded_now(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The view at `now`, recomputed only when a key event has passed.
    pub fn view(&self, now: UnixTime) -> Result<Arc<KeyView>, KeyError> {
        if let Ok(v) = self.view.read()
            && let Some(v) = v.as_ref()
            && now >= v.computed_at
            && now < v.valid_until
        {
            return Ok(v.clone());
        }
        let view = Arc::new(self.compute(now)?);
        if let Ok(mut slot) = self.view.write() {
            *slot = Some(view.clone());
        }
        Ok(view)
    }

    fn compute(&self, now: UnixTime) -> Result<KeyView, KeyError> {
        let loaded = self.loaded_now();
        let states = states(&loaded.records, now, self.retention);
        let mut signing = None;
        let mut published = HashMap::new();
        let mut valid_until = UnixTime::MAX;
        let mut jwks = Vec::new();
        for (rec, state) in loaded.records.iter().zip(&states) {
            let Some(key) = loaded.parsed.get(&rec.kid) else {
                continue;
            };
            match state {
                KeyState::Retired => continue,
                KeyState::Active => signing = Some(key.clone()),
                KeyState::Next => valid_until = valid_until.min(rec.activates_at),
                KeyState::Retiring { until } => valid_until = valid_until.min(*until),
            }
            published.insert(rec.kid.clone(), key.clone());
            jwks.push(&key.jwk);
        }
        let signing = signing.ok_or(KeyError::NoKey)?;
        let jwks = serde_json::to_string(&serde_json::json!({ "keys": jwks }))
            .map_err(|_| KeyError::NoKey)?;
        Ok(KeyView {
            signing,
            published,
            jwks,
            valid_until,
            computed_at: now,
        })
    }
}
