//! The validator's JWKS cache against a real Latchkey: max-age, discovery once, key
//! rotation without restart, the refetch rate limit, and riding out an outage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ForeignKey, Issuer, parts};
use latchkey_resource::{Error, FetchError};
use serde_json::json;

// SECURITY-TESTS: JW-05
#[tokio::test]
async fn forged_kids_cause_at_most_one_jwks_fetch_per_interval() {
    let iss = Issuer::start().await;
    let client = iss.app_client().await;
    let (v, clock) = iss.validator();
    let token = iss.client_token(&client, "read").await;
    v.validate(&token).await.unwrap();
    assert_eq!(iss.jwks_fetches(), 1);
    let foreign = ForeignKey::new();
    let forged = |i: usize| {
        foreign.sign(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("forged-{i}")}),
            &iss.claims(&client.id),
        )
    };

    // Within the refetch interval of the last fetch: no fetch at all.
    for i in 0..50 {
        assert_eq!(v.validate(&forged(i)).await.unwrap_err(), Error::UnknownKey);
    }
    assert_eq!(iss.jwks_fetches(), 1);

    // After it, one fetch for a burst of concurrent forgeries, then none again.
    clock.advance(10);
    let mut set = tokio::task::JoinSet::new();
    for i in 50..100 {
        let (v, t) = (v.clone(), forged(i));
        set.spawn(async move { v.validate(&t).await });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap_err(), Error::UnknownKey);
    }
    assert_eq!(iss.jwks_fetches(), 2);
    assert!(
        v.validate(&token).await.is_ok(),
        "real tokens keep validating"
    );
    assert_eq!(iss.discovery_fetches(), 1);
}

#[tokio::test]
async fn the_jwks_is_cached_for_its_max_age() {
    let iss = Issuer::start_with(|c| c.keys.jwks_max_age_secs = 60).await;
    let client = iss.app_client().await;
    let token = iss.client_token(&client, "read").await;
    let (v, clock) = iss.validator();
    v.validate(&token).await.unwrap();
    clock.advance(59);
    v.validate(&token).await.unwrap();
    assert_eq!(iss.jwks_fetches(), 1, "fresh for max-age=60");
    clock.advance(1);
    v.validate(&token).await.unwrap();
    assert_eq!(iss.jwks_fetches(), 2, "refetched once stale");
    assert_eq!(iss.discovery_fetches(), 1, "discovery is read once");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_a_restart() {
    let iss = Issuer::start().await;
    let client = iss.app_client().await;
    let (v, clock) = iss.validator();
    let t1 = iss.client_token(&client, "read").await;
    v.validate(&t1).await.unwrap();

    // `latchkey keys rotate` (emergency: the new key signs at once).
    let new_kid = iss.rotate_keys(None).await;
    let t2 = iss.client_token(&client, "read").await;
    assert_eq!(parts(&t2).0["kid"], new_kid.as_str());

    // The rate limit holds even for a genuine new kid...
    assert_eq!(v.validate(&t2).await.unwrap_err(), Error::UnknownKey);
    assert_eq!(iss.jwks_fetches(), 1);
    // ...and once it has passed, the unknown kid triggers the refetch that finds it.
    clock.advance(10);
    v.validate(&t2).await.unwrap();
    assert_eq!(iss.jwks_fetches(), 2);
    assert!(
        v.validate(&t1).await.is_ok(),
        "the old key stays published until retention ends"
    );
}

#[tokio::test]
async fn a_staged_key_is_known_before_it_signs() {
    let iss = Issuer::start_with(|c| c.keys.jwks_max_age_secs = 60).await;
    let client = iss.app_client().await;
    let (v, clock) = iss.validator();
    v.validate(&iss.client_token(&client, "read").await)
        .await
        .unwrap();

    // `latchkey keys rotate --staged`: published now, signing after the lead.
    let lead = latchkey::keys::staging_lead(60);
    let staged = iss.rotate_keys(Some(lead)).await;
    clock.advance(60); // the validator's cache goes stale and it refetches
    v.validate(&iss.client_token(&client, "read").await)
        .await
        .unwrap();
    assert_eq!(iss.jwks_fetches(), 2);

    // The issuer's clock reaches the activation; the validator's cache is still fresh
    // (the clocks are independent) and already holds the new key: no fetch needed.
    iss.state.clock.advance(lead);
    let t2 = iss.client_token(&client, "read").await;
    assert_eq!(parts(&t2).0["kid"], staged.as_str());
    v.validate(&t2).await.unwrap();
    assert_eq!(iss.jwks_fetches(), 2);
}

#[tokio::test]
async fn an_unreachable_issuer_is_ridden_out_with_the_cached_keys() {
    let mut iss = Issuer::start().await; // max-age 300
    let client = iss.app_client().await;
    let token = iss.client_token(&client, "read").await;
    let (v, clock) = iss.validator();
    v.validate(&token).await.unwrap();
    let (cold, _) = iss.validator();
    let foreign = ForeignKey::new();
    let unknown = foreign.sign(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": foreign.kid}),
        &iss.claims(&client.id),
    );

    iss.stop().await;
    assert!(
        reqwest::get(format!("{}/jwks", iss.base)).await.is_err(),
        "the issuer is down"
    );

    assert!(v.validate(&token).await.is_ok(), "fresh cache");
    clock.advance(301);
    assert!(
        v.validate(&token).await.is_ok(),
        "stale cache, refetch failed: served stale"
    );
    assert_eq!(
        v.validate(&unknown).await.unwrap_err(),
        Error::UnknownKey,
        "unknown kids stay unknown"
    );
    clock.advance(3600);
    match v.validate(&token).await.unwrap_err() {
        Error::KeysUnavailable(FetchError::Http { .. } | FetchError::CoolingDown) => {}
        other => panic!("past max_stale the keys are no longer trusted: {other:?}"),
    }

    // Never reached the issuer at all: unavailable, not invalid.
    match cold.validate(&token).await.unwrap_err() {
        Error::KeysUnavailable(FetchError::Http { url, .. }) => {
            assert!(url.ends_with("/.well-known/openid-configuration"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(cold.preload().await, Err(FetchError::Http { .. })));
}
