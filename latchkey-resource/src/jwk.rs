//! Published keys (RFC 7517): which JWKs are usable for verifying access tokens, and with
//! which single algorithm each one. The JWK decides the algorithm, never the token
//! (RFC 8725 §3.1); symmetric keys are never used.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// A public key and the one algorithm it verifies.
pub(crate) struct VerifyKey {
    pub alg: Algorithm,
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyKey({:?})", self.alg)
    }
}

/// The keys of one JWKS document, by `kid`.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, Arc<VerifyKey>>,
}

impl KeySet {
    /// Reads a JWKS document, skipping keys that cannot verify access tokens (RFC 7517 §5:
    /// members that are not understood are ignored). Errors only if the document is not a
    /// JWK Set at all.
    pub fn parse(doc: &[u8]) -> Result<KeySet, String> {
        let doc: Value = serde_json::from_slice(doc).map_err(|_| "not JSON".to_owned())?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| "no \"keys\" array".to_owned())?;
        let mut set = KeySet::default();
        for jwk in keys {
            let Some((kid, key)) = usable(jwk) else {
                tracing::debug!(kid = ?jwk.get("kid"), "skipping a JWK that cannot verify access tokens");
                continue;
            };
            if set.keys.contains_key(&kid) {
                tracing::warn!(%kid, "JWKS repeats a kid; keeping the first key");
                continue;
            }
            set.keys.insert(kid, Arc::new(key));
        }
        Ok(set)
    }

    pub fn get(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        self.keys.get(kid).cloned()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The algorithm a JWK verifies, from its `kty`, `crv` and `alg`; `None` when the key is
/// symmetric, of an unknown type, or its `alg` contradicts its type.
pub(crate) fn algorithm_of(jwk: &Value) -> Option<Algorithm> {
    let s = |name: &str| jwk.get(name).and_then(Value::as_str);
    let declared = match jwk.get("alg") {
        None => None,
        Some(v) => Some(v.as_str()?),
    };
    let allowed: &[Algorithm] = match (s("kty")?, s("crv")) {
        ("RSA", _) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        ("EC", Some("P-256")) => &[Algorithm::ES256],
        ("EC", Some("P-384")) => &[Algorithm::ES384],
        ("OKP", Some("Ed25519")) => &[Algorithm::EdDSA],
        // "oct" (HMAC) and anything unknown: never.
        _ => return None,
    };
    match declared {
        // Without `alg`, the type's conventional algorithm (RS256 for RSA).
        None => allowed.first().copied(),
        Some(name) => {
            let alg = name.parse::<Algorithm>().ok()?;
            allowed.contains(&alg).then_some(alg)
        }
    }
}

/// A JWK's `kid` and verifying key, if it is a signing key we can use.
fn usable(jwk: &Value) -> Option<(String, VerifyKey)> {
    let kid = jwk.get("kid")?.as_str().filter(|k| !k.is_empty())?;
    // RFC 7517 §4.2, §4.3: a key published for encryption is not for us.
    if jwk.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return None;
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verify = ops
            .as_array()?
            .iter()
            .any(|op| op.as_str() == Some("verify"));
        if !verify {
            return None;
        }
    }
    let alg = algorithm_of(jwk)?;
    let parsed: Jwk = serde_json::from_value(jwk.clone()).ok()?;
    let decoding = DecodingKey::from_jwk(&parsed).ok()?;
    Some((kid.to_owned(), VerifyKey { alg, decoding }))
}

/// `max-age` of a Cache-Control header, in seconds; `Some(0)` for `no-cache`/`no-store`
/// (RFC 9111 §5.2.2).
pub(crate) fn max_age(cache_control: Option<&str>) -> Option<i64> {
    let mut age = None;
    for directive in cache_control?.split(',') {
        let directive = directive.trim();
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            age = value.and_then(|v| v.parse::<u32>().ok()).map(i64::from);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_jwk_decides_the_algorithm() {
        let rsa = |alg: Option<&str>| {
            let mut k = json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
            if let Some(a) = alg {
                k["alg"] = json!(a);
            }
            k
        };
        for (rule, jwk, want) in [
            (
                "RSA without alg is RS256",
                rsa(None),
                Some(Algorithm::RS256),
            ),
            ("RSA with RS256", rsa(Some("RS256")), Some(Algorithm::RS256)),
            ("RSA with PS384", rsa(Some("PS384")), Some(Algorithm::PS384)),
            ("RSA claiming HS256", rsa(Some("HS256")), None),
            ("RSA claiming none", rsa(Some("none")), None),
            ("RSA claiming ES256", rsa(Some("ES256")), None),
            (
                "RSA with a non-string alg",
                rsa(None).tap(|k| k["alg"] = json!(1)),
                None,
            ),
            (
                "P-256",
                json!({"kty": "EC", "crv": "P-256"}),
                Some(Algorithm::ES256),
            ),
            (
                "P-256 claiming ES384",
                json!({"kty": "EC", "crv": "P-256", "alg": "ES384"}),
                None,
            ),
            (
                "P-384",
                json!({"kty": "EC", "crv": "P-384"}),
                Some(Algorithm::ES384),
            ),
            (
                "P-521 unsupported",
                json!({"kty": "EC", "crv": "P-521"}),
                None,
            ),
            ("EC without crv", json!({"kty": "EC"}), None),
            (
                "Ed25519",
                json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA"}),
                Some(Algorithm::EdDSA),
            ),
            (
                "X25519 is not for signing",
                json!({"kty": "OKP", "crv": "X25519"}),
                None,
            ),
            (
                "oct is never used",
                json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}),
                None,
            ),
            ("no kty", json!({"alg": "RS256"}), None),
        ] {
            assert_eq!(algorithm_of(&jwk), want, "{rule}");
        }
    }

    trait Tap {
        fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
    }
    impl Tap for Value {
        fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
            f(&mut self);
            self
        }
    }

    #[test]
    fn keys_that_cannot_verify_are_skipped() {
        let ed = |kid: &str| json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": kid});
        let doc = json!({"keys": [
            ed("good"),
            ed("").tap(|k| k["kid"] = json!("")),
            ed("enc").tap(|k| k["use"] = json!("enc")),
            ed("ops").tap(|k| k["key_ops"] = json!(["sign"])),
            ed("verify-op").tap(|k| k["key_ops"] = json!(["verify"])),
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
            json!({"kty": "RSA", "kid": "broken"}),
            json!({"kty": "XYZ", "kid": "future"}),
        ]});
        let set = KeySet::parse(&serde_json::to_vec(&doc).unwrap()).unwrap();
        let mut kids: Vec<_> = set.keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["good", "verify-op"]);
        assert!(KeySet::parse(b"[]").is_err());
        assert!(KeySet::parse(b"not json").is_err());
    }

    #[test]
    fn max_age_reads_cache_control() {
        for (header, want) in [
            (Some("public, max-age=300"), Some(300)),
            (Some("max-age=\"60\""), Some(60)),
            (Some("MAX-AGE=5, public"), Some(5)),
            (Some("no-cache, max-age=300"), Some(0)),
            (Some("no-store"), Some(0)),
            (Some("public"), None),
            (Some("max-age=-1"), None),
            (Some("max-age=abc"), None),
            (None, None),
        ] {
            assert_eq!(max_age(header), want, "{header:?}");
        }
    }
}
