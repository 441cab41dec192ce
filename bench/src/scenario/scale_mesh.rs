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

use super::scale::{self, Figure, Recorder, SizeFigures};
use super::{Context, list, mib, seconds};
use crate::dut::{Dut, Kind};
use crate::generator::{Peer, wait_all_established};
use crate::report::{Table, Unit};
use crate::routelog::Key;

pub fn run(context: &Context) -> Result<Table> {
    let sizes = scale::sizes(context, &[100, 500, 1000, 2500, 5000], &[50]);
    let limit = scale::limit(context);
    let idle = idle_period(context);
    let hold = scale::hold_time(context);
    let collector = scale::measure_all(
        context,
        &sizes,
        |largest| largest + 1,
        |all| Figures::new(all, idle, hold),
        |kind, size| measure(context, kind, size, limit, idle),
    )?;
    Ok(scale::table(
        context,
        &collector,
        "scale-mesh",
        format!(
            "scale-mesh: one daemon among {} simulated iBGP mesh nodes",
            list(&sizes)
        ),
        format!(
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
        ),
        "seconds to every block in the kernel; KiB RSS per session",
    ))
}

/// Keepalives only, after convergence: three hold times (`--quick`: a little more than
/// one, which a node or daemon that sends no keepalive does not survive either).
fn idle_period(context: &Context) -> Duration {
    let hold = u64::from(scale::hold_time(context));
    Duration::from_secs(context.size(hold * 3, hold + 3))
}

/// The figures of one size.
struct Figures {
    kernel: Figure,
    established: Figure,
    own_block: Figure,
    join: Figure,
    rss: Figure,
    per_session: Figure,
    cpu: Figure,
    idle_cpu: Figure,
    lost: Figure,
    drops: Figure,
    simulator: Figure,
}

impl Figures {
    fn new(all: &mut SizeFigures, idle: Duration, hold: u16) -> Figures {
        let n = all.size();
        Figures {
            kernel: all.time(format!("{n} nodes: every block in the kernel")),
            established: all.add(
                format!("{n} nodes: every session Established"),
                Unit::Seconds,
            ),
            own_block: all.add(
                format!("{n} nodes: the daemon's block at every node"),
                Unit::Seconds,
            ),
            join: all.add(
                format!("{n} nodes: a joining node's block in the kernel"),
                Unit::Seconds,
            ),
            rss: all.add(format!("{n} nodes: RSS"), Unit::MiB),
            per_session: all.memory(format!("{n} nodes: RSS per session"), Unit::KiB),
            cpu: all.add(format!("{n} nodes: CPU to converge"), Unit::CpuSeconds),
            idle_cpu: all.add(
                format!("{n} nodes: idle CPU over {} s", idle.as_secs()),
                Unit::CpuSeconds,
            ),
            lost: all.add(
                format!("{n} nodes: sessions lost (hold time {hold} s)"),
                Unit::Count,
            ),
            drops: all.add(
                format!("{n} nodes: connections dropped by a full accept queue"),
                Unit::Count,
            ),
            simulator: all.add(
                format!("{n} nodes: simulator RSS (the harness process)"),
                Unit::MiB,
            ),
        }
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

impl scale::Measurement<Figures> for Outcome {
    fn record(self, f: &Figures, recorder: &mut Recorder) {
        let size = recorder.size();
        let limit = self.limit.as_secs();
        match self.kernel {
            Ok(s) => recorder.add(&f.kernel, s),
            Err(n) => recorder.short(
                &f.kernel,
                format!("{n} of {size} blocks in the kernel after {limit} s"),
            ),
        }
        match self.established {
            Ok(s) => recorder.add(&f.established, s),
            Err(n) => recorder.short(
                &f.established,
                format!("{n} of {size} sessions Established after {limit} s"),
            ),
        }
        match self.own_block {
            Ok(s) => recorder.add(&f.own_block, s),
            Err(n) => recorder.short(
                &f.own_block,
                format!("{n} of {size} nodes had the daemon's block after {limit} s"),
            ),
        }
        if let Some(s) = self.join {
            recorder.add(&f.join, s);
        }
        recorder.add(&f.rss, mib(self.rss));
        recorder.add(&f.per_session, self.rss as f64 / 1024.0 / size as f64);
        recorder.add(&f.cpu, self.cpu);
        if let Some(cpu) = self.idle_cpu {
            recorder.add(&f.idle_cpu, cpu);
        }
        if let Some((lost, first)) = self.lost {
            recorder.add(&f.lost, lost as f64);
            if let Some(first) = first {
                recorder.progress(format!("{lost} sessions lost, first {first}"));
            }
        }
        recorder.add(&f.drops, self.drops as f64);
        recorder.add(&f.simulator, mib(self.simulator));
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

    /// The `--quick` mesh against a real bgpd (the debug build CI makes): every node's
    /// block reaches the kernel, the daemon's block reaches every node, no session is
    /// lost over three hold times, a joining node's block arrives. The scenario fails on
    /// any of these; the test checks the figures are there.
    #[test]
    fn quick_mesh_delivers_every_block_with_wren() {
        let Some(table) = scale::quick_with_wren("scale-mesh") else {
            return;
        };
        let hold = scale::DEFAULT_HOLD_TIME;
        let figures = Figures::new(
            &mut SizeFigures::new(50),
            Duration::from_secs(u64::from(hold) + 3),
            hold,
        );
        let value = |figure| scale::wren_first_run(&table, figure);
        assert!(value(&figures.kernel) > 0.0);
        assert!(value(&figures.own_block) > 0.0);
        assert!(value(&figures.join) > 0.0);
        assert_eq!(value(&figures.lost), 0.0);
        assert!(value(&figures.rss) > 0.0);
    }
}
