//! Password verification off the async runtime: argon2id on a few dedicated threads at the
//! lowest CPU priority, behind a bounded admission queue.
//!
//! - The threads run at nice 19: on a busy machine a token request's few microseconds of
//!   work are not stuck behind a 20 ms hash, while an otherwise idle CPU still goes to
//!   hashing. Each thread keeps its own argon2 working memory (19 MiB with the default
//!   parameters), so memory stays flat however many attempts come.
//! - Admission (a [`VerifyTurn`]) is twice the number of threads: an admitted attempt does
//!   its throttle bookkeeping in the store while the threads hash those admitted before it,
//!   so the threads are not left waiting on database round trips.
//! - Admitted attempts are counted as failures ahead of their outcome (see
//!   `grant::password`), so each throttle key also caps its attempts in flight below its
//!   limit: a burst of right passwords for one account never locks it by itself.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use argon2::Block;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};

use crate::oauth::Password;
use crate::secrets::{HashError, hash_password, random_token, verify_password_in};

/// Admitted attempts per hashing thread.
const ADMITTED_PER_THREAD: usize = 2;

struct Job {
    password: Password,
    phc: String,
    reply: oneshot::Sender<bool>,
}

/// Verifies passwords; unknown users are verified against a dummy hash, so they cost the
/// same.
pub struct PasswordVerifier {
    admission: Arc<Semaphore>,
    in_flight: Arc<InFlight>,
    shared: Arc<Shared>,
}

/// Admitted attempts per throttle key, and a wake-up for attempts waiting on a key.
#[derive(Default)]
struct InFlight {
    counts: Mutex<HashMap<String, usize>>,
    settled: Notify,
}

/// A throttle key and how many attempts on it may be in flight at once (at least one).
pub type KeyCap<'a> = (&'a str, usize);

/// What a [`VerifyTurn`] needs, owned so that a turn can move into a task of its own.
struct Shared {
    jobs: mpsc::Sender<Job>,
    dummy_hash: String,
    verified: AtomicU64,
}

impl PasswordVerifier {
    /// Starts `threads` hashing threads; they end when the verifier is dropped.
    pub fn new(threads: usize) -> Result<Self, HashError> {
        let threads = threads.max(1);
        let dummy = random_token().map_err(|e| HashError::new(e.to_string()))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || hashing_thread(&rx))
                .map_err(|e| HashError::new(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self {
            admission: Arc::new(Semaphore::new(threads * ADMITTED_PER_THREAD)),
            in_flight: Arc::default(),
            shared: Arc::new(Shared {
                jobs: tx,
                dummy_hash: hash_password(&Password::new(dummy))?,
                verified: AtomicU64::new(0),
            }),
        })
    }

    /// Waits to be admitted: until each key has room under its cap, then for a place among
    /// the admitted. The caller holds the turn across its last throttle checks, the hash
    /// and the recording of the outcome, so that attempts queued behind it see that outcome
    /// (a lock set by this failure) before they are hashed.
    pub async fn turn(&self, keys: [KeyCap<'_>; 2]) -> Result<VerifyTurn, HashError> {
        // Keys first: attempts queued on one hot key do not hold places others could use.
        let keys = self.in_flight.enter(keys).await?;
        let permit = self
            .admission
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::new(e.to_string()))?;
        Ok(VerifyTurn {
            shared: self.shared.clone(),
            _keys: keys,
            _permit: permit,
        })
    }

    /// Password verifications run since start (exported on /metrics).
    pub fn count(&self) -> u64 {
        self.shared.verified.load(Ordering::Relaxed)
    }
}

/// One caller's admission (see [`PasswordVerifier::turn`]); ends when dropped.
pub struct VerifyTurn {
    shared: Arc<Shared>,
    _keys: KeysInFlight,
    _permit: OwnedSemaphorePermit,
}

impl InFlight {
    async fn enter(self: &Arc<Self>, keys: [KeyCap<'_>; 2]) -> Result<KeysInFlight, HashError> {
        let poisoned = || HashError::new("the throttle key table is poisoned".into());
        loop {
            // Registered before looking, so that a release in between is not missed.
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let mut counts = self.counts.lock().map_err(|_| poisoned())?;
                let room =
                    |&(k, cap): &KeyCap<'_>| counts.get(k).copied().unwrap_or(0) < cap.max(1);
                if keys.iter().all(room) {
                    for (k, _) in keys {
                        *counts.entry(k.to_owned()).or_default() += 1;
                    }
                    return Ok(KeysInFlight {
                        in_flight: self.clone(),
                        keys: keys.map(|(k, _)| k.to_owned()),
                    });
                }
            }
            settled.await;
        }
    }
}

/// An admitted attempt's place under its keys' caps; given back when dropped.
struct KeysInFlight {
    in_flight: Arc<InFlight>,
    keys: [String; 2],
}

impl Drop for KeysInFlight {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.in_flight.counts.lock() {
            for k in &self.keys {
                if let Some(n) = counts.get_mut(k) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        counts.remove(k);
                    }
                }
            }
        }
        self.in_flight.settled.notify_waiters();
    }
}

impl VerifyTurn {
    /// Verifies `password` against `phc`, or against the dummy hash when there is no user.
    pub async fn verify(&self, password: Password, phc: Option<String>) -> Result<bool, HashError> {
        let v = &self.shared;
        v.verified.fetch_add(1, Ordering::Relaxed);
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| v.dummy_hash.clone());
        let (reply, answer) = oneshot::channel();
        let job = Job {
            password,
            phc,
            reply,
        };
        v.jobs
            .send(job)
            .map_err(|_| HashError::new("the hashing threads are gone".into()))?;
        let ok = answer
            .await
            .map_err(|_| HashError::new("a hashing thread failed".into()))?;
        Ok(ok && known)
    }
}

fn hashing_thread(jobs: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        // One idle thread waits on the queue at a time; the others wait for the lock.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return; // the verifier was dropped
        };
        // A panic drops `reply` (the caller answers with an error) but not the thread.
        match catch_unwind(AssertUnwindSafe(|| {
            verify_password_in(&job.password, &job.phc, &mut blocks)
        })) {
            // The caller may have gone (a closed connection): nothing to tell.
            Ok(ok) => drop(job.reply.send(ok)),
            Err(_) => blocks = Vec::new(),
        }
    }
}

/// Nice 19 for the calling thread (Linux gives each thread its own nice value).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its integer arguments; `0` names the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}
