//! Property tests on the in-process router, both stores: whatever arrives, the answer is a
//! protocol answer — never a 500, a panic or an unparsable error body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use common::{Backend, TestServer};
use latchkey::oauth::GrantType;
use proptest::prelude::*;
use tower::ServiceExt;

const ALLOWED: &[u16] = &[
    200, 302, 303, 400, 401, 403, 404, 405, 413, 415, 429, 431, 503,
];

async fn send(srv: &TestServer, req: Request<Body>) -> (u16, String, Option<String>) {
    let router = latchkey::app::router(srv.state.clone());
    let res = router.oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned(), ct)
}

fn check(status: u16, body: &str, ct: Option<&str>) -> Result<(), TestCaseError> {
    prop_assert!(ALLOWED.contains(&status), "status {status}: {body}");
    if ct.is_some_and(|c| c.starts_with("application/json")) && status >= 400 {
        let v: serde_json::Value =
            serde_json::from_str(body).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        prop_assert!(v["error"].is_string(), "{body}");
    }
    Ok(())
}

/// Form-ish bodies: known parameter names with arbitrary values, and arbitrary bytes.
fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    let names = prop::sample::select(vec![
        "grant_type",
        "code",
        "client_id",
        "client_secret",
        "scope",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "username",
        "password",
        "token",
        "token_type_hint",
        "resource",
        "x",
    ]);
    let pair = (names, "[ -~%+&=]{0,40}").prop_map(|(n, v)| format!("{n}={v}"));
    prop_oneof![
        prop::collection::vec(pair, 0..8).prop_map(|v| v.join("&").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..300),
    ]
}

fn run(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let srv = Arc::new(rt.block_on(TestServer::start(backend)));
    let client =
        rt.block_on(srv.confidential(&[GrantType::ClientCredentials, GrantType::Password], "read"));
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };

    // SECURITY-TESTS: BI-08
    proptest!(config.clone(), |(body in body_strategy(), path in prop::sample::select(vec!["/token", "/revoke", "/introspect", "/userinfo", "/login", "/consent", "/logout", "/authorize"]), basic in prop::option::of("[ -~]{0,60}"))| {
        let mut req = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(b) = basic {
            req = req.header("authorization", format!("Basic {b}"));
        }
        let (status, text, ct) = rt.block_on(send(&srv, req.body(Body::from(body)).unwrap()));
        check(status, &text, ct.as_deref())?;
    });

    // Queries at /authorize: until client_id and redirect_uri are proven, never a redirect.
    proptest!(config.clone(), |(pairs in prop::collection::vec((prop::sample::select(vec!["client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method", "prompt", "max_age", "response_mode", "nonce"]), "[ -~]{0,30}"), 0..8))| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        let (status, text, ct) = rt.block_on(send(&srv, Request::get(format!("/authorize?{}", q.finish())).body(Body::empty()).unwrap()));
        check(status, &text, ct.as_deref())?;
        prop_assert_ne!(status, 303, "no registered client here, so no redirect: {}", text);
    });

    // JWT-like strings as bearer tokens.
    proptest!(config, |(h in "[A-Za-z0-9_-]{0,40}", p in "[A-Za-z0-9_-]{0,80}", s in "[A-Za-z0-9_-]{0,80}")| {
        let token = format!("{h}.{p}.{s}");
        let req = Request::get("/userinfo").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
        let (status, text, ct) = rt.block_on(send(&srv, req));
        check(status, &text, ct.as_deref())?;
        prop_assert_eq!(status, 401);
    });
    let _ = client;
}

#[test]
fn arbitrary_requests_get_protocol_answers_on_sqlite() {
    run(Backend::Sqlite);
}

#[test]
fn arbitrary_requests_get_protocol_answers_on_postgres() {
    run(Backend::Postgres);
}
