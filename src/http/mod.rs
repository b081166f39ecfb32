//! HTTP: the route table and the only code that knows axum. Paths are constants shared
//! with discovery, so the two cannot disagree.

pub mod authorize;
pub mod detach;
pub mod discovery;
pub mod extract;
pub mod finish;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod log;
pub mod login;
pub mod logout;
pub mod pages;
pub mod response;
pub mod revoke;
pub mod session;
pub mod token;
pub mod userinfo;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Response, StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::app::AppState;
use crate::oauth::{ErrorKind, OAuthError};

pub const AUTHORIZE: &str = "/authorize";
pub const AUTHORIZE_RESUME: &str = "/authorize/resume";
pub const LOGIN: &str = "/login";
pub const CONSENT: &str = "/consent";
pub const LOGOUT: &str = "/logout";
pub const STYLESHEET: &str = "/static/latchkey.css";
pub const TOKEN: &str = "/token";
pub const JWKS: &str = "/jwks";
pub const USERINFO: &str = "/userinfo";
pub const REVOKE: &str = "/revoke";
pub const INTROSPECT: &str = "/introspect";
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";

/// Every route, with the layers that shape errors into the protocol's form.
pub fn routes(state: Arc<AppState>) -> Router {
    // Endpoints browser apps call directly get CORS for their registered origins (RFC 9700
    // §2.6); /authorize and the pages never do.
    let cors_state = state.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            cors_state.cors_allows(origin)
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    // Endpoints that write run to completion even if their client hangs up (see detach);
    // the read-only ones are not worth a task each.
    let whole = || middleware::from_fn(detach::run_to_completion);
    let browser_api = Router::new()
        .route(TOKEN, post(token::token).layer(whole()))
        .route(JWKS, get(jwks::jwks))
        .route(
            USERINFO,
            get(userinfo::userinfo_get).post(userinfo::userinfo_post),
        )
        .route(REVOKE, post(revoke::revoke).layer(whole()))
        .route(OPENID_CONFIGURATION, get(discovery::openid_configuration))
        .route(OAUTH_METADATA, get(discovery::oauth_metadata))
        .layer(cors);
    Router::new()
        .merge(browser_api)
        .route(
            AUTHORIZE,
            get(authorize::authorize_get)
                .post(authorize::authorize_post)
                .layer(whole()),
        )
        .route(AUTHORIZE_RESUME, get(authorize::resume).layer(whole()))
        .route(
            LOGIN,
            get(login::login_get).post(login::login_post).layer(whole()),
        )
        .route(
            CONSENT,
            get(login::consent_get)
                .post(login::consent_post)
                .layer(whole()),
        )
        .route(
            LOGOUT,
            get(logout::logout).post(logout::logout).layer(whole()),
        )
        .route(STYLESHEET, get(pages::stylesheet))
        .route(INTROSPECT, post(introspect::introspect))
        .route(HEALTHZ, get(health::healthz))
        .route(READYZ, get(health::readyz))
        .route(METRICS, get(health::metrics))
        .fallback(not_found)
        .layer(middleware::map_response(method_not_allowed_as_json))
        .with_state(state)
}

async fn not_found() -> OAuthError {
    OAuthError::new(ErrorKind::NotFound, "no such endpoint")
}

/// axum answers a wrong method with an empty 405 (and `Allow`); give it a JSON body.
async fn method_not_allowed_as_json(res: Response<Body>) -> Response<Body> {
    if res.status() != StatusCode::METHOD_NOT_ALLOWED {
        return res;
    }
    let allow = res.headers().get(axum::http::header::ALLOW).cloned();
    let mut json =
        OAuthError::new(ErrorKind::MethodNotAllowed, "method not allowed").into_response();
    if let Some(allow) = allow {
        json.headers_mut().insert(axum::http::header::ALLOW, allow);
    }
    json
}
