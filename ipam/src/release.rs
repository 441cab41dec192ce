//! Releases: by handle, by address (with an optional sequence number), a node's empty
//! blocks, and everything of a deleted node.
//!
//! A block left without an owner (its node was deleted while other nodes still had
//! addresses borrowed from it) is deleted by the release that frees its last address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Ipam;
use crate::allocator::Backoff;
use crate::block::Block;
use crate::error::IpamError;
use crate::keys;
use crate::records::{HandleRecord, encode};
use crate::store::{Datastore, Entry, Expect, Txn};

/// Most handle records one transaction rewrites (etcd allows 128 operations).
const HANDLES_PER_TXN: usize = 100;

/// A released address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub address: IpAddr,
    pub handle: String,
}

/// What [`Ipam::release_node`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRelease {
    pub node: String,
    /// Blocks deleted with the node's affinity.
    pub blocks_released: Vec<IpNet>,
    /// Blocks kept without an owner because other nodes still borrow addresses in them.
    pub blocks_orphaned: Vec<IpNet>,
    pub addresses_released: usize,
}

impl<S: Datastore> Ipam<S> {
    /// Releases every address of `handle`; returns them (empty when it had none).
    pub async fn release_handle(&self, handle: &str) -> Result<Vec<Released>, IpamError> {
        keys::validate_handle(handle)?;
        let mut backoff = Backoff::new(self.store.url());
        loop {
            let Some((handle_entry, record)) =
                self.read::<HandleRecord>(&keys::handle(handle)).await?
            else {
                return Ok(Vec::new());
            };
            let mut txn = Txn::new();
            let mut released = Vec::new();
            for cidr in record.blocks.keys() {
                let Some((entry, mut block)) = self.block(cidr).await? else {
                    continue;
                };
                released.extend(block.addresses_of(handle).into_iter().map(|(address, _)| {
                    Released {
                        address,
                        handle: handle.to_string(),
                    }
                }));
                block.release_handle(handle);
                write_block(&mut txn, &entry, &block);
            }
            txn.delete(handle_entry.key, Expect::Revision(handle_entry.revision));
            if self.commit(txn).await? {
                return Ok(released);
            }
            backoff.wait().await?;
        }
    }

    /// Releases one address. With `sequence`, only the allocation with that sequence
    /// number is released (a stale release of a reused address is refused).
    pub async fn release_address(
        &self,
        address: IpAddr,
        sequence: Option<u64>,
    ) -> Result<Released, IpamError> {
        let pools = self.pools().await?;
        let cidr = pools
            .iter()
            .find_map(|p| p.block_containing(&address))
            .ok_or(IpamError::NotInPool(address))?;
        let mut backoff = Backoff::new(self.store.url());
        loop {
            let Some((entry, mut block)) = self.block(&cidr).await? else {
                return Err(IpamError::NotAllocated(address));
            };
            let ordinal = block
                .ordinal(&address)
                .ok_or(IpamError::NotAllocated(address))?;
            let allocation = block
                .allocations
                .remove(&ordinal)
                .ok_or(IpamError::NotAllocated(address))?;
            if let Some(requested) = sequence {
                if requested != allocation.sequence {
                    return Err(IpamError::StaleSequence {
                        address,
                        current: allocation.sequence,
                        requested,
                    });
                }
            }
            let mut txn = Txn::new();
            write_block(&mut txn, &entry, &block);
            let mut handles = BTreeMap::new();
            handles.insert(allocation.handle.clone(), 1);
            self.write_handles(&mut txn, &cidr, &handles).await?;
            if self.commit(txn).await? {
                return Ok(Released {
                    address,
                    handle: allocation.handle,
                });
            }
            backoff.wait().await?;
        }
    }

    /// Deletes the node's blocks that have no address in use (and their affinities).
    pub async fn release_empty_blocks(&self, node: &str) -> Result<Vec<IpNet>, IpamError> {
        keys::validate_node(node)?;
        let mut released = Vec::new();
        let affinities = self.node_affinities(node).await?;
        for affinity in Self::confirmed(&affinities) {
            let Some((entry, block)) = self.block(&affinity.cidr).await? else {
                continue;
            };
            if !block.is_empty() || block.affinity.as_deref() != Some(node) {
                continue;
            }
            let affinity_entry = affinities
                .iter()
                .find(|(a, _)| a.cidr == affinity.cidr)
                .map(|(_, e)| e);
            let mut txn = Txn::new();
            txn.delete(entry.key, Expect::Revision(entry.revision));
            if let Some(e) = affinity_entry {
                txn.delete(e.key.clone(), Expect::Revision(e.revision));
            }
            // A conflict means an address was just allocated there: keep the block.
            if self.commit(txn).await? {
                released.push(affinity.cidr);
            }
        }
        Ok(released)
    }

    /// Releases everything of a deleted node: the addresses it uses (in its blocks and
    /// borrowed elsewhere), its blocks and affinities (a block where other nodes still
    /// borrow addresses is kept without an owner), and its registry record.
    pub async fn release_node(&self, node: &str) -> Result<NodeRelease, IpamError> {
        keys::validate_node(node)?;
        let mut report = NodeRelease {
            node: node.to_string(),
            ..NodeRelease::default()
        };
        let mut backoff = Backoff::new(self.store.url());
        'again: loop {
            for (entry, block) in self.blocks().await? {
                if !self
                    .release_node_in_block(node, entry, block, &mut report)
                    .await?
                {
                    backoff.wait().await?;
                    continue 'again;
                }
            }
            for (_, entry) in self.node_affinities(node).await? {
                let mut txn = Txn::new();
                txn.delete(entry.key, Expect::Revision(entry.revision));
                if !self.commit(txn).await? {
                    backoff.wait().await?;
                    continue 'again;
                }
            }
            let mut txn = Txn::new();
            txn.delete(keys::node(node), Expect::Any);
            self.commit(txn).await?;
            report.blocks_released.sort();
            report.blocks_released.dedup();
            report.blocks_orphaned.sort();
            report.blocks_orphaned.dedup();
            return Ok(report);
        }
    }

    /// One block's part of `release_node`, in transactions of at most
    /// [`HANDLES_PER_TXN`] handles. False on a conflict.
    async fn release_node_in_block(
        &self,
        node: &str,
        mut entry: Entry,
        mut block: Block,
        report: &mut NodeRelease,
    ) -> Result<bool, IpamError> {
        let owner = block.affinity.as_deref() == Some(node);
        loop {
            let ours: Vec<u32> = block
                .allocations
                .iter()
                .filter(|(_, a)| {
                    a.borrower.as_deref() == Some(node) || (owner && a.borrower.is_none())
                })
                .map(|(o, _)| *o)
                .collect();
            if ours.is_empty() && !owner {
                return Ok(true);
            }
            let mut handles: BTreeMap<String, u32> = BTreeMap::new();
            let mut released = 0;
            for ordinal in ours {
                let Some(allocation) = block.allocations.get(&ordinal) else {
                    continue;
                };
                if handles.len() == HANDLES_PER_TXN && !handles.contains_key(&allocation.handle) {
                    break;
                }
                *handles.entry(allocation.handle.clone()).or_insert(0) += 1;
                block.allocations.remove(&ordinal);
                released += 1;
            }
            let last = handles.len() < HANDLES_PER_TXN;
            let mut txn = Txn::new();
            let cidr = block.cidr;
            if last && owner {
                block.affinity = None;
                txn.delete(keys::affinity(node, &cidr), Expect::Any);
            }
            write_block(&mut txn, &entry, &block);
            self.write_handles(&mut txn, &cidr, &handles).await?;
            let Some(revision) = self.commit_revision(txn).await? else {
                return Ok(false);
            };
            report.addresses_released += released;
            if last {
                if owner && block.is_empty() {
                    report.blocks_released.push(cidr);
                } else if owner {
                    report.blocks_orphaned.push(cidr);
                }
                return Ok(true);
            }
            entry.revision = revision;
        }
    }

    /// Adds to `txn` the handle records' update after `handles` (handle -> count) lost
    /// that many addresses in block `cidr`.
    async fn write_handles(
        &self,
        txn: &mut Txn,
        cidr: &IpNet,
        handles: &BTreeMap<String, u32>,
    ) -> Result<(), IpamError> {
        for (handle, count) in handles {
            let key = keys::handle(handle);
            let Some((entry, mut record)) = self.read::<HandleRecord>(&key).await? else {
                continue;
            };
            record.remove(cidr, *count);
            if record.blocks.is_empty() {
                txn.delete(key, Expect::Revision(entry.revision));
            } else {
                txn.put(key, encode(&record), Expect::Revision(entry.revision));
            }
        }
        Ok(())
    }

    async fn commit_revision(&self, txn: Txn) -> Result<Option<u64>, IpamError> {
        Ok(match self.store.commit(txn).await? {
            crate::store::Outcome::Committed { revision } => Some(revision),
            crate::store::Outcome::Conflict => None,
        })
    }
}

/// Writes a block back, or deletes it when it has neither an owner nor an address.
fn write_block(txn: &mut Txn, entry: &Entry, block: &Block) {
    if block.affinity.is_none() && block.is_empty() {
        txn.delete(entry.key.clone(), Expect::Revision(entry.revision));
    } else {
        txn.put(
            entry.key.clone(),
            encode(block),
            Expect::Revision(entry.revision),
        );
    }
}
