//! Client registrations for client authentication, served from memory for a few seconds
//! (`keys.reload_secs`): every token request authenticates its client, and a database
//! round trip for each was the largest cost of client_credentials. A change by the CLI or
//! another replica (a deleted client, a new secret) takes effect once the entry ages out.
//! Unknown ids are never cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::clock::UnixTime;
use crate::model::Client;
use crate::store::{Store, StoreError};

/// Entries kept at most; the cache starts over when full (a flood of distinct ids).
const MAX_ENTRIES: usize = 10_000;

pub struct ClientCache {
    store: Arc<dyn Store>,
    ttl_secs: i64,
    entries: RwLock<HashMap<String, (Arc<Client>, UnixTime)>>,
}

impl ClientCache {
    pub fn new(store: Arc<dyn Store>, ttl_secs: i64) -> Self {
        Self {
            store,
            ttl_secs,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The client `id` as of at most `ttl_secs` ago.
    pub async fn client(&self, id: &str, now: UnixTime) -> Result<Option<Arc<Client>>, StoreError> {
        if let Ok(e) = self.entries.read()
            && let Some((c, at)) = e.get(id)
            && now >= *at
            && now - *at < self.ttl_secs
        {
            return Ok(Some(c.clone()));
        }
        let found = self.store.client(id).await?.map(Arc::new);
        if let Ok(mut e) = self.entries.write() {
            match &found {
                Some(c) => {
                    if e.len() >= MAX_ENTRIES {
                        e.clear();
                    }
                    e.insert(id.to_owned(), (c.clone(), now));
                }
                None => {
                    e.remove(id);
                }
            }
        }
        Ok(found)
    }
}
