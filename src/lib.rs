//! Latchkey: an OAuth 2 / OpenID Connect authorization server.
//!
//! The binary (`latchkey serve`, `latchkey client create`, ...) is a thin shell over this
//! library; tests drive the same [`app::router`] in-process.

pub mod admin;
pub mod app;
pub mod cli;
pub mod client_auth;
pub mod client_cache;
pub mod clock;
pub mod config;
pub mod grant;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod model;
pub mod oauth;
pub mod password_verifier;
pub mod revocation_cache;
pub mod secrets;
pub mod store;
pub mod telemetry;
