//! Request parameters from `application/x-www-form-urlencoded` bytes (RFC 6749 §3.1, §3.2,
//! Appendix B): strict UTF-8, no repeated names, an empty value is the same as an absent one.

use std::collections::HashMap;

use percent_encoding::percent_decode;

use super::OAuthError;

/// Parameters that RFC 8707 allows to repeat.
const REPEATABLE: &[&str] = &["resource"];
/// More parameters than any legitimate request needs; bounds the work per request.
const MAX_PARAMS: usize = 256;

/// Parsed request parameters: at most one value per name, except `resource`.
#[derive(Clone, Debug, Default)]
pub struct Params {
    single: HashMap<String, String>,
    resources: Vec<String>,
}

impl Params {
    /// Parses a form body or a query string; a repeated parameter is `invalid_request`.
    pub fn parse(bytes: &[u8]) -> Result<Self, OAuthError> {
        match Self::parse_noting_repeats(bytes)? {
            (params, None) => Ok(params),
            (_, Some(name)) => Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            ))),
        }
    }

    /// Parses like [`Params::parse`] but reports the first repeated name instead of failing,
    /// for endpoints that answer a repeat differently depending on the name (`/authorize`).
    pub fn parse_noting_repeats(bytes: &[u8]) -> Result<(Self, Option<String>), OAuthError> {
        let mut params = Params::default();
        let mut repeated = None;
        let mut count = 0;
        for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            count += 1;
            if count > MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if !params.insert(name.clone(), value) && repeated.is_none() {
                repeated = Some(printable(&name));
            }
        }
        Ok((params, repeated))
    }

    /// Adds a pair; false if the name was already present (the first value is kept).
    fn insert(&mut self, name: String, value: String) -> bool {
        if REPEATABLE.contains(&name.as_str()) {
            if !value.is_empty() {
                self.resources.push(value);
            }
            return true;
        }
        if self.single.contains_key(&name) {
            return false;
        }
        // RFC 6749 §3.1: a parameter sent without a value is treated as omitted; its name
        // is kept so that `x=&x=1` is still a repeat.
        self.single.insert(name, value);
        true
    }

    /// The value of a parameter, `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.single
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value of a parameter that must be present.
    pub fn required(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }

    /// Whether the parameter was sent with a non-empty value.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// RFC 8707 `resource` values, in order.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }
}

fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let value = percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| OAuthError::invalid_request("parameters must be UTF-8"))?;
    // No identifier or credential contains NUL, and PostgreSQL text cannot hold one.
    if value.contains('\0') {
        return Err(OAuthError::invalid_request(
            "parameters must not contain NUL",
        ));
    }
    Ok(value)
}

/// A parameter name as it may appear in an error description: printable ASCII only
/// (RFC 6749 §5.2 restricts error_description to %x20-21 / %x23-5B / %x5D-7E).
pub fn printable(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        .take(40)
        .collect();
    if clean.is_empty() {
        "(unnamed)".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_as_the_rfc_says() {
        for (body, ok) in [
            (&b"grant_type=client_credentials&scope=a+b"[..], true),
            (b"grant_type=a&grant_type=b", false),
            (b"grant_type=&grant_type=b", false),
            (b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb", true),
            (b"x=%FF", false),
            (b"x=%C3%A9", true),
            (b"&&a=1&", true),
        ] {
            assert_eq!(
                Params::parse(body).is_ok(),
                ok,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let p = Params::parse(b"scope=a+b&empty=&r=%2B").unwrap();
        assert_eq!(p.get("scope"), Some("a b"));
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.get("r"), Some("+"));
        assert!(p.required("missing").is_err());
    }

    #[test]
    fn nul_is_refused() {
        assert!(Params::parse(b"client_id=%00").is_err());
        assert!(Params::parse(b"a%00=1").is_err());
    }

    #[test]
    fn names_are_case_sensitive() {
        let p = Params::parse(b"GRANT_TYPE=x").unwrap();
        assert_eq!(p.get("grant_type"), None);
    }

    #[test]
    fn too_many_parameters_is_refused() {
        let body: Vec<u8> = (0..300)
            .map(|i| format!("p{i}=1&"))
            .collect::<String>()
            .into_bytes();
        assert!(Params::parse(&body).is_err());
    }

    #[test]
    fn printable_strips_control_and_quotes() {
        assert_eq!(printable("a\"b\\c\r\n"), "abc");
    }
}
