//! The validator's one source of time, in whole seconds since the Unix epoch. Tests pin it
//! and move it by hand; everything else reads the system clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where a [`Validator`](crate::Validator) reads the time: `exp`/`nbf` checks, JWKS cache
/// freshness and the refetch rate limit all use it.
///
/// [`Clock::system`] is the default. [`Clock::fixed`] is a clock that only moves when told
/// to, so tests can expire a token or age the key cache without sleeping.
///
/// ```
/// use latchkey_resource::Clock;
///
/// let clock = Clock::fixed(1_700_000_000);
/// let copy = clock.clone(); // clones share the same instant
/// clock.advance(90);
/// assert_eq!(copy.now(), 1_700_000_090);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock pinned at `at` (seconds since the epoch), moved only by [`Clock::advance`]
    /// and [`Clock::set`].
    pub fn fixed(at: i64) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(at))))
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        match &self.0 {
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            Some(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a fixed clock by `secs` (negative goes back); the system clock ignores it.
    pub fn advance(&self, secs: i64) {
        if let Some(t) = &self.0 {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }

    /// Sets a fixed clock to `at`; the system clock ignores it.
    pub fn set(&self, at: i64) {
        if let Some(t) = &self.0 {
            t.store(at, Ordering::SeqCst);
        }
    }
}
