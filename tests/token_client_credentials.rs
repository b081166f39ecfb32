//! POST /token with client_credentials (RFC 6749 §4.4), client authentication (§2.3) and
//! the request-format rules every token request shares (§3.2, §5.2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestServer, basic_header, jwt_parts, verify_with_jwks};
use latchkey::admin::NewClient;
use latchkey::oauth::GrantType;

const CC: &[GrantType] = &[GrantType::ClientCredentials];

/// rule, client, form, status, error
type Case<'a> = (
    &'a str,
    &'a common::TestClient,
    Vec<(&'a str, &'a str)>,
    u16,
    &'a str,
);

// SECURITY-TESTS: TK-01, JW-01, TK-06
async fn token_verifies_with_the_published_jwk_for_each_algorithm(b: Backend) {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let srv = TestServer::start_with(b, |c| c.keys.algorithm = alg.into()).await;
        let client = srv.confidential(CC, "api:read api:write").await;
        let res = srv
            .token(
                &client,
                &[("grant_type", "client_credentials"), ("scope", "api:read")],
            )
            .await;
        assert_eq!(res.status, 200, "{alg}: {}", res.text);
        assert_eq!(res.header("cache-control"), Some("no-store"));
        assert_eq!(res.json["token_type"], "Bearer");
        assert_eq!(res.json["expires_in"], 3600);
        assert_eq!(res.json["scope"], "api:read");
        assert!(
            res.json.get("refresh_token").is_none(),
            "client_credentials never gets a refresh token"
        );
        let at = res.json["access_token"].as_str().unwrap();
        let (header, _) = jwt_parts(at);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], alg);
        let claims = verify_with_jwks(at, &srv.jwks().await, srv.issuer(), srv.issuer()).unwrap();
        assert_eq!(claims["sub"], client.id.as_str(), "sub is the client_id");
        assert_eq!(claims["client_id"], client.id.as_str());
        assert_eq!(claims["scope"], "api:read");
        assert!(claims["jti"].as_str().unwrap().len() >= 16);
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, 3600);
        // A token with a foreign audience does not verify for ours.
        assert!(
            verify_with_jwks(at, &srv.jwks().await, srv.issuer(), "https://other.example").is_err()
        );
        assert!(
            verify_with_jwks(at, &srv.jwks().await, "https://evil.example", srv.issuer()).is_err()
        );
        // No client id can equal a user's sub (a UUID).
        assert!(uuid::Uuid::parse_str(&client.id).is_err());
    }
}

// SECURITY-TESTS: TK-01
async fn expires_in_is_the_clients_ttl_and_no_scope_means_all(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = srv
        .client(NewClient {
            name: "short".into(),
            grant_types: CC.to_vec(),
            scope: Some("a b".into()),
            access_token_ttl: Some(120),
            ..Default::default()
        })
        .await;
    // SECURITY-TESTS: TK-05 (`scope=` empty is the default scope)
    for form in [
        vec![("grant_type", "client_credentials")],
        vec![("grant_type", "client_credentials"), ("scope", "")],
    ] {
        let res = srv.token(&client, &form).await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.json["expires_in"], 120);
        assert_eq!(res.json["scope"], "a b");
    }
}

// SECURITY-TESTS: TK-02, TK-05, BI-05, BI-07
async fn token_errors_have_their_rfc_codes(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = srv.confidential(CC, "read").await;
    let pw_only = srv.confidential(&[GrantType::Password], "openid").await;
    let public = srv
        .client(NewClient {
            name: "spa".into(),
            public: true,
            redirect_uris: vec!["https://spa.example/cb".into()],
            ..Default::default()
        })
        .await;
    let bad = common::TestClient {
        id: client.id.clone(),
        secret: Some("wrong".into()),
    };
    let cases: Vec<Case> = vec![
        (
            "grant_type is required",
            &client,
            vec![("scope", "read")],
            400,
            "invalid_request",
        ),
        (
            "empty grant_type is absent",
            &client,
            vec![("grant_type", "")],
            400,
            "invalid_request",
        ),
        (
            "names are case-sensitive",
            &client,
            vec![("GRANT_TYPE", "client_credentials")],
            400,
            "invalid_request",
        ),
        (
            "unknown grant_type",
            &client,
            vec![("grant_type", "magic")],
            400,
            "unsupported_grant_type",
        ),
        (
            "scope outside the client's",
            &client,
            vec![("grant_type", "client_credentials"), ("scope", "admin")],
            400,
            "invalid_scope",
        ),
        (
            "grant not allowed",
            &pw_only,
            vec![("grant_type", "client_credentials")],
            400,
            "unauthorized_client",
        ),
        (
            "wrong secret by Basic",
            &bad,
            vec![("grant_type", "client_credentials")],
            401,
            "invalid_client",
        ),
        (
            "authorization_code without code",
            &client,
            vec![("grant_type", "authorization_code")],
            400,
            "unauthorized_client",
        ),
    ];
    for (rule, c, form, status, error) in cases {
        let res = srv.token(c, &form).await;
        res.assert_error(status, error, rule);
        if status == 401 {
            assert!(
                res.header("www-authenticate")
                    .unwrap()
                    .starts_with("Basic realm="),
                "{rule}"
            );
        }
    }
    // Unknown parameters are ignored.
    let res = srv
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("foo", "bar")],
        )
        .await;
    assert_eq!(res.status, 200);
    // Wrong secret by client_secret_post.
    let res = srv
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.id),
                ("client_secret", "nope"),
            ],
        )
        .await;
    res.assert_error(401, "invalid_client", "wrong secret by post");
    // Unknown client.
    let res = srv
        .post_form(
            "/token",
            Some(("nobody", "x")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    res.assert_error(401, "invalid_client", "unknown client");
    // A public client may not use client_credentials (it has no secret to prove).
    let res = srv
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &public.id),
            ],
        )
        .await;
    res.assert_error(
        400,
        "unauthorized_client",
        "public client asks client_credentials",
    );
    // client_secret_post works.
    let res = srv
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.id),
                ("client_secret", client.secret.as_deref().unwrap()),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
}

// SECURITY-TESTS: TK-03
async fn one_authentication_method_per_request(b: Backend) {
    let srv = TestServer::start(b).await;
    let a = srv.confidential(CC, "read").await;
    let other = srv.confidential(CC, "read").await;
    let secret = a.secret.clone().unwrap();
    let res = srv
        .post_form(
            "/token",
            Some((&a.id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", &secret),
            ],
        )
        .await;
    res.assert_error(
        400,
        "invalid_request",
        "Basic and client_secret in the body",
    );
    let res = srv
        .post_form(
            "/token",
            Some((&a.id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &other.id),
            ],
        )
        .await;
    res.assert_error(400, "invalid_request", "Basic for A with client_id=B");
    let url = srv.url(&format!("/token?client_id={}&client_secret={secret}", a.id));
    let res = TestServer::read(
        srv.http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(400, "invalid_request", "secret in the URL query");
    // Basic credentials are form-urlencoded before base64 (RFC 6749 §2.3.1).
    let res = TestServer::read(
        srv.http
            .post(srv.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic_header(&a.id, &secret))
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200);
}

// SECURITY-TESTS: TK-07
async fn resource_indicators_pick_the_audience(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = srv
        .client(NewClient {
            name: "rs".into(),
            grant_types: CC.to_vec(),
            scope: Some("read".into()),
            resources: vec![
                "https://api.example/".into(),
                "https://other.example/".into(),
            ],
            ..Default::default()
        })
        .await;
    let res = srv
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.example/"),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let (_, claims) = jwt_parts(res.json["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://api.example/");
    let res = srv
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.example/"),
                ("resource", "https://other.example/"),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "repeating resource is legal: {}", res.text);
    let (_, claims) = jwt_parts(res.json["access_token"].as_str().unwrap());
    assert_eq!(
        claims["aud"],
        serde_json::json!(["https://api.example/", "https://other.example/"])
    );
    for bad in [
        "https://evil.example/",
        "/relative",
        "https://api.example/#frag",
    ] {
        let res = srv
            .token(
                &client,
                &[("grant_type", "client_credentials"), ("resource", bad)],
            )
            .await;
        res.assert_error(400, "invalid_target", bad);
    }
}

// SECURITY-TESTS: BI-01
async fn duplicate_parameters_are_invalid_request(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = srv.confidential(CC, "read").await;
    for name in [
        "grant_type",
        "scope",
        "client_id",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
    ] {
        let body = format!("grant_type=client_credentials&{name}=a&{name}=b");
        let body = if name == "grant_type" {
            "grant_type=client_credentials&grant_type=client_credentials".into()
        } else {
            body
        };
        let res = TestServer::read(
            srv.http
                .post(srv.url("/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header(
                    "authorization",
                    basic_header(&client.id, client.secret.as_deref().unwrap()),
                )
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        res.assert_error(400, "invalid_request", name);
        assert!(
            res.json["error_description"]
                .as_str()
                .unwrap()
                .contains(name),
            "the description names {name}"
        );
    }
    for path in ["/revoke", "/introspect"] {
        let res = TestServer::read(
            srv.http
                .post(srv.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .header(
                    "authorization",
                    basic_header(&client.id, client.secret.as_deref().unwrap()),
                )
                .body("token=a&token=b")
                .send()
                .await
                .unwrap(),
        )
        .await;
        res.assert_error(400, "invalid_request", path);
    }
}

async fn raw_post(
    srv: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> common::Res {
    let mut req = srv.http.post(srv.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    TestServer::read(req.send().await.unwrap()).await
}

// SECURITY-TESTS: BI-02, BI-03
async fn malformed_bodies_are_invalid_request_json(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = srv.confidential(CC, "read").await;
    let auth = basic_header(&client.id, client.secret.as_deref().unwrap());
    for ct in [
        Some("application/json"),
        Some("multipart/form-data; boundary=x"),
        Some("text/plain"),
        None,
    ] {
        let mut req = srv
            .http
            .post(srv.url("/token"))
            .header("authorization", &auth)
            .body("grant_type=client_credentials");
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let res = TestServer::read(req.send().await.unwrap()).await;
        res.assert_error(400, "invalid_request", &format!("content type {ct:?}"));
    }
    let res = TestServer::read(
        srv.http
            .post(srv.url("/token"))
            .header("authorization", &auth)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200, "charset parameter is accepted");
    // 64 KiB + 1.
    let mut big = b"grant_type=client_credentials&pad=".to_vec();
    big.resize(64 * 1024 + 1, b'a');
    let res = raw_post(
        &srv,
        "/token",
        Some("application/x-www-form-urlencoded"),
        big.clone(),
    )
    .await;
    res.assert_error(400, "invalid_request", "body over 64 KiB");
    // The same, chunked.
    let stream = futures::stream::iter(
        big.chunks(4096)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let res = TestServer::read(
        srv.http
            .post(srv.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(400, "invalid_request", "chunked body over 64 KiB");
    // 10 000 parameters: refused quickly.
    let many: String = (0..10_000).map(|i| format!("p{i}=1&")).collect();
    let res = raw_post(
        &srv,
        "/token",
        Some("application/x-www-form-urlencoded"),
        many.into_bytes(),
    )
    .await;
    res.assert_error(400, "invalid_request", "10 000 parameters");
    // Invalid UTF-8 after percent-decoding.
    let res = raw_post(
        &srv,
        "/token",
        Some("application/x-www-form-urlencoded"),
        b"grant_type=%FF%FE".to_vec(),
    )
    .await;
    res.assert_error(400, "invalid_request", "invalid UTF-8");
    let res = raw_post(
        &srv,
        "/token",
        Some("application/x-www-form-urlencoded"),
        b"grant_type=\xff".to_vec(),
    )
    .await;
    res.assert_error(400, "invalid_request", "raw invalid UTF-8");
}

// SECURITY-TESTS: BI-06
async fn wrong_methods_and_paths(b: Backend) {
    let srv = TestServer::start(b).await;
    for path in ["/token", "/revoke", "/introspect"] {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let res = TestServer::read(
                srv.http
                    .request(method.clone(), srv.url(path))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            res.assert_error(405, "invalid_request", &format!("{method} {path}"));
            assert_eq!(res.header("allow"), Some("POST"), "{method} {path}");
        }
    }
    for path in ["/jwks", "/.well-known/openid-configuration"] {
        let res = srv.http.head(srv.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "HEAD {path}");
    }
    for path in ["/token/", "//token", "/TOKEN"] {
        let res = srv
            .post_form(path, None, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(res.status, 404, "{path}");
        assert_eq!(res.json["error"], "invalid_request");
    }
}

// SECURITY-TESTS: DK-01, DK-02
async fn discovery_documents_agree_and_say_what_works(b: Backend) {
    let srv = TestServer::start(b).await;
    let oidc = srv.get("/.well-known/openid-configuration").await;
    let oauth = srv.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(oidc.status, 200);
    assert_eq!(oidc.json, oauth.json, "the two documents agree");
    let d = &oidc.json;
    assert_eq!(d["issuer"], srv.issuer());
    for member in [
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        assert!(
            d[member].as_str().unwrap().starts_with(srv.issuer()),
            "{member}"
        );
    }
    let algs: Vec<&str> = d["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(algs.contains(&"RS256"));
    assert!(!algs.iter().any(|a| *a == "none" || a.starts_with("HS")));
    assert_eq!(d["request_uri_parameter_supported"], false);
    assert!(
        d["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"openid".into())
    );
    // Every advertised grant type with a token-endpoint step is accepted by the dispatcher;
    // implicit (RFC 8414 lists it too) has none and is refused before any client lookup.
    let client = srv
        .confidential(&[GrantType::ClientCredentials], "read")
        .await;
    let res = srv.token(&client, &[("grant_type", "implicit")]).await;
    res.assert_error(400, "unsupported_grant_type", "implicit at /token");
    for g in d["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| *g != "implicit")
    {
        let res = srv
            .token(&client, &[("grant_type", g.as_str().unwrap())])
            .await;
        assert_ne!(
            res.json["error"], "unsupported_grant_type",
            "{g} is advertised"
        );
    }
    let jwks = srv
        .get(
            d["jwks_uri"]
                .as_str()
                .unwrap()
                .trim_start_matches(srv.issuer()),
        )
        .await;
    assert_eq!(jwks.status, 200);
}

// SECURITY-TESTS: JW-08
async fn jwks_publishes_public_members_only(b: Backend) {
    let srv = TestServer::start(b).await;
    let res = srv.get("/jwks").await;
    let cc = res.header("cache-control").unwrap();
    assert!(cc.contains("max-age=300"), "{cc}");
    let keys = res.json["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    let mut kids = std::collections::HashSet::new();
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(k.get(private).is_none(), "JWK leaks {private}");
        }
        assert_eq!(k["use"], "sig");
        assert!(k["alg"].is_string());
        assert!(
            kids.insert(k["kid"].as_str().unwrap().to_owned()),
            "kids are unique"
        );
        if k["kty"] == "RSA" {
            let n = base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                k["n"].as_str().unwrap(),
            )
            .unwrap();
            assert!(n.len() * 8 >= 2048);
        }
    }
}

both_backends! {
    token_verifies_with_the_published_jwk_for_each_algorithm,
    expires_in_is_the_clients_ttl_and_no_scope_means_all,
    token_errors_have_their_rfc_codes,
    one_authentication_method_per_request,
    resource_indicators_pick_the_audience,
    duplicate_parameters_are_invalid_request,
    malformed_bodies_are_invalid_request_json,
    wrong_methods_and_paths,
    discovery_documents_agree_and_say_what_works,
    jwks_publishes_public_members_only,
}
