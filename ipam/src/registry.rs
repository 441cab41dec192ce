//! The administrative records: pools, the IPAM configuration and the node registry,
//! plus what bgpd reads and watches (a node's blocks and borrowed addresses, change
//! notifications, and a block claimed for the node at start).

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use crate::Ipam;
use crate::backoff::Backoff;
use crate::claim::Claim;
use crate::error::IpamError;
use crate::family::Family;
use crate::keys;
use crate::pool::Pool;
use crate::records::{Affinity, BlockUsers, IpamConfig, Node, NodeAllocations};
use crate::snapshot::decode_pools;
use crate::store::{Datastore, Entry, Expect, Read, Watch};

impl<S: Datastore> Ipam<S> {
    // ---- pools ----

    /// Every pool, sorted by CIDR.
    pub async fn pools(&self) -> Result<Vec<Pool>, IpamError> {
        let entries = self.store.list(keys::POOLS).await?;
        let mut pools = decode_pools(self.store.url(), &entries)?;
        pools.sort_by_key(|a| a.cidr);
        Ok(pools)
    }

    /// Adds a pool; refuses a malformed one, one overlapping an existing pool, and a
    /// VXLAN pool whose VNI or port differs from an existing VXLAN pool of its family
    /// (`Pool::vxlan_conflict`). The pool is created, then the pools are read again:
    /// when another pool in conflict with it was added meanwhile, this one is deleted
    /// again and refused (both may be). Readers ignore overlapping pools, so neither
    /// is used in between.
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
        let conflict = |stored: &[crate::store::Entry]| -> Result<Option<IpamError>, IpamError> {
            for entry in stored {
                let existing: Pool = crate::records::decode(self.store.url(), entry)?;
                if existing.cidr == pool.cidr {
                    continue;
                }
                if existing.overlaps(&pool.cidr) {
                    return Ok(Some(IpamError::PoolOverlap {
                        new: pool.cidr,
                        existing: existing.cidr,
                    }));
                }
                if let Some(reason) = pool.vxlan_conflict(&existing) {
                    return Ok(Some(IpamError::BadPool {
                        cidr: pool.cidr.to_string(),
                        reason,
                    }));
                }
            }
            Ok(None)
        };
        if let Some(refused) = conflict(&self.store.list(keys::POOLS).await?)? {
            return Err(refused);
        }
        let key = keys::pool(&pool.cidr);
        let Some(revision) = self.put(&key, &pool, Expect::Absent).await? else {
            return Err(IpamError::PoolExists(pool.cidr));
        };
        if let Some(refused) = conflict(&self.store.list(keys::POOLS).await?)? {
            self.delete(&key, Expect::Revision(revision)).await?;
            return Err(refused);
        }
        Ok(())
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
            if self
                .put(&entry.key, &pool, Expect::Revision(entry.revision))
                .await?
                .is_some()
            {
                return Ok(());
            }
            backoff.wait().await?;
        }
    }

    /// Deletes a pool whose addresses are all released: disables it first (so no new
    /// block is claimed), then releases its empty blocks and deletes their affinities,
    /// then the pool. A pool with addresses in use stays, disabled, and the error says
    /// how many.
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
            let affinities: Vec<_> = self
                .read_all::<Affinity>(keys::AFFINITIES)
                .await?
                .into_iter()
                .filter(|(_, a)| cidr.contains(&a.cidr.network()))
                .collect();
            let mut lost = false;
            for (entry, affinity) in &affinities {
                let owner = blocks.iter().any(|(_, b)| {
                    b.cidr == affinity.cidr && b.affinity.as_ref() == Some(&affinity.node)
                });
                lost |= !if owner {
                    self.release_block(affinity, entry).await?
                } else {
                    self.delete(&entry.key, Expect::Revision(entry.revision))
                        .await?
                };
            }
            for (entry, block) in &blocks {
                if block.affinity.is_none() {
                    lost |= !self.write_or_delete_block(entry, block).await?;
                }
            }
            if !lost && affinities.is_empty() && blocks.iter().all(|(_, b)| b.affinity.is_none()) {
                let (entry, _) = self
                    .read::<Pool>(&keys::pool(&cidr))
                    .await?
                    .ok_or(IpamError::NoSuchPool(cidr))?;
                if self
                    .delete(&entry.key, Expect::Revision(entry.revision))
                    .await?
                {
                    return Ok(());
                }
            }
            if lost {
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
        self.put(keys::CONFIG, config, Expect::Any).await?;
        Ok(())
    }

    // ---- node registry ----

    /// Records (or updates) a node in the registry.
    pub async fn register_node(&self, node: &Node) -> Result<(), IpamError> {
        keys::validate_node(&node.name)?;
        self.put(&keys::node(&node.name), node, Expect::Any).await?;
        Ok(())
    }

    /// Removes a node from the registry (a leave); its addresses stay allocated. To
    /// delete a node and free everything it had, use [`Ipam::release_node`].
    pub async fn deregister_node(&self, name: &str) -> Result<(), IpamError> {
        keys::validate_node(name)?;
        self.delete(&keys::node(name), Expect::Any).await?;
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

    /// Notifications of changes to the pools and to the blocks `node` owns or borrows
    /// from: re-read [`Ipam::node_allocations`] after each. Unlike [`Ipam::watch`],
    /// on the Kubernetes store other nodes' pods and blocks never wake it.
    pub async fn watch_node(&self, node: &str) -> Result<Watch, IpamError> {
        keys::validate_node(node)?;
        Ok(self.store.watch_node(node).await?)
    }

    /// Notifications of changes to who uses which block or address (a block
    /// claimed or released, an address borrowed or given back): re-read
    /// [`Ipam::block_users`] after each. On the Kubernetes store a node's pods in its
    /// own blocks never wake it.
    pub async fn watch_block_users(&self) -> Result<Watch, IpamError> {
        Ok(self.store.watch_block_users().await?)
    }

    /// The blocks `node` owns and the addresses it borrowed from other nodes' blocks
    /// (read as `Read::NodeBlocks`: on the Kubernetes store, only those blocks).
    pub async fn node_allocations(&self, node: &str) -> Result<NodeAllocations, IpamError> {
        keys::validate_node(node)?;
        let revision = self.store.revision().await?;
        let mut blocks = BTreeSet::new();
        let mut borrowed = BTreeSet::new();
        let mut in_use = BTreeMap::new();
        let entries = self
            .store
            .read(vec![Read::NodeBlocks(node.to_string())])
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        for entry in entries {
            let block = self.decode_block(&entry)?;
            if block.affinity.as_deref() == Some(node) {
                blocks.insert(block.cidr);
                in_use.insert(block.cidr, block.in_use());
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
            in_use,
            revision,
        })
    }

    /// Who uses which block and address, for the VXLAN overlay (the datastore, not
    /// BGP, says where a block or a borrowed address lives): every block that has an
    /// owner, with that owner, and every address whose user (`Block::user_of`) is
    /// not its block's owner, with that user; both sorted.
    pub async fn block_users(&self) -> Result<BlockUsers, IpamError> {
        let mut users = BlockUsers::default();
        for (_, block) in self.blocks().await? {
            for (ordinal, allocation) in &block.allocations {
                if let Some(user) = block.user_of(allocation)
                    && Some(user) != block.affinity.as_deref()
                {
                    users
                        .borrowed
                        .push((block.address(*ordinal), user.to_string()));
                }
            }
            if let Some(node) = block.affinity {
                users.owners.push((block.cidr, node));
            }
        }
        users.owners.sort();
        users.borrowed.sort();
        Ok(users)
    }

    /// Makes sure `node` owns a block of each family that has a usable pool (bgpd calls
    /// this at start, so the node has a block before its first pod). Returns the
    /// node's blocks afterwards.
    ///
    /// One attempt reads the pools and the node's affinities together, the affinities
    /// the first time from the store's cache (`Read::PrefixFromCache`: on Kubernetes
    /// the API server's watch cache rather than a LIST of every affinity from etcd),
    /// after anything lost or repaired from the store itself. Then the blocks of the
    /// affinities, by key: an affinity whose block is gone or another node's is
    /// dropped (`drop_stale_affinity`, which reads the block again; one that the cache
    /// still showed after its deletion loses that compare-and-swap) and the attempt
    /// starts over. Then each family without a block claims one, taking the
    /// affinities just read as they are. A claim's writes are compare-and-swaps
    /// whatever was read, so a stale read can cost a retry, never a block owned twice.
    pub async fn ensure_blocks(&self, node: &str) -> Result<BTreeSet<IpNet>, IpamError> {
        keys::validate_node(node)?;
        let mut backoff = Backoff::new(self.store.url());
        let mut from_cache = true;
        'attempt: loop {
            let (pools, affinities) = self.pools_and_affinities(node, from_cache).await?;
            from_cache = false;
            if self.repair_affinities(node, &affinities).await? {
                backoff.wait().await?;
                continue;
            }
            let mut owned = self.blocks_named(node, &affinities).await?;
            let mut stale = false;
            for (affinity, entry) in &affinities {
                if !owned.contains(&affinity.cidr) {
                    self.drop_stale_affinity(affinity, entry).await?;
                    stale = true;
                }
            }
            if stale {
                backoff.wait().await?;
                continue;
            }
            for family in [Family::Ipv4, Family::Ipv6] {
                let pools = self.select_pools(pools.clone(), node, family).await?;
                if pools.is_empty()
                    || owned
                        .iter()
                        .any(|cidr| pools.iter().any(|p| p.cidr.contains(&cidr.network())))
                {
                    continue;
                }
                match self.claim_block(node, &pools, &affinities, false).await? {
                    Claim::Claimed(cidr) => {
                        owned.insert(cidr);
                    }
                    Claim::Conflict => {
                        backoff.wait().await?;
                        continue 'attempt;
                    }
                    Claim::Exhausted => {
                        tracing::warn!(node, %family, "no free block to claim; the node will borrow addresses");
                    }
                }
            }
            return Ok(owned);
        }
    }

    /// Every pool (from the store) and `node`'s affinities (sorted by CIDR; from the
    /// store's cache with `from_cache`), in one round trip.
    async fn pools_and_affinities(
        &self,
        node: &str,
        from_cache: bool,
    ) -> Result<(Vec<Pool>, Vec<(Affinity, Entry)>), IpamError> {
        let prefix = keys::node_affinities(node);
        let affinities = if from_cache {
            Read::PrefixFromCache(prefix)
        } else {
            Read::Prefix(prefix)
        };
        let mut results = self
            .store
            .read(vec![Read::Prefix(keys::POOLS.to_string()), affinities])
            .await?
            .into_iter();
        let url = self.store.url();
        let mut pools = decode_pools(url, &results.next().unwrap_or_default())?;
        pools.sort_by_key(|a| a.cidr);
        let mut affinities = Vec::new();
        for entry in results.next().unwrap_or_default() {
            affinities.push((crate::records::decode::<Affinity>(url, &entry)?, entry));
        }
        affinities.sort_by_key(|a| a.0.cidr);
        Ok((pools, affinities))
    }

    /// Of `affinities`' blocks, those that name `node`, read by key (O(the node's
    /// blocks); [`Ipam::node_allocations`] reads every block on the stores that cannot
    /// select a node's, for the addresses it borrowed).
    async fn blocks_named(
        &self,
        node: &str,
        affinities: &[(Affinity, Entry)],
    ) -> Result<BTreeSet<IpNet>, IpamError> {
        let mut blocks = BTreeSet::new();
        if affinities.is_empty() {
            return Ok(blocks);
        }
        let reads = affinities
            .iter()
            .map(|(affinity, _)| Read::Key(keys::block(&affinity.cidr)))
            .collect();
        for entry in self.store.read(reads).await?.into_iter().flatten() {
            let block = self.decode_block(&entry)?;
            if block.affinity.as_deref() == Some(node) {
                blocks.insert(block.cidr);
            }
        }
        Ok(blocks)
    }
}
