//! GET/POST /userinfo (OIDC Core §5.3) and its bearer-token errors (RFC 6750 §2, §3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Res, TestClient, TestServer, jwt_parts};
use latchkey::admin::NewClient;
use latchkey::oauth::GrantType;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

async fn setup(b: Backend) -> (TestServer, TestClient) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PASSWORD).await;
    let client = srv.password_client().await;
    (srv, client)
}

/// Userinfo by POST with the token in the form body (RFC 6750 §2.2).
async fn post_body(srv: &TestServer, token: &str) -> Res {
    srv.post_form("/userinfo", None, &[("access_token", token)])
        .await
}

/// Asserts a 401 with `error="invalid_token"` in the challenge; returns the description.
#[track_caller]
fn assert_invalid_token(res: &Res, rule: &str) -> String {
    assert_eq!(res.status, 401, "{rule}: {}", res.text);
    let challenge = res
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{rule}: no challenge"));
    assert!(
        challenge.starts_with("Bearer realm=\"latchkey\""),
        "{rule}: {challenge}"
    );
    assert!(
        challenge.contains("error=\"invalid_token\""),
        "{rule}: {challenge}"
    );
    assert_eq!(res.json["error"], "invalid_token", "{rule}");
    res.json["error_description"].as_str().unwrap().to_owned()
}

// SECURITY-TESTS: UR-01, OC-03
async fn userinfo_releases_claims_by_scope(b: Backend) {
    let (srv, client) = setup(b).await;
    let user = srv
        .store()
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let t = srv
        .login(&client, "alice", PASSWORD, "openid profile email")
        .await;
    let at = s(&t, "access_token");
    let (_, id) = jwt_parts(&s(&t, "id_token"));

    // GET with the header, POST with the header, POST with the token in the body.
    let by_get = srv.get_bearer("/userinfo", &at).await;
    let by_post = TestServer::read(
        srv.http
            .post(srv.url("/userinfo"))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let by_body = post_body(&srv, &at).await;
    for (rule, res) in [
        ("GET", &by_get),
        ("POST header", &by_post),
        ("POST body", &by_body),
    ] {
        assert_eq!(res.status, 200, "{rule}: {}", res.text);
        assert!(
            res.header("content-type")
                .unwrap()
                .starts_with("application/json"),
            "{rule}"
        );
        assert_eq!(res.header("cache-control"), Some("no-store"), "{rule}");
        assert_eq!(res.json, by_get.json, "{rule}");
    }
    let claims = &by_get.json;
    assert_eq!(claims["sub"], id["sub"], "the ID token's sub");
    assert_eq!(claims["sub"], user.id.to_string());
    assert_eq!(claims["name"], "Alice Example");
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["family_name"], "Example");
    assert_eq!(claims["preferred_username"], "alice");
    assert!(claims["updated_at"].is_i64());
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);

    // Narrower tokens (by refresh) release less.
    let rt = s(&t, "refresh_token");
    let only_openid = srv.refresh(&client, &rt, &[("scope", "openid")]).await.json;
    let claims = srv
        .get_bearer("/userinfo", &s(&only_openid, "access_token"))
        .await
        .json;
    assert_eq!(claims, serde_json::json!({ "sub": user.id.to_string() }));
    let email = srv
        .refresh(
            &client,
            &s(&only_openid, "refresh_token"),
            &[("scope", "openid email")],
        )
        .await
        .json;
    let claims = srv
        .get_bearer("/userinfo", &s(&email, "access_token"))
        .await
        .json;
    let keys: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["email", "email_verified", "sub"]);
}

// SECURITY-TESTS: UR-02, TK-06
async fn userinfo_bearer_errors_follow_rfc_6750(b: Backend) {
    let (srv, client) = setup(b).await;
    let t = srv.login(&client, "alice", PASSWORD, "openid api").await;
    let at = s(&t, "access_token");

    // No token: a bare challenge, no error code.
    for res in [
        srv.get("/userinfo").await,
        TestServer::read(srv.http.post(srv.url("/userinfo")).send().await.unwrap()).await,
    ] {
        assert_eq!(res.status, 401, "{}", res.text);
        assert_eq!(
            res.header("www-authenticate"),
            Some("Bearer realm=\"latchkey\"")
        );
    }

    // Garbage and a tampered token.
    assert_invalid_token(&srv.get_bearer("/userinfo", "garbage").await, "garbage");
    let mut tampered = at.clone();
    tampered.insert(at.find('.').unwrap() + 3, 'x');
    assert_invalid_token(&srv.get_bearer("/userinfo", &tampered).await, "tampered");

    // A client_credentials token has no user; a user token without openid is not enough.
    let cc = srv
        .confidential(&[GrantType::ClientCredentials], "openid api")
        .await;
    let cc_at = s(
        &srv.token(&cc, &[("grant_type", "client_credentials")])
            .await
            .json,
        "access_token",
    );
    let no_openid = srv
        .refresh(&client, &s(&t, "refresh_token"), &[("scope", "api")])
        .await
        .json;
    for (rule, token) in [
        ("client_credentials token", cc_at),
        ("no openid", s(&no_openid, "access_token")),
    ] {
        let res = srv.get_bearer("/userinfo", &token).await;
        assert_eq!(res.status, 403, "{rule}: {}", res.text);
        assert_eq!(res.json["error"], "insufficient_scope", "{rule}");
        assert!(
            res.header("www-authenticate")
                .unwrap()
                .contains("error=\"insufficient_scope\""),
            "{rule}"
        );
    }

    // The token in the header and in the body: one way only.
    let res = TestServer::read(
        srv.http
            .post(srv.url("/userinfo"))
            .bearer_auth(&at)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(common::form_body(&[("access_token", &at)]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(400, "invalid_request", "header and body");
    // In the query: refused, never used.
    for res in [
        srv.get(&format!("/userinfo?access_token={at}")).await,
        TestServer::read(
            srv.http
                .post(srv.url(&format!("/userinfo?access_token={at}")))
                .send()
                .await
                .unwrap(),
        )
        .await,
    ] {
        res.assert_error(400, "invalid_request", "access_token in the query");
        assert!(res.json.get("sub").is_none());
    }
    // Another scheme.
    let res = TestServer::read(
        srv.http
            .get(srv.url("/userinfo"))
            .header("authorization", "Basic YTpi")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(matches!(res.status, 400 | 401), "{}", res.text);
    assert!(res.json.get("sub").is_none());

    // Expiry: live a second before exp, dead exactly at exp, and the description says why.
    let (_, claims) = jwt_parts(&at);
    let ttl = claims["exp"].as_i64().unwrap() - srv.now();
    srv.advance(ttl - 1);
    assert_eq!(srv.get_bearer("/userinfo", &at).await.status, 200);
    srv.advance(1);
    let d = assert_invalid_token(&srv.get_bearer("/userinfo", &at).await, "exactly at exp");
    assert!(d.contains("expired"), "{d}");
    let res = srv.get_bearer("/userinfo", &at).await;
    assert!(res.header("www-authenticate").unwrap().contains("expired"));
    assert!(!srv.is_active(&client, &at).await);
}

// SECURITY-TESTS: JW-03
async fn an_id_token_is_not_an_access_token(b: Backend) {
    let (srv, client) = setup(b).await;
    let t = srv
        .login(&client, "alice", PASSWORD, "openid profile")
        .await;
    let id = s(&t, "id_token");
    assert_invalid_token(
        &srv.get_bearer("/userinfo", &id).await,
        "ID token at userinfo",
    );
    assert_invalid_token(&post_body(&srv, &id).await, "ID token in the body");
    let res = srv.introspect(&client, &id).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json, serde_json::json!({ "active": false }));
}

// SECURITY-TESTS: TK-06, UR-02
async fn a_user_token_names_the_user_not_the_client(b: Backend) {
    let (srv, _) = setup(b).await;
    // A client whose id could be mistaken for nothing else: the user's sub is a UUID, the
    // client's never is, so has-a-user cannot be confused.
    let client = srv
        .client(NewClient {
            name: "x".into(),
            grant_types: vec![GrantType::Password, GrantType::ClientCredentials],
            scope: Some("openid".into()),
            ..Default::default()
        })
        .await;
    let user = srv.login(&client, "alice", PASSWORD, "openid").await;
    let (_, claims) = jwt_parts(&s(&user, "access_token"));
    assert_ne!(claims["sub"], claims["client_id"]);
    assert_eq!(
        srv.get_bearer("/userinfo", &s(&user, "access_token"))
            .await
            .status,
        200
    );
    let cc = srv
        .token(&client, &[("grant_type", "client_credentials")])
        .await
        .json;
    assert_eq!(
        srv.get_bearer("/userinfo", &s(&cc, "access_token"))
            .await
            .status,
        403
    );
}

// SECURITY-TESTS: UR-02
/// RFC 6750 §3.1: another authentication scheme is no bearer token: a bare challenge.
async fn another_scheme_is_no_token(b: Backend) {
    let srv = TestServer::start(b).await;
    let res = TestServer::read(
        srv.http
            .get(srv.url("/userinfo"))
            .header("authorization", "Basic YTpi")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 401);
    assert_eq!(
        res.header("www-authenticate"),
        Some("Bearer realm=\"latchkey\"")
    );
}

both_backends! {
    another_scheme_is_no_token,
    userinfo_releases_claims_by_scope,
    userinfo_bearer_errors_follow_rfc_6750,
    an_id_token_is_not_an_access_token,
    a_user_token_names_the_user_not_the_client,
}
