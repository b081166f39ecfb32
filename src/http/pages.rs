//! Server-rendered pages (login, consent, logout, errors, form_post) and the headers every
//! page carries: no framing, no caching, no referrer, no sniffing (RFC 9700 §4.16).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::oauth::OAuthError;

use super::response::LogNote;

const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the page security headers to `res`.
pub fn secure(mut res: Response, csp: &str) -> Response {
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// Renders a template as a secured HTML page.
pub fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => secure((status, Html(html)).into_response(), PAGE_CSP),
        Err(e) => error_page(&OAuthError::server_error(e)),
    }
}

/// The CSP source that allows a form to reach `uri`: its origin, or its scheme for
/// private-use schemes (whose origin is opaque).
fn form_action_source(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u.origin().ascii_serialization(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => String::new(),
    }
}

/// Renders a page whose form submission ends in a redirect to `redirect_uri`: browsers
/// apply CSP form-action to the redirects that follow a submission too.
pub fn render_redirecting_form(
    status: StatusCode,
    t: &impl Template,
    redirect_uri: &str,
) -> Response {
    let source = form_action_source(redirect_uri);
    let csp = PAGE_CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {source}"),
    );
    match t.render() {
        Ok(html) => secure((status, Html(html)).into_response(), &csp),
        Err(e) => error_page(&OAuthError::server_error(e)),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    message: &'a str,
    code: &'a str,
}

/// An error shown to the user instead of redirecting (RFC 6749 §4.1.2.1): HTML 400, no
/// `Location`.
pub fn error_page(e: &OAuthError) -> Response {
    let status = match e.status() {
        500 => StatusCode::INTERNAL_SERVER_ERROR,
        503 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let page = ErrorPage {
        message: &e.description,
        code: e.code(),
    };
    let mut res = match page.render() {
        Ok(html) => secure((status, Html(html)).into_response(), PAGE_CSP),
        Err(_) => secure((status, "error").into_response(), PAGE_CSP),
    };
    if e.close_connection {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res.extensions_mut().insert(LogNote {
        client_id: None,
        error: Some(e.code()),
        cause: e.cause.clone(),
    });
    res
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPost<'a> {
    action: &'a str,
    fields: &'a [(String, String)],
    nonce: &'a str,
}

/// OAuth 2.0 Form Post Response Mode §2: an auto-submitting form to the redirect URI.
pub fn form_post(action: &str, fields: &[(String, String)]) -> Response {
    let nonce = crate::secrets::random_b64(16).unwrap_or_default();
    let origin = form_action_source(action);
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'"
    );
    match (FormPost {
        action,
        fields,
        nonce: &nonce,
    })
    .render()
    {
        Ok(html) => secure((StatusCode::OK, Html(html)).into_response(), &csp),
        Err(e) => error_page(&OAuthError::server_error(e)),
    }
}

/// The stylesheet of the pages.
pub async fn stylesheet() -> Response {
    let mut res = include_str!("../../static/latchkey.css").into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}
