//! A real browser (Debian's chromium, driven over WebDriver by chromedriver) signs in to the
//! example relying party: app → login page → consent page → code → tokens → userinfo.
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (installed by .ci/run); nothing is
//! downloaded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../examples/relying_party/rp.rs"]
mod rp;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Backend, TestServer};
use fantoccini::{ClientBuilder, Locator};
use latchkey::admin::NewClient;
use latchkey::oauth::GrantType;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser() -> (fantoccini::Client, Driver, tempfile::TempDir) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver is not installed (apt-get install chromium chromium-driver; see .ci/run)",
        );
    let driver = Driver(child);
    let profile = tempfile::tempdir().unwrap();
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let caps: serde_json::Map<String, serde_json::Value> = caps.as_object().unwrap().clone();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver takes a moment to listen.
    for attempt in 0..50 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return (c, driver, profile),
            Err(e) if attempt == 49 => panic!("cannot start a WebDriver session: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    unreachable!()
}

async fn wait_for(c: &fantoccini::Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let page = c.source().await.unwrap_or_default();
            panic!("{css} never appeared ({e}) at {url}:\n{page}")
        }
    }
}

// SECURITY-TESTS: BR-05, OC-01
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_to_the_example_app() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let user = srv.user("alice", "correct horse battery").await;
    let rp_port = free_port();
    let redirect_uri = format!("http://127.0.0.1:{rp_port}/callback");
    let client = srv
        .client(NewClient {
            name: "Example App".into(),
            public: true,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec![redirect_uri.clone()],
            scope: Some("openid profile email".into()),
            ..Default::default()
        })
        .await;
    let app = rp::router(rp::RpConfig {
        issuer: srv.issuer().to_owned(),
        client_id: client.id.clone(),
        client_secret: None,
        redirect_uri,
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", rp_port))
        .await
        .unwrap();
    let rp_task = tokio::spawn(async move { axum::serve(listener, app).await });

    let (c, _driver, _profile) = browser().await;
    let run = async {
        c.goto(&format!("http://127.0.0.1:{rp_port}/"))
            .await
            .unwrap();
        wait_for(&c, "#signin").await.click().await.unwrap();

        // Latchkey's login page: the client's name, labelled inputs named username/password.
        let username = wait_for(&c, "input[name=username]").await;
        assert!(c.source().await.unwrap().contains("Example App"));
        username.send_keys("alice").await.unwrap();
        c.find(Locator::Css("input[name=password]"))
            .await
            .unwrap()
            .send_keys("correct horse battery")
            .await
            .unwrap();
        c.find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // The consent page lists the scopes in words.
        let approve = wait_for(&c, "#approve").await;
        let consent = c.source().await.unwrap();
        assert!(consent.contains("See your email address"), "{consent}");
        approve.click().await.unwrap();

        // Back at the app, which verified the ID token and called userinfo.
        let result = wait_for(&c, "#result").await;
        let text = result.text().await.unwrap();
        assert!(text.contains("Alice Example"), "{text}");
        assert!(text.contains(&user.id.to_string()), "{text}");
    };
    run.await;
    c.close().await.unwrap();
    rp_task.abort();
}
