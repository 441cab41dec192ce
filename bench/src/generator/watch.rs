//! Prefixes a simulated peer follows one by one while it only counts the others: the
//! `scale-churn` scenario's flapping nodes' blocks, at every stable node. A [`Watch`] is
//! shared by every peer that follows it; each peer keeps a [`Seen`] of a few octets per
//! watched prefix (latest announcement, presence), so thousands of peers can follow
//! hundreds of prefixes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

/// The prefixes to follow, numbered from 0 in the order given.
#[derive(Debug)]
pub struct Watch {
    positions: HashMap<Ipv4Net, u32>,
    /// Times are kept as microseconds after this instant.
    base: Instant,
}

impl Watch {
    /// Follows `prefixes`, times counted from now.
    pub fn new(prefixes: &[Ipv4Net]) -> Watch {
        Watch {
            positions: prefixes
                .iter()
                .enumerate()
                .map(|(i, net)| (*net, i as u32))
                .collect(),
            base: Instant::now(),
        }
    }

    /// How many prefixes are followed.
    fn len(&self) -> usize {
        self.positions.len()
    }

    fn position(&self, net: &Ipv4Net) -> Option<usize> {
        self.positions.get(net).map(|&i| i as usize)
    }

    /// `at` as stored: microseconds after the base, plus one (0 means never), saturated.
    fn stamp(&self, at: Instant) -> u32 {
        let micros = at.saturating_duration_since(self.base).as_micros();
        u32::try_from(micros).unwrap_or(u32::MAX - 1) + 1
    }

    fn instant(&self, stamp: u32) -> Option<Instant> {
        stamp
            .checked_sub(1)
            .map(|micros| self.base + Duration::from_micros(u64::from(micros)))
    }
}

/// What one peer saw of a watch's prefixes, over all its sessions.
#[derive(Debug, Default)]
pub struct Seen {
    /// Per watched prefix, its latest announcement or withdrawal ([`Watch::stamp`]).
    changed: Vec<u32>,
    /// Per watched prefix, whether it is announced now.
    present: Vec<bool>,
    /// Withdrawals of every other prefix.
    pub other_withdrawn: u64,
}

impl Seen {
    /// Records one UPDATE's withdrawn prefixes, then its announced ones, received `at`.
    pub fn record<'a>(
        &mut self,
        watch: &Watch,
        at: Instant,
        withdrawn: impl Iterator<Item = &'a Ipv4Net>,
        announced: impl Iterator<Item = &'a Ipv4Net>,
    ) {
        if self.changed.len() != watch.len() {
            self.changed = vec![0; watch.len()];
            self.present = vec![false; watch.len()];
        }
        let stamp = watch.stamp(at);
        for net in withdrawn {
            match watch.position(net) {
                Some(i) => {
                    self.present[i] = false;
                    self.changed[i] = stamp;
                }
                None => self.other_withdrawn += 1,
            }
        }
        for net in announced {
            if let Some(i) = watch.position(net) {
                self.changed[i] = stamp;
                self.present[i] = true;
            }
        }
    }

    /// Watched prefix `i`: its latest announcement, if it is announced now.
    pub fn present_since(&self, watch: &Watch, i: usize) -> Option<Instant> {
        if !self.present.get(i).copied().unwrap_or(false) {
            return None;
        }
        watch.instant(self.changed.get(i).copied().unwrap_or(0))
    }

    /// Watched prefix `i`: when it was withdrawn, if it was announced once and is not now.
    pub fn withdrawn_since(&self, watch: &Watch, i: usize) -> Option<Instant> {
        if self.present.get(i).copied().unwrap_or(true) {
            return None;
        }
        watch.instant(self.changed.get(i).copied().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::updates;

    #[test]
    fn follows_watched_prefixes_and_counts_the_others() {
        let watched = updates::prefixes(10..13);
        let watch = Watch::new(&watched);
        let mut seen = Seen::default();
        let at = watch.base + Duration::from_millis(5);
        let other = updates::prefix(1);
        seen.record(&watch, at, [].iter(), [watched[1], other].iter());
        assert_eq!(seen.present_since(&watch, 0), None);
        assert_eq!(seen.present_since(&watch, 1), Some(at));
        let later = at + Duration::from_millis(7);
        seen.record(&watch, later, [watched[1], other].iter(), [].iter());
        assert_eq!(seen.present_since(&watch, 1), None);
        assert_eq!(seen.withdrawn_since(&watch, 1), Some(later));
        assert_eq!(seen.withdrawn_since(&watch, 0), None);
        assert_eq!(seen.other_withdrawn, 1);
        let back = later + Duration::from_millis(3);
        seen.record(&watch, back, [watched[1]].iter(), [watched[1]].iter());
        assert_eq!(seen.present_since(&watch, 1), Some(back));
        assert_eq!(seen.withdrawn_since(&watch, 1), None);
        assert_eq!(seen.present_since(&watch, 7), None);
    }
}
