//! Grants: one file per grant type, each reading as its RFC section. No HTTP, no SQL.

pub mod authorization_code;
pub mod client_credentials;
pub mod implicit;
pub mod password;
pub mod refresh_token;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::app::AppState;
use crate::clock::UnixTime;
use crate::jwt::{self, AccessClaims, Audience, IdClaims};
use crate::model::{Client, User};
use crate::oauth::{OAuthError, Params, ScopeSet};
use crate::secrets;

/// What every grant works with: the application and the one reading of the clock.
pub struct GrantCtx<'a> {
    pub app: &'a Arc<AppState>,
    pub now: UnixTime,
    /// The client's IP address (after trusted proxies), for login throttling.
    pub peer: Option<IpAddr>,
}

impl<'a> GrantCtx<'a> {
    pub fn new(app: &'a Arc<AppState>, now: UnixTime, peer: Option<IpAddr>) -> Self {
        Self { app, now, peer }
    }
}

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// The subject of an access token.
pub enum Subject<'a> {
    /// client_credentials: the client acts for itself; `sub` = client_id.
    Client,
    /// A user, and the grant the token belongs to.
    User {
        user: &'a User,
        grant_id: &'a str,
        auth_time: UnixTime,
    },
}

/// RFC 8707 §2: each `resource` must be an absolute URI without fragment that the client
/// may address; none asked means the configured audience.
pub fn audience(
    ctx: &GrantCtx<'_>,
    client: &Client,
    params: &Params,
) -> Result<Audience, OAuthError> {
    let asked = params.resources();
    if asked.is_empty() {
        return Ok(Audience::One(ctx.app.config.audience.clone()));
    }
    for r in asked {
        let ok = url::Url::parse(r).is_ok_and(|u| u.fragment().is_none())
            && (client.resources.contains(r) || *r == ctx.app.config.audience);
        if !ok {
            return Err(OAuthError::invalid_target(
                "resource is not allowed for this client",
            ));
        }
    }
    let mut list = asked.to_vec();
    list.dedup();
    Ok(Audience::from_list(list))
}

/// Mints an RFC 9068 access token; returns it with its `jti`.
pub fn issue_access_token(
    ctx: &GrantCtx<'_>,
    client: &Client,
    subject: Subject<'_>,
    scope: &ScopeSet,
    aud: Audience,
) -> Result<(String, String), OAuthError> {
    let app = ctx.app;
    let keys = app.keys.view(ctx.now).map_err(OAuthError::server_error)?;
    let jti = secrets::random_b64(16).map_err(OAuthError::server_error)?;
    let (sub, grant_id, auth_time) = match subject {
        Subject::Client => (client.id.clone(), None, None),
        Subject::User {
            user,
            grant_id,
            auth_time,
        } => (
            user.id.to_string(),
            Some(grant_id.to_owned()),
            Some(auth_time),
        ),
    };
    let claims = AccessClaims {
        iss: app.config.issuer.clone(),
        sub,
        aud,
        exp: ctx.now + client.access_token_ttl,
        iat: ctx.now,
        nbf: None,
        jti: jti.clone(),
        client_id: client.id.clone(),
        scope: scope.to_string(),
        auth_time,
        grant_id,
    };
    let token = jwt::sign(&keys.signing, jwt::ACCESS_TOKEN_TYP, &claims)
        .map_err(OAuthError::server_error)?;
    Ok((token, jti))
}

/// Inputs of an ID token beyond the user and client.
pub struct IdTokenFor<'a> {
    pub user: &'a User,
    pub scope: &'a ScopeSet,
    pub auth_time: UnixTime,
    pub nonce: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub code: Option<&'a str>,
}

/// Mints an OIDC ID token (Core §2, §3.1.3.6). Profile and email claims the scope grants
/// are included, so a client need not call userinfo.
pub fn issue_id_token(
    ctx: &GrantCtx<'_>,
    client: &Client,
    t: IdTokenFor<'_>,
) -> Result<String, OAuthError> {
    let app = ctx.app;
    let keys = app.keys.view(ctx.now).map_err(OAuthError::server_error)?;
    let alg = keys.signing.alg;
    let claims = IdClaims {
        iss: app.config.issuer.clone(),
        sub: t.user.id.to_string(),
        aud: client.id.clone(),
        exp: ctx.now + app.config.tokens.id_token_ttl_secs,
        iat: ctx.now,
        auth_time: t.auth_time,
        nonce: t.nonce.map(str::to_owned),
        azp: None,
        at_hash: t.access_token.map(|at| jwt::half_hash(alg, at)),
        c_hash: t.code.map(|c| jwt::half_hash(alg, c)),
        profile: user_claims(t.user, t.scope),
    };
    jwt::sign(&keys.signing, "JWT", &claims).map_err(OAuthError::server_error)
}

/// Issues the tokens of a user grant: access token, ID token if `openid` was asked for, and
/// the refresh token the caller minted (if any).
pub fn user_tokens(
    ctx: &GrantCtx<'_>,
    client: &Client,
    t: IdTokenFor<'_>,
    grant_id: &str,
    aud: Audience,
    refresh_token: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let subject = Subject::User {
        user: t.user,
        grant_id,
        auth_time: t.auth_time,
    };
    let (access_token, _) = issue_access_token(ctx, client, subject, t.scope, aud)?;
    let id_token = if t.scope.contains("openid") {
        let t = IdTokenFor {
            access_token: Some(&access_token),
            ..t
        };
        Some(issue_id_token(ctx, client, t)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: client.access_token_ttl,
        scope: t.scope.to_string(),
        refresh_token,
        id_token,
    })
}

/// The lifetimes of a new grant and, when the client may refresh, its first refresh token
/// (issued whatever the scope; documented in the README).
pub struct FirstRefresh {
    /// Absolute end of the family.
    pub expires_at: UnixTime,
    /// The token to hand out, and what the store keeps of it: hash and idle expiry.
    pub token: Option<String>,
    pub row: Option<(crate::oauth::TokenHash, UnixTime)>,
}

pub fn first_refresh(ctx: &GrantCtx<'_>, client: &Client) -> Result<FirstRefresh, OAuthError> {
    let tokens = &ctx.app.config.tokens;
    let expires_at = ctx.now
        + client
            .refresh_absolute_ttl
            .unwrap_or(tokens.refresh_absolute_ttl_secs);
    if !client
        .grant_types
        .contains(&crate::oauth::GrantType::RefreshToken)
    {
        return Ok(FirstRefresh {
            expires_at,
            token: None,
            row: None,
        });
    }
    let token = secrets::random_token().map_err(OAuthError::server_error)?;
    let idle = client
        .refresh_idle_ttl
        .unwrap_or(tokens.refresh_idle_ttl_secs);
    let row = Some((
        secrets::token_hash(&token),
        (ctx.now + idle).min(expires_at),
    ));
    Ok(FirstRefresh {
        expires_at,
        token: Some(token),
        row,
    })
}

/// Standard claims released by scope (OIDC Core §5.4); `sub` is added by the caller.
pub fn user_claims(user: &User, scope: &ScopeSet) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), Value::String(v.clone()));
        }
    };
    if scope.contains("profile") {
        put("name", &user.profile.name);
        put("given_name", &user.profile.given_name);
        put("family_name", &user.profile.family_name);
        put("preferred_username", &Some(user.username.clone()));
    }
    if scope.contains("email") {
        put("email", &user.profile.email);
    }
    if scope.contains("profile") {
        m.insert("updated_at".into(), Value::from(user.updated_at));
    }
    if scope.contains("email") && user.profile.email.is_some() {
        m.insert(
            "email_verified".into(),
            Value::Bool(user.profile.email_verified),
        );
    }
    m
}
