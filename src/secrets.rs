//! Random values from the OS CSPRNG, keyed hashes of client secrets, token hashes and
//! argon2id password hashes.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::oauth::{ClientSecret, Password, RefreshToken, TokenHash};

/// `n` bytes from the operating system's CSPRNG, base64url without padding.
pub fn random_b64(n: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// A 256-bit random token (43 base64url characters): secrets, refresh tokens, codes.
pub fn random_token() -> Result<String, getrandom::Error> {
    random_b64(32)
}

/// Constant-time string equality.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// SHA-256 of a high-entropy one-time credential; what the store keeps instead of it.
pub fn token_hash(token: &str) -> TokenHash {
    TokenHash(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())))
}

/// HMAC-SHA-256 under a server-side pepper: client secrets are high-entropy, so a fast keyed
/// hash is enough, and keeps client authentication cheap (no argon2 per request).
#[derive(Clone)]
pub struct SecretHasher {
    key: Vec<u8>,
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher([redacted])")
    }
}

impl SecretHasher {
    pub fn new(pepper: &[u8]) -> Self {
        Self {
            key: pepper.to_vec(),
        }
    }

    fn mac(&self, label: &[u8], value: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable_hmac(),
        };
        mac.update(label);
        mac.update(value);
        mac.finalize().into_bytes().to_vec()
    }

    pub fn hash_client_secret(&self, secret: &ClientSecret) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(b"client-secret:", secret.secret().as_bytes()))
    }

    /// Constant-time comparison of a presented secret with the stored hash.
    pub fn verify_client_secret(&self, presented: &ClientSecret, stored: &str) -> bool {
        self.hash_client_secret(presented)
            .as_bytes()
            .ct_eq(stored.as_bytes())
            .into()
    }

    /// A CSRF token bound to a browser session and a purpose (a pending request id).
    pub fn csrf_token(&self, session: &str, purpose: &str) -> String {
        let value = format!("{session}:{purpose}");
        URL_SAFE_NO_PAD.encode(self.mac(b"csrf:", value.as_bytes()))
    }

    pub fn verify_csrf(&self, session: &str, purpose: &str, submitted: &str) -> bool {
        self.csrf_token(session, purpose)
            .as_bytes()
            .ct_eq(submitted.as_bytes())
            .into()
    }

    /// The successor of a refresh token, derived rather than random, so that a retried
    /// refresh within the grace period returns the same successor without storing it.
    /// Keyed by the pepper and a random nonce that the store clears once the grace period is
    /// over, so that a leaked old token plus a database dump cannot derive later ones.
    pub fn refresh_successor(&self, token: &RefreshToken, nonce: &[u8]) -> RefreshToken {
        let mut input = token.secret().as_bytes().to_vec();
        input.push(b':');
        input.extend_from_slice(nonce);
        RefreshToken::new(URL_SAFE_NO_PAD.encode(self.mac(b"refresh-successor:", &input)))
    }
}

#[allow(clippy::panic)] // why: Hmac::new_from_slice never fails (any key length is valid)
fn unreachable_hmac() -> ! {
    panic!("HMAC rejected a key")
}

/// argon2id with the OWASP-recommended parameters (m = 19 MiB, t = 2, p = 1).
pub fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl HashError {
    pub fn new(reason: String) -> Self {
        Self(reason)
    }
}

/// Hashes a password with a fresh 16-byte salt from the OS CSPRNG.
pub fn hash_password(password: &Password) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| HashError(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    argon2()
        .hash_password(password.secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Verifies a password against a PHC string; a malformed hash never matches.
pub fn verify_password(password: &Password, phc: &str) -> bool {
    verify_password_in(password, phc, &mut Vec::new())
}

/// [`verify_password`] with caller-owned argon2 working memory, grown to the hash's `m` and
/// reused: the server keeps one buffer per hashing slot instead of allocating 19 MiB per
/// attempt (which each allocator arena of the blocking pool would then keep).
pub fn verify_password_in(password: &Password, phc: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = parsed.version.map_or(Ok(Version::V0x13), Version::try_from);
    let (Ok(version), Some(salt), Some(expected)) = (version, parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    blocks.resize(params.block_count(), Block::default());
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.secret().as_bytes(),
        salt,
        &mut out,
        &mut blocks[..],
    );
    hashed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn client_secret_hash_is_keyed() {
        let s = ClientSecret::new("s3cret");
        let h1 = SecretHasher::new(b"pepper-1");
        let h2 = SecretHasher::new(b"pepper-2");
        let stored = h1.hash_client_secret(&s);
        assert!(h1.verify_client_secret(&s, &stored));
        assert!(!h2.verify_client_secret(&s, &stored));
        assert!(!h1.verify_client_secret(&ClientSecret::new("s3creT"), &stored));
    }

    #[test]
    fn password_hash_is_argon2id_with_owasp_parameters() {
        let h = hash_password(&Password::new("correct horse")).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&Password::new("correct horse"), &h));
        assert!(!verify_password(&Password::new("wrong"), &h));
        assert!(!verify_password(&Password::new("x"), "not a hash"));
    }
}
