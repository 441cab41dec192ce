//! Allocating and freeing addresses in single-key writes, with the handle record as
//! the record of intent (the Kubernetes API has no multi-object transaction; see the
//! contract in `store/mod.rs`).
//!
//! - An allocation (1) lists the addresses in the handle's record (compared-and-swapped
//!   against the record the caller read, so two calls for one handle in `once` mode
//!   cannot both add), (2) writes the block, (3) re-reads the record: when a release of
//!   the handle ran meanwhile (the record is gone, marked releasing or lacks the
//!   addresses), it frees the addresses again and reports a conflict.
//! - A release of addresses removes them from the record first, then frees them in
//!   the block; a release of a whole handle marks its record releasing, frees its
//!   addresses block by block, then deletes the record.
//!
//! So an allocated address is always listed in its handle's record; what a stopped
//! operation can leave is a listed address its block does not hold (an allocation
//! between (1) and (2), or a release of a handle between its first and last write) or,
//! for a stopped release of one address, an allocated address its record no longer
//! lists. The next operation on the handle repairs them: [`Ipam::settle_handle`]
//! allocates a listed address that is still free (or drops it from the record when
//! another handle took it), and finishes a release that was under way; retrying a
//! release of one address frees it.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::Ipam;
use crate::block::Block;
use crate::error::IpamError;
use crate::keys;
use crate::records::{HandleRecord, PodReference, decode};
use crate::store::{Datastore, Entry, Expect};

/// What to allocate in a block.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want {
    /// Up to this many free addresses, from the block's cursor.
    Count(u32),
    /// This ordinal.
    Ordinal(u32),
}

/// The handle's record as the caller read it (the expectation of the allocation's
/// first write; `None`: there is none), and the pod a record made now names.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Holder<'a> {
    pub record: Option<&'a Entry>,
    pub pod: Option<&'a PodReference>,
}

/// Most times a block write is retried against a fresh read before the allocation
/// starts over.
const BLOCK_RETRIES: u32 = 5;

impl<S: Datastore> Ipam<S> {
    /// Allocates in the block read at `entry` for `handle` (borrowed by `borrower` when
    /// it is not the block's owner), in the three writes of the module text, from the
    /// record `holder` read (a record without a pod gets `holder`'s). Returns the addresses with their sequence numbers, or `None` on a lost
    /// race (nothing is left allocated).
    pub(crate) async fn allocate(
        &self,
        entry: &Entry,
        block: &Block,
        handle: &str,
        borrower: Option<&str>,
        want: Want,
        holder: Holder<'_>,
    ) -> Result<Option<Vec<(IpAddr, u64)>>, IpamError> {
        let mut trial = block.clone();
        let chosen: Vec<IpAddr> = match want {
            Want::Count(count) => trial
                .allocate(handle, borrower, count)
                .into_iter()
                .map(|(address, _)| address)
                .collect(),
            Want::Ordinal(ordinal) => match trial.allocate_ordinal(ordinal, handle, borrower) {
                Ok(_) => vec![block.address(ordinal)],
                Err(_) => return Ok(None),
            },
        };
        if chosen.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let mut intent = match holder.record {
            Some(e) => decode::<HandleRecord>(self.store.url(), e)?,
            None => HandleRecord::new(handle),
        };
        if intent.releasing {
            return Ok(None);
        }
        if intent.pod.is_none() {
            intent.pod = holder.pod.cloned();
        }
        intent.add(block.cidr, &chosen);
        let key = keys::handle(handle);
        if self
            .put(&key, &intent, Expect::from_entry(holder.record))
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let Some(taken) = self
            .write_block_allocations(entry, block, handle, borrower, &chosen)
            .await?
        else {
            // Another allocation took one of the addresses: take them out of the record.
            self.unlist(handle, &block.cidr, &chosen).await?;
            return Ok(None);
        };
        let listed = self
            .read::<HandleRecord>(&key)
            .await?
            .is_some_and(|(_, r)| !r.releasing && r.lists(&block.cidr, &chosen));
        if !listed {
            // The handle was released meanwhile: free what this call allocated.
            self.free_in_block(&block.cidr, handle, &chosen).await?;
            return Ok(None);
        }
        Ok(Some(taken))
    }

    /// Writes `chosen` (free in `block` as read at `entry`) as allocations of `handle`,
    /// re-reading the block after each lost race. Addresses another call for the same
    /// handle allocated meanwhile (a repair) count as done. `None` when another handle
    /// took one of them.
    async fn write_block_allocations(
        &self,
        entry: &Entry,
        block: &Block,
        handle: &str,
        borrower: Option<&str>,
        chosen: &[IpAddr],
    ) -> Result<Option<Vec<(IpAddr, u64)>>, IpamError> {
        let (mut entry, mut block) = (entry.clone(), block.clone());
        for _ in 0..BLOCK_RETRIES {
            let mut taken = Vec::with_capacity(chosen.len());
            let mut next = block.clone();
            for address in chosen {
                let Some(ordinal) = next.ordinal(address) else {
                    return Ok(None);
                };
                match next.allocate_ordinal(ordinal, handle, borrower) {
                    Ok(sequence) => taken.push((*address, sequence)),
                    Err(existing) if existing.handle == handle => {
                        taken.push((*address, existing.sequence));
                    }
                    Err(_) => return Ok(None),
                }
            }
            if next == block {
                return Ok(Some(taken));
            }
            if self
                .put(&entry.key, &next, Expect::Revision(entry.revision))
                .await?
                .is_some()
            {
                return Ok(Some(taken));
            }
            match self.block(&block.cidr).await? {
                Some((fresh_entry, fresh)) => (entry, block) = (fresh_entry, fresh),
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Removes addresses from a handle's record (deleting it when it lists nothing
    /// more), re-reading it after each lost race.
    pub(crate) async fn unlist(
        &self,
        handle: &str,
        cidr: &IpNet,
        addresses: &[IpAddr],
    ) -> Result<(), IpamError> {
        let key = keys::handle(handle);
        let mut backoff = crate::backoff::Backoff::new(self.store.url());
        loop {
            let Some((entry, mut record)) = self.read::<HandleRecord>(&key).await? else {
                return Ok(());
            };
            if !record
                .blocks
                .get(cidr)
                .is_some_and(|listed| addresses.iter().any(|a| listed.contains(a)))
            {
                return Ok(());
            }
            record.remove(cidr, addresses);
            let expect = Expect::Revision(entry.revision);
            let done = if record.blocks.is_empty() && !record.releasing {
                self.delete(&key, expect).await?
            } else {
                self.put(&key, &record, expect).await?.is_some()
            };
            if done {
                return Ok(());
            }
            backoff.wait().await?;
        }
    }

    /// Frees the allocations of `handle` among `addresses` in block `cidr` (deleting
    /// the block when it is left without owner and addresses). Returns those freed.
    pub(crate) async fn free_in_block(
        &self,
        cidr: &IpNet,
        handle: &str,
        addresses: &[IpAddr],
    ) -> Result<Vec<IpAddr>, IpamError> {
        let mut backoff = crate::backoff::Backoff::new(self.store.url());
        loop {
            let Some((entry, mut block)) = self.block(cidr).await? else {
                return Ok(Vec::new());
            };
            let mut freed = Vec::new();
            for address in addresses {
                let Some(ordinal) = block.ordinal(address) else {
                    continue;
                };
                if block
                    .allocations
                    .get(&ordinal)
                    .is_some_and(|a| a.handle == handle)
                {
                    block.allocations.remove(&ordinal);
                    freed.push(*address);
                }
            }
            if freed.is_empty() || self.write_or_delete_block(&entry, &block).await? {
                return Ok(freed);
            }
            backoff.wait().await?;
        }
    }

    /// Writes a block back, or deletes it when it has neither an owner nor an address.
    /// False on a conflict.
    pub(crate) async fn write_or_delete_block(
        &self,
        entry: &Entry,
        block: &Block,
    ) -> Result<bool, IpamError> {
        let expect = Expect::Revision(entry.revision);
        if block.affinity.is_none() && block.is_empty() {
            self.delete(&entry.key, expect).await
        } else {
            Ok(self.put(&entry.key, block, expect).await?.is_some())
        }
    }

    /// Repairs what stopped operations left on a handle's record (see the module
    /// text): finishes a release under way (the record is then gone), allocates each
    /// listed address its block does not hold while it is free (for `node`, the node
    /// of the operation repairing it), drops it from the record when another handle
    /// holds it or its block is gone. Returns the record as
    /// it is afterwards, with its entry; `None` when there is none.
    pub(crate) async fn settle_handle(
        &self,
        node: &str,
        handle: &str,
        found: Option<Entry>,
    ) -> Result<Option<(Entry, HandleRecord)>, IpamError> {
        let Some(mut entry) = found else {
            return Ok(None);
        };
        let mut record: HandleRecord = decode(self.store.url(), &entry)?;
        if record.releasing {
            self.release_handle(handle).await?;
            return Ok(None);
        }
        let mut changed = false;
        for (cidr, listed) in record.blocks.clone() {
            let listed: Vec<IpAddr> = listed.into_iter().collect();
            let block = self.block(&cidr).await?;
            let missing: Vec<IpAddr> = listed
                .iter()
                .copied()
                .filter(|address| {
                    !block.as_ref().is_some_and(|(_, b)| {
                        b.ordinal(address)
                            .and_then(|o| b.allocations.get(&o))
                            .is_some_and(|a| a.handle == handle)
                    })
                })
                .collect();
            if missing.is_empty() {
                continue;
            }
            changed = true;
            let completed = match &block {
                Some((block_entry, block)) => self
                    .write_block_allocations(block_entry, block, handle, Some(node), &missing)
                    .await?
                    .is_some(),
                None => false,
            };
            if !completed {
                self.unlist(handle, &cidr, &missing).await?;
            }
        }
        if changed {
            match self.read::<HandleRecord>(&keys::handle(handle)).await? {
                Some((fresh, fresh_record)) => (entry, record) = (fresh, fresh_record),
                None => return Ok(None),
            }
        }
        Ok(Some((entry, record)))
    }
}
