//! What the `scale-*` scenarios (issue 18) share: the simulated nodes (generator peers
//! in the daemon's AS, each announcing its node's /26), the daemon's own block, the
//! open-files check, and waits over thousands of peers that count instead of keeping
//! tables.
//!
//! Node `i` is generator peer `i` of the slot, announcing prefix number `i` (see
//! `generator::updates`); the daemon's own block is the last prefix of the range, which
//! no node announces.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use ipnet::Ipv4Net;

use super::{Context, daemon_columns};
use crate::dut::{DUT_ASN, DutConfig, Kind};
use crate::generator::updates::{self, Role};
use crate::generator::{Peer, PeerSpec, Watch};
use crate::report::{Collector, Table};
use crate::routelog::{Key, RouteLog};
use crate::topology::Slot;

mod figures;
mod recorder;

pub use figures::{Figure, SizeFigures};
pub use recorder::Recorder;

/// Hold time of every session in the scale scenarios unless `--hold-time` says otherwise:
/// the short one of the issue (9 s; keepalives every 3 s), so a peer or daemon that falls
/// behind under load loses its session within the run and the run says so.
pub const DEFAULT_HOLD_TIME: u16 = 9;

/// The hold time of this run's sessions.
pub fn hold_time(context: &Context) -> u16 {
    context.options.hold_time.unwrap_or(DEFAULT_HOLD_TIME)
}

/// The sizes (N) to run: `--sizes`, or the scenario's full or `--quick` ones.
pub fn sizes(context: &Context, full: &[usize], quick: &[usize]) -> Vec<usize> {
    match &context.options.sizes {
        Some(sizes) => sizes.clone(),
        None => context.size(full, quick).to_vec(),
    }
}

/// The file name of a scale scenario's results: its name, followed by the hold time when
/// it is not the default (`scale-reflector-hold90`).
pub fn result_name(context: &Context, scenario: &str) -> String {
    match hold_time(context) {
        DEFAULT_HOLD_TIME => scenario.to_owned(),
        hold => format!("{scenario}-hold{hold}"),
    }
}

/// The daemons to run: GoBGP is left out (its FIB does not work here, and these
/// scenarios time the kernel and originate a block).
pub fn kinds(context: &Context, collector: &mut Collector) -> Result<Vec<Kind>> {
    let mut kinds = context.daemons(collector)?;
    if kinds.contains(&Kind::Gobgp) {
        kinds.retain(|k| *k != Kind::Gobgp);
        collector.unavailable(
            Kind::Gobgp.name(),
            "not run: GoBGP under test cannot write its FIB here (see the other scenarios)",
        );
    }
    Ok(kinds)
}

/// What a scale scenario measured of one kind at one size, recorded into that size's
/// figures `F`.
pub trait Measurement<F> {
    fn record(self, figures: &F, recorder: &mut Recorder);
}

/// How long a kind gets to converge at one size before its cell says how far it got:
/// 180 s (`--quick`: 60 s).
pub fn limit(context: &Context) -> Duration {
    context.size(Duration::from_secs(180), Duration::from_secs(60))
}

/// Picks the kinds to run ([`kinds`]) and checks that the generator may open
/// `sessions(N)` sockets at the largest N ([`check_open_files`]); names every size's
/// figures with `name` and declares them (the time rows first, so they lead the table),
/// marking the charted ones; then measures every kind at every size, runs interleaved,
/// sizes in order, kinds alternating within a size. Returns what was recorded.
pub fn measure_all<F, M: Measurement<F>>(
    context: &Context,
    sizes: &[usize],
    sessions: impl Fn(usize) -> usize,
    name: impl Fn(&mut SizeFigures) -> F,
    mut measure: impl FnMut(Kind, usize) -> Result<M>,
) -> Result<Collector> {
    let mut recorded = Collector::default();
    let collector = &mut recorded;
    let kinds = kinds(context, collector)?;
    let largest = sizes.iter().copied().max().unwrap_or(0);
    check_open_files(sessions(largest))?;
    let figures: Vec<(SizeFigures, F)> = sizes
        .iter()
        .map(|&size| {
            let mut all = SizeFigures::new(size);
            let figures = name(&mut all);
            (all, figures)
        })
        .collect();
    for (all, _) in &figures {
        all.declare_time(collector);
    }
    for (all, _) in &figures {
        all.declare_rest(collector);
    }
    for run in 1..=context.runs() {
        for (all, f) in &figures {
            let size = all.size();
            for &kind in &kinds {
                context.progress_run(kind.name(), run, format!("N = {size}"));
                let outcome = context.attempt(collector, kind, || measure(kind, size))?;
                if let Some(outcome) = outcome {
                    outcome.record(f, &mut Recorder::new(context, collector, size, kind));
                }
            }
        }
    }
    Ok(recorded)
}

/// A scale scenario's table: the rows of `collector` with a column per daemon and Wren's
/// ratios, named by [`result_name`] of `scenario`, with one paragraph of notes.
pub fn table(
    context: &Context,
    collector: &Collector,
    scenario: &str,
    title: String,
    note: String,
    chart_axis: &str,
) -> Table {
    let (subjects, ratios) = daemon_columns();
    Table {
        scenario: result_name(context, scenario),
        title,
        notes: vec![note],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios,
        chart_axis: chart_axis.to_owned(),
    }
}

/// The block of node `i`.
pub fn node_block(i: usize) -> Ipv4Net {
    updates::prefix(i as u32)
}

/// The daemon's own block (announced by no simulated node).
pub fn own_block() -> Ipv4Net {
    updates::prefix(updates::CAPACITY - 1)
}

/// The blocks of nodes `0..count` as route log keys.
pub fn node_keys(count: usize) -> Vec<Key> {
    (0..count).map(|i| Key::of(node_block(i))).collect()
}

/// A daemon configured as one more iBGP member among the slot's peers, originating its
/// own block, every session with the run's [`hold_time`].
pub fn internal_config(context: &Context, slot: &Slot) -> DutConfig {
    DutConfig {
        peer_asn: DUT_ASN,
        hold_time: hold_time(context),
        networks: vec![own_block()],
        ..DutConfig::for_slot(slot)
    }
}

/// The pre-encoded UPDATE of node `i` (its block, next hop its own address).
pub fn node_update(slot: &Slot, i: usize) -> Result<bytes::Bytes> {
    updates::announce_as(Role::Internal, slot.peer(i), DUT_ASN, &[node_block(i)])
}

/// Starts simulated node `i` of `slot`, connecting to `remote`.
pub fn start_node(
    context: &Context,
    slot: &Slot,
    remote: Ipv4Addr,
    i: usize,
    initial: bytes::Bytes,
) -> Peer {
    start_watching_node(context, slot, remote, i, initial, None)
}

/// [`start_node`], the node following the prefixes of `watch` one by one.
pub fn start_watching_node(
    context: &Context,
    slot: &Slot,
    remote: Ipv4Addr,
    i: usize,
    initial: bytes::Bytes,
    watch: Option<std::sync::Arc<Watch>>,
) -> Peer {
    let spec = PeerSpec {
        local: slot.peer(i),
        remote,
        asn: DUT_ASN,
        hold_time: hold_time(context),
        initial,
        reconnect: false,
        monitor: None,
    };
    context.bench.generator().watching_peer(spec, watch)
}

/// Fails when this process may not open the sockets of `sessions` peers (the generator
/// holds one per session): says which limit to raise.
pub fn check_open_files(sessions: usize) -> Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits")
        .map_err(|e| anyhow!("reading /proc/self/limits: {e}"))?;
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .ok_or_else(|| anyhow!("no \"Max open files\" line in /proc/self/limits"))?;
    let needed = sessions as u64 + 256;
    if soft != "unlimited" {
        let soft: u64 = soft
            .parse()
            .map_err(|_| anyhow!("/proc/self/limits: open files limit {soft:?} is not a number"))?;
        if soft < needed {
            bail!(
                "the open files limit (RLIMIT_NOFILE, soft {soft}) is below the {needed} the \
                 generator needs for {sessions} sessions: raise it (ulimit -n {needed})"
            );
        }
    }
    Ok(())
}

/// How many of `keys` are present in `log` now.
pub fn count_present(log: &RouteLog, keys: &[Key]) -> usize {
    let mut count = 0;
    // A wait whose condition holds at once: a look at the log under its lock.
    let _ = log.wait(Duration::ZERO, "a count", |inner| {
        count = keys.iter().filter(|k| inner.contains(**k)).count();
        true
    });
    count
}

/// Waits until every peer has received at least `prefixes` prefixes; returns the latest
/// instant a peer's count reached it (the time of its last reception then), or how many
/// peers got there by `deadline`.
pub fn wait_all_received(
    peers: &[Peer],
    prefixes: u64,
    deadline: Instant,
) -> Result<Instant, usize> {
    let mut last: Option<Instant> = None;
    for (done, peer) in peers.iter().enumerate() {
        match peer.wait_for(deadline, "receiving", |s| s.received >= prefixes) {
            Ok(state) => {
                let at = state.last_received_at.unwrap_or_else(Instant::now);
                last = Some(last.map_or(at, |l| l.max(at)));
            }
            Err(_) => {
                let reached = done
                    + peers[done..]
                        .iter()
                        .filter(|p| p.state().received >= prefixes)
                        .count();
                return Err(reached);
            }
        }
    }
    last.ok_or(0)
}

/// Peers whose session is not the first one still Established (a lost session: hold
/// timer expiry on either side, or a reset), with the first one's error.
pub fn lost_sessions(peers: &[Peer]) -> (usize, Option<String>) {
    let mut lost = 0;
    let mut first = None;
    for peer in peers {
        let state = peer.state();
        if !state.established || state.sessions != 1 {
            lost += 1;
            if first.is_none() {
                first = Some(format!(
                    "{}: {}",
                    peer.address(),
                    state.error.unwrap_or_else(|| "no error recorded".into())
                ));
            }
        }
    }
    (lost, first)
}

/// The resident memory of this process (the harness; with thousands of simulated peers
/// mostly the generator).
pub fn own_rss() -> Result<u64> {
    Ok(crate::system::usage(std::process::id())?.rss)
}

/// A test's run of `scenario` with `--quick` against a real bgpd (the debug build CI
/// makes) alone; `None` when the lab or bgpd is missing and `WREN_REQUIRE_LAB` is not 1.
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
pub fn quick_with_wren(scenario: &str) -> Option<Table> {
    let _ready = lab::require!(Root)?;
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    if !crate::dut::wren_for_test(&test) {
        return None;
    }
    let options = super::Options {
        quick: true,
        runs: 1,
        daemons: vec![Kind::Wren],
        require_wren: true,
        hold_time: None,
        sizes: None,
    };
    let bench = crate::topology::Bench::new().unwrap();
    Some(super::run(scenario, &options, &bench).unwrap())
}

/// A test's look at a table: Wren's first run of `figure` (panics when there is none,
/// with the reason the cell gives).
#[cfg(test)]
pub fn wren_first_run(table: &Table, figure: &Figure) -> f64 {
    let figure = figure.name();
    let Some(row) = table.rows.iter().find(|r| r.label == figure) else {
        panic!("no row {figure:?}");
    };
    match row.cells.get(Kind::Wren.name()) {
        Some(crate::report::Cell::Runs(values)) if !values.is_empty() => values[0],
        Some(crate::report::Cell::Missing(reason)) => panic!("{figure}: {reason}"),
        other => panic!("{figure}: Wren: {other:?}"),
    }
}
