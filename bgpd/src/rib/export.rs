//! Export rules: which best routes a neighbor is sent, and with which attributes.
//!
//! Whether (in this order):
//! - never back to the neighbor the route came from;
//! - NO_ADVERTISE: to nobody; NO_EXPORT (and NO_EXPORT_SUBCONFED): to no eBGP neighbor;
//! - eBGP neighbor without an export filter: only locally originated routes (a node
//!   never becomes a transit path); with one, the filter decides;
//! - iBGP neighbor: routes from eBGP and local routes always; routes from iBGP only
//!   when reflecting (RFC 4456: from a client to everyone, from a non-client to
//!   clients); then the export filter, if any.
//!
//! With which attributes:
//! - to eBGP: our AS prepended (plus `prepend` of the filter), NEXT_HOP our session
//!   address, no LOCAL_PREF, ORIGINATOR_ID or CLUSTER_LIST, no non-transitive
//!   extended community (RFC 4360), MED only when we set it (a local route or the
//!   filter) — never passed from one neighbor AS to another;
//! - to iBGP: LOCAL_PREF (100 when absent), next hop unchanged unless the route is
//!   local or `next_hop_self`; when reflecting, ORIGINATOR_ID (the source's router
//!   id, when absent) and our cluster id prepended to CLUSTER_LIST.
//!
//! An IPv4 route whose next hop is IPv6 goes only to a neighbor that negotiated the
//! extended next hop capability (RFC 8950); an IPv6 route needs an IPv6 next hop.
//!
//! Results are cached per neighbor and family, keyed by (source peer, accepted
//! attributes, applied filter rules), so exporting a million prefixes that share
//! attributes computes them once. What every iBGP neighbor without an export filter
//! or `next_hop_self` is sent of a route from another neighbor does not depend on the
//! neighbor (see [`shares_export`]): that is cached once per source instead, so a
//! route reflector builds each client's route once, not once per client.

use std::net::{IpAddr, Ipv6Addr};

use bgp_proto::{AsPath, Family, Origin};

use super::Rib;
use super::attrs::{AttrId, DEFAULT_LOCAL_PREF, Facts, NO_ATTR, RouteAttrs, RouteNextHop};
use super::peer::{FilterRef, Peer};
use super::table::{Net, Path, PeerIdx};
use crate::policy::{Applied, Candidate, Direction, RouteSource, Verdict};
use crate::tasks::PeerInfo;

/// Most entries of one source's shared exports before they are emptied: one per
/// attribute set it sends (a node: one; a full table: thousands).
const SHARED_EXPORTS_MAX: usize = 4096;

/// Most entries of one export cache before it is emptied. Small: the cache pays
/// when many routes share a source and attributes (a node mesh, a full table from
/// one peer), which takes few entries; a route reflector's clients each announce
/// their own attributes, so each client's cache would hold an entry per client,
/// never hit in the first dump: with 4096, 1000 clients took 41 MB of cache per
/// reflector (heaptrack, bench scale-reflector), and 5000 would take about 800 MB.
const EXPORT_CACHE_MAX: usize = 256;

/// What export needs to know of the peer a route came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceFacts {
    pub idx: PeerIdx,
    pub source: RouteSource,
    pub client: bool,
}

impl SourceFacts {
    pub fn of(idx: PeerIdx, peer: &Peer) -> SourceFacts {
        SourceFacts {
            idx,
            source: peer.source(),
            client: peer.settings.route_reflector_client,
        }
    }
}

/// The cheap part of the export decision (no filter, no attributes built): false
/// when `dest` is certainly not sent a route from `source` with these facts.
pub fn may_export(dest_idx: PeerIdx, dest: &Peer, source: SourceFacts, facts: Facts) -> bool {
    if dest_idx == source.idx || facts.no_advertise {
        return false;
    }
    if dest.ebgp() {
        if facts.no_export {
            return false;
        }
        return match dest.settings.export {
            FilterRef::None => source.source == RouteSource::Local,
            FilterRef::Filter(_) => true,
            FilterRef::Missing(_) => false,
        };
    }
    match source.source {
        RouteSource::Ibgp => source.client || dest.settings.route_reflector_client,
        _ => true,
    }
}

/// True when what `dest` is sent of a route from `source` whose next hop is not
/// ours depends only on the route and on whether `dest` negotiated the extended next
/// hop: an iBGP neighbor without an export filter or `next_hop_self`, and a route
/// from a neighbor. `build_export` then reads nothing else of `dest` (no next hop
/// self, no AS prepended, no filter) and everything else it reads (the source's
/// router id, the cluster id) is the same for every destination.
fn shares_export(dest: &Peer, source: SourceFacts) -> bool {
    !dest.ebgp()
        && matches!(dest.settings.export, FilterRef::None)
        && !dest.settings.next_hop_self
        && source.source != RouteSource::Local
}

impl Rib {
    /// The attributes `dest` is sent for `net` whose best path is `best`, or None.
    pub(super) fn export<K: Net>(&mut self, dest: PeerIdx, net: K, best: Path) -> Option<AttrId> {
        let source = SourceFacts::of(best.peer, self.peer(best.peer)?);
        let facts = self.attrs.facts(best.accepted);
        let peer = self.peer(dest)?;
        if !may_export(dest, peer, source, facts) {
            return None;
        }
        if shares_export(peer, source)
            && self.attrs.get(best.accepted).next_hop != RouteNextHop::Local
        {
            let extended_next_hop = peer
                .info
                .as_ref()?
                .context
                .extended_next_hop
                .contains(K::FAMILY);
            return self.export_shared::<K>(dest, source, best, extended_next_hop);
        }
        let applied = match &peer.settings.export {
            FilterRef::None => Applied::NONE,
            FilterRef::Missing(_) => return None,
            FilterRef::Filter(filter) => {
                let route = Candidate {
                    prefix: net.ip_net(),
                    communities: &self.attrs.get(best.accepted).path.communities,
                    source: source.source,
                };
                match filter.evaluate(&route) {
                    Verdict::Reject => return None,
                    Verdict::Accept(applied) => applied,
                }
            }
        };
        let key = (best.peer, best.accepted, applied);
        if let Some(&out) = peer.export_cache[K::INDEX].get(&key) {
            return (out != NO_ATTR).then_some(out);
        }
        let (_, _, applied) = &key;
        let out = self
            .build_export(dest, K::FAMILY, source, best, applied)
            .map_or(NO_ATTR, |attrs| self.attrs.intern(attrs));
        // The new entry's references first: emptying a full cache must not free `out`.
        self.attrs.retain(best.accepted);
        self.attrs.retain(out);
        if self
            .peer(dest)
            .is_some_and(|p| p.export_cache[K::INDEX].len() >= EXPORT_CACHE_MAX)
        {
            self.clear_export_cache(dest);
        }
        match self.peer_mut(dest) {
            Some(peer) => {
                peer.export_cache[K::INDEX].insert(key, out);
            }
            None => {
                self.attrs.release(best.accepted);
                self.attrs.release(out);
                return None;
            }
        }
        (out != NO_ATTR).then_some(out)
    }

    /// [`Rib::export`] for a destination that [`shares_export`]: from the source's
    /// shared exports, built for `dest` the first time.
    fn export_shared<K: Net>(
        &mut self,
        dest: PeerIdx,
        source: SourceFacts,
        best: Path,
        extended_next_hop: bool,
    ) -> Option<AttrId> {
        let key = (best.accepted, K::INDEX as u8, extended_next_hop);
        if let Some(&out) = self.peer(best.peer)?.shared_exports.get(&key) {
            return (out != NO_ATTR).then_some(out);
        }
        let out = self
            .build_export(dest, K::FAMILY, source, best, &Applied::NONE)
            .map_or(NO_ATTR, |attrs| self.attrs.intern(attrs));
        // The new entry's references first: emptying a full map must not free `out`.
        self.attrs.retain(best.accepted);
        self.attrs.retain(out);
        if self
            .peer(best.peer)
            .is_some_and(|p| p.shared_exports.len() >= SHARED_EXPORTS_MAX)
        {
            self.clear_shared_exports(best.peer);
        }
        match self.peer_mut(best.peer) {
            Some(peer) => {
                peer.shared_exports.insert(key, out);
            }
            None => {
                self.attrs.release(best.accepted);
                self.attrs.release(out);
                return None;
            }
        }
        (out != NO_ATTR).then_some(out)
    }

    /// Builds the attributes for `dest`; None when no usable next hop exists.
    fn build_export(
        &self,
        dest: PeerIdx,
        family: Family,
        source: SourceFacts,
        best: Path,
        applied: &Applied,
    ) -> Option<RouteAttrs> {
        let peer = self.peer(dest)?;
        let info = peer.info.as_ref()?;
        let mut out = self.attrs.get(best.accepted).clone();
        out.blackhole = false;
        let path = &mut out.path;
        path.origin.get_or_insert(Origin::Igp);
        let ebgp = peer.ebgp();
        let mut next_hop = out.next_hop;
        if ebgp {
            path.local_pref = None;
            path.originator_id = None;
            path.cluster_list.clear();
            path.extended_communities
                .retain(bgp_proto::ExtendedCommunity::is_transitive);
            if source.source != RouteSource::Local {
                path.med = None;
            }
            path.as_path
                .get_or_insert_with(AsPath::new)
                .prepend(info.local_asn);
            next_hop = self_next_hop(info, family)?;
        } else {
            path.as_path.get_or_insert_with(AsPath::new);
            path.local_pref.get_or_insert(DEFAULT_LOCAL_PREF);
            if source.source == RouteSource::Ibgp {
                let source_id = self
                    .peer(source.idx)
                    .and_then(|p| p.info.as_ref())
                    .map(|i| i.remote_router_id);
                if path.originator_id.is_none() {
                    path.originator_id = source_id;
                }
                path.cluster_list.insert(0, self.settings.cluster_id);
            }
            if source.source == RouteSource::Local
                || peer.settings.next_hop_self
                || next_hop == RouteNextHop::Local
            {
                next_hop = self_next_hop(info, family)?;
            }
        }
        if let FilterRef::Filter(filter) = &peer.settings.export {
            let direction = if ebgp {
                Direction::ExportEbgp {
                    local_asn: info.local_asn,
                }
            } else {
                Direction::ExportIbgp
            };
            filter.apply(applied, path, direction);
        }
        let fits = match (family, next_hop) {
            (Family::IPV4_UNICAST, RouteNextHop::V4(_)) => true,
            (Family::IPV4_UNICAST, RouteNextHop::V6 { .. }) => {
                info.context.extended_next_hop.contains(family)
            }
            (Family::IPV6_UNICAST, RouteNextHop::V6 { .. }) => true,
            _ => false,
        };
        if !fits {
            return None;
        }
        out.set_next_hop(next_hop);
        Some(out)
    }
}

/// Our next hop toward a neighbor for routes of `family`: the session's local
/// address when of the family, else the other configured address of the family; for
/// IPv6 with our link-local address as well. For IPv4 over an IPv6-only session with
/// the extended next hop capability, our IPv6 address.
pub fn self_next_hop(info: &PeerInfo, family: Family) -> Option<RouteNextHop> {
    let v6 = || {
        let global = match info.local_address {
            IpAddr::V6(address) if !address.is_unicast_link_local() => Some(address),
            _ => info.local_ipv6,
        };
        let link_local = info.local_link_local.or(match info.local_address {
            IpAddr::V6(address) if address.is_unicast_link_local() => Some(address),
            _ => None,
        });
        match (global, link_local) {
            (Some(global), link_local) => Some(RouteNextHop::V6 { global, link_local }),
            (None, Some(link_local)) => Some(RouteNextHop::V6 {
                global: Ipv6Addr::UNSPECIFIED,
                link_local: Some(link_local),
            }),
            (None, None) => None,
        }
    };
    if family == Family::IPV4_UNICAST {
        let v4 = match info.local_address {
            IpAddr::V4(address) => Some(address),
            IpAddr::V6(_) => info.local_ipv4,
        };
        match v4 {
            Some(address) => Some(RouteNextHop::V4(address)),
            None if info.context.extended_next_hop.contains(family) => v6(),
            None => None,
        }
    } else {
        v6()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bgp_proto::{FamilySet, SessionContext};
    use std::net::Ipv4Addr;

    fn info(local: &str, v4: Option<&str>, v6: Option<&str>, ll: Option<&str>) -> PeerInfo {
        PeerInfo {
            address: "192.0.2.2".parse().unwrap(),
            local_address: local.parse().unwrap(),
            local_ipv4: v4.map(|a| a.parse().unwrap()),
            local_ipv6: v6.map(|a| a.parse().unwrap()),
            local_link_local: ll.map(|a| a.parse().unwrap()),
            local_asn: 64512,
            remote_asn: 65001,
            remote_router_id: Ipv4Addr::new(192, 0, 2, 2),
            context: SessionContext::default(),
            graceful_restart: None,
        }
    }

    #[test]
    fn next_hop_self_per_family() {
        let v4 = Family::IPV4_UNICAST;
        let v6 = Family::IPV6_UNICAST;
        let hop4 = |a: &str| Some(RouteNextHop::V4(a.parse().unwrap()));
        let hop6 = |g: &str, l: Option<&str>| {
            Some(RouteNextHop::V6 {
                global: g.parse().unwrap(),
                link_local: l.map(|l| l.parse().unwrap()),
            })
        };
        // IPv4 session: IPv4 from the session, IPv6 from the configured addresses.
        let dual = info(
            "10.0.0.1",
            Some("10.0.0.1"),
            Some("fd00::1"),
            Some("fe80::1"),
        );
        assert_eq!(self_next_hop(&dual, v4), hop4("10.0.0.1"));
        assert_eq!(self_next_hop(&dual, v6), hop6("fd00::1", Some("fe80::1")));
        // IPv6 session over link-local only: :: plus the link-local address.
        let unnumbered = info("fe80::1", None, None, None);
        assert_eq!(self_next_hop(&unnumbered, v6), hop6("::", Some("fe80::1")));
        assert_eq!(self_next_hop(&unnumbered, v4), None);
        // IPv4 routes over IPv6 with RFC 8950: the IPv6 next hop.
        let mut enh = info("fd00::1", None, None, None);
        enh.context.extended_next_hop = [v4].into_iter().collect::<FamilySet>();
        assert_eq!(self_next_hop(&enh, v4), hop6("fd00::1", None));
        // An IPv4-only session without an IPv6 address: no IPv6 next hop.
        assert_eq!(self_next_hop(&info("10.0.0.1", None, None, None), v6), None);
    }
}
