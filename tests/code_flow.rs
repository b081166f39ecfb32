//! The authorization code flow end to end over HTTP (RFC 6749 §4.1, RFC 7636, OIDC Core §3.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, as_refs, code_request, location_params, param};
use common::{Backend, TestServer, jwt_parts, verify_with_jwks};
use latchkey::admin::NewClient;
use latchkey::oauth::GrantType;

// SECURITY-TESTS: OC-01, AZ-07, BR-05
async fn code_flow_with_pkce_signs_a_user_in(b: Backend) {
    let srv = TestServer::start(b).await;
    let user = srv.user("alice", "correct horse battery").await;
    let client = srv
        .client(NewClient {
            name: "Photo App".into(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec!["https://app.example/cb".into()],
            scope: Some("openid profile email offline_access".into()),
            ..Default::default()
        })
        .await;
    let browser = Browser::new(&srv);
    let (params, verifier) = code_request(&client, "openid profile email offline_access");
    let res = browser
        .sign_in(&as_refs(&params), "alice", "correct horse battery")
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let location = res.header("location").unwrap();
    assert!(
        location.starts_with("https://app.example/cb?"),
        "{location}"
    );
    let got = location_params(location);
    assert_eq!(param(&got, "state").as_deref(), Some("xyz"));
    assert_eq!(param(&got, "iss").as_deref(), Some(srv.issuer()));
    let code = param(&got, "code").unwrap();
    assert!(code.len() >= 43);

    let res = srv
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://app.example/cb"),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["token_type"], "Bearer");
    assert_eq!(res.json["expires_in"], 3600);
    assert!(res.json["refresh_token"].is_string());
    let id_token = res.json["id_token"].as_str().unwrap();
    let (header, _) = jwt_parts(id_token);
    assert_eq!(header["typ"], "JWT");
    let claims = verify_with_jwks(id_token, &srv.jwks().await, srv.issuer(), &client.id).unwrap();
    assert_eq!(claims["sub"], user.id.to_string());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert!(claims["auth_time"].is_i64());
    assert!(claims["at_hash"].is_string());
    let at = res.json["access_token"].as_str().unwrap();
    let info = srv.get_bearer("/userinfo", at).await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert_eq!(info.json["sub"], user.id.to_string());
    assert_eq!(info.json["email"], "alice@example.com");

    // A second sign-in in the same browser is silent: consent is remembered.
    let (params, _) = code_request(&client, "openid profile");
    let res = browser.authorize(&as_refs(&params)).await;
    assert_eq!(res.status, 303);
    assert!(
        res.header("location")
            .unwrap()
            .starts_with("https://app.example/cb?code="),
        "{:?}",
        res.header("location")
    );
}

both_backends! {
    code_flow_with_pkce_signs_a_user_in,
}
