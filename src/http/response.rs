//! Errors and token responses on the wire: RFC 6749 §5.1/§5.2 JSON, RFC 6750 §3
//! `WWW-Authenticate`. `IntoResponse` has no side effects beyond putting what the
//! request-line logger needs into the response extensions.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::grant::TokenResponse;
use crate::oauth::{ErrorKind, OAuthError};

/// What the request-line logger records about an outcome; never a secret.
#[derive(Clone, Debug, Default)]
pub struct LogNote {
    pub client_id: Option<String>,
    pub error: Option<&'static str>,
    pub cause: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// RFC 6749 §5.2 JSON with `Cache-Control: no-store`; status from the kind.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = ErrorBody {
            error: self.code(),
            error_description: &self.description,
        };
        let mut res = (status, Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, NO_STORE);
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.kind == ErrorKind::InvalidClient {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"latchkey\""),
            );
        }
        if self.close_connection {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(LogNote {
            client_id: None,
            error: Some(self.code()),
            cause: self.cause,
        });
        res
    }
}

/// An error at a bearer-protected resource (RFC 6750 §3).
#[derive(Debug)]
pub enum BearerError {
    /// No token at all: a challenge without an error code (RFC 6750 §3.1).
    Missing,
    Error(OAuthError),
}

impl From<OAuthError> for BearerError {
    fn from(e: OAuthError) -> Self {
        BearerError::Error(e)
    }
}

impl From<crate::store::StoreError> for BearerError {
    fn from(e: crate::store::StoreError) -> Self {
        BearerError::Error(e.into())
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        match self {
            BearerError::Missing => {
                let mut res = StatusCode::UNAUTHORIZED.into_response();
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"latchkey\""),
                );
                res.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
                res
            }
            BearerError::Error(e) => {
                let challenge = match e.kind {
                    ErrorKind::InvalidToken
                    | ErrorKind::InsufficientScope
                    | ErrorKind::InvalidRequest => {
                        // Descriptions are fixed ASCII without quotes or backslashes.
                        format!(
                            "Bearer realm=\"latchkey\", error=\"{}\", error_description=\"{}\"",
                            e.code(),
                            e.description
                        )
                    }
                    _ => String::new(),
                };
                let mut res = e.into_response();
                res.headers_mut().remove(header::WWW_AUTHENTICATE);
                if !challenge.is_empty()
                    && let Ok(v) = HeaderValue::from_str(&challenge)
                {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                res
            }
        }
    }
}

/// RFC 6749 §5.1: 200 JSON, `Cache-Control: no-store`, `Pragma: no-cache`.
pub fn token_response(body: TokenResponse, client_id: &str) -> Response {
    json_no_store(&body, Some(client_id))
}

/// Any JSON answer that must not be cached (token, introspection, userinfo).
pub fn json_no_store(body: &impl Serialize, client_id: Option<&str>) -> Response {
    let mut res = Json(body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res.extensions_mut().insert(LogNote {
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    });
    res
}

/// Adds the client id to whatever answer `res` is, for the request line.
pub fn with_client(mut res: Response, client_id: Option<&str>) -> Response {
    if let Some(id) = client_id {
        let note = res.extensions_mut().get_mut::<LogNote>();
        match note {
            Some(n) => n.client_id = Some(id.to_owned()),
            None => {
                res.extensions_mut().insert(LogNote {
                    client_id: Some(id.to_owned()),
                    ..Default::default()
                });
            }
        }
    }
    res
}
