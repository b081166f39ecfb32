//! Why a token was refused, why the issuer's keys could not be read, and why a validator
//! could not be built. No message ever contains the token.

/// Why [`Validator::validate`](crate::Validator::validate) refused a token.
///
/// Every variant but [`Error::KeysUnavailable`] means the token is bad (RFC 6750
/// `invalid_token`); `KeysUnavailable` means the validator could not judge it because the
/// issuer's keys could not be obtained, a server-side problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a compact JWS, not base64url or JSON, too large, or a header member missing.
    #[error("the access token is malformed")]
    Malformed,
    /// The header `typ` is not `at+jwt` (RFC 9068 §4): an ID token or another kind of JWT.
    #[error("the token is not an access token (typ must be at+jwt)")]
    WrongType,
    /// The header asks for an extension the validator does not understand (`crit`,
    /// RFC 7515 §4.1.11).
    #[error("the token uses an unsupported critical header")]
    UnsupportedCritical,
    /// The header `alg` is `none`, HMAC, unknown, or not the algorithm of the key named by
    /// `kid` (RFC 8725 §3.1).
    #[error("the token's signing algorithm is not accepted")]
    Algorithm,
    /// No published key has the token's `kid`, even after refetching the JWKS.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify with the published key.
    #[error("the token's signature is invalid")]
    Signature,
    /// `iss` is not the configured issuer.
    #[error("the token was issued by another issuer")]
    Issuer,
    /// `aud` does not contain the configured audience.
    #[error("the token is meant for another audience")]
    Audience,
    /// `exp` has passed, leeway included.
    #[error("the access token expired")]
    Expired,
    /// `nbf` is still in the future, leeway included.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// A required claim is missing or has the wrong type.
    #[error("the token's {0} claim is missing or invalid")]
    Claim(&'static str),
    /// The issuer's keys could not be fetched and none are cached (or the cache is too old
    /// to trust).
    #[error("the issuer's signing keys are unavailable: {0}")]
    KeysUnavailable(FetchError),
}

impl Error {
    /// Whether the token expired (as opposed to being otherwise invalid).
    pub fn is_expired(&self) -> bool {
        matches!(self, Error::Expired)
    }
}

/// Why discovery or the JWKS could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed: connection refused, timeout, TLS.
    #[error("GET {url} failed: {reason}")]
    Http {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The issuer answered with something other than 200.
    #[error("GET {url} answered {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The document is not what it should be (not JSON, too large, no `jwks_uri`, no
    /// usable key).
    #[error("{url} is not a valid document: {reason}")]
    Document {
        /// The URL requested.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The discovery document names another issuer (OpenID Connect Discovery §4.3).
    #[error("discovery names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The `issuer` in the document.
        found: String,
    },
    /// A fetch was attempted too recently to try again (the refetch rate limit).
    #[error("the last attempt failed less than the refetch interval ago")]
    CoolingDown,
}

/// Why a [`ValidatorBuilder`](crate::ValidatorBuilder) could not build a validator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The issuer is not an absolute http(s) URL without query or fragment.
    #[error("issuer {0:?} is not an absolute http(s) URL without query or fragment")]
    Issuer(String),
    /// Plain http to a host that is not loopback, without `allow_http(true)`.
    #[error("{0:?} uses plain http; use https, or allow_http(true) on a trusted network")]
    InsecureHttp(String),
    /// The audience is empty.
    #[error("the audience must not be empty")]
    Audience,
    /// A JWKS URI given with `jwks_uri` is not an absolute http(s) URL.
    #[error("jwks_uri {0:?} is not an absolute http(s) URL")]
    JwksUri(String),
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("the HTTP client could not be built: {0}")]
    HttpClient(String),
}
