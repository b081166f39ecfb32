//! JWTs Latchkey issues: access tokens (RFC 9068) and ID tokens (OIDC Core §2), signed with
//! the key ring's active key; and verification of its own access tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use crate::clock::UnixTime;
use crate::keys::{KeyError, KeyView, LoadedKey};
use crate::oauth::KeyAlg;

/// `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// One audience or several; serialised as a string when there is one (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_list(mut list: Vec<String>) -> Audience {
        if list.len() == 1 {
            Audience::One(list.remove(0))
        } else {
            Audience::Many(list)
        }
    }

    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

/// RFC 9068 §2.2 claims, plus `grant_id` linking a user token to its grant (revocation).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

impl AccessClaims {
    /// Whether a user stands behind the token (false for client_credentials).
    pub fn has_user(&self) -> bool {
        self.sub != self.client_id
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

/// OIDC Core §2 ID token claims, with the standard claims the scope released.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_hash: Option<String>,
    #[serde(flatten)]
    pub profile: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// Signs `claims` as a compact JWS with `key` (RFC 7515 §7.1).
pub fn sign(key: &LoadedKey, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
    let header = Header {
        alg: key.alg.as_str(),
        typ,
        kid: &key.kid,
    };
    let header = serde_json::to_vec(&header).map_err(|_| KeyError::Sign)?;
    let claims = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
    let mut out = String::with_capacity(600);
    URL_SAFE_NO_PAD.encode_string(header, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut out);
    let signature = key.sign(out.as_bytes())?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut out);
    Ok(out)
}

/// `at_hash` / `c_hash` (OIDC Core §3.1.3.6): the left half of the hash the JWS alg uses,
/// SHA-512 for Ed25519.
pub fn half_hash(alg: KeyAlg, value: &str) -> String {
    let digest: Vec<u8> = match alg {
        KeyAlg::RS256 | KeyAlg::ES256 => Sha256::digest(value.as_bytes()).to_vec(),
        KeyAlg::EdDSA => Sha512::digest(value.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    Expired,
    Invalid,
}

/// The registered claims `verify` judges itself (the caller's type may not carry them).
#[derive(Deserialize)]
struct Registered {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    exp: Option<serde_json::Number>,
    #[serde(default)]
    nbf: Option<serde_json::Number>,
}

/// Verifies a JWT signed by one of our published keys: header (`typ`, known `kid`, the
/// key's own `alg`, no `crit`), signature, `iss` and `nbf`. Returns the claims and `exp`,
/// which each caller judges. The signature is checked before the claims are parsed, and
/// each part is decoded once.
fn verify<T: serde::de::DeserializeOwned>(
    token: &str,
    typ_ok: fn(Option<&str>) -> bool,
    keys: &KeyView,
    issuer: &str,
    now: UnixTime,
) -> Result<(T, i64), Rejection> {
    if token.len() > 16 * 1024 {
        return Err(Rejection::Invalid);
    }
    // RFC 7515 §7.1: exactly three parts.
    let (message, signature) = token.rsplit_once('.').ok_or(Rejection::Invalid)?;
    let (header_b64, claims_b64) = message.split_once('.').ok_or(Rejection::Invalid)?;
    if claims_b64.contains('.') {
        return Err(Rejection::Invalid);
    }
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| Rejection::Invalid)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header_bytes).map_err(|_| Rejection::Invalid)?;
    if header.contains_key("crit") || !typ_ok(header.get("typ").and_then(|v| v.as_str())) {
        return Err(Rejection::Invalid);
    }
    let kid = header
        .get("kid")
        .and_then(|v| v.as_str())
        .ok_or(Rejection::Invalid)?;
    let key = keys.key(kid).ok_or(Rejection::Invalid)?;
    if header.get("alg").and_then(|v| v.as_str()) != Some(key.alg.as_str()) {
        return Err(Rejection::Invalid);
    }
    let valid =
        jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.decoding, key.jwt_alg())
            .map_err(|_| Rejection::Invalid)?;
    if !valid {
        return Err(Rejection::Invalid);
    }
    let claims_bytes = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .map_err(|_| Rejection::Invalid)?;
    let reg: Registered = serde_json::from_slice(&claims_bytes).map_err(|_| Rejection::Invalid)?;
    if reg.iss.as_deref() != Some(issuer) {
        return Err(Rejection::Invalid);
    }
    let exp = reg.exp.and_then(|n| n.as_i64()).ok_or(Rejection::Invalid)?;
    let nbf = match reg.nbf {
        None => None,
        Some(n) => Some(n.as_i64().ok_or(Rejection::Invalid)?),
    };
    if nbf.is_some_and(|nbf| nbf > now) {
        return Err(Rejection::Invalid);
    }
    let claims: T = serde_json::from_slice(&claims_bytes).map_err(|_| Rejection::Invalid)?;
    Ok((claims, exp))
}

fn is_at_jwt(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    })
}

fn is_plain_jwt(typ: Option<&str>) -> bool {
    typ.is_none_or(|t| t.eq_ignore_ascii_case("JWT"))
}

/// Verifies one of our access tokens (RFC 9068 §4, minus the audience, which the caller
/// checks if it cares).
pub fn verify_access_token(
    token: &str,
    keys: &KeyView,
    issuer: &str,
    now: UnixTime,
) -> Result<AccessClaims, Rejection> {
    let (claims, exp) = verify::<AccessClaims>(token, is_at_jwt, keys, issuer, now)?;
    // Dead the second it expires: no leeway for our own tokens.
    if now >= exp {
        return Err(Rejection::Expired);
    }
    Ok(claims)
}

/// Verifies one of our ID tokens, e.g. an `id_token_hint`. Expiry is reported, not
/// enforced, since a hint may be an expired token (OIDC RP-Initiated Logout §2).
pub fn verify_id_token(
    token: &str,
    keys: &KeyView,
    issuer: &str,
    now: UnixTime,
) -> Result<(IdClaims, bool), Rejection> {
    let (claims, exp) = verify::<IdClaims>(token, is_plain_jwt, keys, issuer, now)?;
    Ok((claims, now >= exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://issuer.example";
    const NOW: i64 = 1_750_000_000;

    /// A key view over a throwaway SQLite store, as the server holds it.
    async fn view(alg: KeyAlg) -> (tempfile::TempDir, std::sync::Arc<KeyView>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let settings = crate::store::PoolSettings {
            max_connections: 1,
            acquire_timeout: std::time::Duration::from_secs(3),
        };
        let store = crate::store::connect(&url, settings).await.unwrap();
        store.migrate().await.unwrap();
        let ring = crate::keys::KeyRing::open(store.as_ref(), alg, 86400, NOW)
            .await
            .unwrap();
        (dir, ring.view(NOW).unwrap())
    }

    /// A JWS with any header and claims, signed by `key`.
    fn forge(key: &LoadedKey, header: serde_json::Value, claims: serde_json::Value) -> String {
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = key.sign(out.as_bytes()).unwrap();
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig));
        out
    }

    #[tokio::test]
    async fn access_token_verification_rules() {
        use serde_json::json;
        for alg in KeyAlg::ALL {
            let (_dir, keys) = view(alg).await;
            let key = &keys.signing;
            let header = json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": key.kid });
            let claims = json!({
                "iss": ISS, "sub": "s", "aud": "a", "exp": NOW + 60, "iat": NOW, "jti": "j",
                "client_id": "c", "scope": "read",
            });
            let with = |k: &str, v: serde_json::Value| {
                let mut c = claims.clone();
                c[k] = v;
                c
            };
            let good = forge(key, header.clone(), claims.clone());
            assert!(
                verify_access_token(&good, &keys, ISS, NOW).is_ok(),
                "{alg:?}"
            );
            let mut none = header.clone();
            none["alg"] = json!("none");
            let mut crit = header.clone();
            crit["crit"] = json!(["exp"]);
            let mut typ = header.clone();
            typ["typ"] = json!("JWT");
            let mut kid = header.clone();
            kid["kid"] = json!("unknown");
            let (msg, _) = good.rsplit_once('.').unwrap();
            let other = forge(key, header.clone(), with("sub", json!("t")));
            let (_, other_sig) = other.rsplit_once('.').unwrap();
            for (rule, token, now, want) in [
                (
                    "signature of other claims",
                    format!("{msg}.{other_sig}"),
                    NOW,
                    Rejection::Invalid,
                ),
                ("four parts", format!("{good}.x"), NOW, Rejection::Invalid),
                ("two parts", msg.to_owned(), NOW, Rejection::Invalid),
                (
                    "alg none",
                    forge(key, none, claims.clone()),
                    NOW,
                    Rejection::Invalid,
                ),
                (
                    "crit",
                    forge(key, crit, claims.clone()),
                    NOW,
                    Rejection::Invalid,
                ),
                (
                    "typ JWT",
                    forge(key, typ, claims.clone()),
                    NOW,
                    Rejection::Invalid,
                ),
                (
                    "unknown kid",
                    forge(key, kid, claims.clone()),
                    NOW,
                    Rejection::Invalid,
                ),
                (
                    "other issuer",
                    forge(key, header.clone(), with("iss", json!("x"))),
                    NOW,
                    Rejection::Invalid,
                ),
                (
                    "no exp",
                    forge(key, header.clone(), with("exp", json!(null))),
                    NOW,
                    Rejection::Invalid,
                ),
                (
                    "nbf ahead",
                    forge(key, header.clone(), with("nbf", json!(NOW + 5))),
                    NOW,
                    Rejection::Invalid,
                ),
                ("expired", good.clone(), NOW + 60, Rejection::Expired),
            ] {
                assert_eq!(
                    verify_access_token(&token, &keys, ISS, now).err(),
                    Some(want),
                    "{alg:?}: {rule}"
                );
            }
        }
    }

    #[test]
    fn half_hash_matches_oidc_example() {
        // OIDC Core A.3 uses RS256: at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        assert_eq!(
            half_hash(KeyAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn audience_serialises_as_string_when_single() {
        assert_eq!(
            serde_json::to_string(&Audience::from_list(vec!["a".into()])).unwrap(),
            "\"a\""
        );
        assert_eq!(
            serde_json::to_string(&Audience::from_list(vec!["a".into(), "b".into()])).unwrap(),
            "[\"a\",\"b\"]"
        );
    }
}
