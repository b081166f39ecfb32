//! Brute-force protection of the password grant (RFC 6819 §4.4.3.6; RFC 9700 §4.13):
//! per-user and per-IP limits kept in the database, refused before hashing, shared by
//! replicas, and bounded under a burst.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Backend, TestServer};
use latchkey::oauth::GrantType;

const PASSWORD: &str = "correct horse battery staple";

// SECURITY-TESTS: PW-03
async fn user_lock_refuses_before_hashing_and_passes(b: Backend) {
    let srv = TestServer::start_with(b, |c| {
        c.login.user_max_failures = 3;
        c.login.lock_secs = 60;
    })
    .await;
    srv.user("alice", PASSWORD).await;
    let client = srv.password_client().await;

    // Success resets the count: 2 failures, a success, 2 failures never reach 3.
    for _ in 0..2 {
        srv.password_grant(&client, "alice", "wrong", "openid")
            .await
            .assert_error(400, "invalid_grant", "failure");
    }
    srv.login(&client, "alice", PASSWORD, "openid").await;
    for _ in 0..2 {
        srv.password_grant(&client, "alice", "wrong", "openid")
            .await
            .assert_error(400, "invalid_grant", "failure");
    }
    srv.login(&client, "alice", PASSWORD, "openid").await;

    // N failures are hashed and answered like any bad credential...
    for i in 0..3 {
        let before = srv.verifications().await;
        let res = srv
            .password_grant(&client, "alice", "wrong", "openid")
            .await;
        res.assert_error(400, "invalid_grant", &format!("failure {}", i + 1));
        assert_eq!(srv.verifications().await, before + 1);
    }
    // ...the N+1st is refused before hashing, saying why and for how long.
    let before = srv.verifications().await;
    let res = srv
        .password_grant(&client, "alice", "wrong", "openid")
        .await;
    res.assert_error(429, "invalid_grant", "locked");
    assert!(
        res.json["error_description"]
            .as_str()
            .unwrap()
            .contains("too many failed attempts")
    );
    assert_eq!(res.header("retry-after"), Some("60"));
    // The right password is refused too while the lock lasts.
    srv.advance(59);
    let res = srv
        .password_grant(&client, "alice", PASSWORD, "openid")
        .await;
    res.assert_error(429, "invalid_grant", "right password while locked");
    assert_eq!(res.header("retry-after"), Some("1"));
    assert_eq!(
        srv.verifications().await,
        before,
        "locked attempts are never hashed"
    );

    // The lock is temporary.
    srv.advance(1);
    srv.login(&client, "alice", PASSWORD, "openid").await;
    assert_eq!(srv.verifications().await, before + 1);
    // And the success cleared the count: two more failures do not lock.
    for _ in 0..2 {
        srv.password_grant(&client, "alice", "wrong", "openid")
            .await
            .assert_error(400, "invalid_grant", "failure");
    }
    srv.login(&client, "alice", PASSWORD, "openid").await;
}

// SECURITY-TESTS: PW-03
// Usernames are case-sensitive accounts, and each is counted on its own: failures against
// "alice" lock "alice", not "Alice".
async fn each_account_is_counted_under_its_exact_username(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.login.user_max_failures = 2).await;
    srv.user("alice", PASSWORD).await;
    srv.user("Alice", PASSWORD).await;
    let client = srv.password_client().await;
    for _ in 0..2 {
        srv.password_grant(&client, "alice", "wrong", "openid")
            .await
            .assert_error(400, "invalid_grant", "failure");
    }
    srv.password_grant(&client, "alice", PASSWORD, "openid")
        .await
        .assert_error(429, "invalid_grant", "alice is locked");
    let res = srv
        .password_grant(&client, "Alice", PASSWORD, "openid")
        .await;
    assert_eq!(res.status, 200, "Alice is another account: {}", res.text);
}

// SECURITY-TESTS: PW-04
async fn ip_lock_spans_usernames_and_ignores_untrusted_forwarded_for(b: Backend) {
    // Default limits: 50 failures per IP in the window.
    let srv = TestServer::start(b).await;
    srv.user("alice", PASSWORD).await;
    let client = srv.password_client().await;
    // One password sprayed over 50 usernames, with a new X-Forwarded-For each time.
    for i in 0..50 {
        let xff = format!("198.51.100.{i}");
        let res = srv
            .token_with_headers(
                &client,
                &[
                    ("grant_type", "password"),
                    ("username", &format!("user{i}")),
                    ("password", PASSWORD),
                ],
                &[("x-forwarded-for", &xff)],
            )
            .await;
        res.assert_error(400, "invalid_grant", "spray");
    }
    // 127.0.0.1 is not a trusted proxy: X-Forwarded-For changed nothing, the IP is locked
    // for every username, the real one included, before any hashing.
    let before = srv.verifications().await;
    for (username, password) in [("user9", PASSWORD), ("alice", PASSWORD)] {
        let res = srv
            .token_with_headers(
                &client,
                &[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password),
                ],
                &[("x-forwarded-for", "203.0.113.77")],
            )
            .await;
        res.assert_error(429, "invalid_grant", username);
        assert_eq!(res.header("retry-after"), Some("300"));
    }
    assert_eq!(srv.verifications().await, before);
}

// SECURITY-TESTS: PW-03
async fn failures_count_within_a_window_and_locks_are_temporary_by_default(b: Backend) {
    let srv = TestServer::start(b).await; // 5 failures per 900 s, 300 s lock
    srv.user("alice", PASSWORD).await;
    let client = srv.password_client().await;
    let fail = |n: u32| {
        let (srv, client) = (&srv, &client);
        async move {
            for _ in 0..n {
                let res = srv.password_grant(client, "alice", "wrong", "openid").await;
                res.assert_error(400, "invalid_grant", "failure");
            }
        }
    };
    // Failures older than the window do not count.
    fail(4).await;
    srv.advance(900);
    fail(4).await;
    srv.login(&client, "alice", PASSWORD, "openid").await;
    // Five within the window lock, for 300 s, never for good.
    fail(5).await;
    let res = srv
        .password_grant(&client, "alice", PASSWORD, "openid")
        .await;
    res.assert_error(429, "invalid_grant", "locked");
    assert_eq!(res.header("retry-after"), Some("300"));
    srv.advance(300);
    srv.login(&client, "alice", PASSWORD, "openid").await;
}

// SECURITY-TESTS: PW-04
async fn forwarded_for_is_believed_from_a_trusted_proxy(b: Backend) {
    let srv = TestServer::start_with(b, |c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.login.ip_max_failures = 2;
        c.login.user_max_failures = 100;
    })
    .await;
    let client = srv.password_client().await;
    let attempt = |ip: &'static str, n: u32| {
        let srv = &srv;
        let client = &client;
        async move {
            let username = format!("user{n}");
            srv.token_with_headers(
                client,
                &[
                    ("grant_type", "password"),
                    ("username", &username),
                    ("password", "x"),
                ],
                &[("x-forwarded-for", &format!("192.0.2.200, {ip}"))],
            )
            .await
        }
    };
    // Two clients behind the proxy: each has its own count (the last hop is the client).
    attempt("198.51.100.1", 1)
        .await
        .assert_error(400, "invalid_grant", "A 1");
    attempt("198.51.100.2", 2)
        .await
        .assert_error(400, "invalid_grant", "B 1");
    attempt("198.51.100.1", 3)
        .await
        .assert_error(400, "invalid_grant", "A 2");
    attempt("198.51.100.2", 4)
        .await
        .assert_error(400, "invalid_grant", "B 2");
    attempt("198.51.100.1", 5)
        .await
        .assert_error(429, "invalid_grant", "A locked");
    attempt("198.51.100.3", 6)
        .await
        .assert_error(400, "invalid_grant", "C is not");
}

// SECURITY-TESTS: PW-04, RL-02
async fn failures_on_two_instances_add_up(b: Backend) {
    let tweak = |c: &mut latchkey::config::RawConfig| {
        c.login.user_max_failures = 4;
        c.login.ip_max_failures = 100;
        c.login.lock_secs = 120;
    };
    let a = TestServer::start_with(b, tweak).await;
    let b2 = TestServer::start_on(a.db.clone(), a.state.clock.clone(), tweak).await;
    a.user("alice", PASSWORD).await;
    // The client is in the shared database: it works at both.
    let client = a.password_client().await;
    for srv in [&a, &b2, &a, &b2] {
        srv.password_grant(&client, "alice", "wrong", "openid")
            .await
            .assert_error(400, "invalid_grant", "split failures");
    }
    for srv in [&a, &b2] {
        let before = srv.verifications().await;
        let res = srv
            .password_grant(&client, "alice", PASSWORD, "openid")
            .await;
        res.assert_error(429, "invalid_grant", "locked at both instances");
        assert_eq!(res.header("retry-after"), Some("120"));
        assert_eq!(srv.verifications().await, before);
    }
    a.advance(120);
    b2.login(&client, "alice", PASSWORD, "openid").await;
}

// SECURITY-TESTS: RL-06, PW-03
//
// 200 concurrent password grants: 190 wrong passwords spread over 3 usernames (one real, two
// unknown) and 10 right ones for another user, 2 verify slots. With user_max_failures = 3
// the lock must bound the hashing however many attempts arrive at once; the rest are
// refused before hashing, the right ones queue. Meanwhile /jwks and client_credentials
// keep answering.
async fn burst_of_password_grants_stays_bounded(b: Backend) {
    let srv = Arc::new(
        TestServer::start_with(b, |c| {
            c.login.user_max_failures = 3;
            c.login.ip_max_failures = 10_000;
            c.login.verify_concurrency = 2;
            c.database_max_connections = 8;
        })
        .await,
    );
    srv.user("alice", PASSWORD).await;
    srv.user("bob", PASSWORD).await;
    let client = srv.password_client().await;
    let cc = srv
        .confidential(&[GrantType::ClientCredentials], "api")
        .await;
    let before = srv.verifications().await;
    let barrier = Arc::new(tokio::sync::Barrier::new(201));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (srv, client, barrier) = (srv.clone(), client.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let (username, password) = match (i % 20, i % 3) {
                (0, _) => ("bob", PASSWORD),
                (_, 0) => ("alice", "wrong"),
                (_, 1) => ("ghost", "wrong"),
                _ => ("phantom", "wrong"),
            };
            barrier.wait().await;
            srv.password_grant(&client, username, password, "openid")
                .await
                .status
        }));
    }
    barrier.wait().await;
    // Other endpoints answer while the burst is queued.
    for _ in 0..3 {
        assert_eq!(srv.get("/jwks").await.status, 200);
        let res = srv
            .token(&cc, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
    }
    let mut counts = std::collections::BTreeMap::new();
    for t in tasks {
        *counts.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    for status in counts.keys() {
        assert!(
            matches!(status, 200 | 400 | 429),
            "unexpected {status}: {counts:?}"
        );
    }
    let hashed = srv.verifications().await - before;
    let successes = counts.get(&200).copied().unwrap_or(0);
    // A burst of right passwords queues and succeeds.
    assert_eq!(successes, 10, "{counts:?}");
    // Each username's lock admitted exactly 3 failures, however many arrived at once.
    assert_eq!(hashed - successes, 3 * 3, "hashes for {counts:?}");
}

// SECURITY-TESTS: PW-03
// A client that goes away while its password is being hashed leaves nothing counted: an
// admitted attempt is settled whether or not anyone waits for the answer. Were it not,
// each abandoned right password would stay counted as a failure and two would lock.
async fn an_abandoned_attempt_is_settled_all_the_same(b: Backend) {
    let srv = Arc::new(
        TestServer::start_with(b, |c| {
            c.login.user_max_failures = 2;
            c.login.verify_concurrency = 1;
        })
        .await,
    );
    let alice = srv.user("alice", PASSWORD).await;
    // A slower hash (t = 16) than the default, so that there is time to walk away.
    let params = argon2::Params::new(19 * 1024, 16, 1, None).unwrap();
    let slow = argon2::password_hash::PasswordHasher::hash_password(
        &argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params),
        PASSWORD.as_bytes(),
        &argon2::password_hash::SaltString::encode_b64(b"sixteen byte salt").unwrap(),
    )
    .unwrap()
    .to_string();
    assert!(
        srv.store()
            .set_password(alice.id, &slow, srv.now())
            .await
            .unwrap()
    );
    let client = srv.password_client().await;
    for round in 0..3 {
        let before = srv.verifications().await;
        let (s, c) = (srv.clone(), client.clone());
        let attempt =
            tokio::spawn(async move { s.password_grant(&c, "alice", PASSWORD, "openid").await });
        // Counted and being hashed: then the client goes away.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while srv.verifications().await == before {
            if attempt.is_finished() {
                let res = attempt.await.unwrap();
                panic!("round {round}: refused before hashing: {}", res.text);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: never hashed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        attempt.abort();
        assert!(attempt.await.unwrap_err().is_cancelled());
    }
    // Admitted after the abandoned attempts settled (one turn at a time): not locked.
    let res = srv
        .password_grant(&client, "alice", PASSWORD, "openid")
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
}

both_backends! {
    an_abandoned_attempt_is_settled_all_the_same,
    each_account_is_counted_under_its_exact_username,
    user_lock_refuses_before_hashing_and_passes,
    ip_lock_spans_usernames_and_ignores_untrusted_forwarded_for,
    failures_count_within_a_window_and_locks_are_temporary_by_default,
    forwarded_for_is_believed_from_a_trusted_proxy,
    failures_on_two_instances_add_up,
    burst_of_password_grants_stays_bounded,
}
