//! Requests run to completion. hyper drops a request's future when its client hangs up; a
//! future dropped between two statements of a database transaction leaves the work half
//! done, and worse, sqlx 0.8 hands a connection whose `BEGIN` was sent but not yet answered
//! back to the pool inside that transaction (its rollback on drop covers only transactions
//! that had begun), where later statements run without ever committing and their row locks
//! are held until the connection closes: every password grant then waited on the
//! throttle's rows (seen in the bench when oha's deadline cut 32 requests). So each request
//! runs as a task of its own, which the connection only awaits (the endpoints that write:
//! see `http::routes`).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::oauth::OAuthError;

pub async fn run_to_completion(req: Request, next: Next) -> Response {
    match tokio::spawn(next.run(req)).await {
        Ok(res) => res,
        // A panic in a handler: the request fails (the request line logs the cause), the
        // server goes on.
        Err(e) => OAuthError::server_error(e).into_response(),
    }
}
