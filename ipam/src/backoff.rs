//! The retry policy every operation shares: jittered exponential backoff between
//! attempts lost to concurrent writers, giving up after [`MAX_ATTEMPTS`]. A leaf
//! module, so that the allocator and the single-key writes of `handles` both use it
//! without using each other. Every retry of the process is counted ([`retries`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::IpamError;

/// Attempts an operation makes before giving up on contention (Calico's figure).
pub const MAX_ATTEMPTS: u32 = 100;

/// Attempts retried by every operation of this process (each wait of a [`Backoff`]).
static RETRIES: AtomicU64 = AtomicU64::new(0);

/// How many times the operations of this process have retried since it started: an
/// attempt lost to a concurrent writer (a compare-and-swap that found another
/// revision, a block claimed by another node) or that repaired a state left between
/// two writes, then backed off and read again.
pub fn retries() -> u64 {
    RETRIES.load(Ordering::Relaxed)
}

/// Jittered exponential backoff between attempts lost to concurrent writers.
pub(crate) struct Backoff {
    url: String,
    attempts: u32,
    seed: u64,
}

impl Backoff {
    pub(crate) fn new(url: &str) -> Backoff {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Backoff {
            url: url.to_string(),
            attempts: 0,
            seed: (u64::from(std::process::id()) << 32 | u64::from(nanos)) | 1,
        }
    }

    /// Waits before the next attempt, or fails after [`MAX_ATTEMPTS`].
    pub(crate) async fn wait(&mut self) -> Result<(), IpamError> {
        self.attempts += 1;
        if self.attempts >= MAX_ATTEMPTS {
            return Err(IpamError::Contention {
                url: self.url.clone(),
                attempts: self.attempts,
            });
        }
        RETRIES.fetch_add(1, Ordering::Relaxed);
        // xorshift64
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let ceiling_us = 200u64 << self.attempts.min(8); // 0.4 ms .. 51 ms
        let pause = Duration::from_micros(self.seed % ceiling_us);
        tokio::time::sleep(pause).await;
        Ok(())
    }
}
