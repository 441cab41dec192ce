//! `ipam`: assign + release of one IPv4 address (`assign(node, handle, IPv4, 1)` then
//! `release_handle(handle)`) on SQLite and on a local etcd, by one node and by three nodes
//! at once on the same pool and store (each node its own client, so they contend for the
//! store and its revisions). Figures: pairs per second (all nodes together) and the p99 of
//! one pair's latency. No other daemon manages pod addresses, so there are no ratios:
//! Calico's IPAM needs a Kubernetes API server this machine does not run.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use ipam::{Family, Ipam, Pool};

use super::Context;
use crate::report::{Collector, Table, Unit};
use crate::stats::percentile;

const SQLITE: &str = "SQLite";
const ETCD: &str = "etcd";

pub fn run(context: &Context) -> Result<Table> {
    let mut collector = Collector::default();
    let sqlite_pairs = context.size(2000, 100);
    let etcd_pairs = context.size(400, 40);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the IPAM runtime")?;
    let etcd = match lab::check(lab::Prereq::Etcd) {
        Ok(()) => Some(lab::Etcd::on_host()?),
        Err(reason) => bail!("etcd is needed: {reason}"),
    };
    for nodes in [1usize, 3] {
        collector.chart(&rate_figure(nodes));
    }
    for run in 1..=context.runs() {
        for nodes in [1usize, 3] {
            context.progress_run(SQLITE, run, format!("{nodes} node(s)"));
            let dir = tempfile::tempdir().context("a directory for the SQLite store")?;
            let url = format!("sqlite://{}/ipam.db", dir.path().display());
            let (rate, p99) = runtime.block_on(measure(&url, nodes, sqlite_pairs))?;
            collector.add(&rate_figure(nodes), Unit::PerSecond, SQLITE, rate);
            collector.add(&p99_figure(nodes), Unit::Milliseconds, SQLITE, p99);

            if let Some(etcd) = &etcd {
                context.progress_run(ETCD, run, format!("{nodes} node(s)"));
                // The same throw-away etcd, emptied: a clean store each time.
                etcd.etcdctl(&["del", "", "--from-key"])?;
                let url = etcd.endpoint().replace("http://", "etcd://");
                let (rate, p99) = runtime.block_on(measure(&url, nodes, etcd_pairs))?;
                collector.add(&rate_figure(nodes), Unit::PerSecond, ETCD, rate);
                collector.add(&p99_figure(nodes), Unit::Milliseconds, ETCD, p99);
            }
        }
    }
    let subjects = vec![SQLITE.to_owned(), ETCD.to_owned()];
    Ok(Table {
        scenario: "ipam".into(),
        title: "ipam: assign + release throughput and latency".into(),
        notes: vec![format!(
            "Each pair assigns one IPv4 address to a handle and releases the handle, on one \
             /16 pool with /26 blocks. One node runs {sqlite_pairs} pairs on SQLite and \
             {etcd_pairs} on etcd (a single local member); with three nodes each runs that \
             many at once, with its own client, on the same store. Warm-up pairs (which claim \
             each node's block) are not counted. The harness runs on the generator CPU, \
             etcd and SQLite unpinned. No anchor runs IPAM (Calico's needs a Kubernetes API \
             server), so there are no ratio columns."
        )],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios: Vec::new(),
        chart_axis: "assign + release pairs per second".into(),
    })
}

fn rate_figure(nodes: usize) -> String {
    format!(
        "{nodes} node{}: pairs per second",
        if nodes == 1 { "" } else { "s" }
    )
}

fn p99_figure(nodes: usize) -> String {
    format!(
        "{nodes} node{}: p99 latency of a pair",
        if nodes == 1 { "" } else { "s" }
    )
}

/// `nodes` clients on the store at `url` doing `pairs` pairs each; returns (pairs per
/// second over all clients, p99 of one pair in ms).
async fn measure(url: &str, nodes: usize, pairs: usize) -> Result<(f64, f64)> {
    let admin = ipam::connect(url)
        .await
        .with_context(|| format!("opening {url}"))?;
    admin
        .add_pool(Pool::new("10.64.0.0/16".parse().context("pool")?))
        .await
        .context("adding the pool")?;
    let mut clients = Vec::new();
    for node in 0..nodes {
        let client = ipam::connect(url)
            .await
            .with_context(|| format!("opening {url}"))?;
        let name = format!("node-{node}");
        // Warm up: the block claim and the connection, not counted.
        for i in 0..20 {
            pair(&client, &name, &format!("warm-{node}-{i}")).await?;
        }
        clients.push((client, name));
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(client, name)| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(pairs);
                for i in 0..pairs {
                    let t = Instant::now();
                    pair(&client, &name, &format!("pod-{name}-{i}")).await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies: Vec<f64> = Vec::new();
    for task in tasks {
        let done = task.await.context("a client task panicked")??;
        latencies.extend(done.iter().map(|d| d.as_secs_f64() * 1000.0));
    }
    let elapsed = start.elapsed().max(Duration::from_micros(1));
    let report = admin.check().await.context("checking the store")?;
    if !report.is_clean() {
        bail!("the store is not clean after the run: {report:?}");
    }
    let p99 = percentile(&latencies, 0.99).unwrap_or(0.0);
    Ok((latencies.len() as f64 / elapsed.as_secs_f64(), p99))
}

async fn pair<S: ipam::Datastore>(ipam: &Ipam<S>, node: &str, handle: &str) -> Result<()> {
    let assigned = ipam
        .assign(node, handle, Family::Ipv4, 1)
        .await
        .with_context(|| format!("assigning for {handle}"))?;
    if assigned.len() != 1 {
        bail!("{handle}: {} addresses assigned, wanted 1", assigned.len());
    }
    let released = ipam
        .release_handle(handle)
        .await
        .with_context(|| format!("releasing {handle}"))?;
    if released.len() != 1 {
        bail!("{handle}: {} addresses released, wanted 1", released.len());
    }
    Ok(())
}
