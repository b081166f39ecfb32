//! An example resource API that trusts Latchkey access tokens.
//!
//! * `GET /me`: users only. A client_credentials token gets 403 `insufficient_scope`.
//! * `GET /reports`: users and clients, with the `read` scope.
//! * `GET /healthz`: public.
//!
//! Run against a local Latchkey:
//!
//! ```text
//! LATCHKEY_ISSUER=http://127.0.0.1:8080 cargo run -p latchkey-resource --example resource_api
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/me
//! ```
//!
//! `API_AUDIENCE` sets the audience the API expects (default: the issuer URL, Latchkey's
//! default `tokens.audience`); `LISTEN` the address (default 127.0.0.1:3000).

use axum::routing::get;
use axum::{Extension, Json, Router};
use latchkey_resource::{Authenticated, AuthenticatedUser, BearerLayer, Validator};
use serde_json::{Value, json};

/// The API's routes; the validator is shared by all of them.
pub fn app(validator: Validator) -> Router {
    Router::new()
        .route("/me", get(me))
        .route(
            "/reports",
            get(reports).route_layer(BearerLayer::new(validator.clone()).require_scope("read")),
        )
        .route("/healthz", get(|| async { "ok" }))
        .layer(Extension(validator))
}

/// Users only: the extractor turns client tokens away.
async fn me(AuthenticatedUser(claims): AuthenticatedUser) -> Json<Value> {
    Json(json!({
        "user": claims.sub(),
        "via_client": claims.client_id(),
        "scopes": claims.scopes(),
    }))
}

/// Users and clients; the layer on the route has already required `read`.
async fn reports(Authenticated(claims): Authenticated) -> Json<Value> {
    let on_behalf_of = match claims.user_id() {
        Some(user) => json!({ "user": user }),
        None => json!({ "client": claims.client_id() }),
    };
    Json(json!({ "reports": ["2024-q4", "2025-q1"], "for": on_behalf_of }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer =
        std::env::var("LATCHKEY_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let audience = std::env::var("API_AUDIENCE").unwrap_or_else(|_| issuer.clone());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());

    let validator = Validator::new(issuer, audience)?;
    // Fail now, not on the first request, if the issuer cannot be reached.
    validator.preload().await?;

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("resource API on http://{listen}");
    axum::serve(listener, app(validator)).await?;
    Ok(())
}
