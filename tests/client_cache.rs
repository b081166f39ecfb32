//! Client registrations are served from memory for `keys.reload_secs`: a change by the CLI
//! or another replica is seen within that many seconds (SECURITY-TESTS RL-02 allows a
//! documented TTL of seconds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestServer};
use latchkey::admin;
use latchkey::oauth::GrantType;

// SECURITY-TESTS: RL-02
async fn a_deleted_client_is_refused_once_its_cache_entry_ages_out(b: Backend) {
    let srv = TestServer::start(b).await;
    let client = srv
        .confidential(&[GrantType::ClientCredentials], "read")
        .await;
    let cc = [("grant_type", "client_credentials")];
    assert_eq!(srv.token(&client, &cc).await.status, 200);
    admin::delete_client(srv.store(), &client.id, srv.now())
        .await
        .unwrap();
    let ttl = srv.state.config.keys.reload_secs as i64;
    srv.advance(ttl - 1);
    assert_eq!(srv.token(&client, &cc).await.status, 200, "still cached");
    srv.advance(1);
    srv.token(&client, &cc)
        .await
        .assert_error(401, "invalid_client", "aged out");
    // Unknown ids are never cached: a client created now works at once.
    let fresh = srv
        .confidential(&[GrantType::ClientCredentials], "read")
        .await;
    assert_eq!(srv.token(&fresh, &cc).await.status, 200);
}

both_backends! {
    a_deleted_client_is_refused_once_its_cache_entry_ages_out,
}
