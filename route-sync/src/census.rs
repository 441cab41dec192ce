//! The counts route-sync keeps of its own table, so that [`crate::Summary`] (what
//! bgpd's metrics read at every scrape) is answered in one turn of the syncer task,
//! at a million routes as at ten, without walking the table.
//!
//! [`crate::table::Tables`] reports every change to a slot (through its guard,
//! `SlotMut`, and when it queues, dequeues or removes one) as the slot's [`View`]
//! before and after; the counts move accordingly. Installed
//! routes are counted per family and interned kernel form (a slot holds a
//! reference to its kernel form, so a counted id is never reused); the few distinct
//! forms are turned into kinds (`unicast`, `blackhole`, ...) when a summary is
//! taken.

use std::collections::HashMap;

/// What the counts see of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    desired: bool,
    kernel: Option<u32>,
    queued: bool,
}

impl View {
    /// No slot at all.
    pub(crate) const NONE: View = View {
        desired: false,
        kernel: None,
        queued: false,
    };

    /// A slot that is desired or not, holds this kernel form or none, and is
    /// queued for a decision or not.
    pub(crate) fn new(desired: bool, kernel: Option<u32>, queued: bool) -> View {
        View {
            desired,
            kernel,
            queued,
        }
    }

    /// Desired, decided, and not in the kernel: the route could not be installed
    /// (its next hop does not resolve, or the kernel refused it).
    fn failed(self) -> bool {
        self.desired && self.kernel.is_none() && !self.queued
    }
}

/// Installed routes per family and kernel form, and failed routes.
#[derive(Debug, Default)]
pub(crate) struct Census {
    /// (IPv6, interned kernel form) -> routes of ours in the kernel in that form.
    installed: HashMap<(bool, u32), u64>,
    failed: u64,
}

impl Census {
    /// A slot of the family `v6` went from `before` to `after`.
    pub(crate) fn change(&mut self, v6: bool, before: View, after: View) {
        if before.kernel != after.kernel {
            if let Some(old) = before.kernel
                && let Some(count) = self.installed.get_mut(&(v6, old))
            {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.installed.remove(&(v6, old));
                }
            }
            if let Some(new) = after.kernel {
                *self.installed.entry((v6, new)).or_default() += 1;
            }
        }
        match (before.failed(), after.failed()) {
            (false, true) => self.failed += 1,
            (true, false) => self.failed = self.failed.saturating_sub(1),
            _ => {}
        }
    }

    /// (IPv6, interned kernel form, routes) for every form in use.
    pub(crate) fn installed(&self) -> impl Iterator<Item = (bool, u32, u64)> + '_ {
        self.installed
            .iter()
            .map(|(&(v6, kind), &count)| (v6, kind, count))
    }

    /// Desired routes that are decided and not in the kernel.
    pub(crate) fn failed(&self) -> u64 {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(desired: bool, kernel: Option<u32>, queued: bool) -> View {
        View::new(desired, kernel, queued)
    }

    #[test]
    fn installed_and_failed_follow_the_views() {
        let mut census = Census::default();
        // Desired and queued: neither installed nor failed yet.
        census.change(false, View::NONE, view(true, None, true));
        assert_eq!((census.installed().count(), census.failed()), (0, 0));
        // Decided and not installed: failed.
        census.change(false, view(true, None, true), view(true, None, false));
        assert_eq!(census.failed(), 1);
        // Installed as form 3.
        census.change(false, view(true, None, false), view(true, Some(3), false));
        assert_eq!(census.failed(), 0);
        assert_eq!(census.installed().collect::<Vec<_>>(), [(false, 3, 1)]);
        // Same form in IPv6, then the IPv4 one replaced by form 4.
        census.change(true, View::NONE, view(true, Some(3), false));
        census.change(
            false,
            view(true, Some(3), false),
            view(true, Some(4), false),
        );
        let mut installed: Vec<_> = census.installed().collect();
        installed.sort();
        assert_eq!(installed, [(false, 4, 1), (true, 3, 1)]);
        // Removed: nothing left.
        census.change(false, view(true, Some(4), false), View::NONE);
        census.change(true, view(true, Some(3), false), View::NONE);
        assert_eq!((census.installed().count(), census.failed()), (0, 0));
    }
}
