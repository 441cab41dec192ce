//! Releases: by handle, by address (with an optional sequence number), a node's empty
//! blocks, and everything of a deleted node.
//!
//! A block left without an owner (its node was deleted while other nodes still had
//! addresses borrowed from it) is deleted by the release that frees its last address.
//! Every write is one key's compare-and-swap, in the orders `handles.rs` (addresses)
//! and `claim.rs` (blocks) describe, so an operation stopped between two writes is
//! finished by running it again.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Ipam;
use crate::backoff::Backoff;
use crate::block::Block;
use crate::error::IpamError;
use crate::keys;
use crate::records::{AffinityState, HandleRecord};
use crate::store::{Datastore, Expect};

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
    /// Marks the record releasing, frees the addresses block by block, then deletes
    /// the record.
    pub async fn release_handle(&self, handle: &str) -> Result<Vec<Released>, IpamError> {
        keys::validate_handle(handle)?;
        let key = keys::handle(handle);
        let mut released = Vec::new();
        let mut backoff = Backoff::new(self.store.url());
        loop {
            let Some((mut entry, mut record)) = self.read::<HandleRecord>(&key).await? else {
                return Ok(released);
            };
            if !record.releasing {
                record.releasing = true;
                match self
                    .put(&key, &record, Expect::Revision(entry.revision))
                    .await?
                {
                    Some(revision) => entry.revision = revision,
                    None => {
                        backoff.wait().await?;
                        continue;
                    }
                }
            }
            for (cidr, listed) in &record.blocks {
                let listed: Vec<IpAddr> = listed.iter().copied().collect();
                let freed = self.free_in_block(cidr, handle, &listed).await?;
                released.extend(freed.into_iter().map(|address| Released {
                    address,
                    handle: handle.to_string(),
                }));
            }
            if self.delete(&key, Expect::Revision(entry.revision)).await? {
                return Ok(released);
            }
            backoff.wait().await?;
        }
    }

    /// Releases one address. With `sequence`, only the allocation with that sequence
    /// number is released (a stale release of a reused address is refused). The
    /// handle's record drops the address first, then the block frees it.
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
        let Some((_, block)) = self.block(&cidr).await? else {
            return Err(IpamError::NotAllocated(address));
        };
        let allocation = block
            .ordinal(&address)
            .and_then(|ordinal| block.allocations.get(&ordinal))
            .ok_or(IpamError::NotAllocated(address))?;
        if let Some(requested) = sequence
            && requested != allocation.sequence
        {
            return Err(IpamError::StaleSequence {
                address,
                current: allocation.sequence,
                requested,
            });
        }
        let handle = allocation.handle.clone();
        self.unlist(&handle, &cidr, &[address]).await?;
        if self
            .free_in_block(&cidr, &handle, &[address])
            .await?
            .is_empty()
        {
            return Err(IpamError::NotAllocated(address));
        }
        Ok(Released { address, handle })
    }

    /// Deletes the node's blocks that have no address in use (and their affinities).
    pub async fn release_empty_blocks(&self, node: &str) -> Result<Vec<IpNet>, IpamError> {
        keys::validate_node(node)?;
        let mut released = Vec::new();
        for (affinity, entry) in self.node_affinities(node).await? {
            if affinity.state != AffinityState::Confirmed {
                continue;
            }
            let Some((_, block)) = self.block(&affinity.cidr).await? else {
                continue;
            };
            if !block.is_empty() || block.affinity.as_deref() != Some(node) {
                continue;
            }
            // False means an address was just allocated there: the block stays.
            if self.release_block(&affinity, &entry).await? {
                released.push(affinity.cidr);
            }
        }
        Ok(released)
    }

    /// Deletes one of the node's blocks (and its affinity) when it has no address in use;
    /// false when it is not the node's confirmed block or not empty (or an address was
    /// just allocated there: the block stays). What the cluster's IPAM collector uses
    /// to release empty blocks one by one, keeping one per node.
    pub async fn release_empty_block(&self, node: &str, cidr: IpNet) -> Result<bool, IpamError> {
        keys::validate_node(node)?;
        let Some((affinity, entry)) = self
            .node_affinities(node)
            .await?
            .into_iter()
            .find(|(affinity, _)| affinity.cidr == cidr)
        else {
            return Ok(false);
        };
        if affinity.state != AffinityState::Confirmed {
            return Ok(false);
        }
        match self.block(&cidr).await? {
            Some((_, block)) if block.is_empty() && block.affinity.as_deref() == Some(node) => {
                self.release_block(&affinity, &entry).await
            }
            _ => Ok(false),
        }
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
        for (_, block) in self.blocks().await? {
            self.release_node_in_block(node, &block, &mut report)
                .await?;
        }
        let mut backoff = Backoff::new(self.store.url());
        loop {
            let mut lost = false;
            for (affinity, entry) in self.node_affinities(node).await? {
                lost |= !self
                    .release_node_affinity(&affinity, &entry, &mut report)
                    .await?;
            }
            if !lost {
                break;
            }
            backoff.wait().await?;
        }
        self.delete(&keys::node(node), Expect::Any).await?;
        report.blocks_released.sort();
        report.blocks_released.dedup();
        report.blocks_orphaned.sort();
        report.blocks_orphaned.dedup();
        Ok(report)
    }

    /// Frees the addresses `node` uses in `block`: each handle's record first, then the
    /// block.
    async fn release_node_in_block(
        &self,
        node: &str,
        block: &Block,
        report: &mut NodeRelease,
    ) -> Result<(), IpamError> {
        let mut handles: BTreeMap<&str, Vec<IpAddr>> = BTreeMap::new();
        for (ordinal, allocation) in &block.allocations {
            if block.user_of(allocation) == Some(node) {
                handles
                    .entry(allocation.handle.as_str())
                    .or_default()
                    .push(block.address(*ordinal));
            }
        }
        for (handle, addresses) in handles {
            self.unlist(handle, &block.cidr, &addresses).await?;
            report.addresses_released += self
                .free_in_block(&block.cidr, handle, &addresses)
                .await?
                .len();
        }
        Ok(())
    }

    /// Deletes one affinity of a deleted node, with its block when the block is empty,
    /// or leaves the block without an owner when other nodes still borrow in it. False
    /// on a lost race.
    async fn release_node_affinity(
        &self,
        affinity: &crate::records::Affinity,
        entry: &crate::store::Entry,
        report: &mut NodeRelease,
    ) -> Result<bool, IpamError> {
        let owned = match self.block(&affinity.cidr).await? {
            Some((block_entry, mut block)) if block.affinity.as_deref() == Some(&affinity.node) => {
                if block.is_empty() {
                    if !self.release_block(affinity, entry).await? {
                        return Ok(false);
                    }
                    report.blocks_released.push(affinity.cidr);
                    return Ok(true);
                }
                block.affinity = None;
                if !self.write_or_delete_block(&block_entry, &block).await? {
                    return Ok(false);
                }
                true
            }
            _ => false,
        };
        if !self
            .delete(&entry.key, Expect::Revision(entry.revision))
            .await?
        {
            return Ok(false);
        }
        if owned {
            report.blocks_orphaned.push(affinity.cidr);
        }
        Ok(true)
    }
}
