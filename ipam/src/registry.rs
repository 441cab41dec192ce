//! The administrative records: pools, the IPAM configuration and the node registry,
//! plus what bgpd reads and watches (a node's blocks and borrowed addresses, change
//! notifications, and a block claimed for the node at start).

use std::collections::BTreeSet;

use ipnet::IpNet;

use crate::Ipam;
use crate::allocator::Backoff;
use crate::claim::Claim;
use crate::error::IpamError;
use crate::family::Family;
use crate::keys;
use crate::pool::Pool;
use crate::records::{IpamConfig, Node, NodeAllocations, encode};
use crate::snapshot::decode_pools;
use crate::store::{Datastore, Expect, Txn, Watch};

/// Bumped by every pool add and delete, so that two overlapping pools added at once
/// cannot both succeed.
const POOLS_VERSION: &str = "/wren/v1/ipam/pools-version";

impl<S: Datastore> Ipam<S> {
    // ---- pools ----

    /// Every pool, sorted by CIDR.
    pub async fn pools(&self) -> Result<Vec<Pool>, IpamError> {
        let entries = self.store.list(keys::POOLS).await?;
        let mut pools = decode_pools(self.store.url(), &entries)?;
        pools.sort_by_key(|a| a.cidr);
        Ok(pools)
    }

    /// Adds a pool; refuses a malformed one or one overlapping an existing pool.
    pub async fn add_pool(&self, pool: Pool) -> Result<(), IpamError> {
        pool.validate()?;
        for key in pool.node_selector.keys() {
            if key.is_empty() {
                return Err(IpamError::BadPool {
                    cidr: pool.cidr.to_string(),
                    reason: String::from("a node_selector label name is empty"),
                });
            }
        }
        let mut backoff = Backoff::new(self.store.url());
        loop {
            let version = self.store.get(POOLS_VERSION).await?;
            for existing in self.pools().await? {
                if existing.cidr == pool.cidr {
                    return Err(IpamError::PoolExists(pool.cidr));
                }
                if existing.overlaps(&pool.cidr) {
                    return Err(IpamError::PoolOverlap {
                        new: pool.cidr,
                        existing: existing.cidr,
                    });
                }
            }
            let mut txn = Txn::new();
            txn.put(
                POOLS_VERSION,
                bump(version.as_ref()),
                Expect::from_entry(version.as_ref()),
            );
            txn.put(keys::pool(&pool.cidr), encode(&pool), Expect::Absent);
            if self.commit(txn).await? {
                return Ok(());
            }
            backoff.wait().await?;
        }
    }

    /// Enables or disables a pool (a disabled pool hands out no new address).
    pub async fn set_pool_disabled(&self, cidr: IpNet, disabled: bool) -> Result<(), IpamError> {
        let mut backoff = Backoff::new(self.store.url());
        loop {
            let (entry, mut pool) = self
                .read::<Pool>(&keys::pool(&cidr))
                .await?
                .ok_or(IpamError::NoSuchPool(cidr))?;
            pool.disabled = disabled;
            let mut txn = Txn::new();
            txn.put(entry.key, encode(&pool), Expect::Revision(entry.revision));
            if self.commit(txn).await? {
                return Ok(());
            }
            backoff.wait().await?;
        }
    }

    /// Deletes a pool whose addresses are all released: disables it first (so no new
    /// block is claimed), then deletes its empty blocks and their affinities, then the
    /// pool. A pool with addresses in use stays, disabled, and the error says how many.
    pub async fn delete_pool(&self, cidr: IpNet) -> Result<(), IpamError> {
        self.set_pool_disabled(cidr, true).await?;
        let mut backoff = Backoff::new(self.store.url());
        loop {
            let blocks: Vec<_> = self
                .blocks()
                .await?
                .into_iter()
                .filter(|(_, b)| cidr.contains(&b.cidr.network()))
                .collect();
            let in_use: u64 = blocks.iter().map(|(_, b)| u64::from(b.in_use())).sum();
            if in_use > 0 {
                return Err(IpamError::PoolInUse { cidr, in_use });
            }
            let affinities = self
                .read_all::<crate::records::Affinity>(keys::AFFINITIES)
                .await?;
            let mut txn = Txn::new();
            for (entry, _) in blocks.iter().take(60) {
                txn.delete(entry.key.clone(), Expect::Revision(entry.revision));
            }
            for (entry, affinity) in &affinities {
                if cidr.contains(&affinity.cidr.network()) && txn.len() < 120 {
                    txn.delete(entry.key.clone(), Expect::Revision(entry.revision));
                }
            }
            let last = txn.is_empty();
            if last {
                let (entry, _) = self
                    .read::<Pool>(&keys::pool(&cidr))
                    .await?
                    .ok_or(IpamError::NoSuchPool(cidr))?;
                let version = self.store.get(POOLS_VERSION).await?;
                txn.delete(entry.key, Expect::Revision(entry.revision));
                txn.put(
                    POOLS_VERSION,
                    bump(version.as_ref()),
                    Expect::from_entry(version.as_ref()),
                );
            }
            if self.commit(txn).await? {
                if last {
                    return Ok(());
                }
            } else {
                backoff.wait().await?;
            }
        }
    }

    // ---- configuration ----

    pub async fn config(&self) -> Result<IpamConfig, IpamError> {
        Ok(self
            .read::<IpamConfig>(keys::CONFIG)
            .await?
            .map(|(_, c)| c)
            .unwrap_or_default())
    }

    pub async fn set_config(&self, config: &IpamConfig) -> Result<(), IpamError> {
        let mut txn = Txn::new();
        txn.put(keys::CONFIG, encode(config), Expect::Any);
        self.commit(txn).await?;
        Ok(())
    }

    // ---- node registry ----

    /// Records (or updates) a node in the registry.
    pub async fn register_node(&self, node: &Node) -> Result<(), IpamError> {
        keys::validate_node(&node.name)?;
        let mut txn = Txn::new();
        txn.put(keys::node(&node.name), encode(node), Expect::Any);
        self.commit(txn).await?;
        Ok(())
    }

    /// Removes a node from the registry (a leave); its addresses stay allocated. To
    /// delete a node and free everything it had, use [`Ipam::release_node`].
    pub async fn deregister_node(&self, name: &str) -> Result<(), IpamError> {
        keys::validate_node(name)?;
        let mut txn = Txn::new();
        txn.delete(keys::node(name), Expect::Any);
        self.commit(txn).await?;
        Ok(())
    }

    pub async fn node(&self, name: &str) -> Result<Option<Node>, IpamError> {
        keys::validate_node(name)?;
        Ok(self.read::<Node>(&keys::node(name)).await?.map(|(_, n)| n))
    }

    /// Every registered node, sorted by name.
    pub async fn nodes(&self) -> Result<Vec<Node>, IpamError> {
        Ok(self
            .read_all::<Node>(keys::NODES)
            .await?
            .into_iter()
            .map(|(_, n)| n)
            .collect())
    }

    /// Notifications of node joins, updates and leaves: re-read [`Ipam::nodes`] after
    /// each.
    pub async fn watch_nodes(&self) -> Result<Watch, IpamError> {
        Ok(self.store.watch(keys::NODES).await?)
    }

    // ---- what bgpd advertises ----

    /// Notifications of any IPAM change (blocks, affinities, pools): re-read
    /// [`Ipam::node_allocations`] after each. etcd: a native watch; SQLite: the change
    /// counter is polled every 20 ms.
    pub async fn watch(&self) -> Result<Watch, IpamError> {
        Ok(self.store.watch(keys::IPAM).await?)
    }

    /// The blocks `node` owns and the addresses it borrowed from other nodes' blocks.
    pub async fn node_allocations(&self, node: &str) -> Result<NodeAllocations, IpamError> {
        keys::validate_node(node)?;
        let revision = self.store.revision().await?;
        let mut blocks = BTreeSet::new();
        let mut borrowed = BTreeSet::new();
        for (_, block) in self.blocks().await? {
            if block.affinity.as_deref() == Some(node) {
                blocks.insert(block.cidr);
            }
            for (ordinal, allocation) in &block.allocations {
                if allocation.borrower.as_deref() == Some(node) {
                    borrowed.insert(block.address(*ordinal));
                }
            }
        }
        Ok(NodeAllocations {
            node: node.to_string(),
            blocks,
            borrowed,
            revision,
        })
    }

    /// Makes sure `node` owns a block of each family that has a usable pool (bgpd calls
    /// this at start, so the node has a block before its first pod). Returns the
    /// node's blocks afterwards.
    pub async fn ensure_blocks(&self, node: &str) -> Result<BTreeSet<IpNet>, IpamError> {
        keys::validate_node(node)?;
        for family in [Family::Ipv4, Family::Ipv6] {
            let mut backoff = Backoff::new(self.store.url());
            loop {
                let pools = self.usable_pools(node, family).await?;
                if pools.is_empty() {
                    break;
                }
                let affinities = self.node_affinities(node).await?;
                if self.repair_pending(node, &affinities).await? {
                    backoff.wait().await?;
                    continue;
                }
                if Self::confirmed(&affinities)
                    .any(|a| pools.iter().any(|p| p.cidr.contains(&a.cidr.network())))
                {
                    break;
                }
                match self.claim_block(node, &pools, &affinities).await? {
                    Claim::Claimed(_) => break,
                    Claim::Conflict => backoff.wait().await?,
                    Claim::Exhausted => {
                        tracing::warn!(node, %family, "no free block to claim; the node will borrow addresses");
                        break;
                    }
                }
            }
        }
        Ok(self.node_allocations(node).await?.blocks)
    }
}

fn bump(entry: Option<&crate::store::Entry>) -> Vec<u8> {
    let current: u64 = entry
        .and_then(|e| std::str::from_utf8(&e.value).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (current + 1).to_string().into_bytes()
}
