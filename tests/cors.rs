//! CORS for the endpoints browser apps call directly, from the origins of registered
//! redirect URIs only; never on /authorize or the pages (RFC 9700 §2.6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{bare_http, code_client};
use common::{Backend, Res, TestServer};
use latchkey::admin::{self, NewClient};
use latchkey::oauth::GrantType;
use reqwest::Method;

const APP: &str = "https://app.example";

/// The browser-facing endpoints, with the method a browser app uses on each.
const BROWSER_API: &[(&str, &str)] = &[
    ("POST", "/token"),
    ("GET", "/userinfo"),
    ("POST", "/userinfo"),
    ("GET", "/jwks"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("POST", "/revoke"),
];

/// Never CORS: the authorization endpoint, the pages and the back-channel endpoints.
const NO_CORS: &[(&str, &str)] = &[
    ("GET", "/authorize"),
    ("POST", "/authorize"),
    ("GET", "/authorize/resume"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/consent"),
    ("POST", "/consent"),
    ("GET", "/logout"),
    ("POST", "/logout"),
    ("POST", "/introspect"),
];

async fn send(
    srv: &TestServer,
    method: &str,
    path: &str,
    origin: Option<&str>,
    preflight: bool,
) -> Res {
    let m = if preflight {
        Method::OPTIONS
    } else {
        Method::from_bytes(method.as_bytes()).unwrap()
    };
    let mut req = bare_http().request(m, srv.url(path));
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if preflight {
        req = req.header("access-control-request-method", method).header(
            "access-control-request-headers",
            "authorization, content-type",
        );
    } else if method == "POST" {
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=x");
    }
    TestServer::read(req.send().await.unwrap()).await
}

fn vary_has_origin(res: &Res) -> bool {
    res.headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("origin"))
}

// SECURITY-TESTS: UR-05
async fn registered_origins_are_echoed_on_the_browser_api(b: Backend) {
    let srv = TestServer::start(b).await;
    code_client(&srv, false).await;
    srv.client(NewClient {
        name: "Native".into(),
        public: true,
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec!["http://127.0.0.1:9000/cb".into()],
        ..Default::default()
    })
    .await;
    srv.state.refresh_cors().await.unwrap();
    for &(method, path) in BROWSER_API {
        let rule = format!("{method} {path}");
        for origin in [APP, "http://127.0.0.1:9000"] {
            let res = send(&srv, method, path, Some(origin), false).await;
            assert!(res.status < 500, "{rule}: {}", res.text);
            assert_eq!(
                res.header("access-control-allow-origin"),
                Some(origin),
                "{rule} from {origin}"
            );
            assert!(vary_has_origin(&res), "{rule}: Vary: Origin");
            let pre = send(&srv, method, path, Some(origin), true).await;
            assert!(
                pre.status == 200 || pre.status == 204,
                "{rule} preflight: {}",
                pre.status
            );
            assert_eq!(
                pre.header("access-control-allow-origin"),
                Some(origin),
                "{rule}"
            );
            let methods = pre.header("access-control-allow-methods").unwrap_or("");
            assert!(
                methods.contains(method),
                "{rule}: allows {method}: {methods}"
            );
            let headers = pre
                .header("access-control-allow-headers")
                .unwrap_or("")
                .to_ascii_lowercase();
            assert!(headers.contains("authorization"), "{rule}: {headers}");
            assert!(vary_has_origin(&pre), "{rule}: preflight Vary: Origin");
        }
        for origin in [
            "https://evil.example",
            "http://app.example",
            "https://app.example.evil.example",
            "https://evil.example/https://app.example",
            "https://app.example:8443",
            "null",
        ] {
            for preflight in [false, true] {
                let res = send(&srv, method, path, Some(origin), preflight).await;
                assert!(
                    res.header("access-control-allow-origin").is_none(),
                    "{rule} from {origin} (preflight {preflight})"
                );
            }
        }
        let res = send(&srv, method, path, None, false).await;
        assert!(
            res.header("access-control-allow-origin").is_none(),
            "{rule}: no Origin"
        );
    }
    // Never a wildcard, never credentials.
    for &(method, path) in BROWSER_API {
        let res = send(&srv, method, path, Some(APP), false).await;
        assert_ne!(res.header("access-control-allow-origin"), Some("*"));
        assert_ne!(res.header("access-control-allow-credentials"), Some("true"));
    }
}

// SECURITY-TESTS: UR-05
async fn authorize_and_the_pages_never_answer_cors(b: Backend) {
    let srv = TestServer::start(b).await;
    code_client(&srv, false).await;
    srv.state.refresh_cors().await.unwrap();
    for &(method, path) in NO_CORS {
        for preflight in [false, true] {
            let res = send(&srv, method, path, Some(APP), preflight).await;
            assert!(res.status < 500, "{method} {path}: {}", res.text);
            assert!(
                res.header("access-control-allow-origin").is_none(),
                "{method} {path} (preflight {preflight})"
            );
            assert!(res.header("access-control-allow-methods").is_none());
        }
    }
}

// SECURITY-TESTS: UR-05
async fn a_deleted_clients_origin_is_no_longer_allowed(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = code_client(&srv, false).await;
    srv.state.refresh_cors().await.unwrap();
    let res = send(&srv, "GET", "/jwks", Some(APP), false).await;
    assert_eq!(res.header("access-control-allow-origin"), Some(APP));
    admin::delete_client(srv.store(), &client.id, srv.now())
        .await
        .unwrap();
    srv.state.refresh_cors().await.unwrap();
    let res = send(&srv, "GET", "/jwks", Some(APP), false).await;
    assert!(res.header("access-control-allow-origin").is_none());
}

both_backends! {
    registered_origins_are_echoed_on_the_browser_api,
    authorize_and_the_pages_never_answer_cors,
    a_deleted_clients_origin_is_no_longer_allowed,
}
