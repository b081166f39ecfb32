//! The application: shared state, the router with its layers, background tasks, serve.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderValue;
use axum::middleware;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::clock::{Clock, UnixTime};
use crate::config::Config;
use crate::keys::{self, KeyError, KeyRing, KeyView};
use crate::password_verifier::PasswordVerifier;
use crate::secrets::{self, SecretHasher};
use crate::store::{self, PoolSettings, PurgeCutoffs, Store, StoreError};

/// Longest time one request may take, body upload included.
const REQUEST_TIMEOUT_SECS: u64 = 30;

/// Everything a request handler can reach.
pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub keys: KeyRing,
    pub clock: Clock,
    pub secret_hasher: SecretHasher,
    pub passwords: PasswordVerifier,
    /// Clients for authentication, cached for `keys.reload_secs`.
    pub clients: crate::client_cache::ClientCache,
    /// "Not revoked" answers for access tokens, cached for `keys.reload_secs`.
    pub revocations: crate::revocation_cache::RevocationCache,
    pub jwks_cache_control: HeaderValue,
    discovery_cache: Mutex<Option<(Arc<KeyView>, Arc<String>)>>,
    /// Origins of registered redirect URIs, allowed by CORS; refreshed with the keys.
    cors_origins: RwLock<Arc<HashSet<String>>>,
    cors_fingerprint: Mutex<Option<(i64, i64, i64)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{0}")]
    Other(String),
}

/// Opens the configured store (without migrating).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let settings = PoolSettings {
        max_connections: config.database_max_connections,
        acquire_timeout: Duration::from_secs(config.database_acquire_timeout_secs),
    };
    store::connect(&config.database_url, settings).await
}

/// The pepper of client-secret hashes: configured, or generated once and kept in the store.
pub async fn secret_hasher(config: &Config, store: &dyn Store) -> Result<SecretHasher, StartError> {
    let pepper = match &config.client_secret_pepper {
        Some(p) => p.clone(),
        None => {
            let fresh = secrets::random_token().map_err(|e| StartError::Other(e.to_string()))?;
            store.init_setting("client_secret_pepper", &fresh).await?
        }
    };
    Ok(SecretHasher::new(pepper.as_bytes()))
}

impl AppState {
    /// Migrates the store, loads (or creates) keys and builds the state.
    pub async fn build(
        config: Config,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> Result<Arc<AppState>, StartError> {
        store.migrate().await?;
        let now = clock.now();
        let keys = KeyRing::open(
            store.as_ref(),
            config.key_alg,
            config.keys.retention_secs,
            now,
        )
        .await?;
        let secret_hasher = secret_hasher(&config, store.as_ref()).await?;
        let permits = match config.login.verify_concurrency {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        };
        let passwords =
            PasswordVerifier::new(permits).map_err(|e| StartError::Other(e.to_string()))?;
        let jwks_cache_control = HeaderValue::from_str(&format!(
            "public, max-age={}",
            config.keys.jwks_max_age_secs
        ))
        .map_err(|e| StartError::Other(e.to_string()))?;
        let clients =
            crate::client_cache::ClientCache::new(store.clone(), config.keys.reload_secs as i64);
        let revocations =
            crate::revocation_cache::RevocationCache::new(config.keys.reload_secs as i64);
        let state = Arc::new(AppState {
            clients,
            revocations,
            config,
            store,
            keys,
            clock,
            secret_hasher,
            passwords,
            jwks_cache_control,
            discovery_cache: Mutex::new(None),
            cors_origins: RwLock::new(Arc::new(HashSet::new())),
            cors_fingerprint: Mutex::new(None),
        });
        state.refresh_cors().await?;
        Ok(state)
    }

    /// Re-reads the origins of every client's redirect URIs.
    pub async fn refresh_cors(&self) -> Result<(), StoreError> {
        // Re-read only when the client table changed (it may hold many thousands of rows).
        let fingerprint = self.store.clients_fingerprint().await?;
        if self
            .cors_fingerprint
            .lock()
            .is_ok_and(|f| *f == Some(fingerprint))
        {
            return Ok(());
        }
        let origins: HashSet<String> = self
            .store
            .registered_redirect_uris()
            .await?
            .iter()
            .filter_map(|u| url::Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .map(|u| u.origin().ascii_serialization())
            .collect();
        if let Ok(mut slot) = self.cors_origins.write() {
            *slot = Arc::new(origins);
        }
        if let Ok(mut f) = self.cors_fingerprint.lock() {
            *f = Some(fingerprint);
        }
        Ok(())
    }

    pub fn cors_allows(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        self.cors_origins
            .read()
            .is_ok_and(|set| set.contains(origin))
    }

    /// The discovery document, re-serialised only when the key view changes.
    pub fn discovery(&self, now: UnixTime) -> Result<Arc<String>, KeyError> {
        let view = self.keys.view(now)?;
        if let Ok(cache) = self.discovery_cache.lock()
            && let Some((v, body)) = cache.as_ref()
            && Arc::ptr_eq(v, &view)
        {
            return Ok(body.clone());
        }
        let body = Arc::new(crate::http::discovery::document(self, &view).to_string());
        if let Ok(mut cache) = self.discovery_cache.lock() {
            *cache = Some((view, body.clone()));
        }
        Ok(body)
    }
}

/// The router with its layers, outer to inner: request id, request line, routes.
pub fn router(state: Arc<AppState>) -> Router {
    crate::http::routes(state)
        // A request (slow body included) gets at most this long.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(REQUEST_TIMEOUT_SECS),
        ))
        .layer(middleware::from_fn(crate::http::log::request_line))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Background work: key reloads (CLI or replica changes), staged rotation, housekeeping.
pub fn spawn_background(state: Arc<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    let reload = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_secs(state.config.keys.reload_secs));
            loop {
                tick.tick().await;
                rotate_if_due(&state).await;
                if let Err(e) = state.refresh_cors().await {
                    tracing::warn!(cause = %e, "CORS origin refresh failed");
                }
                if let Err(e) = state.keys.reload(state.store.as_ref()).await {
                    tracing::warn!(cause = %e, "key reload failed; serving the keys already loaded");
                }
            }
        })
    };
    let housekeeping = tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(Duration::from_secs(state.config.housekeeping.interval_secs));
        loop {
            tick.tick().await;
            housekeeping(&state).await;
        }
    });
    vec![reload, housekeeping]
}

async fn rotate_if_due(state: &AppState) {
    let period_days = state.config.keys.rotation_period_days;
    if period_days == 0 {
        return;
    }
    let lead = keys::staging_lead(state.config.keys.jwks_max_age_secs);
    let now = state.clock.now();
    let period = period_days * 86400;
    match keys::rotate_if_due(
        state.store.as_ref(),
        state.config.key_alg,
        now,
        period,
        lead,
        state.config.keys.retention_secs,
    )
    .await
    {
        Ok(Some(kid)) => tracing::info!(kid, "staged the next signing key"),
        Ok(None) => {}
        Err(e) => tracing::warn!(cause = %e, "staged rotation failed"),
    }
}

/// Deletes expired rows in small batches until a pass finds nothing (or ten passes ran).
pub async fn housekeeping(state: &AppState) {
    for _ in 0..10 {
        let now = state.clock.now();
        let cutoffs = PurgeCutoffs {
            now,
            grants_before: now - state.config.keys.retention_secs,
            throttle_before: now - state.config.login.failure_window_secs,
            nonces_before: now - state.config.tokens.refresh_grace_secs,
            batch: state.config.housekeeping.batch_size,
        };
        match state.store.purge_expired(cutoffs).await {
            Ok(p) => {
                let total =
                    p.refresh_tokens + p.grants + p.revoked_access_tokens + p.throttle + p.browser;
                if total == 0 {
                    return;
                }
                tracing::debug!(
                    refresh_tokens = p.refresh_tokens,
                    grants = p.grants,
                    revoked = p.revoked_access_tokens,
                    throttle = p.throttle,
                    "purged expired rows"
                );
                tokio::task::yield_now().await;
            }
            Err(e) => {
                tracing::warn!(cause = %e, "housekeeping failed");
                return;
            }
        }
    }
}

/// Serves until SIGTERM/ctrl-c, then lets in-flight requests finish.
pub async fn serve(state: Arc<AppState>) -> Result<(), StartError> {
    let listener = TcpListener::bind(state.config.listen)
        .await
        .map_err(|e| StartError::Other(format!("cannot listen on {}: {e}", state.config.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    tracing::info!(listen = %local, issuer = %state.config.issuer, store = state.store.backend(), "latchkey is serving");
    let background = spawn_background(state.clone());
    let app = router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // On SIGTERM: stop accepting, let requests in flight finish, but no longer than the
    // drain deadline (a stuck client must not keep the process alive).
    let stopping = Arc::new(tokio::sync::Notify::new());
    let signal = {
        let stopping = stopping.clone();
        async move {
            shutdown_signal().await;
            stopping.notify_one();
        }
    };
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(Duration::from_secs(state.config.shutdown_grace_secs)).await;
        tracing::warn!("drain deadline passed; exiting with requests still open");
    };
    let result = tokio::select! {
        r = axum::serve(listener, app).with_graceful_shutdown(signal) => r,
        () = deadline => Ok(()),
    };
    for task in background {
        task.abort();
    }
    result.map_err(|e| StartError::Other(e.to_string()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
