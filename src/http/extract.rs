//! Extractors. Every rejection is an `OAuthError` in the endpoint's own form, never the
//! framework's plain text (RFC 6749 §3.2, App. B).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;

use crate::app::AppState;
use crate::client_auth::Presented;
use crate::oauth::{ClientSecret, OAuthError, Params};

/// Largest request body accepted (BI-03).
pub const MAX_BODY: usize = 64 * 1024;

/// Parameters that are credentials and must never travel in a URL (RFC 6749 §2.3.1, §3.2).
const NEVER_IN_QUERY: &[&str] = &[
    "client_secret",
    "password",
    "refresh_token",
    "code",
    "code_verifier",
    "token",
    "access_token",
];

/// A form body: `application/x-www-form-urlencoded`, at most 64 KiB, strict UTF-8, no
/// repeated parameters. Credentials in the query string are refused.
pub struct OAuthForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, OAuthError> {
        if let Some(q) = req.uri().query() {
            let query = Params::parse(q.as_bytes())?;
            if NEVER_IN_QUERY.iter().any(|p| query.has(p)) {
                return Err(OAuthError::invalid_request(
                    "credentials must not be sent in the URL",
                ));
            }
        }
        if !is_form(req.headers()) {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let bytes = read_body(req.into_body()).await?;
        Ok(OAuthForm(Params::parse(&bytes)?))
    }
}

pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A sign-in page's form POST (login, consent, logout, `/authorize`): its headers and raw
/// body, or the error page for a body that is not a form or cannot be read.
pub async fn page_form(
    req: Request,
) -> Result<(HeaderMap, axum::body::Bytes), axum::response::Response> {
    let headers = req.headers().clone();
    if !is_form(&headers) {
        return Err(super::pages::error_page(&OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        )));
    }
    let body = read_body(req.into_body())
        .await
        .map_err(|e| super::pages::error_page(&e))?;
    Ok((headers, body))
}

pub async fn read_body(body: Body) -> Result<axum::body::Bytes, OAuthError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        let mut e = OAuthError::invalid_request("the request body is too large or malformed");
        e.close_connection = true;
        e
    })
}

/// How the client authenticated in the headers (RFC 6749 §2.3.1).
pub struct ClientAuthHeader(pub Presented);

impl<S: Send + Sync> FromRequestParts<S> for ClientAuthHeader {
    type Rejection = OAuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, OAuthError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(ClientAuthHeader(Presented::Body));
        };
        let bad = || OAuthError::invalid_client("malformed Basic credentials");
        let value = value.to_str().map_err(|_| bad())?;
        let (scheme, rest) = value.split_once(' ').ok_or_else(bad)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(OAuthError::invalid_client(
                "only Basic client authentication is supported here",
            ));
        }
        let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        // §2.3.1: both parts are form-urlencoded before base64.
        let form_decode = |s: &str| -> Result<String, OAuthError> {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad())
                .and_then(|c| if c.contains('\0') { Err(bad()) } else { Ok(c) })
        };
        let client_id = form_decode(id)?;
        if client_id.is_empty() {
            return Err(bad());
        }
        Ok(ClientAuthHeader(Presented::Basic {
            client_id,
            secret: ClientSecret::new(form_decode(secret)?),
        }))
    }
}

/// The client's IP: the socket peer, or `X-Forwarded-For`'s last hop when the peer is a
/// trusted proxy.
pub struct PeerIp(pub Option<IpAddr>);

impl FromRequestParts<Arc<AppState>> for PeerIp {
    type Rejection = OAuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, OAuthError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let Some(peer) = peer else {
            return Ok(PeerIp(None));
        };
        if !state.config.trusted_proxies.contains(&peer) {
            return Ok(PeerIp(Some(peer)));
        }
        // All X-Forwarded-For lines, read from the right: the first hop that is not one of
        // our proxies is the client; everything left of it is the client's to forge.
        let hops: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip;
            if !state.config.trusted_proxies.contains(&ip) {
                break;
            }
        }
        Ok(PeerIp(Some(client)))
    }
}

/// Where a bearer token was found (RFC 6750 §2).
pub enum BearerSource {
    None,
    Header(String),
}

/// The `Authorization: Bearer` token, if any; a malformed header is `invalid_request`.
pub fn bearer_from_headers(headers: &HeaderMap) -> Result<BearerSource, OAuthError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(BearerSource::None);
    };
    let v = v
        .to_str()
        .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                return Err(OAuthError::invalid_request("the Bearer token is empty"));
            }
            Ok(BearerSource::Header(token.to_owned()))
        }
        // RFC 6750 §3.1: another scheme is no bearer credential at all: a bare challenge.
        _ => Ok(BearerSource::None),
    }
}

/// The `request` query parameter of the sign-in pages (a parked request's id), parsed with
/// our own rules: a repeat or bad encoding is an error page, never framework plain text.
pub struct PendingId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for PendingId {
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        match Params::parse(query.as_bytes()) {
            Ok(p) => Ok(PendingId(p.get("request").map(str::to_owned))),
            Err(e) => Err(super::pages::error_page(&e)),
        }
    }
}
