//! Best-route changes for the event stream (`Event::BestRoute`, which `bgpctl
//! monitor routes` shows): while somebody listens ([`Rib::watch`]), every change of
//! a prefix's selected paths is recorded with the best path's next hops, AS path and
//! source, and the task takes them after each turn ([`Rib::take_best_routes`]).
//! Nobody listening costs one flag test per change.

use control_proto::{RouteAction, RouteChange};

use super::Rib;
use super::table::{Net, Path, PeerIdx};

impl Rib {
    /// Records best-route changes from now on (`true`) or stops (`false`, dropping
    /// what was not taken).
    pub fn watch(&mut self, on: bool) {
        self.best_routes = on.then(|| self.best_routes.take().unwrap_or_default());
    }

    /// The best-route changes recorded since the last call, in order.
    pub fn take_best_routes(&mut self) -> Vec<RouteChange> {
        self.best_routes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Records the change at `slot` whose selection was `before` (already known to
    /// differ from the selection now), when watched.
    pub(super) fn record_best_route<K: Net>(&mut self, slot: u32, before: &[Path]) {
        if self.best_routes.is_none() {
            return;
        }
        let entry = K::table(&self.tables).entry(slot);
        let prefix = entry.net.ip_net();
        let after = entry.selected();
        let change = match after.first() {
            None => RouteChange {
                action: RouteAction::Withdraw,
                prefix,
                next_hops: Vec::new(),
                as_path: String::new(),
                source: before
                    .first()
                    .map_or_else(|| "unknown".into(), |p| self.source(p.peer)),
            },
            Some(best) => {
                let mut next_hops = Vec::with_capacity(after.len());
                for path in after {
                    if let Some(hop) = self.attrs.get(path.accepted).next_hop.address()
                        && !next_hops.contains(&hop)
                    {
                        next_hops.push(hop);
                    }
                }
                RouteChange {
                    action: if before.is_empty() {
                        RouteAction::Add
                    } else {
                        RouteAction::Change
                    },
                    prefix,
                    next_hops,
                    as_path: self
                        .attrs
                        .get(best.accepted)
                        .path
                        .as_path
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    source: self.source(best.peer),
                }
            }
        };
        if let Some(changes) = self.best_routes.as_mut() {
            changes.push(change);
        }
    }

    /// A path's source as `show routes` names it: the neighbor's address or "local".
    fn source(&self, idx: PeerIdx) -> String {
        match self.peer(idx) {
            Some(peer) if peer.local.is_some() => "local".into(),
            Some(peer) => peer
                .address()
                .map_or_else(|| "unknown".into(), |a| a.to_string()),
            None => "unknown".into(),
        }
    }
}
