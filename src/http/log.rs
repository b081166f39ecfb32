//! One line per request, from one place: request id, method, path, status, latency,
//! client_id and, for errors, the code and internal cause. Never a query string, header
//! value or body, so no secret can reach the log.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::response::LogNote;

pub async fn request_line(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let note = res
        .extensions()
        .get::<LogNote>()
        .cloned()
        .unwrap_or_default();
    let client_id = note.client_id.as_deref().unwrap_or("");
    let error = note.error.unwrap_or("");
    let cause = note.cause.as_deref().unwrap_or("");
    if status >= 500 {
        tracing::error!(request_id, %method, path, status, latency_ms, client_id, error, cause, "request");
    } else {
        tracing::info!(request_id, %method, path, status, latency_ms, client_id, error, cause, "request");
    }
    res
}
