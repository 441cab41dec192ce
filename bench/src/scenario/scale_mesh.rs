//! `scale-mesh` (issue 18): one real daemon among N = 100, 500, 1000, 2500 and 5000
//! simulated nodes of an iBGP full mesh (`--quick`: 50). Every node announces its /26 as
//! soon as its session is up; the daemon originates its own /26 and sends it to every
//! node. Hold time 9 s on every session.
//!
//! Figures per N: time from opening the sessions to the last one Established, to every
//! node's block in the daemon's kernel, and to the daemon's block at every node; RSS
//! after convergence and per session; CPU to converge and over an idle period of three
//! hold times (keepalives only), after which every session must still be the first one
//! (no hold timer expired on either side); a node joining after convergence: time from its
//! start to its block in the kernel; connections the accept queue dropped; the harness'
//! own RSS (mostly the simulator's).
//!
//! A daemon that does not converge within the limit is not an error: its cell says how far
//! it got, and the run goes on.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::scale::{self, SizeFigures};
use super::{Context, daemon_columns, list, mib, seconds};
use crate::dut::{Dut, Kind};
use crate::generator::{Peer, wait_all_established};
use crate::report::{Collector, Table, Unit};
use crate::routelog::Key;

pub fn run(context: &Context) -> Result<Table> {
    let sizes = scale::sizes(context, &[100, 500, 1000, 2500, 5000], &[50]);
    let limit = context.size(Duration::from_secs(180), Duration::from_secs(60));
    let idle = idle_period(context);
    let hold = scale::hold_time(context);
    let mut collector = Collector::default();
    let kinds = scale::kinds(context, &mut collector)?;
    let largest = sizes.iter().copied().max().unwrap_or(0);
    scale::check_open_files(largest + 1)?;
    let figures: Vec<Figures> = sizes.iter().map(|&n| Figures::new(n, idle, hold)).collect();
    scale::measure_all(
        context,
        &mut collector,
        &kinds,
        &figures,
        |kind, size| measure(context, kind, size, limit, idle),
        |outcome, collector, f, kind| outcome.record(collector, f, kind, context),
    )?;
    let (subjects, ratios) = daemon_columns();
    Ok(Table {
        scenario: scale::result_name(context, "scale-mesh"),
        title: format!(
            "scale-mesh: one daemon among {} simulated iBGP mesh nodes",
            list(&sizes)
        ),
        notes: vec![format!(
            "One daemon (AS 64512) configured with every simulated node as a passive iBGP \
             neighbor, hold time {hold} s; the nodes are generator peers in one process \
             on the generator CPU, each from its own address on one veth, each announcing one \
             /26 and keeping only counters and time stamps of what it receives. The daemon \
             originates its own /26. Times run from the generator opening every session at \
             once. RSS is VmRSS after convergence (FRR: bgpd + zebra), per session RSS / N. \
             Idle CPU is user + system time over {} s of keepalives; sessions lost counts \
             nodes whose first session is not Established after it. The joining node is \
             configured from the start and connects after convergence. A daemon that has not \
             every block in its kernel within {} s gets the count it reached instead. See \
             bench/src/scenario/scale_mesh.rs.",
            idle.as_secs(),
            limit.as_secs()
        )],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios,
        chart_axis: "seconds to every block in the kernel; KiB RSS per session".into(),
    })
}

/// Keepalives only, after convergence: three hold times (`--quick`: a little more than
/// one, which a node or daemon that sends no keepalive does not survive either).
fn idle_period(context: &Context) -> Duration {
    let hold = u64::from(scale::hold_time(context));
    Duration::from_secs(context.size(hold * 3, hold + 3))
}

/// The figure names of one size.
struct Figures {
    size: usize,
    kernel: String,
    established: String,
    own_block: String,
    join: String,
    rss: String,
    per_session: String,
    cpu: String,
    idle_cpu: String,
    lost: String,
    drops: String,
    simulator: String,
}

impl Figures {
    fn new(n: usize, idle: Duration, hold: u16) -> Figures {
        Figures {
            size: n,
            kernel: format!("{n} nodes: every block in the kernel"),
            established: format!("{n} nodes: every session Established"),
            own_block: format!("{n} nodes: the daemon's block at every node"),
            join: format!("{n} nodes: a joining node's block in the kernel"),
            rss: format!("{n} nodes: RSS"),
            per_session: format!("{n} nodes: RSS per session"),
            cpu: format!("{n} nodes: CPU to converge"),
            idle_cpu: format!("{n} nodes: idle CPU over {} s", idle.as_secs()),
            lost: format!("{n} nodes: sessions lost (hold time {hold} s)"),
            drops: format!("{n} nodes: connections dropped by a full accept queue"),
            simulator: format!("{n} nodes: simulator RSS (the harness process)"),
        }
    }
}

impl SizeFigures for Figures {
    fn size(&self) -> usize {
        self.size
    }

    fn time(&self) -> &str {
        &self.kernel
    }

    fn memory(&self) -> &str {
        &self.per_session
    }

    fn rest(&self) -> Vec<(&str, Unit)> {
        vec![
            (self.established.as_str(), Unit::Seconds),
            (self.own_block.as_str(), Unit::Seconds),
            (self.join.as_str(), Unit::Seconds),
            (self.rss.as_str(), Unit::MiB),
            (self.per_session.as_str(), Unit::KiB),
            (self.cpu.as_str(), Unit::CpuSeconds),
            (self.idle_cpu.as_str(), Unit::CpuSeconds),
            (self.lost.as_str(), Unit::Count),
            (self.drops.as_str(), Unit::Count),
            (self.simulator.as_str(), Unit::MiB),
        ]
    }
}

/// One daemon at one size.
struct Outcome {
    /// Seconds to every block in the kernel, or how many blocks it had at the limit.
    kernel: Result<f64, usize>,
    established: Result<f64, usize>,
    own_block: Result<f64, usize>,
    join: Option<f64>,
    rss: u64,
    cpu: f64,
    idle_cpu: Option<f64>,
    lost: Option<(usize, Option<String>)>,
    drops: u64,
    simulator: u64,
    limit: Duration,
}

impl Outcome {
    fn record(self, collector: &mut Collector, f: &Figures, kind: Kind, context: &Context) {
        let subject = kind.name();
        let short = |collector: &mut Collector, figure: &str, what: String| {
            scale::short(context, collector, figure, subject, what);
        };
        let limit = self.limit.as_secs();
        match self.kernel {
            Ok(s) => collector.add(&f.kernel, Unit::Seconds, subject, s),
            Err(n) => short(
                collector,
                &f.kernel,
                format!("{n} of {} blocks in the kernel after {limit} s", f.size),
            ),
        }
        match self.established {
            Ok(s) => collector.add(&f.established, Unit::Seconds, subject, s),
            Err(n) => short(
                collector,
                &f.established,
                format!("{n} of {} sessions Established after {limit} s", f.size),
            ),
        }
        match self.own_block {
            Ok(s) => collector.add(&f.own_block, Unit::Seconds, subject, s),
            Err(n) => short(
                collector,
                &f.own_block,
                format!(
                    "{n} of {} nodes had the daemon's block after {limit} s",
                    f.size
                ),
            ),
        }
        if let Some(s) = self.join {
            collector.add(&f.join, Unit::Seconds, subject, s);
        }
        collector.add(&f.rss, Unit::MiB, subject, mib(self.rss));
        collector.add(
            &f.per_session,
            Unit::KiB,
            subject,
            self.rss as f64 / 1024.0 / f.size as f64,
        );
        collector.add(&f.cpu, Unit::CpuSeconds, subject, self.cpu);
        if let Some(cpu) = self.idle_cpu {
            collector.add(&f.idle_cpu, Unit::CpuSeconds, subject, cpu);
        }
        if let Some((lost, first)) = self.lost {
            collector.add(&f.lost, Unit::Count, subject, lost as f64);
            if let Some(first) = first {
                context.progress(format!("{subject}: {lost} sessions lost, first {first}"));
            }
        }
        collector.add(&f.drops, Unit::Count, subject, self.drops as f64);
        collector.add(&f.simulator, Unit::MiB, subject, mib(self.simulator));
    }
}

fn measure(
    context: &Context,
    kind: Kind,
    size: usize,
    limit: Duration,
    idle: Duration,
) -> Result<Outcome> {
    let bench = context.bench;
    // One more node than the mesh: the one that joins after convergence.
    let slot = bench.slot(&format!("{}{size}", kind.slug()), size + 1)?;
    let config = scale::internal_config(context, &slot);
    let initial: Vec<bytes::Bytes> = (0..=size)
        .map(|i| scale::node_update(&slot, i))
        .collect::<Result<_>>()?;
    let keys = scale::node_keys(size);
    let dut = Dut::start(kind, &slot, &config)?;
    let table = dut.table().clone();
    let cpu_before = dut.usage()?.cpu_seconds;
    let mark = table.mark();
    let mut initial = initial.into_iter();
    let start = Instant::now();
    let deadline = start + limit;
    let peers: Vec<Peer> = (0..size)
        .zip(initial.by_ref())
        .map(|(i, bytes)| scale::start_node(context, &slot, slot.daemon(), i, bytes))
        .collect();
    let kernel =
        match table.wait_all_present(deadline.saturating_duration_since(Instant::now()), &keys) {
            Ok(()) => {
                let at = table
                    .last_since(mark, |e| e.added)
                    .ok_or_else(|| anyhow!("no route events"))?;
                Ok(seconds(start, at))
            }
            Err(_) => Err(scale::count_present(&table, &keys)),
        };
    let established =
        match wait_all_established(&peers, deadline.saturating_duration_since(Instant::now())) {
            Ok(at) => Ok(seconds(start, at)),
            Err(_) => Err(peers.iter().filter(|p| p.state().established).count()),
        };
    let own_block = scale::wait_all_received(&peers, 1, deadline).map(|at| seconds(start, at));
    let usage = dut.usage()?;
    let simulator = scale::own_rss()?;
    dut.check_alive()?;
    if kernel.is_err() {
        // No convergence: no join or idle figures, and no point waiting.
        let drops = crate::system::listen_drops(slot.netns().name())?;
        drop(peers);
        dut.kill();
        return Ok(Outcome {
            kernel,
            established,
            own_block,
            join: None,
            rss: usage.rss,
            cpu: usage.cpu_seconds - cpu_before,
            idle_cpu: None,
            lost: None,
            drops,
            simulator,
            limit,
        });
    }
    table.check_complete()?;
    // The idle period: keepalives only, every session must survive it.
    let idle_from = dut.usage()?.cpu_seconds;
    std::thread::sleep(idle);
    let idle_cpu = dut.usage()?.cpu_seconds - idle_from;
    let lost = scale::lost_sessions(&peers);
    // A node joins.
    let joining_key = Key::of(scale::node_block(size));
    let join_mark = table.mark();
    let join_bytes = initial
        .next()
        .ok_or_else(|| anyhow!("no UPDATE for the joining node"))?;
    let joined = Instant::now();
    let joining = scale::start_node(context, &slot, slot.daemon(), size, join_bytes);
    table.wait_all_present(limit, &[joining_key])?;
    let join_at = table
        .last_since(join_mark, |e| e.added && e.key == joining_key)
        .ok_or_else(|| anyhow!("the joining node's block has no route event"))?;
    dut.check_alive()?;
    let drops = crate::system::listen_drops(slot.netns().name())?;
    if !joining.state().established {
        bail!("the joining node's session is not Established");
    }
    drop(joining);
    drop(peers);
    dut.kill();
    Ok(Outcome {
        kernel,
        established,
        own_block,
        join: Some(seconds(joined, join_at)),
        rss: usage.rss,
        cpu: usage.cpu_seconds - cpu_before,
        idle_cpu: Some(idle_cpu),
        lost: Some(lost),
        drops,
        simulator,
        limit,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::scenario::Options;
    use crate::topology::Bench;

    /// The `--quick` mesh against a real bgpd (the debug build CI makes): every node's
    /// block reaches the kernel, the daemon's block reaches every node, no session is
    /// lost over three hold times, a joining node's block arrives. The scenario fails on
    /// any of these; the test checks the figures are there.
    #[test]
    fn quick_mesh_delivers_every_block_with_wren() {
        let Some(_ready) = lab::require!(Root) else {
            return;
        };
        if !crate::dut::wren_for_test("quick_mesh_delivers_every_block_with_wren") {
            return;
        }
        let options = Options {
            quick: true,
            runs: 1,
            daemons: vec![Kind::Wren],
            require_wren: true,
            hold_time: None,
            sizes: None,
        };
        let bench = Bench::new().unwrap();
        let table = crate::scenario::run("scale-mesh", &options, &bench).unwrap();
        let hold = scale::DEFAULT_HOLD_TIME;
        let figures = Figures::new(50, Duration::from_secs(u64::from(hold) + 3), hold);
        let value = |figure: &str| scale::first_run(&table, figure, "Wren");
        assert!(value(&figures.kernel) > 0.0);
        assert!(value(&figures.own_block) > 0.0);
        assert!(value(&figures.join) > 0.0);
        assert_eq!(value(&figures.lost), 0.0);
        assert!(value(&figures.rss) > 0.0);
    }
}
