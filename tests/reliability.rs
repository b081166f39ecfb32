//! Reliability: the database going away and coming back (RL-04), idempotent deletes
//! (RL-09), and changes made at one instance seen by another on the next request (RL-02).
//!
//! RL-04 on SQLite: the database is a local file, so "unreachable" means locked or
//! unreadable. Tests run as root, which reads any file whatever its mode, so an unreadable
//! file cannot be staged cleanly; what can be is a writer holding the lock past
//! `busy_timeout`, which must give the same 503 (SQLITE_BUSY is `Unavailable`), never a
//! 500. Reads are not blocked by a writer in WAL mode, so client_credentials keeps working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, Res, TestClient, TestDb, TestServer, test_clock};
use latchkey::admin;
use latchkey::oauth::GrantType;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A TCP proxy the test owns: forwards to `target` until cut, then drops every
/// connection and closes new ones at once.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = {
            let (up, conns) = (up.clone(), conns.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    conns.lock().unwrap().push(task.abort_handle());
                }
            })
        };
        Proxy {
            port,
            up,
            conns,
            accept,
        }
    }

    /// Every connection through the proxy dies; new ones are closed on arrival.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A client that gives up long after the server should have answered.
fn impatient() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn timed(req: reqwest::RequestBuilder) -> (Res, Duration) {
    let start = Instant::now();
    let res = TestServer::read(req.send().await.expect("the server answers, no hang")).await;
    (res, start.elapsed())
}

#[track_caller]
fn assert_unavailable(res: &Res, took: Duration, what: &str) {
    res.assert_error(503, "temporarily_unavailable", what);
    assert!(res.header("retry-after").is_some(), "{what}: Retry-After");
    assert!(
        took < Duration::from_millis(3500),
        "{what}: answered in {took:?}, within the 2 s acquire timeout"
    );
}

const USER_GRANTS: &[GrantType] = &[
    GrantType::ClientCredentials,
    GrantType::Password,
    GrantType::RefreshToken,
];

// SECURITY-TESTS: RL-04
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_gives_503_and_recovers_without_restart() {
    let db = Arc::new(TestDb::new(Backend::Postgres).await);
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let mut via_proxy = url::Url::parse(&db.url).unwrap();
    via_proxy.set_host(Some("127.0.0.1")).unwrap();
    via_proxy.set_port(Some(proxy.port)).unwrap();
    let via_proxy = via_proxy.to_string();
    let srv = TestServer::start_on(db.clone(), test_clock(), move |c| {
        c.database_url = via_proxy;
        c.database_acquire_timeout_secs = 2;
    })
    .await;
    let client = srv.confidential(USER_GRANTS, "openid profile").await;
    srv.user("alice", "correct horse battery").await;
    let login = srv
        .password_grant(&client, "alice", "correct horse battery", "openid profile")
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let at = login.json["access_token"].as_str().unwrap().to_owned();
    let rt = login.json["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(srv.get_bearer("/userinfo", &at).await.status, 200);
    // Past the client cache's lifetime, so that authenticating the client needs the
    // database (a cached client would still get client_credentials tokens while it is cut).
    srv.advance(srv.state.config.keys.reload_secs as i64);

    proxy.cut();
    let http = impatient();
    let secret = client.secret.as_deref().unwrap();
    let token = || {
        http.post(srv.url("/token"))
            .basic_auth(&client.id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
    };
    let (res, took) = timed(token()).await;
    assert_unavailable(&res, took, "client_credentials while the database is cut");
    let (res, took) = timed(
        http.post(srv.url("/token"))
            .basic_auth(&client.id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(common::form_body(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
            ])),
    )
    .await;
    assert_unavailable(&res, took, "refresh while the database is cut");
    let (res, took) = timed(http.get(srv.url("/userinfo")).bearer_auth(&at)).await;
    assert_unavailable(&res, took, "userinfo while the database is cut");
    let (res, took) = timed(http.get(srv.url("/readyz"))).await;
    assert_eq!(res.status, 503, "readyz fails while the database is cut");
    assert!(took < Duration::from_millis(3500));
    let (res, _) = timed(http.get(srv.url("/healthz"))).await;
    assert_eq!(res.status, 200, "the process itself is alive");
    let (res, _) = timed(http.get(srv.url("/jwks"))).await;
    assert_eq!(res.status, 200, "keys are served from memory");
    assert!(!res.json["keys"].as_array().unwrap().is_empty());
    // Several requests at once during the outage: all 503, none hangs.
    let many = futures::future::join_all((0..5).map(|_| timed(token()))).await;
    for (res, took) in &many {
        assert_unavailable(res, *took, "concurrent requests while the database is cut");
    }

    proxy.restore();
    let (res, _) = timed(token()).await;
    assert_eq!(res.status, 200, "recovered without a restart: {}", res.text);
    assert_eq!(srv.get("/readyz").await.status, 200);
    assert_eq!(srv.get_bearer("/userinfo", &at).await.status, 200);
    let res = srv
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(
        res.status, 200,
        "the refresh token was not spent by the failed attempt: {}",
        res.text
    );
}

// SECURITY-TESTS: RL-04, RL-07
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_write_lock_past_busy_timeout_gives_503() {
    use sqlx::Connection;
    let srv =
        TestServer::start_with(Backend::Sqlite, |c| c.database_acquire_timeout_secs = 1).await;
    let client = srv.confidential(USER_GRANTS, "openid").await;
    srv.user("alice", "correct horse battery").await;
    let mut blocker = sqlx::SqliteConnection::connect(&srv.db.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let http = impatient();
    let (res, took) = timed(
        http.post(srv.url("/token"))
            .basic_auth(&client.id, client.secret.as_deref())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(common::form_body(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "correct horse battery"),
            ])),
    )
    .await;
    res.assert_error(
        503,
        "temporarily_unavailable",
        "a password grant needs to write",
    );
    assert!(res.header("retry-after").is_some());
    assert!(took < Duration::from_secs(4), "{took:?}");
    // Reads go on: WAL readers are not blocked by a writer.
    let res = srv
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(srv.get("/readyz").await.status, 200);
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let res = srv
        .password_grant(&client, "alice", "correct horse battery", "openid")
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
}

/// A client that hangs up while its grant is being written does not undo the grant, nor
/// leave the connection inside a transaction: each request runs to completion
/// (http::detach). The grant's transaction is held at its second insert by a lock this test
/// takes, the client goes away, the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_whose_client_hangs_up_mid_transaction_is_still_written() {
    use sqlx::Connection;
    let srv = Arc::new(TestServer::start(Backend::Postgres).await);
    let client = srv.confidential(USER_GRANTS, "openid offline_access").await;
    srv.user("alice", "correct horse battery").await;
    let mut blocker = sqlx::PgConnection::connect(&srv.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE refresh_tokens IN EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let (s, c) = (srv.clone(), client.clone());
    let attempt = tokio::spawn(async move {
        s.password_grant(
            &c,
            "alice",
            "correct horse battery",
            "openid offline_access",
        )
        .await
    });
    let mut watch = sqlx::PgConnection::connect(&srv.db.url).await.unwrap();
    let waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO refresh_tokens%'";
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>(waiting)
        .fetch_one(&mut watch)
        .await
        .unwrap()
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the grant never reached its insert"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    attempt.abort(); // the client hangs up mid-transaction
    assert!(attempt.await.unwrap_err().is_cancelled());
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    // The grant goes on to commit; nothing stays open in a transaction.
    let written = "SELECT (SELECT COUNT(*) FROM grants) + (SELECT COUNT(*) FROM refresh_tokens) \
                   + (SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                      AND state = 'idle in transaction')";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar(written)
            .fetch_one(&mut watch)
            .await
            .unwrap();
        if n == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "grant rows + open transactions: {n}, not 2"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let again = srv
        .password_grant(&client, "alice", "correct horse battery", "openid")
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
}

// SECURITY-TESTS: RL-09
async fn deleting_twice_is_a_clear_not_found(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = srv
        .confidential(&[GrantType::ClientCredentials], "read")
        .await;
    admin::delete_client(srv.store(), &client.id, srv.now())
        .await
        .unwrap();
    for _ in 0..2 {
        let err = admin::delete_client(srv.store(), &client.id, srv.now())
            .await
            .unwrap_err();
        assert!(matches!(err, admin::AdminError::NotFound(_)), "{err:?}");
        assert!(err.to_string().contains(&client.id));
    }
    srv.user("bob", "correct horse battery").await;
    admin::delete_user(srv.store(), "bob", srv.now())
        .await
        .unwrap();
    let err = admin::delete_user(srv.store(), "bob", srv.now())
        .await
        .unwrap_err();
    assert!(matches!(err, admin::AdminError::NotFound(_)), "{err:?}");
}

/// A second instance on `a`'s database, behind the same issuer, with the same clock.
async fn replica(a: &TestServer) -> TestServer {
    let issuer = a.issuer().to_owned();
    TestServer::start_on(a.db.clone(), a.state.clock.clone(), move |c| {
        c.issuer = issuer
    })
    .await
}

async fn introspect_active(srv: &TestServer, by: &TestClient, token: &str) -> bool {
    let res = srv
        .post_form(
            "/introspect",
            Some((&by.id, by.secret.as_deref().unwrap())),
            &[("token", token)],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json["active"] == true
}

// SECURITY-TESTS: RL-02
async fn a_client_deleted_at_one_instance_is_refused_at_the_other(b: Backend) {
    let a = TestServer::start(b).await;
    let bsrv = replica(&a).await;
    let client = a.confidential(USER_GRANTS, "openid").await;
    let auditor = a
        .confidential(&[GrantType::ClientCredentials], "read")
        .await;
    a.user("alice", "correct horse battery").await;
    let login = bsrv
        .password_grant(&client, "alice", "correct horse battery", "openid")
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let rt = login.json["refresh_token"].as_str().unwrap().to_owned();
    let at = login.json["access_token"].as_str().unwrap().to_owned();
    let cc = bsrv
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(cc.status, 200);
    assert!(
        introspect_active(&a, &auditor, &at).await,
        "B's token is live at A"
    );

    admin::delete_client(a.store(), &client.id, a.now())
        .await
        .unwrap();
    // B serves client registrations from memory for keys.reload_secs (the documented TTL).
    bsrv.advance(bsrv.state.config.keys.reload_secs as i64);
    let res = bsrv
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    res.assert_error(401, "invalid_client", "deleted at A, used at B");
    let res = bsrv
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    res.assert_error(401, "invalid_client", "refresh by a deleted client");
    assert!(
        !introspect_active(&bsrv, &auditor, &at).await,
        "the user token died with its client"
    );
    assert_eq!(bsrv.get_bearer("/userinfo", &at).await.status, 401);
}

// SECURITY-TESTS: RL-02
// Each instance keeps "not revoked" answers for keys.reload_secs (the documented TTL); the
// instance that revokes forgets its own at once.
async fn an_access_token_revoked_at_one_instance_is_refused_at_the_other_within_the_ttl(
    b: Backend,
) {
    let a = TestServer::start(b).await;
    let bsrv = replica(&a).await;
    let client = a.confidential(USER_GRANTS, "openid").await;
    a.user("alice", "correct horse battery").await;
    let login = a
        .password_grant(&client, "alice", "correct horse battery", "openid")
        .await;
    let at = login.json["access_token"].as_str().unwrap().to_owned();
    assert!(introspect_active(&a, &client, &at).await, "live at A");
    assert!(introspect_active(&bsrv, &client, &at).await, "live at B");
    assert_eq!(a.revoke(&client, &at, None).await.status, 200);
    assert!(
        !introspect_active(&a, &client, &at).await,
        "dead at A at once"
    );
    assert_eq!(a.get_bearer("/userinfo", &at).await.status, 401);
    let ttl = bsrv.state.config.keys.reload_secs as i64;
    bsrv.advance(ttl - 1);
    assert!(
        introspect_active(&bsrv, &client, &at).await,
        "B's answer may be up to the TTL old"
    );
    bsrv.advance(1);
    assert!(!introspect_active(&bsrv, &client, &at).await, "dead at B");
    assert_eq!(bsrv.get_bearer("/userinfo", &at).await.status, 401);
}

// SECURITY-TESTS: RL-02
async fn a_user_disabled_at_one_instance_is_refused_at_the_other(b: Backend) {
    let a = TestServer::start(b).await;
    let bsrv = replica(&a).await;
    let client = a.confidential(USER_GRANTS, "openid").await;
    a.user("alice", "correct horse battery").await;
    let login = a
        .password_grant(&client, "alice", "correct horse battery", "openid")
        .await;
    let rt = login.json["refresh_token"].as_str().unwrap().to_owned();
    let at = login.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(bsrv.get_bearer("/userinfo", &at).await.status, 200);
    admin::set_disabled(bsrv.store(), "alice", true, bsrv.now())
        .await
        .unwrap();
    assert_eq!(
        a.get_bearer("/userinfo", &at).await.status,
        401,
        "userinfo at A"
    );
    let res = a
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    res.assert_error(
        400,
        "invalid_grant",
        "refresh at A for a user disabled at B",
    );
    let res = a
        .password_grant(&client, "alice", "correct horse battery", "openid")
        .await;
    res.assert_error(400, "invalid_grant", "login at A for a user disabled at B");
    admin::set_disabled(a.store(), "alice", false, a.now())
        .await
        .unwrap();
    let res = bsrv
        .password_grant(&client, "alice", "correct horse battery", "openid")
        .await;
    assert_eq!(res.status, 200, "enabled again: {}", res.text);
}

/// `client delete` says it revokes every token the client holds; its client_credentials
/// tokens have no grant row, so introspection still calls them active.
// SECURITY-TESTS: RL-02
async fn a_deleted_clients_own_tokens_are_dead(b: Backend) {
    let a = TestServer::start(b).await;
    let bsrv = replica(&a).await;
    let client = a
        .confidential(&[GrantType::ClientCredentials], "read")
        .await;
    let auditor = a
        .confidential(&[GrantType::ClientCredentials], "read")
        .await;
    let cc = bsrv
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    let cc = cc.json["access_token"].as_str().unwrap().to_owned();
    assert!(introspect_active(&a, &auditor, &cc).await);
    admin::delete_client(a.store(), &client.id, a.now())
        .await
        .unwrap();
    assert!(
        !introspect_active(&bsrv, &auditor, &cc).await,
        "a deleted client's token is dead"
    );
}

both_backends! {
    a_deleted_clients_own_tokens_are_dead,
    deleting_twice_is_a_clear_not_found,
    a_client_deleted_at_one_instance_is_refused_at_the_other,
    an_access_token_revoked_at_one_instance_is_refused_at_the_other_within_the_ttl,
    a_user_disabled_at_one_instance_is_refused_at_the_other,
}
