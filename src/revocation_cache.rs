//! "Not revoked" answers for access tokens, served from memory for a few seconds
//! (`keys.reload_secs`, as for clients): introspection and userinfo are asked about the same
//! token again and again, and the database round trip was most of their cost.
//!
//! Only "not revoked" is cached; a revocation made by this process (at /revoke, a refresh
//! token's reuse, a code's replay) starts a new epoch, and answers from an earlier epoch are
//! not used, so it takes effect here at once. One made by another replica or by the CLI
//! takes effect here once the answer ages out (RL-02 allows a documented TTL of seconds).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::UnixTime;
use crate::store::{Store, StoreError};

/// Entries kept at most; the cache starts over when full (a flood of distinct tokens).
const MAX_ENTRIES: usize = 50_000;

pub struct RevocationCache {
    ttl_secs: i64,
    epoch: AtomicU64,
    /// jti → (when it was found live, the epoch it was found in).
    live: RwLock<HashMap<String, (UnixTime, u64)>>,
}

impl RevocationCache {
    pub fn new(ttl_secs: i64) -> Self {
        Self {
            ttl_secs,
            epoch: AtomicU64::new(0),
            live: RwLock::new(HashMap::new()),
        }
    }

    /// Whether the access token `jti` was revoked: by its jti, through its grant, or by its
    /// client's deletion (see [`Store::access_token_revoked`]). A "no" may be `ttl_secs` old.
    pub async fn access_token_revoked(
        &self,
        store: &dyn Store,
        jti: &str,
        grant_id: Option<&str>,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        // Read before asking the store: an answer that races a revocation is filed under
        // the old epoch, and never used.
        let epoch = self.epoch.load(Ordering::Acquire);
        if let Ok(live) = self.live.read()
            && let Some(&(at, e)) = live.get(jti)
            && e == epoch
            && now >= at
            && now - at < self.ttl_secs
        {
            return Ok(false);
        }
        let revoked = store.access_token_revoked(jti, grant_id, client_id).await?;
        if let Ok(mut live) = self.live.write() {
            if revoked {
                live.remove(jti);
            } else {
                if live.len() >= MAX_ENTRIES {
                    live.clear();
                }
                live.insert(jti.to_owned(), (now, epoch));
            }
        }
        Ok(revoked)
    }

    /// This process revoked a token or a grant: no answer given before counts any more.
    pub fn revoked(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut live) = self.live.write() {
            live.clear();
        }
    }
}
