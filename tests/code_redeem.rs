//! Redeeming authorization codes (RFC 6749 §4.1.2, §4.1.3; RFC 7636; RFC 6819 §5.1.5.3):
//! single use, bound to client and redirect URI, short-lived, PKCE, random.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::browser::{
    Browser, CB, as_refs, assert_redirect_error, code_client, code_params, param, pkce_pair,
    public_client, redeem, response_params,
};
use common::{Backend, Res, TestClient, TestServer};
use latchkey::admin::NewClient;
use latchkey::oauth::GrantType;
use sqlx::{Connection, Row};

const PW: &str = "correct horse battery";

/// A signed-in browser (alice) and a first-party client: each /authorize answers at once.
async fn setup(b: Backend) -> TestServer {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    srv
}

/// A code for `client` from a browser already signed in (first-party: no consent).
async fn quick_code(
    browser: &Browser<'_>,
    client: &TestClient,
    changes: &[(&str, &str)],
) -> (String, String) {
    let (params, verifier) = code_params(client, "openid offline_access", changes);
    let res = browser.authorize(&as_refs(&params)).await;
    let (_, got) = response_params(&res, CB);
    (
        param(&got, "code").unwrap_or_else(|| panic!("{got:?}")),
        verifier,
    )
}

#[track_caller]
fn assert_no_tokens(res: &Res, rule: &str) {
    for k in ["access_token", "refresh_token", "id_token"] {
        assert!(res.json.get(k).is_none(), "{rule}: {}", res.text);
    }
}

// SECURITY-TESTS: AC-01
async fn a_replayed_code_is_refused_and_revokes_the_first_tokens(b: Backend) {
    let srv = setup(b).await;
    let client = code_client(&srv, false).await;
    let browser = Browser::new(&srv);
    let (code, verifier) = browser
        .code(&client, "openid offline_access", "alice", PW)
        .await;
    let first = redeem(&srv, &client, &code, &verifier).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let at = first.json["access_token"].as_str().unwrap();
    let rt = first.json["refresh_token"].as_str().unwrap();
    assert_eq!(srv.get_bearer("/userinfo", at).await.status, 200);

    let again = redeem(&srv, &client, &code, &verifier).await;
    again.assert_error(400, "invalid_grant", "replay");
    assert_no_tokens(&again, "replay");
    // RFC 6749 §4.1.2: what the first redemption issued is revoked.
    let info = srv.get_bearer("/userinfo", at).await;
    assert_eq!(info.status, 401, "{}", info.text);
    assert!(
        info.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    srv.refresh(&client, rt, &[])
        .await
        .assert_error(400, "invalid_grant", "first refresh token");
    // A third use changes nothing and never fails differently.
    redeem(&srv, &client, &code, &verifier)
        .await
        .assert_error(400, "invalid_grant", "third use");
}

// SECURITY-TESTS: AC-02
async fn a_code_is_bound_to_its_client_and_redirect_uri(b: Backend) {
    let srv = setup(b).await;
    let a = code_client(&srv, true).await;
    let other = code_client(&srv, true).await;
    let two_uris = srv
        .client(NewClient {
            name: "Two URIs".into(),
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec![CB.into(), "https://app.example/other".into()],
            scope: Some("openid offline_access".into()),
            first_party: true,
            ..Default::default()
        })
        .await;
    let browser = Browser::new(&srv);
    browser.code(&a, "openid", "alice", PW).await;

    // Client B, with valid credentials, presents A's code: refused, B gets nothing.
    // Documented: the code is burnt by that attempt (it was spent before its binding was
    // checked), so A's own later redemption is refused too (RFC 6819 §5.2.4.4 accepts
    // this: a leaked code must not stay usable).
    let (code, verifier) = quick_code(&browser, &a, &[]).await;
    let res = redeem(&srv, &other, &code, &verifier).await;
    res.assert_error(400, "invalid_grant", "another client's code");
    assert_no_tokens(&res, "another client's code");
    redeem(&srv, &a, &code, &verifier).await.assert_error(
        400,
        "invalid_grant",
        "burnt by the wrong client",
    );

    // Another redirect_uri at /token (registered or not).
    for uri in [
        "https://app.example/other",
        "https://evil.example/cb",
        "https://app.example/cb/",
    ] {
        let (code, verifier) = quick_code(&browser, &two_uris, &[]).await;
        let res = srv
            .token(
                &two_uris,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", uri),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        res.assert_error(400, "invalid_grant", uri);
        assert_no_tokens(&res, uri);
    }
    // The redirect_uri sent at /authorize omitted at /token.
    let (code, verifier) = quick_code(&browser, &a, &[]).await;
    let res = srv
        .token(
            &a,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    res.assert_error(400, "invalid_grant", "redirect_uri omitted");

    // A public client that omits client_id has not identified itself.
    let public = public_client(&srv).await;
    let fresh = Browser::new(&srv);
    let (code, verifier) = fresh.code(&public, "openid", "alice", PW).await;
    let res = srv
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    res.assert_error(401, "invalid_client", "public client without client_id");
    assert_no_tokens(&res, "no client_id");
    // The right request still works: that attempt did not reach the code.
    let res = redeem(&srv, &public, &code, &verifier).await;
    assert_eq!(res.status, 200, "{}", res.text);
}

// SECURITY-TESTS: AC-03
async fn a_code_expires_after_its_lifetime(b: Backend) {
    let srv = setup(b).await;
    let ttl = srv.state.config.tokens.code_ttl_secs;
    assert!(
        ttl > 0 && ttl <= 60,
        "default code lifetime {ttl} s is at most 60 s"
    );
    let client = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    let (code, verifier) = browser.code(&client, "openid", "alice", PW).await;
    srv.advance(ttl);
    let res = redeem(&srv, &client, &code, &verifier).await;
    res.assert_error(400, "invalid_grant", "expired code");
    assert_no_tokens(&res, "expired");
    // Just inside the lifetime it works.
    let (code, verifier) = quick_code(&browser, &client, &[]).await;
    srv.advance(ttl - 1);
    assert_eq!(redeem(&srv, &client, &code, &verifier).await.status, 200);

    // A configured lifetime is honoured.
    let srv = TestServer::start_with(b, |c| c.tokens.code_ttl_secs = 5).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    let (code, verifier) = browser.code(&client, "openid", "alice", PW).await;
    srv.advance(6);
    redeem(&srv, &client, &code, &verifier).await.assert_error(
        400,
        "invalid_grant",
        "configured lifetime",
    );
}

// SECURITY-TESTS: AC-04
async fn pkce_is_required_for_public_clients_and_when_configured(b: Backend) {
    let srv = setup(b).await;
    let iss = srv.issuer().to_owned();
    let public = public_client(&srv).await;
    let confidential = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    browser.code(&confidential, "openid", "alice", PW).await;
    let no_pkce = [("code_challenge", ""), ("code_challenge_method", "")];
    let (params, _) = code_params(&public, "openid", &no_pkce);
    let res = browser.authorize(&as_refs(&params)).await;
    assert_redirect_error(
        &res,
        CB,
        "invalid_request",
        Some("xyz"),
        &iss,
        "public, no PKCE",
    );

    // A confidential client may skip PKCE by default; its code then takes no verifier
    // (sending one is a downgrade attempt, RFC 9700 §2.1.1).
    let (code, _) = quick_code(&browser, &confidential, &no_pkce).await;
    let res = srv
        .token(
            &confidential,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let (code, _) = quick_code(&browser, &confidential, &no_pkce).await;
    let (verifier, _) = pkce_pair();
    redeem(&srv, &confidential, &code, &verifier)
        .await
        .assert_error(
            400,
            "invalid_grant",
            "verifier for a code without challenge",
        );

    // "PKCE for all": the confidential client needs it too; with S256 it succeeds.
    let srv = TestServer::start_with(b, |c| c.login.require_pkce = true).await;
    srv.user("alice", PW).await;
    let confidential = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    let (code, verifier) = browser.code(&confidential, "openid", "alice", PW).await;
    assert_eq!(
        redeem(&srv, &confidential, &code, &verifier).await.status,
        200
    );
    let (params, _) = code_params(&confidential, "openid", &no_pkce);
    let res = browser.authorize(&as_refs(&params)).await;
    assert_redirect_error(
        &res,
        CB,
        "invalid_request",
        Some("xyz"),
        srv.issuer(),
        "PKCE for all",
    );
}

// SECURITY-TESTS: AC-05
async fn a_wrong_missing_or_foreign_verifier_gets_no_tokens(b: Backend) {
    let srv = setup(b).await;
    let client = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    browser.code(&client, "openid", "alice", PW).await;
    let (_, other_verifier) = quick_code(&browser, &client, &[]).await;
    let (wrong, _) = pkce_pair();
    for (rule, verifier) in [
        ("wrong verifier", Some(wrong.as_str())),
        ("no verifier", None),
        (
            "another transaction's verifier",
            Some(other_verifier.as_str()),
        ),
    ] {
        let (code, right) = quick_code(&browser, &client, &[]).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let res = srv.token(&client, &form).await;
        res.assert_error(400, "invalid_grant", rule);
        assert_no_tokens(&res, rule);
        // The failed attempt spent the code: no second guess.
        redeem(&srv, &client, &code, &right)
            .await
            .assert_error(400, "invalid_grant", rule);
    }
}

// SECURITY-TESTS: AC-07
async fn malformed_pkce_parameters_are_refused(b: Backend) {
    let srv = setup(b).await;
    let iss = srv.issuer().to_owned();
    let client = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    browser.code(&client, "openid", "alice", PW).await;
    let (verifier, challenge) = pkce_pair();
    let c42 = &challenge[..42];
    let c44 = format!("{challenge}A");
    let plus = format!("{}+", &challenge[..42]);
    let eq = format!("{}=", &challenge[..42]);
    for (rule, changes) in [
        (
            "plain not configured",
            vec![
                ("code_challenge", verifier.as_str()),
                ("code_challenge_method", "plain"),
            ],
        ),
        (
            "challenge without method",
            vec![("code_challenge_method", "")],
        ),
        ("method without challenge", vec![("code_challenge", "")]),
        ("42-char challenge", vec![("code_challenge", c42)]),
        ("44-char challenge", vec![("code_challenge", c44.as_str())]),
        ("challenge with +", vec![("code_challenge", plus.as_str())]),
        ("challenge with =", vec![("code_challenge", eq.as_str())]),
        ("unknown method", vec![("code_challenge_method", "S512")]),
        ("lower-case method", vec![("code_challenge_method", "s256")]),
    ] {
        let (params, _) = code_params(&client, "openid", &changes);
        let res = browser.authorize(&as_refs(&params)).await;
        assert_redirect_error(&res, CB, "invalid_request", Some("xyz"), &iss, rule);
    }
    // Malformed verifiers at /token: refused, no tokens.
    let long = "a".repeat(129);
    let short = "a".repeat(42);
    let bang = format!("{}!", "a".repeat(43));
    let space = format!("{} b", "a".repeat(43));
    let non_ascii = format!("{}\u{e9}", "a".repeat(43));
    for (rule, v) in [
        ("42 chars", short.as_str()),
        ("129 chars", long.as_str()),
        ("with !", bang.as_str()),
        ("with a space", space.as_str()),
        ("non-ASCII", non_ascii.as_str()),
    ] {
        let (code, _) = quick_code(&browser, &client, &[]).await;
        let res = redeem(&srv, &client, &code, v).await;
        assert_eq!(res.status, 400, "{rule}: {}", res.text);
        let e = res.json["error"].as_str().unwrap();
        assert!(
            matches!(e, "invalid_request" | "invalid_grant"),
            "{rule}: {e}"
        );
        assert_no_tokens(&res, rule);
    }

    // plain only when configured (and then advertised).
    let srv = TestServer::start_with(b, |c| c.login.allow_plain_pkce = true).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, true).await;
    let doc = srv.get("/.well-known/openid-configuration").await.json;
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256", "plain"])
    );
    let browser = Browser::new(&srv);
    browser.code(&client, "openid", "alice", PW).await;
    let (verifier, _) = pkce_pair();
    let plain = [
        ("code_challenge", verifier.as_str()),
        ("code_challenge_method", "plain"),
    ];
    let (code, _) = quick_code(&browser, &client, &plain).await;
    assert_eq!(redeem(&srv, &client, &code, &verifier).await.status, 200);
    // Still no method never means plain.
    let (params, _) = code_params(
        &client,
        "openid",
        &[plain[0], ("code_challenge_method", "")],
    );
    let res = browser.authorize(&as_refs(&params)).await;
    assert_redirect_error(
        &res,
        CB,
        "invalid_request",
        Some("xyz"),
        srv.issuer(),
        "no method",
    );
}

/// A text dump of the whole database: table name, then one line per row.
async fn dump(srv: &TestServer, backend: Backend) -> String {
    let mut out = String::new();
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&srv.db.url).await.unwrap();
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            for table in tables {
                out.push_str(&format!("== {table}\n"));
                let sql = format!("SELECT * FROM \"{table}\"");
                for row in sqlx::query(&sql).fetch_all(&mut conn).await.unwrap() {
                    for i in 0..row.columns().len() {
                        if let Ok(Some(s)) = row.try_get::<Option<String>, _>(i) {
                            out.push_str(&s);
                        } else if let Ok(Some(n)) = row.try_get::<Option<i64>, _>(i) {
                            out.push_str(&n.to_string());
                        } else if let Ok(Some(b)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                            out.push_str(&String::from_utf8_lossy(&b));
                        }
                        out.push('|');
                    }
                    out.push('\n');
                }
            }
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&srv.db.url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            for table in tables {
                out.push_str(&format!("== {table}\n"));
                let sql = format!("SELECT t::text FROM \"{table}\" t");
                let rows: Vec<String> =
                    sqlx::query_scalar(&sql).fetch_all(&mut conn).await.unwrap();
                for row in rows {
                    out.push_str(&row);
                    out.push('\n');
                }
            }
        }
    }
    out
}

// SECURITY-TESTS: AC-08
async fn codes_are_random_distinct_and_stored_only_as_hashes(b: Backend) {
    let srv = setup(b).await;
    let client = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    browser.code(&client, "openid", "alice", PW).await;
    let (_, challenge) = pkce_pair();
    let query = format!(
        "/authorize?{}",
        common::form_body(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", CB),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    );
    const N: usize = 1000;
    let mut codes = HashSet::new();
    let mut pending = Vec::new();
    for _ in 0..N {
        pending.push(browser.get(&query));
        if pending.len() == 8 {
            for res in futures::future::join_all(pending.drain(..)).await {
                let (_, got) = response_params(&res, CB);
                codes.insert(param(&got, "code").unwrap());
            }
        }
    }
    for res in futures::future::join_all(pending.drain(..)).await {
        let (_, got) = response_params(&res, CB);
        codes.insert(param(&got, "code").unwrap());
    }
    assert_eq!(codes.len(), N, "all distinct");
    for code in &codes {
        // 128+ bits: at least 22 base64url characters.
        assert!(code.len() >= 22, "{code}");
        assert!(
            code.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{code}"
        );
    }
    let db = dump(&srv, b).await;
    let codes_table = db
        .split("== ")
        .find(|t| t.starts_with("auth_codes\n"))
        .unwrap();
    assert!(
        codes_table.lines().count() > N,
        "the dump has the codes' rows"
    );
    for code in &codes {
        assert!(!db.contains(code.as_str()), "a code in the database");
    }
}

// SECURITY-TESTS: RL-01, RL-07
async fn concurrent_redemptions_of_one_code_have_one_winner(b: Backend) {
    let srv = setup(b).await;
    let client = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    let (code, verifier) = browser
        .code(&client, "openid offline_access", "alice", PW)
        .await;
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let attempts = (0..20).map(|_| {
        let barrier = barrier.clone();
        let (srv, client, code, verifier) = (&srv, &client, &code, &verifier);
        async move {
            barrier.wait().await;
            redeem(srv, client, code, verifier).await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<&Res> = results.iter().filter(|r| r.status == 200).collect();
    for r in &results {
        assert!(r.status < 500, "no server error: {} {}", r.status, r.text);
        if r.status != 200 {
            r.assert_error(400, "invalid_grant", "a losing redemption");
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner");
    // Every other use was a replay: the winner's tokens are dead.
    let at = winners[0].json["access_token"].as_str().unwrap();
    assert_eq!(srv.get_bearer("/userinfo", at).await.status, 401);
    if let Some(rt) = winners[0].json["refresh_token"].as_str() {
        srv.refresh(&client, rt, &[]).await.assert_error(
            400,
            "invalid_grant",
            "the winner's refresh token",
        );
    }
}

both_backends! {
    a_replayed_code_is_refused_and_revokes_the_first_tokens,
    a_code_is_bound_to_its_client_and_redirect_uri,
    a_code_expires_after_its_lifetime,
    pkce_is_required_for_public_clients_and_when_configured,
    a_wrong_missing_or_foreign_verifier_gets_no_tokens,
    malformed_pkce_parameters_are_refused,
    codes_are_random_distinct_and_stored_only_as_hashes,
    concurrent_redemptions_of_one_code_have_one_winner,
}
