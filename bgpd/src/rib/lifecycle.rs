//! Sessions as the RIB sees them: up (initial table dump, End-of-RIB), down
//! (withdraw, or keep stale for graceful restart), End-of-RIB received (stale routes
//! of the family go), route refresh, RFC 7606 family disable, `Drained`, timers,
//! reloads, and the first full convergence that lets the FIB drop what it adopted.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::Family;
use ipnet::{Ipv4Net, Ipv6Net};

use super::export::{SourceFacts, may_export};
use super::peer::{AdjRibOut, Session};
use super::table::{Net, Path, PeerIdx};
use super::{Rib, Settings};
use crate::config::Config;
use crate::tasks::{FibChange, PeerId, PeerUp};

/// The first full convergence: every configured neighbor (not shut down) came up
/// and sent End-of-RIB for each family it negotiated, and with `[ipam]` the IPAM
/// task made its first synchronisation (the node's blocks, as the first
/// `LocalChange::Replace` of `LocalSource::IpamBlock`); or our graceful restart time
/// (`[bgp.graceful_restart] restart_time`, default 120 s) passed. Neighbors added
/// before then (the node mesh, a reload) are waited for too.
#[derive(Debug)]
pub struct Convergence {
    pub done: bool,
    deadline: Instant,
    waiting: HashSet<IpAddr>,
    /// Every neighbor address ever waited for (so a reconfiguration does not wait
    /// again for one that has already converged).
    known: HashSet<IpAddr>,
    /// Families (IPv4, IPv6) still owing End-of-RIB, per neighbor address.
    families: HashMap<IpAddr, [bool; 2]>,
    /// The IPAM task has not synchronised yet.
    ipam_pending: bool,
}

impl Convergence {
    pub fn new(config: &Config, now: Instant) -> Convergence {
        let waiting: HashSet<IpAddr> = config
            .bgp
            .neighbors
            .iter()
            .filter(|n| !n.shutdown)
            .map(|n| n.address)
            .collect();
        Convergence {
            done: false,
            deadline: now
                + Duration::from_secs(u64::from(config.bgp.graceful_restart.restart_time)),
            known: waiting.clone(),
            waiting,
            families: HashMap::new(),
            ipam_pending: config.ipam.is_some(),
        }
    }

    /// Before the first convergence, neighbors new in `config` are waited for too.
    fn add_neighbors(&mut self, config: &Config) {
        if self.done {
            return;
        }
        for neighbor in config.bgp.neighbors.iter().filter(|n| !n.shutdown) {
            if self.known.insert(neighbor.address) {
                self.waiting.insert(neighbor.address);
            }
        }
    }

    fn end_of_rib(&mut self, address: IpAddr, index: usize) {
        if let Some(owed) = self.families.get_mut(&address) {
            owed[index] = false;
            if owed.iter().all(|owed| !owed) {
                self.waiting.remove(&address);
            }
        }
    }
}

impl Rib {
    /// A session reached Established: the peer gets our table (and End-of-RIB).
    pub fn peer_up(&mut self, up: PeerUp, now: Instant) {
        let Some(idx) = self.index_of(up.peer) else {
            return;
        };
        if self.peer(idx).is_some_and(|p| p.session.is_some()) {
            // A new session without PeerDown for the old one: the old one is gone.
            self.peer_down(up.peer, None, now);
        }
        let Some(idx) = self.index_of(up.peer) else {
            return;
        };
        let info = up.info;
        let families = info.context.families;
        let settings = self.settings.peer_settings(info.address);
        let (had_stale, replaced) = {
            let Some(peer) = self.peer_mut(idx) else {
                return;
            };
            peer.settings = settings;
            peer.info = Some(info.clone());
            peer.closing = false;
            peer.close_pending = None;
            peer.disabled = [false; 2];
            peer.warned = [false; 2];
            peer.out = Default::default();
            let replaced = peer.session.is_some();
            peer.session = Some(Session {
                outbound: up.outbound,
                blocked: false,
                eor_due: [
                    families.contains(Family::IPV4_UNICAST),
                    families.contains(Family::IPV6_UNICAST),
                ],
                eor_received: [false; 2],
            });
            (peer.stale_until.is_some(), replaced)
        };
        if !replaced {
            self.sessions += 1;
        }
        // Settings or identifiers may differ from the last session.
        self.clear_import_cache(idx);
        self.forget_source(idx);
        if had_stale {
            // RFC 4724 4.2: stale routes of a family the peer no longer preserves
            // forwarding state for (or no longer negotiates) go now.
            for (index, family) in [(0, Family::IPV4_UNICAST), (1, Family::IPV6_UNICAST)] {
                let preserved = families.contains(family)
                    && info.graceful_restart.as_ref().is_some_and(|gr| {
                        gr.families
                            .iter()
                            .any(|f| f.family == family && f.forwarding_preserved())
                    });
                if !preserved {
                    self.remove_paths_of(idx, index, true);
                }
            }
            self.update_stale_timer(idx);
        }
        // End-of-RIB is due even with nothing to dump.
        self.ready.insert(u32::from(idx));
        self.dump::<Ipv4Net>(idx);
        self.dump::<Ipv6Net>(idx);
        if self.convergence.waiting.contains(&info.address) {
            let owed = [
                families.contains(Family::IPV4_UNICAST),
                families.contains(Family::IPV6_UNICAST),
            ];
            self.convergence.families.insert(info.address, owed);
            if owed.iter().all(|o| !o) {
                self.convergence.waiting.remove(&info.address);
            }
        }
        self.check_convergence(now);
    }

    /// A session left Established. With `stale_for` its routes stay (stale) that
    /// long or until its End-of-RIB after it returns; otherwise they go now.
    pub fn peer_down(&mut self, peer: PeerId, stale_for: Option<Duration>, now: Instant) {
        let Some(&idx) = self.by_id.get(&peer) else {
            return;
        };
        let Some(record) = self.peer_mut(idx) else {
            return;
        };
        let ended = record.session.take().is_some();
        record.out = Default::default();
        record.closing = false;
        record.close_pending = None;
        if ended {
            self.sessions -= 1;
        }
        self.clear_export_cache(idx);
        match stale_for.filter(|d| !d.is_zero()) {
            Some(keep) => {
                self.mark_stale::<Ipv4Net>(idx);
                self.mark_stale::<Ipv6Net>(idx);
                let until = self
                    .peer(idx)
                    .is_some_and(|record| record.routes() > 0)
                    .then(|| now + keep);
                self.set_stale_until(idx, until);
            }
            None => {
                self.remove_paths_of(idx, 0, false);
                self.remove_paths_of(idx, 1, false);
                self.set_stale_until(idx, None);
            }
        }
        self.release_peer_if_unused(idx);
    }

    /// The peer sent End-of-RIB: its routes of the family still stale go.
    pub fn end_of_rib(&mut self, peer: PeerId, family: Family, now: Instant) {
        let Some(&idx) = self.by_id.get(&peer) else {
            return;
        };
        let Some(index) = family_index(family) else {
            return;
        };
        self.remove_paths_of(idx, index, true);
        self.update_stale_timer(idx);
        let address = self.peer_mut(idx).and_then(|record| {
            if let Some(session) = &mut record.session {
                session.eor_received[index] = true;
            }
            record.address()
        });
        if let Some(address) = address {
            self.convergence.end_of_rib(address, index);
        }
        self.check_convergence(now);
    }

    /// The peer asked for the family again (ROUTE-REFRESH).
    pub fn route_refresh(&mut self, peer: PeerId, family: Family) {
        let Some(&idx) = self.by_id.get(&peer) else {
            return;
        };
        match family_index(family) {
            Some(0) => self.dump::<Ipv4Net>(idx),
            Some(_) => self.dump::<Ipv6Net>(idx),
            None => {}
        }
    }

    /// RFC 7606 AFI/SAFI disable: the peer's routes of the family go, and the
    /// family is ignored in both directions until the next session.
    pub fn disable_family(&mut self, peer: PeerId, family: Family) {
        let Some(&idx) = self.by_id.get(&peer) else {
            return;
        };
        let Some(index) = family_index(family) else {
            return;
        };
        self.remove_paths_of(idx, index, false);
        if let Some(record) = self.peer_mut(idx) {
            record.disabled[index] = true;
            record.out[index] = AdjRibOut::default();
            if let Some(session) = &mut record.session {
                session.eor_due[index] = false;
            }
        }
    }

    /// The peer's outbound channel has room again.
    pub fn drained(&mut self, peer: PeerId) {
        let Some(&idx) = self.by_id.get(&peer) else {
            return;
        };
        if let Some(session) = self.peer_mut(idx).and_then(|p| p.session.as_mut()) {
            session.blocked = false;
            self.ready.insert(u32::from(idx));
        }
        self.send_close(idx);
    }

    /// A new configuration: policies, max_paths, identifiers, per-neighbor settings
    /// and configured networks. Routes are re-evaluated where something changed
    /// (soft reconfiguration: sessions stay up).
    pub fn reconfigure(&mut self, config: Arc<Config>, now: Instant) {
        let old = std::mem::replace(&mut self.settings, Settings::new(config.clone()));
        let global_export = old.asn != self.settings.asn
            || old.router_id != self.settings.router_id
            || old.cluster_id != self.settings.cluster_id;
        let mut reexport_all = global_export;
        let mut reexport = Vec::new();
        let mut reimport = Vec::new();
        for idx in 0..self.peers.len() {
            let idx = idx as PeerIdx;
            let Some(address) = self
                .peer(idx)
                .filter(|p| p.local.is_none())
                .and_then(|p| p.address())
            else {
                continue;
            };
            let new = self.settings.peer_settings(address);
            let Some(record) = self.peer_mut(idx) else {
                continue;
            };
            let old = std::mem::replace(&mut record.settings, new.clone());
            if old.import != new.import {
                reimport.push(idx);
            }
            if old.route_reflector_client != new.route_reflector_client {
                reexport_all = true;
            }
            if old.export != new.export || old.next_hop_self != new.next_hop_self {
                reexport.push(idx);
            }
        }
        for idx in reimport {
            self.clear_import_cache(idx);
            self.reimport::<Ipv4Net>(idx);
            self.reimport::<Ipv6Net>(idx);
        }
        if old.max_paths != self.settings.max_paths || global_export {
            self.decide_all::<Ipv4Net>();
            self.decide_all::<Ipv6Net>();
        }
        if reexport_all {
            self.clear_export_caches();
            reexport = (0..self.peers.len() as PeerIdx).collect();
        }
        for idx in reexport {
            self.clear_export_cache(idx);
            self.dump::<Ipv4Net>(idx);
            self.dump::<Ipv6Net>(idx);
        }
        self.local_change(crate::local::config_routes(&config));
        self.convergence.add_neighbors(&config);
        self.check_convergence(now);
    }

    /// The IPAM task's first synchronisation is in: the first convergence no longer
    /// waits for it.
    pub fn ipam_synced(&mut self, now: Instant) {
        self.convergence.ipam_pending = false;
        self.check_convergence(now);
    }

    /// The next time [`Rib::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let stale = self.stale_deadlines.first().map(|&(until, _)| until);
        let convergence = (!self.convergence.done).then_some(self.convergence.deadline);
        stale.into_iter().chain(convergence).min()
    }

    /// Stale routes whose time ran out go; the convergence timeout passes.
    pub fn on_timer(&mut self, now: Instant) {
        let mut due: Vec<PeerIdx> = self
            .stale_deadlines
            .range(..=(now, PeerIdx::MAX))
            .map(|&(_, idx)| idx)
            .collect();
        due.sort_unstable();
        for idx in due {
            if let Some(address) = self.peer(idx).and_then(|p| p.address()) {
                tracing::info!(neighbor = %address, "graceful restart: stale routes time out");
            }
            self.remove_paths_of(idx, 0, true);
            self.remove_paths_of(idx, 1, true);
            self.set_stale_until(idx, None);
            self.release_peer_if_unused(idx);
        }
        self.check_convergence(now);
    }

    /// Sets when the stale routes of `idx` go, keeping `stale_deadlines` in step.
    fn set_stale_until(&mut self, idx: PeerIdx, until: Option<Instant>) {
        let Some(record) = self.peer_mut(idx) else {
            return;
        };
        let old = std::mem::replace(&mut record.stale_until, until);
        if let Some(old) = old {
            self.stale_deadlines.remove(&(old, idx));
        }
        if let Some(until) = until {
            self.stale_deadlines.insert((until, idx));
        }
    }

    /// Marks the first full convergence when it is reached.
    pub(super) fn check_convergence(&mut self, now: Instant) {
        let convergence = &mut self.convergence;
        let complete = convergence.waiting.is_empty() && !convergence.ipam_pending;
        if convergence.done || !(complete || now >= convergence.deadline) {
            return;
        }
        convergence.done = true;
        if !convergence.waiting.is_empty() {
            tracing::info!(
                waiting = convergence.waiting.len(),
                "first convergence: timeout while waiting for End-of-RIB"
            );
        }
        if convergence.ipam_pending {
            tracing::info!("first convergence: timeout while waiting for the IPAM datastore");
        }
        if let Some(fib) = self.fib.as_mut() {
            fib.push(FibChange::Converged);
        }
    }

    /// Marks every prefix `idx` may be sent as pending (initial dump, route refresh,
    /// new export settings); End-of-RIB follows when the dump is out.
    pub(super) fn dump<K: Net>(&mut self, idx: PeerIdx) {
        let Some(peer) = self.peer_mut(idx) else {
            return;
        };
        if !peer.takes(K::FAMILY, K::INDEX) {
            return;
        }
        let mut out = std::mem::take(&mut peer.out[K::INDEX]);
        if let Some(peer) = self.peer(idx) {
            for (slot, entry) in K::table(&self.tables).iter() {
                let Some(best) = entry.best_path() else {
                    if out.advertised.contains(slot) {
                        out.pending.insert(slot);
                    }
                    continue;
                };
                let wanted = self.peer(best.peer).is_some_and(|source| {
                    may_export(
                        idx,
                        peer,
                        SourceFacts::of(best.peer, source),
                        self.attrs.facts(best.accepted),
                    )
                });
                if wanted || out.advertised.contains(slot) {
                    out.pending.insert(slot);
                }
            }
        }
        if let Some(peer) = self.peer_mut(idx) {
            peer.out[K::INDEX] = out;
            self.ready.insert(u32::from(idx));
        }
    }

    /// Marks the paths of `idx` stale; where other paths exist, the decision runs
    /// again (a stale path loses to any fresh one).
    fn mark_stale<K: Net>(&mut self, idx: PeerIdx) {
        let slots: Vec<u32> = K::table(&self.tables)
            .iter()
            .filter(|(_, e)| e.paths.find(idx).is_some())
            .map(|(slot, _)| slot)
            .collect();
        let mut before = std::mem::take(&mut self.scratch.before);
        for slot in slots {
            let entry = K::table_mut(&mut self.tables).entry_mut(slot);
            let Some(position) = entry.paths.find(idx) else {
                continue;
            };
            let path = &mut entry.paths.as_mut_slice()[position];
            let fresh = !path.stale();
            path.flags |= Path::STALE;
            if entry.paths.as_slice().len() > 1 {
                before.clear();
                before.extend_from_slice(entry.selected());
            }
            let several = entry.paths.as_slice().len() > 1;
            if fresh && let Some(peer) = self.peer_mut(idx) {
                peer.counters[K::INDEX].stale += 1;
            }
            if several {
                self.decide::<K>(slot);
                self.effects::<K>(slot, &before);
            }
        }
        self.scratch.before = before;
    }

    /// Removes the paths of `idx` in family `index` (only the stale ones, or all).
    pub(super) fn remove_paths_of(&mut self, idx: PeerIdx, index: usize, only_stale: bool) {
        if index == 0 {
            self.remove_paths::<Ipv4Net>(idx, only_stale);
        } else {
            self.remove_paths::<Ipv6Net>(idx, only_stale);
        }
    }

    fn remove_paths<K: Net>(&mut self, idx: PeerIdx, only_stale: bool) {
        let slots: Vec<u32> = K::table(&self.tables)
            .iter()
            .filter(|(_, e)| {
                e.paths
                    .find(idx)
                    .is_some_and(|p| !only_stale || e.paths.as_slice()[p].stale())
            })
            .map(|(slot, _)| slot)
            .collect();
        for slot in slots {
            self.change_path::<K>(slot, idx, None);
        }
    }

    /// Clears the stale timer once no stale path of `idx` is left.
    fn update_stale_timer(&mut self, idx: PeerIdx) {
        let done = self
            .peer(idx)
            .is_some_and(|p| p.stale_until.is_some() && p.counters.iter().all(|c| c.stale == 0));
        if done {
            self.set_stale_until(idx, None);
        }
    }
}

/// 0 for IPv4 unicast, 1 for IPv6 unicast.
pub fn family_index(family: Family) -> Option<usize> {
    match family {
        Family::IPV4_UNICAST => Some(0),
        Family::IPV6_UNICAST => Some(1),
        _ => None,
    }
}

/// Keeps the generic helpers honest about which family index belongs to which type.
const _: () = {
    assert!(<Ipv4Net as Net>::INDEX == 0);
    assert!(<Ipv6Net as Net>::INDEX == 1);
};
