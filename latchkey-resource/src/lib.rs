//! Validate Latchkey access tokens in a resource API.
//!
//! Latchkey issues RFC 9068 JWT access tokens (`typ: at+jwt`, signed RS256, ES256 or
//! EdDSA, `kid` in the header). A resource API checks them locally with the issuer's
//! published keys (JWKS), without calling the issuer per request. This crate does that
//! check and nothing else: no database, no templates, no server.
//!
//! * [`Validator`]: reads discovery once, caches the JWKS (Cache-Control `max-age`,
//!   rate-limited refetch on an unknown `kid`, stale keys served while the issuer is
//!   down) and validates a token into typed [`Claims`].
//! * [`BearerLayer`]: a tower layer that admits only valid tokens, optionally with
//!   required scopes or a user behind them.
//! * [`Authenticated`] and [`AuthenticatedUser`] (feature `axum`, on by default): axum
//!   extractors.
//! * [`Rejection`]: the RFC 6750 §3 answers: 401 `WWW-Authenticate: Bearer` without a
//!   token, 401 `invalid_token` (saying *expired* when it is), 403 `insufficient_scope`.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use latchkey_resource::{Authenticated, AuthenticatedUser, BearerLayer, Validator};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = Validator::new("https://auth.example.com", "https://api.example.com")?;
//!
//! let app: Router = Router::new()
//!     // users only: a client_credentials token gets 403 insufficient_scope
//!     .route("/me", get(|AuthenticatedUser(c): AuthenticatedUser| async move { c.sub().to_owned() }))
//!     // users and clients, with the "reports:read" scope
//!     .route("/reports", get(|Authenticated(c): Authenticated| async move { c.client_id().to_owned() })
//!         .route_layer(BearerLayer::new(validator.clone()).require_scope("reports:read")))
//!     .layer(BearerLayer::new(validator));
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! * `axum` (default): the extractors and `IntoResponse for Rejection`.
//! * `rustls-tls`: https to the issuer through rustls with the webpki roots. Without a TLS
//!   feature only `http://` issuers can be reached, which is fine for tests on loopback;
//!   alternatively enable a TLS feature of `reqwest` 0.12 yourself, or pass your own client
//!   to [`ValidatorBuilder::http_client`].

#![warn(missing_docs)]

mod builder;
mod claims;
mod clock;
mod error;
mod jwk;
mod jwks;
mod layer;
mod rejection;
mod validator;

#[cfg(feature = "axum")]
mod extract;

pub use builder::ValidatorBuilder;
pub use claims::Claims;
pub use clock::Clock;
pub use error::{ConfigError, Error, FetchError};
#[cfg(feature = "axum")]
pub use extract::{Authenticated, AuthenticatedUser};
pub use layer::{BearerLayer, BearerService};
pub use rejection::{Rejection, bearer_token};
pub use validator::Validator;
