//! The Loc-RIB: the one place where a path of the [`Rib`] changes
//! ([`Rib::change_path`]): the decision runs for that
//! prefix, and when its selection changed, peers get the prefix marked pending in
//! their adj_rib_out and the FIB gets a [`FibChange`].
//!
//! Nothing here does I/O or reads a clock: the rib task (see `task`) feeds inputs,
//! flushes peers and hands the FIB changes on. Time comes in as arguments.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::attrs::{AttrId, AttrTable, RouteAttrs, RouteNextHop};
use super::decision::{Candidate, select};
use super::export::{SourceFacts, may_export};
use super::peer::{LOCAL_SOURCES, Peer};
use super::table::{Net, Path, Paths, PeerIdx};
use super::{Rib, Settings};
use crate::policy::RouteSource;
use crate::tasks::{FibChange, FibNextHop, PeerId};

/// What the FIB should do for a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FibKind {
    Nothing,
    Blackhole,
    Via,
}

impl Rib {
    pub(super) fn peer(&self, idx: PeerIdx) -> Option<&Peer> {
        self.peers.get(usize::from(idx)).and_then(Option::as_ref)
    }

    pub(super) fn peer_mut(&mut self, idx: PeerIdx) -> Option<&mut Peer> {
        self.peers
            .get_mut(usize::from(idx))
            .and_then(Option::as_mut)
    }

    /// The index of a neighbor, creating its record when new.
    pub(super) fn index_of(&mut self, id: PeerId) -> Option<PeerIdx> {
        if let Some(&idx) = self.by_id.get(&id) {
            return Some(idx);
        }
        let position = match self
            .peers
            .iter()
            .skip(LOCAL_SOURCES.len())
            .position(Option::is_none)
        {
            Some(free) => free + LOCAL_SOURCES.len(),
            None => {
                if self.peers.len() == self.peers.capacity() {
                    // An eighth more room at a time, not twice as much: a record is
                    // large, and doubling left a route reflector with 5000 clients
                    // 3000 empty ones (issue 18's memory per session).
                    self.peers.reserve_exact(self.peers.len() / 8 + 1);
                }
                self.peers.push(None);
                self.peers.len() - 1
            }
        };
        let Ok(idx) = PeerIdx::try_from(position) else {
            self.peers.truncate(usize::from(PeerIdx::MAX) + 1);
            tracing::error!(
                peer = id,
                "more than 65535 neighbors: routes from this one are ignored"
            );
            return None;
        };
        self.peers[position] = Some(Peer::neighbor(id));
        self.by_id.insert(id, idx);
        Some(idx)
    }

    /// Forgets a neighbor that has neither a session nor routes.
    pub(super) fn release_peer_if_unused(&mut self, idx: PeerIdx) {
        let unused = self
            .peer(idx)
            .is_some_and(|p| p.local.is_none() && p.session.is_none() && p.routes() == 0);
        if unused {
            if let Some(peer) = self.peers.get_mut(usize::from(idx)).and_then(Option::take) {
                if let Some(id) = peer.id {
                    self.by_id.remove(&id);
                }
                if let Some(until) = peer.stale_until {
                    self.stale_deadlines.remove(&(until, idx));
                }
                self.drop_caches(peer);
            }
            // Export caches are keyed by source index, which may now be reused.
            self.forget_source(idx);
        }
    }

    /// Releases the references a peer's caches hold.
    pub(super) fn drop_caches(&mut self, mut peer: Peer) {
        for ((key, _), value) in peer.import_cache.drain() {
            self.attrs.release(key);
            self.attrs.release(value);
        }
        for cache in &mut peer.export_cache {
            for ((_, key, _), value) in cache.drain() {
                self.attrs.release(key);
                self.attrs.release(value);
            }
        }
        for ((key, _, _), value) in peer.shared_exports.drain() {
            self.attrs.release(key);
            self.attrs.release(value);
        }
    }

    /// Empties every peer's export cache and shared exports.
    pub(super) fn clear_export_caches(&mut self) {
        for idx in 0..self.peers.len() {
            self.clear_export_cache(idx as PeerIdx);
            self.clear_shared_exports(idx as PeerIdx);
        }
    }

    /// Forgets every export computed from routes of `idx` (its router id, settings or
    /// identity may have changed: a new session, or the index reused), and its own
    /// export cache: O(peers), not O(peers²) as emptying every cache would be when
    /// each of thousands of sessions comes up.
    pub(super) fn forget_source(&mut self, idx: PeerIdx) {
        self.clear_export_cache(idx);
        self.clear_shared_exports(idx);
        let mut released = Vec::new();
        for peer in self.peers.iter_mut().flatten() {
            for cache in &mut peer.export_cache {
                if cache.is_empty() {
                    continue;
                }
                cache.retain(|&(source, key, _), &mut value| {
                    let keep = source != idx;
                    if !keep {
                        released.push((key, value));
                    }
                    keep
                });
            }
        }
        for (key, value) in released {
            self.attrs.release(key);
            self.attrs.release(value);
        }
    }

    /// Empties the exports shared by every destination of `idx`'s routes.
    pub(super) fn clear_shared_exports(&mut self, idx: PeerIdx) {
        self.release_cached(idx, |peer| {
            peer.shared_exports
                .drain()
                .map(|((key, _, _), value)| (key, value))
                .collect()
        });
    }

    /// Empties `idx`'s export cache (what it is sent).
    pub(super) fn clear_export_cache(&mut self, idx: PeerIdx) {
        self.release_cached(idx, |peer| {
            peer.export_cache
                .iter_mut()
                .flat_map(|cache| cache.drain())
                .map(|((_, key, _), value)| (key, value))
                .collect()
        });
    }

    /// Releases the (key, value) references that `take` empties out of `idx`'s caches
    /// (nothing is allocated when they are empty).
    fn release_cached(
        &mut self,
        idx: PeerIdx,
        take: impl FnOnce(&mut Peer) -> Vec<(AttrId, AttrId)>,
    ) {
        let Some(peer) = self
            .peers
            .get_mut(usize::from(idx))
            .and_then(Option::as_mut)
        else {
            return;
        };
        for (key, value) in take(peer) {
            self.attrs.release(key);
            self.attrs.release(value);
        }
    }

    pub(super) fn clear_import_cache(&mut self, idx: PeerIdx) {
        let Some(peer) = self
            .peers
            .get_mut(usize::from(idx))
            .and_then(Option::as_mut)
        else {
            return;
        };
        let drained: Vec<_> = peer.import_cache.drain().collect();
        for ((key, _), value) in drained {
            self.attrs.release(key);
            self.attrs.release(value);
        }
    }

    /// Sets (Some) or removes (None) the path of `peer` at `slot`, whose references
    /// the call takes over; runs the decision and records what changed. Returns true
    /// when the peer's accepted count for the family went up.
    pub(super) fn change_path<K: Net>(
        &mut self,
        slot: u32,
        peer: PeerIdx,
        new: Option<Path>,
    ) -> bool {
        let entry = K::table_mut(&mut self.tables).entry_mut(slot);
        let mut before = std::mem::take(&mut self.scratch.before);
        before.clear();
        before.extend_from_slice(entry.selected());
        let position = entry.paths.find(peer);
        let had_paths = !entry.paths.is_empty();
        let old = match (position, new) {
            (Some(position), Some(path)) => {
                let slot_path = &mut entry.paths.as_mut_slice()[position];
                Some(std::mem::replace(slot_path, path))
            }
            (None, Some(path)) => {
                entry.paths.push(path);
                None
            }
            (Some(position), None) => entry.paths.remove(position),
            (None, None) => {
                self.scratch.before = before;
                return false;
            }
        };
        let mut accepted_up = false;
        if let Some(counters) = self.peer_mut(peer).map(|p| &mut p.counters[K::INDEX]) {
            if let Some(old) = old {
                counters.received = counters.received.saturating_sub(1);
                counters.accepted = counters.accepted.saturating_sub(u64::from(old.eligible()));
                counters.stale = counters.stale.saturating_sub(u64::from(old.stale()));
            }
            if let Some(new) = new {
                counters.received += 1;
                counters.accepted += u64::from(new.eligible());
                counters.stale += u64::from(new.stale());
                accepted_up = new.eligible() && !old.is_some_and(|o| o.eligible());
            }
        }
        let has_paths = !K::table(&self.tables).entry(slot).paths.is_empty();
        let routed = &mut self.routed[K::INDEX];
        match (had_paths, has_paths) {
            (false, true) => *routed += 1,
            (true, false) => *routed = routed.saturating_sub(1),
            _ => {}
        }
        self.decide::<K>(slot);
        self.effects::<K>(slot, &before);
        self.scratch.before = before;
        // Only now: `effects` reads the old path's attributes.
        if let Some(old) = old {
            self.attrs.release(old.received);
            self.attrs.release(old.accepted);
        }
        if K::table(&self.tables).entry(slot).paths.is_empty() {
            self.retire::<K>(slot);
        }
        accepted_up
    }

    /// Runs the decision process for the entry at `slot`: the selected paths move to
    /// the front, `best` counts them.
    pub(super) fn decide<K: Net>(&mut self, slot: u32) {
        let Rib {
            tables,
            peers,
            attrs,
            settings,
            scratch,
            ..
        } = self;
        let entry = K::table_mut(tables).entry_mut(slot);
        let paths = match &mut entry.paths {
            Paths::Two(paths) => &mut paths[..],
            Paths::Many(paths) => &mut paths[..],
            other => {
                entry.best = u8::from(other.as_slice().first().is_some_and(Path::eligible));
                return;
            }
        };
        scratch.candidates.clear();
        scratch.eligible.clear();
        for (position, path) in paths.iter().enumerate() {
            if path.eligible() {
                scratch
                    .candidates
                    .push(candidate(peers, attrs, settings, path));
                scratch.eligible.push(position);
            }
        }
        select(&scratch.candidates, settings.max_paths, &mut scratch.order);
        scratch.reordered.clear();
        for &chosen in &scratch.order {
            scratch.reordered.push(paths[scratch.eligible[chosen]]);
        }
        for (position, path) in paths.iter().enumerate() {
            let chosen = scratch
                .order
                .iter()
                .any(|&chosen| scratch.eligible[chosen] == position);
            if !chosen {
                scratch.reordered.push(*path);
            }
        }
        paths.copy_from_slice(&scratch.reordered);
        entry.best = u8::try_from(scratch.order.len()).unwrap_or(u8::MAX);
    }

    /// After a change at `slot` whose selection was `before`: marks the prefix pending
    /// for the peers that may see a difference, and records the FIB change.
    pub(super) fn effects<K: Net>(&mut self, slot: u32, before: &[Path]) {
        let entry = K::table(&self.tables).entry(slot);
        let after = entry.selected();
        let same = |a: &[Path], b: &[Path]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x.peer == y.peer && x.accepted == y.accepted)
        };
        if same(before, after) {
            return;
        }
        self.record_best_route::<K>(slot, before);
        let entry = K::table(&self.tables).entry(slot);
        let best_before = before.first().map(|p| (p.peer, p.accepted));
        let best_after = entry.best_path();
        let net = entry.net;
        if best_before != best_after.map(|p| (p.peer, p.accepted)) {
            self.mark_pending::<K>(slot, best_after);
        }
        if self.fib.is_some() {
            let mut hops_before = std::mem::take(&mut self.scratch.hops_before);
            let mut hops_after = std::mem::take(&mut self.scratch.hops_after);
            let old = self.fib_target(before, &mut hops_before);
            let after = K::table(&self.tables).entry(slot).selected();
            let new = self.fib_target(after, &mut hops_after);
            if (old, &hops_before) != (new, &hops_after) {
                let prefix = net.ip_net();
                let change = match new {
                    FibKind::Via => Some(install(prefix, &hops_after)),
                    FibKind::Blackhole => Some(FibChange::Blackhole { prefix }),
                    FibKind::Nothing if old != FibKind::Nothing => {
                        Some(FibChange::Remove { prefix })
                    }
                    FibKind::Nothing => None,
                };
                if let (Some(change), Some(fib)) = (change, self.fib.as_mut()) {
                    fib.push(change);
                }
            }
            self.scratch.hops_before = hops_before;
            self.scratch.hops_after = hops_after;
        }
    }

    /// What the FIB should hold for a selection; next hops go to `hops`.
    fn fib_target(&self, selected: &[Path], hops: &mut Vec<FibNextHop>) -> FibKind {
        hops.clear();
        let Some(best) = selected.first() else {
            return FibKind::Nothing;
        };
        if self.peer(best.peer).is_some_and(|p| p.local.is_some()) {
            return if self.attrs.get(best.accepted).blackhole {
                FibKind::Blackhole
            } else {
                FibKind::Nothing
            };
        }
        for path in selected {
            let local = self
                .peer(path.peer)
                .and_then(|peer| peer.info.as_ref())
                .map(|info| info.local_address);
            if let Some(hop) = fib_next_hop(self.attrs.next_hop(path.accepted), local)
                && !hops.contains(&hop)
                && hops.len() < self.settings.max_paths
            {
                hops.push(hop);
            }
        }
        if hops.is_empty() {
            FibKind::Nothing
        } else {
            FibKind::Via
        }
    }

    /// Marks `slot` pending for every peer that may be sent something new for it:
    /// those the new best may be exported to, and those that have it advertised.
    pub(super) fn mark_pending<K: Net>(&mut self, slot: u32, best: Option<Path>) {
        let source = best.and_then(|b| {
            let peer = self.peer(b.peer)?;
            Some((
                b,
                SourceFacts::of(b.peer, peer),
                self.attrs.facts(b.accepted),
            ))
        });
        for (idx, peer) in self.peers.iter_mut().enumerate() {
            let Some(peer) = peer else { continue };
            if !peer.takes(K::FAMILY, K::INDEX) {
                continue;
            }
            let wanted = source
                .is_some_and(|(_, source, facts)| may_export(idx as PeerIdx, peer, source, facts));
            let out = &mut peer.out[K::INDEX];
            if wanted || out.advertised.contains(slot) {
                out.pending.insert(slot);
                self.ready.insert(idx as u32);
            }
        }
    }

    /// An entry without paths: freed now, or kept until peers withdrew it.
    fn retire<K: Net>(&mut self, slot: u32) {
        let referenced = self.peers.iter().flatten().any(|peer| {
            let out = &peer.out[K::INDEX];
            out.advertised.contains(slot) || out.pending.contains(slot)
        });
        let table = K::table_mut(&mut self.tables);
        if referenced {
            table.zombies.push(slot);
        } else {
            table.release(slot);
        }
    }

    /// Frees the entries without paths that no peer refers to any more.
    pub(super) fn collect_zombies<K: Net>(&mut self) {
        let zombies = std::mem::take(&mut K::table_mut(&mut self.tables).zombies);
        let mut kept = Vec::new();
        for slot in zombies {
            if !K::table(&self.tables).entry(slot).paths.is_empty() {
                continue; // announced again
            }
            let referenced = self.peers.iter().flatten().any(|peer| {
                let out = &peer.out[K::INDEX];
                out.advertised.contains(slot) || out.pending.contains(slot)
            });
            if referenced {
                kept.push(slot);
            } else {
                K::table_mut(&mut self.tables).release(slot);
            }
        }
        kept.sort_unstable();
        kept.dedup();
        K::table_mut(&mut self.tables).zombies = kept;
    }

    /// Re-runs the decision for every prefix (max_paths or identifiers changed).
    pub(super) fn decide_all<K: Net>(&mut self) {
        let mut slots = std::mem::take(&mut self.scratch.slots);
        slots.clear();
        slots.extend(K::table(&self.tables).iter().map(|(slot, _)| slot));
        let mut before = Vec::new();
        for &slot in &slots {
            before.clear();
            before.extend_from_slice(K::table(&self.tables).entry(slot).selected());
            self.decide::<K>(slot);
            self.effects::<K>(slot, &before);
        }
        self.scratch.slots = slots;
    }

    /// The interned attributes of a new local or received route.
    pub(super) fn intern(&mut self, attrs: RouteAttrs) -> u32 {
        self.attrs.intern(attrs)
    }
}

/// The decision facts of one path.
/// The FIB's next hop for a route's next hop received over a session whose local
/// address is `local`. An IPv6 next hop with a link-local address (RFC 2545: global
/// plus link-local, the link-local one alone with an unspecified global, or a
/// 16-octet next hop that is itself link-local) needs the session's interface; the
/// global address is preferred whenever it resolves. Without a session address the
/// plain address is passed on (and a link-local one is reported as unresolvable).
pub(super) fn fib_next_hop(next_hop: RouteNextHop, local: Option<IpAddr>) -> Option<FibNextHop> {
    let (global, link_local) = match next_hop {
        RouteNextHop::Local => return None,
        RouteNextHop::V4(address) => return Some(FibNextHop::Address(IpAddr::V4(address))),
        RouteNextHop::V6 { global, .. } if global.is_unicast_link_local() => (None, global),
        RouteNextHop::V6 {
            global,
            link_local: Some(link_local),
        } if global.is_unspecified() => (None, link_local),
        RouteNextHop::V6 {
            global,
            link_local: Some(link_local),
        } if link_local.is_unicast_link_local() => (Some(global), link_local),
        RouteNextHop::V6 { global, .. } => return Some(FibNextHop::Address(IpAddr::V6(global))),
    };
    Some(match local {
        Some(local) => FibNextHop::LinkLocal {
            global,
            link_local,
            local,
        },
        None => FibNextHop::Address(IpAddr::V6(global.unwrap_or(link_local))),
    })
}

/// `Install` when every next hop is a plain address, else `InstallOnLink`. The
/// lists are allocated at their exact length (the FIB channel holds many).
fn install(prefix: IpNet, hops: &[FibNextHop]) -> FibChange {
    if hops.iter().all(|hop| matches!(hop, FibNextHop::Address(_))) {
        let next_hops = hops
            .iter()
            .map(|hop| match *hop {
                FibNextHop::Address(address) => address,
                FibNextHop::LinkLocal { link_local, .. } => IpAddr::V6(link_local),
            })
            .collect();
        FibChange::Install { prefix, next_hops }
    } else {
        FibChange::InstallOnLink {
            prefix,
            next_hops: hops.to_vec(),
        }
    }
}

fn candidate(
    peers: &[Option<Peer>],
    attrs: &AttrTable,
    settings: &Settings,
    path: &Path,
) -> Candidate {
    let facts = attrs.facts(path.accepted);
    let peer = peers.get(usize::from(path.peer)).and_then(Option::as_ref);
    let info = peer.and_then(|p| p.info.as_ref());
    let source = peer.map_or(RouteSource::Local, Peer::source);
    Candidate {
        stale: path.stale(),
        local: source == RouteSource::Local,
        local_pref: facts.local_pref,
        as_path_len: facts.as_path_len,
        origin: facts.origin,
        med: facts.med,
        neighbor_as: facts.neighbor_as,
        ebgp: source == RouteSource::Ebgp,
        peer_asn: info.map_or(settings.asn, |i| i.remote_asn),
        router_id: facts
            .originator_id
            .or(info.map(|i| i.remote_router_id))
            .unwrap_or(settings.router_id),
        cluster_len: facts.cluster_len,
        address: info.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |i| i.address),
        tie: path.peer,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v6(global: &str, link_local: Option<&str>) -> RouteNextHop {
        RouteNextHop::V6 {
            global: global.parse().unwrap(),
            link_local: link_local.map(|l| l.parse().unwrap()),
        }
    }

    #[test]
    fn link_local_next_hops_name_the_session_and_keep_the_global_one() {
        let local: IpAddr = "2001:db8::1".parse().unwrap();
        let ll = |global: Option<&str>, link_local: &str| {
            Some(FibNextHop::LinkLocal {
                global: global.map(|g| g.parse().unwrap()),
                link_local: link_local.parse().unwrap(),
                local,
            })
        };
        let address = |a: &str| Some(FibNextHop::Address(a.parse().unwrap()));
        // RFC 2545 pair: global preferred, link-local through the session's interface.
        assert_eq!(
            fib_next_hop(v6("2001:db8::2", Some("fe80::2")), Some(local)),
            ll(Some("2001:db8::2"), "fe80::2")
        );
        // Link-local only: 32 octets with an unspecified global, or 16 link-local ones.
        assert_eq!(
            fib_next_hop(v6("::", Some("fe80::2")), Some(local)),
            ll(None, "fe80::2")
        );
        assert_eq!(
            fib_next_hop(v6("fe80::2", None), Some(local)),
            ll(None, "fe80::2")
        );
        // A global next hop alone, and IPv4: plain addresses, resolved by route-sync.
        assert_eq!(
            fib_next_hop(v6("2001:db8::2", None), Some(local)),
            address("2001:db8::2")
        );
        assert_eq!(
            fib_next_hop(RouteNextHop::V4("10.0.0.2".parse().unwrap()), Some(local)),
            address("10.0.0.2")
        );
        assert_eq!(fib_next_hop(RouteNextHop::Local, Some(local)), None);
        // Without a session address: the address itself.
        assert_eq!(
            fib_next_hop(v6("2001:db8::2", Some("fe80::2")), None),
            address("2001:db8::2")
        );
        assert_eq!(
            fib_next_hop(v6("::", Some("fe80::2")), None),
            address("fe80::2")
        );
    }

    #[test]
    fn plain_next_hops_stay_install_and_link_local_ones_go_on_link() {
        let prefix: IpNet = "10.1.0.0/24".parse().unwrap();
        let plain = FibNextHop::Address("2001:db8::2".parse().unwrap());
        assert_eq!(
            install(prefix, &[plain]),
            FibChange::Install {
                prefix,
                next_hops: vec!["2001:db8::2".parse().unwrap()]
            }
        );
        let on_link = FibNextHop::LinkLocal {
            global: None,
            link_local: "fe80::2".parse().unwrap(),
            local: "2001:db8::1".parse().unwrap(),
        };
        assert_eq!(
            install(prefix, &[plain, on_link]),
            FibChange::InstallOnLink {
                prefix,
                next_hops: vec![plain, on_link]
            }
        );
    }
}
