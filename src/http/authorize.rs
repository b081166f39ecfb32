//! GET/POST /authorize (RFC 6749 §4.1.1, §4.2.1; OIDC Core §3.1.2, §3.2.2). client_id and
//! redirect_uri are proven first; until then errors are a page, never a redirect (RFC 9700
//! §4.1.3). Then the request is validated, and the session decides: login, consent, or an
//! answer at once.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::clock::UnixTime;
use crate::jwt;
use crate::model::{Client, PendingRequest, Session};
use crate::oauth::{GrantType, OAuthError, Params, ScopeSet, pkce};
use crate::secrets;

use super::extract::{PendingId, is_form, read_body};
use super::pages::{error_page, form_post};
use super::{finish, session};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseType {
    Code,
    Token,
    IdTokenToken,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// Where an authorization response may go: a redirect URI that matched the client's
/// registration exactly. Only [`RedirectTarget::exact`] makes one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RedirectTarget {
    uri: String,
    mode: ResponseMode,
    state: Option<String>,
}

impl RedirectTarget {
    /// RFC 6749 §3.1.2.3, OIDC Core §3.1.2.1: the redirect URI must be registered; it may be
    /// omitted only by a plain OAuth client with exactly one.
    fn exact(
        client: &Client,
        asked: Option<&str>,
        openid: bool,
    ) -> Result<(RedirectTarget, bool), OAuthError> {
        let uri = match asked {
            Some(a) => client
                .redirect_uri_matching(a)
                .map(|_| a.to_owned())
                .ok_or_else(|| {
                    OAuthError::invalid_request("redirect_uri is not registered for this client")
                })?,
            None if openid => return Err(OAuthError::invalid_request("redirect_uri is required")),
            None => match client.redirect_uris.as_slice() {
                [only] => only.clone(),
                _ => return Err(OAuthError::invalid_request("redirect_uri is required")),
            },
        };
        Ok((
            RedirectTarget {
                uri,
                mode: ResponseMode::Query,
                state: None,
            },
            asked.is_some(),
        ))
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Sends `params` (plus `state` and `iss`, RFC 9207) to the client in the response mode.
    pub fn respond(&self, issuer: &str, mut params: Vec<(String, String)>) -> Response {
        if let Some(state) = &self.state {
            params.push(("state".into(), state.clone()));
        }
        params.push(("iss".into(), issuer.to_owned()));
        let encoded = || {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &params {
                s.append_pair(k, v);
            }
            s.finish()
        };
        let location = match self.mode {
            ResponseMode::FormPost => return form_post(&self.uri, &params),
            ResponseMode::Query => {
                let sep = if self.uri.contains('?') { '&' } else { '?' };
                format!("{}{sep}{}", self.uri, encoded())
            }
            ResponseMode::Fragment => format!("{}#{}", self.uri, encoded()),
        };
        see_other(&location)
    }

    pub fn error(&self, issuer: &str, e: &OAuthError) -> Response {
        let params = vec![
            ("error".into(), e.code().into()),
            ("error_description".into(), e.description.to_string()),
        ];
        let mut res = self.respond(issuer, params);
        res.extensions_mut().insert(super::response::LogNote {
            client_id: None,
            error: Some(e.code()),
            cause: e.cause.clone(),
        });
        res
    }
}

/// 303 See Other (RFC 9700 §4.12: never 307 after a POST with credentials).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(header::LOCATION, v);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(_) => error_page(&OAuthError::invalid_request(
            "the redirect URI cannot be used",
        )),
    }
}

/// An /authorize failure: a page before the redirect URI is proven, a redirect after.
pub enum AuthorizeError {
    Page(OAuthError),
    Redirect(Box<RedirectTarget>, OAuthError),
}

impl From<OAuthError> for AuthorizeError {
    fn from(e: OAuthError) -> Self {
        AuthorizeError::Page(e)
    }
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(e: crate::store::StoreError) -> Self {
        AuthorizeError::Page(e.into())
    }
}

/// A validated authorization request, kept server-side while the user logs in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthzRequest {
    pub client_id: String,
    pub target: RedirectTarget,
    pub redirect_uri_sent: bool,
    pub response_type: ResponseType,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `sub` of a valid id_token_hint.
    pub hint_sub: Option<String>,
    /// The browser session the request was parked under (set by [`park`]).
    #[serde(default)]
    pub parked_session: Option<String>,
}

impl AuthzRequest {
    pub fn fail(&self, issuer: &str, e: OAuthError) -> Response {
        self.target.error(issuer, &e)
    }
}

pub async fn authorize_get(State(app): State<Arc<AppState>>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").as_bytes().to_vec();
    run(&app, &query, req.headers().clone()).await
}

pub async fn authorize_post(State(app): State<Arc<AppState>>, req: Request) -> Response {
    let headers = req.headers().clone();
    if !is_form(&headers) {
        return error_page(&OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    match read_body(req.into_body()).await {
        Ok(body) => run(&app, &body, headers).await,
        Err(e) => error_page(&e),
    }
}

async fn run(app: &Arc<AppState>, raw: &[u8], headers: HeaderMap) -> Response {
    let now = app.clock.now();
    let result = async {
        let (req, client) = validate(app, raw, now).await?;
        decide(app, req, &client, &headers, now).await
    }
    .await;
    match result {
        Ok(res) => res,
        Err(AuthorizeError::Page(e)) => error_page(&e),
        Err(AuthorizeError::Redirect(target, e)) => target.error(&app.config.issuer, &e),
    }
}

async fn validate(
    app: &AppState,
    raw: &[u8],
    now: UnixTime,
) -> Result<(AuthzRequest, Client), AuthorizeError> {
    let (p, repeated) = Params::parse_noting_repeats(raw)?;
    // RFC 6749 §3.1: a repeated client_id or redirect_uri leaves nothing to trust.
    if let Some(name) = repeated
        .as_deref()
        .filter(|n| *n == "client_id" || *n == "redirect_uri")
    {
        return Err(OAuthError::invalid_request(format!("parameter {name} is repeated")).into());
    }
    let client_id = p.required("client_id")?;
    // RFC 9700 §4.11.2: say nothing about which clients exist.
    let client = app.store.client(client_id).await?.ok_or_else(|| {
        OAuthError::invalid_request("the client is unknown or the request is invalid")
    })?;
    let scope_param = p.get("scope");
    // An OpenID request, whether it asks for openid or gets it as the client's default scope.
    let openid = match scope_param {
        Some(s) => s.split(' ').any(|t| t == "openid"),
        None => client.scopes.contains("openid"),
    };
    let (mut target, redirect_uri_sent) =
        RedirectTarget::exact(&client, p.get("redirect_uri"), openid)?;
    target.state = p.get("state").map(str::to_owned);
    let fail = |t: &RedirectTarget, e: OAuthError| AuthorizeError::Redirect(Box::new(t.clone()), e);

    // The response type fixes the default response mode, and response_mode may change it;
    // every later error, a missing response_type included, is sent that way.
    let response_type = p.get("response_type").and_then(parse_response_type);
    if let Some(rt) = response_type {
        target.mode = if rt == ResponseType::Code {
            ResponseMode::Query
        } else {
            ResponseMode::Fragment
        };
    }
    match p.get("response_mode") {
        None => {}
        Some("query") if response_type.is_some_and(|rt| rt != ResponseType::Code) => {
            return Err(fail(
                &target,
                OAuthError::invalid_request("tokens are never sent in the query"),
            ));
        }
        Some("query") => target.mode = ResponseMode::Query,
        Some("fragment") => target.mode = ResponseMode::Fragment,
        Some("form_post") => target.mode = ResponseMode::FormPost,
        Some(_) => {
            return Err(fail(
                &target,
                OAuthError::invalid_request("response_mode is not supported"),
            ));
        }
    }
    if !p.has("response_type") {
        return Err(fail(
            &target,
            OAuthError::invalid_request("response_type is required"),
        ));
    }
    if let Some(name) = repeated {
        return Err(fail(
            &target,
            OAuthError::invalid_request(format!("parameter {name} is repeated")),
        ));
    }
    // OIDC Core §6: request objects are not supported (discovery says so).
    if p.has("request") {
        return Err(fail(
            &target,
            OAuthError::request_not_supported("request objects are not supported"),
        ));
    }
    if p.has("request_uri") {
        return Err(fail(
            &target,
            OAuthError::request_uri_not_supported("request_uri is not supported"),
        ));
    }
    let Some(response_type) = response_type else {
        return Err(fail(
            &target,
            OAuthError::unsupported_response_type("response_type is not supported"),
        ));
    };
    let grant = match response_type {
        ResponseType::Code => GrantType::AuthorizationCode,
        ResponseType::Token | ResponseType::IdTokenToken => GrantType::Implicit,
    };
    if !client.grant_types.contains(&grant) {
        return Err(fail(
            &target,
            OAuthError::unauthorized_client(format!("this client may not use the {grant} flow")),
        ));
    }
    let scope = ScopeSet::grant(scope_param, &client.scopes).map_err(|e| fail(&target, e))?;
    // OIDC Core §3.2.2.1: an ID token is for OpenID requests only.
    if response_type == ResponseType::IdTokenToken && !scope.contains("openid") {
        return Err(fail(
            &target,
            OAuthError::invalid_scope("id_token needs the openid scope"),
        ));
    }
    let nonce = p.get("nonce").map(str::to_owned);
    // OIDC Core §3.2.2.1: nonce is required when an ID token travels in the front channel.
    if response_type == ResponseType::IdTokenToken && nonce.is_none() {
        return Err(fail(
            &target,
            OAuthError::invalid_request("nonce is required for id_token"),
        ));
    }
    let code_challenge = match response_type {
        ResponseType::Code => pkce_challenge(app, &client, &p).map_err(|e| fail(&target, e))?,
        ResponseType::Token | ResponseType::IdTokenToken => None,
    };
    let (prompt_none, mut prompt_login, prompt_consent) =
        parse_prompt(p.get("prompt")).map_err(|e| fail(&target, e))?;
    let max_age = match p.get("max_age") {
        None => None,
        Some(m) => Some(m.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| {
            fail(
                &target,
                OAuthError::invalid_request("max_age must be a non-negative integer"),
            )
        })?),
    };
    // OIDC Core §3.1.2.1: max_age=0 is equivalent to prompt=login.
    if max_age == Some(0) {
        prompt_login = true;
    }
    let hint_sub = match p.get("id_token_hint") {
        None => None,
        Some(hint) => {
            let keys = app.keys.view(now).map_err(OAuthError::server_error)?;
            match jwt::verify_id_token(hint, &keys, &app.config.issuer, now) {
                Ok((claims, _expired)) => Some(claims.sub),
                Err(_) => {
                    return Err(fail(
                        &target,
                        OAuthError::invalid_request("id_token_hint is not a valid ID token"),
                    ));
                }
            }
        }
    };
    let req = AuthzRequest {
        client_id: client.id.clone(),
        target,
        redirect_uri_sent,
        response_type,
        scope: scope.to_string(),
        nonce,
        code_challenge,
        prompt_none,
        prompt_login,
        prompt_consent,
        max_age,
        login_hint: p.get("login_hint").map(|h| h.chars().take(255).collect()),
        hint_sub,
        parked_session: None,
    };
    Ok((req, client))
}

fn parse_response_type(rt: &str) -> Option<ResponseType> {
    let mut parts: Vec<&str> = rt.split(' ').filter(|s| !s.is_empty()).collect();
    parts.sort_unstable();
    match parts.as_slice() {
        ["code"] => Some(ResponseType::Code),
        ["token"] => Some(ResponseType::Token),
        ["id_token", "token"] => Some(ResponseType::IdTokenToken),
        _ => None,
    }
}

/// RFC 7636 §4.3, RFC 9700 §2.1.1: S256 (plain only if configured); required for public
/// clients, and for all when configured. No method never means plain.
fn pkce_challenge(
    app: &AppState,
    client: &Client,
    p: &Params,
) -> Result<Option<String>, OAuthError> {
    let challenge = p.get("code_challenge");
    let method = p.get("code_challenge_method");
    match (challenge, method) {
        (None, None) => {
            if client.is_public() || app.config.login.require_pkce {
                Err(OAuthError::invalid_request(
                    "code_challenge (PKCE, S256) is required",
                ))
            } else {
                Ok(None)
            }
        }
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::invalid_request(
            "code_challenge_method is required (S256)",
        )),
        (Some(c), Some("S256")) if pkce::is_valid_s256_challenge(c) => {
            Ok(Some(format!("S256:{c}")))
        }
        (Some(c), Some("plain"))
            if app.config.login.allow_plain_pkce && pkce::is_valid_verifier(c) =>
        {
            Ok(Some(format!("plain:{c}")))
        }
        (Some(_), Some("S256" | "plain")) => Err(OAuthError::invalid_request(
            "code_challenge is malformed or its method is not allowed",
        )),
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method is not supported",
        )),
    }
}

/// OIDC Core §3.1.2.1: `none` stands alone.
fn parse_prompt(prompt: Option<&str>) -> Result<(bool, bool, bool), OAuthError> {
    let Some(prompt) = prompt else {
        return Ok((false, false, false));
    };
    let (mut none, mut login, mut consent) = (false, false, false);
    let mut count = 0;
    for value in prompt.split(' ').filter(|s| !s.is_empty()) {
        count += 1;
        match value {
            "none" => none = true,
            "login" => login = true,
            "consent" => consent = true,
            "select_account" => {}
            _ => {
                return Err(OAuthError::invalid_request(
                    "prompt has an unsupported value",
                ));
            }
        }
    }
    if none && count > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok((none, login, consent))
}

/// Whether `session` satisfies the request's authentication demands (prompt=login, max_age,
/// id_token_hint).
pub fn authenticated(req: &AuthzRequest, session: &Session, now: UnixTime) -> bool {
    let (Some(user), Some(auth_time)) = (session.user_id, session.auth_time) else {
        return false;
    };
    // OIDC Core §3.1.2.1 prompt=login: a login after the request was parked. A login always
    // starts a new session, so the session must differ from the parking one (a clock
    // comparison would let a login in the same second count).
    if req.prompt_login
        && req
            .parked_session
            .as_ref()
            .is_none_or(|parked| *parked == session.id.0)
    {
        return false;
    }
    if req.max_age.is_some_and(|m| now - auth_time > m) {
        return false;
    }
    req.hint_sub
        .as_ref()
        .is_none_or(|sub| *sub == user.to_string())
}

/// Login, consent, or answer now.
async fn decide(
    app: &Arc<AppState>,
    req: AuthzRequest,
    client: &Client,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Response, AuthorizeError> {
    let issuer = &app.config.issuer;
    let current = session::current(app, headers, now).await?;
    let signed_in = current.as_ref().filter(|s| authenticated(&req, s, now));
    let Some(sess) = signed_in else {
        if req.prompt_none {
            return Ok(req.fail(
                issuer,
                OAuthError::login_required("the user is not signed in"),
            ));
        }
        // Keep (or start) the browser session the login form will be bound to.
        let (cookie, sess) = match current {
            Some(s) => (None, s),
            None => {
                let (value, s) = session::start(app, None, now).await?;
                (Some(value), s)
            }
        };
        let id = park(app, &req, &sess, now).await?;
        let mut res = see_other(&format!("/login?request={id}"));
        if let Some(value) = cookie {
            session::set_cookie(app, &mut res, &value);
        }
        return Ok(res);
    };
    if needs_consent(app, &req, client, sess).await? {
        if req.prompt_none {
            return Ok(req.fail(
                issuer,
                OAuthError::consent_required("the user has not consented"),
            ));
        }
        let id = park(app, &req, sess, now).await?;
        return Ok(see_other(&format!("/consent?request={id}")));
    }
    Ok(finish::answer(app, &req, client, sess, now).await)
}

/// Stores the request for the login or consent step; returns its id.
pub async fn park(
    app: &AppState,
    req: &AuthzRequest,
    sess: &Session,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let id = secrets::random_b64(16).map_err(OAuthError::server_error)?;
    let parked = AuthzRequest {
        parked_session: Some(sess.id.0.clone()),
        ..req.clone()
    };
    let pending = PendingRequest {
        id: id.clone(),
        session_id: sess.id.clone(),
        client_id: req.client_id.clone(),
        request: serde_json::to_string(&parked).map_err(OAuthError::server_error)?,
        created_at: now,
        expires_at: now + session::PENDING_TTL_SECS,
    };
    app.store.put_pending(&pending).await?;
    Ok(id)
}

/// Consent is needed unless the client is first-party or the user already granted a
/// superset of the scope; prompt=consent always asks.
pub async fn needs_consent(
    app: &AppState,
    req: &AuthzRequest,
    client: &Client,
    sess: &Session,
) -> Result<bool, OAuthError> {
    if req.prompt_consent {
        return Ok(true);
    }
    if client.first_party {
        return Ok(false);
    }
    let Some(user) = sess.user_id else {
        return Ok(true);
    };
    let asked = ScopeSet::parse(&req.scope)?;
    Ok(!app
        .store
        .consent(user, &client.id)
        .await?
        .is_some_and(|granted| asked.is_subset(&granted)))
}

/// GET /authorize/resume?request=ID: continue a parked request after login.
pub async fn resume(
    State(app): State<Arc<AppState>>,
    PendingId(id): PendingId,
    headers: HeaderMap,
) -> Response {
    let now = app.clock.now();
    let expired = || {
        error_page(&OAuthError::invalid_request(
            "this sign-in request is unknown or has expired; start again from the application",
        ))
    };
    let Some(id) = id else {
        return expired();
    };
    let sess = match session::current(&app, &headers, now).await {
        Ok(Some(s)) => s,
        Ok(None) => return expired(),
        Err(e) => return error_page(&e),
    };
    let pending = match app.store.pending(&id, now).await {
        Ok(Some(p)) if p.session_id == sess.id => p,
        Ok(_) => return expired(),
        Err(e) => return error_page(&e.into()),
    };
    let Ok(req) = serde_json::from_str::<AuthzRequest>(&pending.request) else {
        return expired();
    };
    let client = match app.store.client(&req.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return expired(),
        Err(e) => return error_page(&e.into()),
    };
    if !authenticated(&req, &sess, now) {
        return see_other(&format!("/login?request={id}"));
    }
    match needs_consent(&app, &req, &client, &sess).await {
        Ok(true) => see_other(&format!("/consent?request={id}")),
        Ok(false) => match app.store.take_pending(&id, &sess.id, now).await {
            Ok(Some(_)) => finish::answer(&app, &req, &client, &sess, now).await,
            Ok(None) => expired(),
            Err(e) => error_page(&e.into()),
        },
        Err(e) => error_page(&e),
    }
}
