//! Address assignment: [`Ipam::assign`] (N addresses for a handle on a node) and
//! [`Ipam::assign_address`] (one given address), plus the read helpers and the retry
//! policy every operation shares.
//!
//! An assignment takes addresses from the node's own blocks first, claims a new block
//! when they are full (see `claim.rs`), and borrows single addresses from other nodes'
//! blocks only when no block can be claimed and `strict_affinity` is off. Every write
//! is a compare-and-swap of one key: the handle record, then the block (see
//! `handles.rs`); a conflict re-reads and retries (up to [`MAX_ATTEMPTS`], with jittered backoff). When an
//! assignment of several addresses fails part way, the addresses it took are released
//! again, so a failed call leaves nothing behind.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::Ipam;
pub(crate) use crate::backoff::Backoff;
use crate::block::Block;
use crate::claim::Claim;
use crate::error::IpamError;
use crate::family::Family;
use crate::handles::{Holder, Want};
use crate::keys;
use crate::pool::Pool;
use crate::records::{
    Affinity, AffinityState, HandleRecord, IpamConfig, PodReference, decode, encode,
};
use crate::snapshot::decode_pools;
use crate::store::{Datastore, Entry, Expect, Outcome, Read, Txn};

/// Most addresses one `assign` call hands out.
pub const MAX_ASSIGN: u32 = 1024;

/// One assigned address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assigned {
    pub address: IpAddr,
    pub block: IpNet,
    pub pool: IpNet,
    /// The allocation's sequence number (pass it to `release_address` to release
    /// exactly this allocation).
    pub sequence: u64,
    /// Taken from another node's block.
    pub borrowed: bool,
}

impl<S: Datastore> Ipam<S> {
    /// Assigns `count` addresses of `family` to `handle` for a pod on `node`.
    pub async fn assign(
        &self,
        node: &str,
        handle: &str,
        family: Family,
        count: u32,
    ) -> Result<Vec<Assigned>, IpamError> {
        keys::validate_node(node)?;
        keys::validate_handle(handle)?;
        if count > MAX_ASSIGN {
            return Err(IpamError::TooMany {
                count,
                max: MAX_ASSIGN,
            });
        }
        let mut done = Vec::new();
        match self
            .assign_loop(
                Request {
                    node,
                    handle,
                    family,
                    count,
                    once: false,
                    vxlan_only: false,
                    pod: None,
                },
                &mut done,
            )
            .await
        {
            Ok(()) => Ok(done),
            Err(e) => {
                for assigned in &done {
                    // Best effort: the error that matters is `e`.
                    let _ = self
                        .release_address(assigned.address, Some(assigned.sequence))
                        .await;
                }
                Err(e)
            }
        }
    }

    /// The handle's addresses of `family`, assigning one when it has none. Concurrent
    /// calls for one handle (a repeated CNI ADD, a node's gateway) assign one address:
    /// the handle record is compared-and-swapped with the block.
    pub async fn assign_once(
        &self,
        node: &str,
        handle: &str,
        family: Family,
    ) -> Result<Vec<Assigned>, IpamError> {
        self.assign_once_from(node, handle, family, false, None)
            .await
    }

    /// [`Ipam::assign_once`] for a pod's addresses: the handle's record names `pod`,
    /// so that the collector can release them once the pod is gone.
    pub async fn assign_once_for_pod(
        &self,
        node: &str,
        handle: &str,
        family: Family,
        pod: &PodReference,
    ) -> Result<Vec<Assigned>, IpamError> {
        pod.validate().map_err(|reason| IpamError::BadPod {
            handle: handle.to_owned(),
            reason,
        })?;
        self.assign_once_from(node, handle, family, false, Some(pod))
            .await
    }

    /// [`Ipam::assign_once`], from the pools with VXLAN on only when `vxlan_only`
    /// (a node's tunnel address, see `tunnel.rs`), naming `pod` in a new record.
    pub(crate) async fn assign_once_from(
        &self,
        node: &str,
        handle: &str,
        family: Family,
        vxlan_only: bool,
        pod: Option<&PodReference>,
    ) -> Result<Vec<Assigned>, IpamError> {
        keys::validate_node(node)?;
        keys::validate_handle(handle)?;
        let mut done = Vec::new();
        self.assign_loop(
            Request {
                node,
                handle,
                family,
                count: 1,
                once: true,
                vxlan_only,
                pod,
            },
            &mut done,
        )
        .await?;
        Ok(done)
    }

    /// Assigns one given address to `handle` for `node`, claiming its block for the
    /// node when nobody has it yet. Assigning an address the handle already holds
    /// returns it again.
    pub async fn assign_address(
        &self,
        node: &str,
        handle: &str,
        address: IpAddr,
    ) -> Result<Assigned, IpamError> {
        keys::validate_node(node)?;
        keys::validate_handle(handle)?;
        let pools = self.pools().await?;
        let pool = pools
            .iter()
            .find(|p| p.cidr.contains(&address))
            .ok_or(IpamError::NotInPool(address))?;
        let cidr = pool
            .block_containing(&address)
            .ok_or(IpamError::NotInPool(address))?;
        let mut backoff = Backoff::new(self.store.url());
        loop {
            let Some((entry, block)) = self.block(&cidr).await? else {
                // Nobody has this block: claim it for the node, then allocate in it.
                self.claim_cidr(node, cidr).await?;
                backoff.wait().await?;
                continue;
            };
            let ordinal = block
                .ordinal(&address)
                .ok_or(IpamError::NotInPool(address))?;
            match block.allocations.get(&ordinal) {
                None => {}
                Some(existing) if existing.handle == handle => {
                    return Ok(Assigned {
                        address,
                        block: cidr,
                        pool: pool.cidr,
                        sequence: existing.sequence,
                        borrowed: block.affinity.as_deref() != Some(node),
                    });
                }
                Some(existing) => {
                    return Err(IpamError::AddressInUse {
                        address,
                        handle: existing.handle.clone(),
                    });
                }
            }
            let record = self.store.get(&keys::handle(handle)).await?;
            let want = Want::Ordinal(ordinal);
            let holder = Holder {
                record: record.as_ref(),
                pod: None,
            };
            if let Some(taken) = self
                .allocate(&entry, &block, handle, Some(node), want, holder)
                .await?
                && let Some((_, sequence)) = taken.first()
            {
                return Ok(Assigned {
                    address,
                    block: cidr,
                    pool: pool.cidr,
                    sequence: *sequence,
                    borrowed: block.affinity.as_deref() != Some(node),
                });
            }
            backoff.wait().await?;
        }
    }

    /// The addresses a handle holds (what a repeated CNI ADD returns).
    pub async fn addresses_of(&self, handle: &str) -> Result<Vec<Assigned>, IpamError> {
        keys::validate_handle(handle)?;
        let Some((_, record)) = self.read::<HandleRecord>(&keys::handle(handle)).await? else {
            return Ok(Vec::new());
        };
        self.addresses_in(handle, &record).await
    }

    /// The addresses of `handle` in the blocks its record names.
    async fn addresses_in(
        &self,
        handle: &str,
        record: &HandleRecord,
    ) -> Result<Vec<Assigned>, IpamError> {
        let pools = self.pools().await?;
        let mut out = Vec::new();
        for cidr in record.blocks.keys() {
            let Some((_, block)) = self.block(cidr).await? else {
                continue;
            };
            let pool = pools.iter().find(|p| p.cidr.contains(&cidr.network()));
            for (address, allocation) in block.addresses_of(handle) {
                out.push(Assigned {
                    address,
                    block: *cidr,
                    pool: pool.map_or(*cidr, |p| p.cidr),
                    sequence: allocation.sequence,
                    borrowed: allocation.borrower.is_some(),
                });
            }
        }
        Ok(out)
    }

    /// Assigns until `done` holds `request.count` addresses. Each attempt reads the
    /// state once, then takes addresses from the node's own blocks, else claims a new
    /// block, else borrows; a write lost to a concurrent one backs off and starts
    /// over from a fresh read.
    async fn assign_loop(
        &self,
        request: Request<'_>,
        done: &mut Vec<Assigned>,
    ) -> Result<(), IpamError> {
        let mut backoff = Backoff::new(self.store.url());
        while (done.len() as u32) < request.count {
            let mut attempt = self.read_attempt(request.node, request.handle).await?;
            attempt.handle = self
                .settle_handle(request.node, request.handle, attempt.handle.take())
                .await?
                .map(|(entry, _)| entry);
            if request.once
                && let Some(existing) = self.existing_addresses(&request, &attempt).await?
            {
                *done = existing;
                return Ok(());
            }
            let pools = self
                .pools_for(&request, std::mem::take(&mut attempt.pools))
                .await?;
            if self
                .repair_affinities(request.node, &attempt.affinities)
                .await?
            {
                backoff.wait().await?;
                continue;
            }
            let remaining = request.count - done.len() as u32;
            let step = match self
                .assign_from_own_blocks(&request, &attempt, &pools, remaining, done)
                .await?
            {
                Step::NoRoom(_) => {
                    // The configuration matters only once the node's blocks are full.
                    attempt.config = self.config().await?;
                    match self.claim_another_block(&request, &attempt, &pools).await? {
                        Step::NoRoom(refusal) => {
                            self.borrow_or_refuse(
                                &request, &attempt, &pools, remaining, refusal, done,
                            )
                            .await?
                        }
                        step => step,
                    }
                }
                step => step,
            };
            if let Step::Conflict = step {
                backoff.wait().await?;
            }
        }
        Ok(())
    }

    /// In `once` mode: the addresses of the request's family the handle already
    /// holds, if any (then nothing is assigned).
    async fn existing_addresses(
        &self,
        request: &Request<'_>,
        attempt: &Attempt,
    ) -> Result<Option<Vec<Assigned>>, IpamError> {
        let Some(entry) = &attempt.handle else {
            return Ok(None);
        };
        let record: HandleRecord = decode(self.store.url(), entry)?;
        let existing: Vec<Assigned> = self
            .addresses_in(request.handle, &record)
            .await?
            .into_iter()
            .filter(|a| Family::of_addr(&a.address) == request.family)
            .collect();
        Ok((!existing.is_empty()).then_some(existing))
    }

    /// Of `pools`, those the request may use; none is an error.
    async fn pools_for(
        &self,
        request: &Request<'_>,
        pools: Vec<Pool>,
    ) -> Result<Vec<Pool>, IpamError> {
        let mut pools = self
            .select_pools(pools, request.node, request.family)
            .await?;
        if request.vxlan_only {
            pools.retain(|pool| pool.vxlan_mode.encapsulates());
        }
        if pools.is_empty() {
            return Err(IpamError::NoPool {
                node: request.node.to_string(),
                family: request.family,
            });
        }
        Ok(pools)
    }

    /// Takes up to `remaining` addresses from the first of the node's own blocks of
    /// the family with a free address (the blocks read in one batch).
    async fn assign_from_own_blocks(
        &self,
        request: &Request<'_>,
        attempt: &Attempt,
        pools: &[Pool],
        remaining: u32,
        done: &mut Vec<Assigned>,
    ) -> Result<Step, IpamError> {
        let candidates: Vec<(&Pool, &Affinity, &Entry)> = attempt
            .own_blocks(request.family)
            .filter_map(|(a, e)| {
                pools
                    .iter()
                    .find(|p| p.cidr.contains(&a.cidr.network()))
                    .map(|p| (p, a, e))
            })
            .collect();
        let reads = candidates
            .iter()
            .map(|(_, a, _)| Read::Key(keys::block(&a.cidr)))
            .collect();
        let found = self.store.read(reads).await?;
        for ((pool, affinity, affinity_entry), found) in candidates.iter().zip(found) {
            let cidr = &affinity.cidr;
            let Some(entry) = found.into_iter().next() else {
                // Left by an interrupted release: the node's affinity outlived its block.
                if self.drop_stale_affinity(affinity, affinity_entry).await? {
                    return Ok(Step::Conflict);
                }
                continue;
            };
            let block: Block = decode(self.store.url(), &entry)?;
            if !block.is_valid() || block.cidr != *cidr {
                continue;
            }
            if block.affinity.as_deref() != Some(request.node) {
                if self.drop_stale_affinity(affinity, affinity_entry).await? {
                    return Ok(Step::Conflict);
                }
                continue;
            }
            if block.free() == 0 {
                continue;
            }
            let want = Want::Count(remaining);
            let Some(taken) = self
                .allocate(
                    &entry,
                    &block,
                    request.handle,
                    None,
                    want,
                    request.holder(attempt),
                )
                .await?
            else {
                return Ok(Step::Conflict);
            };
            done.extend(taken.into_iter().map(|(address, sequence)| Assigned {
                address,
                block: block.cidr,
                pool: pool.cidr,
                sequence,
                borrowed: false,
            }));
            return Ok(Step::Progress);
        }
        Ok(Step::NoRoom(String::from("the node's blocks are full")))
    }

    /// Claims one more block for the node, unless it has `max_blocks_per_node`.
    async fn claim_another_block(
        &self,
        request: &Request<'_>,
        attempt: &Attempt,
        pools: &[Pool],
    ) -> Result<Step, IpamError> {
        let limit = attempt.config.max_blocks_per_node;
        if limit != 0 && attempt.own_blocks(request.family).count() as u32 >= limit {
            return Ok(Step::NoRoom(format!(
                "node has max_blocks_per_node = {limit} blocks"
            )));
        }
        Ok(
            match self
                .claim_block(request.node, pools, &attempt.affinities, true)
                .await?
            {
                Claim::Claimed(_) => Step::Progress,
                Claim::Conflict => Step::Conflict,
                Claim::Exhausted => Step::NoRoom(String::from("the pools have no free block")),
            },
        )
    }

    /// Borrows addresses from other nodes' blocks, unless `strict_affinity` forbids it
    /// (then `refusal`, why no block could be claimed, is the error's reason).
    async fn borrow_or_refuse(
        &self,
        request: &Request<'_>,
        attempt: &Attempt,
        pools: &[Pool],
        remaining: u32,
        refusal: String,
        done: &mut Vec<Assigned>,
    ) -> Result<Step, IpamError> {
        if attempt.config.strict_affinity {
            return Err(IpamError::StrictAffinity {
                node: request.node.to_string(),
                family: request.family,
                reason: refusal,
            });
        }
        match self
            .borrow(request, remaining, pools, request.holder(attempt))
            .await?
        {
            Some(assigned) if !assigned.is_empty() => {
                done.extend(assigned);
                Ok(Step::Progress)
            }
            Some(_) => Err(IpamError::Exhausted {
                node: request.node.to_string(),
                family: request.family,
                handle: request.handle.to_string(),
            }),
            None => Ok(Step::Conflict),
        }
    }

    /// Takes addresses from other nodes' blocks. `None` on a write conflict; an empty
    /// list when no block has a free address.
    async fn borrow(
        &self,
        request: &Request<'_>,
        count: u32,
        pools: &[Pool],
        holder: Holder<'_>,
    ) -> Result<Option<Vec<Assigned>>, IpamError> {
        let (node, handle) = (request.node, request.handle);
        for (entry, block) in self.blocks().await? {
            let Some(pool) = pools
                .iter()
                .find(|p| p.cidr.contains(&block.cidr.network()))
            else {
                continue;
            };
            if block.affinity.as_deref() == Some(node) || block.free() == 0 {
                continue;
            }
            let want = Want::Count(count);
            let Some(taken) = self
                .allocate(&entry, &block, handle, Some(node), want, holder)
                .await?
            else {
                return Ok(None);
            };
            return Ok(Some(
                taken
                    .into_iter()
                    .map(|(address, sequence)| Assigned {
                        address,
                        block: block.cidr,
                        pool: pool.cidr,
                        sequence,
                        borrowed: true,
                    })
                    .collect(),
            ));
        }
        Ok(Some(Vec::new()))
    }

    // ---- read helpers shared by every operation ----

    /// Writes one record (a transaction of one key); its new revision, or `None` on a
    /// conflict.
    pub(crate) async fn put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        expect: Expect,
    ) -> Result<Option<u64>, IpamError> {
        let mut txn = Txn::new();
        txn.put(key, encode(value), expect);
        Ok(match self.store.commit(txn).await? {
            Outcome::Committed { revision } => Some(revision),
            Outcome::Conflict => None,
        })
    }

    /// Deletes one key (a transaction of one key); false on a conflict.
    pub(crate) async fn delete(&self, key: &str, expect: Expect) -> Result<bool, IpamError> {
        let mut txn = Txn::new();
        txn.delete(key, expect);
        Ok(matches!(
            self.store.commit(txn).await?,
            Outcome::Committed { .. }
        ))
    }

    pub(crate) async fn read<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(Entry, T)>, IpamError> {
        match self.store.get(key).await? {
            Some(entry) => {
                let value = decode(self.store.url(), &entry)?;
                Ok(Some((entry, value)))
            }
            None => Ok(None),
        }
    }

    pub(crate) async fn read_all<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(Entry, T)>, IpamError> {
        let entries = self.store.list(prefix).await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let value = decode(self.store.url(), &entry)?;
            out.push((entry, value));
        }
        Ok(out)
    }

    pub(crate) async fn block(&self, cidr: &IpNet) -> Result<Option<(Entry, Block)>, IpamError> {
        match self.read::<Block>(&keys::block(cidr)).await? {
            Some((entry, block)) if !block.is_valid() || block.cidr != *cidr => {
                Err(IpamError::Corrupt {
                    url: self.store.url().to_string(),
                    key: entry.key,
                    reason: String::from("not a valid block"),
                })
            }
            other => Ok(other),
        }
    }

    /// Every block, sorted by key.
    pub(crate) async fn blocks(&self) -> Result<Vec<(Entry, Block)>, IpamError> {
        let entries = self.store.list(keys::BLOCKS).await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let block = self.decode_block(&entry)?;
            out.push((entry, block));
        }
        Ok(out)
    }

    /// A stored block, which must be valid.
    pub(crate) fn decode_block(&self, entry: &Entry) -> Result<Block, IpamError> {
        let block: Block = decode(self.store.url(), entry)?;
        if !block.is_valid() {
            return Err(IpamError::Corrupt {
                url: self.store.url().to_string(),
                key: entry.key.clone(),
                reason: String::from("not a valid block"),
            });
        }
        Ok(block)
    }

    /// A node's affinities (pending and confirmed), sorted by CIDR.
    pub(crate) async fn node_affinities(
        &self,
        node: &str,
    ) -> Result<Vec<(Affinity, Entry)>, IpamError> {
        let mut out: Vec<_> = self
            .read_all::<Affinity>(&keys::node_affinities(node))
            .await?
            .into_iter()
            .map(|(entry, affinity)| (affinity, entry))
            .collect();
        out.sort_by_key(|a| a.0.cidr);
        Ok(out)
    }

    /// Pools, the node's affinities (sorted by CIDR) and a handle record, read together
    /// (in one round trip on every store, at one revision on SQLite and etcd). Every write of the attempt compares
    /// against this handle record, so in `once` mode two concurrent calls cannot both
    /// add an address. The configuration is read only when the node's blocks are full.
    async fn read_attempt(&self, node: &str, handle: &str) -> Result<Attempt, IpamError> {
        let url = self.store.url();
        let mut results = self
            .store
            .read(vec![
                Read::Prefix(keys::POOLS.to_string()),
                Read::Prefix(keys::node_affinities(node)),
                Read::Key(keys::handle(handle)),
            ])
            .await?
            .into_iter();
        let mut next = || results.next().unwrap_or_default();
        let (pool_entries, affinity_entries, handle) = (next(), next(), next());
        let mut affinities = Vec::with_capacity(affinity_entries.len());
        for entry in affinity_entries {
            affinities.push((decode::<Affinity>(url, &entry)?, entry));
        }
        affinities.sort_by_key(|a| a.0.cidr);
        Ok(Attempt {
            pools: decode_pools(url, &pool_entries)?,
            affinities,
            config: IpamConfig::default(),
            handle: handle.into_iter().next(),
        })
    }

    /// Of `pools`, the enabled ones of a family whose selector matches the node's
    /// labels.
    pub(crate) async fn select_pools(
        &self,
        pools: Vec<Pool>,
        node: &str,
        family: Family,
    ) -> Result<Vec<Pool>, IpamError> {
        let needs_labels = pools.iter().any(|p| !p.node_selector.is_empty());
        let labels = if needs_labels {
            self.node(node).await?.map(|n| n.labels).unwrap_or_default()
        } else {
            Default::default()
        };
        Ok(pools
            .into_iter()
            .filter(|p| !p.disabled && p.family() == family && p.selects(&labels))
            .collect())
    }

    /// The enabled pools of a family whose selector matches the node's labels.
    pub(crate) async fn usable_pools(
        &self,
        node: &str,
        family: Family,
    ) -> Result<Vec<Pool>, IpamError> {
        let pools = self.pools().await?;
        self.select_pools(pools, node, family).await
    }
}

/// What one attempt of an assignment starts from.
struct Attempt {
    pools: Vec<Pool>,
    affinities: Vec<(Affinity, Entry)>,
    /// Read (`assign_loop`) before a block is claimed or an address borrowed; the
    /// default until then.
    config: IpamConfig,
    handle: Option<Entry>,
}

impl Attempt {
    /// The node's confirmed affinities of `family`, with their entries.
    fn own_blocks(&self, family: Family) -> impl Iterator<Item = (&Affinity, &Entry)> {
        self.affinities
            .iter()
            .filter(move |(a, _)| {
                a.state == AffinityState::Confirmed && Family::of(&a.cidr) == family
            })
            .map(|(a, e)| (a, e))
    }
}

/// What one step of an assignment attempt came to.
enum Step {
    /// Addresses were assigned or a block claimed: the next attempt goes on.
    Progress,
    /// A concurrent write won: back off, then read again.
    Conflict,
    /// No room this way; why, for the error when no way is left.
    NoRoom(String),
}

/// What `assign_loop` is asked for.
#[derive(Debug, Clone, Copy)]
struct Request<'a> {
    node: &'a str,
    handle: &'a str,
    family: Family,
    count: u32,
    /// Only when the handle has no address of the family yet.
    once: bool,
    /// Only from pools with VXLAN on.
    vxlan_only: bool,
    /// The pod a new handle record names.
    pod: Option<&'a PodReference>,
}

impl Request<'_> {
    /// The handle's record as `attempt` read it, with the request's pod.
    fn holder<'b>(&'b self, attempt: &'b Attempt) -> Holder<'b> {
        Holder {
            record: attempt.handle.as_ref(),
            pod: self.pod,
        }
    }
}
