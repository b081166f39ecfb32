//! OpenID Connect at the authorization endpoint (OIDC Core §2, §3.1.2, §3.1.3, §5.4):
//! ID tokens, claims by scope, prompt, max_age, id_token_hint; each with the query and the
//! form_post response modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::browser::{
    Browser, CB, as_refs, assert_redirect_error, code_client, code_params, param, redeem,
    response_params,
};
use common::{Backend, Res, TestClient, TestServer, foreign_jwt, jwt_parts, verify_with_jwks};
use latchkey::admin::NewClient;
use latchkey::model::AuthMethod;
use latchkey::oauth::GrantType;
use serde_json::Value;

const PW: &str = "correct horse battery";
/// The response modes OC-01..08 run with.
const MODES: [&str; 2] = ["query", "form_post"];

/// Code-flow parameters in a response mode (`query` is the default, so it is not sent).
fn params_in(
    client: &TestClient,
    scope: &str,
    mode: &str,
    changes: &[(&str, &str)],
) -> (Vec<(String, String)>, String) {
    let mut all = vec![("response_mode", if mode == "query" { "" } else { mode })];
    all.extend_from_slice(changes);
    code_params(client, scope, &all)
}

/// The response parameters of an answer that must reach the client (no error).
#[track_caller]
fn answer(res: &Res, rule: &str) -> Vec<(String, String)> {
    let (_, got) = response_params(res, CB);
    assert!(param(&got, "error").is_none(), "{rule}: {got:?}");
    got
}

/// The code of an answer, checking state and iss.
#[track_caller]
fn code_of(res: &Res, iss: &str, rule: &str) -> String {
    let got = answer(res, rule);
    assert_eq!(param(&got, "state").as_deref(), Some("xyz"), "{rule}");
    assert_eq!(param(&got, "iss").as_deref(), Some(iss), "{rule}");
    param(&got, "code").unwrap_or_else(|| panic!("{rule}: {got:?}"))
}

/// Redeems a code; returns the token response, which must be 200.
async fn tokens(srv: &TestServer, client: &TestClient, code: &str, verifier: &str) -> Value {
    let res = redeem(srv, client, code, verifier).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json
}

/// The verified claims of the ID token of a token response.
async fn id_claims(srv: &TestServer, client: &TestClient, json: &Value) -> Value {
    let id_token = json["id_token"].as_str().expect("an ID token");
    verify_with_jwks(id_token, &srv.jwks().await, srv.issuer(), &client.id).unwrap()
}

/// The ID token claims from a full sign-in in `browser` (which may show the login page).
async fn sign_in_claims(
    srv: &TestServer,
    browser: &Browser<'_>,
    client: &TestClient,
    mode: &str,
    changes: &[(&str, &str)],
) -> Value {
    let (params, verifier) = params_in(client, "openid", mode, changes);
    let res = browser.sign_in(&as_refs(&params), "alice", PW).await;
    let code = code_of(&res, srv.issuer(), mode);
    id_claims(srv, client, &tokens(srv, client, &code, &verifier).await).await
}

/// The ID token claims of a request that must be answered without any page.
async fn silent_claims(
    srv: &TestServer,
    browser: &Browser<'_>,
    client: &TestClient,
    mode: &str,
    changes: &[(&str, &str)],
) -> Value {
    let (params, verifier) = params_in(client, "openid", mode, changes);
    let res = browser.authorize(&as_refs(&params)).await;
    let code = code_of(&res, srv.issuer(), &format!("silent {mode} {changes:?}"));
    id_claims(srv, client, &tokens(srv, client, &code, &verifier).await).await
}

/// A client registered for exactly one token-endpoint authentication method.
async fn client_with_method(srv: &TestServer, method: Option<AuthMethod>) -> TestClient {
    srv.client(NewClient {
        name: "Photo App".into(),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec![CB.into()],
        scope: Some("openid profile email offline_access".into()),
        auth_method: method,
        ..Default::default()
    })
    .await
}

/// POST /token for a code with client_secret_post.
async fn redeem_post(srv: &TestServer, client: &TestClient, code: &str, verifier: &str) -> Res {
    srv.post_form(
        "/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", verifier),
            ("client_id", &client.id),
            ("client_secret", client.secret.as_deref().unwrap()),
        ],
    )
    .await
}

// SECURITY-TESTS: OC-01
async fn the_code_flow_yields_a_conformant_id_token(b: Backend) {
    let srv = TestServer::start(b).await;
    let alice = srv.user("alice", PW).await;
    let iss = srv.issuer().to_owned();
    let any = client_with_method(&srv, None).await;
    let browser = Browser::new(&srv);
    let jwks = srv.jwks().await;
    let scope = "openid profile email offline_access";
    for mode in MODES {
        for auth in ["client_secret_basic", "client_secret_post"] {
            let rule = format!("{mode} {auth}");
            let (params, verifier) = params_in(&any, scope, mode, &[]);
            let res = browser.sign_in(&as_refs(&params), "alice", PW).await;
            let code = code_of(&res, &iss, &rule);
            let res = if auth == "client_secret_basic" {
                redeem(&srv, &any, &code, &verifier).await
            } else {
                redeem_post(&srv, &any, &code, &verifier).await
            };
            assert_eq!(res.status, 200, "{rule}: {}", res.text);
            let id_token = res.json["id_token"].as_str().unwrap();
            let (header, _) = jwt_parts(id_token);
            let kid = header["kid"].as_str().unwrap();
            assert!(
                jwks["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kid"] == kid),
                "{rule}: kid in JWKS"
            );
            let c = verify_with_jwks(id_token, &jwks, &iss, &any.id).unwrap();
            let now = srv.now();
            assert_eq!(c["iss"], iss, "{rule}");
            assert_eq!(c["aud"], any.id, "{rule}: aud is the client");
            assert!(c.get("azp").is_none_or(|azp| *azp == any.id), "{rule}");
            let exp = c["exp"].as_i64().unwrap();
            assert!(exp > now && exp < now + 50 * 365 * 86400, "{rule}: exp");
            assert!(
                (c["iat"].as_i64().unwrap() - now).abs() <= 300,
                "{rule}: iat"
            );
            assert_eq!(c["nonce"], "n-0S6_WzA2Mj", "{rule}");
            assert!(c["auth_time"].as_i64().unwrap() <= now, "{rule}");
            let sub = c["sub"].as_str().unwrap();
            assert!(
                sub.len() <= 255 && sub.is_ascii() && !sub.is_empty(),
                "{rule}"
            );
            assert_eq!(sub, alice.id.to_string());
            let at = res.json["access_token"].as_str().unwrap();
            // OIDC Core §3.1.3.6: the left half of the hash of the JWS alg.
            let digest: Vec<u8> = match header["alg"].as_str().unwrap() {
                "EdDSA" => <sha2::Sha512 as sha2::Digest>::digest(at.as_bytes()).to_vec(),
                _ => <sha2::Sha256 as sha2::Digest>::digest(at.as_bytes()).to_vec(),
            };
            let half = &digest[..digest.len() / 2];
            assert_eq!(
                c["at_hash"],
                URL_SAFE_NO_PAD.encode(half),
                "{rule}: at_hash"
            );
            let info = srv.get_bearer("/userinfo", at).await;
            assert_eq!(info.status, 200, "{rule}: {}", info.text);
            assert_eq!(info.json["sub"], sub, "{rule}: userinfo has the same sub");
        }
    }
    // OIDC Core §9: a client registered for one method is refused with the other.
    let post_only = client_with_method(&srv, Some(AuthMethod::ClientSecretPost)).await;
    let basic_only = client_with_method(&srv, Some(AuthMethod::ClientSecretBasic)).await;
    for (client, ok_is_post) in [(&post_only, true), (&basic_only, false)] {
        let (code, verifier) = browser.code(client, "openid", "alice", PW).await;
        let wrong = if ok_is_post {
            redeem(&srv, client, &code, &verifier).await
        } else {
            redeem_post(&srv, client, &code, &verifier).await
        };
        wrong.assert_error(401, "invalid_client", "the other auth method");
        let (code, verifier) = browser.code(client, "openid", "alice", PW).await;
        let right = if ok_is_post {
            redeem_post(&srv, client, &code, &verifier).await
        } else {
            redeem(&srv, client, &code, &verifier).await
        };
        assert_eq!(right.status, 200, "{}", right.text);
    }
}

/// A first-party client that may also use the implicit flow, with every claim scope.
async fn oidc_client(srv: &TestServer) -> TestClient {
    srv.client(NewClient {
        name: "Photo App".into(),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::Implicit],
        redirect_uris: vec![CB.into()],
        scope: Some("openid profile email address phone".into()),
        first_party: true,
        ..Default::default()
    })
    .await
}

// SECURITY-TESTS: OC-02
async fn nonce_is_optional_for_code_and_required_for_implicit_id_tokens(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = oidc_client(&srv).await;
    let browser = Browser::new(&srv);
    for mode in MODES {
        let c = sign_in_claims(&srv, &browser, &client, mode, &[("nonce", "")]).await;
        assert!(c.get("nonce").is_none(), "{mode}: no nonce claim: {c}");
        let (params, _) = params_in(
            &client,
            "openid",
            mode,
            &[("response_type", "id_token token"), ("nonce", "")],
        );
        let res = browser.authorize(&as_refs(&params)).await;
        assert_redirect_error(&res, CB, "invalid_request", Some("xyz"), srv.issuer(), mode);
    }
}

/// The claims beyond the protocol's own.
fn user_claims(c: &Value) -> Vec<String> {
    let protocol = [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "at_hash",
        "c_hash",
        "azp",
    ];
    let mut keys: Vec<String> = c
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !protocol.contains(&k.as_str()))
        .cloned()
        .collect();
    keys.sort();
    keys
}

// SECURITY-TESTS: OC-03
async fn claims_follow_the_granted_scopes_in_any_order(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = oidc_client(&srv).await;
    let browser = Browser::new(&srv);
    sign_in_claims(&srv, &browser, &client, "query", &[]).await;
    let profile = [
        "family_name",
        "given_name",
        "name",
        "preferred_username",
        "updated_at",
    ];
    let email = ["email", "email_verified"];
    for mode in MODES {
        for (scope, expected) in [
            ("openid", vec![]),
            ("openid profile", profile.to_vec()),
            ("openid email", email.to_vec()),
            ("openid address", vec![]),
            ("openid phone", vec![]),
            (
                "openid profile email address phone",
                [&profile[..], &email[..]].concat(),
            ),
            (
                "phone address email profile openid",
                [&profile[..], &email[..]].concat(),
            ),
        ] {
            let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            expected.sort();
            let (mut params, verifier) = params_in(&client, scope, mode, &[]);
            params.reverse(); // parameter order never matters
            let res = browser.authorize(&as_refs(&params)).await;
            let code = code_of(&res, srv.issuer(), scope);
            let json = tokens(&srv, &client, &code, &verifier).await;
            let granted: Vec<&str> = json["scope"].as_str().unwrap().split(' ').collect();
            for s in scope.split(' ') {
                assert!(granted.contains(&s), "{scope}: granted {granted:?}");
            }
            let c = id_claims(&srv, &client, &json).await;
            assert_eq!(user_claims(&c), expected, "{mode} {scope}: ID token {c}");
            let info = srv
                .get_bearer("/userinfo", json["access_token"].as_str().unwrap())
                .await;
            assert_eq!(info.status, 200);
            let mut in_userinfo = user_claims(&info.json);
            in_userinfo.retain(|k| k != "sub");
            assert_eq!(
                in_userinfo, expected,
                "{mode} {scope}: userinfo {}",
                info.text
            );
        }
    }
}

// SECURITY-TESTS: OC-04
async fn unsupported_optional_parameters_are_ignored(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = oidc_client(&srv).await;
    let claims = r#"{"id_token":{"name":{"essential":true}},"userinfo":{"email":null}}"#;
    for mode in MODES {
        for extra in [
            ("display", "popup"),
            ("ui_locales", "fr-CA fr en"),
            ("claims_locales", "de en"),
            ("acr_values", "1 2"),
            ("login_hint", "alice"),
            ("claims", claims),
            ("extra", "foobar"),
            ("prompt", "select_account"),
        ] {
            let browser = Browser::new(&srv);
            let (params, _) = params_in(&client, "openid profile", mode, &[extra]);
            let res = browser.authorize(&as_refs(&params)).await;
            let login = res.header("location").unwrap().to_owned();
            let page = browser.get(&login).await;
            assert_eq!(page.status, 200, "{extra:?}");
            if extra.0 == "login_hint" {
                assert!(
                    page.text.contains("value=\"alice\""),
                    "login_hint fills the form"
                );
            }
            let c = sign_in_claims(&srv, &browser, &client, mode, &[extra]).await;
            assert_eq!(c["aud"], client.id, "{mode} {extra:?}");
        }
    }
}

// SECURITY-TESTS: OC-05
async fn prompt_login_asks_again_and_moves_auth_time(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = oidc_client(&srv).await;
    for mode in MODES {
        let browser = Browser::new(&srv);
        let first = sign_in_claims(&srv, &browser, &client, mode, &[]).await;
        srv.advance(5);
        let (params, _) = params_in(&client, "openid", mode, &[("prompt", "login")]);
        let res = browser.authorize(&as_refs(&params)).await;
        assert_eq!(res.status, 303);
        let login = res.header("location").unwrap().to_owned();
        assert!(
            login.starts_with("/login?"),
            "{mode}: the form again: {login}"
        );
        let page = browser.get(&login).await;
        assert!(page.text.contains("name=\"password\""), "{mode}");
        let again = sign_in_claims(&srv, &browser, &client, mode, &[("prompt", "login")]).await;
        assert_eq!(again["sub"], first["sub"]);
        assert!(
            again["auth_time"].as_i64().unwrap() > first["auth_time"].as_i64().unwrap(),
            "{mode}: a later auth_time"
        );
    }
}

/// A request parked for login must not be answered by skipping the login page: neither
/// /authorize/resume nor the consent page may answer it for the old session.
async fn assert_cannot_skip_login(browser: &Browser<'_>, params: &[(String, String)], rule: &str) {
    let res = browser.authorize(&as_refs(params)).await;
    let login = res.header("location").unwrap().to_owned();
    assert!(login.starts_with("/login?request="), "{rule}: {login}");
    let id = login.trim_start_matches("/login?request=");
    let res = browser
        .get(&format!("/authorize/resume?request={id}"))
        .await;
    assert_eq!(
        res.header("location"),
        Some(login.as_str()),
        "{rule}: resume sends back to the login page"
    );
    let page = browser.get(&format!("/consent?request={id}")).await;
    if page.status == 200 {
        let csrf = common::browser::hidden(&page.text, "csrf").unwrap();
        let res = browser
            .post(
                "/consent",
                &[("request", id), ("csrf", &csrf), ("decision", "approve")],
            )
            .await;
        assert!(
            res.header("location").is_none_or(|l| l.starts_with('/')),
            "{rule}: the consent page answered without a login: {:?}",
            res.header("location")
        );
        assert!(
            res.status != 200 || !res.text.contains("name=\"code\""),
            "{rule}"
        );
    } else {
        assert!(
            page.header("location")
                .is_some_and(|l| l.starts_with("/login?"))
                || page.status == 400,
            "{rule}: {} {:?}",
            page.status,
            page.header("location")
        );
    }
}

// SECURITY-TESTS: OC-05, OC-07, OC-08
async fn reauthentication_cannot_be_skipped(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let bob = srv.user("bob", PW).await;
    let first_party = oidc_client(&srv).await;
    let third_party = code_client(&srv, false).await;
    let browser = Browser::new(&srv);
    sign_in_claims(&srv, &browser, &first_party, "query", &[]).await;
    let (params, _) = code_request_for(&third_party);
    browser.sign_in(&as_refs(&params), "alice", PW).await;
    let bob_hint = hint_for(&srv, &bob.username).await;
    for client in [&first_party, &third_party] {
        // Same second as the login: prompt=login still needs the form.
        let (params, _) = params_in(client, "openid", "query", &[("prompt", "login")]);
        assert_cannot_skip_login(&browser, &params, "prompt=login").await;
        srv.advance(3);
        let (params, _) = params_in(client, "openid", "query", &[("max_age", "1")]);
        assert_cannot_skip_login(&browser, &params, "max_age").await;
        let (params, _) = params_in(client, "openid", "query", &[("id_token_hint", &bob_hint)]);
        assert_cannot_skip_login(&browser, &params, "hint for bob").await;
    }
}

fn code_request_for(client: &TestClient) -> (Vec<(String, String)>, String) {
    code_params(client, "openid", &[])
}

/// An ID token for `username`, from the password grant of a back-end client.
async fn hint_for(srv: &TestServer, username: &str) -> String {
    let client = srv.password_client().await;
    let json = srv.login(&client, username, PW, "openid").await;
    json["id_token"].as_str().unwrap().to_owned()
}

// SECURITY-TESTS: OC-06
async fn prompt_none_never_shows_a_page(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let iss = srv.issuer().to_owned();
    let first_party = oidc_client(&srv).await;
    let third_party = code_client(&srv, false).await;
    for mode in MODES {
        let none = [("prompt", "none")];
        let browser = Browser::new(&srv);
        let (params, _) = params_in(&first_party, "openid", mode, &none);
        let res = browser.authorize(&as_refs(&params)).await;
        assert_redirect_error(&res, CB, "login_required", Some("xyz"), &iss, mode);
        let first = sign_in_claims(&srv, &browser, &first_party, mode, &[]).await;
        srv.advance(2);
        let silent = silent_claims(&srv, &browser, &first_party, mode, &none).await;
        assert_eq!(silent["sub"], first["sub"], "{mode}");
        assert_eq!(silent["auth_time"], first["auth_time"], "{mode}");
        let (params, _) = params_in(&third_party, "openid", mode, &none);
        let res = browser.authorize(&as_refs(&params)).await;
        assert_redirect_error(&res, CB, "consent_required", Some("xyz"), &iss, mode);
        for combined in [
            "none login",
            "login none",
            "none consent",
            "none select_account",
        ] {
            let (params, _) = params_in(&first_party, "openid", mode, &[("prompt", combined)]);
            let res = browser.authorize(&as_refs(&params)).await;
            assert_redirect_error(&res, CB, "invalid_request", Some("xyz"), &iss, combined);
        }
    }
}

// SECURITY-TESTS: OC-07
async fn max_age_forces_a_fresh_login_when_exceeded(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = oidc_client(&srv).await;
    for mode in MODES {
        let browser = Browser::new(&srv);
        let first = sign_in_claims(&srv, &browser, &client, mode, &[]).await;
        srv.advance(2);
        let (params, _) = params_in(&client, "openid", mode, &[("max_age", "1")]);
        let res = browser.authorize(&as_refs(&params)).await;
        assert!(
            res.header("location").unwrap().starts_with("/login?"),
            "{mode}: re-authentication"
        );
        let fresh = sign_in_claims(&srv, &browser, &client, mode, &[("max_age", "1")]).await;
        let t = fresh["auth_time"].as_i64().unwrap();
        assert!(
            t > first["auth_time"].as_i64().unwrap(),
            "{mode}: newer auth_time"
        );
        srv.advance(2);
        for max_age in ["15000", "10000"] {
            let c = silent_claims(&srv, &browser, &client, mode, &[("max_age", max_age)]).await;
            assert_eq!(c["auth_time"], t, "{mode} {max_age}");
            assert_eq!(c["sub"], fresh["sub"], "{mode} {max_age}");
        }
        let (params, _) = params_in(
            &client,
            "openid",
            mode,
            &[("max_age", "1"), ("prompt", "none")],
        );
        let res = browser.authorize(&as_refs(&params)).await;
        assert_redirect_error(
            &res,
            CB,
            "login_required",
            Some("xyz"),
            srv.issuer(),
            "max_age + none",
        );
        // max_age=0 is prompt=login, even within the same second as the last login.
        let (params, _) = params_in(&client, "openid", mode, &[("max_age", "0")]);
        let res = browser.authorize(&as_refs(&params)).await;
        let login = res.header("location").unwrap().to_owned();
        assert!(login.starts_with("/login?"), "{mode}: max_age=0 asks again");
        let c = sign_in_claims(&srv, &browser, &client, mode, &[("max_age", "0")]).await;
        assert_eq!(c["auth_time"], srv.now(), "{mode}: max_age=0");
        let (params, _) = params_in(&client, "openid", mode, &[("max_age", "0")]);
        let res = browser.authorize(&as_refs(&params)).await;
        assert!(
            res.header("location").unwrap().starts_with("/login?"),
            "{mode}: right after that login, max_age=0 still asks"
        );
    }
}

/// `token` with one payload byte changed.
fn tampered(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = Value::String("someone-else".into());
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    parts.join(".")
}

/// `token` re-encoded with `alg: none` and no signature.
fn alg_none(token: &str) -> String {
    let (mut header, _) = jwt_parts(token);
    header["alg"] = Value::String("none".into());
    let payload = token.split('.').nth(1).unwrap();
    format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap())
    )
}

// SECURITY-TESTS: OC-08, JW-03
async fn id_token_hint_is_verified_and_names_the_user(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    srv.user("bob", PW).await;
    let iss = srv.issuer().to_owned();
    let client = oidc_client(&srv).await;
    let own = hint_for(&srv, "alice").await;
    let bobs = hint_for(&srv, "bob").await;
    let (_, own_claims) = jwt_parts(&own);
    let (header, _) = jwt_parts(&own);
    let foreign = foreign_jwt(&own_claims, header["kid"].as_str().unwrap(), "JWT");
    let password_client = srv.password_client().await;
    let access_token = srv.login(&password_client, "alice", PW, "openid").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for mode in MODES {
        let browser = Browser::new(&srv);
        sign_in_claims(&srv, &browser, &client, mode, &[]).await;
        let c = silent_claims(
            &srv,
            &browser,
            &client,
            mode,
            &[("prompt", "none"), ("id_token_hint", &own)],
        )
        .await;
        assert_eq!(c["sub"], own_claims["sub"], "{mode}");
        let (params, _) = params_in(
            &client,
            "openid",
            mode,
            &[("prompt", "none"), ("id_token_hint", &bobs)],
        );
        let res = browser.authorize(&as_refs(&params)).await;
        assert_redirect_error(&res, CB, "login_required", Some("xyz"), &iss, "bob's hint");
        for (rule, hint) in [
            ("alg none", alg_none(&own)),
            ("tampered", tampered(&own)),
            ("foreign-signed", foreign.clone()),
            ("an access token", access_token.clone()),
            ("garbage", "not.a.jwt".to_owned()),
        ] {
            for prompt in ["none", ""] {
                let (params, _) = params_in(
                    &client,
                    "openid",
                    mode,
                    &[("prompt", prompt), ("id_token_hint", &hint)],
                );
                let res = browser.authorize(&as_refs(&params)).await;
                assert_redirect_error(&res, CB, "invalid_request", Some("xyz"), &iss, rule);
            }
        }
    }
}

both_backends! {
    the_code_flow_yields_a_conformant_id_token,
    nonce_is_optional_for_code_and_required_for_implicit_id_tokens,
    claims_follow_the_granted_scopes_in_any_order,
    unsupported_optional_parameters_are_ignored,
    prompt_login_asks_again_and_moves_auth_time,
    reauthentication_cannot_be_skipped,
    prompt_none_never_shows_a_page,
    max_age_forces_a_fresh_login_when_exceeded,
    id_token_hint_is_verified_and_names_the_user,
}
