//! The authorization endpoint (RFC 6749 §4.1.1, §4.1.2.1, §4.2; RFC 9700 §4.1.3; RFC 9207;
//! OIDC Core §3.1.2): client and redirect URI first, error pages before them, redirect
//! errors after, response types and modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{
    Browser, CB, Delivery, as_refs, assert_error_page, assert_redirect_error, code_client,
    code_params, code_request, param, pkce_pair, redeem, response_params, session_cookie,
};
use common::{Backend, TestClient, TestServer, jwt_parts};
use latchkey::admin::{self, NewClient};
use latchkey::oauth::GrantType;

const PW: &str = "correct horse battery";

/// A first-party client allowed the code flow and both implicit response types.
async fn implicit_client(srv: &TestServer) -> TestClient {
    srv.client(NewClient {
        name: "Legacy SPA".into(),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::Implicit],
        redirect_uris: vec![CB.into()],
        scope: Some("openid profile email".into()),
        first_party: true,
        ..Default::default()
    })
    .await
}

/// A browser signed in as alice (through a first-party client, so no consent is stored).
async fn signed_in<'a>(srv: &'a TestServer, client: &TestClient) -> Browser<'a> {
    let browser = Browser::new(srv);
    let (params, _) = code_request(client, "openid");
    let res = browser.sign_in(&as_refs(&params), "alice", PW).await;
    assert_eq!(res.status, 303, "{}", res.text);
    browser
}

// SECURITY-TESTS: AZ-01
async fn unknown_missing_or_deleted_client_gets_an_error_page(b: Backend) {
    let srv = TestServer::start(b).await;
    let gone = code_client(&srv, false).await;
    admin::delete_client(srv.store(), &gone.id, srv.now())
        .await
        .unwrap();
    let browser = Browser::new(&srv);
    let mut pages = Vec::new();
    for (rule, client_id) in [
        ("unknown client_id", "no-such-client"),
        ("no client_id", ""),
        ("deleted client", gone.id.as_str()),
    ] {
        let (params, _) = code_params(&gone, "openid", &[("client_id", client_id)]);
        for res in [
            browser.authorize(&as_refs(&params)).await,
            browser.authorize_post(&as_refs(&params)).await,
        ] {
            assert_error_page(&res, rule);
            assert!(session_cookie(&res).is_none(), "{rule}: no session");
            assert!(!res.text.contains("Photo App"), "{rule}: {}", res.text);
            if !client_id.is_empty() {
                assert!(!res.text.contains(client_id), "{rule}: {}", res.text);
            }
            assert!(!res.text.contains("app.example"), "{rule}: {}", res.text);
            pages.push(res.text);
        }
    }
    // RFC 9700 §4.11.2: an unknown client and a deleted one look the same.
    assert_eq!(pages[0], pages[4], "unknown and deleted clients are alike");
}

// SECURITY-TESTS: AZ-02
async fn unregistered_redirect_uri_gets_an_error_page(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = code_client(&srv, false).await;
    let browser = Browser::new(&srv);
    let (params, _) = code_params(
        &client,
        "openid",
        &[("redirect_uri", "https://evil.example/cb")],
    );
    assert_error_page(&browser.authorize(&as_refs(&params)).await, "GET");
    assert_error_page(&browser.authorize_post(&as_refs(&params)).await, "POST");
    // Even with every other parameter wrong too, nothing goes to the unproven URI.
    let res = browser
        .authorize(&[
            ("client_id", &client.id),
            ("redirect_uri", "https://evil.example/cb"),
            ("response_type", "garbage"),
            ("scope", "admin"),
            ("state", "s"),
        ])
        .await;
    assert_error_page(&res, "all wrong");
}

// SECURITY-TESTS: AZ-03
async fn only_the_byte_identical_redirect_uri_passes(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = code_client(&srv, false).await;
    let with_query = srv
        .client(NewClient {
            name: "Query App".into(),
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec!["https://app.example/cb?a=1".into()],
            scope: Some("openid".into()),
            ..Default::default()
        })
        .await;
    let browser = Browser::new(&srv);
    for near_miss in [
        "https://app.example/cb/",
        "https://app.example/Cb",
        "http://app.example/cb",
        "HTTPS://APP.EXAMPLE/cb",
        "https://app.example/cb?x=1",
        "https://app.example/cb#f",
        "https://app.example/cb%2F..",
        "https://app.example/cb/../evil",
        "https://app.example/cb2",
        "https://app.example:443/cb",
        "https://app.example@evil.example/cb",
        "https://app.example.evil.example/cb",
        "https://app.example/cb ",
        " https://app.example/cb",
    ] {
        let (params, _) = code_params(&client, "openid", &[("redirect_uri", near_miss)]);
        let res = browser.authorize(&as_refs(&params)).await;
        assert_error_page(&res, near_miss);
    }
    for near_miss in ["https://app.example/cb?a=2", "https://app.example/cb"] {
        let (params, _) = code_params(&with_query, "openid", &[("redirect_uri", near_miss)]);
        let res = browser.authorize(&as_refs(&params)).await;
        assert_error_page(&res, near_miss);
    }
    // The exact strings pass (to the login page).
    for (c, uri) in [(&client, CB), (&with_query, "https://app.example/cb?a=1")] {
        let (params, _) = code_params(c, "openid", &[("redirect_uri", uri)]);
        let res = browser.authorize(&as_refs(&params)).await;
        assert_eq!(res.status, 303, "{uri}: {}", res.text);
        assert!(res.header("location").unwrap().starts_with("/login?"));
    }
    // A registered query is kept and the response parameters are added to it.
    let (params, _) = code_params(
        &with_query,
        "openid",
        &[
            ("redirect_uri", "https://app.example/cb?a=1"),
            ("response_type", "garbage"),
        ],
    );
    let res = browser.authorize(&as_refs(&params)).await;
    assert!(
        res.header("location")
            .unwrap()
            .starts_with("https://app.example/cb?a=1&"),
        "{:?}",
        res.header("location")
    );
    assert_redirect_error(
        &res,
        "https://app.example/cb?a=1",
        "unsupported_response_type",
        Some("xyz"),
        srv.issuer(),
        "registered query kept",
    );
}

// SECURITY-TESTS: AZ-05
async fn redirect_uri_may_be_omitted_only_by_plain_oauth_with_one_registered(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let one = code_client(&srv, true).await;
    let two = srv
        .client(NewClient {
            name: "Two URIs".into(),
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec![CB.into(), "https://app.example/other".into()],
            scope: Some("openid profile".into()),
            first_party: true,
            ..Default::default()
        })
        .await;
    let browser = Browser::new(&srv);
    // OIDC Core §3.1.2.1: redirect_uri is required with openid.
    let (params, _) = code_params(&one, "openid profile", &[("redirect_uri", "")]);
    assert_error_page(&browser.authorize(&as_refs(&params)).await, "openid");
    // RFC 6749 §3.1.2.3: two registered, none sent: nothing to choose.
    let (params, _) = code_params(&two, "profile", &[("redirect_uri", "")]);
    assert_error_page(&browser.authorize(&as_refs(&params)).await, "two URIs");
    // Documented: plain OAuth with exactly one registered URI may omit it; the code goes to
    // that URI and /token need not repeat it.
    let (params, verifier) = code_params(&one, "profile", &[("redirect_uri", "")]);
    let res = browser.sign_in(&as_refs(&params), "alice", PW).await;
    let (_, got) = response_params(&res, CB);
    let code = param(&got, "code").unwrap();
    let res = srv
        .token(
            &one,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.json.get("id_token").is_none(), "no openid, no ID token");
}

// SECURITY-TESTS: AZ-06
async fn errors_after_the_redirect_uri_redirect_with_nothing_extra(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, false).await;
    let iss = srv.issuer().to_owned();
    let browser = Browser::new(&srv);
    for (rule, changes, error) in [
        (
            "no response_type",
            vec![("response_type", "")],
            "invalid_request",
        ),
        (
            "code id_token",
            vec![("response_type", "code id_token")],
            "unsupported_response_type",
        ),
        (
            "garbage",
            vec![("response_type", "garbage")],
            "unsupported_response_type",
        ),
        (
            "scope not allowed",
            vec![("scope", "openid admin")],
            "invalid_scope",
        ),
        (
            "scope malformed",
            vec![("scope", "openid \"x\"")],
            "invalid_scope",
        ),
        (
            "implicit not allowed",
            vec![("response_type", "token")],
            "unauthorized_client",
        ),
        ("bad max_age", vec![("max_age", "-1")], "invalid_request"),
        (
            "bad prompt",
            vec![("prompt", "sometimes")],
            "invalid_request",
        ),
        ("repeated state", vec![], "invalid_request"),
    ] {
        let (mut params, _) = code_params(&client, "openid", &changes);
        if rule == "repeated state" {
            params.push(("state".into(), "again".into()));
        }
        let res = browser.authorize(&as_refs(&params)).await;
        let delivery = assert_redirect_error(&res, CB, error, Some("xyz"), &iss, rule);
        let expected = if rule == "implicit not allowed" {
            Delivery::Fragment
        } else {
            Delivery::Query
        };
        assert_eq!(delivery, expected, "{rule}");
        // Without state, no state key at all.
        let mut without = changes.clone();
        without.push(("state", ""));
        let (params, _) = code_params(&client, "openid", &without);
        if rule != "repeated state" {
            let res = browser.authorize(&as_refs(&params)).await;
            assert_redirect_error(&res, CB, error, None, &iss, rule);
        }
    }
    // Consent denied.
    let (params, _) = code_request(&client, "openid profile");
    let res = browser.authorize(&as_refs(&params)).await;
    let res = browser
        .login(res.header("location").unwrap(), "alice", PW)
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let res = browser.get(res.header("location").unwrap()).await;
    let consent_loc = res.header("location").unwrap().to_owned();
    assert!(consent_loc.starts_with("/consent?"), "{consent_loc}");
    let res = browser.consent(&consent_loc, false).await;
    assert_redirect_error(&res, CB, "access_denied", Some("xyz"), &iss, "denied");
}

// SECURITY-TESTS: AZ-07
async fn every_authorization_response_carries_iss(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = implicit_client(&srv).await;
    let browser = signed_in(&srv, &client).await;
    let iss = srv.issuer().to_owned();
    let discovery = srv.get("/.well-known/openid-configuration").await;
    assert_eq!(
        discovery.json["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(discovery.json["issuer"], iss);
    let meta = srv.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(
        meta.json["authorization_response_iss_parameter_supported"],
        true
    );
    let (_, challenge) = pkce_pair();
    for (rule, response_type, mode, ok, expected) in [
        ("code query", "code", "", true, Delivery::Query),
        (
            "code fragment",
            "code",
            "fragment",
            true,
            Delivery::Fragment,
        ),
        (
            "code form_post",
            "code",
            "form_post",
            true,
            Delivery::FormPost,
        ),
        ("token fragment", "token", "", true, Delivery::Fragment),
        (
            "token form_post",
            "token",
            "form_post",
            true,
            Delivery::FormPost,
        ),
        (
            "id_token token",
            "id_token token",
            "",
            true,
            Delivery::Fragment,
        ),
        ("error query", "code", "", false, Delivery::Query),
        ("error fragment", "token", "", false, Delivery::Fragment),
        (
            "error form_post",
            "code",
            "form_post",
            false,
            Delivery::FormPost,
        ),
    ] {
        let scope = if ok { "openid" } else { "openid admin" };
        let res = browser
            .authorize(&[
                ("response_type", response_type),
                ("response_mode", mode),
                ("client_id", &client.id),
                ("redirect_uri", CB),
                ("scope", scope),
                ("state", "st"),
                ("nonce", "n"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .await;
        let (delivery, params) = response_params(&res, CB);
        assert_eq!(delivery, expected, "{rule}");
        assert_eq!(
            param(&params, "iss").as_deref(),
            Some(iss.as_str()),
            "{rule}"
        );
        assert_eq!(
            params.iter().filter(|(k, _)| k == "iss").count(),
            1,
            "{rule}"
        );
        assert_eq!(param(&params, "error").is_none(), ok, "{rule}: {params:?}");
    }
    // prompt=none errors too.
    let fresh = Browser::new(&srv);
    let (params, _) = code_params(&client, "openid", &[("prompt", "none")]);
    let res = fresh.authorize(&as_refs(&params)).await;
    assert_redirect_error(&res, CB, "login_required", Some("xyz"), &iss, "prompt=none");
    // A missing response_type is reported in the response mode asked for.
    let (params, _) = code_params(
        &client,
        "openid",
        &[("response_type", ""), ("response_mode", "form_post")],
    );
    let res = browser.authorize(&as_refs(&params)).await;
    let rule = "no response_type, form_post";
    let d = assert_redirect_error(&res, CB, "invalid_request", Some("xyz"), &iss, rule);
    assert_eq!(d, Delivery::FormPost, "{rule}");
}

/// A 1 KiB state full of characters that need care.
fn awkward_state() -> String {
    let unit = "a&b=c+d%25e#f g/h?i;j\u{e9}\u{2603}\u{1F600}";
    let mut s = String::new();
    while s.len() + unit.len() <= 1024 {
        s.push_str(unit);
    }
    s
}

// SECURITY-TESTS: AZ-08
async fn state_is_echoed_byte_for_byte(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = implicit_client(&srv).await;
    let browser = signed_in(&srv, &client).await;
    let state = awkward_state();
    assert!(state.len() > 1000);
    for (rule, changes) in [
        ("code query", vec![]),
        ("code form_post", vec![("response_mode", "form_post")]),
        ("code fragment", vec![("response_mode", "fragment")]),
        ("token", vec![("response_type", "token")]),
        ("error", vec![("scope", "admin")]),
        (
            "error form_post",
            vec![("scope", "admin"), ("response_mode", "form_post")],
        ),
    ] {
        let mut all = changes.clone();
        all.push(("state", &state));
        let (params, _) = code_params(&client, "openid", &all);
        let res = browser.authorize(&as_refs(&params)).await;
        let (_, got) = response_params(&res, CB);
        assert_eq!(
            param(&got, "state").as_deref(),
            Some(state.as_str()),
            "{rule}"
        );
        // No state sent: no state key.
        let mut all = changes.clone();
        all.push(("state", ""));
        let (params, _) = code_params(&client, "openid", &all);
        let res = browser.authorize(&as_refs(&params)).await;
        let (_, got) = response_params(&res, CB);
        assert!(got.iter().all(|(k, _)| k != "state"), "{rule}: {got:?}");
    }
    // The same through the login page (the state is kept server-side meanwhile).
    let fresh = Browser::new(&srv);
    let (params, _) = code_params(&client, "openid", &[("state", &state)]);
    let res = fresh.sign_in(&as_refs(&params), "alice", PW).await;
    let (_, got) = response_params(&res, CB);
    assert_eq!(
        param(&got, "state").as_deref(),
        Some(state.as_str()),
        "after login"
    );
}

// SECURITY-TESTS: AZ-09
async fn implicit_only_for_allowed_clients_with_tokens_in_the_fragment(b: Backend) {
    let srv = TestServer::start(b).await;
    let alice = srv.user("alice", PW).await;
    let code_only = code_client(&srv, true).await;
    let implicit = implicit_client(&srv).await;
    let browser = signed_in(&srv, &implicit).await;
    let iss = srv.issuer().to_owned();
    for rt in ["token", "id_token token"] {
        let (params, _) = code_params(&code_only, "openid", &[("response_type", rt)]);
        let res = browser.authorize(&as_refs(&params)).await;
        let d = assert_redirect_error(&res, CB, "unauthorized_client", Some("xyz"), &iss, rt);
        assert_eq!(d, Delivery::Fragment, "{rt}");
    }
    // OIDC Core §3.2.2.1: nonce is required with an ID token in the front channel.
    let (params, _) = code_params(
        &implicit,
        "openid",
        &[("response_type", "id_token token"), ("nonce", "")],
    );
    let res = browser.authorize(&as_refs(&params)).await;
    assert_redirect_error(&res, CB, "invalid_request", Some("xyz"), &iss, "no nonce");

    for rt in ["token", "id_token token"] {
        let (params, _) = code_params(&implicit, "openid email", &[("response_type", rt)]);
        let res = browser.authorize(&as_refs(&params)).await;
        assert_eq!(res.status, 303, "{rt}: {}", res.text);
        let loc = res.header("location").unwrap();
        assert!(
            loc.starts_with(&format!("{CB}#")),
            "{rt}: tokens only in the fragment: {loc}"
        );
        assert!(!loc.contains('?'), "{rt}: nothing in the query");
        let (delivery, got) = response_params(&res, CB);
        assert_eq!(delivery, Delivery::Fragment);
        assert_eq!(param(&got, "token_type").as_deref(), Some("Bearer"), "{rt}");
        assert_eq!(param(&got, "expires_in").as_deref(), Some("3600"), "{rt}");
        assert_eq!(param(&got, "state").as_deref(), Some("xyz"), "{rt}");
        assert_eq!(param(&got, "iss").as_deref(), Some(iss.as_str()), "{rt}");
        assert!(
            param(&got, "refresh_token").is_none(),
            "{rt}: never a refresh token"
        );
        assert!(param(&got, "code").is_none(), "{rt}");
        let at = param(&got, "access_token").unwrap();
        let info = srv.get_bearer("/userinfo", &at).await;
        assert_eq!(info.status, 200, "{rt}: {}", info.text);
        assert_eq!(info.json["sub"], alice.id.to_string());
        if rt == "token" {
            assert!(param(&got, "id_token").is_none());
        } else {
            let (_, claims) = jwt_parts(&param(&got, "id_token").unwrap());
            assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
            assert_eq!(claims["aud"], implicit.id);
            assert!(claims["at_hash"].is_string());
        }
    }
}

// SECURITY-TESTS: AZ-10
async fn response_modes_are_checked(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = implicit_client(&srv).await;
    let browser = signed_in(&srv, &client).await;
    let iss = srv.issuer().to_owned();
    // Tokens never travel in the query.
    for rt in ["token", "id_token token"] {
        let (params, _) = code_params(
            &client,
            "openid",
            &[("response_type", rt), ("response_mode", "query")],
        );
        let res = browser.authorize(&as_refs(&params)).await;
        let d = assert_redirect_error(&res, CB, "invalid_request", Some("xyz"), &iss, rt);
        assert_eq!(
            d,
            Delivery::Fragment,
            "{rt}: the error stays out of the query too"
        );
    }
    let (params, _) = code_params(&client, "openid", &[("response_mode", "bogus")]);
    let res = browser.authorize(&as_refs(&params)).await;
    assert_redirect_error(&res, CB, "invalid_request", Some("xyz"), &iss, "bogus mode");

    // form_post: a 200 page that posts to the redirect URI, values escaped, code in no URL.
    let state = "\"><script>alert(1)</script>&'";
    let (params, verifier) = code_params(
        &client,
        "openid",
        &[("response_mode", "form_post"), ("state", state)],
    );
    let res = browser.authorize(&as_refs(&params)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.header("location").is_none());
    assert!(res.header("content-type").unwrap().starts_with("text/html"));
    let (delivery, got) = response_params(&res, CB);
    assert_eq!(delivery, Delivery::FormPost);
    assert_eq!(param(&got, "state").as_deref(), Some(state));
    assert!(!res.text.contains("<script>alert"), "{}", res.text);
    assert_eq!(
        res.text.matches("<script").count(),
        1,
        "only the submitting script"
    );
    let code = param(&got, "code").unwrap();
    assert!(
        !common::browser::form_action(&res.text)
            .unwrap()
            .contains(&code)
    );
    assert_eq!(
        res.text.matches(code.as_str()).count(),
        1,
        "the code only in its field"
    );
    assert!(res.text.contains("method=\"post\""));
    let res = redeem(&srv, &client, &code, &verifier).await;
    assert_eq!(res.status, 200, "{}", res.text);
}

// SECURITY-TESTS: AZ-11
async fn post_equals_get_and_request_objects_are_refused(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, false).await;
    let iss = srv.issuer().to_owned();
    // The whole sign-in started by a POST.
    let browser = Browser::new(&srv);
    let (params, verifier) = code_request(&client, "openid profile");
    let res = browser.authorize_post(&as_refs(&params)).await;
    assert_eq!(res.status, 303, "{}", res.text);
    let loc = res.header("location").unwrap().to_owned();
    assert!(loc.starts_with("/login?"));
    let res = browser.follow(browser.login(&loc, "alice", PW).await).await;
    assert_eq!(res.status, 200, "consent page: {}", res.text);
    let consent = browser.authorize_post(&as_refs(&params)).await;
    let res = browser
        .consent(consent.header("location").unwrap(), true)
        .await;
    let (_, got) = response_params(&res, CB);
    assert_eq!(param(&got, "state").as_deref(), Some("xyz"));
    let code = param(&got, "code").unwrap();
    assert_eq!(redeem(&srv, &client, &code, &verifier).await.status, 200);
    // Signed in and consented: GET and POST answer alike.
    for method in ["GET", "POST"] {
        let (params, verifier) = code_request(&client, "openid profile");
        let res = if method == "GET" {
            browser.authorize(&as_refs(&params)).await
        } else {
            browser.authorize_post(&as_refs(&params)).await
        };
        let (d, got) = response_params(&res, CB);
        assert_eq!(d, Delivery::Query, "{method}");
        let code = param(&got, "code").unwrap();
        assert_eq!(
            redeem(&srv, &client, &code, &verifier).await.status,
            200,
            "{method}"
        );
    }
    // Errors alike, by either method.
    for (rule, changes, error) in [
        (
            "request object",
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (
            "request_uri",
            vec![("request_uri", "https://app.example/req.jwt")],
            "request_uri_not_supported",
        ),
        (
            "garbage",
            vec![("response_type", "garbage")],
            "unsupported_response_type",
        ),
    ] {
        let (params, _) = code_params(&client, "openid", &changes);
        let get = browser.authorize(&as_refs(&params)).await;
        let post = browser.authorize_post(&as_refs(&params)).await;
        assert_redirect_error(&get, CB, error, Some("xyz"), &iss, rule);
        assert_redirect_error(&post, CB, error, Some("xyz"), &iss, rule);
    }
    let (params, _) = code_params(
        &client,
        "openid",
        &[("redirect_uri", "https://evil.example/")],
    );
    assert_error_page(
        &browser.authorize_post(&as_refs(&params)).await,
        "POST bad uri",
    );
    // A POST that is not a form is an error page, not a framework error.
    let res = TestServer::read(
        browser
            .http
            .post(srv.url("/authorize"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error_page(&res, "json body");
}

// SECURITY-TESTS: DK-02
async fn advertised_response_types_and_modes_work(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = implicit_client(&srv).await;
    let browser = signed_in(&srv, &client).await;
    let iss = srv.issuer().to_owned();
    let doc = srv.get("/.well-known/openid-configuration").await.json;
    let types: Vec<String> =
        serde_json::from_value(doc["response_types_supported"].clone()).unwrap();
    let modes: Vec<String> =
        serde_json::from_value(doc["response_modes_supported"].clone()).unwrap();
    assert!(types.contains(&"code".to_owned()));
    for rt in &types {
        for mode in &modes {
            let (params, verifier) = code_params(
                &client,
                "openid",
                &[
                    ("response_type", rt.as_str()),
                    ("response_mode", mode.as_str()),
                ],
            );
            let res = browser.authorize(&as_refs(&params)).await;
            let (_, got) = response_params(&res, CB);
            if rt != "code" && mode == "query" {
                // Advertised separately, but tokens never go in the query.
                assert_eq!(
                    param(&got, "error").as_deref(),
                    Some("invalid_request"),
                    "{rt} {mode}"
                );
                continue;
            }
            assert!(param(&got, "error").is_none(), "{rt} {mode}: {got:?}");
            if rt == "code" {
                let code = param(&got, "code").unwrap();
                let res = redeem(&srv, &client, &code, &verifier).await;
                assert_eq!(res.status, 200, "{rt} {mode}: {}", res.text);
            } else {
                assert!(param(&got, "access_token").is_some(), "{rt} {mode}");
                assert_eq!(
                    param(&got, "id_token").is_some(),
                    rt.contains("id_token"),
                    "{rt} {mode}"
                );
            }
        }
    }
    for rt in [
        "id_token",
        "code id_token",
        "code token",
        "code id_token token",
        "none",
        "CODE",
    ] {
        assert!(!types.contains(&rt.to_owned()));
        let (params, _) = code_params(&client, "openid", &[("response_type", rt)]);
        let res = browser.authorize(&as_refs(&params)).await;
        let (_, got) = response_params(&res, CB);
        assert_eq!(
            param(&got, "error").as_deref(),
            Some("unsupported_response_type"),
            "{rt}"
        );
        assert_eq!(param(&got, "iss").as_deref(), Some(iss.as_str()));
    }
    for mode in ["web_message", "query.jwt", "FORM_POST"] {
        assert!(!modes.contains(&mode.to_owned()));
        let (params, _) = code_params(&client, "openid", &[("response_mode", mode)]);
        let res = browser.authorize(&as_refs(&params)).await;
        assert_redirect_error(&res, CB, "invalid_request", Some("xyz"), &iss, mode);
    }
}

// SECURITY-TESTS: AZ-03
async fn loopback_redirect_uris_may_vary_only_the_port(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let native = srv
        .client(NewClient {
            name: "Desktop App".into(),
            public: true,
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            scope: Some("openid".into()),
            first_party: true,
            ..Default::default()
        })
        .await;
    let browser = Browser::new(&srv);
    let uri = "http://127.0.0.1:51234/cb";
    let (params, verifier) = code_params(&native, "openid", &[("redirect_uri", uri)]);
    let res = browser.sign_in(&as_refs(&params), "alice", PW).await;
    // RFC 8252 §7.3: the response goes to the port the app asked for.
    let (_, got) = response_params(&res, uri);
    let code = param(&got, "code").unwrap();
    let token = |code: String, verifier: String, uri: &'static str| {
        let srv = &srv;
        let id = native.id.clone();
        async move {
            srv.post_form(
                "/token",
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", uri),
                    ("code_verifier", &verifier),
                    ("client_id", &id),
                ],
            )
            .await
        }
    };
    let res = token(code, verifier, uri).await;
    assert_eq!(res.status, 200, "{}", res.text);
    // /token must repeat the URI used, port included.
    let (params, verifier) = code_params(&native, "openid", &[("redirect_uri", uri)]);
    let res = browser.authorize(&as_refs(&params)).await;
    let code = param(&response_params(&res, uri).1, "code").unwrap();
    token(code, verifier, "http://127.0.0.1/cb")
        .await
        .assert_error(400, "invalid_grant", "the registered URI without the port");
    for near_miss in [
        "http://127.0.0.1:51234/cb2",
        "http://127.0.0.1:51234/cb/",
        "http://127.0.0.1:51234/",
        "http://localhost:51234/cb",
        "http://127.0.0.1.evil.example:51234/cb",
        "https://127.0.0.1:51234/cb",
        "http://127.0.0.2:51234/cb",
        "http://127.0.0.1:x/cb",
        "http://127.0.0.1:51234@evil.example/cb",
    ] {
        let (params, _) = code_params(&native, "openid", &[("redirect_uri", near_miss)]);
        assert_error_page(&browser.authorize(&as_refs(&params)).await, near_miss);
    }
}

both_backends! {
    unknown_missing_or_deleted_client_gets_an_error_page,
    unregistered_redirect_uri_gets_an_error_page,
    only_the_byte_identical_redirect_uri_passes,
    redirect_uri_may_be_omitted_only_by_plain_oauth_with_one_registered,
    errors_after_the_redirect_uri_redirect_with_nothing_extra,
    every_authorization_response_carries_iss,
    state_is_echoed_byte_for_byte,
    implicit_only_for_allowed_clients_with_tokens_in_the_fragment,
    response_modes_are_checked,
    post_equals_get_and_request_objects_are_refused,
    advertised_response_types_and_modes_work,
    loopback_redirect_uris_may_vary_only_the_port,
}
