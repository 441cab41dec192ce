//! Releases and repair: a deleted node's release, a crash between claim phases, and
//! `check` finding each inconsistency, also under concurrent assignments.

use std::collections::BTreeMap;
use std::time::Duration;

use ipam::store::{Datastore, Expect, Txn};
use ipam::{Affinity, AffinityState, Family, Ipam, IpamError, Node, ProblemKind, keys};

use super::{assert_clean, assert_no_blocks, ip, net, pool};
use crate::assignment::two_nodes_two_blocks;

pub(crate) async fn release_of_a_deleted_node<S: Datastore>(ipam: Ipam<S>) {
    let (block_a, block_b) = two_nodes_two_blocks(&ipam).await;
    crate::support::create_nodes(ipam.store().url(), &["node-a"]);
    ipam.register_node(&Node {
        name: "node-a".into(),
        addresses: vec![ip("192.0.2.10")],
        asn: 64512,
        labels: BTreeMap::new(),
        vteps: vec![],
    })
    .await
    .unwrap();
    ipam.assign("node-a", "a-fill", Family::Ipv4, 15)
        .await
        .unwrap();
    // node-b borrows one address in node-a's block (node-b's own block is full).
    ipam.assign("node-b", "b-fill", Family::Ipv4, 15)
        .await
        .unwrap();
    let borrowed_by_b = ipam.assign("node-b", "b-borrow", Family::Ipv4, 1);
    let err = borrowed_by_b.await.unwrap_err();
    assert!(matches!(err, IpamError::Exhausted { .. }), "{err}");
    ipam.release_handle("a-0").await.unwrap();
    let borrowed_by_b = ipam
        .assign("node-b", "b-borrow", Family::Ipv4, 1)
        .await
        .unwrap();
    assert_eq!(borrowed_by_b[0].block, block_a);
    // node-a borrows in node-b's block after node-b frees one.
    ipam.release_handle("b-0").await.unwrap();
    let borrowed_by_a = ipam
        .assign("node-a", "a-borrow", Family::Ipv4, 1)
        .await
        .unwrap();
    assert_eq!(borrowed_by_a[0].block, block_b);

    let report = ipam.release_node("node-a").await.unwrap();
    assert_eq!(report.addresses_released, 16);
    assert_eq!(report.blocks_orphaned, vec![block_a]);
    assert!(ipam.node("node-a").await.unwrap().is_none());
    assert!(ipam.addresses_of("a-fill").await.unwrap().is_empty());
    assert!(ipam.addresses_of("a-borrow").await.unwrap().is_empty());
    assert_eq!(ipam.addresses_of("b-borrow").await.unwrap(), borrowed_by_b);
    assert_no_blocks(&ipam, "node-a").await;
    assert_clean(&ipam).await;
    // The last borrowed address released: the ownerless block goes.
    ipam.release_handle("b-borrow").await.unwrap();
    let usage = ipam.usage().await.unwrap();
    assert_eq!(usage.blocks.len(), 1);
    assert_eq!(usage.blocks[0].cidr, block_b);
    assert_clean(&ipam).await;
}

pub(crate) async fn crash_between_claim_phases_is_repaired<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(pool("10.6.0.0/24", 28)).await.unwrap();
    // What phase 1 of a claim leaves when the process dies before phase 2.
    let cidr = net("10.6.0.48/28");
    let pending = Affinity {
        node: "node-a".into(),
        cidr,
        state: AffinityState::Pending,
    };
    let mut txn = Txn::new();
    txn.put(
        keys::affinity("node-a", &cidr),
        serde_json::to_vec(&pending).unwrap(),
        Expect::Absent,
    );
    ipam.store().commit(txn).await.unwrap();
    let report = ipam.check().await.unwrap();
    assert_eq!(
        report.counts.get(&ProblemKind::AffinityWithoutBlock),
        Some(&1),
        "{}",
        report.render()
    );
    assert!(
        report
            .render()
            .ends_with("Check complete; found 1 problems.\n")
    );
    // Another node does not take the pending CIDR.
    let b = ipam.assign("node-b", "b", Family::Ipv4, 1).await.unwrap();
    assert_ne!(b[0].block, cidr);
    // node-a's next operation completes the claim and uses the block.
    let a = ipam.assign("node-a", "a", Family::Ipv4, 1).await.unwrap();
    assert_eq!(a[0].block, cidr);
    assert_clean(&ipam).await;

    // A pending affinity for a block another node won is dropped.
    let lost = Affinity {
        node: "node-c".into(),
        cidr: b[0].block,
        state: AffinityState::Pending,
    };
    let mut txn = Txn::new();
    txn.put(
        keys::affinity("node-c", &b[0].block),
        serde_json::to_vec(&lost).unwrap(),
        Expect::Absent,
    );
    ipam.store().commit(txn).await.unwrap();
    let c = ipam.assign("node-c", "c", Family::Ipv4, 1).await.unwrap();
    assert_ne!(c[0].block, b[0].block);
    assert_clean(&ipam).await;
}

pub(crate) async fn check_finds_each_inconsistency<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(pool("10.7.0.0/24", 28)).await.unwrap();
    let a = ipam.assign("node-a", "a", Family::Ipv4, 2).await.unwrap();
    let store = ipam.store();
    // A handle record lost: its addresses have no handle.
    let mut txn = Txn::new();
    txn.delete(keys::handle("a"), Expect::Any);
    store.commit(txn).await.unwrap();
    // A handle that records addresses that are not allocated.
    let mut ghost = ipam::HandleRecord::new("ghost");
    ghost.add(a[0].block, &[ip("10.7.0.13"), ip("10.7.0.14")]);
    let mut txn = Txn::new();
    txn.put(
        keys::handle("ghost"),
        serde_json::to_vec(&ghost).unwrap(),
        Expect::Absent,
    );
    store.commit(txn).await.unwrap();
    // A second owner for node-a's block.
    let second = Affinity {
        node: "node-z".into(),
        cidr: a[0].block,
        state: AffinityState::Confirmed,
    };
    let mut txn = Txn::new();
    txn.put(
        keys::affinity("node-z", &a[0].block),
        serde_json::to_vec(&second).unwrap(),
        Expect::Absent,
    );
    store.commit(txn).await.unwrap();
    let report = ipam.check().await.unwrap();
    let count = |kind| report.counts.get(&kind).copied().unwrap_or(0);
    assert_eq!(
        count(ProblemKind::AddressWithoutHandle),
        2,
        "{}",
        report.render()
    );
    assert_eq!(
        count(ProblemKind::HandleWithoutAddress),
        1,
        "{}",
        report.render()
    );
    assert!(
        count(ProblemKind::BlockWithTwoOwners) >= 1,
        "{}",
        report.render()
    );
    // A block whose owner lost its affinity.
    let mut txn = Txn::new();
    txn.delete(keys::affinity("node-a", &a[0].block), Expect::Any);
    store.commit(txn).await.unwrap();
    let report = ipam.check().await.unwrap();
    assert_eq!(
        report.counts.get(&ProblemKind::BlockWithoutAffinity),
        Some(&1),
        "{}",
        report.render()
    );
    assert_eq!(report.problems, report.items.len());
    let text = report.render();
    assert!(
        text.contains(&format!(
            "Check complete; found {} problems.",
            report.problems
        )),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["problems"], report.problems);
}

/// `check` reads at one revision: assignments and releases running meanwhile (with
/// block claims: /29 blocks fill fast) never make it report a problem.
pub(crate) async fn check_is_consistent_under_concurrent_assignments<S: Datastore + Clone>(
    ipam: Ipam<S>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    ipam.add_pool(pool("10.9.0.0/24", 29)).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (ipam, stop, rounds) = (ipam.clone(), stop.clone(), rounds.clone());
        workers.push(tokio::spawn(async move {
            let node = format!("node-{}", worker % 2);
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                let handle = format!("pod-{worker}-{round}");
                ipam.assign(&node, &handle, Family::Ipv4, 2).await.unwrap();
                if round > 0 {
                    ipam.release_handle(&format!("pod-{worker}-{}", round - 1))
                        .await
                        .unwrap();
                }
                round += 1;
                rounds.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // The workers are stopped before any assertion, so a failure ends the test.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut checks = 0;
    let failure = loop {
        if checks >= 20 && rounds.load(Ordering::Relaxed) >= 100 {
            break None;
        }
        if std::time::Instant::now() > deadline {
            break Some(format!(
                "{checks} checks and {} rounds in 120 s",
                rounds.load(Ordering::Relaxed)
            ));
        }
        match ipam.check().await {
            Ok(report) if report.is_clean() => checks += 1,
            Ok(report) => break Some(format!("check {checks} under load:\n{}", report.render())),
            Err(error) => break Some(format!("check {checks}: {error}")),
        }
    };
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert!(failure.is_none(), "{}", failure.unwrap_or_default());
    assert_clean(&ipam).await;
}
