//! Signing keys over HTTP: emergency and staged rotation, retention, retirement, replicas
//! sharing one database, and the background reload (OIDC Core §10.1.1; RFC 7517).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestClient, TestServer, jwt_parts, verify_with_jwks};
use latchkey::admin;
use latchkey::keys;
use latchkey::oauth::{GrantType, KeyAlg};

const CC: &[GrantType] = &[GrantType::ClientCredentials];
const RETENTION: i64 = 600;
const TTL: i64 = 300;

/// A server whose keys are retained 600 s, with a client whose tokens live 300 s.
async fn setup(b: Backend) -> (TestServer, TestClient) {
    let srv = TestServer::start_with(b, |c| {
        c.keys.retention_secs = RETENTION;
        c.tokens.id_token_ttl_secs = TTL;
    })
    .await;
    let client = srv
        .client(admin::NewClient {
            name: "api".into(),
            grant_types: CC.to_vec(),
            scope: Some("read".into()),
            access_token_ttl: Some(TTL),
            ..Default::default()
        })
        .await;
    (srv, client)
}

/// A second instance on `a`'s database, behind the same issuer, with the same clock.
async fn replica(a: &TestServer) -> TestServer {
    let issuer = a.issuer().to_owned();
    TestServer::start_on(a.db.clone(), a.state.clock.clone(), move |c| {
        c.keys.retention_secs = RETENTION;
        c.tokens.id_token_ttl_secs = TTL;
        c.issuer = issuer;
    })
    .await
}

async fn cc_token(srv: &TestServer, client: &TestClient) -> String {
    let res = srv
        .token(client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json["access_token"].as_str().unwrap().to_owned()
}

fn kid(token: &str) -> String {
    jwt_parts(token).0["kid"].as_str().unwrap().to_owned()
}

async fn jwks_kids(srv: &TestServer) -> Vec<String> {
    let jwks = srv.jwks().await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// RFC 7662: whether `token` is active at `srv`'s introspection endpoint.
async fn active(srv: &TestServer, client: &TestClient, token: &str) -> bool {
    let res = srv
        .post_form(
            "/introspect",
            Some((&client.id, client.secret.as_deref().unwrap())),
            &[("token", token)],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    if res.json["active"] == false {
        assert_eq!(
            res.json,
            serde_json::json!({ "active": false }),
            "inactive is exactly {{\"active\":false}}"
        );
    }
    res.json["active"] == true
}

async fn rotate(srv: &TestServer, lead: Option<i64>) -> String {
    let info = admin::rotate_keys(srv.store(), KeyAlg::RS256, srv.now(), lead)
        .await
        .unwrap();
    info.kid
}

// SECURITY-TESTS: JW-07
async fn emergency_rotation_keeps_old_tokens_live_until_retention_ends(b: Backend) {
    let (srv, client) = setup(b).await;
    let t1 = cc_token(&srv, &client).await;
    let old = kid(&t1);
    let new = rotate(&srv, None).await;
    srv.reload_keys().await;
    let t2 = cc_token(&srv, &client).await;
    assert_eq!(kid(&t2), new, "T2 is signed by the new key at once");
    assert_ne!(old, new);
    let kids = jwks_kids(&srv).await;
    assert!(
        kids.contains(&old) && kids.contains(&new),
        "JWKS has old and new: {kids:?}"
    );
    let jwks = srv.jwks().await;
    verify_with_jwks(&t1, &jwks, srv.issuer(), srv.issuer())
        .expect("T1 verifies with the JWK alone");
    verify_with_jwks(&t2, &jwks, srv.issuer(), srv.issuer())
        .expect("T2 verifies with the JWK alone");
    assert!(
        active(&srv, &client, &t1).await,
        "T1 is live after the rotation"
    );
    // Just before T1 expires, its key is still published.
    srv.advance(TTL - 1);
    assert!(active(&srv, &client, &t1).await, "T1 is live until its exp");
    assert!(jwks_kids(&srv).await.contains(&old));
    // Past the retention, the old key is gone and T1 is dead.
    srv.advance(RETENTION - TTL + 2);
    let kids = jwks_kids(&srv).await;
    assert!(
        !kids.contains(&old),
        "old key withdrawn after retention: {kids:?}"
    );
    assert!(kids.contains(&new));
    assert!(!active(&srv, &client, &t1).await, "T1 is dead");
    let t3 = cc_token(&srv, &client).await;
    assert_eq!(kid(&t3), new);
    assert!(active(&srv, &client, &t3).await);
}

/// Two rotations within the same second (a script, or a rotation right after the first
/// start): the key made last signs, always.
async fn the_latest_rotation_signs_even_within_one_second(b: Backend) {
    let (srv, client) = setup(b).await;
    for _ in 0..4 {
        let new = rotate(&srv, None).await;
        srv.reload_keys().await;
        assert_eq!(
            kid(&cc_token(&srv, &client).await),
            new,
            "the newest key signs"
        );
        let listed = admin::list_keys(srv.store(), srv.now(), RETENTION)
            .await
            .unwrap();
        let active: Vec<_> = listed
            .iter()
            .filter(|k| k.state == "active")
            .map(|k| k.kid.clone())
            .collect();
        assert_eq!(active, vec![new], "exactly one active key, the newest");
    }
}

// SECURITY-TESTS: JW-07
async fn staged_rotation_publishes_before_signing(b: Backend) {
    let (srv, client) = setup(b).await;
    let old = kid(&cc_token(&srv, &client).await);
    let lead = keys::staging_lead(srv.state.config.keys.jwks_max_age_secs);
    assert!(
        lead > srv.state.config.keys.jwks_max_age_secs,
        "the lead outlasts one JWKS cache lifetime"
    );
    let next = rotate(&srv, Some(lead)).await;
    srv.reload_keys().await;
    let kids = jwks_kids(&srv).await;
    assert!(
        kids.contains(&next),
        "the next key is published at once: {kids:?}"
    );
    assert!(kids.contains(&old));
    assert_eq!(
        kid(&cc_token(&srv, &client).await),
        old,
        "the old key still signs"
    );
    let states = admin::list_keys(srv.store(), srv.now(), RETENTION)
        .await
        .unwrap();
    let state_of = |k: &str| states.iter().find(|i| i.kid == k).unwrap().state;
    assert_eq!(state_of(&old), "active");
    assert_eq!(state_of(&next), "next");
    srv.advance(lead - 1);
    assert_eq!(
        kid(&cc_token(&srv, &client).await),
        old,
        "not before the lead has passed"
    );
    srv.advance(1);
    let t = cc_token(&srv, &client).await;
    assert_eq!(
        kid(&t),
        next,
        "the staged key signs once the lead has passed"
    );
    let kids = jwks_kids(&srv).await;
    assert!(
        kids.contains(&old),
        "the old key stays published for its retention"
    );
    verify_with_jwks(&t, &srv.jwks().await, srv.issuer(), srv.issuer()).unwrap();
}

// SECURITY-TESTS: JW-07
async fn retiring_the_active_key_withdraws_it_at_once(b: Backend) {
    let (srv, client) = setup(b).await;
    let t1 = cc_token(&srv, &client).await;
    let old = kid(&t1);
    admin::retire_key(srv.store(), &old, KeyAlg::RS256, srv.now(), RETENTION)
        .await
        .unwrap();
    srv.reload_keys().await;
    let kids = jwks_kids(&srv).await;
    assert!(
        !kids.contains(&old),
        "a retired key leaves JWKS at once: {kids:?}"
    );
    assert_eq!(kids.len(), 1, "a new key took over: {kids:?}");
    let t2 = cc_token(&srv, &client).await;
    assert_eq!(kid(&t2), kids[0], "the new key signs");
    assert!(
        !active(&srv, &client, &t1).await,
        "tokens of a retired key are dead at once"
    );
    assert!(active(&srv, &client, &t2).await);
    // Retiring it again, or an unknown kid, is a clear not-found.
    for kid in [old.as_str(), "no-such-kid"] {
        let err = admin::retire_key(srv.store(), kid, KeyAlg::RS256, srv.now(), RETENTION)
            .await
            .unwrap_err();
        assert!(matches!(err, admin::AdminError::NotFound(_)), "{err}");
    }
    let listed = admin::list_keys(srv.store(), srv.now(), RETENTION)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().find(|k| k.kid == old).unwrap().state,
        "retired"
    );
}

// SECURITY-TESTS: RL-02, JW-07
async fn replicas_share_keys_through_the_database(b: Backend) {
    let (a, client) = setup(b).await;
    let bsrv = replica(&a).await;
    let ta = cc_token(&a, &client).await;
    let tb = cc_token(&bsrv, &client).await;
    assert_eq!(kid(&ta), kid(&tb), "replicas sign with the same key");
    let new = rotate(&a, None).await;
    // Until it reloads, B signs with the key it has; after, both sign with the new one.
    assert_eq!(kid(&cc_token(&bsrv, &client).await), kid(&ta));
    a.reload_keys().await;
    bsrv.reload_keys().await;
    let ta2 = cc_token(&a, &client).await;
    let tb2 = cc_token(&bsrv, &client).await;
    assert_eq!(kid(&ta2), new);
    assert_eq!(kid(&tb2), new);
    for t in [&ta, &tb, &ta2, &tb2] {
        assert!(active(&a, &client, t).await, "live at A");
        assert!(
            active(&bsrv, &client, t).await,
            "live at B: {:?} {:?}",
            kid(t),
            jwks_kids(&bsrv).await
        );
    }
    assert_eq!(jwks_kids(&a).await.len(), 2);
    let (mut ka, mut kb) = (jwks_kids(&a).await, jwks_kids(&bsrv).await);
    ka.sort();
    kb.sort();
    assert_eq!(ka, kb, "both publish the same JWKS");
}

// SECURITY-TESTS: JW-07
async fn key_states_are_listed(b: Backend) {
    let (srv, _) = setup(b).await;
    let first = admin::list_keys(srv.store(), srv.now(), RETENTION)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].state, "active");
    assert_eq!(first[0].alg, "RS256");
    let first = first[0].kid.clone();
    let active = rotate(&srv, None).await;
    let lead = keys::staging_lead(300);
    let next = admin::rotate_keys(srv.store(), KeyAlg::ES256, srv.now(), Some(lead))
        .await
        .unwrap();
    assert_eq!(next.state, "next");
    assert_eq!(next.alg, "ES256");
    assert_eq!(next.activates_at, srv.now() + lead);
    let listed = admin::list_keys(srv.store(), srv.now(), RETENTION)
        .await
        .unwrap();
    let by = |k: &str| listed.iter().find(|i| i.kid == k).unwrap();
    assert_eq!(by(&first).state, "retiring");
    assert_eq!(by(&first).published_until, Some(srv.now() + RETENTION));
    assert_eq!(by(&active).state, "active");
    assert_eq!(by(&next.kid).state, "next");
    // The pure function agrees with the listing.
    let records = srv.store().keys().await.unwrap();
    let states = keys::states(&records, srv.now(), RETENTION);
    let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["active", "next", "retiring"]);
    // The JSON shape `keys list --json` prints.
    let json = serde_json::to_value(&listed).unwrap();
    for k in json.as_array().unwrap() {
        for member in ["kid", "alg", "state", "created_at", "activates_at"] {
            assert!(k.get(member).is_some(), "{member} in {k}");
        }
        assert!(k.get("private_der").is_none());
    }
    // Past the retention, the staged key is active, the one it superseded retires and the
    // first is withdrawn.
    srv.advance(RETENTION + 1);
    let listed = admin::list_keys(srv.store(), srv.now(), RETENTION)
        .await
        .unwrap();
    let by = |k: &str| listed.iter().find(|i| i.kid == k).unwrap().state;
    assert_eq!(by(&next.kid), "active");
    assert_eq!(by(&active), "retiring");
    assert_eq!(by(&first), "retired", "superseded long enough ago");
}

/// `keys rotate` by the CLI while a server runs: the background task picks it up within
/// `keys.reload_secs`.
// SECURITY-TESTS: RL-02
async fn background_reload_picks_up_a_cli_rotation(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.keys.reload_secs = 1).await;
    let tasks = latchkey::app::spawn_background(srv.state.clone());
    let before = jwks_kids(&srv).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["keys", "rotate", "--alg", "ES256", "--json"])
        .env("LATCHKEY_DATABASE_URL", &srv.db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = info["kid"].as_str().unwrap().to_owned();
    assert!(!before.contains(&new));
    let start = Instant::now();
    loop {
        if jwks_kids(&srv).await.contains(&new) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the server did not pick up the rotation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The CLI stamps the key with the system time; the server's clock is pinned, so move
    // it past the activation before checking who signs.
    srv.advance(info["activates_at"].as_i64().unwrap() - srv.now() + 1);
    let client = srv.confidential(CC, "read").await;
    let t = cc_token(&srv, &client).await;
    assert_eq!(kid(&t), new);
    assert_eq!(jwt_parts(&t).0["alg"], "ES256");
    for t in tasks {
        t.abort();
    }
}

both_backends! {
    emergency_rotation_keeps_old_tokens_live_until_retention_ends,
    the_latest_rotation_signs_even_within_one_second,
    staged_rotation_publishes_before_signing,
    retiring_the_active_key_withdraws_it_at_once,
    replicas_share_keys_through_the_database,
    key_states_are_listed,
    background_reload_picks_up_a_cli_rotation,
}
