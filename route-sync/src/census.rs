//! The counts route-sync keeps of its own table, so that [`crate::Summary`] (what
//! bgpd's metrics read at every scrape) is answered in one turn of the syncer task,
//! at a million routes as at ten, without walking the table.
//!
//! [`crate::table::Tables`] reports every change to a slot (through its guard,
//! `SlotMut`, and when it queues, dequeues or removes one) as the slot's [`View`]
//! before and after; the counts move accordingly. Installed
//! routes are counted per family and interned kernel form (a slot holds a
//! reference to its kernel form, so a counted id is never reused while counted),
//! and per family and kind (`unicast`, `blackhole`, ...): a form is named once, at
//! the first summary after it appears, and from then on its changes move its
//! kind's count too. A summary therefore costs the forms new since the last one
//! plus the few kinds, not one step per form: with a next hop per node, a
//! reflector's table has as many forms as routes.

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

/// Installed routes per family and kernel form, per family and kind, and failed
/// routes.
#[derive(Debug, Default)]
pub(crate) struct Census {
    /// (IPv6, interned kernel form) -> routes of ours in the kernel in that form.
    installed: HashMap<(bool, u32), Form>,
    /// (IPv6, kind as an index into `names`) -> routes of ours in the kernel, over
    /// the named forms.
    kinds: HashMap<(bool, usize), u64>,
    /// Every kind named so far (a few: `unicast`, `blackhole`, `type N` with N a
    /// kernel route type, so at most 258).
    names: Vec<String>,
    /// Forms counted since the last summary, to be named (some may be gone).
    unnamed: Vec<(bool, u32)>,
    failed: u64,
}

/// The routes in one kernel form, and its kind once named.
#[derive(Debug, Default)]
struct Form {
    routes: u64,
    /// Index into `Census::names`.
    kind: Option<usize>,
}

impl Census {
    /// A slot of the family `v6` went from `before` to `after`.
    pub(crate) fn change(&mut self, v6: bool, before: View, after: View) {
        if before.kernel != after.kernel {
            if let Some(old) = before.kernel
                && let Some(form) = self.installed.get_mut(&(v6, old))
            {
                form.routes = form.routes.saturating_sub(1);
                if let Some(kind) = form.kind
                    && let Some(count) = self.kinds.get_mut(&(v6, kind))
                {
                    *count = count.saturating_sub(1);
                }
                if form.routes == 0 {
                    self.installed.remove(&(v6, old));
                }
            }
            if let Some(new) = after.kernel {
                let form = self.installed.entry((v6, new)).or_insert_with(|| {
                    self.unnamed.push((v6, new));
                    Form::default()
                });
                form.routes += 1;
                if let Some(kind) = form.kind {
                    *self.kinds.entry((v6, kind)).or_default() += 1;
                }
            }
        }
        match (before.failed(), after.failed()) {
            (false, true) => self.failed += 1,
            (true, false) => self.failed = self.failed.saturating_sub(1),
            _ => {}
        }
    }

    /// (IPv6, kind, routes) for every kind in use, in order; `name` names the
    /// forms that appeared since the last call (each form once in its life).
    pub(crate) fn kinds(
        &mut self,
        mut name: impl FnMut(u32) -> String,
    ) -> Vec<(bool, String, u64)> {
        for (v6, id) in self.unnamed.drain(..) {
            if let Some(form) = self.installed.get_mut(&(v6, id))
                && form.kind.is_none()
            {
                let kind = name(id);
                let index = match self.names.iter().position(|known| *known == kind) {
                    Some(index) => index,
                    None => {
                        self.names.push(kind);
                        self.names.len() - 1
                    }
                };
                *self.kinds.entry((v6, index)).or_default() += form.routes;
                form.kind = Some(index);
            }
        }
        self.kinds.retain(|_, count| *count > 0);
        let mut kinds: Vec<(bool, String, u64)> = self
            .kinds
            .iter()
            .filter_map(|(&(v6, index), &count)| Some((v6, self.names.get(index)?.clone(), count)))
            .collect();
        kinds.sort();
        kinds
    }

    /// (IPv6, interned kernel form, routes) for every form in use.
    #[cfg(test)]
    pub(crate) fn installed(&self) -> impl Iterator<Item = (bool, u32, u64)> + '_ {
        self.installed
            .iter()
            .map(|(&(v6, kind), form)| (v6, kind, form.routes))
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

    fn kinds(census: &mut Census, names: &[(u32, &str)]) -> Vec<(bool, String, u64)> {
        let name = |id: u32| {
            names
                .iter()
                .find(|&&(form, _)| form == id)
                .map_or_else(|| String::from("unknown"), |&(_, kind)| kind.to_string())
        };
        census.kinds(name)
    }

    #[test]
    fn kinds_sum_their_forms_named_once() {
        let mut census = Census::default();
        let installed = |form| view(true, Some(form), false);
        // Two unicast forms (different next hops) and a blackhole.
        census.change(false, View::NONE, installed(1));
        census.change(false, View::NONE, installed(2));
        census.change(false, View::NONE, installed(2));
        census.change(true, View::NONE, installed(9));
        let names = [(1, "unicast"), (2, "unicast"), (9, "blackhole")];
        assert_eq!(
            kinds(&mut census, &names),
            [
                (false, "unicast".to_string(), 3),
                (true, "blackhole".to_string(), 1)
            ]
        );
        // Named forms are not named again: a namer that knows nothing changes
        // nothing for them, while their counts still move.
        census.change(false, installed(2), View::NONE);
        census.change(true, installed(9), installed(1));
        assert_eq!(
            kinds(&mut census, &[]),
            [
                (false, "unicast".to_string(), 2),
                (true, "unknown".to_string(), 1)
            ]
        );
        // A form that came and went between two summaries is never named; the id
        // reused afterwards for another kind is named anew.
        census.change(false, View::NONE, installed(5));
        census.change(false, installed(5), View::NONE);
        census.change(false, installed(1), View::NONE);
        census.change(false, installed(2), View::NONE);
        assert_eq!(kinds(&mut census, &[]), [(true, "unknown".to_string(), 1)]);
        census.change(false, View::NONE, installed(1));
        assert_eq!(
            kinds(&mut census, &[(1, "type 7")]),
            [
                (false, "type 7".to_string(), 1),
                (true, "unknown".to_string(), 1)
            ]
        );
    }
}
