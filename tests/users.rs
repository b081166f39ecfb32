//! How users' passwords are stored (RFC 9106 §4; OWASP password storage).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use common::{Backend, TestServer};

// SECURITY-TESTS: PW-01
async fn passwords_are_stored_as_salted_argon2id(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", "the same password").await;
    srv.user("bob", "the same password").await;
    let a = srv
        .store()
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let bob = srv
        .store()
        .user_by_username("bob")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    for phc in [&a, &bob] {
        // $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
        let parts: Vec<&str> = phc.split('$').collect();
        assert_eq!(parts[1], "argon2id", "{phc}");
        assert_eq!(parts[2], "v=19");
        assert_eq!(
            parts[3], "m=19456,t=2,p=1",
            "OWASP minimum: 19 MiB, 2 passes"
        );
        assert_eq!(
            STANDARD_NO_PAD.decode(parts[4]).unwrap().len(),
            16,
            "16-byte salt"
        );
        assert!(!phc.contains("the same password"));
    }
    assert_ne!(
        a, bob,
        "a fresh salt per user: equal passwords, different hashes"
    );
    assert_ne!(a.split('$').nth(4), bob.split('$').nth(4));
}

both_backends! {
    passwords_are_stored_as_salted_argon2id,
}
