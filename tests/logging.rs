//! What reaches the logs and the database (PW-08): JSON lines at debug level, one request
//! line per request, and no secret, password, token, `Authorization` value or private key
//! anywhere; the SQLite file holds no secret, password or refresh token either.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/process.rs"]
mod process;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{basic_header, form_body};
use process::Latchkey;
use serde_json::Value;

const JSON_DEBUG: &[(&str, &str)] = &[
    ("LATCHKEY_LOG_FORMAT", "json"),
    ("LATCHKEY_LOG_LEVEL", "debug"),
];
const PASSWORD: &str = "Tr0ub4dor&3-horse-staple";

struct Seen {
    /// (request id, expected status)
    requests: Vec<(String, u16)>,
    /// Values that must appear in no log and (but access tokens) in no database file.
    secrets: Vec<String>,
    access_tokens: Vec<String>,
}

async fn send(seen: &mut Seen, req: reqwest::RequestBuilder, status: u16) -> Value {
    let id = format!("test-{}", seen.requests.len());
    let res = req.header("x-request-id", &id).send().await.unwrap();
    assert_eq!(res.status(), status);
    assert_eq!(
        res.headers()["x-request-id"],
        id.as_str(),
        "the request id is echoed"
    );
    seen.requests.push((id, status));
    res.json().await.unwrap_or(Value::Null)
}

fn form(
    http: &reqwest::Client,
    url: String,
    auth: Option<(&str, &str)>,
    pairs: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut req = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(pairs));
    if let Some((id, secret)) = auth {
        req = req.header("authorization", basic_header(id, secret));
    }
    req
}

// SECURITY-TESTS: PW-08, PW-07, PW-05
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_database_hold_no_secrets() {
    let lk = Latchkey::sqlite();
    let mut cli_stderr = String::new();
    let client = {
        let out = lk.run_with(
            &[
                "client",
                "create",
                "--name",
                "logged",
                "--grant-type",
                "client_credentials",
                "--grant-type",
                "password",
                "--grant-type",
                "refresh_token",
                "--scope",
                "openid profile api",
                "--json",
            ],
            JSON_DEBUG,
            None,
        );
        cli_stderr.push_str(&out.stderr);
        out.json()
    };
    let out = lk.run_with(
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--password-stdin",
            "--json",
        ],
        JSON_DEBUG,
        Some(format!("{PASSWORD}\n").as_bytes()),
    );
    cli_stderr.push_str(&out.stderr);
    out.ok();
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );

    let mut srv = lk.serve(JSON_DEBUG);
    srv.wait_ready().await;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let mut seen = Seen {
        requests: Vec::new(),
        secrets: vec![secret.clone(), PASSWORD.to_owned()],
        access_tokens: Vec::new(),
    };
    let token = srv.url("/token");
    let cc = send(
        &mut seen,
        form(
            &http,
            token.clone(),
            Some((&id, &secret)),
            &[("grant_type", "client_credentials")],
        ),
        200,
    )
    .await;
    seen.access_tokens
        .push(cc["access_token"].as_str().unwrap().to_owned());
    let wrong = format!("{secret}x");
    send(
        &mut seen,
        form(
            &http,
            token.clone(),
            Some((&id, &wrong)),
            &[("grant_type", "client_credentials")],
        ),
        401,
    )
    .await;
    seen.secrets.push(wrong);
    // client_secret_post puts the secret in the body.
    send(
        &mut seen,
        form(
            &http,
            token.clone(),
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        ),
        200,
    )
    .await;
    let bad_pw = "not-the-Password-9";
    send(
        &mut seen,
        form(
            &http,
            token.clone(),
            Some((&id, &secret)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", bad_pw),
            ],
        ),
        400,
    )
    .await;
    seen.secrets.push(bad_pw.to_owned());
    let login = send(
        &mut seen,
        form(
            &http,
            token.clone(),
            Some((&id, &secret)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "openid profile"),
            ],
        ),
        200,
    )
    .await;
    let rt1 = login["refresh_token"].as_str().unwrap().to_owned();
    seen.secrets.push(rt1.clone());
    seen.access_tokens
        .push(login["access_token"].as_str().unwrap().to_owned());
    seen.access_tokens
        .push(login["id_token"].as_str().unwrap().to_owned());
    let refreshed = send(
        &mut seen,
        form(
            &http,
            token.clone(),
            Some((&id, &secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
        ),
        200,
    )
    .await;
    let rt2 = refreshed["refresh_token"].as_str().unwrap().to_owned();
    let at2 = refreshed["access_token"].as_str().unwrap().to_owned();
    seen.secrets.push(rt2.clone());
    seen.access_tokens.push(at2.clone());
    send(
        &mut seen,
        http.get(srv.url("/userinfo")).bearer_auth(&at2),
        200,
    )
    .await;
    send(
        &mut seen,
        form(
            &http,
            srv.url("/introspect"),
            Some((&id, &secret)),
            &[("token", &rt2)],
        ),
        200,
    )
    .await;
    send(
        &mut seen,
        form(
            &http,
            srv.url("/revoke"),
            Some((&id, &secret)),
            &[("token", &rt2)],
        ),
        200,
    )
    .await;
    // A reuse of the spent token.
    send(
        &mut seen,
        form(
            &http,
            token.clone(),
            Some((&id, &secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
        ),
        400,
    )
    .await;
    let stopped = srv.stop();
    assert_eq!(stopped.status.code(), Some(0), "{stopped:?}");
    let logs = format!("{}{}", stopped.stderr, cli_stderr);

    // Every line is JSON.
    let lines: Vec<Value> = stopped
        .stderr
        .lines()
        .chain(cli_stderr.lines())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "debug level is on"
    );
    // Exactly one request line per request, with its fields.
    for (rid, status) in &seen.requests {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|l| l["message"] == "request" && l["request_id"] == rid.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "one request line for {rid}: {mine:?}");
        let l = mine[0];
        assert_eq!(l["status"], *status, "{l}");
        for field in ["method", "path", "latency_ms"] {
            assert!(l.get(field).is_some(), "{field} in {l}");
        }
        assert!(l["latency_ms"].is_number(), "{l}");
        assert!(l["path"].as_str().unwrap().starts_with('/'), "{l}");
    }
    let token_lines = lines
        .iter()
        .filter(|l| l["message"] == "request" && l["path"] == "/token")
        .count();
    assert_eq!(token_lines, 7, "seven /token requests, each logged once");

    // Nothing secret in the logs.
    for s in seen.secrets.iter().chain(&seen.access_tokens) {
        assert!(
            !logs.contains(s.as_str()),
            "a secret or token reached the log"
        );
        // Not even its signature part or a long prefix.
        assert!(
            !logs.contains(&s[..20.min(s.len())]),
            "a prefix of a secret or token reached the log"
        );
    }
    assert!(
        !logs.contains("Authorization") && !logs.contains("authorization:"),
        "an Authorization header reached the log"
    );
    assert!(!logs.contains(&STANDARD.encode(format!("{id}:{secret}"))));
    let keys = sqlx::SqlitePool::connect(&lk.db_url).await.unwrap();
    let ders: Vec<Vec<u8>> = sqlx::query_scalar("SELECT private_der FROM signing_keys")
        .fetch_all(&keys)
        .await
        .unwrap();
    keys.close().await;
    assert!(!ders.is_empty());
    for der in ders {
        for b64 in [STANDARD.encode(&der), URL_SAFE_NO_PAD.encode(&der)] {
            assert!(!logs.contains(&b64[..64]), "a private key reached the log");
        }
        let hex: String = der.iter().take(48).map(|b| format!("{b:02x}")).collect();
        assert!(!logs.contains(&hex));
    }

    // Nothing secret at rest: the database file and its WAL.
    let mut at_rest = Vec::new();
    for entry in std::fs::read_dir(lk.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("latchkey.db")
        {
            at_rest.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(at_rest.len() > 4096);
    let contains = |needle: &str| {
        at_rest
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    for s in &seen.secrets {
        assert!(
            !contains(s),
            "a secret, password or refresh token is stored in the clear"
        );
    }
    for t in &seen.access_tokens {
        assert!(!contains(t), "a token is stored");
    }
}
