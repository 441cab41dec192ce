//! Block claims: a node takes a free block CIDR of a pool in two phases.
//!
//! 1. A pending affinity `affinities/NODE/CIDR` is created, in a transaction that also
//!    requires the block key to be absent.
//! 2. The block (with the node's affinity) is created and the affinity confirmed, in one
//!    transaction that requires the block to be absent and the pending affinity
//!    unchanged.
//!
//! Two nodes racing for one CIDR can both pass phase 1 (their affinity keys differ) but
//! only one creates the block; the other's pending affinity is dropped by its next
//! operation. A process killed between the phases leaves a pending affinity that the
//! node's next operation ([`Ipam::repair_pending`]) completes, so a claim is never
//! duplicated or lost. Candidate CIDRs are searched from an offset seeded by a hash of
//! the node name, so nodes claiming at once usually pick different blocks.

use ipnet::IpNet;

use crate::block::Block;
use crate::error::IpamError;
use crate::keys;
use crate::pool::Pool;
use crate::records::{Affinity, AffinityState, encode};
use crate::store::{Datastore, Entry, Expect, Outcome, Txn};
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

    /// Claims one block CIDR for `node` (both phases).
    pub(crate) async fn claim_cidr(&self, node: &str, cidr: IpNet) -> Result<Claim, IpamError> {
        let affinity_key = keys::affinity(node, &cidr);
        let pending = Affinity {
            node: node.to_string(),
            cidr,
            state: AffinityState::Pending,
        };
        let mut txn = Txn::new();
        txn.check(keys::block(&cidr), Expect::Absent);
        txn.put(affinity_key, encode(&pending), Expect::Absent);
        let Outcome::Committed { revision } = self.store.commit(txn).await? else {
            return Ok(Claim::Conflict);
        };
        failpoint("claim-pending");
        self.complete_claim(node, cidr, revision).await
    }

    /// Phase 2: creates the block and confirms the pending affinity at `revision`.
    async fn complete_claim(
        &self,
        node: &str,
        cidr: IpNet,
        revision: u64,
    ) -> Result<Claim, IpamError> {
        let confirmed = Affinity {
            node: node.to_string(),
            cidr,
            state: AffinityState::Confirmed,
        };
        let mut txn = Txn::new();
        txn.put(
            keys::block(&cidr),
            encode(&Block::new(cidr, Some(node.to_string()))),
            Expect::Absent,
        );
        txn.put(
            keys::affinity(node, &cidr),
            encode(&confirmed),
            Expect::Revision(revision),
        );
        Ok(if self.commit(txn).await? {
            tracing::debug!(node, %cidr, "claimed block");
            Claim::Claimed(cidr)
        } else {
            Claim::Conflict
        })
    }

    /// Finishes or drops the node's pending affinities (left by a crash or by a
    /// concurrent claim). Returns whether anything was written (the caller re-reads).
    pub(crate) async fn repair_pending(
        &self,
        node: &str,
        affinities: &[(Affinity, Entry)],
    ) -> Result<bool, IpamError> {
        let mut wrote = false;
        for (affinity, entry) in affinities {
            if affinity.state != AffinityState::Pending {
                continue;
            }
            wrote = true;
            let pool_exists = self
                .pools()
                .await?
                .iter()
                .any(|p| p.cidr.contains(&affinity.cidr.network()));
            match self.block(&affinity.cidr).await? {
                None if pool_exists => {
                    self.complete_claim(node, affinity.cidr, entry.revision)
                        .await?;
                }
                Some((block_entry, block)) if block.affinity.as_deref() == Some(node) => {
                    let mut confirmed = affinity.clone();
                    confirmed.state = AffinityState::Confirmed;
                    let mut txn = Txn::new();
                    txn.check(block_entry.key, Expect::Revision(block_entry.revision));
                    txn.put(
                        entry.key.clone(),
                        encode(&confirmed),
                        Expect::Revision(entry.revision),
                    );
                    self.commit(txn).await?;
                }
                _ => {
                    // Another node won the block, or its pool is gone.
                    let mut txn = Txn::new();
                    txn.delete(entry.key.clone(), Expect::Revision(entry.revision));
                    self.commit(txn).await?;
                }
            }
        }
        Ok(wrote)
    }
}

/// FNV-1a of the node name: where the node's search for a free block starts.
fn node_seed(node: &str) -> u64 {
    node.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
