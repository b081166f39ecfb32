//! The store contract (STYLE.md §4.8): one suite of `async fn(&dyn Store)` cases, each run
//! on SqliteStore and PgStore in a database of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestDb};
use futures::future::join_all;
use latchkey::model::{AuthMethod, Client, ClientKind, Grant, Profile, User};
use latchkey::oauth::{GrantType, ScopeSet, TokenHash};
use latchkey::secrets::token_hash;
use latchkey::store::{
    PurgeCutoffs, Purged, RotatePolicy, Rotation, Store, StoreError, ThrottleLimit,
};
use uuid::Uuid;

const T0: i64 = 1_700_000_000;

/// Instantiates each case once per backend, on a fresh migrated database.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::run(super::Backend::Sqlite, |s| Box::pin(super::$name(s))).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::run(super::Backend::Postgres, |s| Box::pin(super::$name(s))).await }
            )*
        }
    };
}

async fn run<F>(b: Backend, case: F)
where
    F: for<'a> FnOnce(
        &'a dyn Store,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>,
{
    let db = TestDb::new(b).await;
    let store = latchkey::store::connect(&db.url, common::pool_settings())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    case(store.as_ref()).await;
    drop(store);
    drop(db);
}

fn client(id: &str) -> Client {
    Client {
        id: id.into(),
        name: "Contract App".into(),
        kind: ClientKind::Confidential,
        secret_hash: Some("c2VjcmV0LWhhc2g".into()),
        auth_method: Some(AuthMethod::ClientSecretPost),
        grant_types: vec![
            GrantType::AuthorizationCode,
            GrantType::Password,
            GrantType::RefreshToken,
        ],
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "http://127.0.0.1:9000/cb?x=1".into(),
        ],
        post_logout_redirect_uris: vec!["https://app.example/bye".into()],
        scopes: ScopeSet::parse("openid profile api:read").unwrap(),
        resources: vec!["https://api.example/".into()],
        access_token_ttl: 1234,
        refresh_idle_ttl: Some(600),
        refresh_absolute_ttl: Some(86_400),
        first_party: true,
        created_at: T0,
    }
}

fn user(username: &str) -> User {
    User {
        id: Uuid::new_v4(),
        username: username.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        profile: Profile {
            name: Some("Zoë Example".into()),
            given_name: Some("Zoë".into()),
            family_name: Some("Example".into()),
            email: Some("zoe@example.com".into()),
            email_verified: true,
        },
        disabled: false,
        created_at: T0,
        updated_at: T0 + 1,
    }
}

fn grant(client_id: &str, user_id: Uuid, expires_at: i64) -> Grant {
    Grant {
        id: Uuid::new_v4().to_string(),
        client_id: client_id.into(),
        user_id,
        scope: ScopeSet::parse("openid offline_access").unwrap(),
        auth_time: T0,
        created_at: T0,
        expires_at,
    }
}

/// A client, a user, and a grant with one refresh token `rt` (idle expiry `rt_expires`).
async fn family(s: &dyn Store, rt: &str, grant_expires: i64, rt_expires: i64) -> Grant {
    let c = client(&format!("c-{}", Uuid::new_v4().simple()));
    s.insert_client(&c).await.unwrap();
    let u = user(&format!("u-{}", Uuid::new_v4().simple()));
    s.insert_user(&u).await.unwrap();
    let g = grant(&c.id, u.id, grant_expires);
    s.create_grant(&g, Some((&token_hash(rt), rt_expires)))
        .await
        .unwrap();
    g
}

fn policy(now: i64, grace: i64) -> RotatePolicy {
    RotatePolicy {
        now,
        grace_secs: grace,
        idle_ttl: 600,
        nonce: [7; 16],
    }
}

fn h(s: &str) -> TokenHash {
    token_hash(s)
}

async fn client_id_is_unique(s: &dyn Store) {
    s.insert_client(&client("dup")).await.unwrap();
    let mut other = client("dup");
    other.name = "Another".into();
    let err = s.insert_client(&other).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(
        s.client("dup").await.unwrap().unwrap().name,
        "Contract App",
        "the first stays"
    );
}

async fn username_is_unique(s: &dyn Store) {
    s.insert_user(&user("alice")).await.unwrap();
    let err = s.insert_user(&user("alice")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    // The same id under another name conflicts too.
    let u = user("bob");
    s.insert_user(&u).await.unwrap();
    let mut same_id = user("carol");
    same_id.id = u.id;
    assert!(matches!(
        s.insert_user(&same_id).await.unwrap_err(),
        StoreError::Conflict { .. }
    ));
    assert_eq!(s.users().await.unwrap().len(), 2);
}

async fn client_round_trip(s: &dyn Store) {
    let c = client("round-trip");
    s.insert_client(&c).await.unwrap();
    let back = s.client("round-trip").await.unwrap().unwrap();
    assert_eq!(
        format!("{back:?}"),
        format!("{c:?}"),
        "every field comes back"
    );
    // A public client with the optional fields empty.
    let p = Client {
        id: "public".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        auth_method: None,
        grant_types: vec![GrantType::AuthorizationCode],
        post_logout_redirect_uris: vec![],
        scopes: ScopeSet::default(),
        resources: vec![],
        refresh_idle_ttl: None,
        refresh_absolute_ttl: None,
        first_party: false,
        created_at: T0 + 5,
        ..client("public")
    };
    s.insert_client(&p).await.unwrap();
    assert_eq!(
        format!("{:?}", s.client("public").await.unwrap().unwrap()),
        format!("{p:?}")
    );
    let all = s.clients().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["round-trip", "public"]);
    assert!(
        s.client("nobody").await.unwrap().is_none(),
        "not found is a value"
    );
}

async fn user_round_trip(s: &dyn Store) {
    let u = user("zoë");
    s.insert_user(&u).await.unwrap();
    let by_id = s.user(u.id).await.unwrap().unwrap();
    assert_eq!(
        format!("{by_id:?}"),
        format!("{u:?}"),
        "every field comes back"
    );
    let by_name = s.user_by_username("zoë").await.unwrap().unwrap();
    assert_eq!(by_name.id, u.id);
    assert!(
        s.user_by_username("ZOË").await.unwrap().is_none(),
        "usernames match exactly"
    );
    assert!(s.user(Uuid::new_v4()).await.unwrap().is_none());
    let mut bare = user("bare");
    bare.profile = Profile::default();
    s.insert_user(&bare).await.unwrap();
    assert_eq!(
        s.user(bare.id).await.unwrap().unwrap().profile,
        Profile::default()
    );
    assert!(s.set_password(u.id, "$argon2id$new", T0 + 9).await.unwrap());
    assert!(s.set_disabled(u.id, true, T0 + 10).await.unwrap());
    let changed = s.user(u.id).await.unwrap().unwrap();
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert!(changed.disabled);
    assert_eq!(changed.updated_at, T0 + 10);
    assert!(
        !s.set_disabled(Uuid::new_v4(), true, T0).await.unwrap(),
        "unknown user"
    );
    assert!(s.delete_user(u.id, T0).await.unwrap());
    assert!(
        !s.delete_user(u.id, T0).await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(s.user(u.id).await.unwrap().is_none());
}

async fn delete_client_revokes_its_grants(s: &dyn Store) {
    let g = family(s, "rt-1", T0 + 10_000, T0 + 600).await;
    let other = family(s, "rt-2", T0 + 10_000, T0 + 600).await;
    assert!(!s.grant_revoked(&g.id).await.unwrap());
    assert!(s.delete_client(&g.client_id, T0 + 1).await.unwrap());
    assert!(
        !s.delete_client(&g.client_id, T0 + 1).await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(s.client(&g.client_id).await.unwrap().is_none());
    assert!(s.grant_revoked(&g.id).await.unwrap());
    assert!(
        s.access_token_revoked("any-jti", Some(&g.id), None)
            .await
            .unwrap(),
        "its access tokens are dead"
    );
    assert!(matches!(
        s.rotate_refresh(&h("rt-1"), &h("rt-1b"), policy(T0 + 2, 2))
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    assert!(
        !s.grant_revoked(&other.id).await.unwrap(),
        "other clients' grants stay"
    );
    // Deleting a user revokes theirs.
    assert!(s.delete_user(other.user_id, T0 + 3).await.unwrap());
    assert!(s.grant_revoked(&other.id).await.unwrap());
}

// SECURITY-TESTS: RT-04, RL-07
async fn rotate_refresh_is_exactly_once_under_concurrency(s: &dyn Store) {
    family(s, "rt", T0 + 10_000, T0 + 600).await;
    let (rt, succ) = (h("rt"), h("rt-next"));
    let outcomes = join_all((0..10).map(|_| s.rotate_refresh(&rt, &succ, policy(T0 + 1, 2)))).await;
    let mut rotated = 0;
    for o in outcomes {
        match o.unwrap() {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Retried(r) => assert_eq!(r.used_at, Some(T0 + 1)),
            other => panic!("within the grace period a retry gets the same successor: {other:?}"),
        }
    }
    assert_eq!(rotated, 1, "exactly one rotation");
    // The successor is the one live token, and it rotates.
    assert!(
        s.refresh_token(&succ)
            .await
            .unwrap()
            .unwrap()
            .used_at
            .is_none()
    );
    assert!(matches!(
        s.rotate_refresh(&succ, &h("rt-3"), policy(T0 + 2, 2))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
}

// SECURITY-TESTS: RT-02, RT-04
async fn without_grace_concurrent_reuse_revokes_the_family(s: &dyn Store) {
    let g = family(s, "rt", T0 + 10_000, T0 + 600).await;
    let (rt, succ) = (h("rt"), h("rt-next"));
    let outcomes = join_all((0..10).map(|_| s.rotate_refresh(&rt, &succ, policy(T0 + 1, 0)))).await;
    let mut rotated = 0;
    for o in outcomes {
        match o.unwrap() {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Reused | Rotation::Invalid => {}
            Rotation::Retried(_) => panic!("grace 0 allows no retry"),
        }
    }
    assert_eq!(rotated, 1);
    assert!(
        s.grant_revoked(&g.id).await.unwrap(),
        "the reuse revoked the family"
    );
    assert!(matches!(
        s.rotate_refresh(&succ, &h("rt-3"), policy(T0 + 2, 0))
            .await
            .unwrap(),
        Rotation::Invalid
    ));
}

/// A refresh token is read with its grant and the grant's user in one lookup, as it is
/// spent: the refresh grant and introspection need no further round trip.
async fn refresh_records_carry_their_grant_and_user(s: &dyn Store) {
    let g = family(s, "rt1", T0 + 10_000, T0 + 600).await;
    let rec = s.refresh_token(&h("rt1")).await.unwrap().unwrap();
    assert_eq!(rec.grant.id, g.id);
    assert!(!rec.grant_revoked);
    assert_eq!(rec.used_at, None);
    assert_eq!(rec.user.as_ref().map(|u| u.id), Some(g.user_id));
    let r = s
        .rotate_refresh(&h("rt1"), &h("rt2"), policy(T0 + 1, 2))
        .await
        .unwrap();
    let Rotation::Rotated(rec) = r else {
        panic!("{r:?}")
    };
    assert_eq!(rec.grant.id, g.id);
    assert_eq!(rec.used_at, Some(T0 + 1));
    assert_eq!(rec.successor_hash, Some(h("rt2")));
    assert_eq!(rec.scope, g.scope);
    let u = rec.user.expect("the user comes with the spent token");
    assert_eq!(u.id, g.user_id);
    assert!(!u.disabled);
    let next = s.refresh_token(&h("rt2")).await.unwrap().unwrap();
    assert_eq!((next.issued_at, next.expires_at), (T0 + 1, T0 + 601));
    assert_eq!(next.scope, g.scope);
    assert!(s.delete_user(g.user_id, T0 + 2).await.unwrap());
    let gone = s.refresh_token(&h("rt2")).await.unwrap().unwrap();
    assert!(gone.user.is_none(), "a deleted user is no user");
    assert!(gone.grant_revoked, "deleting the user revoked the grant");
}

// SECURITY-TESTS: RT-02
async fn reuse_after_grace_revokes_the_family(s: &dyn Store) {
    let g = family(s, "rt1", T0 + 10_000, T0 + 600).await;
    let r = s
        .rotate_refresh(&h("rt1"), &h("rt2"), policy(T0, 2))
        .await
        .unwrap();
    let Rotation::Rotated(rec) = r else {
        panic!("{r:?}")
    };
    assert_eq!(rec.grant.id, g.id);
    let rt2 = s.refresh_token(&h("rt2")).await.unwrap().unwrap();
    assert_eq!(
        rt2.expires_at,
        T0 + 600,
        "the successor's idle expiry starts now"
    );
    assert_eq!(rt2.issued_at, T0);
    // A retry within the grace period with the same successor is a retry ...
    assert!(matches!(
        s.rotate_refresh(&h("rt1"), &h("rt2"), policy(T0 + 2, 2))
            .await
            .unwrap(),
        Rotation::Retried(_)
    ));
    // ... with another successor, or after the grace period, a reuse.
    assert!(matches!(
        s.rotate_refresh(&h("rt1"), &h("rt2"), policy(T0 + 3, 2))
            .await
            .unwrap(),
        Rotation::Reused
    ));
    assert!(s.grant_revoked(&g.id).await.unwrap());
    assert!(
        matches!(
            s.rotate_refresh(&h("rt2"), &h("rt3"), policy(T0 + 4, 2))
                .await
                .unwrap(),
            Rotation::Invalid
        ),
        "successor dead"
    );
    assert!(matches!(
        s.rotate_refresh(&h("rt1"), &h("rt2"), policy(T0 + 5, 2))
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    // A retry is answered with the first successor (its hash and nonce), whatever the
    // retry proposed: the caller re-derives it, and no second branch is ever written.
    let g2 = family(s, "x1", T0 + 10_000, T0 + 600).await;
    assert!(matches!(
        s.rotate_refresh(&h("x1"), &h("x2"), policy(T0, 2))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    let r = s
        .rotate_refresh(&h("x1"), &h("evil"), policy(T0, 2))
        .await
        .unwrap();
    let Rotation::Retried(rec) = r else {
        panic!("{r:?}")
    };
    assert_eq!(rec.successor_hash, Some(h("x2")));
    assert!(rec.successor_nonce.is_some());
    assert!(s.refresh_token(&h("evil")).await.unwrap().is_none());
    assert!(!s.grant_revoked(&g2.id).await.unwrap());
    // Past the grace period housekeeping forgets the nonce: the successor can no longer be
    // derived from the old token, even with the pepper.
    let cut = PurgeCutoffs {
        now: T0 + 3,
        nonces_before: T0 + 3,
        grants_before: T0,
        throttle_before: T0,
        batch: 100,
    };
    s.purge_expired(cut).await.unwrap();
    let spent = s.refresh_token(&h("x1")).await.unwrap().unwrap();
    assert_eq!(spent.successor_nonce, None);
    assert_eq!(spent.successor_hash, Some(h("x2")));
    // Unknown tokens are invalid, and change nothing.
    assert!(matches!(
        s.rotate_refresh(&h("nope"), &h("nope2"), policy(T0, 2))
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    assert!(s.refresh_token(&h("nope2")).await.unwrap().is_none());
}

// SECURITY-TESTS: RT-07
async fn idle_expiry_is_invalid(s: &dyn Store) {
    let g = family(s, "rt", T0 + 10_000, T0 + 100).await;
    assert!(matches!(
        s.rotate_refresh(&h("rt"), &h("next"), policy(T0 + 100, 2))
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    assert!(
        !s.grant_revoked(&g.id).await.unwrap(),
        "an expired token is no theft"
    );
    assert!(s.refresh_token(&h("next")).await.unwrap().is_none());
    // One second earlier it would have rotated; its successor gets a fresh idle window
    // capped by the grant's absolute end.
    family(s, "rt-b", T0 + 700, T0 + 100).await;
    assert!(matches!(
        s.rotate_refresh(&h("rt-b"), &h("next-b"), policy(T0 + 99, 2))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    assert_eq!(
        s.refresh_token(&h("next-b"))
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        T0 + 699
    );
    family(s, "rt-c", T0 + 650, T0 + 100).await;
    assert!(matches!(
        s.rotate_refresh(&h("rt-c"), &h("next-c"), policy(T0 + 99, 2))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    assert_eq!(
        s.refresh_token(&h("next-c"))
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        T0 + 650,
        "capped by the grant"
    );
}

// SECURITY-TESTS: RT-07
async fn grant_absolute_expiry_is_invalid(s: &dyn Store) {
    family(s, "rt", T0 + 50, T0 + 100).await;
    assert!(matches!(
        s.rotate_refresh(&h("rt"), &h("next"), policy(T0 + 50, 2))
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    assert!(s.refresh_token(&h("next")).await.unwrap().is_none());
}

// SECURITY-TESTS: UR-03, RL-09
async fn access_token_revocation_is_idempotent(s: &dyn Store) {
    assert!(!s.access_token_revoked("jti-1", None, None).await.unwrap());
    for _ in 0..3 {
        s.revoke_access_token("jti-1", T0 + 60).await.unwrap();
    }
    assert!(s.access_token_revoked("jti-1", None, None).await.unwrap());
    assert!(!s.access_token_revoked("jti-2", None, None).await.unwrap());
    let g = family(s, "rt", T0 + 10_000, T0 + 600).await;
    assert!(
        !s.access_token_revoked("jti-2", Some(&g.id), None)
            .await
            .unwrap()
    );
    s.revoke_grant(&g.id, T0 + 1).await.unwrap();
    s.revoke_grant(&g.id, T0 + 2).await.unwrap();
    assert!(
        s.access_token_revoked("jti-2", Some(&g.id), None)
            .await
            .unwrap(),
        "by its grant"
    );
    assert!(s.grant_revoked(&g.id).await.unwrap());
    assert!(
        s.grant_revoked("no-such-grant").await.unwrap(),
        "an unknown grant is not live"
    );
}

fn limit(max_failures: i64) -> ThrottleLimit {
    ThrottleLimit {
        max_failures,
        window_secs: 60,
        lock_secs: 30,
    }
}

// SECURITY-TESTS: PW-03
async fn throttle_counts_locks_and_resets(s: &dyn Store) {
    let (u, ip) = ("user:alice", "ip:10.0.0.1");
    let big = limit(100);
    // Three attempts are counted; the third reaches the limit and locks.
    for i in 0..3 {
        assert!(
            s.begin_login_attempt(u, ip, T0 + i, limit(3), big)
                .await
                .unwrap(),
            "attempt {i}"
        );
        let locked = s.login_locked_until(u, ip, T0 + i).await.unwrap();
        assert_eq!(locked, (i == 2).then_some(T0 + 2 + 30), "attempt {i}");
    }
    // Refused while locked, and nothing counted: the IP's count is unchanged.
    assert!(
        !s.begin_login_attempt(u, ip, T0 + 10, limit(3), big)
            .await
            .unwrap()
    );
    assert!(
        !s.begin_login_attempt(u, "ip:other", T0 + 10, limit(3), big)
            .await
            .unwrap()
    );
    assert_eq!(
        s.login_locked_until("user:nobody", "ip:other", T0 + 10)
            .await
            .unwrap(),
        None,
        "rolled back"
    );
    // The lock runs out: a fresh count.
    assert_eq!(s.login_locked_until(u, ip, T0 + 32).await.unwrap(), None);
    assert!(
        s.begin_login_attempt(u, ip, T0 + 32, limit(3), big)
            .await
            .unwrap()
    );
    assert!(
        s.begin_login_attempt(u, ip, T0 + 33, limit(3), big)
            .await
            .unwrap()
    );
    assert_eq!(
        s.login_locked_until(u, ip, T0 + 33).await.unwrap(),
        None,
        "two of three"
    );
    // A success clears the user's count.
    s.login_succeeded(u, ip, big).await.unwrap();
    assert!(
        s.begin_login_attempt(u, ip, T0 + 34, limit(3), big)
            .await
            .unwrap()
    );
    assert!(
        s.begin_login_attempt(u, ip, T0 + 35, limit(3), big)
            .await
            .unwrap()
    );
    assert_eq!(s.login_locked_until(u, ip, T0 + 35).await.unwrap(), None);
    // The window passes: the count starts again.
    assert!(
        s.begin_login_attempt(u, ip, T0 + 34 + 60, limit(3), big)
            .await
            .unwrap()
    );
    assert!(
        s.begin_login_attempt(u, ip, T0 + 34 + 61, limit(3), big)
            .await
            .unwrap()
    );
    assert_eq!(
        s.login_locked_until(u, ip, T0 + 34 + 61).await.unwrap(),
        None,
        "the window reset the count"
    );
    // The IP limit locks every user from that IP.
    let ip2 = "ip:10.0.0.2";
    for i in 0..2 {
        assert!(
            s.begin_login_attempt(&format!("user:u{i}"), ip2, T0, limit(5), limit(2))
                .await
                .unwrap()
        );
    }
    assert!(
        !s.begin_login_attempt("user:fresh", ip2, T0, limit(5), limit(2))
            .await
            .unwrap()
    );
    assert_eq!(
        s.login_locked_until("user:fresh", ip2, T0).await.unwrap(),
        Some(T0 + 30)
    );
}

// SECURITY-TESTS: PW-04
async fn throttle_counts_concurrent_attempts(s: &dyn Store) {
    let passed = join_all(
        (0..10).map(|_| s.begin_login_attempt("user:bob", "ip:1", T0, limit(3), limit(100))),
    )
    .await;
    let passed = passed.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(
        passed, 3,
        "parallel attempts cannot all pass the lock check"
    );
}

// SECURITY-TESTS: RL-08
async fn purge_deletes_only_expired_rows_in_batches(s: &dyn Store) {
    let now = T0 + 1000;
    // Expired: 5 refresh tokens (in grants past their end), 5 deny-list rows, 5 throttle
    // rows. Live: 2 of each, and a locked throttle key with an old window.
    for i in 0..5 {
        family(s, &format!("old-{i}"), now - 10, now - 10).await;
        s.revoke_access_token(&format!("old-{i}"), now - 1)
            .await
            .unwrap();
        s.begin_login_attempt(
            &format!("user:old-{i}"),
            "ip:old",
            now - 500,
            limit(10),
            limit(100),
        )
        .await
        .unwrap();
    }
    let mut live = Vec::new();
    for i in 0..2 {
        live.push(family(s, &format!("live-{i}"), now + 10_000, now + 600).await);
        s.revoke_access_token(&format!("live-{i}"), now + 60)
            .await
            .unwrap();
        s.begin_login_attempt(
            &format!("user:live-{i}"),
            "ip:live",
            now - 5,
            limit(10),
            limit(100),
        )
        .await
        .unwrap();
    }
    s.begin_login_attempt("user:locked", "ip:locked", now - 500, limit(1), limit(1))
        .await
        .unwrap();
    let lock = ThrottleLimit {
        max_failures: 1,
        window_secs: 60,
        lock_secs: 10_000,
    };
    s.begin_login_attempt("user:locked2", "ip:locked2", now - 500, lock, lock)
        .await
        .unwrap();
    let cut = PurgeCutoffs {
        now,
        nonces_before: now,
        grants_before: now,
        throttle_before: now - 60,
        batch: 2,
    };
    let mut total = Purged::default();
    let mut passes = 0;
    loop {
        let p = s.purge_expired(cut).await.unwrap();
        for n in [
            p.refresh_tokens,
            p.grants,
            p.revoked_access_tokens,
            p.throttle,
        ] {
            assert!(n <= 2, "at most one batch per kind per pass: {p:?}");
        }
        if passes == 0 {
            assert_eq!(
                (
                    p.refresh_tokens,
                    p.grants,
                    p.revoked_access_tokens,
                    p.throttle
                ),
                (2, 2, 2, 2),
                "full batches first"
            );
        }
        let sum = p.refresh_tokens + p.grants + p.revoked_access_tokens + p.throttle;
        total.refresh_tokens += p.refresh_tokens;
        total.grants += p.grants;
        total.revoked_access_tokens += p.revoked_access_tokens;
        total.throttle += p.throttle;
        passes += 1;
        if sum == 0 {
            break;
        }
        assert!(passes < 10);
    }
    assert_eq!(total.refresh_tokens, 5);
    assert_eq!(total.grants, 5);
    assert_eq!(total.revoked_access_tokens, 5);
    // 5 user keys, "ip:old", and the pair locked for a second only (expired) go.
    assert_eq!(total.throttle, 8);
    assert_eq!(passes, 5, "ceil(8 / 2) passes and one that finds nothing");
    for (i, g) in live.iter().enumerate() {
        assert!(
            s.refresh_token(&h(&format!("live-{i}")))
                .await
                .unwrap()
                .is_some()
        );
        assert!(!s.grant_revoked(&g.id).await.unwrap());
        assert!(
            s.access_token_revoked(&format!("live-{i}"), None, None)
                .await
                .unwrap()
        );
    }
    assert!(s.refresh_token(&h("old-0")).await.unwrap().is_none());
    assert!(!s.access_token_revoked("old-0", None, None).await.unwrap());
    assert!(
        s.login_locked_until("user:locked2", "ip:none", now)
            .await
            .unwrap()
            .is_some(),
        "a live lock stays"
    );
    // The live window still counts: the 10th attempt locks.
    for _ in 0..9 {
        s.begin_login_attempt("user:live-0", "ip:x", now, limit(10), limit(100))
            .await
            .unwrap();
    }
    assert!(
        s.login_locked_until("user:live-0", "ip:x", now)
            .await
            .unwrap()
            .is_some(),
        "live counts were kept"
    );
}

/// Remembered consent only grows, and concurrent approvals (two tabs) each add their
/// scopes: none is lost to a read-modify-write race.
async fn consent_merges_atomically(s: &dyn Store) {
    let c = client("consent-client");
    s.insert_client(&c).await.unwrap();
    let u = user("consent-user");
    s.insert_user(&u).await.unwrap();
    assert_eq!(s.consent(u.id, &c.id).await.unwrap(), None);
    let sets = [
        "openid",
        "profile",
        "email phone",
        "openid address",
        "offline_access",
    ];
    let parsed: Vec<ScopeSet> = sets.iter().map(|x| ScopeSet::parse(x).unwrap()).collect();
    let merged = join_all(parsed.iter().map(|x| s.merge_consent(u.id, &c.id, x, T0))).await;
    for (m, asked) in merged.into_iter().zip(&parsed) {
        assert!(
            asked.is_subset(&m.unwrap()),
            "each merge returns a superset of its own"
        );
    }
    let all = ScopeSet::parse("openid profile email phone address offline_access").unwrap();
    assert_eq!(s.consent(u.id, &c.id).await.unwrap(), Some(all.clone()));
    // Asking for less later narrows nothing.
    let again = s
        .merge_consent(u.id, &c.id, &ScopeSet::parse("openid").unwrap(), T0 + 1)
        .await
        .unwrap();
    assert_eq!(again, all);
}

async fn init_setting_first_writer_wins(s: &dyn Store) {
    assert_eq!(s.setting("pepper").await.unwrap(), None);
    assert_eq!(s.init_setting("pepper", "first").await.unwrap(), "first");
    assert_eq!(s.init_setting("pepper", "second").await.unwrap(), "first");
    assert_eq!(s.setting("pepper").await.unwrap().as_deref(), Some("first"));
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    let won = join_all(values.iter().map(|v| s.init_setting("race", v))).await;
    let won: Vec<String> = won.into_iter().map(Result::unwrap).collect();
    assert!(
        won.iter().all(|w| *w == won[0]),
        "every racer sees the one winner: {won:?}"
    );
    assert!(values.contains(&won[0]));
}

async fn migrate_is_idempotent(s: &dyn Store) {
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    s.ping().await.unwrap();
}

contract_tests! {
    client_id_is_unique,
    username_is_unique,
    client_round_trip,
    user_round_trip,
    delete_client_revokes_its_grants,
    rotate_refresh_is_exactly_once_under_concurrency,
    without_grace_concurrent_reuse_revokes_the_family,
    reuse_after_grace_revokes_the_family,
    refresh_records_carry_their_grant_and_user,
    idle_expiry_is_invalid,
    grant_absolute_expiry_is_invalid,
    access_token_revocation_is_idempotent,
    throttle_counts_locks_and_resets,
    throttle_counts_concurrent_attempts,
    purge_deletes_only_expired_rows_in_batches,
    consent_merges_atomically,
    init_setting_first_writer_wins,
    migrate_is_idempotent,
}
