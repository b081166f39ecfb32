//! The built binary as an operator meets it: admin commands, `--json` shapes, exit codes
//! (0 ok, 1 failure, 2 usage or configuration), one-line errors, and a `serve` smoke test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/process.rs"]
mod process;

use base64::Engine;
use common::{Backend, TestDb, basic_header};
use latchkey::oauth::{ClientSecret, Password};
use latchkey::secrets::{SecretHasher, verify_password};
use process::Latchkey;
use serde_json::Value;

/// Rows of a one-column query on the binary's database.
async fn column(url: &str, sql: &str) -> Vec<Option<String>> {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    }
}

fn is_b64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// SECURITY-TESTS: PW-07
async fn client_secrets_are_shown_once_and_stored_as_keyed_hashes(lk: &Latchkey) {
    let a = lk
        .run(&["client", "create", "--name", "svc", "--json"])
        .json();
    let b = lk
        .run(&["client", "create", "--name", "svc", "--json"])
        .json();
    let (sa, sb) = (
        a["client_secret"].as_str().unwrap(),
        b["client_secret"].as_str().unwrap(),
    );
    for s in [sa, sb] {
        assert!(s.len() >= 43 && is_b64url(s), "256 bits, base64url: {s}");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap();
        assert!(raw.len() >= 32);
    }
    assert_ne!(sa, sb, "a new secret each time");
    assert_ne!(a["client_id"], b["client_id"]);
    assert_eq!(a["type"], "confidential");
    assert_eq!(a["grant_types"], serde_json::json!(["client_credentials"]));
    let id = a["client_id"].as_str().unwrap();
    // Never printed again.
    for args in [
        vec!["client", "show", id],
        vec!["client", "show", id, "--json"],
        vec!["client", "list"],
        vec!["client", "list", "--json"],
    ] {
        let out = lk.run(&args);
        out.ok();
        assert!(out.stdout.contains(id), "{args:?} shows the client");
        assert!(
            !out.stdout.contains(sa) && !out.stdout.contains(sb),
            "{args:?} prints a secret"
        );
        assert!(
            !out.stdout.contains("secret_hash"),
            "{args:?} prints the hash"
        );
    }
    let shown = lk.run(&["client", "show", id, "--json"]).json();
    assert!(shown.get("client_secret").is_none());
    // Stored only as HMAC-SHA-256 under the pepper: neither the secret nor a plain hash.
    let stored = column(
        &lk.db_url,
        &format!("SELECT secret_hash FROM clients WHERE id = '{id}'"),
    )
    .await;
    let stored = stored[0].clone().unwrap();
    assert!(!stored.contains(sa));
    let pepper = column(
        &lk.db_url,
        "SELECT value FROM settings WHERE name = 'client_secret_pepper'",
    )
    .await;
    let hasher = SecretHasher::new(pepper[0].as_deref().unwrap().as_bytes());
    assert_eq!(stored, hasher.hash_client_secret(&ClientSecret::new(sa)));
    assert_ne!(
        stored,
        SecretHasher::new(b"").hash_client_secret(&ClientSecret::new(sa)),
        "keyed"
    );
    // The text form prints the secret once, with a warning.
    let text = lk.run(&["client", "create", "--name", "svc"]);
    text.ok();
    assert_eq!(text.stdout.matches("client_secret:").count(), 1);
    assert!(text.stdout.contains("shown only now"));
}

async fn client_flags_are_stored(lk: &Latchkey) {
    let c = lk
        .run(&[
            "client",
            "create",
            "--name",
            "web",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--grant-type",
            "password",
            "--redirect-uri",
            "https://app.example/cb",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--scope",
            "openid api:read",
            "--access-token-ttl",
            "120",
            "--first-party",
            "--json",
        ])
        .json();
    assert_eq!(
        c["grant_types"],
        serde_json::json!(["authorization_code", "password", "refresh_token"])
    );
    assert_eq!(
        c["redirect_uris"],
        serde_json::json!(["https://app.example/cb", "http://127.0.0.1:9000/cb"])
    );
    assert_eq!(c["scope"], "api:read openid");
    assert_eq!(c["access_token_ttl"], 120);
    assert_eq!(c["first_party"], true);
    let shown = lk
        .run(&["client", "show", c["client_id"].as_str().unwrap(), "--json"])
        .json();
    assert_eq!(shown, {
        let mut v = c.clone();
        v.as_object_mut().unwrap().remove("client_secret");
        v
    });
    // A public client has no secret.
    let p = lk
        .run(&[
            "client",
            "create",
            "--name",
            "spa",
            "--public",
            "--redirect-uri",
            "https://spa.example/cb",
            "--json",
        ])
        .json();
    assert_eq!(p["type"], "public");
    assert!(p.get("client_secret").is_none(), "{p}");
    assert_eq!(p["token_endpoint_auth_method"], "none");
    let text = lk.run(&[
        "client",
        "create",
        "--name",
        "spa",
        "--public",
        "--redirect-uri",
        "https://spa.example/cb",
    ]);
    assert!(!text.ok().stdout.contains("client_secret"));
    // A public client cannot hold confidential grants.
    lk.run(&[
        "client",
        "create",
        "--name",
        "x",
        "--public",
        "--grant-type",
        "client_credentials",
    ])
    .fails(2, "public client");
    lk.run(&["client", "create", "--name", "x", "--access-token-ttl", "0"])
        .fails(2, "--access-token-ttl");
    let c = lk
        .run(&[
            "client",
            "create",
            "--name",
            "rt",
            "--grant-type",
            "password",
            "--grant-type",
            "refresh_token",
            "--refresh-idle-ttl",
            "600",
            "--refresh-absolute-ttl",
            "86400",
            "--json",
        ])
        .json();
    assert_eq!(c["refresh_idle_ttl"], 600);
    assert_eq!(c["refresh_absolute_ttl"], 86400);
    lk.run(&["client", "create", "--name", "x", "--refresh-idle-ttl", "0"])
        .fails(2, "--refresh-idle-ttl");
    lk.run(&["client", "create", "--name", "x", "--grant-type", "magic"])
        .usage_error("magic");
}

// SECURITY-TESTS: AZ-12
async fn redirect_uris_are_checked_at_registration(lk: &Latchkey) {
    for (uri, says) in [
        ("http://app.example/cb", "http is allowed only for loopback"),
        ("https://app/cb#frag", "fragment"),
        ("https://*.app/cb", "wildcard"),
        ("/relative", "absolute"),
        ("javascript:alert(1)", "not allowed"),
        // Lists are stored space-separated: this must not become "https://app.example/cb"
        // plus an unchecked "evil".
        ("https://app.example/cb evil", "whitespace"),
        ("https://app.example/cb\tx", "whitespace"),
        ("https://app.example/cb\nx", "whitespace"),
    ] {
        let out = lk.run(&[
            "client",
            "create",
            "--name",
            "x",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://ok.example/cb",
            "--redirect-uri",
            uri,
        ]);
        out.fails(2, says);
        assert!(
            out.stderr.contains(&format!("{uri:?}")),
            "the message names the URI: {}",
            out.stderr
        );
    }
    for (flag, value) in [
        ("--post-logout-redirect-uri", "https://app.example/bye evil"),
        ("--resource", "https://api.example/ evil"),
        ("--resource", "https://api.example/\tevil"),
    ] {
        lk.run(&["client", "create", "--name", "x", flag, value])
            .fails(2, "evil");
    }
    assert_eq!(
        lk.run(&["client", "list", "--json"]).json(),
        serde_json::json!([]),
        "nothing was created"
    );
    let ok = lk
        .run(&[
            "client",
            "create",
            "--name",
            "cli",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--json",
        ])
        .json();
    assert_eq!(ok["redirect_uris"][0], "http://127.0.0.1:9000/cb");
}

// SECURITY-TESTS: RL-09
async fn unknown_ids_and_bad_flags_are_clear(lk: &Latchkey) {
    lk.run(&["client", "create", "--bogus"])
        .usage_error("--bogus");
    lk.run(&["frobnicate"]).usage_error("frobnicate");
    // Ids and kids are base64url and may start with "-": still an id, not a flag.
    lk.run(&["client", "show", "-Gx1"]).fails(1, "no client");
    lk.run(&["keys", "retire", "-Gx1"])
        .fails(1, "no published key");
    // Passwords are never taken from argv.
    assert_eq!(
        lk.run(&[
            "user",
            "create",
            "--username",
            "a",
            "--password",
            "hunter22"
        ])
        .code,
        2
    );
    lk.run(&["client", "show", "no-such-client"])
        .fails(1, "no client");
    lk.run(&["client", "delete", "no-such-client"])
        .fails(1, "no client");
    let id = lk
        .run(&["client", "create", "--name", "gone", "--json"])
        .json()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(lk.run(&["client", "delete", &id]).ok().stdout.contains(&id));
    lk.run(&["client", "delete", &id]).fails(1, "no client");
    lk.run(&["user", "show", "nobody"]).fails(1, "no user");
    lk.run(&["user", "delete", "nobody"]).fails(1, "no user");
    lk.run(&["user", "disable", "nobody"]).fails(1, "no user");
    lk.run(&["keys", "retire", "no-such-kid"])
        .fails(1, "no published key");
}

async fn stored_hash(lk: &Latchkey, username: &str) -> String {
    column(
        &lk.db_url,
        &format!("SELECT password_hash FROM users WHERE username = '{username}'"),
    )
    .await[0]
        .clone()
        .unwrap()
}

async fn users_are_managed(lk: &Latchkey) {
    // With and without a trailing newline, or CRLF: the line ending is not the password.
    for (name, stdin, password) in [
        ("alice", "correct horse battery\n", "correct horse battery"),
        ("bob", "no-newline-pw", "no-newline-pw"),
        ("carol", "windows-pw\r\n", "windows-pw"),
    ] {
        let u = lk
            .run_stdin(
                &[
                    "user",
                    "create",
                    "--username",
                    name,
                    "--email",
                    "a@example.com",
                    "--password-stdin",
                    "--json",
                ],
                stdin,
            )
            .json();
        assert!(uuid::Uuid::parse_str(u["id"].as_str().unwrap()).is_ok());
        assert_eq!(u["username"], name);
        assert!(u.get("password_hash").is_none());
        let hash = stored_hash(lk, name).await;
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(verify_password(&Password::new(password), &hash), "{name}");
        assert!(
            !verify_password(&Password::new(stdin), &hash) || stdin == password,
            "{name}: the newline is not part of it"
        );
    }
    lk.run_stdin(
        &["user", "create", "--username", "alice", "--password-stdin"],
        "another password\n",
    )
    .fails(1, "already exists");
    lk.run_stdin(
        &["user", "create", "--username", "dave", "--password-stdin"],
        "",
    )
    .fails(2, "no password");
    lk.run_stdin(
        &["user", "create", "--username", "dave", "--password-stdin"],
        "short\n",
    )
    .fails(2, "at least");
    let list = lk.run(&["user", "list", "--json"]).json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let text = lk.run(&["user", "list"]);
    assert!(text.ok().stdout.contains("alice"));
    assert!(!text.stdout.contains("argon2"));
    let alice = lk.run(&["user", "show", "alice", "--json"]).json();
    let id = alice["id"].as_str().unwrap();
    assert_eq!(
        lk.run(&["user", "show", id, "--json"]).json()["username"],
        "alice",
        "by id too"
    );
    // set-password reads standard input.
    lk.run_stdin(
        &["user", "set-password", "alice", "--password-stdin"],
        "a brand new one\n",
    )
    .ok();
    let hash = stored_hash(lk, "alice").await;
    assert!(verify_password(&Password::new("a brand new one"), &hash));
    assert!(!verify_password(
        &Password::new("correct horse battery"),
        &hash
    ));
    lk.run(&["user", "disable", "alice"]).ok();
    assert_eq!(
        lk.run(&["user", "show", "alice", "--json"]).json()["disabled"],
        true
    );
    assert!(lk.run(&["user", "list"]).stdout.contains("(disabled)"));
    lk.run(&["user", "enable", "alice"]).ok();
    assert_eq!(
        lk.run(&["user", "show", "alice", "--json"]).json()["disabled"],
        false
    );
    lk.run(&["user", "delete", "bob"]).ok();
    lk.run(&["user", "show", "bob"]).fails(1, "no user");
    lk.run(&["user", "delete", "bob"]).fails(1, "no user");
}

// SECURITY-TESTS: JW-07
async fn keys_are_managed(lk: &Latchkey) {
    let list = lk.run(&["keys", "list", "--json"]).json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "a first key is made on demand");
    assert_eq!(list[0]["state"], "active");
    assert_eq!(list[0]["alg"], "RS256");
    let first = list[0]["kid"].as_str().unwrap().to_owned();
    let rotated = lk
        .run(&["keys", "rotate", "--alg", "ES256", "--json"])
        .json();
    assert_eq!(rotated["alg"], "ES256");
    assert_eq!(rotated["state"], "active");
    let staged = lk.run(&["keys", "rotate", "--staged", "--json"]).json();
    assert_eq!(staged["state"], "next");
    assert!(
        staged["activates_at"].as_i64().unwrap() > rotated["activates_at"].as_i64().unwrap() + 300,
        "after one JWKS max-age"
    );
    let text = lk.run(&["keys", "rotate", "--staged"]);
    assert!(text.ok().stdout.contains("next"));
    let list = lk.run(&["keys", "list", "--json"]).json();
    let state = |kid: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state(&first), "retiring");
    assert_eq!(state(rotated["kid"].as_str().unwrap()), "active");
    assert_eq!(state(staged["kid"].as_str().unwrap()), "next");
    for k in list.as_array().unwrap() {
        assert!(k.get("private_der").is_none() && k.get("d").is_none());
    }
    let out = lk.run(&["keys", "retire", &first]);
    assert!(out.ok().stdout.contains(&first));
    lk.run(&["keys", "retire", &first])
        .fails(1, "no published key");
    let list = lk.run(&["keys", "list", "--json"]).json();
    let state = |kid: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state(&first), "retired");
    let text = lk.run(&["keys", "list"]);
    assert!(text.ok().stdout.contains("retired") && text.stdout.contains("next"));
    assert!(!text.stdout.contains("PRIVATE"));
    // The private key never reaches output.
    let der = column_bytes(&lk.db_url, &first).await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    for out in [
        lk.run(&["keys", "list", "--json"]),
        lk.run(&["keys", "list"]),
    ] {
        assert!(!out.stdout.contains(&b64[..40]));
    }
}

async fn column_bytes(url: &str, kid: &str) -> Vec<u8> {
    let sql = format!("SELECT private_der FROM signing_keys WHERE kid = '{kid}'");
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
    }
}

async fn migrate_applies_the_schema(lk: &Latchkey) {
    let out = lk.run(&["migrate"]);
    assert!(out.ok().stdout.contains("migrations applied"), "{out:?}");
    lk.run(&["migrate"]).ok();
    let tables = if lk.db_url.starts_with("sqlite:") {
        column(
            &lk.db_url,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'clients'",
        )
        .await
    } else {
        column(
            &lk.db_url,
            "SELECT tablename::text FROM pg_tables WHERE tablename = 'clients'",
        )
        .await
    };
    assert_eq!(tables.len(), 1);
}

macro_rules! on_sqlite_and_postgres {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(&super::Latchkey::sqlite()).await }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDb::new(super::Backend::Postgres).await;
                    super::$name(&super::Latchkey::on(&db.url)).await
                }
            )*
        }
    };
}

on_sqlite_and_postgres! {
    client_secrets_are_shown_once_and_stored_as_keyed_hashes,
    migrate_applies_the_schema,
}

macro_rules! on_sqlite {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_sqlite() { super::$name(&super::Latchkey::sqlite()).await }
            }
        )*
    };
}

on_sqlite! {
    client_flags_are_stored,
    redirect_uris_are_checked_at_registration,
    unknown_ids_and_bad_flags_are_clear,
    users_are_managed,
    keys_are_managed,
}

/// With no database configured, the default SQLite file appears under ./data.
#[test]
fn the_default_database_is_a_local_sqlite_file() {
    let lk = Latchkey::sqlite();
    let mut cmd = lk.command(&["migrate"]);
    cmd.env_remove("LATCHKEY_DATABASE_URL");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lk.dir.path().join("data/latchkey.db").is_file());
}

#[test]
fn bad_configuration_is_one_line_naming_the_key_exit_2() {
    let lk = Latchkey::sqlite();
    for (env, key) in [
        (("LATCHKEY_LISTEN", "nope"), "listen"),
        (("LATCHKEY_LOG_FORMAT", "xml"), "log_format"),
        (("LATCHKEY_KEYS__ALGORITHM", "HS256"), "keys.algorithm"),
        (("LATCHKEY_ISSUER", "ftp://x"), "issuer"),
        (("LATCHKEY_DATABASE_URL", "mysql://x"), "database_url"),
        (
            ("LATCHKEY_DATABASE_ACQUIRE_TIMEOUT_SECS", "soon"),
            "database_acquire_timeout_secs",
        ),
        (("LATCHKEY_LOGIN__LOCK_SECS", "0"), "login.lock_secs"),
        // ID tokens (1 h by default) must not outlive their key.
        (
            ("LATCHKEY_KEYS__RETENTION_SECS", "600"),
            "keys.retention_secs",
        ),
        // A typo in a variable name is caught, not ignored.
        (("LATCHKEY_ISUER", "https://id.example"), "isuer"),
    ] {
        for cmd in [vec!["migrate"], vec!["serve"], vec!["client", "list"]] {
            let out = lk.run_with(&cmd, &[env], None);
            out.fails(2, key);
        }
    }
    std::fs::write(
        lk.dir.path().join("bad.toml"),
        "listen = \"127.0.0.1:1\"\nfoo = 1\n",
    )
    .unwrap();
    lk.run(&["--config", "bad.toml", "migrate"]).fails(2, "foo");
    std::fs::write(lk.dir.path().join("bad2.toml"), "[keys]\nretention = 5\n").unwrap();
    lk.run(&["--config", "bad2.toml", "migrate"])
        .fails(2, "retention");
    std::fs::write(lk.dir.path().join("bad3.toml"), "listen = [\n").unwrap();
    lk.run(&["--config", "bad3.toml", "migrate"])
        .fails(2, "bad3.toml");
    lk.run(&["--config", "missing.toml", "migrate"])
        .fails(2, "missing.toml");
    // A good file is accepted and the environment overrides it.
    std::fs::write(lk.dir.path().join("good.toml"), "log_format = \"xml\"\n").unwrap();
    lk.run_with(
        &["--config", "good.toml", "migrate"],
        &[("LATCHKEY_LOG_FORMAT", "json")],
        None,
    )
    .ok();
}

/// The quickstart, for real: serve, create a client meanwhile, get a token, SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_smoke_test() {
    let lk = Latchkey::sqlite();
    let mut srv = lk.serve(&[]);
    srv.wait_ready().await;
    let c = lk
        .run(&[
            "client",
            "create",
            "--name",
            "demo",
            "--grant-type",
            "client_credentials",
            "--scope",
            "api:read",
            "--json",
        ])
        .json();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let res = http
        .post(srv.url("/token"))
        .header(
            "authorization",
            basic_header(
                c["client_id"].as_str().unwrap(),
                c["client_secret"].as_str().unwrap(),
            ),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "api:read");
    let jwks: Value = http
        .get(srv.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    common::verify_with_jwks(
        body["access_token"].as_str().unwrap(),
        &jwks,
        &srv.base,
        &srv.base,
    )
    .unwrap();
    let ready = http.get(srv.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let base = srv.base.clone();
    let stopped = srv.stop();
    assert_eq!(stopped.status.code(), Some(0), "{stopped:?}");
    assert!(
        stopped.stdout.contains(&base),
        "stdout names the issuer: {}",
        stopped.stdout
    );
    assert!(
        stopped.stdout.contains("client create"),
        "and the next step: {}",
        stopped.stdout
    );
    assert!(!stopped.stderr.contains("panicked"), "{}", stopped.stderr);
    assert!(
        !stopped
            .stderr
            .contains(c["client_secret"].as_str().unwrap())
    );
}

/// The same commands against PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_on_postgres() {
    let db = TestDb::new(Backend::Postgres).await;
    let lk = Latchkey::on(&db.url);
    client_flags_are_stored(&lk).await;
    users_are_managed(&lk).await;
    keys_are_managed(&lk).await;
    unknown_ids_and_bad_flags_are_clear(&lk).await;
}
