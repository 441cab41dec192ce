//! Answers to the control server: `bgpctl show routes` (Loc-RIB, or one neighbor's
//! received or advertised routes) and per-neighbor prefix counters.
//!
//! A whole-table answer is built in bounded turns: [`Rib::prefix_chunk`] lists the
//! prefixes of up to [`PREFIX_SCAN`](crate::tasks::PREFIX_SCAN) slots, and
//! [`Rib::route_chunk`] builds the paths of up to
//! [`ROUTE_CHUNK`](crate::tasks::ROUTE_CHUNK) prefixes; the control server sorts the
//! prefixes and asks for them chunk by chunk (see `control::routes`).

use std::net::IpAddr;

use bgp_proto::Origin;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::Rib;
use super::attrs::{NO_ATTR, RouteAttrs};
use super::table::{Net, PeerIdx};
use control_proto::{FamilyName, RouteLine, RouteQuery, RouteTable, RouteView};

use crate::tasks::{
    FamilyCounts, PeerCounters, PeerFamilyCounts, PeerId, PrefixChunk, PrefixCursor, RibCounts,
};

impl Rib {
    /// The routes a query asks for, sorted by prefix, best path first.
    pub fn routes(&mut self, query: &RouteQuery) -> Vec<RouteLine> {
        let Some((view, neighbor)) = self.view_of(query) else {
            return Vec::new();
        };
        let mut routes = Vec::new();
        let (v4, v6) = match query.family {
            None => (true, true),
            Some(FamilyName::Ipv4) => (true, false),
            Some(FamilyName::Ipv6) => (false, true),
        };
        match query.prefix {
            Some(IpNet::V4(net)) if v4 => {
                if let Some(slot) = self.longest_match(net) {
                    self.views::<Ipv4Net>(slot, view, neighbor, &mut routes);
                }
            }
            Some(IpNet::V6(net)) if v6 => {
                if let Some(slot) = self.longest_match(net) {
                    self.views::<Ipv6Net>(slot, view, neighbor, &mut routes);
                }
            }
            Some(_) => {}
            None => {
                if v4 {
                    for slot in self.tables.v4.slots() {
                        self.views::<Ipv4Net>(slot, view, neighbor, &mut routes);
                    }
                }
                if v6 {
                    for slot in self.tables.v6.slots() {
                        self.views::<Ipv6Net>(slot, view, neighbor, &mut routes);
                    }
                }
            }
        }
        routes.sort_by(|a, b| a.prefix.cmp(&b.prefix).then(b.best.cmp(&a.best)));
        routes
    }

    /// The prefixes with paths in up to `max` slots from `from` on (tables' order:
    /// IPv4 then IPv6, by slot), those of `family` only and after `after` only.
    pub fn prefix_chunk(
        &self,
        family: Option<FamilyName>,
        after: Option<IpNet>,
        from: PrefixCursor,
        max: usize,
    ) -> PrefixChunk {
        let mut prefixes = Vec::new();
        let mut keep = |net: IpNet| {
            if after.is_none_or(|after| net > after) {
                prefixes.push(net);
            }
        };
        let next = match from.family {
            0 if family != Some(FamilyName::Ipv6) => self
                .tables
                .v4
                .scan(from.slot, max, |net| keep(IpNet::V4(net)))
                .map(|slot| PrefixCursor { family: 0, slot })
                .or((family.is_none()).then_some(PrefixCursor { family: 1, slot: 0 })),
            0 => Some(PrefixCursor { family: 1, slot: 0 }),
            1 if family != Some(FamilyName::Ipv4) => self
                .tables
                .v6
                .scan(from.slot, max, |net| keep(IpNet::V6(net)))
                .map(|slot| PrefixCursor { family: 1, slot }),
            _ => None,
        };
        PrefixChunk { prefixes, next }
    }

    /// The paths `query` selects (its view and neighbor; not its prefix or family)
    /// of exactly these prefixes, in the order given, each prefix's best path first.
    pub fn route_chunk(&mut self, prefixes: &[IpNet], query: &RouteQuery) -> Vec<RouteLine> {
        let Some((view, neighbor)) = self.view_of(query) else {
            return Vec::new();
        };
        let mut routes = Vec::new();
        for prefix in prefixes {
            let start = routes.len();
            match *prefix {
                IpNet::V4(net) => {
                    if let Some(slot) = self.tables.v4.find(net) {
                        self.views::<Ipv4Net>(slot, view, neighbor, &mut routes);
                    }
                }
                IpNet::V6(net) => {
                    if let Some(slot) = self.tables.v6.find(net) {
                        self.views::<Ipv6Net>(slot, view, neighbor, &mut routes);
                    }
                }
            }
            routes[start..].sort_by_key(|route| std::cmp::Reverse(route.best));
        }
        routes
    }

    /// The table and neighbor a query reads; `None` for an unknown neighbor.
    fn view_of(&self, query: &RouteQuery) -> Option<(RouteTable, Option<PeerIdx>)> {
        match query.neighbor {
            Some(address) => Some((query.view, Some(self.index_by_address(address)?))),
            None => Some((RouteTable::LocRib, None)),
        }
    }

    /// Prefix counters of a neighbor.
    pub fn counters(&self, peer: PeerId) -> PeerCounters {
        let Some(&idx) = self.by_id.get(&peer) else {
            return PeerCounters::default();
        };
        let Some(record) = self.peer(idx) else {
            return PeerCounters::default();
        };
        PeerCounters {
            received: record.counters.iter().map(|c| c.received).sum(),
            accepted: record.counters.iter().map(|c| c.accepted).sum(),
            advertised: self.advertised(idx).iter().sum(),
        }
    }

    /// The whole RIB's and every neighbor's prefix counts, per family: read from the
    /// counts kept as paths change, O(neighbors).
    pub fn counts(&self) -> RibCounts {
        let mut counts = RibCounts::default();
        for (index, family) in counts.families.iter_mut().enumerate() {
            *family = FamilyCounts {
                prefixes: self.routed[index],
                paths: self
                    .peers
                    .iter()
                    .flatten()
                    .map(|peer| peer.counters[index].received)
                    .sum(),
            };
        }
        for (idx, peer) in self.peers.iter().enumerate() {
            let Some((id, peer)) = peer.as_ref().and_then(|p| Some((p.id?, p))) else {
                continue;
            };
            let advertised = PeerIdx::try_from(idx).map_or([0; 2], |idx| self.advertised(idx));
            let family = |index: usize| PeerFamilyCounts {
                received: peer.counters[index].received,
                accepted: peer.counters[index].accepted,
                advertised: advertised[index],
                stale: peer.counters[index].stale,
            };
            counts.peers.push((id, [family(0), family(1)]));
        }
        counts
    }

    fn index_by_address(&self, address: IpAddr) -> Option<PeerIdx> {
        self.peers
            .iter()
            .position(|p| {
                p.as_ref()
                    .is_some_and(|p| p.local.is_none() && p.address() == Some(address))
            })
            .and_then(|i| PeerIdx::try_from(i).ok())
    }

    /// The entry for `net` exactly, else the longest prefix covering it.
    fn longest_match<K: LongestMatch>(&self, net: K) -> Option<u32> {
        let table = K::table(&self.tables);
        net.covering().find_map(|candidate| {
            table
                .find(candidate)
                .filter(|&slot| !table.entry(slot).paths.is_empty())
        })
    }

    fn views<K: Net>(
        &mut self,
        slot: u32,
        view: RouteTable,
        neighbor: Option<PeerIdx>,
        routes: &mut Vec<RouteLine>,
    ) {
        let entry = K::table(&self.tables).entry(slot);
        let prefix = entry.net.ip_net();
        let selected = usize::from(entry.best);
        match view {
            RouteTable::LocRib | RouteTable::Received => {
                for (position, path) in entry.paths.as_slice().iter().enumerate() {
                    if neighbor.is_some_and(|n| n != path.peer) {
                        continue;
                    }
                    let attrs = if view == RouteTable::Received {
                        path.received
                    } else if path.accepted == NO_ATTR {
                        continue; // rejected by import policy: not in the Loc-RIB
                    } else {
                        path.accepted
                    };
                    let source = self.source_name(path.peer);
                    routes.push(route_view(
                        prefix,
                        self.attrs.get(attrs),
                        position < selected,
                        source,
                    ));
                }
            }
            RouteTable::Advertised => {
                let Some(dest) = neighbor else {
                    return;
                };
                let advertised = self
                    .peer(dest)
                    .is_some_and(|p| p.out[K::INDEX].advertised.contains(slot));
                let (net, best) = (entry.net, entry.best_path());
                if !advertised {
                    return;
                }
                let Some(best) = best else {
                    return;
                };
                if let Some(out) = self.export::<K>(dest, net, best)
                    && let Some(attrs) = self.attrs.shared(out)
                {
                    let source = self.source_name(best.peer);
                    routes.push(route_view(prefix, &attrs, true, source));
                }
            }
        }
    }

    fn source_name(&self, idx: PeerIdx) -> String {
        match self.peer(idx) {
            Some(peer) if peer.local.is_none() => peer
                .address()
                .map_or_else(|| "unknown".into(), |a| a.to_string()),
            _ => "local".into(),
        }
    }
}

/// A route as `bgpctl show routes` prints it.
fn route_view(prefix: IpNet, attrs: &RouteAttrs, best: bool, source: String) -> RouteLine {
    let path = &attrs.path;
    let communities = path
        .communities
        .iter()
        .map(ToString::to_string)
        .chain(path.large_communities.iter().map(ToString::to_string))
        .collect();
    let view = RouteView {
        prefix,
        next_hops: attrs.next_hop.address().into_iter().collect(),
        as_path: path
            .as_path
            .as_ref()
            .map(|p| p.segments().flat_map(|s| s.asns.iter().copied()).collect())
            .unwrap_or_default(),
        origin: match path.origin {
            Some(Origin::Igp) => "igp",
            Some(Origin::Egp) => "egp",
            Some(Origin::Incomplete) | None => "incomplete",
        }
        .into(),
        local_pref: path.local_pref,
        med: path.med,
        communities,
        best,
        source,
    };
    RouteLine {
        view,
        path: path
            .as_path
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    }
}

/// Prefixes that can list the prefixes covering them, longest first.
trait LongestMatch: Net {
    fn covering(self) -> impl Iterator<Item = Self>;
}

impl LongestMatch for Ipv4Net {
    fn covering(self) -> impl Iterator<Item = Self> {
        (0..=self.prefix_len())
            .rev()
            .filter_map(move |len| Ipv4Net::new(self.addr(), len).ok().map(|n| n.trunc()))
    }
}

impl LongestMatch for Ipv6Net {
    fn covering(self) -> impl Iterator<Item = Self> {
        (0..=self.prefix_len())
            .rev()
            .filter_map(move |len| Ipv6Net::new(self.addr(), len).ok().map(|n| n.trunc()))
    }
}
