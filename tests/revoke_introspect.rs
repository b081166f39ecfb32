//! POST /revoke (RFC 7009) and POST /introspect (RFC 7662).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestClient, TestServer, foreign_jwt, jwt_parts, verify_with_jwks};
use latchkey::admin::{self, NewClient};
use latchkey::oauth::GrantType;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

async fn setup(b: Backend) -> (TestServer, TestClient) {
    let srv = TestServer::start_with(b, |c| c.keys.algorithm = "ES256".into()).await;
    srv.user("alice", PASSWORD).await;
    let client = srv.password_client().await;
    (srv, client)
}

/// Asserts an access token is dead: 401 invalid_token at userinfo, inactive at
/// introspection.
async fn assert_dead(srv: &TestServer, client: &TestClient, at: &str, rule: &str) {
    let res = srv.get_bearer("/userinfo", at).await;
    assert_eq!(res.status, 401, "{rule}: {}", res.text);
    assert!(
        res.header("www-authenticate")
            .unwrap()
            .contains("invalid_token"),
        "{rule}"
    );
    let res = srv.introspect(client, at).await;
    assert_eq!(res.json, json!({ "active": false }), "{rule}");
}

async fn assert_live(srv: &TestServer, client: &TestClient, at: &str, rule: &str) {
    assert_eq!(srv.get_bearer("/userinfo", at).await.status, 200, "{rule}");
    assert!(srv.is_active(client, at).await, "{rule}");
}

// SECURITY-TESTS: UR-03
async fn revoking_a_refresh_token_kills_its_family(b: Backend) {
    let (srv, client) = setup(b).await;
    for hint in [
        Some("refresh_token"),
        Some("access_token"),
        None,
        Some("bogus"),
    ] {
        let t1 = srv.login(&client, "alice", PASSWORD, "openid").await;
        let t2 = srv
            .refresh(&client, &s(&t1, "refresh_token"), &[])
            .await
            .json;
        // Checked just before: the "not revoked" answer this instance keeps in memory
        // must not outlive a revocation made here.
        assert_live(&srv, &client, &s(&t1, "access_token"), "before").await;
        let res = srv.revoke(&client, &s(&t2, "refresh_token"), hint).await;
        assert_eq!(res.status, 200, "hint {hint:?}: {}", res.text);
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let res = srv.refresh(&client, &s(&t2, "refresh_token"), &[]).await;
        res.assert_error(400, "invalid_grant", &format!("revoked RT, hint {hint:?}"));
        assert!(!srv.is_active(&client, &s(&t2, "refresh_token")).await);
        for at in [s(&t1, "access_token"), s(&t2, "access_token")] {
            assert_dead(
                &srv,
                &client,
                &at,
                &format!("AT of the family, hint {hint:?}"),
            )
            .await;
        }
    }
}

// SECURITY-TESTS: UR-03
async fn revoking_an_access_token_kills_it_although_its_signature_verifies(b: Backend) {
    let (srv, client) = setup(b).await;
    for hint in [Some("access_token"), Some("refresh_token"), None] {
        let t = srv.login(&client, "alice", PASSWORD, "openid").await;
        let at = s(&t, "access_token");
        assert_live(&srv, &client, &at, "before").await;
        assert_eq!(srv.revoke(&client, &at, hint).await.status, 200);
        verify_with_jwks(&at, &srv.jwks().await, srv.issuer(), srv.issuer())
            .expect("still well signed");
        assert_dead(&srv, &client, &at, &format!("revoked AT, hint {hint:?}")).await;
        // Only that token: the grant goes on.
        let t2 = srv.refresh(&client, &s(&t, "refresh_token"), &[]).await;
        assert_eq!(t2.status, 200, "{}", t2.text);
        assert_live(
            &srv,
            &client,
            &s(&t2.json, "access_token"),
            "a new AT of the grant",
        )
        .await;
    }
}

// SECURITY-TESTS: UR-03, RL-09, BI-06
async fn revocation_rules(b: Backend) {
    let (srv, client) = setup(b).await;
    let other = srv.password_client().await;
    let t = srv.login(&client, "alice", PASSWORD, "openid").await;
    let (at, rt) = (s(&t, "access_token"), s(&t, "refresh_token"));

    // Unknown tokens: 200, nothing to do (RFC 7009 §2.2).
    let foreign = foreign_jwt(&json!({ "sub": "x", "exp": srv.now() + 60 }), "k", "at+jwt");
    for token in ["garbage", "a.b.c", foreign.as_str()] {
        assert_eq!(
            srv.revoke(&client, token, None).await.status,
            200,
            "{token}"
        );
    }
    // Another client's tokens: refused, and they stay live.
    for (rule, token) in [("another client's RT", &rt), ("another client's AT", &at)] {
        let res = srv.revoke(&other, token, None).await;
        res.assert_error(400, "unauthorized_client", rule);
    }
    assert_live(&srv, &client, &at, "after another client's attempt").await;
    assert!(srv.is_active(&client, &rt).await);
    // No client authentication.
    let res = srv.post_form("/revoke", None, &[("token", &rt)]).await;
    res.assert_error(401, "invalid_client", "no client authentication");
    let res = srv
        .post_form("/revoke", Some((&client.id, "wrong")), &[("token", &rt)])
        .await;
    res.assert_error(401, "invalid_client", "wrong secret");
    assert!(res.header("www-authenticate").unwrap().starts_with("Basic"));
    srv.revoke(&client, "", None)
        .await
        .assert_error(400, "invalid_request", "no token");
    // The token in the query is refused.
    let res = TestServer::read(
        srv.http
            .post(srv.url(&format!("/revoke?token={rt}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                common::basic_header(&client.id, client.secret.as_deref().unwrap()),
            )
            .body("")
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(400, "invalid_request", "token in the query");
    // GET is not revocation.
    let res = TestServer::read(
        srv.http
            .get(srv.url(&format!("/revoke?token={rt}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(405, "invalid_request", "GET /revoke");
    assert!(
        srv.is_active(&client, &rt).await,
        "nothing above revoked anything"
    );

    // Idempotent: three times each, always 200.
    for token in [&at, &rt] {
        for i in 0..3 {
            let res = srv.revoke(&client, token, None).await;
            assert_eq!(res.status, 200, "revocation {i}: {}", res.text);
        }
    }
    assert_dead(&srv, &client, &at, "revoked").await;
    assert!(!srv.is_active(&client, &rt).await);
}

// SECURITY-TESTS: UR-04
async fn introspection_describes_live_tokens(b: Backend) {
    let (srv, client) = setup(b).await;
    let user = srv
        .store()
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let rs = srv
        .confidential(&[GrantType::ClientCredentials], "api")
        .await;
    let t = srv.login(&client, "alice", PASSWORD, "openid api").await;
    let (at, rt) = (s(&t, "access_token"), s(&t, "refresh_token"));
    let (_, claims) = jwt_parts(&at);

    // An access token, introspected by a resource server (any confidential client).
    let res = srv.introspect(&rs, &at).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let j = &res.json;
    assert_eq!(j["active"], true);
    assert_eq!(j["sub"], user.id.to_string());
    assert_eq!(j["client_id"], client.id.as_str());
    assert_eq!(j["scope"], claims["scope"]);
    assert_eq!(j["exp"], claims["exp"]);
    assert_eq!(j["iat"], claims["iat"]);
    assert_eq!(j["iss"], srv.issuer());
    assert_eq!(j["token_type"], "Bearer");

    // A refresh token, introspected by its client.
    let res = srv.introspect(&client, &rt).await;
    let j = &res.json;
    assert_eq!(j["active"], true, "{}", res.text);
    assert_eq!(j["sub"], user.id.to_string());
    assert_eq!(j["client_id"], client.id.as_str());
    assert_eq!(j["scope"], t["scope"]);
    assert_eq!(j["iss"], srv.issuer());
    assert_eq!(j["token_type"], "refresh_token");
    assert!(j["exp"].as_i64().unwrap() > srv.now());
    assert!(j["iat"].as_i64().unwrap() <= srv.now());
}

// SECURITY-TESTS: UR-04, JW-05, JW-06
async fn introspection_says_only_active_false_for_anything_else(b: Backend) {
    let (srv, client) = setup(b).await;
    let inactive = json!({ "active": false });
    let t = srv.login(&client, "alice", PASSWORD, "openid").await;
    let at = s(&t, "access_token");
    let (header, claims) = jwt_parts(&at);

    // Another issuer's key, even under our kid and with our claims.
    let kid = header["kid"].as_str().unwrap();
    for (rule, token) in [
        ("foreign key, our kid", foreign_jwt(&claims, kid, "at+jwt")),
        (
            "foreign key, own kid",
            foreign_jwt(&claims, "foreign", "at+jwt"),
        ),
        ("garbage", "garbage".to_owned()),
        ("JWT-shaped garbage", "a.b.c".to_owned()),
    ] {
        let res = srv.introspect(&client, &token).await;
        assert_eq!(res.status, 200, "{rule}");
        assert_eq!(res.header("cache-control"), Some("no-store"), "{rule}");
        assert_eq!(res.json, inactive, "{rule}");
    }

    // Revoked: an access token, a refresh family.
    let t2 = srv.login(&client, "alice", PASSWORD, "openid").await;
    srv.revoke(&client, &s(&t2, "access_token"), None).await;
    assert_eq!(
        srv.introspect(&client, &s(&t2, "access_token")).await.json,
        inactive,
        "revoked AT"
    );
    srv.revoke(&client, &s(&t2, "refresh_token"), None).await;
    assert_eq!(
        srv.introspect(&client, &s(&t2, "refresh_token")).await.json,
        inactive,
        "revoked RT"
    );

    // Expired, exactly at exp.
    srv.advance(claims["exp"].as_i64().unwrap() - srv.now());
    assert_eq!(
        srv.introspect(&client, &at).await.json,
        inactive,
        "expired AT"
    );
    assert!(
        srv.is_active(&client, &s(&t, "refresh_token")).await,
        "the RT lives longer"
    );

    // No client authentication; a public client.
    let res = srv.post_form("/introspect", None, &[("token", &at)]).await;
    res.assert_error(401, "invalid_client", "no client authentication");
    let public = srv
        .client(NewClient {
            name: "spa".into(),
            public: true,
            redirect_uris: vec!["https://spa.example/cb".into()],
            ..Default::default()
        })
        .await;
    let res = srv
        .post_form(
            "/introspect",
            None,
            &[("token", &at), ("client_id", &public.id)],
        )
        .await;
    res.assert_error(401, "invalid_client", "a public client");
    let res = TestServer::read(srv.http.get(srv.url("/introspect")).send().await.unwrap()).await;
    res.assert_error(405, "invalid_request", "GET /introspect");
}

// SECURITY-TESTS: UR-04, RT-07
async fn a_disabled_users_tokens_are_inactive(b: Backend) {
    let (srv, client) = setup(b).await;
    let t = srv.login(&client, "alice", PASSWORD, "openid").await;
    let (at, rt) = (s(&t, "access_token"), s(&t, "refresh_token"));
    admin::set_disabled(srv.store(), "alice", true, srv.now())
        .await
        .unwrap();
    assert_dead(&srv, &client, &at, "AT of a disabled user").await;
    assert!(!srv.is_active(&client, &rt).await);
    // Enabled again: the grant was never revoked.
    admin::set_disabled(srv.store(), "alice", false, srv.now())
        .await
        .unwrap();
    assert_live(&srv, &client, &at, "AT of a re-enabled user").await;
}

both_backends! {
    revoking_a_refresh_token_kills_its_family,
    revoking_an_access_token_kills_it_although_its_signature_verifies,
    revocation_rules,
    introspection_describes_live_tokens,
    introspection_says_only_active_false_for_anything_else,
    a_disabled_users_tokens_are_inactive,
}
