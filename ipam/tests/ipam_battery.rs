//! The IPAM operations, run against every datastore (SQLite always; etcd when
//! installed): pools, assignment, claims, borrowing, releases, crash repair, check,
//! usage, node registry and watches.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use ipam::store::{Datastore, Expect, Txn};
use ipam::{
    Affinity, AffinityState, Family, Ipam, IpamConfig, IpamError, Node, Pool, ProblemKind, keys,
};
use ipnet::IpNet;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pool(cidr: &str, block_size: u8) -> Pool {
    let mut pool = Pool::new(net(cidr));
    pool.block_size = block_size;
    pool
}

async fn assert_clean<S: Datastore>(ipam: &Ipam<S>) {
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
}

async fn bad_pools_are_refused<S: Datastore>(ipam: Ipam<S>) {
    let err = ipam.add_pool(pool("10.0.0.0/16", 19)).await.unwrap_err();
    assert!(
        err.to_string().contains("block size 19 is outside 20-32"),
        "{err}"
    );
    let err = ipam.add_pool(pool("10.0.0.0/16", 33)).await.unwrap_err();
    assert!(matches!(err, IpamError::BadPool { .. }), "{err}");
    let err = ipam.add_pool(pool("fd00::/64", 115)).await.unwrap_err();
    assert!(err.to_string().contains("outside 116-128"), "{err}");
    let err = ipam.add_pool(pool("10.0.0.1/16", 26)).await.unwrap_err();
    assert!(
        err.to_string().contains("did you mean 10.0.0.0/16"),
        "{err}"
    );
    let err = ipam.add_pool(pool("10.0.0.0/28", 26)).await.unwrap_err();
    assert!(err.to_string().contains("larger than the pool"), "{err}");
    assert!(Pool::parse_cidr("10.0.0/8").is_err());

    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    let err = ipam
        .add_pool(Pool::new(net("10.244.128.0/17")))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "pool 10.244.128.0/17 overlaps existing pool 10.244.0.0/16"
    );
    let err = ipam
        .add_pool(Pool::new(net("10.0.0.0/8")))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::PoolOverlap { .. }), "{err}");
    let err = ipam
        .add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::PoolExists(_)), "{err}");
    ipam.add_pool(Pool::new(net("fd00:10:244::/56")))
        .await
        .unwrap();
    let pools = ipam.pools().await.unwrap();
    assert_eq!(pools.len(), 2);
    assert_eq!(pools[0].block_size, 26);
    assert_eq!(pools[1].block_size, 122);

    // Pools written around add_pool (a custom resource applied by hand): an
    // overlapping one and a malformed one are refused with a reason, and the pools
    // they do not touch keep working.
    let mut overlapping = Pool::new(net("10.244.64.0/18"));
    overlapping.block_size = 28;
    let mut bad = Pool::new(net("10.99.0.0/16"));
    bad.block_size = 8;
    for written in [&overlapping, &bad] {
        let mut txn = Txn::new();
        txn.put(
            keys::pool(&written.cidr),
            serde_json::to_vec(written).unwrap(),
            Expect::Absent,
        );
        ipam.store().commit(txn).await.unwrap();
    }
    let cidrs: Vec<IpNet> = ipam.pools().await.unwrap().iter().map(|p| p.cidr).collect();
    assert_eq!(cidrs, [net("fd00:10:244::/56")]);
    let v6 = ipam.assign("node-a", "v6", Family::Ipv6, 1).await.unwrap();
    assert!(v6[0].address.is_ipv6());
    let err = ipam
        .assign("node-a", "v4", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::NoPool { .. }), "{err}");
    let report = ipam.check().await.unwrap();
    assert_eq!(
        report.counts.get(&ProblemKind::PoolRefused),
        Some(&3),
        "{}",
        report.render()
    );
    let text = report.render();
    assert!(
        text.contains("pool 10.244.64.0/18 overlaps pool 10.244.0.0/16"),
        "{text}"
    );
    assert!(text.contains("block size 8 is outside 20-32"), "{text}");
}

async fn assign_from_the_nodes_block<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    let got = ipam
        .assign("node-a", "pod-1.eth0", Family::Ipv4, 1)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let a = &got[0];
    assert!(!a.borrowed);
    assert_eq!(a.pool, net("10.244.0.0/16"));
    assert_eq!(a.block.prefix_len(), 26);
    assert!(a.block.contains(&a.address));
    let mine = ipam.node_allocations("node-a").await.unwrap();
    assert_eq!(
        mine.blocks.iter().copied().collect::<Vec<_>>(),
        vec![a.block]
    );
    assert!(mine.borrowed.is_empty());
    // Same node, next pod: same block, another address.
    let b = ipam
        .assign("node-a", "pod-2.eth0", Family::Ipv4, 1)
        .await
        .unwrap();
    assert_eq!(b[0].block, a.block);
    assert_ne!(b[0].address, a.address);
    // Another node gets another block.
    let c = ipam
        .assign("node-b", "pod-3.eth0", Family::Ipv4, 1)
        .await
        .unwrap();
    assert_ne!(c[0].block, a.block);
    assert_eq!(ipam.addresses_of("pod-1.eth0").await.unwrap(), got);
    let info = ipam.address_info(a.address).await.unwrap().unwrap();
    assert_eq!(
        (info.handle.as_str(), info.node.as_deref()),
        ("pod-1.eth0", Some("node-a"))
    );
    assert_clean(&ipam).await;
}

async fn assign_many_claims_more_blocks<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(pool("10.1.0.0/24", 28)).await.unwrap();
    let got = ipam
        .assign("node-a", "big", Family::Ipv4, 20)
        .await
        .unwrap();
    let distinct: HashSet<_> = got.iter().map(|a| a.address).collect();
    assert_eq!(distinct.len(), 20);
    assert_eq!(
        ipam.node_allocations("node-a").await.unwrap().blocks.len(),
        2
    );
    let released = ipam.release_handle("big").await.unwrap();
    assert_eq!(released.len(), 20);
    assert!(ipam.addresses_of("big").await.unwrap().is_empty());
    assert!(ipam.release_handle("big").await.unwrap().is_empty());
    assert_clean(&ipam).await;
    let empty = ipam.release_empty_blocks("node-a").await.unwrap();
    assert_eq!(empty.len(), 2);
    assert!(
        ipam.node_allocations("node-a")
            .await
            .unwrap()
            .blocks
            .is_empty()
    );
    assert_clean(&ipam).await;
}

async fn stale_release_cannot_free_a_reused_address<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(pool("10.2.0.0/32", 32)).await.unwrap();
    let first = ipam.assign("node-a", "h1", Family::Ipv4, 1).await.unwrap()[0].clone();
    ipam.release_address(first.address, Some(first.sequence))
        .await
        .unwrap();
    let second = ipam.assign("node-a", "h2", Family::Ipv4, 1).await.unwrap()[0].clone();
    assert_eq!(second.address, first.address);
    assert!(second.sequence > first.sequence);
    let err = ipam
        .release_address(first.address, Some(first.sequence))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::StaleSequence { .. }), "{err}");
    assert_eq!(ipam.addresses_of("h2").await.unwrap().len(), 1);
    let released = ipam
        .release_address(second.address, Some(second.sequence))
        .await
        .unwrap();
    assert_eq!(released.handle, "h2");
    let err = ipam
        .release_address(second.address, None)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::NotAllocated(_)), "{err}");
    assert!(matches!(
        ipam.release_address(ip("192.0.2.1"), None)
            .await
            .unwrap_err(),
        IpamError::NotInPool(_)
    ));
    assert_clean(&ipam).await;
}

/// Pool of two /28 blocks: node-a and node-b each own one.
async fn two_nodes_two_blocks<S: Datastore>(ipam: &Ipam<S>) -> (IpNet, IpNet) {
    ipam.add_pool(pool("10.3.0.0/27", 28)).await.unwrap();
    let a = ipam.assign("node-a", "a-0", Family::Ipv4, 1).await.unwrap()[0].block;
    let b = ipam.assign("node-b", "b-0", Family::Ipv4, 1).await.unwrap()[0].block;
    assert_ne!(a, b);
    (a, b)
}

async fn borrowing_when_no_block_is_free<S: Datastore>(ipam: Ipam<S>) {
    let (block_a, block_b) = two_nodes_two_blocks(&ipam).await;
    ipam.assign("node-a", "a-fill", Family::Ipv4, 15)
        .await
        .unwrap();
    let borrowed = ipam
        .assign("node-a", "a-extra", Family::Ipv4, 1)
        .await
        .unwrap()[0]
        .clone();
    assert!(borrowed.borrowed);
    assert_eq!(borrowed.block, block_b);
    let mine = ipam.node_allocations("node-a").await.unwrap();
    assert_eq!(
        mine.blocks.iter().copied().collect::<Vec<_>>(),
        vec![block_a]
    );
    assert_eq!(
        mine.borrowed.iter().copied().collect::<Vec<_>>(),
        vec![borrowed.address]
    );
    let info = ipam.address_info(borrowed.address).await.unwrap().unwrap();
    assert_eq!(info.node.as_deref(), Some("node-a"));
    assert_eq!(info.block_owner.as_deref(), Some("node-b"));
    let usage = ipam.usage().await.unwrap();
    assert_eq!(usage.borrowed.len(), 1);

    // strict_affinity: a clear error instead.
    ipam.set_config(&IpamConfig {
        strict_affinity: true,
        max_blocks_per_node: 0,
    })
    .await
    .unwrap();
    let err = ipam
        .assign("node-a", "a-strict", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::StrictAffinity { .. }), "{err}");
    assert!(err.to_string().contains("strict_affinity"), "{err}");
    assert!(ipam.addresses_of("a-strict").await.unwrap().is_empty());
    assert_clean(&ipam).await;
}

async fn exhausted_pool_is_a_clear_error_and_writes_nothing<S: Datastore>(ipam: Ipam<S>) {
    two_nodes_two_blocks(&ipam).await;
    ipam.assign("node-a", "a-fill", Family::Ipv4, 15)
        .await
        .unwrap();
    // 15 addresses are free (in node-b's block); ask for 16.
    let before = ipam.usage().await.unwrap();
    let err = ipam
        .assign("node-a", "too-many", Family::Ipv4, 16)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::Exhausted { .. }), "{err}");
    assert!(err.to_string().contains("exhausted"), "{err}");
    assert!(ipam.addresses_of("too-many").await.unwrap().is_empty());
    assert_eq!(ipam.usage().await.unwrap().pools, before.pools);
    assert_clean(&ipam).await;
}

async fn max_blocks_per_node<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(pool("10.4.0.0/24", 28)).await.unwrap();
    ipam.set_config(&IpamConfig {
        strict_affinity: true,
        max_blocks_per_node: 1,
    })
    .await
    .unwrap();
    ipam.assign("node-a", "fill", Family::Ipv4, 16)
        .await
        .unwrap();
    let err = ipam
        .assign("node-a", "more", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_blocks_per_node"), "{err}");
    assert_eq!(
        ipam.node_allocations("node-a").await.unwrap().blocks.len(),
        1
    );
    assert_clean(&ipam).await;
}

async fn assign_a_given_address<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.5.0.0/16"))).await.unwrap();
    let got = ipam
        .assign_address("node-a", "tunnel", ip("10.5.7.9"))
        .await
        .unwrap();
    assert_eq!(got.block, net("10.5.7.0/26"));
    assert!(!got.borrowed);
    // Idempotent for the same handle, refused for another.
    assert_eq!(
        ipam.assign_address("node-a", "tunnel", ip("10.5.7.9"))
            .await
            .unwrap(),
        got
    );
    let err = ipam
        .assign_address("node-b", "other", ip("10.5.7.9"))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::AddressInUse { .. }), "{err}");
    // node-b taking an address in node-a's block borrows it.
    let borrowed = ipam
        .assign_address("node-b", "other", ip("10.5.7.10"))
        .await
        .unwrap();
    assert!(borrowed.borrowed);
    let err = ipam
        .assign_address("node-a", "x", ip("192.0.2.1"))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::NotInPool(_)), "{err}");
    assert_clean(&ipam).await;
}

async fn release_of_a_deleted_node<S: Datastore>(ipam: Ipam<S>) {
    let (block_a, block_b) = two_nodes_two_blocks(&ipam).await;
    support::create_nodes(ipam.store().url(), &["node-a"]);
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
    assert!(
        ipam.node_allocations("node-a")
            .await
            .unwrap()
            .blocks
            .is_empty()
    );
    assert_clean(&ipam).await;
    // The last borrowed address released: the ownerless block goes.
    ipam.release_handle("b-borrow").await.unwrap();
    let usage = ipam.usage().await.unwrap();
    assert_eq!(usage.blocks.len(), 1);
    assert_eq!(usage.blocks[0].cidr, block_b);
    assert_clean(&ipam).await;
}

async fn crash_between_claim_phases_is_repaired<S: Datastore>(ipam: Ipam<S>) {
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

async fn check_finds_each_inconsistency<S: Datastore>(ipam: Ipam<S>) {
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

async fn ipv6_pools<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("fd00:10:244::/56")))
        .await
        .unwrap();
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    let v6 = ipam.assign("node-a", "pod", Family::Ipv6, 2).await.unwrap();
    let v4 = ipam.assign("node-a", "pod", Family::Ipv4, 1).await.unwrap();
    assert!(
        v6.iter()
            .all(|a| a.address.is_ipv6() && a.block.prefix_len() == 122)
    );
    assert!(net("fd00:10:244::/56").contains(&v6[0].address));
    assert!(v4[0].address.is_ipv4());
    assert_eq!(ipam.addresses_of("pod").await.unwrap().len(), 3);
    assert_eq!(
        ipam.node_allocations("node-a").await.unwrap().blocks.len(),
        2
    );
    assert_eq!(ipam.release_handle("pod").await.unwrap().len(), 3);
    let usage = ipam.usage().await.unwrap();
    assert_eq!(usage.pools[1].total, 1u128 << 72);
    assert_clean(&ipam).await;
}

async fn concurrent_assigns_are_distinct<S: Datastore + Clone>(ipam: Ipam<S>) {
    ipam.add_pool(pool("10.8.0.0/22", 28)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let ipam = ipam.clone();
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{}", i % 3);
            ipam.assign(&node, &format!("pod-{i}"), Family::Ipv4, 1)
                .await
                .unwrap()[0]
                .address
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        assert!(seen.insert(task.await.unwrap()));
    }
    assert_eq!(seen.len(), 60);
    assert_clean(&ipam).await;
}

/// `check` reads at one revision: assignments and releases running meanwhile (with
/// block claims: /29 blocks fill fast) never make it report a problem.
async fn check_is_consistent_under_concurrent_assignments<S: Datastore + Clone>(ipam: Ipam<S>) {
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

async fn node_selector_disabled_and_delete<S: Datastore>(ipam: Ipam<S>) {
    let mut selective = pool("10.9.0.0/24", 28);
    selective.node_selector.insert("zone".into(), "a".into());
    ipam.add_pool(selective).await.unwrap();
    let err = ipam
        .assign("node-a", "p", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no enabled IPv4 pool selects node node-a");
    support::create_nodes(ipam.store().url(), &["node-a"]);
    ipam.register_node(&Node {
        name: "node-a".into(),
        addresses: vec![],
        asn: 64512,
        labels: [("zone".to_string(), "a".to_string())]
            .into_iter()
            .collect(),
        vteps: vec![],
    })
    .await
    .unwrap();
    let got = ipam.assign("node-a", "p", Family::Ipv4, 1).await.unwrap();
    ipam.set_pool_disabled(net("10.9.0.0/24"), true)
        .await
        .unwrap();
    assert!(matches!(
        ipam.assign("node-a", "q", Family::Ipv4, 1)
            .await
            .unwrap_err(),
        IpamError::NoPool { .. }
    ));
    let err = ipam.delete_pool(net("10.9.0.0/24")).await.unwrap_err();
    assert!(
        matches!(err, IpamError::PoolInUse { in_use: 1, .. }),
        "{err}"
    );
    ipam.release_address(got[0].address, None).await.unwrap();
    ipam.delete_pool(net("10.9.0.0/24")).await.unwrap();
    assert!(ipam.pools().await.unwrap().is_empty());
    assert!(ipam.usage().await.unwrap().blocks.is_empty());
    assert_clean(&ipam).await;
    assert!(matches!(
        ipam.delete_pool(net("10.9.0.0/24")).await.unwrap_err(),
        IpamError::NoSuchPool(_)
    ));
}

async fn usage_table<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    ipam.assign("node-a", "p", Family::Ipv4, 6).await.unwrap();
    let usage = ipam.usage().await.unwrap();
    // The numbers bgpctl's table shows (bgpctl tests the table itself).
    let pool = &usage.pools[0];
    assert_eq!(
        (pool.cidr, pool.total, pool.in_use, pool.free),
        (net("10.244.0.0/16"), 65536, 6, 65530)
    );
    let block = &usage.blocks[0];
    assert_eq!((block.total, block.in_use, block.free), (64, 6, 58));
    let json = serde_json::to_value(&usage).unwrap();
    assert_eq!(json["pools"][0]["in_use"], 6);
    assert_eq!(json["blocks"][0]["node"], "node-a");
    assert_eq!(json["blocks"][0]["free"], 58);
}

async fn node_registry_and_watches<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    support::create_nodes(ipam.store().url(), &["node-a"]);
    let mut nodes = ipam.watch_nodes().await.unwrap();
    let mut changes = ipam.watch().await.unwrap();
    let node = Node {
        name: "node-a".into(),
        addresses: vec![ip("192.0.2.10"), ip("2001:db8::10")],
        asn: 64512,
        labels: [("rack".to_string(), "r1".to_string())]
            .into_iter()
            .collect(),
        vteps: vec![],
    };
    ipam.register_node(&node).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), nodes.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ipam.nodes().await.unwrap(), vec![node.clone()]);
    // bgpd at start: a block for the node before its first pod, seen by the watch.
    let blocks = ipam.ensure_blocks("node-a").await.unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(ipam.ensure_blocks("node-a").await.unwrap(), blocks);
    let revision = tokio::time::timeout(Duration::from_secs(30), changes.changed())
        .await
        .unwrap()
        .unwrap();
    support::eventually("the watch to report the claim", || async {
        ipam.node_allocations("node-a").await.unwrap().revision >= revision
    })
    .await;
    ipam.deregister_node("node-a").await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), nodes.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(ipam.nodes().await.unwrap().is_empty());
    // A leave keeps the node's blocks; release_node frees them.
    assert_eq!(
        ipam.node_allocations("node-a").await.unwrap().blocks,
        blocks
    );
    ipam.release_node("node-a").await.unwrap();
    assert!(
        ipam.node_allocations("node-a")
            .await
            .unwrap()
            .blocks
            .is_empty()
    );
    assert_clean(&ipam).await;
}

async fn bad_names_are_refused<S: Datastore>(ipam: Ipam<S>) {
    ipam.add_pool(Pool::new(net("10.244.0.0/16")))
        .await
        .unwrap();
    let err = ipam
        .assign("node/a", "h", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid node name \"node/a\""),
        "{err}"
    );
    let err = ipam
        .assign("node-a", "", Family::Ipv4, 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid handle"), "{err}");
    let err = ipam
        .assign("node-a", "h", Family::Ipv4, 100_000)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::TooMany { .. }), "{err}");
}

macro_rules! battery {
    ($store:ident, $($test:ident),* $(,)?) => {
        mod $store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some((store, _guard)) = super::support::$store().await else { return };
                    super::$test(ipam::Ipam::new(store)).await;
                }
            )*
        }
    };
}

macro_rules! batteries {
    ($($test:ident),* $(,)?) => {
        battery!(sqlite, $($test),*);
        battery!(etcd, $($test),*);
        battery!(kubernetes, $($test),*);
    };
}

batteries!(
    bad_pools_are_refused,
    assign_from_the_nodes_block,
    assign_many_claims_more_blocks,
    stale_release_cannot_free_a_reused_address,
    borrowing_when_no_block_is_free,
    exhausted_pool_is_a_clear_error_and_writes_nothing,
    max_blocks_per_node,
    assign_a_given_address,
    release_of_a_deleted_node,
    crash_between_claim_phases_is_repaired,
    check_finds_each_inconsistency,
    ipv6_pools,
    concurrent_assigns_are_distinct,
    check_is_consistent_under_concurrent_assignments,
    node_selector_disabled_and_delete,
    usage_table,
    node_registry_and_watches,
    bad_names_are_refused,
);
