//! A scripted browser for the sign-in pages: follows the flow by hand (no redirects
//! followed automatically), keeping cookies, reading the forms' hidden fields.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::{Res, TestClient, TestServer, http_client};

/// A PKCE pair (RFC 7636): verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = latchkey::secrets::random_token().unwrap();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The value of hidden input `name` in an HTML page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#x2F;", "/"),
    )
}

/// Query or fragment parameters of a redirect Location.
pub fn location_params(location: &str) -> Vec<(String, String)> {
    let (_, tail) = location.split_once(['?', '#']).unwrap_or(("", ""));
    url::form_urlencoded::parse(tail.as_bytes())
        .into_owned()
        .collect()
}

pub fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// One browser: its own cookie jar.
pub struct Browser<'a> {
    pub srv: &'a TestServer,
    pub http: reqwest::Client,
}

impl<'a> Browser<'a> {
    pub fn new(srv: &'a TestServer) -> Self {
        Browser {
            srv,
            http: http_client(),
        }
    }

    pub async fn get(&self, path_or_url: &str) -> Res {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.srv.url(path_or_url)
        };
        TestServer::read(self.http.get(url).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Res {
        TestServer::read(
            self.http
                .post(self.srv.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(super::form_body(form))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// GET /authorize with these parameters.
    pub async fn authorize(&self, params: &[(&str, &str)]) -> Res {
        self.get(&format!("/authorize?{}", super::form_body(params)))
            .await
    }

    /// From a redirect to /login: fill in the form and submit it; returns the POST answer.
    pub async fn login(&self, login_location: &str, username: &str, password: &str) -> Res {
        let page = self.get(login_location).await;
        assert_eq!(page.status, 200, "login page: {}", page.text);
        let request = hidden(&page.text, "request").expect("request field");
        let csrf = hidden(&page.text, "csrf").expect("csrf field");
        self.post(
            "/login",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// From a redirect to /consent: approve or deny.
    pub async fn consent(&self, consent_location: &str, approve: bool) -> Res {
        let page = self.get(consent_location).await;
        assert_eq!(page.status, 200, "consent page: {}", page.text);
        let request = hidden(&page.text, "request").expect("request field");
        let csrf = hidden(&page.text, "csrf").expect("csrf field");
        let decision = if approve { "approve" } else { "deny" };
        self.post(
            "/consent",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", decision),
            ],
        )
        .await
    }

    /// Follows 303s within the server until one leaves it (to the client) or a page shows.
    pub async fn follow(&self, mut res: Res) -> Res {
        for _ in 0..10 {
            let Some(loc) = res.header("location").map(str::to_owned) else {
                return res;
            };
            if !loc.starts_with('/') {
                return res;
            }
            res = self.get(&loc).await;
        }
        res
    }

    /// Runs the whole sign-in: authorize → login → (consent) → the redirect to the client.
    /// Returns the final answer (a 303 to the redirect URI, or a form_post page).
    pub async fn sign_in(&self, params: &[(&str, &str)], username: &str, password: &str) -> Res {
        let mut res = self.authorize(params).await;
        for _ in 0..6 {
            let Some(loc) = res.header("location").map(str::to_owned) else {
                return res;
            };
            res = if loc.starts_with("/login") {
                self.login(&loc, username, password).await
            } else if loc.starts_with("/consent") {
                self.consent(&loc, true).await
            } else if loc.starts_with('/') {
                self.get(&loc).await
            } else {
                return res;
            };
        }
        res
    }
}

/// A code-flow authorization request for `client` with PKCE; returns (params, verifier).
pub fn code_request(client: &TestClient, scope: &str) -> (Vec<(String, String)>, String) {
    let (verifier, challenge) = pkce_pair();
    let params = vec![
        ("response_type".to_owned(), "code".to_owned()),
        ("client_id".to_owned(), client.id.clone()),
        (
            "redirect_uri".to_owned(),
            "https://app.example/cb".to_owned(),
        ),
        ("scope".to_owned(), scope.to_owned()),
        ("state".to_owned(), "xyz".to_owned()),
        ("nonce".to_owned(), "n-0S6_WzA2Mj".to_owned()),
        ("code_challenge".to_owned(), challenge),
        ("code_challenge_method".to_owned(), "S256".to_owned()),
    ];
    (params, verifier)
}

pub fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}
