//! `k8s-join` (issue 14, speed): Wren on the Kubernetes datastore, real kube-apiserver,
//! 50 simulated nodes. A simulated node is a Node object carrying Wren's annotations
//! (`wren.io/ipv4-address`, `wren.io/asn`) plus one lightweight BGP speaker of the
//! generator per real node, announcing the node's /26; the real nodes are Wren's bgpd (2
//! or 3, node mesh on, IPAM and BGP resources on the API server, kernel FIB) in namespaces
//! of their own (see `kubernetes`). Figures:
//! - start-up, per run: from starting every bgpd to every real kernel holding every other
//!   node's block (50 simulated, the other real nodes' claimed ones), to every mesh
//!   session with a simulated node Established, and to every simulated speaker having
//!   received every real node's block;
//! - join, several per run: from the create call of a new simulated Node to every real
//!   node's mesh session with it Established, and to its block in every real kernel.
//!
//! The simulated nodes are each in an AS of their own (65001 + i, Calico's per-node AS
//! numbers: eBGP between them and the real nodes, iBGP among the real ones in 64512),
//! because the generator speaks eBGP only. A real node never passes one node's block on
//! to another (no node is a transit, and in a mesh every node learns a block from its
//! owner), so a joining simulated node's block reaches no other simulated speaker: the
//! simulated speakers' figure is the real nodes' blocks at start-up.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use ipnet::Ipv4Net;

use super::{Context, seconds};
use crate::dut::{HOLD_TIME, Kind};
use crate::generator::{Peer, PeerSpec, updates};
use crate::kubernetes::{Cluster, REAL_ASN, RealNode, real_address, real_name, simulated_address};
use crate::report::{Collector, Table, Unit};
use crate::routelog::{Key, Mark, RouteLog};
use crate::stats::percentile;

const WREN: &str = "Wren";
/// Time allowed for a convergence or a join.
const TIMEOUT: Duration = Duration::from_secs(120);

pub fn run(context: &Context) -> Result<Table> {
    let simulated = context.size(50, 10);
    let real = context.size(3, 2);
    let joins = context.size(20, 2);
    Kind::Wren
        .available()
        .map_err(|reason| anyhow!("Wren is needed: {reason}"))?;
    lab::check(lab::Prereq::KubeApiserver)
        .map_err(|reason| anyhow!("kube-apiserver is needed: {reason}"))?;
    let figures = Figures::new(simulated, real);
    let mut collector = Collector::default();
    for (figure, unit) in figures.all() {
        collector.declare(figure, unit);
    }
    collector.chart(&figures.join_kernels);
    let runs = context.runs();
    let generator = context.bench.netns();
    let cluster = Cluster::start(generator, simulated + joins * runs)?;
    context.progress(format!(
        "control plane up; creating {simulated} simulated and {real} real Nodes"
    ));
    for i in 0..simulated {
        cluster.create_node(
            &simulated_name(i),
            Some((simulated_address(i), simulated_asn(i))),
        )?;
    }
    for j in 0..real {
        // bgpd writes its own annotations.
        cluster.create_node(&real_name(j), None)?;
    }
    let mut join_sessions = Vec::new();
    let mut join_kernels = Vec::new();
    for run in 1..=runs {
        context.progress(format!(
            "run {run}/{runs}: starting {real} bgpd with {simulated} simulated nodes"
        ));
        let mesh = start_up(context, &cluster, simulated, real)?;
        collector.add(&figures.startup_kernels, Unit::Seconds, WREN, mesh.kernels);
        collector.add(
            &figures.startup_sessions,
            Unit::Seconds,
            WREN,
            mesh.sessions,
        );
        collector.add(
            &figures.startup_speakers,
            Unit::Seconds,
            WREN,
            mesh.speakers_converged,
        );
        for m in 0..joins {
            let index = simulated + (run - 1) * joins + m;
            let joined = join(context, &cluster, &mesh, index)?;
            context.progress(format!(
                "run {run}/{runs}, join {}/{joins}: sessions {:.3} s, kernels {:.3} s",
                m + 1,
                joined.sessions,
                joined.kernels
            ));
            collector.add(&figures.join_sessions, Unit::Seconds, WREN, joined.sessions);
            collector.add(&figures.join_kernels, Unit::Seconds, WREN, joined.kernels);
            join_sessions.push(joined.sessions);
            join_kernels.push(joined.kernels);
        }
        mesh.stop()?;
    }
    for (figure, samples) in [
        (&figures.join_sessions_p99, &join_sessions),
        (&figures.join_kernels_p99, &join_kernels),
    ] {
        if let Some(p99) = percentile(samples, 0.99) {
            collector.add(figure, Unit::Seconds, WREN, p99);
        }
    }
    let subjects = vec![WREN.to_owned()];
    Ok(Table {
        scenario: "k8s-join".into(),
        title: format!(
            "k8s-join: a Node joining {simulated} simulated nodes and {real} Wren nodes on the \
             Kubernetes datastore"
        ),
        notes: vec![format!(
            "A real kube-apiserver (with etcd, both on the two CPUs); {simulated} simulated \
             nodes, each a Node object with Wren's annotations (its address, AS 65001 + i) \
             and one lightweight BGP speaker per real node announcing its /26; {real} Wren \
             bgpd (AS {REAL_ASN}, node mesh over the Node objects, IPAM and BGP resources on \
             the API server, kernel FIB; on the daemon CPU), all on one segment. Start-up: \
             from starting every bgpd (their Node objects exist, their blocks from the first \
             run on) to the last of: every real kernel holding every other node's block, \
             every mesh session with a simulated node Established, every simulated speaker \
             holding every real node's block. Join ({joins} per run, {} in all): a new \
             simulated Node created through the API (its speakers already trying to \
             connect, every 5 ms for their first 100 ms) until every real node's session with it is Established, \
             and until its block is in every real kernel; the Node is then deleted and its \
             block leaves every kernel before the next. A joining simulated node's block \
             reaches no other simulated node: in a mesh each node learns a block from its \
             owner, and a Wren node is no transit. No other daemon runs on the Kubernetes \
             datastore here, so there are no ratios.",
            joins * runs
        )],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios: Vec::new(),
        chart_axis: "seconds from the Node create call to its block in every kernel".into(),
    })
}

/// The figures' labels.
struct Figures {
    startup_kernels: String,
    startup_sessions: String,
    startup_speakers: String,
    join_sessions: String,
    join_kernels: String,
    join_sessions_p99: String,
    join_kernels_p99: String,
}

impl Figures {
    fn new(simulated: usize, real: usize) -> Figures {
        Figures {
            startup_kernels: format!(
                "start-up: all {} other blocks in every real kernel",
                simulated + real - 1
            ),
            startup_sessions: format!(
                "start-up: all {} sessions with simulated nodes Established",
                simulated * real
            ),
            startup_speakers: format!(
                "start-up: every simulated node holds the {real} real nodes' blocks"
            ),
            join_sessions: "join: every real node's session with it Established".into(),
            join_kernels: "join: its block in every real kernel".into(),
            join_sessions_p99: "join: sessions Established, p99 over all joins".into(),
            join_kernels_p99: "join: block in every real kernel, p99 over all joins".into(),
        }
    }

    fn all(&self) -> [(&str, Unit); 7] {
        [
            (&self.startup_kernels, Unit::Seconds),
            (&self.startup_sessions, Unit::Seconds),
            (&self.startup_speakers, Unit::Seconds),
            (&self.join_sessions, Unit::Seconds),
            (&self.join_kernels, Unit::Seconds),
            (&self.join_sessions_p99, Unit::Seconds),
            (&self.join_kernels_p99, Unit::Seconds),
        ]
    }
}

fn simulated_name(i: usize) -> String {
    format!("simulated-{i}")
}

fn simulated_asn(i: usize) -> u32 {
    65001 + i as u32
}

/// Simulated node `i`'s block (joining nodes continue the numbering).
fn simulated_block(i: usize) -> Ipv4Net {
    updates::prefix(i as u32)
}

/// The real nodes running and converged, and the simulated nodes' speakers.
struct Mesh {
    // Dropped first: the sessions close before the daemons stop.
    speakers: Vec<Peer>,
    nodes: Vec<RealNode>,
    kernels: f64,
    sessions: f64,
    speakers_converged: f64,
}

impl Mesh {
    /// Closes the sessions and stops every bgpd; fails when one had died.
    fn stop(self) -> Result<()> {
        for node in &self.nodes {
            node.check_alive()?;
        }
        drop(self.speakers);
        drop(self.nodes);
        Ok(())
    }
}

impl std::ops::Deref for Mesh {
    type Target = [RealNode];
    fn deref(&self) -> &[RealNode] {
        &self.nodes
    }
}

/// A speaker of simulated node `i` toward real node `j`, announcing the node's block;
/// what it receives goes to `log`.
fn speaker(
    context: &Context,
    i: usize,
    j: usize,
    log: Option<std::sync::Arc<RouteLog>>,
) -> Result<Peer> {
    let local = simulated_address(i);
    let asn = simulated_asn(i);
    Ok(context.bench.generator().peer(PeerSpec {
        local,
        remote: real_address(j),
        asn,
        hold_time: HOLD_TIME,
        initial: updates::announce(local, asn, &[simulated_block(i)])?,
        reconnect: false,
        monitor: log,
    }))
}

fn start_up(context: &Context, cluster: &Cluster, simulated: usize, real: usize) -> Result<Mesh> {
    let generator = context.bench.netns();
    let prepared = (0..real)
        .map(|j| RealNode::prepare(generator, j))
        .collect::<Result<Vec<_>>>()?;
    let kernel_marks: Vec<Mark> = prepared.iter().map(|p| p.kernel().mark()).collect();
    // What each simulated node's session with each real node received (one log per
    // session: a session that ends, or fails to open, clears its log).
    let logs: Vec<std::sync::Arc<RouteLog>> = (0..simulated * real)
        .map(|n| {
            let name = format!("{} from {}", simulated_name(n / real), real_name(n % real));
            std::sync::Arc::new(RouteLog::new(name))
        })
        .collect();
    let log_marks: Vec<Mark> = logs.iter().map(|log| log.mark()).collect();
    let start = Instant::now();
    let nodes = prepared
        .into_iter()
        .map(|p| p.start(cluster.kubeconfig()))
        .collect::<Result<Vec<_>>>()?;
    let speakers = logs
        .iter()
        .enumerate()
        .map(|(n, log)| speaker(context, n / real, n % real, Some(log.clone())))
        .collect::<Result<Vec<_>>>()?;
    for node in &nodes {
        node.wait_listening()?;
    }
    // The real nodes' blocks, claimed by their bgpd (the time comes from the logs).
    let real_blocks = lab::wait_for(TIMEOUT, "a block claimed by every real node", || {
        for node in &nodes {
            node.check_alive()?;
        }
        let owners = cluster.block_owners()?;
        nodes
            .iter()
            .map(|node| {
                owners
                    .iter()
                    .find(|(_, owner)| owner == node.name())
                    .map(|(block, _)| *block)
                    .ok_or_else(|| anyhow!("{} owns no block yet", node.name()))
            })
            .collect::<Result<Vec<Ipv4Net>>>()
    })?;
    let mut kernels = start;
    for (j, node) in nodes.iter().enumerate() {
        let mut keys: Vec<Key> = (0..simulated)
            .map(|i| Key::of(simulated_block(i)))
            .collect();
        keys.extend(
            real_blocks
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != j)
                .map(|(_, block)| Key::of(*block)),
        );
        node.kernel()
            .wait_all_present(TIMEOUT, &keys)
            .with_context(|| format!("every other block in {}'s kernel", node.name()))?;
        node.kernel().check_complete()?;
        kernels = kernels.max(arrival(node.kernel(), kernel_marks[j], &keys)?);
    }
    let mut sessions = start;
    let deadline = Instant::now() + TIMEOUT;
    for peer in &speakers {
        sessions = sessions.max(peer.wait_established(deadline, 1)?);
    }
    // Each real node announces its own block to each simulated node.
    let mut speakers_converged = start;
    for (n, (log, mark)) in logs.iter().zip(log_marks).enumerate() {
        let key = [Key::of(real_blocks[n % real])];
        log.wait_all_present(TIMEOUT, &key)?;
        speakers_converged = speakers_converged.max(arrival(log, mark, &key)?);
    }
    Ok(Mesh {
        speakers,
        nodes,
        kernels: seconds(start, kernels),
        sessions: seconds(start, sessions),
        speakers_converged: seconds(start, speakers_converged),
    })
}

/// The time the last of `keys` first appeared in `log` since `mark`.
fn arrival(log: &RouteLog, mark: Mark, keys: &[Key]) -> Result<Instant> {
    let mut last = None;
    for key in keys {
        let at = log
            .first_since(mark, |e| e.key == *key && e.added)
            .ok_or_else(|| anyhow!("{key:?} present without an event since the mark"))?;
        last = Some(last.map_or(at, |l: Instant| l.max(at)));
    }
    last.ok_or_else(|| anyhow!("no keys"))
}

struct Joined {
    sessions: f64,
    kernels: f64,
}

/// Simulated node `index` joins: its speakers start, its Node is created; then it leaves.
fn join(context: &Context, cluster: &Cluster, mesh: &Mesh, index: usize) -> Result<Joined> {
    let block = Key::of(simulated_block(index));
    let marks: Vec<Mark> = mesh.iter().map(|node| node.kernel().mark()).collect();
    let speakers = (0..mesh.len())
        .map(|j| speaker(context, index, j, None))
        .collect::<Result<Vec<_>>>()?;
    let name = simulated_name(index);
    let created = cluster.create_node(
        &name,
        Some((simulated_address(index), simulated_asn(index))),
    )?;
    let mut kernels = created;
    for (node, mark) in mesh.iter().zip(&marks) {
        node.kernel()
            .wait_all_present(TIMEOUT, &[block])
            .with_context(|| format!("{name}'s block in {}'s kernel", node.name()))?;
        kernels = kernels.max(arrival(node.kernel(), *mark, &[block])?);
    }
    let deadline = Instant::now() + TIMEOUT;
    let mut sessions = created;
    for peer in &speakers {
        sessions = sessions.max(peer.wait_established(deadline, 1)?);
    }
    cluster.delete_node(&name)?;
    drop(speakers);
    for node in mesh.iter() {
        node.kernel()
            .wait_none_present(TIMEOUT, &[block])
            .with_context(|| format!("{name}'s block leaving {}'s kernel", node.name()))?;
        node.check_alive()?;
    }
    if sessions < created || kernels < created {
        bail!("{name}: an event before the Node was created");
    }
    Ok(Joined {
        sessions: seconds(created, sessions),
        kernels: seconds(created, kernels),
    })
}
