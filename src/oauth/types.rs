//! Identifiers, scopes, grant types and secret newtypes (RFC 6749 §3.3, §A).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;

use super::OAuthError;

/// The grant types Latchkey knows (RFC 6749 §4). A closed set: every `match` is exhaustive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    Implicit,
    Password,
    ClientCredentials,
    RefreshToken,
}

impl GrantType {
    pub const ALL: [GrantType; 5] = [
        GrantType::AuthorizationCode,
        GrantType::Implicit,
        GrantType::Password,
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
    ];

    /// Grants that need a client able to keep a secret (RFC 9700 §2.4 for password).
    pub fn confidential_only(self) -> bool {
        match self {
            GrantType::ClientCredentials | GrantType::Password => true,
            GrantType::AuthorizationCode | GrantType::Implicit | GrantType::RefreshToken => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::Implicit => "implicit",
            GrantType::Password => "password",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = OAuthError;
    fn from_str(s: &str) -> Result<Self, OAuthError> {
        GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| OAuthError::unsupported_grant_type("grant_type is not supported"))
    }
}

/// A set of scope tokens (RFC 6749 §3.3): order-free, no duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses a space-delimited scope string; each token must be `%x21 / %x23-5B / %x5D-7E`.
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        let mut set = BTreeSet::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if !token
                .bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
            {
                return Err(OAuthError::invalid_scope(
                    "scope contains an invalid character",
                ));
            }
            set.insert(token.to_owned());
        }
        Ok(ScopeSet(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_subset(&self, of: &ScopeSet) -> bool {
        self.0.is_subset(&of.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.union(&other.0).cloned().collect())
    }

    /// The scope a token request is granted: the requested one if it is within `allowed`,
    /// all of `allowed` when none is requested (RFC 6749 §3.3 lets the server pick a default).
    pub fn grant(requested: Option<&str>, allowed: &ScopeSet) -> Result<ScopeSet, OAuthError> {
        match requested {
            None => Ok(allowed.clone()),
            Some(s) => {
                let asked = ScopeSet::parse(s)?;
                if asked.is_subset(allowed) {
                    Ok(asked)
                } else {
                    Err(OAuthError::invalid_scope(
                        "scope is not allowed for this client",
                    ))
                }
            }
        }
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

/// JWS algorithms Latchkey signs with (RFC 7518 §3; RFC 8037).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    RS256,
    ES256,
    EdDSA,
}

impl KeyAlg {
    pub const ALL: [KeyAlg; 3] = [KeyAlg::RS256, KeyAlg::ES256, KeyAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlg::RS256 => "RS256",
            KeyAlg::ES256 => "ES256",
            KeyAlg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<KeyAlg> {
        KeyAlg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A SHA-256 of a one-time credential (code, refresh token), base64url: what the store keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The secret itself; every call site is a deliberate disclosure.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }
    };
}

secret_type!(
    /// A client secret as presented or as generated (shown once).
    ClientSecret
);
secret_type!(
    /// An opaque refresh token.
    RefreshToken
);
secret_type!(
    /// A user's password as typed.
    Password
);
secret_type!(
    /// An authorization code.
    AuthCode
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_types_round_trip_and_unknown_is_unsupported() {
        for g in GrantType::ALL {
            assert_eq!(g.as_str().parse::<GrantType>().unwrap(), g);
        }
        let e = "magic".parse::<GrantType>().unwrap_err();
        assert_eq!(e.code(), "unsupported_grant_type");
    }

    #[test]
    fn scope_parsing_and_granting() {
        let allowed = ScopeSet::parse("read write").unwrap();
        assert_eq!(ScopeSet::grant(None, &allowed).unwrap(), allowed);
        assert_eq!(
            ScopeSet::grant(Some("write  read"), &allowed).unwrap(),
            allowed
        );
        assert_eq!(
            ScopeSet::grant(Some("admin"), &allowed).unwrap_err().code(),
            "invalid_scope"
        );
        assert!(ScopeSet::parse("a\"b").is_err());
        assert_eq!(ScopeSet::parse("b a b").unwrap().to_string(), "a b");
    }

    #[test]
    fn secrets_never_print() {
        let s = ClientSecret::new("hunter2");
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        assert_eq!(s, ClientSecret::new("hunter2"));
        assert_ne!(s, ClientSecret::new("hunter3"));
    }
}
