//! GET /jwks (RFC 7517 §5): the published public keys, serialised once per key change.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::oauth::OAuthError;

pub async fn jwks(State(app): State<Arc<AppState>>) -> Response {
    match app.keys.view(app.clock.now()) {
        Ok(view) => {
            let mut res = view.jwks.clone().into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            );
            h.insert(header::CACHE_CONTROL, app.jwks_cache_control.clone());
            res
        }
        Err(e) => OAuthError::server_error(e).into_response(),
    }
}
