//! Signing keys: generation, staged and emergency rotation, retirement, and the key ring a
//! server signs and verifies with (OIDC Core §10.1.1; RFC 7517). Keys live in the database
//! so replicas share them; each is parsed once when loaded.
//!
//! - `material`: generating a key and parsing one to sign and verify with;
//! - `ring`: which key signs, which are published, and the JWKS, at a given moment;
//! - `rotation`: keeping a signing key, staged and emergency rotation, retirement.

mod material;
mod ring;
mod rotation;

pub use material::{LoadedKey, generate, jwt_alg};
pub use ring::{KeyRing, KeyState, KeyView, states};
pub use rotation::{ensure_signing_key, retire, rotate, rotate_if_due, staging_lead};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key {0} cannot be parsed")]
    Parse(String),
    #[error("signing failed")]
    Sign,
    #[error("no signing key is available")]
    NoKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SigningKeyRecord;
    use crate::oauth::KeyAlg;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn rec(kid: &str, activates_at: i64, retired: bool) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.into(),
            alg: KeyAlg::ES256,
            private_der: vec![],
            public_jwk: String::new(),
            created_at: 0,
            activates_at,
            retired_at: retired.then_some(1),
        }
    }

    #[test]
    fn states_follow_the_rotation_schedule() {
        let recs = vec![
            rec("a", 0, false),
            rec("b", 100, false),
            rec("c", 500, false),
            rec("x", 50, true),
        ];
        let st = states(&recs, 200, 1000);
        assert_eq!(st[0], KeyState::Retiring { until: 1100 });
        assert_eq!(st[1], KeyState::Active);
        assert_eq!(st[2], KeyState::Next);
        assert_eq!(st[3], KeyState::Retired);
        let later = states(&recs, 2000, 1000);
        assert_eq!(later[0], KeyState::Retired);
        assert_eq!(later[1], KeyState::Retired);
        assert_eq!(later[2], KeyState::Active);
    }

    #[test]
    fn generated_keys_sign_and_verify_with_their_jwk() {
        for alg in KeyAlg::ALL {
            let rec = generate(alg, 0, 0).unwrap();
            let key = LoadedKey::parse(&rec).unwrap();
            let header = jsonwebtoken::Header {
                kid: Some(rec.kid.clone()),
                ..jsonwebtoken::Header::new(key.jwt_alg())
            };
            let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
            let c = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
            let input = format!("{h}.{c}");
            let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap());
            let ok =
                jsonwebtoken::crypto::verify(&sig, input.as_bytes(), &key.decoding, key.jwt_alg())
                    .unwrap();
            assert!(ok, "{alg:?}");
            assert!(
                !rec.public_jwk.contains("\"d\""),
                "{alg:?} JWK leaks a private member"
            );
        }
    }
}
