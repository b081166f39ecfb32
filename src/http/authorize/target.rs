//! Where an authorization response goes (RFC 6749 §3.1.2, §4.1.2.1; RFC 9207): the proven
//! redirect URI, the response mode, and the error that is a page until the URI is proven.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::model::Client;
use crate::oauth::OAuthError;

use super::super::pages::{error_page, form_post};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseType {
    Code,
    Token,
    IdTokenToken,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// Where an authorization response may go: a redirect URI that matched the client's
/// registration exactly. Only [`RedirectTarget::exact`] makes one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RedirectTarget {
    uri: String,
    pub(super) mode: ResponseMode,
    pub(super) state: Option<String>,
}

impl RedirectTarget {
    /// RFC 6749 §3.1.2.3, OIDC Core §3.1.2.1: the redirect URI must be registered; it may be
    /// omitted only by a plain OAuth client with exactly one.
    pub(super) fn exact(
        client: &Client,
        asked: Option<&str>,
        openid: bool,
    ) -> Result<(RedirectTarget, bool), OAuthError> {
        let uri = match asked {
            Some(a) => client
                .redirect_uri_matching(a)
                .map(|_| a.to_owned())
                .ok_or_else(|| {
                    OAuthError::invalid_request("redirect_uri is not registered for this client")
                })?,
            None if openid => return Err(OAuthError::invalid_request("redirect_uri is required")),
            None => match client.redirect_uris.as_slice() {
                [only] => only.clone(),
                _ => return Err(OAuthError::invalid_request("redirect_uri is required")),
            },
        };
        Ok((
            RedirectTarget {
                uri,
                mode: ResponseMode::Query,
                state: None,
            },
            asked.is_some(),
        ))
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Sends `params` (plus `state` and `iss`, RFC 9207) to the client in the response mode.
    pub fn respond(&self, issuer: &str, mut params: Vec<(String, String)>) -> Response {
        if let Some(state) = &self.state {
            params.push(("state".into(), state.clone()));
        }
        params.push(("iss".into(), issuer.to_owned()));
        let encoded = || {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &params {
                s.append_pair(k, v);
            }
            s.finish()
        };
        let location = match self.mode {
            ResponseMode::FormPost => return form_post(&self.uri, &params),
            ResponseMode::Query => {
                let sep = if self.uri.contains('?') { '&' } else { '?' };
                format!("{}{sep}{}", self.uri, encoded())
            }
            ResponseMode::Fragment => format!("{}#{}", self.uri, encoded()),
        };
        see_other(&location)
    }

    pub fn error(&self, issuer: &str, e: &OAuthError) -> Response {
        let params = vec![
            ("error".into(), e.code().into()),
            ("error_description".into(), e.description.to_string()),
        ];
        let mut res = self.respond(issuer, params);
        res.extensions_mut()
            .insert(super::super::response::LogNote {
                client_id: None,
                error: Some(e.code()),
                cause: e.cause.clone(),
            });
        res
    }
}

/// 303 See Other (RFC 9700 §4.12: never 307 after a POST with credentials).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(header::LOCATION, v);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(_) => error_page(&OAuthError::invalid_request(
            "the redirect URI cannot be used",
        )),
    }
}

/// An /authorize failure: a page before the redirect URI is proven, a redirect after.
pub enum AuthorizeError {
    Page(OAuthError),
    Redirect(Box<RedirectTarget>, OAuthError),
}

impl From<OAuthError> for AuthorizeError {
    fn from(e: OAuthError) -> Self {
        AuthorizeError::Page(e)
    }
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(e: crate::store::StoreError) -> Self {
        AuthorizeError::Page(e.into())
    }
}
