//! [`Summary`]: the counts of a syncer, made from what it keeps
//! ([`crate::census`], its counters, the batch durations), never by walking its
//! routes, and published by its task on a `watch` after every batch and every
//! round. bgpd's metrics read the latest at every scrape without waiting for the
//! task; `show fib` is the whole [`crate::Snapshot`] instead.
//!
//! The batch durations are a histogram of fixed buckets kept by the syncer task
//! itself (plain integers: one task owns them, so no atomics), copied into each
//! summary and encoded by bgpd: route-sync needs no metrics library.

use std::time::Duration;

use crate::Counters;

/// Upper bounds of [`Histogram`]'s buckets, in seconds (a batch carries up to
/// 2048 requests: from a tenth of a millisecond to seconds on a loaded host).
pub const BATCH_DURATION_BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The counts of one syncer at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The end of initial convergence was marked.
    pub converged: bool,
    /// Routes of ours in the kernel per family and kind, sorted.
    pub routes: Vec<RouteCount>,
    /// Desired routes that are not in the kernel (their next hop does not
    /// resolve, or the kernel refused them): `show fib`'s `failed`.
    pub failed: u64,
    pub counters: Counters,
    /// How long each batch of requests took the kernel to apply (sent to the
    /// last acknowledgement).
    pub batch_durations: Histogram,
}

/// Routes of ours in the kernel of one family and kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteCount {
    pub ipv6: bool,
    /// `unicast`, `blackhole` or `type N` (the kernel's route type number), as
    /// `show fib` names it.
    pub kind: String,
    pub routes: u64,
}

/// A histogram over [`BATCH_DURATION_BOUNDS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative): one per bound, then one above
    /// the last bound.
    pub counts: [u64; BATCH_DURATION_BOUNDS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: [0; BATCH_DURATION_BOUNDS.len() + 1],
            sum_seconds: 0.0,
            count: 0,
        }
    }
}

impl Histogram {
    pub fn observe(&mut self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = BATCH_DURATION_BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BATCH_DURATION_BOUNDS.len());
        self.counts[bucket] += 1;
        self.sum_seconds += seconds;
        self.count += 1;
    }

    /// (upper bound, observations) per bucket, the last one's bound infinite: the
    /// shape of prometheus-client's `encode_histogram`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        BATCH_DURATION_BOUNDS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_their_bucket() {
        let mut histogram = Histogram::default();
        histogram.observe(Duration::from_micros(100));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(10));
        let buckets = histogram.buckets();
        assert_eq!(buckets.len(), BATCH_DURATION_BOUNDS.len() + 1);
        assert_eq!(buckets[0], (0.0001, 1));
        assert_eq!(buckets[5], (0.005, 1));
        assert_eq!(buckets[14], (f64::INFINITY, 1));
        assert_eq!(histogram.count, 3);
        assert!((histogram.sum_seconds - 10.0031).abs() < 1e-9);
    }
}
