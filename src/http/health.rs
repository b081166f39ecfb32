//! Liveness (`/healthz`: the process answers), readiness (`/readyz`: the database too) and
//! a few counters in the Prometheus text format (`/metrics`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    match app.store.ping().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => {
            tracing::warn!(cause = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

pub async fn metrics(State(app): State<Arc<AppState>>) -> String {
    format!(
        "# TYPE latchkey_password_verifications_total counter\nlatchkey_password_verifications_total {}\n",
        app.passwords.count()
    )
}
