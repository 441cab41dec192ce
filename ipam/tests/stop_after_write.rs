//! Every IPAM operation is a sequence of single-key writes (the Kubernetes API has no
//! multi-object transaction): a claim, an assignment and the releases are stopped
//! after each of their writes in turn (as if their process died there), the next
//! operation runs, and `ipam check` must then be clean. Every transaction the
//! allocator sends must touch one key. Run against every datastore.

#![allow(clippy::unwrap_used)]

mod support;

use support::battery;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ipam::store::{Datastore, Entry, Outcome, Read, StoreError, Txn, Watch};
use ipam::{Family, Ipam, Pool};

/// A real store that accepts `left` more writes, then refuses every write (the
/// operation stops there, as if its process died). It fails the test on a transaction
/// of more than one key.
#[derive(Clone)]
struct StopAfter<S> {
    inner: S,
    left: Arc<AtomicU32>,
}

impl<S: Datastore> Datastore for StopAfter<S> {
    fn url(&self) -> &str {
        self.inner.url()
    }

    fn multi_key_transactions(&self) -> bool {
        self.inner.multi_key_transactions()
    }

    fn keys_per_round_trip(&self) -> usize {
        self.inner.keys_per_round_trip()
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        self.inner.list(prefix).await
    }

    async fn commit(&self, txn: Txn) -> Result<Outcome, StoreError> {
        assert_eq!(txn.len(), 1, "a transaction of several keys: {txn:?}");
        let allowed = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !allowed {
            return Err(StoreError::Unavailable {
                url: self.inner.url().to_string(),
                reason: String::from("stopped (test)"),
            });
        }
        self.inner.commit(txn).await
    }

    async fn read(&self, reads: Vec<Read>) -> Result<Vec<Vec<Entry>>, StoreError> {
        self.inner.read(reads).await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.inner.revision().await
    }

    async fn watch(&self, prefix: &str) -> Result<Watch, StoreError> {
        self.inner.watch(prefix).await
    }

    async fn watch_node(&self, node: &str) -> Result<Watch, StoreError> {
        self.inner.watch_node(node).await
    }
}

fn stopping<S: Datastore + Clone>(store: &S, writes: u32) -> (Ipam<StopAfter<S>>, Arc<AtomicU32>) {
    let left = Arc::new(AtomicU32::new(writes));
    let ipam = Ipam::new(StopAfter {
        inner: store.clone(),
        left: left.clone(),
    });
    (ipam, left)
}

async fn assert_clean<S: Datastore>(ipam: &Ipam<S>, what: &str) {
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{what}:\n{}", report.render());
}

/// Runs `stopped` with 0, 1, 2, ... writes allowed until it completes within them;
/// after each stop, `next` (the operation that follows) runs on the whole store and
/// the store must be clean. `setup` prepares each round. Returns how many writes the
/// operation makes when it is not stopped.
async fn stop_after_each_write<S, Setup, SetupFut, Stopped, StoppedFut, Next, NextFut>(
    store: &S,
    what: &str,
    mut setup: Setup,
    mut stopped: Stopped,
    mut next: Next,
) -> u32
where
    S: Datastore + Clone,
    Setup: FnMut(Ipam<S>, u32) -> SetupFut,
    SetupFut: std::future::Future<Output = ()>,
    Stopped: FnMut(Ipam<StopAfter<S>>, u32) -> StoppedFut,
    StoppedFut: std::future::Future<Output = bool>,
    Next: FnMut(Ipam<S>, u32) -> NextFut,
    NextFut: std::future::Future<Output = ()>,
{
    let ipam = Ipam::new(store.clone());
    for writes in 0..64 {
        setup(ipam.clone(), writes).await;
        let (partial, left) = stopping(store, writes);
        let completed = stopped(partial, writes).await;
        if completed && left.load(Ordering::SeqCst) > 0 {
            // Finished with writes to spare: every stop point has been tried.
            assert_clean(&ipam, &format!("{what} completed")).await;
            return writes;
        }
        next(ipam.clone(), writes).await;
        assert_clean(
            &ipam,
            &format!("{what} stopped after {writes} writes, then the next operation"),
        )
        .await;
    }
    panic!("{what} makes more than 64 writes");
}

async fn claim_assign_and_release<S: Datastore + Clone>(store: S) {
    let ipam = Ipam::new(store.clone());
    let mut pool = Pool::new("10.20.0.0/22".parse().unwrap());
    pool.block_size = 28;
    ipam.add_pool(pool).await.unwrap();

    // A claim (bgpd's ensure_blocks at start), then the node's next operation.
    let claim = stop_after_each_write(
        &store,
        "claim",
        |_, _| async {},
        |partial, round| async move {
            partial
                .ensure_blocks(&format!("claim-{round}"))
                .await
                .is_ok()
        },
        |ipam, round| async move {
            let node = format!("claim-{round}");
            let blocks = ipam.ensure_blocks(&node).await.unwrap();
            assert_eq!(blocks.len(), 1, "{node} owns one block");
        },
    )
    .await;
    assert!(
        claim >= 3,
        "a claim writes pending, block, confirmed: {claim}"
    );

    // An assignment with a claim in it (the node's first pod), then the retried ADD:
    // the handle gets exactly one address.
    let assign = stop_after_each_write(
        &store,
        "assignment",
        |_, _| async {},
        |partial, round| async move {
            partial
                .assign_once(
                    &format!("add-{round}"),
                    &format!("pod-{round}"),
                    Family::Ipv4,
                )
                .await
                .is_ok()
        },
        |ipam, round| async move {
            let handle = format!("pod-{round}");
            let got = ipam
                .assign_once(&format!("add-{round}"), &handle, Family::Ipv4)
                .await
                .unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(ipam.addresses_of(&handle).await.unwrap(), got);
        },
    )
    .await;
    assert!(assign >= 5, "claim, handle, block: {assign}");

    // An assignment stopped, then the pod's DEL instead of a retry, then the node's
    // next pod: nothing is left.
    stop_after_each_write(
        &store,
        "assignment then DEL",
        |_, _| async {},
        |partial, round| async move {
            partial
                .assign_once("del-node", &format!("gone-{round}"), Family::Ipv4)
                .await
                .is_ok()
        },
        |ipam, round| async move {
            ipam.release_handle(&format!("gone-{round}")).await.unwrap();
            assert!(
                ipam.addresses_of(&format!("gone-{round}"))
                    .await
                    .unwrap()
                    .is_empty()
            );
            // A claim the stopped ADD left is the node's: its next pod repairs it.
            let next = format!("next-{round}");
            ipam.assign_once("del-node", &next, Family::Ipv4)
                .await
                .unwrap();
            ipam.release_handle(&next).await.unwrap();
        },
    )
    .await;

    // A release of a handle of two addresses in two blocks, then the retried DEL.
    let release = stop_after_each_write(
        &store,
        "release of a handle",
        |ipam, round| async move {
            let handle = format!("two-{round}");
            ipam.assign("rel-a", &handle, Family::Ipv4, 1)
                .await
                .unwrap();
            ipam.assign("rel-b", &handle, Family::Ipv4, 1)
                .await
                .unwrap();
        },
        |partial, round| async move {
            partial
                .release_handle(&format!("two-{round}"))
                .await
                .is_ok()
        },
        |ipam, round| async move {
            let handle = format!("two-{round}");
            ipam.release_handle(&handle).await.unwrap();
            assert!(ipam.addresses_of(&handle).await.unwrap().is_empty());
        },
    )
    .await;
    assert!(release >= 4, "mark, two blocks, delete: {release}");

    // A release of one address, then the retried release.
    stop_after_each_write(
        &store,
        "release of an address",
        |ipam, round| async move {
            ipam.assign("one-a", &format!("one-{round}"), Family::Ipv4, 2)
                .await
                .unwrap();
        },
        |partial, round| async move {
            let first = first_address(&partial, &format!("one-{round}")).await;
            partial.release_address(first, None).await.is_ok()
        },
        |ipam, round| async move {
            let handle = format!("one-{round}");
            let held = ipam.addresses_of(&handle).await.unwrap();
            if held.len() == 2 {
                ipam.release_address(held[0].address, None).await.unwrap();
            }
            assert_eq!(ipam.addresses_of(&handle).await.unwrap().len(), 1);
            ipam.release_handle(&handle).await.unwrap();
        },
    )
    .await;

    // Releasing a node's empty blocks, then its next operation.
    stop_after_each_write(
        &store,
        "release of empty blocks",
        |ipam, round| async move {
            let node = format!("empty-{round}");
            ipam.assign(&node, &format!("e-{round}"), Family::Ipv4, 1)
                .await
                .unwrap();
            ipam.release_handle(&format!("e-{round}")).await.unwrap();
        },
        |partial, round| async move {
            partial
                .release_empty_blocks(&format!("empty-{round}"))
                .await
                .is_ok()
        },
        |ipam, round| async move {
            let node = format!("empty-{round}");
            ipam.assign(&node, &format!("e2-{round}"), Family::Ipv4, 1)
                .await
                .unwrap();
            ipam.release_handle(&format!("e2-{round}")).await.unwrap();
        },
    )
    .await;

    // Releasing a deleted node (with an address another node borrows in its block),
    // then the retried release.
    stop_after_each_write(
        &store,
        "release of a node",
        |ipam, round| async move {
            let node = format!("dead-{round}");
            ipam.assign(&node, &format!("d-{round}"), Family::Ipv4, 2)
                .await
                .unwrap();
            let block = ipam.addresses_of(&format!("d-{round}")).await.unwrap()[0].block;
            let borrowed = block.hosts().nth(8).unwrap();
            ipam.assign_address("survivor", &format!("s-{round}"), borrowed)
                .await
                .unwrap();
        },
        |partial, round| async move { partial.release_node(&format!("dead-{round}")).await.is_ok() },
        |ipam, round| async move {
            let node = format!("dead-{round}");
            ipam.release_node(&node).await.unwrap();
            assert!(ipam.addresses_of(&format!("d-{round}")).await.unwrap().is_empty());
            assert_eq!(ipam.addresses_of(&format!("s-{round}")).await.unwrap().len(), 1);
            assert!(ipam.node_allocations(&node).await.unwrap().blocks.is_empty());
        },
    )
    .await;
}

async fn first_address<S: Datastore>(ipam: &Ipam<S>, handle: &str) -> IpAddr {
    ipam.addresses_of(handle).await.unwrap()[0].address
}

battery!(
    [sqlite, kubernetes, etcd],
    |store| store,
    [claim_assign_and_release]
);
