//! Validating an authorization request (RFC 6749 §4.1.1, §4.2.1; RFC 7636 §4.3; OIDC Core
//! §3.1.2.1, §3.2.2.1), in the order that decides how each error is answered.

use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::clock::UnixTime;
use crate::jwt;
use crate::model::Client;
use crate::oauth::{GrantType, OAuthError, Params, ScopeSet, pkce};

use super::target::{AuthorizeError, RedirectTarget, ResponseMode, ResponseType};

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

pub(super) async fn validate(
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
