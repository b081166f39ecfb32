//! The validator against a real Latchkey: RFC 9068 §4 checks on real and forged tokens,
//! and hostile headers (RFC 8725). The key cache has its own file, jwks_cache.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ForeignKey, Issuer, parts};
use latchkey_resource::{Clock, Error, FetchError, Validator};
use serde_json::{Value, json};

#[tokio::test]
async fn client_and_user_tokens_validate_for_each_algorithm() {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let iss = Issuer::start_with(|c| c.keys.algorithm = alg.into()).await;
        let client = iss.app_client().await;
        let (v, _) = iss.validator();

        let token = iss.client_token(&client, "read").await;
        assert_eq!(parts(&token).0["alg"], alg);
        let c = v.validate(&token).await.unwrap();
        assert_eq!(c.sub(), client.id, "{alg}");
        assert_eq!(c.client_id(), client.id);
        assert!(!c.has_user(), "{alg}: client_credentials has no user");
        assert_eq!(c.user_id(), None);
        assert_eq!(c.scopes().iter().collect::<Vec<_>>(), ["read"]);
        assert_eq!(c.iss(), iss.issuer());
        assert_eq!(c.aud(), [iss.issuer()]);
        assert!(c.exp() > c.iat());
        assert!(!c.jti().is_empty());
        assert_eq!(c.raw()["client_id"], client.id.as_str());

        let (token, res) = iss.user_token(&client, "openid read write").await;
        let c = v.validate(&token).await.unwrap();
        assert!(c.has_user(), "{alg}: password grant has a user");
        assert_ne!(c.sub(), client.id);
        assert_eq!(c.user_id(), Some(c.sub()));
        assert!(c.has_scope("read") && c.has_scope("write"));

        // RFC 8725 §3.11: the same issuer's ID token is not an access token.
        let id_token = res["id_token"]
            .as_str()
            .expect("openid scope returns an ID token");
        assert_eq!(
            v.validate(id_token).await.unwrap_err(),
            Error::WrongType,
            "{alg}"
        );

        // Discovery once, the JWKS once: everything else came from the cache.
        assert_eq!(
            (iss.discovery_fetches(), iss.jwks_fetches()),
            (1, 1),
            "{alg}"
        );
    }
}

// SECURITY-TESTS: JW-06
#[tokio::test]
async fn expired_tokens_are_refused_as_expired_past_the_leeway() {
    let iss = Issuer::start().await;
    let client = iss.client_with(|c| c.access_token_ttl = Some(60)).await;
    let token = iss.client_token(&client, "read").await;
    let (v, clock) = iss.validator(); // leeway 30 s
    v.validate(&token).await.unwrap();
    clock.advance(60 + 29);
    assert!(v.validate(&token).await.is_ok(), "within the leeway");
    clock.advance(1);
    let err = v.validate(&token).await.unwrap_err();
    assert_eq!(err, Error::Expired);
    assert!(err.is_expired());
    assert!(err.to_string().contains("expired"));

    // Leeway 0: dead the second exp is reached.
    let strict_clock = Clock::fixed(iss.now() + 59);
    let strict = Validator::builder(iss.issuer(), iss.issuer())
        .leeway(Duration::ZERO)
        .clock(strict_clock.clone())
        .build()
        .unwrap();
    assert!(strict.validate(&token).await.is_ok());
    strict_clock.advance(1);
    assert_eq!(strict.validate(&token).await.unwrap_err(), Error::Expired);
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let iss = Issuer::start().await;
    let client = iss
        .client_with(|c| c.resources = vec!["https://orders.example/api".into()])
        .await;
    let token = iss.client_token(&client, "read").await;
    let (other, _) = iss.validator_for("https://api.other.example");
    assert_eq!(other.validate(&token).await.unwrap_err(), Error::Audience);

    // RFC 8707: a token for a resource is good at that resource only.
    let t = iss
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read"),
                ("resource", "https://orders.example/api"),
            ],
        )
        .await;
    let for_orders = t["access_token"].as_str().unwrap();
    let (orders, _) = iss.validator_for("https://orders.example/api");
    assert!(orders.validate(for_orders).await.is_ok());
    let (default, _) = iss.validator();
    assert_eq!(
        default.validate(for_orders).await.unwrap_err(),
        Error::Audience
    );
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let a = Issuer::start().await;
    let b = Issuer::start().await;
    let client = a.app_client().await;
    let token = a.client_token(&client, "read").await;

    // B's validator does not know A's key.
    let (vb, _) = b.validator();
    assert_eq!(vb.validate(&token).await.unwrap_err(), Error::UnknownKey);

    // Signed with A's own key but naming another issuer.
    let (va, _) = a.validator();
    let mut claims = a.claims(&client.id);
    claims["iss"] = json!(b.issuer());
    let forged = a.mint(&a.header(), &claims);
    assert_eq!(va.validate(&forged).await.unwrap_err(), Error::Issuer);

    // OpenID Connect Discovery §4.3: the discovery document must name our issuer exactly.
    let slash = Validator::builder(format!("{}/", a.issuer()), a.issuer())
        .build()
        .unwrap();
    match slash.validate(&token).await.unwrap_err() {
        Error::KeysUnavailable(FetchError::IssuerMismatch { .. }) => {}
        other => panic!("expected an issuer mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let iss = Issuer::start().await;
    let client = iss.app_client().await;
    let token = iss.client_token(&client, "read").await;
    let (v, _) = iss.validator();
    let (header, payload, sig) = {
        let mut it = token.split('.');
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };

    // More scope, same signature.
    let (_, mut claims) = parts(&token);
    claims["scope"] = json!("read write admin");
    let widened = format!("{header}.{}.{sig}", common::b64_json(&claims));
    assert_eq!(v.validate(&widened).await.unwrap_err(), Error::Signature);

    // One character of the signature changed.
    let mut bad_sig = sig.to_owned().into_bytes();
    bad_sig[10] = if bad_sig[10] == b'A' { b'B' } else { b'A' };
    let bad_sig = String::from_utf8(bad_sig).unwrap();
    assert_eq!(
        v.validate(&format!("{header}.{payload}.{bad_sig}"))
            .await
            .unwrap_err(),
        Error::Signature
    );

    // Signature stripped.
    assert_eq!(
        v.validate(&format!("{header}.{payload}."))
            .await
            .unwrap_err(),
        Error::Signature
    );
    assert_eq!(
        v.validate(&format!("{header}.{payload}"))
            .await
            .unwrap_err(),
        Error::Malformed
    );
    assert!(
        v.validate(&token).await.is_ok(),
        "the original still verifies"
    );
}

#[tokio::test]
async fn a_token_signed_by_an_unknown_key_is_refused() {
    let iss = Issuer::start_with(|c| c.keys.algorithm = "ES256".into()).await;
    let client = iss.app_client().await;
    let (v, _) = iss.validator();
    let foreign = ForeignKey::new();
    let claims = iss.claims(&client.id);

    let own_kid = foreign.sign(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": foreign.kid}),
        &claims,
    );
    assert_eq!(v.validate(&own_kid).await.unwrap_err(), Error::UnknownKey);

    // The issuer's kid, same algorithm, another key.
    let header = iss.header();
    assert_eq!(header["alg"], "ES256");
    let stolen_kid = foreign.sign(&header, &claims);
    assert_eq!(v.validate(&stolen_kid).await.unwrap_err(), Error::Signature);

    assert!(
        v.validate(&iss.mint(&iss.header(), &claims)).await.is_ok(),
        "the real key verifies"
    );
}

// SECURITY-TESTS: JW-06
#[tokio::test]
async fn alg_none_hmac_and_a_foreign_alg_are_refused() {
    let iss = Issuer::start().await; // RS256
    let client = iss.app_client().await;
    let (v, _) = iss.validator();
    let claims = iss.claims(&client.id);
    let kid = iss.header()["kid"].clone();
    let body = format!(
        "{}.{}",
        common::b64_json(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        common::b64_json(&claims)
    );

    for none in ["none", "None", "NONE"] {
        let h = common::b64_json(&json!({"alg": none, "typ": "at+jwt", "kid": kid}));
        let t = format!("{h}.{}.", common::b64_json(&claims));
        assert_eq!(
            v.validate(&t).await.unwrap_err(),
            Error::Algorithm,
            "alg {none}"
        );
    }
    assert_eq!(
        v.validate(&format!("{body}.c2ln")).await.unwrap_err(),
        Error::Algorithm
    );

    // RFC 8725 §3.1: HS256 keyed with the public RSA modulus (key confusion).
    let jwks: serde_json::Value = reqwest::get(format!("{}/jwks", iss.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = jwks["keys"][0]["n"].as_str().unwrap();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let input = format!(
        "{}.{}",
        common::b64_json(&header),
        common::b64_json(&claims)
    );
    let key = jsonwebtoken::EncodingKey::from_secret(n.as_bytes());
    let sig =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    assert_eq!(
        v.validate(&format!("{input}.{sig}")).await.unwrap_err(),
        Error::Algorithm
    );

    // The real key and signature, but the header names another algorithm.
    for alg in ["RS512", "PS256", "ES256"] {
        let mut h = iss.header();
        h["alg"] = json!(alg);
        assert_eq!(
            v.validate(&iss.mint(&h, &claims)).await.unwrap_err(),
            Error::Algorithm,
            "{alg}"
        );
    }
}

// SECURITY-TESTS: JW-06
#[tokio::test]
async fn server_signed_tokens_with_bad_claims_or_headers_are_refused() {
    let iss = Issuer::start().await;
    let client = iss.app_client().await;
    let (v, _) = iss.validator();
    let now = iss.now();
    let good = iss.claims(&client.id);
    // `name` set to `value` (or removed, for `None`) in a copy of `base`.
    let set = |base: &Value, name: &str, value: Option<Value>| {
        let mut v = base.clone();
        match value {
            Some(x) => v[name] = x,
            None => drop(v.as_object_mut().unwrap().remove(name)),
        }
        v
    };
    let claim = |name: &str, value: Option<Value>| (iss.header(), set(&good, name, value));
    let head = |name: &str, value: Option<Value>| (set(&iss.header(), name, value), good.clone());
    use Error as E;
    #[rustfmt::skip]
    let cases = [
        ("baseline", (iss.header(), good.clone()), None),
        ("expired past leeway", claim("exp", Some(json!(now - 31))), Some(E::Expired)),
        ("future nbf", claim("nbf", Some(json!(now + 31))), Some(E::NotYetValid)),
        ("other iss", claim("iss", Some(json!("https://evil.example"))), Some(E::Issuer)),
        ("other aud", claim("aud", Some(json!("https://other.example"))), Some(E::Audience)),
        ("no exp", claim("exp", None), Some(E::Claim("exp"))),
        ("exp as a string", claim("exp", Some(json!("9999999999"))), Some(E::Claim("exp"))),
        ("no sub", claim("sub", None), Some(E::Claim("sub"))),
        ("no client_id", claim("client_id", None), Some(E::Claim("client_id"))),
        ("crit", head("crit", Some(json!(["x-unknown"]))), Some(E::UnsupportedCritical)),
        ("typ JWT", head("typ", Some(json!("JWT"))), Some(E::WrongType)),
        ("no typ", head("typ", None), Some(E::WrongType)),
        ("typ application/at+jwt", head("typ", Some(json!("application/at+jwt"))), None),
        ("no kid", head("kid", None), Some(E::Malformed)),
    ];
    for (rule, (h, c), want) in cases {
        let got = v.validate(&iss.mint(&h, &c)).await;
        assert_eq!(got.err(), want, "{rule}");
    }

    // A payload byte flipped under a valid signature.
    let token = iss.mint(&iss.header(), &good);
    let (head, rest) = token.split_once('.').unwrap();
    let mut payload = rest.as_bytes().to_vec();
    payload[5] ^= 0x01;
    let flipped = format!("{head}.{}", String::from_utf8(payload).unwrap());
    assert_eq!(v.validate(&flipped).await.unwrap_err(), Error::Signature);
}

// SECURITY-TESTS: JW-05
#[tokio::test]
async fn hostile_kids_and_key_headers_are_refused_without_fetching_them() {
    let iss = Issuer::start().await;
    let client = iss.app_client().await;
    let (v, _) = iss.validator();
    v.preload().await.unwrap();
    let claims = iss.claims(&client.id);
    let foreign = ForeignKey::new();

    // A listener that would see any request made to a URL in the token.
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_url = format!("http://{}/keys", trap.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_sock, _)) = trap.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let foreign_jwk = {
        let mut j: serde_json::Value = serde_json::from_str(
            &latchkey::keys::generate(latchkey::oauth::KeyAlg::ES256, 0, 0)
                .unwrap()
                .public_jwk,
        )
        .unwrap();
        j["kid"] = json!(foreign.kid);
        j
    };
    let h = |extra: serde_json::Value| {
        let mut h = json!({"alg": "ES256", "typ": "at+jwt", "kid": foreign.kid});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    };
    let cases = [
        (
            "path traversal kid",
            h(json!({"kid": "../../../dev/null"})),
            Error::UnknownKey,
        ),
        (
            "SQL kid",
            h(json!({"kid": "' OR 1=1--"})),
            Error::UnknownKey,
        ),
        (
            "8 KiB kid",
            h(json!({"kid": "k".repeat(8192)})),
            Error::Malformed,
        ),
        (
            "jku to a listener",
            h(json!({"jku": trap_url})),
            Error::UnknownKey,
        ),
        (
            "x5u to a listener",
            h(json!({"x5u": trap_url})),
            Error::UnknownKey,
        ),
        (
            "jku with the issuer's kid",
            h(json!({"jku": trap_url, "kid": iss.header()["kid"], "alg": "RS256"})),
            Error::Signature,
        ),
        (
            "embedded jwk",
            h(json!({"jwk": foreign_jwk})),
            Error::UnknownKey,
        ),
        (
            "embedded jwk, no kid",
            h(json!({"jwk": foreign_jwk, "kid": null})),
            Error::Malformed,
        ),
        (
            "x5c",
            h(json!({"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]})),
            Error::UnknownKey,
        ),
    ];
    for (rule, header, want) in cases {
        let token = foreign.sign(&header, &claims);
        assert_eq!(v.validate(&token).await.unwrap_err(), want, "{rule}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no request followed a URL in a token"
    );
}
