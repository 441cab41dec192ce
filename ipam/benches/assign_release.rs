//! Block claim, assign and release latency on each datastore, SQLite, etcd and the
//! Kubernetes store (a real kube-apiserver on a local etcd, through
//! `lab::kube::ControlPlane`), in one run (a custom harness: criterion reports no
//! percentiles). One client:
//!
//! - claim: `ensure_blocks(node)` for a new node each time (its first block: pending
//!   affinity, block, confirmed affinity), in a pool of 1024 blocks;
//! - assign and release: `assign(node, handle, IPv4, 1)` then `release_handle(handle)`
//!   on a node that owns its block, each timed, and the pair.
//!
//! `cargo bench -p ipam --bench assign_release` prints, per store, the p50 and p99 of
//! each operation, the pairs per second, and each store's p50 and p99 as a ratio of
//! SQLite's. Without `--bench` (as `cargo test --all-targets` runs it) it does a short
//! smoke run. A store whose prerequisite is missing is skipped with a line saying
//! why (etcd, or the API server not built: `scripts/kube-apiserver`).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ipam::store::Datastore;
use ipam::{Family, Ipam, Pool};

/// How many of each operation a store is measured with (full run, smoke run).
const CLAIMS: (usize, usize) = (300, 5);
const PAIRS: [(usize, usize); 3] = [(5_000, 30), (2_000, 20), (1_000, 10)];

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let count = |(full_count, smoke): (usize, usize)| if full { full_count } else { smoke };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut results = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ipam.db", dir.path().display());
        let store = ipam::store::SqliteStore::open(&url).await.unwrap();
        results.push(run("sqlite", store, count(CLAIMS), count(PAIRS[0])).await);

        match lab::Etcd::on_host() {
            Ok(etcd) => {
                let url = etcd.endpoint().replace("http://", "etcd://");
                let store = ipam::store::EtcdStore::open(&url).await.unwrap();
                results.push(run("etcd", store, count(CLAIMS), count(PAIRS[1])).await);
            }
            Err(e) => println!("etcd: skipped ({e})"),
        }

        match kubernetes() {
            Ok(control_plane) => {
                let url = format!("kubernetes://{}", control_plane.kubeconfig().display());
                let store = ipam::store::KubernetesStore::open(&url).await.unwrap();
                results.push(run("kubernetes", store, count(CLAIMS), count(PAIRS[2])).await);
            }
            Err(e) => println!("kubernetes: skipped ({e})"),
        }
        ratios(&results);
    });
}

/// A control plane with the IPAM CRDs established.
fn kubernetes() -> lab::Result<lab::kube::ControlPlane> {
    let control_plane = lab::kube::ControlPlane::on_host()?;
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": ipam::kubernetes::crds(),
    });
    control_plane.kubectl_input(&["apply", "-f", "-"], &list.to_string())?;
    control_plane.kubectl(&[
        "wait",
        "--for=condition=established",
        "--timeout=60s",
        "crd",
        "--all",
    ])?;
    Ok(control_plane)
}

/// One store's latencies, sorted, by operation.
struct Measured {
    store: &'static str,
    claim: Vec<Duration>,
    assign: Vec<Duration>,
    release: Vec<Duration>,
    pair: Vec<Duration>,
}

async fn run<S: Datastore>(store: &'static str, s: S, claims: usize, pairs: usize) -> Measured {
    let ipam = Ipam::new(s);
    let mut pool = Pool::new("10.0.0.0/16".parse().unwrap());
    pool.block_size = 26; // 1024 blocks
    ipam.add_pool(pool).await.unwrap();

    let mut claim = Vec::with_capacity(claims);
    for i in 0..claims {
        let t = Instant::now();
        let blocks = ipam.ensure_blocks(&format!("node-{i}")).await.unwrap();
        claim.push(t.elapsed());
        assert_eq!(blocks.len(), 1);
    }

    // Warm up: connections and the store's caches are hot.
    for i in 0..pairs.min(100) {
        let handle = format!("warm-{i}");
        ipam.assign("node-0", &handle, Family::Ipv4, 1)
            .await
            .unwrap();
        ipam.release_handle(&handle).await.unwrap();
    }
    let (mut assign, mut release, mut pair) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    for i in 0..pairs {
        let handle = format!("pod-{i}.eth0");
        let t = Instant::now();
        let got = ipam
            .assign("node-0", &handle, Family::Ipv4, 1)
            .await
            .unwrap();
        let assigned = t.elapsed();
        assert_eq!(got.len(), 1);
        let r = Instant::now();
        assert_eq!(ipam.release_handle(&handle).await.unwrap().len(), 1);
        release.push(r.elapsed());
        assign.push(assigned);
        pair.push(t.elapsed());
    }
    let total = start.elapsed();
    let report = ipam.check().await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
    let mut measured = Measured {
        store,
        claim,
        assign,
        release,
        pair,
    };
    for samples in [
        &mut measured.claim,
        &mut measured.assign,
        &mut measured.release,
        &mut measured.pair,
    ] {
        samples.sort();
    }
    println!(
        "{store}: {claims} block claims: p50 {}, p99 {}; {pairs} assign+release pairs in {:.2} s ({:.0} pairs/s): assign p50 {}, p99 {}; release p50 {}, p99 {}; pair p50 {}, p99 {}",
        show(at(&measured.claim, 0.5)),
        show(at(&measured.claim, 0.99)),
        total.as_secs_f64(),
        pairs as f64 / total.as_secs_f64(),
        show(at(&measured.assign, 0.5)),
        show(at(&measured.assign, 0.99)),
        show(at(&measured.release, 0.5)),
        show(at(&measured.release, 0.99)),
        show(at(&measured.pair, 0.5)),
        show(at(&measured.pair, 0.99)),
    );
    measured
}

/// Each store's p50 and p99 as a multiple of the first store's (SQLite's).
fn ratios(results: &[Measured]) {
    let Some(base) = results.first() else { return };
    for other in &results[1..] {
        let ratio = |of: fn(&Measured) -> &Vec<Duration>, q: f64| {
            at(of(other), q).as_secs_f64() / at(of(base), q).as_secs_f64()
        };
        println!(
            "{} / {}: claim p50 x{:.1}, p99 x{:.1}; assign p50 x{:.1}, p99 x{:.1}; release p50 x{:.1}, p99 x{:.1}",
            other.store,
            base.store,
            ratio(|m| &m.claim, 0.5),
            ratio(|m| &m.claim, 0.99),
            ratio(|m| &m.assign, 0.5),
            ratio(|m| &m.assign, 0.99),
            ratio(|m| &m.release, 0.5),
            ratio(|m| &m.release, 0.99),
        );
    }
}

/// The `q` quantile of sorted samples.
fn at(samples: &[Duration], q: f64) -> Duration {
    let index = ((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1));
    samples.get(index).copied().unwrap_or_default()
}

fn show(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
