//! `churn`: 100k routes from two peers (50k each); for 60 s, 1% of them (500 from each
//! peer) are withdrawn at the start of every second and announced again half a second
//! later; then the connection of one peer holding 50k routes is closed (as a killed
//! process's would be) and the time until its last route has left the FIB is measured.
//! Figures: CPU seconds over the flapping minute, how long after the last re-announcement
//! the FIB held every route again, time until the FIB is clean after the kill and the CPU
//! seconds that took.
//!
//! The flapping minute runs against every daemon of every run at once (each in its own
//! namespace, all pinned to the daemon CPU) to fit the time budget: its figure is CPU
//! seconds, which each process accounts for alone, and all of them together use a fraction
//! of the CPU. The kill is then timed one daemon at a time, the others idle.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;

use super::{Context, daemon_columns, remark_table, seconds, timeout_for};
use crate::dut::{Dut, DutConfig, Kind, PEER_ASN, peer_spec};
use crate::generator::{Peer, PendingSend, check_nothing_received, updates, wait_all_established};
use crate::report::{Collector, Table, Unit};
use crate::routelog::{Key, Mark};
use crate::system::Usage;
use crate::topology::Slot;

pub fn run(context: &Context) -> Result<Table> {
    let routes: usize = context.size(100_000, 10_000);
    let flap_seconds: u32 = context.size(60, 5);
    let mut collector = Collector::default();
    let kinds = context.daemons(&mut collector)?;
    let half = routes / 2;
    let flap_cpu = format!("flapping 1%/s for {flap_seconds} s: CPU");
    let lag = "FIB complete again after the last flap".to_owned();
    let clean = format!("peer with {} killed: time until FIB clean", short(half));
    let clean_cpu = format!("peer with {} killed: CPU", short(half));
    collector.declare(&flap_cpu, Unit::CpuSeconds);
    collector.chart(&clean);
    for figure in [&lag, &clean] {
        remark_table(&mut collector, figure);
    }
    let plan = Plan::new(routes, flap_seconds)?;
    let runs = context.runs();
    let mut prepared = Vec::new();
    for run in 1..=runs {
        for &kind in &kinds {
            context.progress_run(kind.name(), run, format!("{routes} routes up"));
            if let Some(daemon) =
                context.attempt(&mut collector, kind, || prepare(context, kind, &plan))?
            {
                prepared.push((run, daemon));
            }
        }
    }
    context.progress(format!(
        "flapping against {} daemons (every run at once) for {flap_seconds} s",
        prepared.len()
    ));
    let daemons: Vec<&Prepared> = prepared.iter().map(|(_, d)| d).collect();
    let (last_announce, errors) = flap(&plan, &daemons);
    for ((run, daemon), error) in prepared.into_iter().zip(errors) {
        let kind = daemon.dut.kind();
        let step = format!("killing a peer with {half} routes");
        context.progress_run(kind.name(), run, step);
        let figures =
            context.attempt(&mut collector, kind, || daemon.finish(last_announce, error))?;
        if let Some(figures) = figures {
            let subject = kind.name();
            collector.add(&flap_cpu, Unit::CpuSeconds, subject, figures.flap_cpu);
            collector.add(&lag, Unit::Seconds, subject, figures.lag);
            collector.add(&clean, Unit::Seconds, subject, figures.clean);
            collector.add(&clean_cpu, Unit::CpuSeconds, subject, figures.clean_cpu);
        }
    }
    let (subjects, ratios) = daemon_columns();
    Ok(Table {
        scenario: "churn".into(),
        title: format!(
            "churn: 1% of {} routes flapping each second, then a peer killed",
            short(routes)
        ),
        notes: vec![format!(
            "Two peers announce {half} routes each. Each second for {flap_seconds} s, 1% of \
             the routes ({} per peer) are withdrawn and re-announced half a second later, \
             against the daemons of every run at once (CPU seconds are per process). Then, \
             one daemon at a time, one peer's connection is closed and the time runs from the \
             close to the netlink event of its last route leaving the FIB.",
            plan.per_peer
        )],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios,
        chart_axis: "seconds until the FIB is clean".into(),
    })
}

fn short(n: usize) -> String {
    if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// The routes and the flaps, by peer and second (prefix numbers only: the UPDATEs carry
/// each slot's own next hops and are encoded per daemon before the flapping starts).
struct Plan {
    half: usize,
    per_peer: usize,
    seconds: u32,
}

impl Plan {
    fn new(routes: usize, seconds: u32) -> Result<Plan> {
        let half = routes / 2;
        let per_peer = (routes / 100 / 2).max(1);
        if per_peer * seconds as usize > half * 10 {
            bail!("too many flaps for {routes} routes");
        }
        Ok(Plan {
            half,
            per_peer,
            seconds,
        })
    }

    /// Prefix numbers of peer `p` (0 or 1).
    fn range(&self, p: usize) -> std::ops::Range<u32> {
        let first = (p * self.half) as u32;
        first..first + self.half as u32
    }

    /// Prefix numbers peer `p` flaps in second `s`.
    fn flapping(&self, p: usize, s: u32) -> Vec<u32> {
        let first = self.range(p).start;
        (0..self.per_peer)
            .map(|j| first + ((s as usize * self.per_peer + j) % self.half) as u32)
            .collect()
    }
}

/// A daemon with its routes installed, ready to flap.
struct Prepared {
    peers: Vec<Peer>,
    dut: Dut,
    slot: Slot,
    /// Per peer, per second: (withdraw, announce).
    flaps: Vec<Vec<(Bytes, Bytes)>>,
    keys: [Vec<Key>; 2],
    before: Usage,
    /// The table's end before the flapping.
    flap_mark: Mark,
}

struct Figures {
    flap_cpu: f64,
    lag: f64,
    clean: f64,
    clean_cpu: f64,
}

fn prepare(context: &Context, kind: Kind, plan: &Plan) -> Result<Prepared> {
    let bench = context.bench;
    let slot = bench.slot(kind.slug(), 2)?;
    let config = DutConfig::for_slot(&slot);
    let nets = [
        updates::prefixes(plan.range(0)),
        updates::prefixes(plan.range(1)),
    ];
    let keys = [updates::keys(&nets[0]), updates::keys(&nets[1])];
    let mut flaps = Vec::new();
    for (p, _) in nets.iter().enumerate() {
        let mut per_second = Vec::new();
        for s in 0..plan.seconds {
            let flapping: Vec<_> = plan
                .flapping(p, s)
                .into_iter()
                .map(updates::prefix)
                .collect();
            per_second.push((
                updates::withdraw(&flapping)?,
                updates::announce(slot.peer(p), PEER_ASN, &flapping)?,
            ));
        }
        flaps.push(per_second);
    }
    let dut = Dut::start(kind, &slot, &config)?;
    let peers = nets
        .iter()
        .enumerate()
        .map(|(p, nets)| {
            let initial = updates::announce(slot.peer(p), PEER_ASN, nets)?;
            Ok(bench.generator().peer(peer_spec(&slot, p, initial)))
        })
        .collect::<Result<Vec<_>>>()?;
    wait_all_established(&peers, Duration::from_secs(120))?;
    let all: Vec<Key> = keys.iter().flatten().copied().collect();
    dut.table()
        .wait_all_present(timeout_for(all.len()) * 2, &all)?;
    let before = dut.usage()?;
    let flap_mark = dut.table().mark();
    Ok(Prepared {
        peers,
        dut,
        slot,
        flaps,
        keys,
        before,
        flap_mark,
    })
}

/// Flaps every prepared daemon at once; returns when the last re-announcement was
/// written, and per daemon the first error its sessions had (a daemon that fails does not
/// stop the others).
fn flap(plan: &Plan, daemons: &[&Prepared]) -> (Instant, Vec<Option<String>>) {
    let start = Instant::now() + Duration::from_millis(100);
    let mut errors: Vec<Option<String>> = vec![None; daemons.len()];
    let mut pending: Vec<(usize, PendingSend)> = Vec::new();
    let mut last = start;
    for s in 0..plan.seconds {
        for (phase, offset) in [(0, 0), (1, 500)] {
            let at = start + Duration::from_millis(u64::from(s) * 1000 + offset);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            for (d, daemon) in daemons.iter().enumerate() {
                if errors[d].is_some() {
                    continue;
                }
                for (p, peer) in daemon.peers.iter().enumerate() {
                    let (withdraw, announce) = &daemon.flaps[p][s as usize];
                    let bytes = if phase == 0 { withdraw } else { announce };
                    match peer.start_send(bytes.clone()) {
                        Ok(send) => pending.push((d, send)),
                        Err(error) => errors[d] = Some(format!("{error:#}")),
                    }
                }
            }
            last = Instant::now();
        }
    }
    for (d, send) in pending {
        if let Err(error) = send.wait(Duration::from_secs(120))
            && errors[d].is_none()
        {
            errors[d] = Some(format!("{error:#}"));
        }
    }
    (last, errors)
}

impl Prepared {
    /// Waits for the FIB to be whole again, then kills peer 0 and times the clean-up.
    fn finish(self, last_announce: Instant, flap_error: Option<String>) -> Result<Figures> {
        if let Some(error) = flap_error {
            bail!("while flapping: {error}");
        }
        let table = self.dut.table().clone();
        let all: Vec<Key> = self.keys.iter().flatten().copied().collect();
        table.wait_all_present(timeout_for(all.len()) * 2, &all)?;
        let after_flaps = self.dut.usage()?;
        let last_added = table
            .last_since(self.flap_mark, |e| e.added)
            .ok_or_else(|| anyhow!("no route events while flapping"))?;
        let lag = seconds(last_announce, last_added);
        check_nothing_received(&self.peers)?;
        let mark = table.mark();
        let killed_at = Instant::now();
        self.peers[0].close();
        table.wait_none_present(timeout_for(self.keys[0].len()) * 2, &self.keys[0])?;
        let after_clean = self.dut.usage()?;
        let keys0: std::collections::HashSet<Key> = self.keys[0].iter().copied().collect();
        let cleaned = table
            .last_since(mark, |e| !e.added && keys0.contains(&e.key))
            .ok_or_else(|| anyhow!("no deletions seen"))?;
        table.wait_all_present(Duration::from_secs(10), &self.keys[1])?;
        self.dut.check_alive()?;
        table.check_complete()?;
        let figures = Figures {
            flap_cpu: after_flaps.cpu_seconds - self.before.cpu_seconds,
            lag,
            clean: seconds(killed_at, cleaned),
            clean_cpu: after_clean.cpu_seconds - after_flaps.cpu_seconds,
        };
        drop(self.peers);
        self.dut.kill();
        drop(self.slot);
        Ok(figures)
    }
}
