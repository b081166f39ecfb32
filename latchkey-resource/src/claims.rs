//! The claims of a validated access token (RFC 9068 §2.2), typed, with the raw set kept
//! for anything else the issuer put there.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::rejection::Rejection;

/// The claims of an access token that passed [`Validator::validate`](crate::Validator::validate).
///
/// Only the validator builds one, so holding a `Claims` means the signature, `typ`, `iss`,
/// `aud`, `exp` and `nbf` were checked.
///
/// ```no_run
/// # async fn run(validator: latchkey_resource::Validator, token: &str) -> Result<(), latchkey_resource::Error> {
/// let claims = validator.validate(token).await?;
/// if claims.has_user() {
///     println!("user {} via client {}", claims.sub(), claims.client_id());
/// } else {
///     println!("client {} on its own behalf", claims.client_id());
/// }
/// if claims.has_scope("write") { /* ... */ }
/// let tenant: Option<&str> = claims.raw().get("tenant").and_then(|v| v.as_str());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    iss: String,
    sub: String,
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    nbf: Option<i64>,
    jti: String,
    client_id: String,
    scopes: BTreeSet<String>,
    raw: Map<String, Value>,
}

/// What the claims must say, and when.
pub(crate) struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub leeway: i64,
    pub now: i64,
}

impl Claims {
    /// Checks the claims of a token whose signature verified (RFC 9068 §4, RFC 7519 §4.1).
    pub(crate) fn check(raw: Map<String, Value>, expect: &Expect<'_>) -> Result<Claims, Error> {
        let string = |name: &'static str| -> Result<String, Error> {
            match raw.get(name).and_then(Value::as_str) {
                Some(s) if !s.is_empty() => Ok(s.to_owned()),
                _ => Err(Error::Claim(name)),
            }
        };
        let time = |name: &'static str| -> Result<Option<i64>, Error> {
            raw.get(name)
                .map(|v| numeric_date(v).ok_or(Error::Claim(name)))
                .transpose()
        };
        // RFC 9068 §4: iss must match exactly, aud must contain ours.
        let iss = string("iss").map_err(|_| Error::Issuer)?;
        if iss != expect.issuer {
            return Err(Error::Issuer);
        }
        let aud = match raw.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|a| a.as_str().map(str::to_owned).ok_or(Error::Claim("aud")))
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(Error::Audience),
        };
        if !aud.iter().any(|a| a == expect.audience) {
            return Err(Error::Audience);
        }
        // RFC 7519 §4.1.4, §4.1.5: exp required here, nbf optional; both with leeway.
        let exp = time("exp")?.ok_or(Error::Claim("exp"))?;
        if expect.now >= exp.saturating_add(expect.leeway) {
            return Err(Error::Expired);
        }
        let nbf = time("nbf")?;
        if nbf.is_some_and(|nbf| nbf > expect.now.saturating_add(expect.leeway)) {
            return Err(Error::NotYetValid);
        }
        // RFC 9068 §2.2: sub, client_id, iat and jti are required.
        let iat = time("iat")?.ok_or(Error::Claim("iat"))?;
        let scopes = match raw.get("scope") {
            None => BTreeSet::new(),
            Some(Value::String(s)) => s
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(_) => return Err(Error::Claim("scope")),
        };
        Ok(Claims {
            sub: string("sub")?,
            client_id: string("client_id")?,
            jti: string("jti")?,
            iss,
            aud,
            exp,
            iat,
            nbf,
            scopes,
            raw,
        })
    }

    /// `sub`: the user's id, or the client's id for a client_credentials token.
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// `client_id`: the client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whether a user stands behind the token: `sub` differs from `client_id`.
    /// `false` for client_credentials tokens, where the client acts for itself.
    pub fn has_user(&self) -> bool {
        self.sub != self.client_id
    }

    /// The user's id (`sub`) when a user stands behind the token.
    pub fn user_id(&self) -> Option<&str> {
        self.has_user().then_some(self.sub.as_str())
    }

    /// The granted scopes (`scope`, split on spaces).
    pub fn scopes(&self) -> &BTreeSet<String> {
        &self.scopes
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// `iss`: the issuer, equal to the validator's.
    pub fn iss(&self) -> &str {
        &self.iss
    }

    /// `aud`: every audience of the token; the validator's is among them.
    pub fn aud(&self) -> &[String] {
        &self.aud
    }

    /// `exp`, seconds since the epoch.
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// `iat`, seconds since the epoch.
    pub fn iat(&self) -> i64 {
        self.iat
    }

    /// `nbf`, if the token has one.
    pub fn nbf(&self) -> Option<i64> {
        self.nbf
    }

    /// `jti`: the token's unique id.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// Every claim as sent, including ones this type does not model (`auth_time`,
    /// `groups`, `roles`, custom claims).
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// `Ok` if `scope` was granted, else the RFC 6750 §3.1 `insufficient_scope` rejection
    /// (403) naming it.
    ///
    /// ```no_run
    /// use latchkey_resource::{Claims, Rejection};
    ///
    /// fn delete_report(claims: &Claims) -> Result<(), Rejection> {
    ///     claims.require_scope("reports:write")?;
    ///     // ...
    ///     Ok(())
    /// }
    /// ```
    pub fn require_scope(&self, scope: &str) -> Result<(), Rejection> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Rejection::InsufficientScope {
                scope: Some(scope.to_owned()),
            })
        }
    }

    /// `Ok` if a user stands behind the token, else [`Rejection::UserRequired`]: 403
    /// `insufficient_scope`, so a client_credentials token cannot reach user data.
    pub fn require_user(&self) -> Result<(), Rejection> {
        if self.has_user() {
            Ok(())
        } else {
            Err(Rejection::UserRequired)
        }
    }
}

/// A NumericDate (RFC 7519 §2): a JSON number, possibly fractional; strings are refused.
fn numeric_date(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite())
            // Saturating float-to-int conversion; fractions are truncated toward the past.
            .map(|f| f.floor() as i64)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_000_000;

    fn base() -> Value {
        json!({
            "iss": "https://issuer.example", "sub": "user-1", "aud": "https://api.example",
            "exp": NOW + 60, "iat": NOW, "jti": "j1", "client_id": "app", "scope": "read write"
        })
    }

    fn check(v: Value, leeway: i64) -> Result<Claims, Error> {
        let Value::Object(map) = v else {
            panic!("object")
        };
        let e = Expect {
            issuer: "https://issuer.example",
            audience: "https://api.example",
            leeway,
            now: NOW,
        };
        Claims::check(map, &e)
    }

    /// The base claims with `name` set to `value`, or removed when `value` is `None`.
    fn with(name: &str, value: Option<Value>) -> Value {
        let mut v = base();
        let m = v.as_object_mut().unwrap();
        match value {
            Some(x) => m.insert(name.into(), x),
            None => m.remove(name),
        };
        v
    }

    #[test]
    fn claim_rules() {
        use Error::*;
        let s = |v: &str| Some(json!(v));
        let n = |v: i64| Some(json!(v));
        let late = Some(json!(NOW as f64 + 1.5));
        let two = Some(json!(["x", "https://api.example"]));
        #[rustfmt::skip]
        let cases = [
            ("other iss", "iss", s("https://evil.example"), 0, Err(Issuer)),
            ("iss with a trailing slash", "iss", s("https://issuer.example/"), 0, Err(Issuer)),
            ("no iss", "iss", None, 0, Err(Issuer)),
            ("other aud", "aud", s("https://other.example"), 0, Err(Audience)),
            ("aud in a list", "aud", two, 0, Ok(())),
            ("no aud", "aud", None, 0, Err(Audience)),
            ("expired", "exp", n(NOW), 0, Err(Expired)),
            ("expired within leeway", "exp", n(NOW - 29), 30, Ok(())),
            ("expired past leeway", "exp", n(NOW - 30), 30, Err(Expired)),
            ("no exp", "exp", None, 0, Err(Claim("exp"))),
            ("exp as a string", "exp", s("9999999999"), 0, Err(Claim("exp"))),
            ("fractional exp", "exp", late, 0, Ok(())),
            ("future nbf", "nbf", n(NOW + 1), 0, Err(NotYetValid)),
            ("nbf within leeway", "nbf", n(NOW + 30), 30, Ok(())),
            ("nbf as a string", "nbf", s("0"), 0, Err(Claim("nbf"))),
            ("no sub", "sub", None, 0, Err(Claim("sub"))),
            ("empty client_id", "client_id", s(""), 0, Err(Claim("client_id"))),
            ("no iat", "iat", None, 0, Err(Claim("iat"))),
            ("no jti", "jti", None, 0, Err(Claim("jti"))),
            ("scope not a string", "scope", Some(json!(["read"])), 0, Err(Claim("scope"))),
            ("no scope", "scope", None, 0, Ok(())),
        ];
        assert!(check(base(), 0).is_ok());
        for (rule, name, value, leeway, want) in cases {
            assert_eq!(check(with(name, value), leeway).map(|_| ()), want, "{rule}");
        }
    }

    #[test]
    fn typed_claims() {
        let c = check(base(), 0).unwrap();
        assert_eq!(c.sub(), "user-1");
        assert!(c.has_user());
        assert_eq!(c.user_id(), Some("user-1"));
        assert_eq!(
            c.scopes().iter().map(String::as_str).collect::<Vec<_>>(),
            ["read", "write"]
        );
        assert!(c.require_scope("read").is_ok());
        assert_eq!(
            c.require_scope("admin"),
            Err(Rejection::InsufficientScope {
                scope: Some("admin".into())
            })
        );
        let client = check(with("sub", Some(json!("app"))), 0).unwrap();
        assert!(!client.has_user());
        assert_eq!(client.user_id(), None);
        assert!(check(with("scope", None), 0).unwrap().scopes().is_empty());
        assert_eq!(client.require_user(), Err(Rejection::UserRequired));
    }
}
