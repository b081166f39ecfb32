//! A signing key: generated, stored as DER, parsed once to sign JWS and verify them.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::clock::UnixTime;
use crate::model::SigningKeyRecord;
use crate::oauth::KeyAlg;

use super::KeyError;

enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A key parsed once: signs JWS and verifies them.
pub struct LoadedKey {
    pub kid: String,
    pub alg: KeyAlg,
    signer: Signer,
    pub decoding: DecodingKey,
    pub jwk: Jwk,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoadedKey({}, {:?})", self.kid, self.alg)
    }
}

impl LoadedKey {
    /// Parses a stored record (private key and public JWK) into a key that signs.
    pub fn parse(rec: &SigningKeyRecord) -> Result<LoadedKey, KeyError> {
        let bad = || KeyError::Parse(rec.kid.clone());
        let signer = match rec.alg {
            KeyAlg::RS256 => {
                Signer::Rsa(RsaKeyPair::from_pkcs8(&rec.private_der).map_err(|_| bad())?)
            }
            KeyAlg::ES256 => Signer::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rec.private_der)
                    .map_err(|_| bad())?,
            ),
            KeyAlg::EdDSA => {
                Signer::Ed25519(Ed25519KeyPair::from_pkcs8(&rec.private_der).map_err(|_| bad())?)
            }
        };
        let jwk: Jwk = serde_json::from_str(&rec.public_jwk).map_err(|_| bad())?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| bad())?;
        Ok(LoadedKey {
            kid: rec.kid.clone(),
            alg: rec.alg,
            signer,
            decoding,
            jwk,
        })
    }

    pub fn jwt_alg(&self) -> Algorithm {
        jwt_alg(self.alg)
    }

    /// Signs `message` (the JWS signing input); ES256 signatures are raw R‖S (RFC 7518 §3.4).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
                    .map_err(|_| KeyError::Sign)?;
                Ok(sig)
            }
            Signer::Ecdsa(k) => Ok(k
                .sign(&SystemRandom::new(), message)
                .map_err(|_| KeyError::Sign)?
                .as_ref()
                .to_vec()),
            Signer::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

pub fn jwt_alg(alg: KeyAlg) -> Algorithm {
    match alg {
        KeyAlg::RS256 => Algorithm::RS256,
        KeyAlg::ES256 => Algorithm::ES256,
        KeyAlg::EdDSA => Algorithm::EdDSA,
    }
}

/// Generates a key of `alg`, returning the record to store (kid = RFC 7638 thumbprint).
pub fn generate(
    alg: KeyAlg,
    now: UnixTime,
    activates_at: UnixTime,
) -> Result<SigningKeyRecord, KeyError> {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let (private_der, params, key_algorithm) = match alg {
        KeyAlg::RS256 => {
            let kp = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
            let der = kp
                .as_der()
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec();
            let public = kp.public_key();
            let params = AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: b64(public.modulus().big_endian_without_leading_zero()),
                e: b64(public.exponent().big_endian_without_leading_zero()),
            });
            (der, params, KeyAlgorithm::RS256)
        }
        KeyAlg::ES256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|_| KeyError::Generate)?;
            let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .map_err(|_| KeyError::Generate)?;
            let point = kp.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                return Err(KeyError::Generate);
            }
            let params = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: b64(&point[1..33]),
                y: b64(&point[33..]),
            });
            (doc.as_ref().to_vec(), params, KeyAlgorithm::ES256)
        }
        KeyAlg::EdDSA => {
            let kp = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
            let der = kp
                .to_pkcs8()
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec();
            let params = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: b64(kp.public_key().as_ref()),
            });
            (der, params, KeyAlgorithm::EdDSA)
        }
    };
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(key_algorithm),
            ..Default::default()
        },
        algorithm: params,
    };
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| KeyError::Generate)?;
    jwk.common.key_id = Some(kid.clone());
    let public_jwk = serde_json::to_string(&jwk).map_err(|_| KeyError::Generate)?;
    Ok(SigningKeyRecord {
        kid,
        alg,
        private_der,
        public_jwk,
        created_at: now,
        activates_at,
        retired_at: None,
    })
}
