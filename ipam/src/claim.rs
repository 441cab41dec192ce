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
//! deleted. Candidate CIDRs are searched from an offset seeded by a hash of the node
//! name, so nodes claiming at once usually pick different blocks.

use ipnet::IpNet;

use crate::block::Block;
use crate::error::IpamError;
use crate::keys;
use crate::pool::Pool;
use crate::records::{Affinity, AffinityState};
use crate::store::{Datastore, Entry, Expect};
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
    /// `known` are the node's affinities the caller found full: when the node gained
    /// another one since (a concurrent process claimed it), this returns `Conflict` so
    /// that the caller uses that block instead of claiming yet another.
    pub(crate) async fn claim_block(
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

/// FNV-1a of the node name: where the node's search for a free block starts.
pub(crate) fn node_seed(node: &str) -> u64 {
    node.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
