//! Adj-RIB-In: routes as neighbors (and local sources) give them, through the checks
//! and the import policy, into the Loc-RIB.
//!
//! A received UPDATE is handled in one pass without allocating per prefix: its
//! attributes are interned once (next hop included, so every prefix of the UPDATE
//! shares one entry), checked once, and each prefix becomes a 12-octet path.
//!
//! Checks that make a route ignored (treated as withdrawn; logged, loops at debug
//! level only; never a NOTIFICATION):
//! - our AS in the AS path (loop);
//! - ORIGINATOR_ID equal to our router id, or our cluster id in CLUSTER_LIST
//!   (RFC 4456 loops);
//! - a semantically wrong next hop (RFC 4271 6.3): unspecified, loopback, multicast,
//!   broadcast, or one of our own addresses.
//!
//! The import policy (the neighbor's `import` filter) keeps what it rejects as
//! received but not eligible, so a reload can re-evaluate it (soft
//! reconfiguration); `max_prefixes` counts accepted prefixes per family.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use bgp_proto::{Family, Nlri, Update};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::Rib;
use super::attrs::{AttrId, NO_ATTR, RouteAttrs, RouteNextHop};
use super::peer::{FilterRef, local_index, max_prefixes_notification};
use super::table::{Net, Path, PeerIdx};
use crate::policy::{Candidate, Direction, Verdict};
use crate::tasks::{LocalChange, LocalRoute, LocalSource, Outbound, PeerId, PeerInfo};

/// Most entries of one peer's import cache before it is emptied.
const IMPORT_CACHE_MAX: usize = 4096;

impl Rib {
    /// An UPDATE from an established session.
    pub fn update(&mut self, peer: PeerId, update: Update, treat_as_withdraw: bool) {
        let Some(&idx) = self.by_id.get(&peer) else {
            tracing::debug!(peer, "UPDATE from a peer that is not up: ignored");
            return;
        };
        let Some(info) = self
            .peer(idx)
            .filter(|p| p.session.is_some() && !p.closing)
            .and_then(|p| p.info.clone())
        else {
            return;
        };
        let Update {
            withdrawn,
            attributes,
            nlri,
            mp_reach,
            mp_unreach,
            ..
        } = update;
        for prefix in &withdrawn {
            self.withdraw::<Ipv4Net>(idx, prefix.net);
        }
        if let Some(unreach) = &mp_unreach {
            self.withdraw_nlri(idx, unreach.family, &unreach.withdrawn);
        }
        if treat_as_withdraw {
            for prefix in &nlri {
                self.withdraw::<Ipv4Net>(idx, prefix.net);
            }
            if let Some(reach) = &mp_reach {
                self.withdraw_nlri(idx, reach.family, &reach.nlri);
            }
            return;
        }
        let mut path = attributes;
        path.merge_as4();
        let problem = self.route_problem(&info, &path);
        // The MP_REACH_NLRI routes (built first: the classic ones take `path`).
        if let Some(reach) = mp_reach
            && !reach.nlri.is_empty()
        {
            let next_hop = RouteNextHop::from_wire(&reach.next_hop);
            let problem = problem.clone().or_else(|| match next_hop {
                Some(next_hop) => next_hop_problem(&info, next_hop),
                None => Some("a next hop that is not an IP address".into()),
            });
            match (problem, next_hop) {
                (None, Some(next_hop)) => {
                    let id = self.intern(RouteAttrs::new(path.clone(), next_hop));
                    self.announce_nlri(idx, reach.family, &reach.nlri, id);
                    self.attrs.collect(id);
                }
                (problem, _) => {
                    log_ignored(&info, problem.as_deref(), reach.nlri.len());
                    self.withdraw_nlri(idx, reach.family, &reach.nlri);
                }
            }
        }
        if !nlri.is_empty() {
            let problem = problem.or_else(|| match path.next_hop {
                Some(next_hop) => next_hop_problem(&info, RouteNextHop::V4(next_hop)),
                None => Some("no NEXT_HOP".into()),
            });
            match (problem, path.next_hop) {
                (None, Some(next_hop)) => {
                    let id = self.intern(RouteAttrs::new(path, RouteNextHop::V4(next_hop)));
                    for prefix in &nlri {
                        self.announce::<Ipv4Net>(idx, prefix.net, id);
                    }
                    self.attrs.collect(id);
                }
                (problem, _) => {
                    log_ignored(&info, problem.as_deref(), nlri.len());
                    for prefix in &nlri {
                        self.withdraw::<Ipv4Net>(idx, prefix.net);
                    }
                }
            }
        }
    }

    /// A change of locally originated routes.
    pub fn local_change(&mut self, change: LocalChange) {
        match change {
            LocalChange::Announce(route) => self.originate(&route),
            LocalChange::Withdraw { prefix, source } => {
                let idx = local_index(source);
                match prefix.trunc() {
                    IpNet::V4(net) => self.withdraw::<Ipv4Net>(idx, net),
                    IpNet::V6(net) => self.withdraw::<Ipv6Net>(idx, net),
                }
            }
            LocalChange::Replace { source, routes } => {
                let wanted: std::collections::HashSet<IpNet> =
                    routes.iter().map(|r| r.prefix.trunc()).collect();
                for prefix in self.local_prefixes(source) {
                    if !wanted.contains(&prefix) {
                        let idx = local_index(source);
                        match prefix {
                            IpNet::V4(net) => self.withdraw::<Ipv4Net>(idx, net),
                            IpNet::V6(net) => self.withdraw::<Ipv6Net>(idx, net),
                        }
                    }
                }
                for route in routes.iter().filter(|r| r.source == source) {
                    self.originate(route);
                }
            }
        }
    }

    /// Every prefix a local source originates.
    pub fn local_prefixes(&self, source: LocalSource) -> Vec<IpNet> {
        let idx = local_index(source);
        let v4 = self
            .tables
            .v4
            .iter()
            .filter(|(_, e)| e.paths.find(idx).is_some())
            .map(|(_, e)| IpNet::V4(e.net));
        let v6 = self
            .tables
            .v6
            .iter()
            .filter(|(_, e)| e.paths.find(idx).is_some())
            .map(|(_, e)| IpNet::V6(e.net));
        v4.chain(v6).collect()
    }

    fn originate(&mut self, route: &LocalRoute) {
        let idx = local_index(route.source);
        let mut attrs = RouteAttrs::new(
            bgp_proto::PathAttributes {
                origin: Some(bgp_proto::Origin::Igp),
                as_path: Some(bgp_proto::AsPath::new()),
                communities: route
                    .communities
                    .iter()
                    .map(|&c| bgp_proto::Community(c))
                    .collect(),
                ..Default::default()
            },
            RouteNextHop::Local,
        );
        attrs.blackhole = route.blackhole;
        let id = self.intern(attrs);
        match route.prefix.trunc() {
            IpNet::V4(net) => self.announce::<Ipv4Net>(idx, net, id),
            IpNet::V6(net) => self.announce::<Ipv6Net>(idx, net, id),
        }
        self.attrs.collect(id);
    }

    fn announce_nlri(&mut self, idx: PeerIdx, family: Family, nlri: &Nlri, id: AttrId) {
        match (family, nlri) {
            (Family::IPV4_UNICAST, Nlri::Ipv4(prefixes)) => {
                for prefix in prefixes {
                    self.announce::<Ipv4Net>(idx, prefix.net, id);
                }
            }
            (Family::IPV6_UNICAST, Nlri::Ipv6(prefixes)) => {
                for prefix in prefixes {
                    self.announce::<Ipv6Net>(idx, prefix.net, id);
                }
            }
            _ => {}
        }
    }

    fn withdraw_nlri(&mut self, idx: PeerIdx, family: Family, nlri: &Nlri) {
        match (family, nlri) {
            (Family::IPV4_UNICAST, Nlri::Ipv4(prefixes)) => {
                for prefix in prefixes {
                    self.withdraw::<Ipv4Net>(idx, prefix.net);
                }
            }
            (Family::IPV6_UNICAST, Nlri::Ipv6(prefixes)) => {
                for prefix in prefixes {
                    self.withdraw::<Ipv6Net>(idx, prefix.net);
                }
            }
            _ => {}
        }
    }

    /// A route for `net` from `idx` with received attributes `received`.
    pub(super) fn announce<K: Net>(&mut self, idx: PeerIdx, net: K, received: AttrId) {
        if self
            .peer(idx)
            .is_none_or(|p| p.disabled[K::INDEX] || p.closing)
        {
            return;
        }
        let accepted = self.import::<K>(idx, net, received);
        self.attrs.retain(received);
        let slot = K::table_mut(&mut self.tables).find_or_insert(net);
        let path = Path {
            peer: idx,
            flags: 0,
            received,
            accepted,
        };
        if self.change_path::<K>(slot, idx, Some(path)) {
            self.check_max_prefixes::<K>(idx);
        }
    }

    /// No route for `net` from `idx` any more.
    pub(super) fn withdraw<K: Net>(&mut self, idx: PeerIdx, net: K) {
        if let Some(slot) = K::table(&self.tables).find(net) {
            self.change_path::<K>(slot, idx, None);
        }
    }

    /// The import policy's result for a route: the accepted attributes (retained for
    /// the path) or [`NO_ATTR`].
    pub(super) fn import<K: Net>(&mut self, idx: PeerIdx, net: K, received: AttrId) -> AttrId {
        let Some(peer) = self.peer(idx) else {
            return NO_ATTR;
        };
        let source = peer.source();
        let filter = match &peer.settings.import {
            FilterRef::None => None,
            FilterRef::Missing(_) => return NO_ATTR,
            FilterRef::Filter(filter) => Some(filter.clone()),
        };
        let Some(filter) = filter else {
            self.attrs.retain(received);
            return received;
        };
        let route = Candidate {
            prefix: net.ip_net(),
            communities: &self.attrs.get(received).path.communities,
            source,
        };
        let applied = match filter.evaluate(&route) {
            Verdict::Reject => return NO_ATTR,
            Verdict::Accept(applied) if applied.is_empty() => {
                self.attrs.retain(received);
                return received;
            }
            Verdict::Accept(applied) => applied,
        };
        let key = (received, applied);
        if let Some(accepted) = self
            .peer(idx)
            .and_then(|p| p.import_cache.get(&key).copied())
        {
            self.attrs.retain(accepted);
            return accepted;
        }
        let mut attrs = self.attrs.get(received).clone();
        filter.apply(&key.1, &mut attrs.path, Direction::Import);
        let accepted = self.attrs.intern(attrs);
        // One reference for the path, one for the cache (and one on the cache's key),
        // taken before a full cache is emptied so that `accepted` survives it.
        self.attrs.retain(accepted);
        self.attrs.retain(accepted);
        self.attrs.retain(received);
        if self
            .peer(idx)
            .is_some_and(|p| p.import_cache.len() >= IMPORT_CACHE_MAX)
        {
            self.clear_import_cache(idx);
        }
        if let Some(peer) = self.peer_mut(idx) {
            peer.import_cache.insert(key, accepted);
        }
        accepted
    }

    /// Re-runs the import policy over every route of `idx` (after a reload).
    pub(super) fn reimport<K: Net>(&mut self, idx: PeerIdx) {
        let slots: Vec<u32> = K::table(&self.tables)
            .iter()
            .filter(|(_, e)| e.paths.find(idx).is_some())
            .map(|(slot, _)| slot)
            .collect();
        for slot in slots {
            let entry = K::table(&self.tables).entry(slot);
            let net = entry.net;
            let Some(path) = entry.paths.find(idx).map(|p| entry.paths.as_slice()[p]) else {
                continue;
            };
            let accepted = self.import::<K>(idx, net, path.received);
            if accepted == path.accepted {
                self.attrs.release(accepted);
                continue;
            }
            self.attrs.retain(path.received);
            let new = Path { accepted, ..path };
            if self.change_path::<K>(slot, idx, Some(new)) {
                self.check_max_prefixes::<K>(idx);
            }
        }
    }

    fn check_max_prefixes<K: Net>(&mut self, idx: PeerIdx) {
        let Some(peer) = self.peer_mut(idx) else {
            return;
        };
        let Some(max) = peer.settings.max_prefixes else {
            return;
        };
        let Some(limit) = max.limit(K::INDEX) else {
            return;
        };
        let accepted = peer.counters[K::INDEX].accepted;
        if accepted <= u64::from(limit) || peer.closing {
            return;
        }
        let address = peer.address();
        if max.warning_only {
            if !peer.warned[K::INDEX] {
                peer.warned[K::INDEX] = true;
                tracing::warn!(
                    neighbor = ?address,
                    family = %K::FAMILY,
                    limit,
                    "more prefixes accepted than max_prefixes allows (warning_only: the session stays up)"
                );
            }
            return;
        }
        tracing::warn!(
            neighbor = ?address,
            family = %K::FAMILY,
            limit,
            restart_secs = max.restart_secs,
            "max_prefixes exceeded: closing the session with Cease/Maximum Number of Prefixes Reached"
        );
        peer.closing = true;
        peer.close_pending = Some(Box::new(Outbound::Close {
            notification: max_prefixes_notification(K::FAMILY, limit),
            idle_for: Some(Duration::from_secs(u64::from(max.restart_secs))),
        }));
        self.send_close(idx);
    }

    /// Sends a pending Close if the channel has room (else on `Drained`).
    pub(super) fn send_close(&mut self, idx: PeerIdx) {
        let Some(peer) = self.peer_mut(idx) else {
            return;
        };
        let (Some(session), Some(close)) = (&peer.session, peer.close_pending.take()) else {
            return;
        };
        match session.outbound.try_send(close) {
            Ok(()) => {}
            Err(crate::queue::TrySendError::Full(close)) => {
                peer.close_pending = Some(close);
                if let Some(session) = &mut peer.session {
                    session.blocked = true;
                }
            }
            Err(crate::queue::TrySendError::Closed(_)) => {}
        }
    }

    /// Why routes with these attributes from this peer must be ignored, if they must.
    fn route_problem(&self, info: &PeerInfo, path: &bgp_proto::PathAttributes) -> Option<String> {
        if let Some(as_path) = &path.as_path
            && (as_path.contains(self.settings.asn) || as_path.contains(info.local_asn))
        {
            return Some("our AS in the AS path (loop)".into());
        }
        if path.originator_id == Some(self.settings.router_id) {
            return Some("ORIGINATOR_ID is our router id (RFC 4456 loop)".into());
        }
        if path.cluster_list.contains(&self.settings.cluster_id) {
            return Some("our cluster id in CLUSTER_LIST (RFC 4456 loop)".into());
        }
        None
    }
}

/// Why a next hop is semantically wrong (RFC 4271 6.3), if it is.
fn next_hop_problem(info: &PeerInfo, next_hop: RouteNextHop) -> Option<String> {
    let ours = |address: IpAddr| {
        address == info.local_address
            || info.local_ipv4.map(IpAddr::V4) == Some(address)
            || info.local_ipv6.map(IpAddr::V6) == Some(address)
            || info.local_link_local.map(IpAddr::V6) == Some(address)
    };
    let bad_v4 =
        |a: Ipv4Addr| a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast();
    let bad_v6 = |a: Ipv6Addr| a.is_loopback() || a.is_multicast();
    let wrong = match next_hop {
        RouteNextHop::Local => true,
        RouteNextHop::V4(address) => bad_v4(address) || ours(IpAddr::V4(address)),
        RouteNextHop::V6 { global, link_local } => {
            (global.is_unspecified() && link_local.is_none())
                || bad_v6(global)
                || (!global.is_unspecified() && ours(IpAddr::V6(global)))
                || link_local.is_some_and(|l| bad_v6(l) || ours(IpAddr::V6(l)))
        }
    };
    wrong.then(|| format!("next hop {next_hop:?} is unusable (RFC 4271 6.3)"))
}

/// Loops are ordinary (a neighbor may send our own routes back; FRR does unless told
/// otherwise): logged at debug. Anything else is a peer's mistake: a warning.
fn log_ignored(info: &PeerInfo, problem: Option<&str>, prefixes: usize) {
    let problem = problem.unwrap_or("next hop unusable");
    if problem.contains("loop") {
        tracing::debug!(neighbor = %info.address, prefixes, "routes ignored: {problem}");
    } else {
        tracing::warn!(neighbor = %info.address, prefixes, "routes ignored: {problem}");
    }
}
