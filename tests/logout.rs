//! OpenID Connect RP-Initiated Logout 1.0 (`end_session_endpoint`): id_token_hint,
//! registered post_logout_redirect_uri, state; confirmation without a hint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{
    Browser, CB, as_refs, assert_error_page, assert_page_headers, code_params, hidden, param,
    redeem, response_params, set_cookies,
};
use common::{Backend, Res, TestClient, TestServer, form_body};
use latchkey::admin::NewClient;
use latchkey::oauth::GrantType;

const PW: &str = "correct horse battery";
const BYE: &str = "https://app.example/bye";

async fn logout_client(srv: &TestServer) -> TestClient {
    srv.client(NewClient {
        name: "Photo App".into(),
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec![CB.into()],
        post_logout_redirect_uris: vec![BYE.into()],
        scope: Some("openid profile".into()),
        first_party: true,
        ..Default::default()
    })
    .await
}

/// Signs alice in; returns her ID token for `client`.
async fn sign_in(srv: &TestServer, browser: &Browser<'_>, client: &TestClient) -> String {
    let (code, verifier) = browser.code(client, "openid", "alice", PW).await;
    let res = redeem(srv, client, &code, &verifier).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json["id_token"].as_str().unwrap().to_owned()
}

/// Whether the browser's session is still signed in (prompt=none answers with a code).
async fn signed_in(browser: &Browser<'_>, client: &TestClient) -> bool {
    let (params, _) = code_params(client, "openid", &[("prompt", "none")]);
    let res = browser.authorize(&as_refs(&params)).await;
    let (_, got) = response_params(&res, CB);
    match param(&got, "error").as_deref() {
        None => true,
        Some("login_required") => false,
        Some(other) => panic!("unexpected {other}"),
    }
}

async fn logout_get(browser: &Browser<'_>, params: &[(&str, &str)]) -> Res {
    browser.get(&format!("/logout?{}", form_body(params))).await
}

#[track_caller]
fn assert_cleared(res: &Res) {
    let cookies = set_cookies(res);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("lk_session=;") && c.contains("Max-Age=0")),
        "the cookie is cleared: {cookies:?}"
    );
}

// SECURITY-TESTS: RL-09
async fn rp_initiated_logout_with_a_hint_ends_the_session(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = logout_client(&srv).await;
    let discovery = srv.get("/.well-known/openid-configuration").await.json;
    assert_eq!(discovery["end_session_endpoint"], srv.url("/logout"));
    for method in ["GET", "POST"] {
        let browser = Browser::new(&srv);
        let hint = sign_in(&srv, &browser, &client).await;
        assert!(signed_in(&browser, &client).await);
        let params = [
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", BYE),
            ("state", "s 1&x"),
        ];
        let res = if method == "GET" {
            logout_get(&browser, &params).await
        } else {
            browser.post("/logout", &params).await
        };
        assert_eq!(res.status, 303, "{method}: {}", res.text);
        assert_eq!(
            res.header("location"),
            Some(format!("{BYE}?state=s+1%26x").as_str()),
            "{method}"
        );
        assert_cleared(&res);
        assert!(
            !signed_in(&browser, &client).await,
            "{method}: session ended"
        );
        // Logging out twice is harmless.
        let again = if method == "GET" {
            logout_get(&browser, &params).await
        } else {
            browser.post("/logout", &params).await
        };
        assert_eq!(again.status, 303, "{method} twice: {}", again.text);
        assert_eq!(again.header("location"), res.header("location"));
    }
    // client_id may accompany the hint, and must then be its audience.
    let browser = Browser::new(&srv);
    let hint = sign_in(&srv, &browser, &client).await;
    let other = logout_client(&srv).await;
    let res = logout_get(
        &browser,
        &[
            ("id_token_hint", &hint),
            ("client_id", &other.id),
            ("post_logout_redirect_uri", BYE),
        ],
    )
    .await;
    assert_error_page(&res, "client_id is not the hint's audience");
    assert!(signed_in(&browser, &client).await);
    let res = logout_get(
        &browser,
        &[("id_token_hint", &hint), ("client_id", &client.id)],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_page_headers(&res, "signed-out page");
    assert!(!signed_in(&browser, &client).await);
    // An expired hint still names the client and the user (RP-Initiated Logout §2).
    let browser = Browser::new(&srv);
    let hint = sign_in(&srv, &browser, &client).await;
    srv.advance(srv.state.config.tokens.id_token_ttl_secs + 10);
    let res = logout_get(
        &browser,
        &[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE)],
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(!signed_in(&browser, &client).await);
}

async fn an_unregistered_post_logout_redirect_uri_gets_an_error_page(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = logout_client(&srv).await;
    let browser = Browser::new(&srv);
    let hint = sign_in(&srv, &browser, &client).await;
    for uri in [
        "https://evil.example/bye",
        "https://app.example/bye/",
        "https://app.example/bye?x=1",
        "https://APP.example/bye",
        CB,
        "javascript:alert(1)",
    ] {
        for method in ["GET", "POST"] {
            let params = [
                ("id_token_hint", hint.as_str()),
                ("post_logout_redirect_uri", uri),
            ];
            let res = if method == "GET" {
                logout_get(&browser, &params).await
            } else {
                browser.post("/logout", &params).await
            };
            assert_error_page(&res, uri);
            assert!(set_cookies(&res).is_empty(), "{uri}");
        }
        // Without a hint or client_id the client is unknown: nothing is registered.
        let res = logout_get(&browser, &[("post_logout_redirect_uri", BYE)]).await;
        assert_error_page(&res, "no client named");
        assert!(signed_in(&browser, &client).await, "{uri}: still signed in");
    }
    // A broken hint is refused, never trusted.
    let mut forged = hint.clone();
    forged.pop();
    for bad in [forged.as_str(), "garbage"] {
        let res = logout_get(
            &browser,
            &[("id_token_hint", bad), ("post_logout_redirect_uri", BYE)],
        )
        .await;
        assert_error_page(&res, "bad hint");
    }
    assert!(signed_in(&browser, &client).await);
}

// SECURITY-TESTS: RL-09
async fn logout_without_a_hint_asks_first(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    srv.user("bob", PW).await;
    let client = logout_client(&srv).await;
    let browser = Browser::new(&srv);
    sign_in(&srv, &browser, &client).await;
    let other = Browser::new(&srv);
    sign_in(&srv, &other, &client).await;
    let page = other.get("/logout").await;
    let other_csrf = hidden(&page.text, "csrf").unwrap();

    let page = logout_get(
        &browser,
        &[
            ("client_id", &client.id),
            ("post_logout_redirect_uri", BYE),
            ("state", "st"),
        ],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_page_headers(&page, "confirmation page");
    assert!(set_cookies(&page).is_empty());
    assert!(signed_in(&browser, &client).await, "asking ends nothing");
    let csrf = hidden(&page.text, "csrf").unwrap();
    assert_eq!(hidden(&page.text, "state").as_deref(), Some("st"));
    for (rule, token) in [("no token", ""), ("another session's", other_csrf.as_str())] {
        let res = browser
            .post(
                "/logout",
                &[
                    ("csrf", token),
                    ("client_id", &client.id),
                    ("post_logout_redirect_uri", BYE),
                    ("state", "st"),
                ],
            )
            .await;
        if token.is_empty() {
            // A POST without a token is an RP's request (GET or POST, RP-Initiated
            // Logout §2): the confirmation page again.
            assert_eq!(res.status, 200, "{rule}: {}", res.text);
            assert!(hidden(&res.text, "csrf").is_some(), "{rule}");
        } else {
            assert_error_page(&res, rule);
        }
        assert!(set_cookies(&res).is_empty(), "{rule}");
        assert!(signed_in(&browser, &client).await, "{rule}");
    }
    // A hint for another user is no confirmation either.
    let bob_client = logout_client(&srv).await;
    let bob = Browser::new(&srv);
    let (code, verifier) = bob.code(&bob_client, "openid", "bob", PW).await;
    let bobs_hint = redeem(&srv, &bob_client, &code, &verifier).await.json["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = logout_get(&browser, &[("id_token_hint", &bobs_hint)]).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(hidden(&res.text, "csrf").is_some(), "the confirmation form");
    assert!(
        signed_in(&browser, &client).await,
        "bob's hint ends nothing"
    );

    let form = [
        ("csrf", csrf.as_str()),
        ("client_id", client.id.as_str()),
        ("post_logout_redirect_uri", BYE),
        ("state", "st"),
    ];
    let res = browser.post("/logout", &form).await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(
        res.header("location"),
        Some(format!("{BYE}?state=st").as_str())
    );
    assert_cleared(&res);
    assert!(!signed_in(&browser, &client).await);
    assert!(signed_in(&other, &client).await, "other sessions live on");
    // Twice: no error, no 5xx.
    let res = browser.post("/logout", &form).await;
    assert!(res.status < 500, "{}", res.text);
    assert_eq!(res.status, 303, "{}", res.text);
    let res = browser.get("/logout").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(hidden(&res.text, "csrf").is_none(), "nothing to confirm");
}

both_backends! {
    rp_initiated_logout_with_a_hint_ends_the_session,
    an_unregistered_post_logout_redirect_uri_gets_an_error_page,
    logout_without_a_hint_asks_first,
}
