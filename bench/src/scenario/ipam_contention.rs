//! `scale-ipam` (issue 18): IPAM under contention. N simulated nodes (5000; 200 with
//! `--quick`) join at once and each claims its first block the way a joining node's
//! bgpd does (`Ipam::ensure_blocks`, what bgpd's IPAM task calls at start), at most
//! [`IN_FLIGHT`] claims at a time: that many workers, each with its own connection to
//! the store (as that many bgpd processes would have), take the next node until every
//! node has claimed. One IPv4 pool of [`POOL`] with /26 blocks (8192 blocks, room for
//! 5000 and more).
//!
//! Three stores, each fresh for every run: etcd (one local member), the Kubernetes
//! datastore (custom resources through a real kube-apiserver over its own etcd, the
//! shipped CRDs applied, the claims started once its watch caches of the listed
//! resources serve LISTs) and SQLite (one file on this host, for reference). Figures per
//! store: the p50 and p99 of one node's claim, the time until every node has claimed,
//! store operations per claim (`ipam::store::operations`: every operation of the
//! process over the claims, connections left out), conflicts (writes whose
//! compare-and-swap failed) and retries (`ipam::retries`: attempts that backed off and
//! read again); where the time goes: the CPU per claim of the claimers (this process),
//! of etcd and of kube-apiserver (/proc), and on Kubernetes the API server's own
//! count of the requests it served (`apiserver_request_total`), LISTs apart.
//!
//! Afterwards the run fails unless `ipam check` (the audit `bgpctl ipam check` prints)
//! finds no problem, every node owns exactly one block, and no block is affine to two
//! nodes: Calico's failure under contention (calico#6001, libcalico-go#778), counted
//! from the store's own records (every block's owner, every confirmed affinity), not
//! through the allocator.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use ipam::block::Block;
use ipam::store::operations::{self, Operation, OperationResult};
use ipam::{Affinity, AffinityState, Datastore, Pool};
use ipnet::IpNet;
use lab::kube_metrics::RequestCounts;

use super::Context;
use crate::report::{Collector, Table, Unit};
use crate::stats::percentile;
use crate::system;

/// Claims in flight at most (workers, each with its own connection).
pub const IN_FLIGHT: usize = 200;
/// The pool: a /13 of /26 blocks is 8192 blocks.
const POOL: &str = "10.128.0.0/13";
const BLOCK_SIZE: u8 = 26;

const ETCD: &str = "etcd";
const KUBERNETES: &str = "Kubernetes";
const SQLITE: &str = "SQLite";

const P50: &str = "claim time, p50";
const P99: &str = "claim time, p99";
const ALL: &str = "every node claimed";
const RATE: &str = "claims per second";
const OPERATIONS: &str = "store operations per claim";
const CONFLICTS: &str = "writes that lost a compare-and-swap";
const RETRIES: &str = "attempts retried";
const REQUESTS: &str = "API server requests per claim";
const LISTS: &str = "API server LISTs per claim";
const CLAIMERS_CPU: &str = "claimers' CPU per claim";
const ETCD_CPU: &str = "etcd CPU per claim";
const APISERVER_CPU: &str = "kube-apiserver CPU per claim";
const PROBLEMS: &str = "ipam check: problems";
const TWO_NODES: &str = "blocks affine to two nodes (calico#6001)";

pub fn run(context: &Context) -> Result<Table> {
    let nodes = match context.options.sizes.as_deref() {
        None => context.size(5000, 200),
        Some(&[nodes]) => nodes,
        Some(sizes) => {
            bail!("--sizes: scale-ipam runs one size (the nodes that claim), not {sizes:?}")
        }
    };
    let mut collector = Collector::default();
    for (figure, unit) in [
        (P50, Unit::Milliseconds),
        (P99, Unit::Milliseconds),
        (ALL, Unit::Seconds),
        (RATE, Unit::PerSecond),
        (OPERATIONS, Unit::Average),
        (REQUESTS, Unit::Average),
        (LISTS, Unit::Average),
        (CONFLICTS, Unit::Count),
        (RETRIES, Unit::Count),
        (CLAIMERS_CPU, Unit::Milliseconds),
        (ETCD_CPU, Unit::Milliseconds),
        (APISERVER_CPU, Unit::Milliseconds),
        (PROBLEMS, Unit::Count),
        (TWO_NODES, Unit::Count),
    ] {
        collector.declare(figure, unit);
    }
    for figure in [P50, P99] {
        collector.chart(figure);
    }
    lab::check(lab::Prereq::Etcd).map_err(|reason| anyhow::anyhow!("etcd is needed: {reason}"))?;
    lab::check(lab::Prereq::KubeApiserver)
        .map_err(|reason| anyhow::anyhow!("a kube-apiserver is needed: {reason}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the claimers' runtime")?;
    for run in 1..=context.runs() {
        for store in [ETCD, KUBERNETES, SQLITE] {
            context.progress(format!(
                "run {run}/{}: {nodes} nodes claim on {store}",
                context.runs()
            ));
            let fresh = Fresh::start(store)?;
            let result = runtime
                .block_on(contend(&fresh, nodes))
                .with_context(|| format!("{nodes} nodes claiming on {store}"))?;
            context.progress(format!(
                "{store}: p50 {:.1} ms, p99 {:.1} ms, all in {:.1} s, {:.1} operations and \
                 {:.2} retries per claim",
                result.p50,
                result.p99,
                result.all,
                result.operations,
                result.retries as f64 / nodes as f64
            ));
            if let Some(requests) = &result.requests {
                context.progress(format!("{store}: API server requests: {requests}"));
            }
            result.add_to(&mut collector, store, nodes);
            result.verdict(store)?;
        }
    }
    let subjects: Vec<String> = [ETCD, KUBERNETES, SQLITE].map(String::from).to_vec();
    Ok(Table {
        scenario: "scale-ipam".into(),
        title: format!("scale-ipam: {nodes} nodes claim their first block, {IN_FLIGHT} at once"),
        notes: vec![
            format!(
                "{nodes} simulated nodes each claim their first block as a joining bgpd does \
                 (`Ipam::ensure_blocks`), {IN_FLIGHT} claims in flight at most: {IN_FLIGHT} \
                 workers, each with its own connection to the store, take the next node until \
                 every node has claimed. One pool, {POOL} with /{BLOCK_SIZE} blocks. Each store \
                 is fresh for each run: etcd (one local member), the Kubernetes datastore \
                 (custom resources through a real kube-apiserver and its etcd) and SQLite (one \
                 file, for reference). On Kubernetes the claims start once the API server's \
                 watch caches of the pools and affinities serve LISTs, as in a cluster whose \
                 resources were installed before its nodes joined. The claimers run on the \
                 harness CPU with 2 runtime threads; etcd and kube-apiserver run unpinned, on \
                 both CPUs."
            ),
            String::from(
                "Store operations are every operation the process made during the claims \
                 (`ipam::store::operations`), over the nodes; conflicts are the writes among \
                 them whose compare-and-swap failed; retries are the attempts that backed off \
                 and read again (`ipam::retries`). A run fails unless `ipam check` is clean, \
                 every node owns exactly one block, and no block is affine to two nodes, \
                 counted from the stored blocks and confirmed affinities (Calico's failure, \
                 calico#6001). No other IPAM runs here, so there are no ratio columns.",
            ),
            String::from(
                "Where the time goes: CPU per claim of the claimers (this process), of etcd \
                 and of kube-apiserver, from /proc over the claims; on Kubernetes the requests \
                 the API server counted (`apiserver_request_total`, the IPAM resources and \
                 Nodes), LISTs apart.",
            ),
        ],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios: Vec::new(),
        chart_axis: "claim time (ms)".into(),
    })
}

/// A fresh store and what keeps it alive (stopped, or its file removed, on drop).
struct Fresh {
    url: String,
    etcd: Option<lab::Etcd>,
    control_plane: Option<lab::kube::ControlPlane>,
    _dir: Option<tempfile::TempDir>,
}

impl Fresh {
    fn start(store: &str) -> Result<Fresh> {
        let mut fresh = Fresh {
            url: String::new(),
            etcd: None,
            control_plane: None,
            _dir: None,
        };
        match store {
            ETCD => {
                let etcd = system::on_every_cpu(|| lab::Etcd::on_host().context("starting etcd"))?;
                fresh.url = etcd.endpoint().replace("http://", "etcd://");
                fresh.etcd = Some(etcd);
            }
            KUBERNETES => {
                let control_plane = system::on_every_cpu(|| {
                    lab::kube::ControlPlane::on_host().context("starting etcd and kube-apiserver")
                })?;
                control_plane
                    .apply_deploy()
                    .context("applying deploy/crds.yaml and deploy/wren.yaml")?;
                wait_for_watch_caches(&control_plane)?;
                fresh.url = format!("kubernetes://{}", control_plane.kubeconfig().display());
                fresh.control_plane = Some(control_plane);
            }
            _ => {
                let dir = tempfile::tempdir().context("a directory for the SQLite store")?;
                fresh.url = format!("sqlite://{}/ipam.db", dir.path().display());
                fresh._dir = Some(dir);
            }
        }
        Ok(fresh)
    }

    /// The store's server processes: etcd's, and kube-apiserver's on Kubernetes.
    fn servers(&self) -> (Option<u32>, Option<u32>) {
        match &self.control_plane {
            Some(control_plane) => (
                Some(control_plane.etcd().daemon().pid()),
                Some(control_plane.apiserver().pid()),
            ),
            None => (self.etcd.as_ref().map(|etcd| etcd.daemon().pid()), None),
        }
    }

    /// The API server's count of the requests it served, on Kubernetes.
    fn requests(&self) -> Result<Option<RequestCounts>> {
        self.control_plane
            .as_ref()
            .map(|control_plane| {
                RequestCounts::read(control_plane).context("reading the API server's /metrics")
            })
            .transpose()
    }
}

/// The IPAM resources whose LISTs the claims send.
const LISTED: [&str; 2] = ["ippools", "blockaffinities"];

/// Waits until the API server's watch caches of [`LISTED`] serve LISTs, as in a
/// cluster whose resources were installed before its nodes joined (a LIST from a
/// cache still starting is refused with 429, and the store lists from etcd instead).
fn wait_for_watch_caches(control_plane: &lab::kube::ControlPlane) -> Result<()> {
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    for resource in LISTED {
        let path = format!(
            "/apis/{}/v1alpha1/{resource}?resourceVersion=0",
            ipam::kubernetes::GROUP
        );
        loop {
            match control_plane.kubectl(&["get", "--raw", &path]) {
                Ok(_) => break,
                Err(error) if Instant::now() > deadline => {
                    bail!(
                        "the API server's watch cache of {resource} did not start within 60 s: {error}"
                    )
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
            }
        }
    }
    Ok(())
}

/// CPU seconds so far of the claimers (this process), etcd and kube-apiserver.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    claimers: f64,
    etcd: Option<f64>,
    apiserver: Option<f64>,
}

impl Cpu {
    fn read(fresh: &Fresh) -> Result<Cpu> {
        let (etcd, apiserver) = fresh.servers();
        let cpu = |pid: Option<u32>| -> Result<Option<f64>> {
            pid.map(|pid| system::usage(pid).map(|u| u.cpu_seconds))
                .transpose()
        };
        Ok(Cpu {
            claimers: system::usage(std::process::id())?.cpu_seconds,
            etcd: cpu(etcd)?,
            apiserver: cpu(apiserver)?,
        })
    }

    /// Milliseconds per claim since `before`.
    fn per_claim(&self, before: &Cpu, nodes: usize) -> Cpu {
        let per = |now: f64, then: f64| (now - then) * 1000.0 / nodes.max(1) as f64;
        let both = |now: Option<f64>, then: Option<f64>| Some(per(now?, then?));
        Cpu {
            claimers: per(self.claimers, before.claimers),
            etcd: both(self.etcd, before.etcd),
            apiserver: both(self.apiserver, before.apiserver),
        }
    }
}

/// One run's figures on one store.
struct Contention {
    p50: f64,
    p99: f64,
    all: f64,
    operations: f64,
    conflicts: u64,
    retries: u64,
    /// CPU per claim, milliseconds.
    cpu: Cpu,
    /// The API server's requests over the claims (Kubernetes).
    requests: Option<Requests>,
    problems: usize,
    check: String,
    two_nodes: Vec<String>,
    not_one_block: Vec<String>,
}

impl Contention {
    fn add_to(&self, collector: &mut Collector, store: &str, nodes: usize) {
        collector.add(P50, Unit::Milliseconds, store, self.p50);
        collector.add(P99, Unit::Milliseconds, store, self.p99);
        collector.add(ALL, Unit::Seconds, store, self.all);
        collector.add(
            RATE,
            Unit::PerSecond,
            store,
            nodes as f64 / self.all.max(1e-6),
        );
        collector.add(OPERATIONS, Unit::Average, store, self.operations);
        collector.add(CONFLICTS, Unit::Count, store, self.conflicts as f64);
        collector.add(RETRIES, Unit::Count, store, self.retries as f64);
        if let Some(requests) = &self.requests {
            let per = |count: u64| count as f64 / nodes.max(1) as f64;
            collector.add(REQUESTS, Unit::Average, store, per(requests.counts.total()));
            collector.add(LISTS, Unit::Average, store, per(requests.lists()));
        }
        collector.add(CLAIMERS_CPU, Unit::Milliseconds, store, self.cpu.claimers);
        if let Some(etcd) = self.cpu.etcd {
            collector.add(ETCD_CPU, Unit::Milliseconds, store, etcd);
        }
        if let Some(apiserver) = self.cpu.apiserver {
            collector.add(APISERVER_CPU, Unit::Milliseconds, store, apiserver);
        }
        collector.add(PROBLEMS, Unit::Count, store, self.problems as f64);
        collector.add(TWO_NODES, Unit::Count, store, self.two_nodes.len() as f64);
    }

    /// An error naming what is wrong when the store is not consistent.
    fn verdict(&self, store: &str) -> Result<()> {
        if !self.two_nodes.is_empty() {
            bail!(
                "{store}: {} block(s) affine to two nodes: {}",
                self.two_nodes.len(),
                self.two_nodes.join("; ")
            );
        }
        if !self.not_one_block.is_empty() {
            bail!(
                "{store}: {} node(s) do not own exactly one block: {}",
                self.not_one_block.len(),
                first_few(&self.not_one_block)
            );
        }
        if self.problems != 0 {
            bail!("{store}: ipam check is not clean:\n{}", self.check);
        }
        Ok(())
    }
}

/// The API server's requests of the IPAM resources and Nodes over the claims.
struct Requests {
    counts: RequestCounts,
}

impl Requests {
    fn lists(&self) -> u64 {
        self.counts
            .0
            .iter()
            .filter(|(kind, _)| kind.verb == "LIST")
            .map(|(_, count)| count)
            .sum()
    }
}

impl std::fmt::Display for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.counts.render())
    }
}

/// `nodes` nodes claim their first block on the `fresh` store, [`IN_FLIGHT`] at once.
async fn contend(fresh: &Fresh, nodes: usize) -> Result<Contention> {
    let url = fresh.url.as_str();
    let admin = ipam::connect(url)
        .await
        .with_context(|| format!("opening {url}"))?;
    let mut pool = Pool::new(POOL.parse().context("the pool")?);
    pool.block_size = BLOCK_SIZE;
    admin.add_pool(pool).await.context("adding the pool")?;
    let mut workers = Vec::new();
    for _ in 0..IN_FLIGHT.min(nodes) {
        workers.push(
            ipam::connect(url)
                .await
                .with_context(|| format!("opening {url}"))?,
        );
    }
    let next = Arc::new(AtomicUsize::new(0));
    let requests_before = fresh.requests()?;
    let cpu_before = Cpu::read(fresh)?;
    let operations_before = operations::snapshot();
    let retries_before = ipam::retries();
    let started = Instant::now();
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|worker| {
            let next = next.clone();
            tokio::spawn(async move {
                let mut claims = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= nodes {
                        break;
                    }
                    let node = node_name(index);
                    let claim_started = Instant::now();
                    let blocks = worker
                        .ensure_blocks(&node)
                        .await
                        .with_context(|| format!("{node} claiming its first block"))?;
                    claims.push((node, claim_started.elapsed(), blocks));
                }
                anyhow::Ok(claims)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(nodes);
    let mut claimed: BTreeMap<String, BTreeSet<IpNet>> = BTreeMap::new();
    for task in tasks {
        for (node, took, blocks) in task.await.context("a claimer task panicked")?? {
            latencies.push(took.as_secs_f64() * 1000.0);
            claimed.insert(node, blocks);
        }
    }
    let all = started.elapsed().as_secs_f64();
    let retries = ipam::retries() - retries_before;
    let (count, conflicts) = operations_since(&operations_before);
    let cpu = Cpu::read(fresh)?.per_claim(&cpu_before, nodes);
    let requests = match (fresh.requests()?, requests_before) {
        (Some(after), Some(before)) => Some(Requests {
            counts: after
                .since(&before)
                .only(|kind| kind.group == ipam::kubernetes::GROUP || kind.resource == "nodes"),
        }),
        _ => None,
    };

    let mut not_one_block: Vec<String> = (0..nodes)
        .map(node_name)
        .filter(|node| claimed.get(node).is_none_or(|blocks| blocks.len() != 1))
        .collect();
    let (two_nodes, owned) = affinities_from_the_store(&admin).await?;
    not_one_block.extend(
        (0..nodes)
            .map(node_name)
            .filter(|node| owned.get(node).copied().unwrap_or(0) != 1)
            .map(|node| format!("{node} (stored blocks)")),
    );
    let report = admin.check().await.context("ipam check")?;
    Ok(Contention {
        p50: percentile(&latencies, 0.5).unwrap_or(0.0),
        p99: percentile(&latencies, 0.99).unwrap_or(0.0),
        all,
        operations: count as f64 / nodes.max(1) as f64,
        conflicts,
        retries,
        cpu,
        requests,
        problems: report.problems,
        check: report.render(),
        two_nodes,
        not_one_block,
    })
}

fn node_name(index: usize) -> String {
    format!("scale-node-{index:05}")
}

/// Operations since `before` (connections and watches left out), and the conflicts
/// among them.
fn operations_since(before: &[operations::OperationCounts]) -> (u64, u64) {
    let mut count = 0;
    let mut conflicts = 0;
    for now in operations::snapshot() {
        if matches!(now.operation, Operation::Connect | Operation::Watch) {
            continue;
        }
        let earlier = before.iter().find(|b| b.operation == now.operation);
        count += now.count() - earlier.map_or(0, |b| b.count());
        let conflict = OperationResult::Conflict as usize;
        conflicts += now.results[conflict] - earlier.map_or(0, |b| b.results[conflict]);
    }
    (count, conflicts)
}

/// From the stored records themselves: the blocks affine to two nodes (a block whose
/// owner is not the one node with a confirmed affinity to it, or with confirmed
/// affinities of two nodes), and the blocks each node owns.
async fn affinities_from_the_store(
    admin: &ipam::Ipam<ipam::AnyStore>,
) -> Result<(Vec<String>, BTreeMap<String, usize>)> {
    let mut owners: BTreeMap<IpNet, Option<String>> = BTreeMap::new();
    for block in stored::<Block>(admin, ipam::keys::BLOCKS).await? {
        owners.insert(block.cidr, block.affinity);
    }
    let mut affine: BTreeMap<IpNet, BTreeSet<String>> = BTreeMap::new();
    for affinity in stored::<Affinity>(admin, ipam::keys::AFFINITIES).await? {
        if affinity.state == AffinityState::Confirmed {
            affine
                .entry(affinity.cidr)
                .or_default()
                .insert(affinity.node);
        }
    }
    let mut two_nodes = Vec::new();
    for (cidr, nodes) in &affine {
        let owner = owners.get(cidr).cloned().flatten();
        let disagrees = owner.as_ref().is_some_and(|owner| !nodes.contains(owner));
        if nodes.len() > 1 || disagrees {
            two_nodes.push(format!(
                "{cidr}: affine to {}, block owned by {}",
                nodes.iter().cloned().collect::<Vec<_>>().join(", "),
                owner.as_deref().unwrap_or("nobody")
            ));
        }
    }
    let mut owned: BTreeMap<String, usize> = BTreeMap::new();
    for owner in owners.into_values().flatten() {
        *owned.entry(owner).or_default() += 1;
    }
    Ok((two_nodes, owned))
}

/// Every record under `prefix`, decoded.
async fn stored<T: serde::de::DeserializeOwned>(
    admin: &ipam::Ipam<ipam::AnyStore>,
    prefix: &str,
) -> Result<Vec<T>> {
    let entries = admin
        .store()
        .list(prefix)
        .await
        .with_context(|| format!("listing {prefix}"))?;
    entries
        .iter()
        .map(|entry| {
            serde_json::from_slice(&entry.value).with_context(|| format!("decoding {}", entry.key))
        })
        .collect()
}

fn first_few(items: &[String]) -> String {
    let mut text = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        text.push_str(&format!(" and {} more", items.len() - 5));
    }
    text
}
