//! POST /token with grant_type=refresh_token (RFC 6749 §6) with rotation, the grace period
//! for retries and family revocation on reuse (RFC 9700 §4.14.2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{Backend, TestClient, TestServer, jwt_parts, verify_with_jwks};
use latchkey::admin::{self, NewClient};
use latchkey::oauth::GrantType;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

/// A server with one user and one password + refresh client.
async fn setup(b: Backend) -> (TestServer, TestClient) {
    let srv = TestServer::start(b).await;
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
    assert!(!srv.is_active(client, at).await, "{rule}");
}

// SECURITY-TESTS: RT-01, TK-01
async fn refresh_rotates_and_the_id_token_keeps_its_identity(b: Backend) {
    let (srv, client) = setup(b).await;
    let t1 = srv
        .login(&client, "alice", PASSWORD, "openid profile offline_access")
        .await;
    let (_, id1) = jwt_parts(&s(&t1, "id_token"));
    srv.advance(10);

    let res = srv.refresh(&client, &s(&t1, "refresh_token"), &[]).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let t2 = &res.json;
    assert_eq!(t2["token_type"], "Bearer");
    assert_eq!(t2["expires_in"], 3600);
    assert_eq!(t2["scope"], t1["scope"]);
    assert_ne!(s(t2, "access_token"), s(&t1, "access_token"));
    assert_ne!(s(t2, "refresh_token"), s(&t1, "refresh_token"));
    let id2 = verify_with_jwks(
        &s(t2, "id_token"),
        &srv.jwks().await,
        srv.issuer(),
        &client.id,
    )
    .unwrap();
    for claim in ["iss", "sub", "aud", "auth_time"] {
        assert_eq!(id2[claim], id1[claim], "{claim} is kept");
    }
    assert_eq!(
        id2["iat"].as_i64().unwrap(),
        id1["iat"].as_i64().unwrap() + 10,
        "a newer iat"
    );
    assert_eq!(id2["auth_time"], id1["iat"], "auth_time is still the login");
    let (_, at2) = jwt_parts(&s(t2, "access_token"));
    assert_eq!(at2["sub"], id1["sub"]);

    // The new access token works; the old refresh token is spent.
    assert_eq!(
        srv.get_bearer("/userinfo", &s(t2, "access_token"))
            .await
            .status,
        200
    );
    srv.advance(3);
    let res = srv.refresh(&client, &s(&t1, "refresh_token"), &[]).await;
    res.assert_error(
        400,
        "invalid_grant",
        "old refresh token after the grace period",
    );
}

// SECURITY-TESTS: RT-02
async fn reuse_after_the_grace_period_revokes_the_family(b: Backend) {
    let (srv, client) = setup(b).await;
    let t1 = srv.login(&client, "alice", PASSWORD, "openid").await;
    let t2 = srv
        .refresh(&client, &s(&t1, "refresh_token"), &[])
        .await
        .json;
    let (at1, at2, rt2) = (
        s(&t1, "access_token"),
        s(&t2, "access_token"),
        s(&t2, "refresh_token"),
    );
    assert_eq!(srv.get_bearer("/userinfo", &at2).await.status, 200);
    // An unrelated family of the same user and client is not touched.
    let other = srv.login(&client, "alice", PASSWORD, "openid").await;

    srv.advance(3); // grace is 2 s
    let res = srv.refresh(&client, &s(&t1, "refresh_token"), &[]).await;
    res.assert_error(400, "invalid_grant", "RT1 replayed after the grace period");
    let res = srv.refresh(&client, &rt2, &[]).await;
    res.assert_error(400, "invalid_grant", "RT2 died with its family");
    assert!(!srv.is_active(&client, &rt2).await);
    for (at, rule) in [(&at1, "AT1"), (&at2, "AT2")] {
        // Still a well-signed token: only the server's state knows it is dead.
        verify_with_jwks(at, &srv.jwks().await, srv.issuer(), srv.issuer()).unwrap();
        assert_dead(&srv, &client, at, rule).await;
    }
    assert_eq!(
        srv.get_bearer("/userinfo", &s(&other, "access_token"))
            .await
            .status,
        200
    );
    assert_eq!(
        srv.refresh(&client, &s(&other, "refresh_token"), &[])
            .await
            .status,
        200
    );
}

// SECURITY-TESTS: RT-02
async fn a_retry_within_the_grace_period_gets_the_same_successor(b: Backend) {
    let (srv, client) = setup(b).await;
    let t1 = srv.login(&client, "alice", PASSWORD, "openid").await;
    let rt1 = s(&t1, "refresh_token");
    let first = srv.refresh(&client, &rt1, &[]).await.json;
    srv.advance(1);
    // The response was lost; the client retries with RT1.
    let retry = srv.refresh(&client, &rt1, &[]).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    let rt2 = s(&first, "refresh_token");
    assert_eq!(
        s(&retry.json, "refresh_token"),
        rt2,
        "the same successor, not a second branch"
    );
    // Both access tokens are live; RT1 is spent, RT2 is the one live refresh token.
    assert_eq!(
        srv.get_bearer("/userinfo", &s(&first, "access_token"))
            .await
            .status,
        200
    );
    assert_eq!(
        srv.get_bearer("/userinfo", &s(&retry.json, "access_token"))
            .await
            .status,
        200
    );
    assert!(!srv.is_active(&client, &rt1).await);
    assert!(srv.is_active(&client, &rt2).await);
    let t3 = srv.refresh(&client, &rt2, &[]).await;
    assert_eq!(t3.status, 200, "{}", t3.text);
    let rt3 = s(&t3.json, "refresh_token");

    // After the grace period RT1 is theft: the family dies, successors included.
    srv.advance(2);
    srv.refresh(&client, &rt1, &[])
        .await
        .assert_error(400, "invalid_grant", "RT1 after grace");
    srv.refresh(&client, &rt3, &[])
        .await
        .assert_error(400, "invalid_grant", "RT3 revoked");
    assert_dead(&srv, &client, &s(&t3.json, "access_token"), "AT3").await;
}

// SECURITY-TESTS: RT-04, RL-07
async fn parallel_refreshes_leave_exactly_one_live_token(b: Backend) {
    let (srv, client) = setup(b).await;
    let srv = Arc::new(srv);
    let t1 = srv.login(&client, "alice", PASSWORD, "openid").await;
    let rt1 = s(&t1, "refresh_token");
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (srv, client, rt1, barrier) =
            (srv.clone(), client.clone(), rt1.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            srv.refresh(&client, &rt1, &[]).await
        }));
    }
    let mut returned = BTreeSet::new();
    for t in tasks {
        let res = t.await.unwrap();
        match res.status {
            200 => {
                returned.insert(s(&res.json, "refresh_token"));
            }
            400 => assert!(
                matches!(
                    res.json["error"].as_str(),
                    Some("invalid_grant" | "invalid_request")
                ),
                "{}",
                res.text
            ),
            other => panic!("{other}: {} (no 5xx, no \"database is locked\")", res.text),
        }
    }
    assert!(!returned.is_empty(), "one of them won");
    let mut live = Vec::new();
    for rt in returned.iter().chain([&rt1]) {
        if srv.is_active(&client, rt).await {
            live.push(rt.clone());
        }
    }
    assert_eq!(
        live.len(),
        1,
        "exactly one live refresh token: {returned:?}"
    );
    let res = srv.refresh(&client, &live[0], &[]).await;
    assert_eq!(res.status, 200, "the survivor refreshes: {}", res.text);
}

// SECURITY-TESTS: RT-05
async fn a_refresh_token_is_bound_to_its_client(b: Backend) {
    let (srv, a) = setup(b).await;
    let other = srv.password_client().await;
    let public = srv
        .client(NewClient {
            name: "spa".into(),
            public: true,
            redirect_uris: vec!["https://spa.example/cb".into()],
            ..Default::default()
        })
        .await;
    let t = srv.login(&a, "alice", PASSWORD, "openid").await;
    let rt = s(&t, "refresh_token");

    srv.refresh(&other, &rt, &[]).await.assert_error(
        400,
        "invalid_grant",
        "client B presents A's RT",
    );
    let res = srv
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &public.id),
            ],
        )
        .await;
    res.assert_error(
        400,
        "invalid_grant",
        "a public client presents a confidential client's RT",
    );
    // B is not told more at introspection either.
    assert!(!srv.is_active(&other, &rt).await);
    srv.advance(5);
    let res = srv.refresh(&a, &rt, &[]).await;
    assert_eq!(res.status, 200, "A's token still works: {}", res.text);
}

// SECURITY-TESTS: RT-06
async fn scope_may_narrow_but_never_widen(b: Backend) {
    let (srv, client) = setup(b).await;
    let t1 = srv
        .login(&client, "alice", PASSWORD, "openid profile api")
        .await;

    let narrow = srv
        .refresh(&client, &s(&t1, "refresh_token"), &[("scope", "api")])
        .await;
    assert_eq!(narrow.status, 200, "{}", narrow.text);
    assert_eq!(narrow.json["scope"], "api");
    assert!(
        narrow.json.get("id_token").is_none(),
        "no openid, no ID token"
    );
    let (_, claims) = jwt_parts(&s(&narrow.json, "access_token"));
    assert_eq!(claims["scope"], "api");
    // The new refresh token keeps the original scope.
    let rt2 = s(&narrow.json, "refresh_token");
    let intro = srv.introspect(&client, &rt2).await;
    assert_eq!(intro.json["scope"], t1["scope"], "{}", intro.text);

    // Wider than granted (though the client may have it), or outside the client's scope.
    for (rule, scope) in [
        ("never granted", "api email"),
        ("not the client's", "admin"),
    ] {
        srv.refresh(&client, &rt2, &[("scope", scope)])
            .await
            .assert_error(400, "invalid_scope", rule);
    }
    // A refused request does not spend the token.
    let full = srv.refresh(&client, &rt2, &[]).await;
    assert_eq!(full.status, 200, "{}", full.text);
    assert_eq!(full.json["scope"], t1["scope"]);
    assert!(full.json["id_token"].is_string());
}

// SECURITY-TESTS: RT-07
async fn refresh_dies_with_its_user_client_or_family(b: Backend) {
    let srv = TestServer::start(b).await;
    for u in ["alice", "bob", "carol"] {
        srv.user(u, PASSWORD).await;
    }
    let client = srv.password_client().await;
    let doomed = srv.password_client().await;
    let rt = |t: &Value| s(t, "refresh_token");

    // The user is disabled.
    let t = srv.login(&client, "alice", PASSWORD, "openid").await;
    admin::set_disabled(srv.store(), "alice", true, srv.now())
        .await
        .unwrap();
    srv.refresh(&client, &rt(&t), &[])
        .await
        .assert_error(400, "invalid_grant", "user disabled");
    assert!(!srv.is_active(&client, &rt(&t)).await);
    assert_eq!(
        srv.get_bearer("/userinfo", &s(&t, "access_token"))
            .await
            .status,
        401
    );

    // The user is deleted.
    let t = srv.login(&client, "bob", PASSWORD, "openid").await;
    admin::delete_user(srv.store(), "bob", srv.now())
        .await
        .unwrap();
    srv.refresh(&client, &rt(&t), &[])
        .await
        .assert_error(400, "invalid_grant", "user deleted");
    assert_dead(
        &srv,
        &client,
        &s(&t, "access_token"),
        "AT of a deleted user",
    )
    .await;

    // The client is deleted: it cannot even authenticate.
    let t = srv.login(&doomed, "carol", PASSWORD, "openid").await;
    admin::delete_client(srv.store(), &doomed.id, srv.now())
        .await
        .unwrap();
    // Client registrations are cached for keys.reload_secs (documented).
    srv.advance(srv.state.config.keys.reload_secs as i64);
    let res = srv.refresh(&doomed, &rt(&t), &[]).await;
    res.assert_error(401, "invalid_client", "client deleted");
    assert!(
        !srv.is_active(&client, &s(&t, "access_token")).await,
        "its tokens are revoked"
    );

    // An earlier member of the family is revoked: the whole family goes.
    let t1 = srv.login(&client, "carol", PASSWORD, "openid").await;
    let t2 = srv.refresh(&client, &rt(&t1), &[]).await.json;
    assert_eq!(srv.revoke(&client, &rt(&t1), None).await.status, 200);
    srv.refresh(&client, &rt(&t2), &[]).await.assert_error(
        400,
        "invalid_grant",
        "earlier member revoked",
    );
    assert_dead(
        &srv,
        &client,
        &s(&t2, "access_token"),
        "AT of a revoked family",
    )
    .await;

    // Errors of the grant itself.
    srv.token(&client, &[("grant_type", "refresh_token")])
        .await
        .assert_error(400, "invalid_request", "no refresh_token");
    srv.refresh(&client, "garbage", &[])
        .await
        .assert_error(400, "invalid_grant", "unknown token");
    let no_refresh = srv.confidential(&[GrantType::Password], "openid").await;
    let t = srv.login(&client, "carol", PASSWORD, "openid").await;
    srv.refresh(&no_refresh, &rt(&t), &[]).await.assert_error(
        400,
        "unauthorized_client",
        "grant not allowed",
    );
}

// SECURITY-TESTS: RT-07
async fn refresh_has_an_idle_and_an_absolute_lifetime(b: Backend) {
    let srv = TestServer::start_with(b, |c| {
        c.tokens.refresh_idle_ttl_secs = 100;
        c.tokens.refresh_absolute_ttl_secs = 250;
    })
    .await;
    srv.user("alice", PASSWORD).await;
    let client = srv.password_client().await;

    // Idle: each use restarts the idle clock, an unused token dies.
    let t = srv.login(&client, "alice", PASSWORD, "openid").await;
    srv.advance(90);
    let t = srv.refresh(&client, &s(&t, "refresh_token"), &[]).await;
    assert_eq!(t.status, 200, "{}", t.text);
    srv.advance(99);
    let t = srv
        .refresh(&client, &s(&t.json, "refresh_token"), &[])
        .await;
    assert_eq!(t.status, 200, "used within its idle time: {}", t.text);
    srv.advance(100);
    let rt = s(&t.json, "refresh_token");
    assert!(!srv.is_active(&client, &rt).await);
    srv.refresh(&client, &rt, &[])
        .await
        .assert_error(400, "invalid_grant", "idle timeout");

    // Absolute: however often it is used, the family ends 250 s after the login.
    let mut t = srv.login(&client, "alice", PASSWORD, "openid").await;
    for _ in 0..2 {
        srv.advance(90);
        let res = srv.refresh(&client, &s(&t, "refresh_token"), &[]).await;
        assert_eq!(res.status, 200, "{}", res.text);
        t = res.json;
    }
    srv.advance(70); // 250 s after the login
    srv.refresh(&client, &s(&t, "refresh_token"), &[])
        .await
        .assert_error(400, "invalid_grant", "absolute lifetime");
}

// SECURITY-TESTS: RT-07
//
// The store and the grants honour per-client lifetimes; `client create` has no flag for
// them yet, so the client is written through the store.
async fn per_client_refresh_lifetimes_override_the_config(b: Backend) {
    let (srv, base) = setup(b).await;
    let mut c = srv.store().client(&base.id).await.unwrap().unwrap();
    c.id = "short-lived-refresh".into();
    c.refresh_idle_ttl = Some(50);
    c.refresh_absolute_ttl = Some(120);
    srv.store().insert_client(&c).await.unwrap();
    let client = TestClient {
        id: c.id.clone(),
        secret: base.secret.clone(),
    };

    let t = srv.login(&client, "alice", PASSWORD, "openid").await;
    let long = srv.login(&base, "alice", PASSWORD, "openid").await;
    srv.advance(50);
    let res = srv.refresh(&client, &s(&t, "refresh_token"), &[]).await;
    res.assert_error(400, "invalid_grant", "the client's idle lifetime");
    let res = srv.refresh(&base, &s(&long, "refresh_token"), &[]).await;
    assert_eq!(
        res.status, 200,
        "other clients keep the configured one: {}",
        res.text
    );

    let mut t = srv.login(&client, "alice", PASSWORD, "openid").await;
    for _ in 0..2 {
        srv.advance(40);
        let res = srv.refresh(&client, &s(&t, "refresh_token"), &[]).await;
        assert_eq!(res.status, 200, "{}", res.text);
        t = res.json;
    }
    srv.advance(40); // 120 s after the login
    let res = srv.refresh(&client, &s(&t, "refresh_token"), &[]).await;
    res.assert_error(400, "invalid_grant", "the client's absolute lifetime");
}

both_backends! {
    refresh_rotates_and_the_id_token_keeps_its_identity,
    reuse_after_the_grace_period_revokes_the_family,
    a_retry_within_the_grace_period_gets_the_same_successor,
    parallel_refreshes_leave_exactly_one_live_token,
    a_refresh_token_is_bound_to_its_client,
    scope_may_narrow_but_never_widen,
    refresh_dies_with_its_user_client_or_family,
    refresh_has_an_idle_and_an_absolute_lifetime,
    per_client_refresh_lifetimes_override_the_config,
}
