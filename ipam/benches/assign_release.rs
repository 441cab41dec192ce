//! Assign-plus-release latency and throughput on each datastore (a custom harness:
//! criterion reports no percentiles). One client, one node, one address per pair:
//! `assign(node, handle, IPv4, 1)` then `release_handle(handle)`.
//!
//! `cargo bench -p ipam --bench assign_release` prints, per store, pairs per second,
//! the median and the p99 of one pair. Without `--bench` (as `cargo test
//! --all-targets` runs it) it does a short smoke run.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ipam::store::Datastore;
use ipam::{Family, Ipam, Pool};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ipam.db", dir.path().display());
        let store = ipam::store::SqliteStore::open(&url).await.unwrap();
        run("sqlite", store, if full { 20_000 } else { 50 }).await;

        match lab::Etcd::on_host() {
            Ok(etcd) => {
                let url = etcd.endpoint().replace("http://", "etcd://");
                let store = ipam::store::EtcdStore::open(&url).await.unwrap();
                run("etcd", store, if full { 3_000 } else { 20 }).await;
            }
            Err(e) => println!("etcd: skipped ({e})"),
        }
    });
}

async fn run<S: Datastore>(name: &str, store: S, pairs: usize) {
    let ipam = Ipam::new(store);
    ipam.add_pool(Pool::new("10.0.0.0/16".parse().unwrap()))
        .await
        .unwrap();
    // Warm up: the node's block is claimed once, caches and connections are hot.
    for i in 0..pairs.min(200) {
        pair(&ipam, &format!("warm-{i}")).await;
    }
    let mut samples = Vec::with_capacity(pairs);
    let start = Instant::now();
    for i in 0..pairs {
        let t = Instant::now();
        pair(&ipam, &format!("pod-{i}.eth0")).await;
        samples.push(t.elapsed());
    }
    let total = start.elapsed();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{name}: {pairs} assign+release pairs in {:.2} s: {:.0} pairs/s, median {}, p99 {}, max {}",
        total.as_secs_f64(),
        pairs as f64 / total.as_secs_f64(),
        show(at(0.5)),
        show(at(0.99)),
        show(at(1.0)),
    );
    assert!(ipam.check().await.unwrap().is_clean());
}

async fn pair<S: Datastore>(ipam: &Ipam<S>, handle: &str) {
    let got = ipam
        .assign("node-a", handle, Family::Ipv4, 1)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(ipam.release_handle(handle).await.unwrap().len(), 1);
}

fn show(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
