//! `mesh`: 10, 50 and 150 peers, peer `i` announcing 1 + i mod 4 /26s as soon as its
//! session is up. Figures: time from the generator opening every session to the last one
//! Established and to the last route in the daemon's FIB; resident memory after
//! convergence, per peer and per extra peer (10 → 150); CPU seconds during the 60 s after
//! convergence, with every session kept alive by keepalives.
//!
//! The idle minutes overlap: each converged daemon stays up, idle, while the next one is
//! measured, and its idle CPU is read 60 s after its own convergence. An idle daemon uses
//! a few milliseconds of CPU a minute, so it does not disturb the next measurement, and
//! CPU seconds are counted per process, so the next measurement does not disturb it.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::{Context, daemon_columns, list, mib, remark_table, seconds};
use crate::dut::{Dut, DutConfig, Kind, PEER_ASN, peer_spec};
use crate::generator::{Peer, check_nothing_received, updates, wait_all_established};
use crate::report::{Collector, Table, Unit};
use crate::topology::Slot;

pub fn run(context: &Context) -> Result<Table> {
    let sizes: Vec<usize> = context.size(vec![10, 50, 150], vec![5, 10]);
    let idle = context.size(Duration::from_secs(60), Duration::from_secs(5));
    let mut collector = Collector::default();
    let kinds = context.daemons(&mut collector)?;
    let (smallest, largest) = (sizes[0], sizes[sizes.len() - 1]);
    let marginal = format!("RSS per extra peer, {smallest} → {largest} peers");
    for &size in &sizes {
        collector.chart(&fib_figure(size));
        collector.declare(&established_figure(size), Unit::Seconds);
        collector.declare(&fib_figure(size), Unit::Seconds);
        collector.declare(&drops_figure(size), Unit::Count);
        remark_table(&mut collector, &fib_figure(size));
    }
    for &size in &sizes {
        collector.declare(&format!("{size} peers: RSS"), Unit::MiB);
        collector.declare(&format!("{size} peers: RSS per peer"), Unit::MiB);
    }
    collector.declare(&marginal, Unit::MiB);
    for &size in &sizes {
        collector.declare(&idle_figure(size, idle), Unit::CpuSeconds);
    }
    let mut idling: Vec<Idling> = Vec::new();
    for run in 1..=context.runs() {
        for &kind in &kinds {
            let mut rss_by_size = Vec::new();
            for &size in &sizes {
                let step = format!("{size} peers ({} idle daemons waiting)", idling.len());
                context.progress_run(kind.name(), run, step);
                let converged =
                    context.attempt(&mut collector, kind, || converge(context, kind, size))?;
                let Some(converged) = converged else { break };
                let subject = kind.name();
                collector.add(
                    &established_figure(size),
                    Unit::Seconds,
                    subject,
                    converged.established,
                );
                collector.add(&fib_figure(size), Unit::Seconds, subject, converged.in_fib);
                collector.add(
                    &format!("{size} peers: RSS"),
                    Unit::MiB,
                    subject,
                    mib(converged.rss),
                );
                collector.add(
                    &format!("{size} peers: RSS per peer"),
                    Unit::MiB,
                    subject,
                    mib(converged.rss) / size as f64,
                );
                collector.add(
                    &drops_figure(size),
                    Unit::Count,
                    subject,
                    converged.listen_drops as f64,
                );
                rss_by_size.push((size, converged.rss));
                idling.push(converged.idling);
            }
            if let (Some((_, low)), Some((_, high))) = (
                rss_by_size.iter().find(|(s, _)| *s == smallest),
                rss_by_size.iter().find(|(s, _)| *s == largest),
            ) && largest > smallest
            {
                let per_peer = (mib(*high) - mib(*low)) / (largest - smallest) as f64;
                collector.add(&marginal, Unit::MiB, kind.name(), per_peer);
            }
        }
    }
    context.progress(format!("reading idle CPU of {} daemons", idling.len()));
    for entry in idling {
        let cpu = context.attempt(&mut collector, entry.dut.kind(), || entry.finish(idle))?;
        if let Some((kind, size, cpu)) = cpu {
            collector.add(&idle_figure(size, idle), Unit::CpuSeconds, kind.name(), cpu);
        }
    }
    let (subjects, ratios) = daemon_columns();
    Ok(Table {
        scenario: "mesh".into(),
        title: format!("mesh: {} peers with 1–4 /26 each", list(&sizes)),
        notes: vec![format!(
            "The daemon is started and listening; then the generator opens every session at \
             once and each peer announces its routes as soon as it is Established. Times run \
             from opening the sessions; a connection attempt the daemon's accept queue \
             dropped (counted from the namespace's TcpExt ListenDrops) is retried by TCP after \
             a second or more. RSS is VmRSS after convergence (FRR: bgpd + zebra). \
             Idle CPU is user + system time in the {} s after convergence, sessions kept up by \
             keepalives (hold time 90 s). Converged daemons idle while the next is measured \
             (see bench/src/scenario/mesh.rs).",
            idle.as_secs()
        )],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios,
        chart_axis: "seconds to every route in the FIB".into(),
    })
}

fn idle_figure(size: usize, idle: Duration) -> String {
    format!("{size} peers: idle CPU over {} s", idle.as_secs())
}

fn drops_figure(size: usize) -> String {
    format!("{size} peers: connections dropped by a full accept queue")
}

fn established_figure(size: usize) -> String {
    format!("{size} peers: time to all Established")
}

fn fib_figure(size: usize) -> String {
    format!("{size} peers: time to all routes in FIB")
}

/// A converged daemon, idle, and what its idle CPU is counted from.
struct Idling {
    // Dropped in this order: sessions, daemon, namespace.
    peers: Vec<Peer>,
    dut: Dut,
    slot: Slot,
    size: usize,
    since: Instant,
    cpu: f64,
}

impl Idling {
    /// Waits until `idle` has passed since convergence; returns the CPU seconds used.
    fn finish(self, idle: Duration) -> Result<(Kind, usize, f64)> {
        let end = self.since + idle;
        let now = Instant::now();
        if end > now {
            std::thread::sleep(end - now);
        }
        let cpu = self.dut.usage()?.cpu_seconds - self.cpu;
        self.dut.check_alive()?;
        if let Some(down) = self.peers.iter().find(|p| !p.state().established) {
            bail!(
                "{}: the session of {} went down while idle ({})",
                self.slot.name(),
                down.address(),
                down.state().error.unwrap_or_default()
            );
        }
        Ok((self.dut.kind(), self.size, cpu))
    }
}

struct Converged {
    established: f64,
    listen_drops: u64,
    in_fib: f64,
    rss: u64,
    idling: Idling,
}

fn converge(context: &Context, kind: Kind, size: usize) -> Result<Converged> {
    let bench = context.bench;
    let slot = bench.slot(kind.slug(), size)?;
    let config = DutConfig::for_slot(&slot);
    let mut next = 0u32;
    let mut keys = Vec::new();
    let mut initial = Vec::new();
    for i in 0..size {
        let count = 1 + (i % 4) as u32;
        let nets = updates::prefixes(next..next + count);
        next += count;
        keys.extend(updates::keys(&nets));
        initial.push(updates::announce(slot.peer(i), PEER_ASN, &nets)?);
    }
    let dut = Dut::start(kind, &slot, &config)?;
    let table = dut.table().clone();
    let mark = table.mark();
    let start = Instant::now();
    let peers: Vec<Peer> = initial
        .into_iter()
        .enumerate()
        .map(|(i, initial)| bench.generator().peer(peer_spec(&slot, i, initial)))
        .collect();
    let established = wait_all_established(&peers, Duration::from_secs(300))?;
    table.wait_all_present(Duration::from_secs(300), &keys)?;
    table.check_complete()?;
    check_nothing_received(&peers)?;
    let in_fib = table
        .last_since(mark, |e| e.added)
        .ok_or_else(|| anyhow!("no route events"))?;
    let usage = dut.usage()?;
    let listen_drops = crate::system::listen_drops(slot.netns().name())?;
    Ok(Converged {
        established: seconds(start, established),
        listen_drops,
        in_fib: seconds(start, in_fib),
        rss: usage.rss,
        idling: Idling {
            peers,
            dut,
            slot,
            size,
            since: Instant::now(),
            cpu: usage.cpu_seconds,
        },
    })
}
