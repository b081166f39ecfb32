//! One error type for the protocol (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3; OIDC Core §3.1.2.6).
//! The kind fixes the wire code and the HTTP status; the cause is for the log only.

use std::borrow::Cow;
use std::fmt;

/// Every error code Latchkey can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InsufficientScope,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    /// `invalid_request` answered with 405 (wrong HTTP method).
    MethodNotAllowed,
    /// `invalid_request` answered with 404 (no such endpoint).
    NotFound,
    /// Too many failed attempts: refused before any password is hashed.
    TooManyAttempts,
}

impl ErrorKind {
    /// The registered error code sent on the wire.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::MethodNotAllowed | ErrorKind::NotFound => {
                "invalid_request"
            }
            ErrorKind::InvalidClient => "invalid_client",
            ErrorKind::InvalidGrant | ErrorKind::TooManyAttempts => "invalid_grant",
            ErrorKind::UnauthorizedClient => "unauthorized_client",
            ErrorKind::UnsupportedGrantType => "unsupported_grant_type",
            ErrorKind::InvalidScope => "invalid_scope",
            ErrorKind::InvalidTarget => "invalid_target",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::UnsupportedResponseType => "unsupported_response_type",
            ErrorKind::ServerError => "server_error",
            ErrorKind::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::InsufficientScope => "insufficient_scope",
            ErrorKind::LoginRequired => "login_required",
            ErrorKind::ConsentRequired => "consent_required",
            ErrorKind::InteractionRequired => "interaction_required",
            ErrorKind::RequestNotSupported => "request_not_supported",
            ErrorKind::RequestUriNotSupported => "request_uri_not_supported",
        }
    }

    /// The HTTP status when the error is answered directly (not by redirect).
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidClient | ErrorKind::InvalidToken => 401,
            ErrorKind::InsufficientScope | ErrorKind::AccessDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::TooManyAttempts => 429,
            ErrorKind::ServerError => 500,
            ErrorKind::TemporarilyUnavailable => 503,
            ErrorKind::InvalidRequest
            | ErrorKind::InvalidGrant
            | ErrorKind::UnauthorizedClient
            | ErrorKind::UnsupportedGrantType
            | ErrorKind::InvalidScope
            | ErrorKind::InvalidTarget
            | ErrorKind::UnsupportedResponseType
            | ErrorKind::LoginRequired
            | ErrorKind::ConsentRequired
            | ErrorKind::InteractionRequired
            | ErrorKind::RequestNotSupported
            | ErrorKind::RequestUriNotSupported => 400,
        }
    }
}

/// A protocol error: what the client is told, and (separately) why, for the log.
#[derive(Clone, Debug)]
pub struct OAuthError {
    pub kind: ErrorKind,
    pub description: Cow<'static, str>,
    /// Internal cause; logged by the request-line layer, never sent.
    pub cause: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u64>,
    /// The request was not read to its end (an oversized body): the connection must close.
    pub close_connection: bool,
}

macro_rules! constructors {
    ($($name:ident => $kind:ident),* $(,)?) => {
        $(
            pub fn $name(description: impl Into<Cow<'static, str>>) -> Self {
                Self::new(ErrorKind::$kind, description)
            }
        )*
    };
}

impl OAuthError {
    pub fn new(kind: ErrorKind, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            description: description.into(),
            cause: None,
            retry_after: None,
            close_connection: false,
        }
    }

    constructors! {
        invalid_request => InvalidRequest,
        invalid_client => InvalidClient,
        invalid_grant => InvalidGrant,
        unauthorized_client => UnauthorizedClient,
        unsupported_grant_type => UnsupportedGrantType,
        invalid_scope => InvalidScope,
        invalid_target => InvalidTarget,
        access_denied => AccessDenied,
        unsupported_response_type => UnsupportedResponseType,
        invalid_token => InvalidToken,
        insufficient_scope => InsufficientScope,
        login_required => LoginRequired,
        consent_required => ConsentRequired,
        request_not_supported => RequestNotSupported,
        request_uri_not_supported => RequestUriNotSupported,
    }

    /// A fault of ours. The description is always the same generic text.
    pub fn server_error(cause: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::ServerError,
            "the server could not complete the request",
        )
        .with_cause(cause)
    }

    /// The database (or another dependency) is unavailable; retry shortly.
    pub fn temporarily_unavailable(cause: impl fmt::Display) -> Self {
        let mut e = Self::new(
            ErrorKind::TemporarilyUnavailable,
            "the service is temporarily unavailable; retry shortly",
        )
        .with_cause(cause);
        e.retry_after = Some(2);
        e
    }

    pub fn too_many_attempts(retry_after: u64) -> Self {
        let mut e = Self::new(
            ErrorKind::TooManyAttempts,
            "too many failed attempts; try again later",
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    pub fn with_cause(mut self, cause: impl fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.description)
    }
}

impl std::error::Error for OAuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_rfc_code_and_status() {
        use ErrorKind::*;
        for (kind, code, status) in [
            (InvalidRequest, "invalid_request", 400),
            (InvalidClient, "invalid_client", 401),
            (InvalidGrant, "invalid_grant", 400),
            (UnauthorizedClient, "unauthorized_client", 400),
            (UnsupportedGrantType, "unsupported_grant_type", 400),
            (InvalidScope, "invalid_scope", 400),
            (InvalidTarget, "invalid_target", 400),
            (AccessDenied, "access_denied", 403),
            (UnsupportedResponseType, "unsupported_response_type", 400),
            (ServerError, "server_error", 500),
            (TemporarilyUnavailable, "temporarily_unavailable", 503),
            (InvalidToken, "invalid_token", 401),
            (InsufficientScope, "insufficient_scope", 403),
            (LoginRequired, "login_required", 400),
            (ConsentRequired, "consent_required", 400),
            (InteractionRequired, "interaction_required", 400),
            (RequestNotSupported, "request_not_supported", 400),
            (RequestUriNotSupported, "request_uri_not_supported", 400),
            (MethodNotAllowed, "invalid_request", 405),
            (NotFound, "invalid_request", 404),
            (TooManyAttempts, "invalid_grant", 429),
        ] {
            assert_eq!(kind.code(), code, "{kind:?}");
            assert_eq!(kind.status(), status, "{kind:?}");
        }
    }

    #[test]
    fn server_error_never_carries_its_cause_in_the_description() {
        let e = OAuthError::server_error("connection refused to db at 10.0.0.1");
        assert!(!e.description.contains("10.0.0.1"));
        assert_eq!(
            e.cause.as_deref(),
            Some("connection refused to db at 10.0.0.1")
        );
    }
}
