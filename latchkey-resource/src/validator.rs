//! The validator: a JWS access token in, checked claims out (RFC 9068 §4, RFC 8725).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::builder::ValidatorBuilder;
use crate::claims::{Claims, Expect};
use crate::clock::Clock;
use crate::error::{ConfigError, Error, FetchError};
use crate::jwks::JwksCache;

/// Longest token accepted; Latchkey's are well under 2 KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Longest `kid` looked up; longer ones are refused before any fetch.
const MAX_KID_BYTES: usize = 256;

/// Validates Latchkey access tokens with the issuer's published keys.
///
/// Cheap to clone (an `Arc` inside); build one per issuer and audience at startup and share
/// it. It reads the issuer's discovery document once, then keeps the JWKS cached:
///
/// * for the response's `Cache-Control: max-age` (5 minutes when absent, at most a day);
/// * refetched when a token names an unknown `kid` — a rotated key — but at most once per
///   [`refetch_interval`](ValidatorBuilder::refetch_interval) (10 s), so tokens with
///   forged kids cannot make it hammer the issuer;
/// * served past `max-age` for up to [`max_stale`](ValidatorBuilder::max_stale) (1 hour)
///   while the issuer cannot be reached.
///
/// Each token must be a compact JWS with `typ: at+jwt`, a `kid` naming a published key,
/// and that key's algorithm as `alg` (the JWK decides: RS*/PS* for RSA, ES256/ES384 for
/// P-256/P-384, EdDSA for Ed25519; `none` and HMAC never); and claims with the configured
/// `iss` exactly, the configured audience in `aud`, `exp` not past and `nbf` not future
/// (both with [`leeway`](ValidatorBuilder::leeway), 30 s), and `sub`, `client_id`, `iat`,
/// `jti` present. `crit` headers are refused; `jku`, `x5u`, `jwk` and `x5c` are ignored.
///
/// ```no_run
/// use latchkey_resource::Validator;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let validator = Validator::new("https://auth.example.com", "https://api.example.com")?;
/// validator.preload().await?; // optional: fail at startup if the issuer is unreachable
///
/// let claims = validator.validate("eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9...").await?;
/// println!("{} with scopes {:?}", claims.sub(), claims.scopes());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: String,
    leeway: i64,
    clock: Clock,
    jwks: JwksCache,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("leeway", &self.inner.leeway)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator for tokens from `issuer` meant for `audience`, with the defaults.
    ///
    /// `issuer` is the issuer identifier exactly as it appears in `iss` (Latchkey's
    /// `issuer` setting, no trailing slash). `audience` is Latchkey's `tokens.audience`
    /// (which defaults to the issuer URL), or the RFC 8707 resource URI the clients ask for.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Validator, ConfigError> {
        Validator::builder(issuer, audience).build()
    }

    /// A builder, to change the leeway, the clock, the cache policy or the HTTP client.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use latchkey_resource::Validator;
    ///
    /// # fn run() -> Result<(), latchkey_resource::ConfigError> {
    /// let validator = Validator::builder("https://auth.example.com", "https://api.example.com/orders")
    ///     .leeway(Duration::from_secs(10))
    ///     .refetch_interval(Duration::from_secs(30))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> ValidatorBuilder {
        ValidatorBuilder::new(issuer.into(), audience.into())
    }

    /// Assembles a validator from checked settings (the builder's last step).
    pub(crate) fn assemble(
        issuer: String,
        audience: String,
        leeway: i64,
        clock: Clock,
        jwks: JwksCache,
    ) -> Validator {
        Validator {
            inner: Arc::new(Inner {
                issuer,
                audience,
                leeway,
                clock,
                jwks,
            }),
        }
    }

    /// The identity of this validator, shared by its clones.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The configured audience.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// Reads discovery (if not done yet) and the JWKS now, ignoring the refetch interval.
    /// Optional: without it the first token triggers the fetch.
    pub async fn preload(&self) -> Result<(), FetchError> {
        self.inner.jwks.refresh_now(self.inner.clock.now()).await
    }

    /// Validates a bearer access token (the value after `Bearer `) and returns its claims.
    ///
    /// Does not check scopes or whether a user is behind the token; see
    /// [`Claims::require_scope`] and [`Claims::require_user`].
    #[tracing::instrument(name = "validate_access_token", skip_all)]
    pub async fn validate(&self, token: &str) -> Result<Claims, Error> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let Jws {
            header,
            payload,
            message,
            signature,
        } = split(token)?;
        // RFC 9068 §4: alg none and HMAC are refused before looking at any key.
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(Error::Malformed)?;
        if alg.eq_ignore_ascii_case("none") || alg.starts_with("HS") {
            return Err(Error::Algorithm);
        }
        // RFC 7515 §4.1.11: we understand no extension, so any `crit` is refused.
        if header.contains_key("crit") {
            return Err(Error::UnsupportedCritical);
        }
        // RFC 9068 §4: typ must be at+jwt (the "application/" prefix may be present).
        let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        if !typ.eq_ignore_ascii_case("at+jwt") {
            return Err(Error::WrongType);
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= MAX_KID_BYTES)
            .ok_or(Error::Malformed)?;
        if signature.is_empty() {
            return Err(Error::Signature);
        }
        let key = inner.jwks.key(kid, now).await?;
        // RFC 8725 §3.1: the key's algorithm, never the one the token would like.
        if alg.parse::<jsonwebtoken::Algorithm>().ok() != Some(key.alg) {
            return Err(Error::Algorithm);
        }
        let verified =
            jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.decoding, key.alg)
                .map_err(|_| Error::Signature)?;
        if !verified {
            return Err(Error::Signature);
        }
        let claims: Map<String, Value> = decode_json(payload)?;
        let expect = Expect {
            issuer: &inner.issuer,
            audience: &inner.audience,
            leeway: inner.leeway,
            now,
        };
        Claims::check(claims, &expect)
    }
}

/// The header, payload segment, signing input and signature segment of a compact JWS
/// (RFC 7515 §7.1). Five segments (a JWE) or any other count is malformed; an empty
/// signature is judged after the header (an `alg: none` token has one).
fn split(token: &str) -> Result<Jws<'_>, Error> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Error::Malformed);
    }
    let (message, signature) = token.rsplit_once('.').ok_or(Error::Malformed)?;
    let (header, payload) = message.split_once('.').ok_or(Error::Malformed)?;
    if payload.contains('.') {
        return Err(Error::Malformed);
    }
    Ok(Jws {
        header: decode_json(header)?,
        payload,
        message,
        signature,
    })
}

/// A compact JWS taken apart, nothing verified yet.
struct Jws<'a> {
    header: Map<String, Value>,
    payload: &'a str,
    /// The signing input: `header.payload` as sent.
    message: &'a str,
    signature: &'a str,
}

fn decode_json(segment: &str) -> Result<Map<String, Value>, Error> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Error::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Error::Malformed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b64(v: &str) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    #[test]
    fn token_shape() {
        let h = b64(r#"{"alg":"RS256"}"#);
        let p = b64("{}");
        for (rule, token, ok) in [
            ("three segments", format!("{h}.{p}.c2ln"), true),
            ("two segments", format!("{h}.{p}"), false),
            ("JWE has five", format!("{h}.a.b.c.d"), false),
            ("empty signature, judged later", format!("{h}.{p}."), true),
            ("header not base64url", format!("{h}!.{p}.c2ln"), false),
            ("padded header", format!("{h}==.{p}.c2ln"), false),
            (
                "header not JSON",
                format!("{}.{p}.c2ln", b64("nope")),
                false,
            ),
            (
                "header not an object",
                format!("{}.{p}.c2ln", b64("[]")),
                false,
            ),
            (
                "too long",
                format!("{h}.{}.c2ln", "a".repeat(MAX_TOKEN_BYTES)),
                false,
            ),
        ] {
            assert_eq!(split(&token).is_ok(), ok, "{rule}");
        }
    }
}
