//! POST /token with grant_type=password (RFC 6749 §4.3): response shape, user tokens, the
//! equal answer for every bad credential, client rules and password-size rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestServer, USER_SCOPE, jwt_parts, verify_with_jwks};
use latchkey::admin::{self, NewClient};
use latchkey::oauth::GrantType;

const PASSWORD: &str = "correct horse battery staple";

fn scope_set(s: &serde_json::Value) -> std::collections::BTreeSet<String> {
    s.as_str().unwrap().split(' ').map(str::to_owned).collect()
}

// SECURITY-TESTS: TK-01, TK-06, JW-01, JW-02, PW-06
async fn password_grant_response_has_the_rfc_shape(b: Backend) {
    let srv = TestServer::start(b).await;
    // A 64-character password works (NIST SP 800-63B §5.1.1.2).
    let long = "p".repeat(32) + &"Q".repeat(32);
    let user = srv.user("alice", &long).await;
    let client = srv.password_client().await;

    let res = srv
        .password_grant(&client, "alice", &long, "openid profile email")
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let t = &res.json;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(
        t["expires_in"], 3600,
        "expires_in is an integer, the client's TTL"
    );
    assert_eq!(
        scope_set(&t["scope"]),
        ["email", "openid", "profile"].map(String::from).into()
    );
    let rt = t["refresh_token"]
        .as_str()
        .expect("a client allowed refresh_token gets one");
    assert!(rt.len() >= 43, "at least 256 bits");

    // The access token names the user by id, never by username.
    let at = t["access_token"].as_str().unwrap();
    let claims = verify_with_jwks(at, &srv.jwks().await, srv.issuer(), srv.issuer()).unwrap();
    assert_eq!(claims["sub"], user.id.to_string());
    assert_ne!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(jwt_parts(at).0["typ"], "at+jwt");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    // openid asked: an ID token for this client, with the claims the scope released.
    let id = t["id_token"]
        .as_str()
        .expect("scope openid gets an id_token");
    let (header, _) = jwt_parts(id);
    assert_ne!(header["typ"], "at+jwt");
    let idc = verify_with_jwks(id, &srv.jwks().await, srv.issuer(), &client.id).unwrap();
    assert_eq!(idc["sub"], user.id.to_string());
    assert_eq!(idc["aud"], client.id.as_str());
    assert_eq!(idc["auth_time"], idc["iat"]);
    assert!(idc["at_hash"].is_string());
    assert_eq!(idc["email"], "alice@example.com");
    assert_eq!(idc["name"], "Alice Example");
    assert_eq!(idc["preferred_username"], "alice");

    // No openid: no ID token; the refresh token still comes (documented: whenever the
    // client may refresh).
    let t = srv.login(&client, "alice", &long, "api").await;
    assert!(t.get("id_token").is_none());
    assert!(t["refresh_token"].is_string());
    assert_eq!(t["scope"], "api");

    // A client without the refresh_token grant gets no refresh token.
    let no_refresh = srv.confidential(&[GrantType::Password], "openid api").await;
    let t = srv.login(&no_refresh, "alice", &long, "openid").await;
    assert!(t.get("refresh_token").is_none());
    assert!(t["id_token"].is_string());

    // No scope asked: the client's whole scope.
    let t = srv
        .token(
            &no_refresh,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", &long),
            ],
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(
        scope_set(&t.json["scope"]),
        ["api", "openid"].map(String::from).into()
    );
}

// SECURITY-TESTS: PW-02
async fn bad_credentials_get_one_byte_identical_answer(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PASSWORD).await;
    srv.user("bob", PASSWORD).await;
    admin::set_disabled(srv.store(), "bob", true, srv.now())
        .await
        .unwrap();
    let client = srv.password_client().await;

    let mut bodies = Vec::new();
    for (rule, username, password) in [
        ("unknown user", "mallory", PASSWORD),
        ("wrong password", "alice", "not the password"),
        ("disabled user, right password", "bob", PASSWORD),
    ] {
        let before = srv.verifications().await;
        let res = srv
            .password_grant(&client, username, password, "openid")
            .await;
        res.assert_error(400, "invalid_grant", rule);
        assert_eq!(
            srv.verifications().await,
            before + 1,
            "{rule}: exactly one hash"
        );
        bodies.push((rule, res.text));
    }
    for (rule, body) in &bodies[1..] {
        assert_eq!(
            body, &bodies[0].1,
            "{rule} answers byte for byte like {}",
            bodies[0].0
        );
    }
    // Usernames are matched exactly.
    let res = srv
        .password_grant(&client, "ALICE", PASSWORD, "openid")
        .await;
    assert_eq!(res.text, bodies[0].1);
}

// SECURITY-TESTS: PW-05, TK-03
async fn password_grant_is_for_confidential_clients_allowed_it(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PASSWORD).await;
    let public = srv
        .client(NewClient {
            name: "spa".into(),
            public: true,
            redirect_uris: vec!["https://spa.example/cb".into()],
            ..Default::default()
        })
        .await;
    let cc_only = srv
        .confidential(&[GrantType::ClientCredentials], "api")
        .await;
    let client = srv.password_client().await;
    let before = srv.verifications().await;

    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    let mut public_form = form.to_vec();
    public_form.push(("client_id", &public.id));
    let res = srv.post_form("/token", None, &public_form).await;
    res.assert_error(400, "unauthorized_client", "public client");
    let res = srv.token(&cc_only, &form).await;
    res.assert_error(
        400,
        "unauthorized_client",
        "client not allowed the password grant",
    );

    // The password in the URL query: refused, whatever the body says.
    let res = TestServer::read(
        srv.http
            .post(srv.url(&format!("/token?password={}", PASSWORD.replace(' ', "+"))))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                common::basic_header(&client.id, client.secret.as_deref().unwrap()),
            )
            .body("grant_type=password&username=alice")
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(400, "invalid_request", "password in the URL query");
    assert!(!res.text.contains("horse"), "the password is not echoed");

    for (rule, form) in [
        (
            "username is required",
            vec![("grant_type", "password"), ("password", PASSWORD)],
        ),
        (
            "password is required",
            vec![("grant_type", "password"), ("username", "alice")],
        ),
        (
            "empty password is absent",
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", ""),
            ],
        ),
    ] {
        srv.token(&client, &form)
            .await
            .assert_error(400, "invalid_request", rule);
    }
    let res = srv
        .password_grant(&client, "alice", PASSWORD, "admin")
        .await;
    res.assert_error(400, "invalid_scope", "scope outside the client's");
    assert_eq!(
        srv.verifications().await,
        before,
        "none of these hashed a password"
    );
}

// SECURITY-TESTS: PW-06, BI-03
async fn oversized_passwords_are_refused_before_hashing(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PASSWORD).await;
    let client = srv.password_client().await;
    let before = srv.verifications().await;

    let four_kib = "a".repeat(4096);
    let res = srv
        .password_grant(&client, "alice", &four_kib, "openid")
        .await;
    res.assert_error(400, "invalid_request", "4 KiB password");
    // 1 MiB is over the 64 KiB body limit: the same error, from the body reader.
    let one_mib = "a".repeat(1024 * 1024);
    let res = srv
        .password_grant(&client, "alice", &one_mib, "openid")
        .await;
    res.assert_error(400, "invalid_request", "1 MiB password");
    assert_eq!(
        srv.verifications().await,
        before,
        "no hash for an oversized password"
    );
    // Neither counted as a failed attempt: the right password still works at once.
    srv.login(&client, "alice", PASSWORD, "openid").await;
}

// SECURITY-TESTS: BI-08, BI-07, PW-02
async fn impossible_usernames_are_bad_credentials_not_500(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = srv.password_client().await;
    let before = srv.verifications().await;
    // PostgreSQL refused these (NUL in text; an index key over ~2.7 KB) with a 500.
    let cjk: String = (0..3000u32)
        .map(|i| char::from_u32(0x4e00 + (i * 7919) % 20000).unwrap())
        .collect();
    // NUL never reaches the store: parameters carrying it are malformed requests.
    let res = srv
        .password_grant(&client, "ali\u{0}ce", PASSWORD, "openid")
        .await;
    res.assert_error(400, "invalid_request", "NUL");
    for (rule, username) in [
        ("control character", "ali\nce".to_owned()),
        ("256 bytes", "u".repeat(256)),
        ("9 KB of CJK", cjk),
    ] {
        let res = srv
            .password_grant(&client, &username, PASSWORD, "openid")
            .await;
        res.assert_error(400, "invalid_grant", rule);
        assert_eq!(
            res.json["error_description"],
            "the username or password is incorrect"
        );
    }
    assert_eq!(
        srv.verifications().await,
        before,
        "no account can have these names: nothing to hash"
    );
    // 255 bytes is a possible name: an ordinary unknown user, hashed once.
    let res = srv
        .password_grant(&client, &"u".repeat(255), PASSWORD, "openid")
        .await;
    res.assert_error(400, "invalid_grant", "255 bytes");
    assert_eq!(srv.verifications().await, before + 1);
}

// SECURITY-TESTS: PW-06
async fn passwords_are_compared_as_the_bytes_given(b: Backend) {
    // Documented: no Unicode normalisation; the bytes sent at login must be the bytes set.
    let nfc = "pa\u{00df}w\u{00f6}rd-caf\u{00e9}";
    let nfd = "pa\u{00df}wo\u{0308}rd-cafe\u{0301}";
    assert_ne!(nfc.as_bytes(), nfd.as_bytes());
    let srv = TestServer::start(b).await;
    srv.user("nfc", nfc).await;
    srv.user("nfd", nfd).await;
    let client = srv.password_client().await;
    srv.login(&client, "nfc", nfc, "openid").await;
    srv.login(&client, "nfd", nfd, "openid").await;
    srv.password_grant(&client, "nfc", nfd, "openid")
        .await
        .assert_error(400, "invalid_grant", "NFD for an NFC password");
    srv.password_grant(&client, "nfd", nfc, "openid")
        .await
        .assert_error(400, "invalid_grant", "NFC for an NFD password");
}

// SECURITY-TESTS: TK-01
async fn user_token_lifetime_is_the_clients(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PASSWORD).await;
    let client = srv
        .client(NewClient {
            name: "short".into(),
            grant_types: common::USER_GRANTS.to_vec(),
            scope: Some(USER_SCOPE.into()),
            access_token_ttl: Some(300),
            ..Default::default()
        })
        .await;
    let t = srv.login(&client, "alice", PASSWORD, "openid").await;
    assert_eq!(t["expires_in"], 300);
    let (_, claims) = jwt_parts(t["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    let r = srv
        .refresh(&client, t["refresh_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["expires_in"], 300,
        "every token response carries expires_in"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

both_backends! {
    password_grant_response_has_the_rfc_shape,
    bad_credentials_get_one_byte_identical_answer,
    password_grant_is_for_confidential_clients_allowed_it,
    oversized_passwords_are_refused_before_hashing,
    impossible_usernames_are_bad_credentials_not_500,
    passwords_are_compared_as_the_bytes_given,
    user_token_lifetime_is_the_clients,
}
