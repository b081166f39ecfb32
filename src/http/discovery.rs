//! OpenID Provider metadata (OIDC Discovery §3) and OAuth AS metadata (RFC 8414 §2): one
//! document, built from the route constants, advertising only what is implemented.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::keys::KeyView;
use crate::oauth::OAuthError;

use super::{AUTHORIZE, INTROSPECT, JWKS, LOGOUT, REVOKE, TOKEN, USERINFO};

/// The metadata document for the current key view.
pub fn document(app: &AppState, view: &KeyView) -> Value {
    let c = &app.config;
    let mut algs: Vec<&str> = view.published.values().map(|k| k.alg.as_str()).collect();
    algs.push(view.signing.alg.as_str());
    algs.sort_unstable();
    algs.dedup();
    let auth_methods = json!(["client_secret_basic", "client_secret_post"]);
    let mut pkce = vec!["S256"];
    if c.login.allow_plain_pkce {
        pkce.push("plain");
    }
    json!({
        "issuer": c.issuer,
        "authorization_endpoint": c.endpoint(AUTHORIZE),
        "token_endpoint": c.endpoint(TOKEN),
        "end_session_endpoint": c.endpoint(LOGOUT),
        "jwks_uri": c.endpoint(JWKS),
        "userinfo_endpoint": c.endpoint(USERINFO),
        "revocation_endpoint": c.endpoint(REVOKE),
        "introspection_endpoint": c.endpoint(INTROSPECT),
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code", "token", "id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "implicit", "client_credentials", "password", "refresh_token"],
        "code_challenge_methods_supported": pkce,
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        // Public clients revoke their own tokens with client_id alone (RFC 7009 §5).
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "name", "given_name",
            "family_name", "preferred_username", "updated_at", "email", "email_verified"
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    })
}

fn respond(app: &AppState) -> Response {
    match app.discovery(app.clock.now()) {
        Ok(body) => {
            let mut res = body.as_ref().clone().into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res.headers_mut()
                .insert(header::CACHE_CONTROL, app.jwks_cache_control.clone());
            res
        }
        Err(e) => OAuthError::server_error(e).into_response(),
    }
}

pub async fn openid_configuration(State(app): State<Arc<AppState>>) -> Response {
    respond(&app)
}

pub async fn oauth_metadata(State(app): State<Arc<AppState>>) -> Response {
    respond(&app)
}
