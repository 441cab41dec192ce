//! Where a claim looks for a free block (`claim.rs`): a few candidate blocks read by
//! key, not a listing of every block and affinity, so a claim costs the same with 5000
//! blocks in the store as with none (issue 18's `scale-ipam`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ipam::store::{Datastore, Entry, Outcome, Read, StoreError, Txn, Watch};
use ipam::{Family, Ipam};

use super::{assert_clean, pool};

/// A real store, passed through, that counts the entries its reads return.
struct Counting<S> {
    store: S,
    entries: Arc<AtomicUsize>,
}

impl<S: Datastore> Datastore for Counting<S> {
    fn url(&self) -> &str {
        self.store.url()
    }

    fn multi_key_transactions(&self) -> bool {
        self.store.multi_key_transactions()
    }

    fn keys_per_round_trip(&self) -> usize {
        self.store.keys_per_round_trip()
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let found = self.store.get(key).await?;
        self.entries
            .fetch_add(usize::from(found.is_some()), Ordering::Relaxed);
        Ok(found)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let found = self.store.list(prefix).await?;
        self.entries.fetch_add(found.len(), Ordering::Relaxed);
        Ok(found)
    }

    async fn commit(&self, txn: Txn) -> Result<Outcome, StoreError> {
        self.store.commit(txn).await
    }

    async fn read(&self, reads: Vec<Read>) -> Result<Vec<Vec<Entry>>, StoreError> {
        let found = self.store.read(reads).await?;
        self.entries
            .fetch_add(found.iter().map(Vec::len).sum(), Ordering::Relaxed);
        Ok(found)
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.store.revision().await
    }

    async fn watch(&self, prefix: &str) -> Result<Watch, StoreError> {
        self.store.watch(prefix).await
    }

    async fn watch_node(&self, node: &str) -> Result<Watch, StoreError> {
        self.store.watch_node(node).await
    }
}

pub(crate) async fn a_claim_reads_a_few_blocks_not_every_block<S: Datastore + Clone>(
    ipam: Ipam<S>,
) {
    // 256 blocks, 48 of them claimed by other nodes.
    ipam.add_pool(pool("10.90.0.0/18", 26)).await.unwrap();
    const OTHERS: usize = 48;
    for i in 0..OTHERS {
        let blocks = ipam.ensure_blocks(&format!("other-{i:02}")).await.unwrap();
        assert_eq!(blocks.len(), 1, "other-{i:02}: {blocks:?}");
    }
    let entries = Arc::new(AtomicUsize::new(0));
    let counted = Ipam::new(Counting {
        store: ipam.store().clone(),
        entries: entries.clone(),
    });
    let blocks = counted.ensure_blocks("newcomer").await.unwrap();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let read = entries.load(Ordering::Relaxed);
    // The pool, a window of candidate blocks, the node's affinity and block; listing
    // every block and affinity would be 2 × 48 entries and more.
    assert!(
        read <= 16,
        "claiming one block read {read} entries with {OTHERS} blocks in the store"
    );
    // The block is the newcomer's alone, and it takes addresses from it.
    let owners = ipam.block_users().await.unwrap().owners;
    let cidr = *blocks.iter().next().unwrap();
    assert_eq!(
        owners
            .iter()
            .filter(|(c, _)| *c == cidr)
            .collect::<Vec<_>>(),
        vec![&(cidr, String::from("newcomer"))]
    );
    assert_eq!(owners.len(), OTHERS + 1);
    let assigned = ipam
        .assign("newcomer", "pod-of-newcomer", Family::Ipv4, 1)
        .await
        .unwrap();
    assert_eq!(assigned[0].block, cidr);
    assert_clean(&ipam).await;
}

pub(crate) async fn a_nearly_full_pool_gives_its_last_block<S: Datastore>(ipam: Ipam<S>) {
    // 4 blocks: three other nodes take three, probing finds the fourth or the listing
    // does; a fifth node finds none and borrows.
    ipam.add_pool(pool("10.91.0.0/24", 26)).await.unwrap();
    for i in 0..4 {
        let blocks = ipam.ensure_blocks(&format!("filler-{i}")).await.unwrap();
        assert_eq!(blocks.len(), 1, "filler-{i}: {blocks:?}");
    }
    assert_eq!(ipam.block_users().await.unwrap().owners.len(), 4);
    assert!(ipam.ensure_blocks("late").await.unwrap().is_empty());
    let borrowed = ipam
        .assign("late", "pod-of-late", Family::Ipv4, 1)
        .await
        .unwrap();
    assert!(borrowed[0].borrowed, "{borrowed:?}");
    assert_clean(&ipam).await;
}
