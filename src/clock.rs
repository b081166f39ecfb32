//! The one reader of system time. Everything else takes `now: UnixTime` as a parameter.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// A source of time: the system clock, or a fixed instant that tests move by hand.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Fixed(Arc<AtomicI64>),
}

impl Clock {
    /// A clock pinned at `at`, moved only by [`Clock::advance`].
    pub fn fixed(at: UnixTime) -> Self {
        Clock::Fixed(Arc::new(AtomicI64::new(at)))
    }

    pub fn now(&self) -> UnixTime {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            Clock::Fixed(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a fixed clock forward; the system clock cannot be moved.
    pub fn advance(&self, secs: i64) {
        if let Clock::Fixed(t) = self {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }
}
