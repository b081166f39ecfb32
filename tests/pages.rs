//! The login, consent, error, form_post and logout pages and the browser session
//! (RFC 9700 §4.16, §4.12; RFC 6749 §10.12, §10.14; RFC 6265 §4.1.2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{
    Browser, CB, as_refs, assert_error_page, assert_page_headers, bare_http, code_client,
    code_params, code_request, hidden, param, response_params, session_cookie, set_cookies,
};
use common::{Backend, Res, TestServer, form_body};
use latchkey::admin::NewClient;
use latchkey::oauth::GrantType;

const PW: &str = "correct horse battery";

/// POST a form with `cookie` (or none) as the session cookie, outside any jar.
async fn post_with_cookie(
    srv: &TestServer,
    path: &str,
    form: &[(&str, &str)],
    cookie: Option<&str>,
) -> Res {
    let mut req = bare_http()
        .post(srv.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(form));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("lk_session={c}"));
    }
    TestServer::read(req.send().await.unwrap()).await
}

/// The request id and CSRF token of the form on a login or consent page.
async fn form_of(browser: &Browser<'_>, location: &str) -> (String, String) {
    let page = browser.get(location).await;
    assert_eq!(page.status, 200, "{location}: {}", page.text);
    (
        hidden(&page.text, "request").unwrap(),
        hidden(&page.text, "csrf").unwrap(),
    )
}

/// Starts a sign-in: the Location of the login page.
async fn start(browser: &Browser<'_>, params: &[(String, String)]) -> String {
    let res = browser.authorize(&as_refs(params)).await;
    assert_eq!(res.status, 303, "{}", res.text);
    let loc = res.header("location").unwrap().to_owned();
    assert!(loc.starts_with("/login?"), "{loc}");
    loc
}

/// Logs in from the login page up to the consent page; returns the consent Location.
async fn to_consent(browser: &Browser<'_>, params: &[(String, String)], user: &str) -> String {
    let mut res = browser.authorize(&as_refs(params)).await;
    for _ in 0..4 {
        let loc = res.header("location").unwrap().to_owned();
        if loc.starts_with("/consent?") {
            return loc;
        }
        res = if loc.starts_with("/login?") {
            browser.login(&loc, user, PW).await
        } else {
            browser.get(&loc).await
        };
        assert_eq!(res.status, 303, "{}", res.text);
    }
    panic!("no consent page")
}

#[track_caller]
fn assert_refused_quietly(res: &Res, rule: &str) {
    assert!(
        res.status == 400 || res.status == 403,
        "{rule}: {} {}",
        res.status,
        res.text
    );
    assert!(res.header("location").is_none(), "{rule}: no redirect");
    assert!(set_cookies(res).is_empty(), "{rule}: no cookie");
    assert_page_headers(res, rule);
}

// SECURITY-TESTS: BR-01
async fn every_page_carries_the_security_headers(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, false).await;
    let browser = Browser::new(&srv);
    let (params, _) = code_params(&client, "openid", &[("response_mode", "form_post")]);
    let login = start(&browser, &params).await;
    let page = browser.get(&login).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_page_headers(&page, "login page");
    let (request, csrf) = form_of(&browser, &login).await;
    let wrong = browser
        .post(
            "/login",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "wrong"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.text);
    assert_page_headers(&wrong, "login page after a failure");
    assert!(wrong.text.contains("name=\"password\""), "the form again");
    let consent = to_consent(&browser, &params, "alice").await;
    let page = browser.get(&consent).await;
    assert_eq!(page.status, 200);
    assert_page_headers(&page, "consent page");
    let form_post = browser.consent(&consent, true).await;
    assert_eq!(form_post.status, 200, "{}", form_post.text);
    assert_page_headers(&form_post, "form_post page");
    let error = browser.authorize(&[("client_id", "nobody")]).await;
    assert_error_page(&error, "error page");
    let resume = browser.get("/authorize/resume?request=nothing").await;
    assert_error_page(&resume, "resume error page");
    let confirm = browser.get("/logout").await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert_page_headers(&confirm, "logout confirmation page");
    let csrf = hidden(&confirm.text, "csrf").unwrap();
    let done = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_page_headers(&done, "signed-out page");
}

// SECURITY-TESTS: BR-02
async fn login_posts_without_our_csrf_token_are_refused_before_any_hashing(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, false).await;
    let browser = Browser::new(&srv);
    let other = Browser::new(&srv);
    let (params, _) = code_request(&client, "openid");
    let login = start(&browser, &params).await;
    let (request, csrf) = form_of(&browser, &login).await;
    let other_login = start(&other, &params).await;
    let (_, other_csrf) = form_of(&other, &other_login).await;
    let before = srv.verifications().await;
    let creds = [("username", "alice"), ("password", PW)];
    let with = |csrf: Option<&str>| {
        let mut form = vec![("request".to_owned(), request.clone())];
        if let Some(c) = csrf {
            form.push(("csrf".into(), c.to_owned()));
        }
        form.extend(
            creds
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        form
    };
    let res = browser.post("/login", &as_refs(&with(None))).await;
    assert_refused_quietly(&res, "no CSRF token");
    let res = browser.post("/login", &as_refs(&with(Some("")))).await;
    assert_refused_quietly(&res, "empty CSRF token");
    let res = browser
        .post("/login", &as_refs(&with(Some(other_csrf.as_str()))))
        .await;
    assert_refused_quietly(&res, "another session's token");
    let res = post_with_cookie(&srv, "/login", &as_refs(&with(Some(csrf.as_str()))), None).await;
    assert_refused_quietly(&res, "cross-site, without the cookie");
    let res = other
        .post("/login", &as_refs(&with(Some(csrf.as_str()))))
        .await;
    assert_refused_quietly(&res, "this request from another session");
    assert_eq!(srv.verifications().await, before, "no password was checked");

    // The real form works once (303), then its replay is refused the same way.
    let res = browser
        .post("/login", &as_refs(&with(Some(csrf.as_str()))))
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(srv.verifications().await, before + 1);
    let res = browser
        .post("/login", &as_refs(&with(Some(csrf.as_str()))))
        .await;
    assert_refused_quietly(&res, "replayed after success");
    let res = post_with_cookie(&srv, "/login", &as_refs(&with(Some(csrf.as_str()))), None).await;
    assert_refused_quietly(&res, "replayed without the cookie");
    assert_eq!(
        srv.verifications().await,
        before + 1,
        "replays are not checked"
    );
}

// SECURITY-TESTS: BR-03, RL-09
async fn consent_needs_this_requests_token_this_user_and_happens_once(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    srv.user("bob", PW).await;
    let client = code_client(&srv, false).await;
    let alice = Browser::new(&srv);
    let (p1, verifier) = code_request(&client, "openid");
    let c1 = to_consent(&alice, &p1, "alice").await;
    let (p2, _) = code_params(&client, "openid", &[("state", "second")]);
    let res = alice.authorize(&as_refs(&p2)).await;
    let c2 = res.header("location").unwrap().to_owned();
    assert!(c2.starts_with("/consent?"), "{c2}");
    let (r1, t1) = form_of(&alice, &c1).await;
    let (r2, t2) = form_of(&alice, &c2).await;
    assert_ne!(t1, t2, "a token per request");

    let approve = |r: &str, t: &str| {
        vec![
            ("request".to_owned(), r.to_owned()),
            ("csrf".to_owned(), t.to_owned()),
            ("decision".to_owned(), "approve".to_owned()),
        ]
    };
    let res = alice.post("/consent", &as_refs(&approve(&r2, &t1))).await;
    assert_refused_quietly(&res, "another request's token");
    let res = alice
        .post(
            "/consent",
            &[("request", r1.as_str()), ("decision", "approve")],
        )
        .await;
    assert_refused_quietly(&res, "no token");
    // Bob, signed in in his own browser, submits alice's form.
    let bob = Browser::new(&srv);
    let (pb, _) = code_request(&client, "openid");
    to_consent(&bob, &pb, "bob").await;
    let res = bob.post("/consent", &as_refs(&approve(&r1, &t1))).await;
    assert_refused_quietly(&res, "as another user");
    let res = post_with_cookie(&srv, "/consent", &as_refs(&approve(&r1, &t1)), None).await;
    assert_refused_quietly(&res, "without the cookie");

    // The right submission gives one code; submitting it again gives an error page.
    let res = alice.post("/consent", &as_refs(&approve(&r1, &t1))).await;
    assert_eq!(res.status, 303, "{}", res.text);
    let (_, got) = response_params(&res, CB);
    assert_eq!(param(&got, "state").as_deref(), Some("xyz"));
    let code = param(&got, "code").unwrap();
    let again = alice.post("/consent", &as_refs(&approve(&r1, &t1))).await;
    assert_error_page(&again, "submitted twice");
    let deny = alice
        .post(
            "/consent",
            &[("request", &r1), ("csrf", &t1), ("decision", "deny")],
        )
        .await;
    assert_error_page(&deny, "a later deny changes nothing");
    let res = common::browser::redeem(&srv, &client, &code, &verifier).await;
    assert_eq!(res.status, 200, "the one code works: {}", res.text);
    // The second request is still pending and can be answered.
    let res = alice.post("/consent", &as_refs(&approve(&r2, &t2))).await;
    let (_, got) = response_params(&res, CB);
    assert_eq!(param(&got, "state").as_deref(), Some("second"));
}

#[track_caller]
fn assert_cookie_attributes(cookie: &str, secure: bool, rule: &str) {
    let attrs: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for want in ["httponly", "samesite=lax", "path=/"] {
        assert!(
            attrs.iter().any(|a| a == want),
            "{rule}: {want} in {cookie}"
        );
    }
    assert!(
        !attrs.iter().any(|a| a.starts_with("domain")),
        "{rule}: no Domain: {cookie}"
    );
    assert_eq!(
        attrs.iter().any(|a| a == "secure"),
        secure,
        "{rule}: Secure: {cookie}"
    );
}

// SECURITY-TESTS: BR-04
async fn the_session_cookie_is_locked_down_and_renewed_at_login(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    let (params, _) = code_request(&client, "openid");
    let res = browser.authorize(&as_refs(&params)).await;
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_cookie_attributes(&cookies[0], false, "before login");
    let anonymous = session_cookie(&res).unwrap();
    assert!(anonymous.len() >= 43, "a random value");
    let login = res.header("location").unwrap().to_owned();
    let res = browser.login(&login, "alice", PW).await;
    assert_eq!(res.status, 303);
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_cookie_attributes(&cookies[0], false, "after login");
    let signed_in = session_cookie(&res).unwrap();
    assert_ne!(signed_in, anonymous, "a new session id at login");
    // The pre-login id is dead: its pending request and its session are gone.
    let res = browser.get_with_cookie(&login, &anonymous).await;
    assert_error_page(&res, "old session id");
    let silent = |cookie: String| {
        let (params, _) = code_params(&client, "openid", &[("prompt", "none")]);
        let browser = &browser;
        async move {
            let q = format!("/authorize?{}", form_body(&as_refs(&params)));
            browser.get_with_cookie(&q, &cookie).await
        }
    };
    let res = silent(anonymous.clone()).await;
    let (_, got) = response_params(&res, CB);
    assert_eq!(param(&got, "error").as_deref(), Some("login_required"));
    let res = silent(signed_in.clone()).await;
    let (_, got) = response_params(&res, CB);
    assert!(
        param(&got, "code").is_some(),
        "the new id is signed in: {got:?}"
    );
    assert!(
        set_cookies(&res).is_empty(),
        "a signed-in session keeps its cookie"
    );

    // Logout ends it; the old cookie is then dead.
    let confirm = browser.get("/logout").await;
    let csrf = hidden(&confirm.text, "csrf").unwrap();
    let res = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let cleared = set_cookies(&res);
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert!(cleared[0].starts_with("lk_session=;"), "{cleared:?}");
    assert!(cleared[0].contains("Max-Age=0"), "{cleared:?}");
    let res = silent(signed_in).await;
    let (_, got) = response_params(&res, CB);
    assert_eq!(param(&got, "error").as_deref(), Some("login_required"));
}

// SECURITY-TESTS: BR-04
async fn the_session_cookie_is_secure_on_an_https_issuer(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.issuer = "https://login.example".into()).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, true).await;
    // By hand: a cookie jar would not send a Secure cookie over plain http.
    let (params, _) = code_request(&client, "openid");
    let q = format!("/authorize?{}", form_body(&as_refs(&params)));
    let res = TestServer::read(bare_http().get(srv.url(&q)).send().await.unwrap()).await;
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_cookie_attributes(&cookies[0], true, "https, before login");
    let anonymous = session_cookie(&res).unwrap();
    let browser = Browser::new(&srv);
    let login = res.header("location").unwrap().to_owned();
    let page = browser.get_with_cookie(&login, &anonymous).await;
    let request = hidden(&page.text, "request").unwrap();
    let csrf = hidden(&page.text, "csrf").unwrap();
    let res = post_with_cookie(
        &srv,
        "/login",
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", PW),
        ],
        Some(&anonymous),
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_cookie_attributes(&cookies[0], true, "https, after login");
}

// SECURITY-TESTS: BR-05
async fn a_good_login_answers_303(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, false).await;
    let browser = Browser::new(&srv);
    let (params, _) = code_request(&client, "openid");
    let mut res = browser.authorize(&as_refs(&params)).await;
    let mut steps = 0;
    while let Some(loc) = res.header("location").map(str::to_owned) {
        assert_eq!(res.status, 303, "every redirect is 303, at {loc}");
        if !loc.starts_with('/') {
            break;
        }
        res = if loc.starts_with("/login") {
            let r = browser.login(&loc, "alice", PW).await;
            assert_eq!(r.status, 303, "good login: {}", r.text);
            r
        } else if loc.starts_with("/consent") {
            browser.consent(&loc, true).await
        } else {
            browser.get(&loc).await
        };
        steps += 1;
    }
    assert!(steps >= 3, "authorize, login, resume, consent");
    assert!(param(&response_params(&res, CB).1, "code").is_some());
}

// SECURITY-TESTS: BR-06
async fn client_supplied_text_is_escaped_everywhere(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let evil = "\"><script>alert(1)</script>' & \r\nX";
    let evil_scope = "<script>alert('s')&</script>";
    let client = srv
        .client(NewClient {
            name: format!("Evil {evil} App"),
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec![CB.into()],
            post_logout_redirect_uris: vec!["https://app.example/bye".into()],
            scope: Some(format!("openid {evil_scope}")),
            ..Default::default()
        })
        .await;
    let browser = Browser::new(&srv);
    let (params, _) = code_params(
        &client,
        &format!("openid {evil_scope}"),
        &[
            ("state", evil),
            ("login_hint", evil),
            ("ui_locales", evil),
            ("response_mode", "form_post"),
        ],
    );
    #[track_caller]
    fn no_live_markup(res: &Res, rule: &str) {
        let text = &res.text;
        assert!(!text.contains("<script>alert"), "{rule}: {text}");
        assert!(!text.contains("\"><script"), "{rule}: {text}");
        assert!(
            !text.contains("' &"),
            "{rule}: raw quote and ampersand: {text}"
        );
        for (name, value) in &res.headers {
            let v = value.as_bytes();
            assert!(
                !v.contains(&b'\r') && !v.contains(&b'\n'),
                "{rule}: CR/LF in {name}"
            );
        }
    }
    let res = browser.authorize(&as_refs(&params)).await;
    assert_eq!(res.status, 303);
    no_live_markup(&res, "authorize redirect");
    let login = res.header("location").unwrap().to_owned();
    let page = browser.get(&login).await;
    no_live_markup(&page, "login page");
    assert!(
        page.text.contains("&#60;script&#62;alert(1)"),
        "the name, escaped: {}",
        page.text
    );
    assert!(
        page.text.contains("value=\"&#34;&#62;&#60;script&#62;"),
        "login_hint, escaped: {}",
        page.text
    );
    let res = browser.login(&login, "alice", PW).await;
    no_live_markup(&res, "login answer");
    let res = browser.get(res.header("location").unwrap()).await;
    let consent = res.header("location").unwrap().to_owned();
    let page = browser.get(&consent).await;
    assert_eq!(page.status, 200, "{}", page.text);
    no_live_markup(&page, "consent page");
    assert!(
        page.text
            .contains("&#60;script&#62;alert(&#39;s&#39;)&#38;"),
        "{}",
        page.text
    );
    let res = browser.consent(&consent, true).await;
    assert_eq!(res.status, 200, "form_post page: {}", res.text);
    assert_eq!(
        res.text.matches("<script").count(),
        1,
        "only the submitting script"
    );
    assert!(!res.text.contains("\"><script>"), "{}", res.text);
    let (_, got) = response_params(&res, CB);
    assert_eq!(param(&got, "state").as_deref(), Some(evil), "state intact");

    // In a redirect the state is encoded, never a raw CR/LF in Location.
    let (params, _) = code_params(&client, "openid", &[("state", evil), ("prompt", "none")]);
    let fresh = Browser::new(&srv);
    let res = fresh.authorize(&as_refs(&params)).await;
    no_live_markup(&res, "error redirect");
    let loc = res.header("location").unwrap();
    assert!(loc.contains("%0D%0A"), "{loc}");
    let (_, got) = response_params(&res, CB);
    assert_eq!(param(&got, "state").as_deref(), Some(evil));

    // The logout confirmation page keeps the state in a field, escaped.
    let q = form_body(&[
        ("client_id", client.id.as_str()),
        ("post_logout_redirect_uri", "https://app.example/bye"),
        ("state", evil),
    ]);
    let page = browser.get(&format!("/logout?{q}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    no_live_markup(&page, "logout page");
    let csrf = hidden(&page.text, "csrf").unwrap();
    let res = browser
        .post(
            "/logout",
            &[
                ("csrf", &csrf),
                ("client_id", &client.id),
                ("post_logout_redirect_uri", "https://app.example/bye"),
                ("state", evil),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    no_live_markup(&res, "logout redirect");

    // Error pages never echo the input.
    let res = browser
        .authorize(&[("client_id", evil), ("redirect_uri", evil), ("state", evil)])
        .await;
    assert_error_page(&res, "unknown client");
    no_live_markup(&res, "error page");
}

/// Submits the login form of `login` with these credentials.
async fn submit_login(browser: &Browser<'_>, login: &str, user: &str, pw: &str) -> Res {
    let (request, csrf) = form_of(browser, login).await;
    browser
        .post(
            "/login",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("username", user),
                ("password", pw),
            ],
        )
        .await
}

// SECURITY-TESTS: PW-02
async fn a_failed_login_does_not_say_whether_the_user_exists(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let disabled = srv.user("carol", PW).await;
    latchkey::admin::set_disabled(srv.store(), &disabled.username, true, srv.now())
        .await
        .unwrap();
    let client = code_client(&srv, false).await;
    let browser = Browser::new(&srv);
    let (params, _) = code_request(&client, "openid");
    let login = start(&browser, &params).await;
    let before = srv.verifications().await;
    let mut pages = Vec::new();
    for (rule, user, pw) in [
        ("unknown user", "mallory", PW),
        ("wrong password", "alice", "wrong password"),
        ("disabled user", "carol", PW),
    ] {
        let res = submit_login(&browser, &login, user, pw).await;
        assert_eq!(res.status, 400, "{rule}: {}", res.text);
        assert!(res.header("location").is_none(), "{rule}");
        assert!(set_cookies(&res).is_empty(), "{rule}");
        assert_page_headers(&res, rule);
        assert!(
            res.text.contains("name=\"password\""),
            "{rule}: the form again"
        );
        // The same page, but for the username typed in.
        pages.push(res.text.replace(&format!("value=\"{user}\""), "value=\"\""));
    }
    assert_eq!(
        pages[0], pages[1],
        "unknown user and wrong password look alike"
    );
    assert_eq!(pages[1], pages[2], "a disabled account looks alike");
    assert_eq!(
        srv.verifications().await,
        before + 3,
        "one hash per attempt"
    );
    // An empty form is re-shown without hashing.
    let res = submit_login(&browser, &login, "alice", "").await;
    assert_eq!(res.status, 400);
    assert_eq!(srv.verifications().await, before + 3);
}

// SECURITY-TESTS: PW-03
async fn the_login_page_is_throttled_like_the_password_grant(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.login.user_max_failures = 3).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    let (params, _) = code_request(&client, "openid");
    let login = start(&browser, &params).await;
    for _ in 0..3 {
        let res = submit_login(&browser, &login, "alice", "wrong password").await;
        assert_eq!(res.status, 400, "{}", res.text);
    }
    let before = srv.verifications().await;
    for pw in ["wrong password", PW] {
        let res = submit_login(&browser, &login, "alice", pw).await;
        assert_eq!(res.status, 429, "locked: {}", res.text);
        assert!(
            res.header("retry-after")
                .is_some_and(|s| s.parse::<u64>().unwrap() > 0)
        );
        assert!(
            res.text.contains("Too many failed attempts"),
            "{}",
            res.text
        );
        assert!(res.text.contains("name=\"password\""), "the form again");
        assert!(set_cookies(&res).is_empty());
        assert_page_headers(&res, "locked");
    }
    assert_eq!(srv.verifications().await, before, "refused before hashing");
    srv.advance(srv.state.config.login.lock_secs + 1);
    let res = submit_login(&browser, &login, "alice", PW).await;
    assert_eq!(res.status, 303, "unlocked: {}", res.text);
}

// SECURITY-TESTS: RL-09
async fn consent_is_remembered_per_scope_set_and_approved_once(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, false).await;
    let browser = Browser::new(&srv);
    let (params, _) = code_request(&client, "openid profile");
    let consent = to_consent(&browser, &params, "alice").await;
    let page = browser.get(&consent).await;
    assert!(page.text.contains("Photo App"), "the client's name");
    assert!(
        page.text.contains("See your name and profile"),
        "scopes in words"
    );
    // Two approvals at once: one answer, one error page, never a 5xx.
    let (request, csrf) = form_of(&browser, &consent).await;
    let form = [
        ("request", request.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", "approve"),
    ];
    let (one, two) = tokio::join!(
        browser.post("/consent", &form),
        browser.post("/consent", &form)
    );
    let mut statuses = [one.status, two.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 400], "{} / {}", one.text, two.text);
    // A subset is not asked again; a larger scope set is; prompt=consent always is.
    let ask = |scope: &str, prompt: &str| code_params(&client, scope, &[("prompt", prompt)]).0;
    for (scope, prompt, asked) in [
        ("openid", "", false),
        ("profile openid", "", false),
        ("openid profile email", "", true),
        ("openid", "consent", true),
    ] {
        let res = browser.authorize(&as_refs(&ask(scope, prompt))).await;
        let loc = res.header("location").unwrap();
        assert_eq!(
            loc.starts_with("/consent?"),
            asked,
            "{scope} {prompt}: {loc}"
        );
    }
    // First-party clients never ask.
    let first = code_client(&srv, true).await;
    let (params, _) = code_params(&first, "openid profile email", &[]);
    let res = browser.authorize(&as_refs(&params)).await;
    assert!(
        res.header("location").unwrap().starts_with(CB),
        "first party"
    );
}

/// Consent remembered for one scope set grows with the next approval.
async fn approved_scopes_accumulate(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, false).await;
    let browser = Browser::new(&srv);
    let (params, _) = code_request(&client, "openid profile");
    let consent = to_consent(&browser, &params, "alice").await;
    assert_eq!(browser.consent(&consent, true).await.status, 303);
    let (params, _) = code_params(&client, "openid email", &[]);
    let res = browser.authorize(&as_refs(&params)).await;
    let loc = res.header("location").unwrap().to_owned();
    assert!(
        loc.starts_with("/consent?"),
        "email was never approved: {loc}"
    );
    assert_eq!(browser.consent(&loc, true).await.status, 303);
    let (params, _) = code_params(&client, "openid profile email", &[]);
    let res = browser.authorize(&as_refs(&params)).await;
    let loc = res.header("location").unwrap();
    assert!(
        loc.starts_with(CB),
        "profile and email were both approved: {loc}"
    );
}

// SECURITY-TESTS: BR-04
async fn sessions_and_parked_requests_expire(b: Backend) {
    let srv = TestServer::start_with(b, |c| c.login.session_ttl_secs = 900).await;
    srv.user("alice", PW).await;
    let client = code_client(&srv, true).await;
    let browser = Browser::new(&srv);
    let (params, _) = code_request(&client, "openid");
    assert_eq!(
        browser.sign_in(&as_refs(&params), "alice", PW).await.status,
        303
    );
    let silent = code_params(&client, "openid", &[("prompt", "none")]).0;
    srv.advance(899);
    let res = browser.authorize(&as_refs(&silent)).await;
    assert!(
        param(&response_params(&res, CB).1, "code").is_some(),
        "still signed in"
    );
    srv.advance(1);
    let res = browser.authorize(&as_refs(&silent)).await;
    assert_eq!(
        param(&response_params(&res, CB).1, "error").as_deref(),
        Some("login_required"),
        "the session ended after its lifetime"
    );
    // A sign-in left on the login page for too long must start again.
    let login = start(&browser, &params).await;
    srv.advance(601);
    let res = browser.get(&login).await;
    assert_error_page(&res, "expired request");
}

both_backends! {
    every_page_carries_the_security_headers,
    login_posts_without_our_csrf_token_are_refused_before_any_hashing,
    consent_needs_this_requests_token_this_user_and_happens_once,
    the_session_cookie_is_locked_down_and_renewed_at_login,
    the_session_cookie_is_secure_on_an_https_issuer,
    a_good_login_answers_303,
    client_supplied_text_is_escaped_everywhere,
    a_failed_login_does_not_say_whether_the_user_exists,
    the_login_page_is_throttled_like_the_password_grant,
    consent_is_remembered_per_scope_set_and_approved_once,
    approved_scopes_accumulate,
    sessions_and_parked_requests_expire,
}
