//! Adj-RIB-Out: sending each peer what is pending for it, packed into as few
//! UPDATEs as the session allows, without ever waiting for a peer.
//!
//! A peer's adj_rib_out is two sets per family of the table's slots (see
//! `peer::AdjRibOut`): `advertised` (what it has from us: a bit per slot, or the few
//! slots it lacks when it has nearly all, as a reflector's clients do) and `pending`
//! (what may have changed for it, a bit per slot). [`Rib::flush`] turns pending slots into UPDATEs: for each it
//! computes the export of the current best path (see `export`), groups the prefixes
//! by outgoing attribute set and packs each group with bgp-proto's `UpdatePacker`;
//! what stopped being exportable and was advertised is withdrawn. Each batch goes out
//! as one `Outbound::Updates` through a reserved slot of the peer's bounded channel
//! (`try_reserve`): when the channel is full the rest stays pending and the peer is
//! resumed on `Drained`. Nothing is lost and nothing blocks. After the initial dump of
//! a family (pending empty for the first time), End-of-RIB follows.
//!
//! Encoded UPDATEs are made only as fast as peers take them: a batch is about
//! [`Rib::batch_bytes`] long, a share of [`OUTBOUND_BYTES`] per established session,
//! and a peer holds at most [`OUTBOUND_CAPACITY`] of them in its channel (plus its
//! writer's queue). What a slow peer has not taken stays a pending bit, not bytes: a
//! route reflector whose 5000 clients read slower than it encodes held every client's
//! whole table encoded (884 MiB at 5000 clients, issue 18's `bench scale-reflector`),
//! where BIRD encodes when the socket can take more.

use crate::queue::TrySendError;
use bgp_proto::{Family, Prefix, UpdatePacker};
use bytes::{Bytes, BytesMut};
use ipnet::{Ipv4Net, Ipv6Net};

use super::Rib;
use super::attrs::AttrId;
use super::table::{Net, PeerIdx};
use crate::session::connection::UPDATE_QUEUE;
use crate::tasks::{OUTBOUND_CAPACITY, Outbound};

/// Most pending prefixes examined at once (one call of `fill`).
const BATCH_PREFIXES: usize = 2048;
/// Encoded UPDATEs the rib lets wait toward all peers together, at most: each
/// session's batches are this shared out over the established sessions and their
/// pipeline depth (see [`Rib::batch_bytes`]).
pub const OUTBOUND_BYTES: usize = 32 << 20;
/// Batches in flight toward one peer at most: its outbound channel, its writer's
/// queue and the write under way.
const PIPELINE_DEPTH: usize = OUTBOUND_CAPACITY + UPDATE_QUEUE + 1;
/// The smallest batch (a few dozen small UPDATEs: fewer per batch would cost more in
/// hand-overs than in encoding).
const MIN_BATCH_BYTES: usize = 4 << 10;
/// The largest batch (one peer alone: a table dump in few hand-overs).
const MAX_BATCH_BYTES: usize = 256 << 10;
/// First guess of encoded bytes per prefix, before a batch has been measured.
const FIRST_BYTES_PER_PREFIX: usize = 32;
/// The largest encoding buffer kept between batches (a bigger one, from a batch of
/// many small UPDATEs, is freed).
const MAX_KEPT_BATCH_BUFFER: usize = 1 << 20;

impl Rib {
    /// Sends every peer what is pending for it, as far as its channel takes it.
    /// Only the peers marked ready are visited; those that still can take something
    /// (a closed channel: PeerDown follows) stay ready.
    pub fn flush(&mut self) {
        let mut ready = std::mem::take(&mut self.scratch.ready);
        ready.clear();
        self.ready.take(usize::MAX, &mut ready);
        for &idx in &ready {
            let Ok(idx) = PeerIdx::try_from(idx) else {
                continue;
            };
            self.flush_peer(idx);
            if self.can_send(idx) {
                self.ready.insert(u32::from(idx));
            }
        }
        self.scratch.ready = ready;
        self.collect_zombies::<Ipv4Net>();
        self.collect_zombies::<Ipv6Net>();
    }

    /// True when some peer has something pending that it can take now.
    pub fn has_pending(&self) -> bool {
        self.ready
            .iter()
            .any(|idx| PeerIdx::try_from(idx).is_ok_and(|idx| self.can_send(idx)))
    }

    /// True when `idx` has something pending that it can take now.
    fn can_send(&self, idx: PeerIdx) -> bool {
        self.peer(idx).is_some_and(|peer| {
            peer.session.as_ref().is_some_and(|s| {
                !s.blocked
                    && !peer.closing
                    && (peer.out.iter().any(|o| !o.pending.is_empty())
                        || s.eor_due.iter().any(|&due| due))
            })
        })
    }

    fn flush_peer(&mut self, idx: PeerIdx) {
        loop {
            let Some(peer) = self.peer(idx) else {
                return;
            };
            let Some(session) = &peer.session else {
                return;
            };
            if session.blocked || peer.closing {
                return;
            }
            let work = (0..2).any(|f| !peer.out[f].pending.is_empty() || session.eor_due[f]);
            if !work {
                return;
            }
            let permit = match session.outbound.try_reserve() {
                Ok(permit) => permit,
                Err(TrySendError::Full(_)) => {
                    if let Some(session) = self.peer_mut(idx).and_then(|p| p.session.as_mut()) {
                        session.blocked = true;
                    }
                    return;
                }
                // The session is going away; PeerDown follows.
                Err(TrySendError::Closed(_)) => return,
            };
            // Encoded in one reused buffer and sent as an exact-size copy: the
            // packer reserves a whole message (4 KiB) per UPDATE, so a batch of one
            // small UPDATE frozen as it was kept 4 KiB alive while it waited for a
            // slow peer. A reflector with 1000 clients joining held 287 MB of such
            // slack for 80 MB of UPDATEs (heaptrack, bench scale-reflector).
            let mut buf = std::mem::take(&mut self.scratch.batch);
            buf.clear();
            let target = self.batch_bytes();
            self.fill_up::<Ipv4Net>(idx, &mut buf, target);
            self.fill_up::<Ipv6Net>(idx, &mut buf, target);
            if !buf.is_empty() {
                let batch = Bytes::copy_from_slice(&buf);
                permit.send(Box::new(Outbound::Updates(batch)));
            }
            if buf.capacity() <= MAX_KEPT_BATCH_BUFFER {
                self.scratch.batch = buf;
            }
        }
    }

    /// The length a batch of UPDATEs is filled to: [`OUTBOUND_BYTES`] over the
    /// established sessions and their [`PIPELINE_DEPTH`], within
    /// [`MIN_BATCH_BYTES`]..=[`MAX_BATCH_BYTES`].
    pub(super) fn batch_bytes(&self) -> usize {
        (self.outbound_bytes / (self.sessions.max(1) * PIPELINE_DEPTH))
            .clamp(MIN_BATCH_BYTES, MAX_BATCH_BYTES)
    }

    /// Sets what may wait encoded toward all peers together ([`OUTBOUND_BYTES`] by
    /// default): tests use a small one to see batches of a few KiB with few peers.
    pub fn set_outbound_bytes(&mut self, bytes: usize) {
        self.outbound_bytes = bytes;
    }

    /// Appends UPDATEs of family `K` to `buf` until it holds `target` bytes or
    /// nothing of `K` is pending; End-of-RIB when the initial dump is complete. How
    /// many prefixes to take for the room left is guessed from the bytes per prefix
    /// of the last fill, so a batch overshoots `target` by one fill at most.
    fn fill_up<K: Net>(&mut self, idx: PeerIdx, buf: &mut BytesMut, target: usize) {
        loop {
            let Some(peer) = self.peer(idx) else {
                return;
            };
            let pending = !peer.out[K::INDEX].pending.is_empty();
            let eor_due = peer.session.as_ref().is_some_and(|s| s.eor_due[K::INDEX]);
            if !pending && !eor_due || buf.len() >= target && pending {
                return;
            }
            let per_prefix = self.scratch.bytes_per_prefix[K::INDEX];
            let per_prefix = if per_prefix == 0 {
                FIRST_BYTES_PER_PREFIX
            } else {
                per_prefix
            };
            let room = target.saturating_sub(buf.len());
            let want = (room / per_prefix).clamp(1, BATCH_PREFIXES);
            let before = buf.len();
            let taken = self.fill::<K>(idx, buf, want);
            if taken == 0 {
                // Only End-of-RIB (or nothing) was left.
                return;
            }
            self.scratch.bytes_per_prefix[K::INDEX] = ((buf.len() - before) / taken).max(1);
        }
    }

    /// Appends UPDATEs for up to `max` pending prefixes of family `K` (and
    /// End-of-RIB when the initial dump is complete); returns how many it took.
    fn fill<K: Net>(&mut self, idx: PeerIdx, buf: &mut BytesMut, max: usize) -> usize {
        let mut slots = std::mem::take(&mut self.scratch.slots);
        slots.clear();
        let Some(peer) = self.peer_mut(idx) else {
            return 0;
        };
        let info = match peer.info.clone() {
            Some(info) if peer.takes(K::FAMILY, K::INDEX) => info,
            _ => {
                peer.out[K::INDEX].pending.clear();
                if let Some(session) = &mut peer.session {
                    session.eor_due[K::INDEX] = false;
                }
                return 0;
            }
        };
        peer.out[K::INDEX].pending.take(max, &mut slots);
        let taken = slots.len();

        // What each pending prefix is now: announced with an attribute set (retained
        // until encoded), or withdrawn.
        let mut announce: Vec<(AttrId, u32, bool)> = Vec::new();
        let mut withdraw: Vec<Prefix> = Vec::new();
        for &slot in &slots {
            let entry = K::table(&self.tables).entry(slot);
            let net = entry.net;
            let export = entry
                .best_path()
                .and_then(|best| self.export::<K>(idx, net, best));
            let Some(out) = self.peer_mut(idx).map(|p| &mut p.out[K::INDEX]) else {
                break;
            };
            match export {
                Some(attrs) => {
                    let fresh = out.advertised.insert(slot);
                    announce.push((attrs, slot, !fresh));
                    self.attrs.retain(attrs);
                }
                None => {
                    if out.advertised.remove(slot) {
                        withdraw.push(net.wire());
                    }
                }
            }
        }
        self.scratch.slots = slots;

        let packer = UpdatePacker::new(&info.context);
        announce.sort_unstable_by_key(|&(attrs, slot, _)| (attrs, slot));
        let mut failed: Vec<(u32, bool)> = Vec::new();
        let mut prefixes: Vec<Prefix> = Vec::new();
        for group in announce.chunk_by(|a, b| a.0 == b.0) {
            prefixes.clear();
            prefixes.extend(
                group
                    .iter()
                    .map(|&(_, slot, _)| K::table(&self.tables).entry(slot).net.wire()),
            );
            // Encoded once for every session it fits (see `AttrTable::encoded`).
            let result = self
                .attrs
                .encoded(group[0].0, &info.context, K::FAMILY)
                .and_then(|encoded| {
                    packer.announce_encoded(encoded, prefixes.iter().copied(), buf)
                });
            if let Err(error) = result {
                tracing::warn!(
                    neighbor = %info.address,
                    prefixes = group.len(),
                    "routes not sent: {error}"
                );
                failed.extend(group.iter().map(|&(_, slot, was)| (slot, was)));
            }
        }
        for &(attrs, _, _) in &announce {
            self.attrs.release(attrs);
        }
        for (slot, was_advertised) in failed {
            if let Some(peer) = self.peer_mut(idx) {
                peer.out[K::INDEX].advertised.remove(slot);
            }
            if was_advertised {
                withdraw.push(K::table(&self.tables).entry(slot).net.wire());
            }
        }
        if !withdraw.is_empty() {
            let result = match K::FAMILY {
                Family::IPV4_UNICAST => packer.withdraw_ipv4(
                    withdraw.iter().filter_map(|p| match p {
                        Prefix::V4(p) => Some(*p),
                        Prefix::V6(_) => None,
                    }),
                    buf,
                ),
                family => packer.withdraw_mp(family, withdraw.iter().copied(), buf),
            };
            if let Err(error) = result {
                tracing::warn!(neighbor = %info.address, "withdrawals not sent: {error}");
            }
        }
        let Some(peer) = self.peer_mut(idx) else {
            return taken;
        };
        let done = peer.out[K::INDEX].pending.is_empty();
        if let Some(session) = &mut peer.session
            && done
            && session.eor_due[K::INDEX]
        {
            session.eor_due[K::INDEX] = false;
            if let Err(error) = packer.end_of_rib(K::FAMILY, buf) {
                tracing::warn!(neighbor = %info.address, "End-of-RIB not sent: {error}");
            }
        }
        taken
    }

    /// Prefixes advertised to a peer, per family.
    pub(super) fn advertised(&self, idx: PeerIdx) -> [u64; 2] {
        self.peer(idx).map_or([0; 2], |p| {
            [
                p.out[0].advertised.len() as u64,
                p.out[1].advertised.len() as u64,
            ]
        })
    }
}
