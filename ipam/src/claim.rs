//! A node's affinity to a block CIDR, in single-key writes (the Kubernetes API has no
//! multi-object transaction; see the contract in `store/mod.rs`).
//!
//! A claim: (1) create the affinity `affinities/NODE/CIDR` as `Pending`; (2) create the
//! block naming the node (expecting it absent); (3) confirm the affinity. A release of
//! an empty block: (1) mark the affinity `PendingDeletion`; (2) delete the block
//! (expecting its revision, so an allocation made meanwhile keeps it); (3) delete the
//! affinity.
//!
//! Only step (2) of a claim decides who owns a block: the block names one node and is
//! created once, so two nodes racing for one CIDR can both write a pending affinity but
//! only one creates the block; the other drops its affinity. A node allocates only in
//! a block it has a *confirmed* affinity for and that names it, so a pending or
//! pending-deletion affinity counts as absent. Every state between two writes is
//! completed or dropped by the node's next operation ([`Ipam::repair_affinities`]): a
//! pending affinity whose block is absent is completed, one whose block names the node
//! is confirmed, one whose block names another node (or whose pool is gone) is deleted;
//! a pending-deletion affinity whose block is empty and names the node deletes the
//! block, whose block holds addresses is confirmed again, whose block is gone is
//! deleted.
//!
//! Where a claim looks for a free block: it probes a few candidate CIDRs at places
//! drawn from a hash of the node name (the first at the hash's block, as Calico's
//! random block generator starts at one seeded by the host name), reading their block
//! keys as many at once as the store reads in one round trip (all of a window on
//! SQLite and etcd, two GETs on Kubernetes) and stopping at the first batch with an
//! absent block, which it takes. So nodes claiming
//! at once usually pick different blocks, and a claim reads O(1) keys however many
//! blocks the store holds (listing every block and affinity for each claim made 5000
//! claims read 25 million records). Only when [`PROBE_WINDOWS`] windows of
//! [`PROBE_WINDOW`] candidates are all taken (a pool nearly full) does it list every
//! block and affinity and take the first free CIDR from the hash's offset, which also
//! tells an exhausted pool. A probe cannot see another node's pending affinity, only
//! blocks: two nodes that pick one CIDR both write their affinity, and the block's
//! create-if-absent makes one of them the owner, the other drops its affinity and
//! retries, as with the listing.

use ipnet::IpNet;

use crate::block::Block;
use crate::error::IpamError;
use crate::keys;
use crate::pool::Pool;
use crate::records::{Affinity, AffinityState};
use crate::store::{Datastore, Entry, Expect, Read};
use crate::{Ipam, failpoint};

/// The result of one claim attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    Claimed(IpNet),
    /// Lost a race; re-read and retry.
    Conflict,
    /// No pool has a free block.
    Exhausted,
}

impl<S: Datastore> Ipam<S> {
    /// Claims a free block for `node` from the first of `pools` that has one.
    /// `known` are the node's affinities as the caller read them. With `recheck` (the
    /// caller read them earlier in a longer operation and found those blocks full),
    /// they are read again with the first candidates, and when the node gained
    /// another one since (a concurrent process claimed it) this returns `Conflict` so
    /// that the caller uses that block instead of claiming yet another.
    ///
    /// The candidates are read [`Datastore::keys_per_round_trip`] at a time, and the
    /// first batch holding a free block ends the search (one round trip of eight keys
    /// on SQLite and etcd; on Kubernetes, where each key is a request, usually one
    /// round trip of two).
    pub(crate) async fn claim_block(
        &self,
        node: &str,
        pools: &[Pool],
        known: &[(Affinity, Entry)],
        recheck: bool,
    ) -> Result<Claim, IpamError> {
        let seed = node_seed(node);
        let batch = self.store.keys_per_round_trip().max(1);
        let mut recheck = recheck;
        for pool in pools {
            for window in 0..PROBE_WINDOWS {
                let candidates: Vec<IpNet> = probe_candidates(pool, seed, window)
                    .into_iter()
                    .filter(|cidr| !known.iter().any(|(k, _)| k.cidr == *cidr))
                    .collect();
                for candidates in candidates.chunks(batch) {
                    let mut reads = Vec::with_capacity(candidates.len() + 1);
                    if recheck {
                        // Whether a concurrent process gave the node another block
                        // since the caller read its affinities, in the same round trip.
                        reads.push(Read::Prefix(keys::node_affinities(node)));
                    }
                    reads.extend(candidates.iter().map(|cidr| Read::Key(keys::block(cidr))));
                    let mut results = self.store.read(reads).await?.into_iter();
                    if std::mem::take(&mut recheck) {
                        for entry in results.next().unwrap_or_default() {
                            let affinity: Affinity =
                                crate::records::decode(self.store.url(), &entry)?;
                            if !known.iter().any(|(k, _)| k.cidr == affinity.cidr) {
                                return Ok(Claim::Conflict);
                            }
                        }
                    }
                    let free = candidates
                        .iter()
                        .zip(results)
                        .find(|(_, found)| found.is_empty())
                        .map(|(cidr, _)| *cidr);
                    if let Some(cidr) = free {
                        return self.claim_cidr(node, cidr).await;
                    }
                }
            }
        }
        self.claim_listed(node, pools, known).await
    }

    /// [`Ipam::claim_block`] from a listing of every block and affinity: the first
    /// CIDR that neither names, from the hash's offset of the first pool with one.
    async fn claim_listed(
        &self,
        node: &str,
        pools: &[Pool],
        known: &[(Affinity, Entry)],
    ) -> Result<Claim, IpamError> {
        let mut taken = std::collections::HashSet::new();
        for entry in self.store.list(keys::BLOCKS).await? {
            taken.insert(crate::records::decode::<Block>(self.store.url(), &entry)?.cidr);
        }
        for entry in self.store.list(keys::AFFINITIES).await? {
            let affinity: Affinity = crate::records::decode(self.store.url(), &entry)?;
            if affinity.node == node && !known.iter().any(|(k, _)| k.cidr == affinity.cidr) {
                return Ok(Claim::Conflict);
            }
            taken.insert(affinity.cidr);
        }
        let seed = node_seed(node);
        for pool in pools {
            let count = pool.block_count();
            let taken_here = taken
                .iter()
                .filter(|c| pool.cidr.contains(&c.network()))
                .count() as u128;
            if taken_here >= count {
                continue;
            }
            // Among taken_here + 1 consecutive blocks at least one is free.
            let start = u128::from(seed) % count;
            let candidate = (0..=taken_here)
                .map(|i| pool.block_at((start + i) % count))
                .find(|cidr| !taken.contains(cidr));
            if let Some(cidr) = candidate {
                return self.claim_cidr(node, cidr).await;
            }
        }
        Ok(Claim::Exhausted)
    }

    /// Claims one block CIDR for `node` (pending, block, confirmed).
    pub(crate) async fn claim_cidr(&self, node: &str, cidr: IpNet) -> Result<Claim, IpamError> {
        let pending = Affinity {
            node: node.to_string(),
            cidr,
            state: AffinityState::Pending,
        };
        let Some(revision) = self
            .put(&keys::affinity(node, &cidr), &pending, Expect::Absent)
            .await?
        else {
            return Ok(Claim::Conflict);
        };
        failpoint("claim-pending");
        self.complete_claim(pending, revision).await
    }

    /// Creates the block of a pending affinity (at `revision`) and confirms it; drops
    /// the affinity when another node's block is there.
    async fn complete_claim(&self, pending: Affinity, revision: u64) -> Result<Claim, IpamError> {
        let block = Block::new(pending.cidr, Some(pending.node.clone()));
        if self
            .put(&keys::block(&pending.cidr), &block, Expect::Absent)
            .await?
            .is_none()
        {
            match self.block(&pending.cidr).await? {
                Some((_, block)) if block.affinity.as_deref() == Some(pending.node.as_str()) => {}
                _ => {
                    // Another node won the block.
                    self.delete(
                        &keys::affinity(&pending.node, &pending.cidr),
                        Expect::Revision(revision),
                    )
                    .await?;
                    return Ok(Claim::Conflict);
                }
            }
        }
        Ok(if self.confirm(pending, revision).await? {
            Claim::Claimed(block.cidr)
        } else {
            Claim::Conflict
        })
    }

    /// Writes an affinity (read at `revision`) back as confirmed.
    async fn confirm(&self, mut affinity: Affinity, revision: u64) -> Result<bool, IpamError> {
        affinity.state = AffinityState::Confirmed;
        let key = keys::affinity(&affinity.node, &affinity.cidr);
        let confirmed = self
            .put(&key, &affinity, Expect::Revision(revision))
            .await?
            .is_some();
        if confirmed {
            tracing::debug!(node = affinity.node, cidr = %affinity.cidr, "claimed block");
        }
        Ok(confirmed)
    }

    /// Releases an empty block the node owns: marks its affinity pending deletion,
    /// deletes the block, then the affinity. False when the block gained an address
    /// meanwhile (the affinity is confirmed again) or a write lost a race.
    pub(crate) async fn release_block(
        &self,
        affinity: &Affinity,
        entry: &Entry,
    ) -> Result<bool, IpamError> {
        let key = keys::affinity(&affinity.node, &affinity.cidr);
        let mut releasing = affinity.clone();
        releasing.state = AffinityState::PendingDeletion;
        let revision = if affinity.state == AffinityState::PendingDeletion {
            entry.revision
        } else {
            match self
                .put(&key, &releasing, Expect::Revision(entry.revision))
                .await?
            {
                Some(revision) => revision,
                None => return Ok(false),
            }
        };
        self.finish_release(releasing, revision).await
    }

    /// Steps (2) and (3) of a block release, from an affinity pending deletion at
    /// `revision`.
    async fn finish_release(&self, affinity: Affinity, revision: u64) -> Result<bool, IpamError> {
        match self.block(&affinity.cidr).await? {
            Some((block_entry, block)) if block.affinity.as_deref() == Some(&affinity.node) => {
                if !block.is_empty() {
                    // An address was allocated meanwhile: the block stays the node's.
                    self.confirm(affinity, revision).await?;
                    return Ok(false);
                }
                if !self
                    .delete(&block_entry.key, Expect::Revision(block_entry.revision))
                    .await?
                {
                    return Ok(false);
                }
            }
            _ => {}
        }
        let key = keys::affinity(&affinity.node, &affinity.cidr);
        self.delete(&key, Expect::Revision(revision)).await
    }

    /// Completes or drops what the node's interrupted claims and releases left (see the
    /// module text), and deletes confirmed affinities whose block is gone or names
    /// another node. Returns whether anything was written (the caller re-reads).
    pub(crate) async fn repair_affinities(
        &self,
        node: &str,
        affinities: &[(Affinity, Entry)],
    ) -> Result<bool, IpamError> {
        let mut wrote = false;
        for (affinity, entry) in affinities {
            match affinity.state {
                AffinityState::Confirmed => continue,
                AffinityState::PendingDeletion => {
                    wrote = true;
                    self.finish_release(affinity.clone(), entry.revision)
                        .await?;
                }
                AffinityState::Pending => {
                    wrote = true;
                    self.repair_pending(node, affinity, entry).await?;
                }
            }
        }
        Ok(wrote)
    }

    async fn repair_pending(
        &self,
        node: &str,
        affinity: &Affinity,
        entry: &Entry,
    ) -> Result<(), IpamError> {
        let pool_exists = self
            .pools()
            .await?
            .iter()
            .any(|p| p.cidr.contains(&affinity.cidr.network()));
        match self.block(&affinity.cidr).await? {
            None if pool_exists => {
                self.complete_claim(affinity.clone(), entry.revision)
                    .await?;
            }
            Some((_, block)) if block.affinity.as_deref() == Some(node) => {
                self.confirm(affinity.clone(), entry.revision).await?;
            }
            _ => {
                // Another node won the block, or its pool is gone.
                self.delete(&entry.key, Expect::Revision(entry.revision))
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes a confirmed affinity whose block is gone or names another node (left by
    /// an interrupted release). True when it did.
    pub(crate) async fn drop_stale_affinity(
        &self,
        affinity: &Affinity,
        entry: &Entry,
    ) -> Result<bool, IpamError> {
        let stale = match self.block(&affinity.cidr).await? {
            Some((_, block)) => block.affinity.as_deref() != Some(&affinity.node),
            None => true,
        };
        Ok(stale
            && self
                .delete(&entry.key, Expect::Revision(entry.revision))
                .await?)
    }
}

/// Candidate blocks a claim reads in one round trip.
pub(crate) const PROBE_WINDOW: u64 = 8;
/// Windows of candidates a claim probes in a pool before it lists every block.
pub(crate) const PROBE_WINDOWS: u64 = 4;

/// FNV-1a of the node name: where the node's search for a free block starts.
pub(crate) fn node_seed(node: &str) -> u64 {
    node.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The candidate CIDRs of probe window `window` for the node whose seed is `seed`:
/// [`PROBE_WINDOW`] blocks of `pool` at places drawn from the seed (the first of
/// window 0 at the seed's own offset), without repeats (a small pool has fewer).
pub(crate) fn probe_candidates(pool: &Pool, seed: u64, window: u64) -> Vec<IpNet> {
    let count = pool.block_count();
    let mut indices: Vec<u128> = Vec::with_capacity(PROBE_WINDOW as usize);
    for i in 0..PROBE_WINDOW {
        let draw = window * PROBE_WINDOW + i;
        let index = if draw == 0 {
            u128::from(seed) % count
        } else {
            u128::from(mix(seed, draw)) % count
        };
        if !indices.contains(&index) {
            indices.push(index);
        }
    }
    indices
        .into_iter()
        .map(|index| pool.block_at(index))
        .collect()
}

/// The `draw`th pseudo-random number of the sequence seeded by `seed` (SplitMix64's
/// finalizer over the seed advanced `draw` times).
fn mix(seed: u64, draw: u64) -> u64 {
    let mut z = seed.wrapping_add(draw.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn candidates_start_at_the_seed_and_spread() {
        let pool = Pool::new("10.128.0.0/13".parse().unwrap());
        let seed = node_seed("node-a");
        let first = probe_candidates(&pool, seed, 0);
        assert_eq!(first.len(), PROBE_WINDOW as usize);
        assert_eq!(
            first[0],
            pool.block_at(u128::from(seed) % pool.block_count())
        );
        let second = probe_candidates(&pool, seed, 1);
        assert!(second.iter().all(|cidr| !first.contains(cidr)));
        // Another node's candidates are others.
        let other = probe_candidates(&pool, node_seed("node-b"), 0);
        assert!(other.iter().all(|cidr| !first.contains(cidr)));
    }

    #[test]
    fn a_small_pool_gives_each_candidate_once() {
        let pool = Pool::new("10.77.0.0/25".parse().unwrap()); // 2 blocks of /26
        let candidates = probe_candidates(&pool, node_seed("node-a"), 0);
        assert!(!candidates.is_empty() && candidates.len() <= 2);
        let mut unique = candidates.clone();
        unique.dedup();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), candidates.len());
    }
}
