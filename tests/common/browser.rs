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

// ---- Helpers for the /authorize, code, pages, OIDC, CORS and logout suites (issue 5) ----

use latchkey::admin::NewClient;
use latchkey::oauth::GrantType;

/// The registered redirect URI of the clients these helpers make.
pub const CB: &str = "https://app.example/cb";

/// Decodes the HTML escapes askama writes (`&#34;`, `&#38;`, `&#39;`, `&#60;`, `&#62;`),
/// numeric escapes in general and the common named ones.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `<input type="hidden" name=".." value="..">` of a page, in order, unescaped.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[i + "<input type=\"hidden\" name=\"".len()..];
        let name_end = rest.find('"').unwrap();
        let name = unescape(&rest[..name_end]);
        rest = &rest[name_end..];
        let v = rest.find("value=\"").unwrap() + "value=\"".len();
        rest = &rest[v..];
        let value_end = rest.find('"').unwrap();
        out.push((name, unescape(&rest[..value_end])));
        rest = &rest[value_end..];
    }
    out
}

/// The (unescaped) `action` of the first form of a page.
pub fn form_action(html: &str) -> Option<String> {
    let start = html.find("action=\"")? + "action=\"".len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// The `lk_session` value a response sets (not a clearing one), if any.
pub fn session_cookie(res: &Res) -> Option<String> {
    res.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("lk_session="))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .find(|v| !v.is_empty())
}

/// All `Set-Cookie` headers of a response.
pub fn set_cookies(res: &Res) -> Vec<String> {
    res.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// How an authorization response reached the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Query,
    Fragment,
    FormPost,
}

/// The parameters of an authorization response sent to `redirect_uri`: a 303 whose
/// Location starts with it (query or fragment), or a 200 form_post page posting to it.
/// Parameters already in the registered URI's query are left out. Panics otherwise.
#[track_caller]
pub fn response_params(res: &Res, redirect_uri: &str) -> (Delivery, Vec<(String, String)>) {
    if res.status == 200 {
        assert_eq!(
            form_action(&res.text).as_deref(),
            Some(redirect_uri),
            "form_post action: {}",
            res.text
        );
        assert!(res.header("location").is_none());
        return (Delivery::FormPost, hidden_fields(&res.text));
    }
    assert_eq!(res.status, 303, "a redirect to the client: {}", res.text);
    let loc = res.header("location").expect("Location");
    let rest = loc
        .strip_prefix(redirect_uri)
        .unwrap_or_else(|| panic!("{loc} does not start with {redirect_uri}"));
    let registered: Vec<(String, String)> = redirect_uri
        .split_once('?')
        .map(|(_, q)| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let (delivery, tail) = if let Some(t) = rest.strip_prefix('#') {
        (Delivery::Fragment, t)
    } else if let Some(t) = rest.strip_prefix('?').or_else(|| rest.strip_prefix('&')) {
        (Delivery::Query, t)
    } else {
        panic!("unexpected Location {loc}");
    };
    let params = url::form_urlencoded::parse(tail.as_bytes())
        .into_owned()
        .filter(|p| !registered.contains(p))
        .collect();
    (delivery, params)
}

/// Asserts an error page (HTML 400, no Location, the page security headers); returns the
/// page text.
#[track_caller]
pub fn assert_error_page(res: &Res, rule: &str) {
    assert_eq!(res.status, 400, "{rule}: {}", res.text);
    assert!(res.header("location").is_none(), "{rule}: no Location");
    assert!(
        res.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{rule}: HTML"
    );
    assert_page_headers(res, rule);
}

/// Asserts the headers every page carries (RFC 9700 §4.16).
#[track_caller]
pub fn assert_page_headers(res: &Res, rule: &str) {
    let csp = res.header("content-security-policy").unwrap_or("");
    assert!(
        csp.split(';').any(|d| d.trim() == "frame-ancestors 'none'"),
        "{rule}: CSP {csp}"
    );
    assert_eq!(res.header("x-frame-options"), Some("DENY"), "{rule}");
    assert_eq!(res.header("cache-control"), Some("no-store"), "{rule}");
    assert_eq!(res.header("referrer-policy"), Some("no-referrer"), "{rule}");
    assert_eq!(
        res.header("x-content-type-options"),
        Some("nosniff"),
        "{rule}"
    );
}

/// Asserts an authorization error response at `redirect_uri`: exactly `error`,
/// `error_description`, `state` (when `state` is given) and `iss`, never `code`.
#[track_caller]
pub fn assert_redirect_error(
    res: &Res,
    redirect_uri: &str,
    error: &str,
    state: Option<&str>,
    iss: &str,
    rule: &str,
) -> Delivery {
    let (delivery, params) = response_params(res, redirect_uri);
    let mut names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    let mut expected = vec!["error", "error_description", "iss"];
    if state.is_some() {
        expected.push("state");
    }
    expected.sort_unstable();
    assert_eq!(names, expected, "{rule}: {params:?}");
    assert_eq!(
        param(&params, "error").as_deref(),
        Some(error),
        "{rule}: {params:?}"
    );
    assert_eq!(param(&params, "state").as_deref(), state, "{rule}");
    assert_eq!(param(&params, "iss").as_deref(), Some(iss), "{rule}");
    let d = param(&params, "error_description").unwrap();
    assert!(
        d.bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
        "{rule}: error_description has forbidden characters: {d}"
    );
    delivery
}

/// A confidential client for the code flow at [`CB`], with a refresh token and the OIDC
/// scopes; `first_party` skips consent.
pub async fn code_client(srv: &TestServer, first_party: bool) -> TestClient {
    srv.client(NewClient {
        name: "Photo App".into(),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec![CB.into()],
        scope: Some("openid profile email offline_access".into()),
        first_party,
        ..Default::default()
    })
    .await
}

/// A public (PKCE) client for the code flow at [`CB`].
pub async fn public_client(srv: &TestServer) -> TestClient {
    srv.client(NewClient {
        name: "Single Page App".into(),
        public: true,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec![CB.into()],
        scope: Some("openid profile email offline_access".into()),
        ..Default::default()
    })
    .await
}

/// [`code_request`] with parameters replaced or added (an empty value removes one).
pub fn code_params(
    client: &TestClient,
    scope: &str,
    changes: &[(&str, &str)],
) -> (Vec<(String, String)>, String) {
    let (mut params, verifier) = code_request(client, scope);
    for (k, v) in changes {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    (params, verifier)
}

/// POST /token for a code, authenticated with client_secret_basic (or `client_id` in the
/// body for a public client).
pub async fn redeem(srv: &TestServer, client: &TestClient, code: &str, verifier: &str) -> Res {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CB),
        ("code_verifier", verifier),
    ];
    match &client.secret {
        Some(_) => srv.token(client, &form).await,
        None => {
            form.push(("client_id", &client.id));
            srv.post_form("/token", None, &form).await
        }
    }
}

/// A plain HTTP client: no cookie jar, no redirects.
pub fn bare_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

impl Browser<'_> {
    /// POST /authorize with these parameters as a form.
    pub async fn authorize_post(&self, params: &[(&str, &str)]) -> Res {
        self.post("/authorize", params).await
    }

    /// Signs in through the pages and returns the code and the verifier of its request.
    pub async fn code(
        &self,
        client: &TestClient,
        scope: &str,
        user: &str,
        pw: &str,
    ) -> (String, String) {
        let (params, verifier) = code_request(client, scope);
        let res = self.sign_in(&as_refs(&params), user, pw).await;
        let (_, got) = response_params(&res, CB);
        let code = param(&got, "code").unwrap_or_else(|| panic!("a code: {got:?}"));
        (code, verifier)
    }

    /// GET a page with `cookie` as the session cookie and no jar.
    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> Res {
        TestServer::read(
            bare_http()
                .get(self.srv.url(path))
                .header("cookie", format!("lk_session={cookie}"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}
