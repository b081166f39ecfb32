//! Domain records and their invariants: clients, users, signing keys, refresh grants.

use uuid::Uuid;

use crate::clock::UnixTime;
use crate::oauth::{GrantType, KeyAlg, OAuthError, ScopeSet, TokenHash};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// Cannot keep a secret (browser, native app); must use PKCE.
    Public,
    /// Authenticates with a server-generated secret.
    Confidential,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Public => "public",
            ClientKind::Confidential => "confidential",
        }
    }
}

/// Client authentication methods at the token endpoint (RFC 8414 §2, OIDC Core §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<AuthMethod> {
        [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::None,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// A registered client (RFC 6749 §2).
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub kind: ClientKind,
    /// Keyed hash of the secret; `None` for public clients.
    pub secret_hash: Option<String>,
    /// The one token-endpoint authentication method allowed; `None`: Basic or post.
    pub auth_method: Option<AuthMethod>,
    pub grant_types: Vec<GrantType>,
    /// Exact redirect URIs (RFC 9700 §4.1.3).
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes the client may ask for; also its default scope.
    pub scopes: ScopeSet,
    /// RFC 8707 resources (audiences) the client may ask tokens for, besides the default.
    pub resources: Vec<String>,
    pub access_token_ttl: i64,
    /// Overrides of the configured refresh-token lifetimes.
    pub refresh_idle_ttl: Option<i64>,
    pub refresh_absolute_ttl: Option<i64>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    pub created_at: UnixTime,
}

impl Client {
    /// RFC 6749 §5.2 `unauthorized_client`: the client is not allowed this grant type.
    pub fn ensure_allows(&self, grant: GrantType) -> Result<(), OAuthError> {
        if !self.grant_types.contains(&grant) {
            return Err(OAuthError::unauthorized_client(format!(
                "this client may not use the {grant} grant"
            )));
        }
        if grant.confidential_only() && self.kind == ClientKind::Public {
            return Err(OAuthError::unauthorized_client(format!(
                "a public client may not use the {grant} grant"
            )));
        }
        Ok(())
    }

    pub fn is_public(&self) -> bool {
        self.kind == ClientKind::Public
    }

    /// RFC 9700 §4.1.3: the registered URI that `asked` names, by exact string match; for
    /// loopback http URIs of native apps the port may vary (RFC 8252 §7.3).
    pub fn redirect_uri_matching(&self, asked: &str) -> Option<&str> {
        self.redirect_uris
            .iter()
            .map(String::as_str)
            .find(|r| *r == asked || loopback_port_variant(r, asked))
    }
}

/// Standard claims (OIDC Core §5.1) kept for a user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
}

/// An end user. `id` is the stable `sub`; the username may change.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub profile: Profile,
    pub disabled: bool,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// A signing key as stored. `activates_at` may be in the future (a staged key).
#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: KeyAlg,
    /// PKCS#8 (PKCS#1 for RSA) DER of the private key. Never logged.
    pub private_der: Vec<u8>,
    /// The public JWK, JSON.
    pub public_jwk: String,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
    /// Set when withdrawn at once (`keys retire`).
    pub retired_at: Option<UnixTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_der", &"[redacted]")
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// A grant: what one authorization (password login, code redemption) produced. Its refresh
/// tokens form one family; revoking the grant kills them and the access tokens naming it.
#[derive(Clone, Debug)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: Uuid,
    pub scope: ScopeSet,
    pub auth_time: UnixTime,
    pub created_at: UnixTime,
    /// Absolute end of the refresh family.
    pub expires_at: UnixTime,
}

/// A browser session; `user_id` is set once the user has signed in.
#[derive(Clone, Debug)]
pub struct Session {
    /// SHA-256 of the cookie value.
    pub id: TokenHash,
    pub user_id: Option<Uuid>,
    pub auth_time: Option<UnixTime>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// An authorization request waiting for login or consent, bound to one browser session.
#[derive(Clone, Debug)]
pub struct PendingRequest {
    pub id: String,
    pub session_id: TokenHash,
    pub client_id: String,
    /// The validated request, JSON (see `http::authorize::AuthzRequest`).
    pub request: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// What an authorization code is bound to (RFC 6749 §4.1.3; RFC 7636 §4.6; OIDC Core §3.1.3.2).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeBinding {
    pub redirect_uri: String,
    /// Whether redirect_uri was sent at /authorize (then /token must repeat it).
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: UnixTime,
}

/// A stored authorization code.
#[derive(Clone, Debug)]
pub struct AuthCodeRecord {
    pub hash: TokenHash,
    /// The grant its redemption creates; a replay revokes it.
    pub grant_id: String,
    pub client_id: String,
    pub user_id: Uuid,
    pub binding: CodeBinding,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// Outcome of redeeming a code: of concurrent redemptions exactly one wins.
#[derive(Debug)]
pub enum Redeem {
    Redeemed(AuthCodeRecord),
    /// Spent already: the grant the first redemption created must be revoked.
    AlreadyUsed {
        grant_id: String,
    },
    /// Unknown or expired.
    Unknown,
}

/// Validates a redirect URI at registration (RFC 6749 §3.1.2; RFC 9700 §2.6; RFC 8252 §7).
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    let parsed = url::Url::parse(uri).map_err(|_| format!("{uri:?} is not an absolute URI"))?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(format!("{uri:?} must not contain a fragment"));
    }
    if uri.contains('*') {
        return Err(format!(
            "{uri:?}: wildcards are not allowed; register each URI exactly"
        ));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(parsed.host_str().unwrap_or_default()) => Ok(()),
        "http" => Err(format!(
            "{uri:?}: http is allowed only for loopback hosts; use https"
        )),
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" => Err(format!(
            "{uri:?}: scheme {} is not allowed",
            parsed.scheme()
        )),
        // RFC 8252 §7.1: private-use schemes are reverse domain names.
        s if s.contains('.') => Ok(()),
        s => Err(format!(
            "{uri:?}: scheme {s} is not allowed (use https, loopback http or a reverse-domain scheme)"
        )),
    }
}

fn loopback_port_variant(registered: &str, asked: &str) -> bool {
    // Byte-identical except for the port: "http://127.0.0.1" or "http://[::1]", an optional
    // ":digits", then the same path and query.
    fn split(uri: &str) -> Option<(&str, &str)> {
        let host = ["http://127.0.0.1", "http://[::1]"]
            .into_iter()
            .find(|h| uri.starts_with(h))?;
        let rest = &uri[host.len()..];
        let rest = match rest.strip_prefix(':') {
            Some(r) => {
                let digits = r.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 || digits > 5 {
                    return None;
                }
                &r[digits..]
            }
            None => rest,
        };
        (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some((host, rest))
    }
    matches!((split(registered), split(asked)), (Some(r), Some(a)) if r == a)
}

pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_registration_rules() {
        for (uri, ok) in [
            ("https://app.example/cb", true),
            ("https://app.example/cb?a=1", true),
            ("http://127.0.0.1:9000/cb", true),
            ("http://localhost/cb", true),
            ("com.example.app:/cb", true),
            ("http://app.example/cb", false),
            ("https://app/cb#frag", false),
            ("https://*.app/cb", false),
            ("/relative", false),
            ("javascript:alert(1)", false),
        ] {
            assert_eq!(validate_redirect_uri(uri).is_ok(), ok, "{uri}");
        }
    }

    #[test]
    fn loopback_redirects_may_vary_the_port_only() {
        for (reg, asked, ok) in [
            ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", true),
            ("http://127.0.0.1:8000/cb", "http://127.0.0.1:9/cb", true),
            ("http://[::1]/cb", "http://[::1]:80/cb", true),
            ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb2", false),
            ("http://127.0.0.1/cb", "http://127.0.0.1.evil/cb", false),
            ("http://127.0.0.1/cb", "http://127.0.0.1:x/cb", false),
            ("http://localhost/cb", "http://localhost:1/cb", false),
            (
                "https://app.example/cb",
                "https://app.example:443/cb",
                false,
            ),
        ] {
            assert_eq!(loopback_port_variant(reg, asked), ok, "{reg} vs {asked}");
        }
    }

    #[test]
    fn public_clients_cannot_use_confidential_grants() {
        let c = Client {
            id: "c".into(),
            name: "n".into(),
            kind: ClientKind::Public,
            secret_hash: None,
            auth_method: None,
            grant_types: vec![GrantType::ClientCredentials, GrantType::AuthorizationCode],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: ScopeSet::default(),
            resources: vec![],
            access_token_ttl: 3600,
            refresh_idle_ttl: None,
            refresh_absolute_ttl: None,
            first_party: false,
            created_at: 0,
        };
        assert_eq!(
            c.ensure_allows(GrantType::ClientCredentials)
                .unwrap_err()
                .code(),
            "unauthorized_client"
        );
        assert!(c.ensure_allows(GrantType::AuthorizationCode).is_ok());
        assert_eq!(
            c.ensure_allows(GrantType::Password).unwrap_err().code(),
            "unauthorized_client"
        );
    }
}
