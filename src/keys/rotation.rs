//! Keeping a signing key: the first one, staged and emergency rotation, retirement.

use crate::clock::UnixTime;
use crate::model::SigningKeyRecord;
use crate::oauth::KeyAlg;
use crate::store::Store;

use super::KeyError;
use super::material::generate;
use super::ring::{KeyState, states};

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
