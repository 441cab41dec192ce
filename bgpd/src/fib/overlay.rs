//! The VXLAN overlay as the fib task's second route source, merged with the rib's
//! best routes before route-sync.
//!
//! The overlay's routes (from the dataplane task, built from the datastore's block
//! owners and tunnel endpoints) win over the rib's for their prefixes: a block of a
//! pool with `vxlan_mode = "always"` goes through the tunnel even when BGP carries
//! it too, since the underlay routers are assumed to know no pod routes. A BGP next
//! hop that is none of the owner's registered addresses is logged once per change
//! (the datastore is followed). When the overlay lets go of a prefix, the rib's
//! route for it comes back, or the prefix is removed.
//!
//! To bring the rib's route back, the rib's last change of every prefix inside a
//! pool is kept (pod blocks and borrowed addresses: as many as the cluster has);
//! until the first overlay value says which prefixes are pools, every prefix is
//! kept, then the others are forgotten.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use dataplane::vxlan::{OverlayRoute, OverlayRoutes, Via};
use ipnet::IpNet;
use route_sync::{Change, NextHop, Route, Target};

/// The merge of the rib's changes with the overlay's routes.
#[derive(Debug, Default)]
pub struct Merge {
    /// The overlay's routes; `None` until its first value.
    overlay: Option<BTreeMap<IpNet, OverlayRoute>>,
    pools: Vec<IpNet>,
    /// The rib's last change of each prefix kept in mind (see the module).
    rib: HashMap<IpNet, Change>,
}

impl Merge {
    /// Whether a first overlay value arrived.
    pub fn has_overlay(&self) -> bool {
        self.overlay.is_some()
    }

    /// A change from the rib: what route-sync gets (`None` when the overlay holds
    /// the prefix).
    pub fn from_rib(&mut self, change: Change) -> Option<Change> {
        let prefix = prefix_of(&change);
        let overlaid = self.overlay.as_ref().and_then(|o| o.get(&prefix));
        if let (Some(route), Change::Install(installed)) = (overlaid, &change) {
            disagreement(route, installed);
        }
        let passed = overlaid.is_none().then(|| change.clone());
        if self.remembers(&prefix) {
            match change {
                Change::Remove(_) => {
                    self.rib.remove(&prefix);
                }
                install => {
                    self.rib.insert(prefix, install);
                }
            }
        }
        passed
    }

    /// A new overlay value: what route-sync gets.
    pub fn replace(&mut self, wanted: OverlayRoutes) -> Vec<Change> {
        let old = self.overlay.take().unwrap_or_default();
        let new: BTreeMap<IpNet, OverlayRoute> = wanted
            .routes
            .into_iter()
            .map(|route| (route.block, route))
            .collect();
        self.pools = wanted.pools;
        let pools = &self.pools;
        self.rib
            .retain(|prefix, _| new.contains_key(prefix) || inside(pools, prefix));
        let mut changes = Vec::new();
        for prefix in old.keys().filter(|p| !new.contains_key(p)) {
            changes.push(
                self.rib
                    .get(prefix)
                    .cloned()
                    .unwrap_or(Change::Remove(*prefix)),
            );
        }
        for (prefix, route) in &new {
            if old.get(prefix) == Some(route) {
                continue;
            }
            if let Some(Change::Install(installed)) = self.rib.get(prefix) {
                disagreement(route, installed);
            }
            changes.push(Change::Install(kernel_route(route)));
        }
        self.overlay = Some(new);
        changes
    }

    fn remembers(&self, prefix: &IpNet) -> bool {
        match &self.overlay {
            None => true,
            Some(overlay) => overlay.contains_key(prefix) || inside(&self.pools, prefix),
        }
    }
}

fn inside(pools: &[IpNet], prefix: &IpNet) -> bool {
    pools.iter().any(|pool| pool.contains(prefix))
}

fn prefix_of(change: &Change) -> IpNet {
    match change {
        Change::Install(route) => route.prefix,
        Change::Remove(prefix) => *prefix,
    }
}

/// The kernel route of an overlay route.
pub fn kernel_route(route: &OverlayRoute) -> Route {
    let hop = match &route.via {
        Via::Tunnel {
            tunnel_address,
            device,
        } => NextHop::OnLink {
            address: *tunnel_address,
            device: (*device).to_string(),
        },
        Via::Direct { address, device } => NextHop::Gateway {
            address: *address,
            device: Some(device.clone()),
        },
    };
    Route {
        prefix: route.block,
        target: Target::Unicast(vec![hop]),
    }
}

/// Logs a BGP route whose next hops are none of the block owner's addresses.
fn disagreement(overlay: &OverlayRoute, rib: &Route) {
    let Target::Unicast(hops) = &rib.target else {
        return;
    };
    let gateways: Vec<IpAddr> = hops.iter().filter_map(gateway).collect();
    if gateways.is_empty() || gateways.iter().any(|g| overlay.owner_addresses.contains(g)) {
        return;
    }
    tracing::warn!(
        block = %overlay.block,
        bgp_next_hops = ?gateways,
        owner = %overlay.owner,
        owner_addresses = ?overlay.owner_addresses,
        "fib: BGP and the datastore disagree on who owns the block; following the datastore"
    );
}

fn gateway(hop: &NextHop) -> Option<IpAddr> {
    match hop {
        NextHop::Gateway { address, .. } | NextHop::OnLink { address, .. } => Some(*address),
        NextHop::GlobalOrLinkLocal { global, .. } => Some(IpAddr::V6(*global)),
        NextHop::Device(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn bgp(prefix: &str, next_hop: &str) -> Change {
        Change::Install(Route {
            prefix: net(prefix),
            target: Target::Unicast(vec![NextHop::gateway(next_hop.parse().unwrap())]),
        })
    }

    fn overlay_route(block: &str, tunnel: &str) -> OverlayRoute {
        OverlayRoute {
            block: net(block),
            owner: "b".into(),
            owner_addresses: vec!["192.0.2.2".parse().unwrap()],
            via: Via::Tunnel {
                tunnel_address: tunnel.parse().unwrap(),
                device: "vxlan.wren",
            },
        }
    }

    fn routes(routes: Vec<OverlayRoute>) -> OverlayRoutes {
        OverlayRoutes {
            pools: vec![net("10.244.0.0/16")],
            routes,
        }
    }

    #[test]
    fn the_overlay_wins_and_gives_the_rib_route_back() {
        let mut merge = Merge::default();
        // Before the first overlay value, the rib's routes pass and are kept.
        let block = bgp("10.244.1.0/26", "192.0.2.2");
        assert_eq!(merge.from_rib(block.clone()), Some(block.clone()));
        let outside = bgp("198.51.100.0/24", "192.0.2.9");
        assert_eq!(merge.from_rib(outside.clone()), Some(outside));
        let tunnel = overlay_route("10.244.1.0/26", "10.244.1.1");
        assert_eq!(
            merge.replace(routes(vec![tunnel.clone()])),
            [Change::Install(kernel_route(&tunnel))]
        );
        // Only what lies inside a pool is kept in mind.
        assert_eq!(merge.rib.len(), 1);
        // The rib's changes of an overlaid prefix are held back (and kept).
        let moved = bgp("10.244.1.0/26", "192.0.2.3");
        assert_eq!(merge.from_rib(moved.clone()), None);
        // The same overlay again: nothing.
        assert_eq!(merge.replace(routes(vec![tunnel])), []);
        // The overlay lets go: the rib's last route comes back.
        assert_eq!(merge.replace(routes(vec![])), [moved]);
        // Withdrawn by the rib while overlaid: removed when the overlay lets go.
        let other = overlay_route("10.244.2.0/26", "10.244.2.1");
        merge.replace(routes(vec![other]));
        assert_eq!(merge.from_rib(Change::Remove(net("10.244.2.0/26"))), None);
        assert_eq!(
            merge.replace(routes(vec![])),
            [Change::Remove(net("10.244.2.0/26"))]
        );
        assert!(merge.rib.contains_key(&net("10.244.1.0/26")));
        assert!(!merge.rib.contains_key(&net("10.244.2.0/26")));
    }
}
