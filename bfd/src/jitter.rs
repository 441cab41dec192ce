//! The jitter of periodic transmission (RFC 5880 section 6.8.7): each interval is
//! reduced by a random 0 to 25 %, or by 10 to 25 % when Detect Mult is 1. The crate
//! has no randomness of its own: [`Jitter`] is a small generator (SplitMix64) the
//! caller seeds, so a run is reproducible from its seed.

use std::time::Duration;

/// A caller-seeded generator of jitter fractions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator starting from `seed` (the transport seeds it from the OS's
    /// randomness; tests from a constant).
    pub fn new(seed: u64) -> Jitter {
        Jitter { state: seed }
    }

    /// The next 64 random bits (SplitMix64).
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `interval` reduced by a random fraction: between 75 % and 100 % of it, or
    /// between 75 % and 90 % when `detect_mult` is 1.
    pub fn apply(&mut self, interval: Duration, detect_mult: u8) -> Duration {
        apply(interval, detect_mult, self.next())
    }
}

/// `interval` reduced by the fraction `random` picks (the whole u64 range maps onto
/// the allowed reduction, so the bounds hold for every `random`).
pub fn apply(interval: Duration, detect_mult: u8, random: u64) -> Duration {
    // Parts per 10 000 to keep: [7500, 10000] or [7500, 9000].
    let top: u64 = if detect_mult == 1 { 9000 } else { 10_000 };
    let span = top - 7500 + 1;
    let keep = 7500 + random % span;
    let nanos = interval.as_nanos() * u128::from(keep) / 10_000;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}
