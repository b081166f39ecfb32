//! Signing keys: generation, staged and emergency rotation, retirement, and the key ring a
//! server signs and verifies with (OIDC Core §10.1.1; RFC 7517). Keys live in the database
//! so replicas share them; each is parsed once when loaded.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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
use crate::store::{Store, StoreError};

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

/// Where a key stands at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not yet signing (staged rotation).
    Next,
    /// Signing.
    Active,
    /// Published so tokens it signed still verify; no longer signing.
    Retiring { until: UnixTime },
    /// Withdrawn.
    Retired,
}

impl KeyState {
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring { .. } => "retiring",
            KeyState::Retired => "retired",
        }
    }
}

/// The state of every record at `now`. Records are sorted by activation; the newest
/// activated, unretired key signs; a key stops signing when its successor activates and
/// stays published for `retention` after that.
pub fn states(records: &[SigningKeyRecord], now: UnixTime, retention: i64) -> Vec<KeyState> {
    let live: Vec<usize> = (0..records.len())
        .filter(|i| records[*i].retired_at.is_none())
        .collect();
    let active = live
        .iter()
        .rev()
        .find(|i| records[**i].activates_at <= now)
        .copied()
        .or_else(|| live.first().copied());
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if r.retired_at.is_some() {
                return KeyState::Retired;
            }
            if Some(i) == active {
                return KeyState::Active;
            }
            if r.activates_at > now {
                return KeyState::Next;
            }
            // Superseded: by the next live key that has activated.
            let superseded_at = live
                .iter()
                .filter(|j| **j > i && records[**j].activates_at <= now)
                .map(|j| records[*j].activates_at)
                .next()
                .unwrap_or(now);
            let until = superseded_at + retention;
            if until > now {
                KeyState::Retiring { until }
            } else {
                KeyState::Retired
            }
        })
        .collect()
}

/// What a server signs and verifies with at one moment, and the JWKS it publishes.
#[derive(Debug)]
pub struct KeyView {
    pub signing: Arc<LoadedKey>,
    pub published: HashMap<String, Arc<LoadedKey>>,
    /// The serialised JWKS document.
    pub jwks: String,
    /// The view holds until this moment (a staged activation or a retention ends).
    valid_until: UnixTime,
    computed_at: UnixTime,
}

impl KeyView {
    pub fn key(&self, kid: &str) -> Option<&Arc<LoadedKey>> {
        self.published.get(kid)
    }
}

struct Loaded {
    records: Vec<SigningKeyRecord>,
    parsed: HashMap<String, Arc<LoadedKey>>,
}

/// The server's key ring: records from the store, parsed keys, and the current view.
pub struct KeyRing {
    retention: i64,
    loaded: RwLock<Arc<Loaded>>,
    view: RwLock<Option<Arc<KeyView>>>,
}

impl KeyRing {
    /// Loads the keys, generating a first one if the store has none that can sign.
    pub async fn open(
        store: &dyn Store,
        alg: KeyAlg,
        retention: i64,
        now: UnixTime,
    ) -> Result<KeyRing, KeyError> {
        ensure_signing_key(store, alg, now).await?;
        let ring = KeyRing {
            retention,
            loaded: RwLock::new(Arc::new(Loaded {
                records: Vec::new(),
                parsed: HashMap::new(),
            })),
            view: RwLock::new(None),
        };
        ring.reload(store).await?;
        Ok(ring)
    }

    /// Re-reads the records; parses only keys not seen before. Cheap when nothing changed.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), KeyError> {
        let records = store.keys().await?;
        let old = self.loaded_now();
        let same = old.records.len() == records.len()
            && old.records.iter().zip(&records).all(|(a, b)| {
                a.kid == b.kid && a.retired_at == b.retired_at && a.activates_at == b.activates_at
            });
        if same {
            return Ok(());
        }
        let mut parsed = HashMap::new();
        for r in records.iter().filter(|r| r.retired_at.is_none()) {
            let key = match old.parsed.get(&r.kid) {
                Some(k) => k.clone(),
                // One bad record must not stop this server from seeing every later change.
                None => match LoadedKey::parse(r) {
                    Ok(k) => Arc::new(k),
                    Err(e) => {
                        tracing::error!(kid = %r.kid, cause = %e, "skipping a signing key that cannot be parsed");
                        continue;
                    }
                },
            };
            parsed.insert(r.kid.clone(), key);
        }
        let loaded = Arc::new(Loaded { records, parsed });
        if let Ok(mut slot) = self.loaded.write() {
            *slot = loaded;
        }
        if let Ok(mut v) = self.view.write() {
            *v = None;
        }
        Ok(())
    }

    fn loaded_now(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The view at `now`, recomputed only when a key event has passed.
    pub fn view(&self, now: UnixTime) -> Result<Arc<KeyView>, KeyError> {
        if let Ok(v) = self.view.read()
            && let Some(v) = v.as_ref()
            && now >= v.computed_at
            && now < v.valid_until
        {
            return Ok(v.clone());
        }
        let view = Arc::new(self.compute(now)?);
        if let Ok(mut slot) = self.view.write() {
            *slot = Some(view.clone());
        }
        Ok(view)
    }

    fn compute(&self, now: UnixTime) -> Result<KeyView, KeyError> {
        let loaded = self.loaded_now();
        let states = states(&loaded.records, now, self.retention);
        let mut signing = None;
        let mut published = HashMap::new();
        let mut valid_until = UnixTime::MAX;
        let mut jwks = Vec::new();
        for (rec, state) in loaded.records.iter().zip(&states) {
            let Some(key) = loaded.parsed.get(&rec.kid) else {
                continue;
            };
            match state {
                KeyState::Retired => continue,
                KeyState::Active => signing = Some(key.clone()),
                KeyState::Next => valid_until = valid_until.min(rec.activates_at),
                KeyState::Retiring { until } => valid_until = valid_until.min(*until),
            }
            published.insert(rec.kid.clone(), key.clone());
            jwks.push(&key.jwk);
        }
        let signing = signing.ok_or(KeyError::NoKey)?;
        let jwks = serde_json::to_string(&serde_json::json!({ "keys": jwks }))
            .map_err(|_| KeyError::NoKey)?;
        Ok(KeyView {
            signing,
            published,
            jwks,
            valid_until,
            computed_at: now,
        })
    }
}

/// Seconds a staged key is published before it signs: one JWKS cache lifetime plus margin.
pub fn staging_lead(jwks_max_age: i64) -> i64 {
    jwks_max_age + jwks_max_age / 2 + 60
}

/// A new key to follow `records`. The store orders keys by (activates_at, created_at), and
/// the last activated key signs; so that a key made in the same second as an earlier one
/// (two rotations in a script, a rotation right after the first start) still wins that
/// tie, `created_at` is kept strictly increasing: such a key is stamped a second later.
fn successor(
    records: &[SigningKeyRecord],
    alg: KeyAlg,
    now: UnixTime,
    activates_at: UnixTime,
) -> Result<SigningKeyRecord, KeyError> {
    let mut rec = generate(alg, now, activates_at)?;
    if let Some(last) = records.iter().map(|r| r.created_at).max() {
        rec.created_at = rec.created_at.max(last + 1);
    }
    Ok(rec)
}

/// Makes sure a key can sign now, generating one if none can.
pub async fn ensure_signing_key(
    store: &dyn Store,
    alg: KeyAlg,
    now: UnixTime,
) -> Result<(), KeyError> {
    let records = store.keys().await?;
    let can_sign = records
        .iter()
        .any(|r| r.retired_at.is_none() && r.activates_at <= now);
    if !can_sign {
        store
            .insert_key(&successor(&records, alg, now, now)?)
            .await?;
    }
    Ok(())
}

/// Adds a new key: active at once (emergency) or after the staging lead (staged).
pub async fn rotate(
    store: &dyn Store,
    alg: KeyAlg,
    now: UnixTime,
    staged_lead: Option<i64>,
) -> Result<SigningKeyRecord, KeyError> {
    let activates_at = now + staged_lead.unwrap_or(0);
    let rec = successor(&store.keys().await?, alg, now, activates_at)?;
    store.insert_key(&rec).await?;
    Ok(rec)
}

/// Withdraws a key at once. If it was signing, a new key takes over immediately.
pub async fn retire(
    store: &dyn Store,
    kid: &str,
    alg: KeyAlg,
    now: UnixTime,
    retention: i64,
) -> Result<bool, KeyError> {
    let records = store.keys().await?;
    let was_active = records
        .iter()
        .zip(states(&records, now, retention))
        .any(|(r, s)| r.kid == kid && s == KeyState::Active);
    if !store.retire_key(kid, now).await? {
        return Ok(false);
    }
    if was_active {
        store
            .insert_key(&successor(&records, alg, now, now)?)
            .await?;
    }
    Ok(true)
}

/// Automatic staged rotation: when the active key is due within the staging lead and no
/// key is staged yet, stage one. Replicas race through a settings row; one wins.
pub async fn rotate_if_due(
    store: &dyn Store,
    alg: KeyAlg,
    now: UnixTime,
    period_secs: i64,
    lead: i64,
    retention: i64,
) -> Result<Option<String>, KeyError> {
    let records = store.keys().await?;
    let st = states(&records, now, retention);
    if st.contains(&KeyState::Next) {
        return Ok(None);
    }
    let Some(active) = records
        .iter()
        .zip(&st)
        .find(|(_, s)| **s == KeyState::Active)
        .map(|(r, _)| r)
    else {
        return Ok(None);
    };
    if active.activates_at + period_secs - lead > now {
        return Ok(None);
    }
    // The key goes in first, then replicas race for the right to keep theirs; a loser
    // withdraws its key. Should the winner stop between the two writes, its key is
    // already staged, and the next tick anywhere sees it.
    let rec = successor(&records, alg, now, now + lead)?;
    store.insert_key(&rec).await?;
    let winner = store
        .init_setting(&format!("staged-after:{}", active.kid), &rec.kid)
        .await?;
    if winner != rec.kid {
        store.retire_key(&rec.kid, now).await?;
        return Ok(None);
    }
    Ok(Some(rec.kid))
}

#[cfg(test)]
mod tests {
    use super::*;

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
