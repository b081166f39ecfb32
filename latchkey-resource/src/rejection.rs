//! RFC 6750 §3: how a resource server turns a request away, and where it finds the token
//! (§2.1, the Authorization header; query and form tokens are not accepted).

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::error::{Error, FetchError};

/// Why a request was turned away, and the answer RFC 6750 §3 prescribes for it.
///
/// | variant | status | `WWW-Authenticate` |
/// |---|---|---|
/// | `MissingToken` | 401 | `Bearer` |
/// | `InvalidRequest` | 400 | `Bearer error="invalid_request", error_description="..."` |
/// | `InvalidToken` | 401 | `Bearer error="invalid_token", error_description="..."` (says *expired* when it did) |
/// | `InsufficientScope` | 403 | `Bearer error="insufficient_scope", error_description="...", scope="..."` |
/// | `UserRequired` | 403 | `Bearer error="insufficient_scope", error_description="..."` |
/// | `Unavailable` | 503 | none: the issuer's keys could not be read |
/// | `MissingValidator` | 500 | none: the extractor found no [`Validator`](crate::Validator) |
///
/// With the `axum` feature it implements `IntoResponse`; elsewhere use
/// [`Rejection::to_response`].
///
/// ```
/// use latchkey_resource::Rejection;
///
/// let res = Rejection::InsufficientScope { scope: Some("write".into()) }.to_response::<String>();
/// assert_eq!(res.status(), 403);
/// assert_eq!(
///     res.headers()["www-authenticate"],
///     r#"Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="write""#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The request carries no bearer token (§3.1: no error code).
    #[error("the request has no bearer token")]
    MissingToken,
    /// The request is malformed, e.g. two Authorization headers (§3.1 `invalid_request`).
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The token is malformed, expired, revoked by rotation, or otherwise invalid (§3.1
    /// `invalid_token`).
    #[error("{0}")]
    InvalidToken(Error),
    /// The token lacks a scope the resource requires (§3.1 `insufficient_scope`).
    #[error("the token lacks a required scope")]
    InsufficientScope {
        /// The scope required, sent in the challenge's `scope` attribute.
        scope: Option<String>,
    },
    /// The resource is for users, and the token was issued to a client acting for itself
    /// (client_credentials): `insufficient_scope`, as a user-bound token would be needed.
    #[error("this resource requires a token issued to a user")]
    UserRequired,
    /// The issuer's keys could not be read, so the token could not be judged.
    #[error("the issuer's signing keys are unavailable: {0}")]
    Unavailable(FetchError),
    /// An extractor ran without a validator in reach: a wiring mistake, answered with 500.
    #[error("no Validator was installed for this route")]
    MissingValidator,
}

impl From<Error> for Rejection {
    fn from(e: Error) -> Self {
        match e {
            Error::KeysUnavailable(f) => Rejection::Unavailable(f),
            e => Rejection::InvalidToken(e),
        }
    }
}

impl Rejection {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::MissingToken | Rejection::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Rejection::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Rejection::InsufficientScope { .. } | Rejection::UserRequired => StatusCode::FORBIDDEN,
            Rejection::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::MissingValidator => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), if the answer carries one.
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        let challenge = |error: &str, description: &str, scope: Option<&str>| {
            let mut v = format!(
                "Bearer error=\"{error}\", error_description=\"{}\"",
                quotable(description)
            );
            // §3: scope-token characters only; a scope that has others is left out.
            if let Some(s) = scope.filter(|s| !s.is_empty() && s.bytes().all(is_scope_char)) {
                v.push_str(&format!(", scope=\"{s}\""));
            }
            v
        };
        let value = match self {
            Rejection::MissingToken => "Bearer".to_owned(),
            Rejection::InvalidRequest(d) => challenge("invalid_request", d, None),
            Rejection::InvalidToken(e) => challenge("invalid_token", &e.to_string(), None),
            Rejection::InsufficientScope { scope } => {
                challenge("insufficient_scope", &self.to_string(), scope.as_deref())
            }
            Rejection::UserRequired => challenge("insufficient_scope", &self.to_string(), None),
            Rejection::Unavailable(_) | Rejection::MissingValidator => return None,
        };
        HeaderValue::from_str(&value).ok()
    }

    /// The whole answer: status and challenge, with an empty body.
    pub fn to_response<B: Default>(&self) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = self.status();
        if let Some(v) = self.www_authenticate() {
            res.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
        res
    }
}

/// The bearer token of a request's Authorization header (RFC 6750 §2.1).
///
/// No header, or another scheme such as Basic, is [`Rejection::MissingToken`]; two
/// Authorization headers are [`Rejection::InvalidRequest`]; a value that is not a
/// `b64token` is [`Rejection::InvalidToken`].
///
/// ```
/// use http::HeaderMap;
/// use latchkey_resource::{Rejection, bearer_token};
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(bearer_token(&headers), Err(Rejection::MissingToken));
/// headers.insert("authorization", "Bearer eyJhbGciOi.eyJzdWIi.c2ln".parse().unwrap());
/// assert_eq!(bearer_token(&headers), Ok("eyJhbGciOi.eyJzdWIi.c2ln"));
/// ```
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Rejection::MissingToken);
    };
    if values.next().is_some() {
        return Err(Rejection::InvalidRequest(
            "more than one Authorization header",
        ));
    }
    let malformed = || Rejection::InvalidToken(Error::Malformed);
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    // RFC 9110 §11.1: the scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(Rejection::MissingToken);
    }
    let token = token.trim_matches(' ');
    // RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if ok { Ok(token) } else { Err(malformed()) }
}

/// RFC 6750 §3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E; anything else becomes `?`.
fn quotable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == ' ' || (c.is_ascii() && is_scope_char(c as u8)) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_token_rules() {
        let bad = Err(Rejection::InvalidToken(Error::Malformed));
        for (rule, values, want) in [
            ("no header", vec![], Err(Rejection::MissingToken)),
            (
                "Basic is not bearer",
                vec!["Basic YTpi"],
                Err(Rejection::MissingToken),
            ),
            ("scheme alone", vec!["Bearer"], bad.clone()),
            ("empty token", vec!["Bearer "], bad.clone()),
            ("bad characters", vec!["Bearer a,b"], bad.clone()),
            ("quotes", vec!["Bearer \"abc\""], bad.clone()),
            (
                "two headers",
                vec!["Bearer a", "Bearer b"],
                Err(Rejection::InvalidRequest(
                    "more than one Authorization header",
                )),
            ),
            (
                "case-insensitive scheme",
                vec!["bEaReR abc.def"],
                Ok("abc.def"),
            ),
            ("padding allowed", vec!["Bearer ab+/c=="], Ok("ab+/c==")),
            ("extra spaces", vec!["Bearer   abc  "], Ok("abc")),
        ] {
            assert_eq!(bearer_token(&headers(&values)), want, "{rule}");
        }
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let h = |r: Rejection| r.www_authenticate().map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(h(Rejection::MissingToken).as_deref(), Some("Bearer"));
        assert_eq!(
            h(Rejection::InvalidToken(Error::Expired)).as_deref(),
            Some(r#"Bearer error="invalid_token", error_description="the access token expired""#)
        );
        assert_eq!(
            h(Rejection::InsufficientScope {
                scope: Some("a\"b".into())
            })
            .as_deref(),
            Some(
                r#"Bearer error="insufficient_scope", error_description="the token lacks a required scope""#
            )
        );
        assert_eq!(
            h(Rejection::UserRequired).as_deref(),
            Some(
                r#"Bearer error="insufficient_scope", error_description="this resource requires a token issued to a user""#
            )
        );
        assert_eq!(h(Rejection::Unavailable(FetchError::CoolingDown)), None);
        for (r, status) in [
            (Rejection::MissingToken, 401),
            (Rejection::InvalidRequest("x"), 400),
            (Rejection::InvalidToken(Error::Signature), 401),
            (Rejection::InsufficientScope { scope: None }, 403),
            (Rejection::UserRequired, 403),
            (Rejection::Unavailable(FetchError::CoolingDown), 503),
            (Rejection::MissingValidator, 500),
        ] {
            assert_eq!(r.to_response::<()>().status(), status, "{r:?}");
        }
    }

    #[test]
    fn every_token_error_is_a_valid_description() {
        for e in [
            Error::Malformed,
            Error::WrongType,
            Error::UnsupportedCritical,
            Error::Algorithm,
            Error::UnknownKey,
            Error::Signature,
            Error::Issuer,
            Error::Audience,
            Error::Expired,
            Error::NotYetValid,
            Error::Claim("exp"),
        ] {
            let d = e.to_string();
            assert_eq!(quotable(&d), d, "{e:?}");
            assert!(Rejection::InvalidToken(e).www_authenticate().is_some());
        }
    }
}
