//! Housekeeping (RFC 6819 §5.1.5.3): expired refresh tokens, grants, deny-list entries and
//! throttle records are purged in small batches; nothing live is touched, and the token
//! endpoint keeps working while it runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Backend, TestServer};
use latchkey::app;
use latchkey::oauth::GrantType;
use latchkey::store::{PurgeCutoffs, ThrottleLimit};
use serde_json::Value;
use sqlx::Connection;

const PASSWORD: &str = "correct horse battery staple";
const SEEDED: i64 = 3000;

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

/// A direct connection to the test's database, for seeding volume and counting rows.
enum Db {
    Lite(sqlx::SqliteConnection),
    Pg(sqlx::PgConnection),
}

impl Db {
    async fn open(b: Backend, url: &str) -> Db {
        match b {
            Backend::Sqlite => Db::Lite(sqlx::SqliteConnection::connect(url).await.unwrap()),
            Backend::Postgres => Db::Pg(sqlx::PgConnection::connect(url).await.unwrap()),
        }
    }

    async fn exec(&mut self, sql: &str, arg: i64) {
        match self {
            Db::Lite(c) => drop(sqlx::query(sql).bind(arg).execute(c).await.unwrap()),
            Db::Pg(c) => drop(sqlx::query(sql).bind(arg).execute(c).await.unwrap()),
        }
    }

    async fn count(&mut self, sql: &str) -> i64 {
        match self {
            Db::Lite(c) => sqlx::query_scalar(sql).fetch_one(c).await.unwrap(),
            Db::Pg(c) => sqlx::query_scalar(sql).fetch_one(c).await.unwrap(),
        }
    }

    /// Rows of each kind seeded as expired, and rows of each kind that are not.
    async fn counts(&mut self) -> [(i64, i64); 4] {
        let mut out = [(0, 0); 4];
        for (i, (table, key)) in [
            ("refresh_tokens", "hash"),
            ("grants", "id"),
            ("revoked_access_tokens", "jti"),
            ("login_throttle", "key"),
        ]
        .into_iter()
        .enumerate()
        {
            let old = self
                .count(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE {key} LIKE 'old-%'"
                ))
                .await;
            let live = self
                .count(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE {key} NOT LIKE 'old-%'"
                ))
                .await;
            out[i] = (old, live);
        }
        out
    }
}

/// `SEEDED` rows of each kind, all expired long ago.
async fn seed_expired(db: &mut Db, long_ago: i64) {
    let n = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SEEDED})"
    );
    for insert in [
        "INSERT INTO grants (id, client_id, user_id, scope, auth_time, created_at, expires_at) \
         SELECT 'old-' || i, 'gone', '00000000-0000-0000-0000-000000000000', 'openid', $1, $1, $1 FROM n",
        "INSERT INTO refresh_tokens (hash, grant_id, scope, issued_at, expires_at) \
         SELECT 'old-' || i, 'old-' || i, 'openid', $1, $1 FROM n",
        "INSERT INTO revoked_access_tokens (jti, expires_at) SELECT 'old-' || i, $1 FROM n",
        "INSERT INTO login_throttle (key, failures, window_start, locked_until) \
         SELECT 'old-' || i, 1, $1, 0 FROM n",
    ] {
        db.exec(&format!("{n} {insert}"), long_ago).await;
    }
}

// SECURITY-TESTS: RL-08
async fn housekeeping_purges_in_batches_and_spares_live_rows(b: Backend) {
    let srv = Arc::new(
        TestServer::start_with(b, |c| {
            c.tokens.refresh_absolute_ttl_secs = 100;
            c.housekeeping.batch_size = 500;
        })
        .await,
    );
    srv.user("alice", PASSWORD).await;
    let client = srv.password_client().await;
    let cc = srv
        .confidential(&[GrantType::ClientCredentials], "api")
        .await;

    // A revoked family whose grant has ended, but whose access token has not expired: the
    // grant row must outlive the token, or the token would come back to life.
    let revoked = srv.login(&client, "alice", PASSWORD, "openid").await;
    assert_eq!(
        srv.revoke(&client, &s(&revoked, "refresh_token"), None)
            .await
            .status,
        200
    );
    srv.advance(200);
    // Live: a family, a deny-listed access token, a locked username.
    let live = srv.login(&client, "alice", PASSWORD, "openid").await;
    let denied = srv.login(&client, "alice", PASSWORD, "openid").await;
    assert_eq!(
        srv.revoke(&client, &s(&denied, "access_token"), None)
            .await
            .status,
        200
    );
    let lock = ThrottleLimit {
        max_failures: 1,
        window_secs: 900,
        lock_secs: 600,
    };
    let big = ThrottleLimit {
        max_failures: 1000,
        ..lock
    };
    assert!(
        srv.store()
            .begin_login_attempt("user:carol", "ip:192.0.2.1", srv.now(), lock, big)
            .await
            .unwrap()
    );

    let mut db = Db::open(b, &srv.db.url).await;
    seed_expired(&mut db, srv.now() - 2 * 86400).await;
    let before = db.counts().await;
    assert_eq!(before.map(|(old, _)| old), [SEEDED; 4]);

    // One pass deletes at most one batch of each kind.
    let now = srv.now();
    let cutoffs = PurgeCutoffs {
        now,
        nonces_before: now,
        grants_before: now - 86400,
        throttle_before: now - 900,
        batch: 500,
    };
    let p = srv.store().purge_expired(cutoffs).await.unwrap();
    assert_eq!(
        (
            p.refresh_tokens,
            p.grants,
            p.revoked_access_tokens,
            p.throttle
        ),
        (500, 500, 500, 500)
    );

    // The rest while the token endpoint is in use.
    let running = {
        let srv = srv.clone();
        tokio::spawn(async move { app::housekeeping(&srv.state).await })
    };
    let mut rt = s(&live, "refresh_token");
    for _ in 0..3 {
        let res = srv.refresh(&client, &rt, &[]).await;
        assert_eq!(res.status, 200, "refresh during housekeeping: {}", res.text);
        rt = s(&res.json, "refresh_token");
        let res = srv
            .token(&cc, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
    }
    running.await.unwrap();
    app::housekeeping(&srv.state).await;

    let after = db.counts().await;
    assert_eq!(
        after.map(|(old, _)| old),
        [0; 4],
        "every expired row is gone"
    );
    // The live rows: the refreshes above added refresh tokens and spent others, but no
    // live grant, deny-list entry or lock went.
    assert!(
        after[0].1 >= before[0].1,
        "refresh tokens {before:?} -> {after:?}"
    );
    assert_eq!(after[1].1, before[1].1, "grants");
    assert_eq!(after[2].1, before[2].1, "deny-list");
    assert_eq!(after[3].1, before[3].1, "throttle");

    // And they still behave as before.
    assert_eq!(srv.refresh(&client, &rt, &[]).await.status, 200);
    assert_eq!(
        srv.get_bearer("/userinfo", &s(&revoked, "access_token"))
            .await
            .status,
        401
    );
    assert_eq!(
        srv.get_bearer("/userinfo", &s(&denied, "access_token"))
            .await
            .status,
        401
    );
    assert_eq!(
        srv.get_bearer("/userinfo", &s(&live, "access_token"))
            .await
            .status,
        200
    );
    let res = srv
        .password_grant(&client, "carol", PASSWORD, "openid")
        .await;
    res.assert_error(429, "invalid_grant", "the lock survived housekeeping");
}

both_backends! {
    housekeeping_purges_in_batches_and_spares_live_rows,
}
