//! Graceful shutdown of the real binary: SIGTERM lets requests in flight finish, refuses new
//! ones, and exits 0 (RFC 9112 §9.6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::time::Duration;

use process::Latchkey;

// SECURITY-TESTS: RL-05
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_logins_in_flight_and_exits_zero() {
    let lk = Latchkey::sqlite();
    let client = lk
        .run(&[
            "client",
            "create",
            "--name",
            "job",
            "--grant-type",
            "password",
            "--scope",
            "openid",
            "--json",
        ])
        .json();
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );
    lk.run_stdin(
        &["user", "create", "--username", "alice", "--password-stdin"],
        "correct horse battery\n",
    )
    .ok();
    // One password hash at a time, so that ten logins queue and are still in flight.
    let mut served = lk.serve(&[
        ("LATCHKEY_LOGIN__VERIFY_CONCURRENCY", "1"),
        ("LATCHKEY_LOGIN__USER_MAX_FAILURES", "100"),
        ("LATCHKEY_SHUTDOWN_GRACE_SECS", "10"),
    ]);
    served.wait_ready().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let token_url = served.url("/token");
    let logins: Vec<_> = (0..10)
        .map(|i| {
            let (http, url, id, secret) =
                (http.clone(), token_url.clone(), id.clone(), secret.clone());
            // Half right, half wrong passwords: both are slow (a hash each).
            let password = if i % 2 == 0 {
                "correct horse battery"
            } else {
                "wrong password here"
            };
            tokio::spawn(async move {
                http.post(url)
                    .basic_auth(id, Some(secret))
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", password),
                    ])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let stopping = tokio::task::spawn_blocking(move || served.stop());
    let mut statuses = Vec::new();
    for l in logins {
        statuses.push(
            l.await
                .unwrap()
                .expect("a request in flight must get its answer"),
        );
    }
    let stopped = stopping.await.unwrap();
    assert!(
        stopped.status.success(),
        "exit status {:?}: {}",
        stopped.status,
        stopped.stderr
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        stopped.stderr.contains("shutting down"),
        "{}",
        stopped.stderr
    );
    // New requests are refused once the server is gone.
    assert!(http.post(&token_url).send().await.is_err());
    assert!(!stopped.stderr.contains("panicked"));
}
