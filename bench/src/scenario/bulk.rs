//! `bulk`: 2 peers × 100k and 1 peer × 1M distinct IPv4 /26s sent at once, pre-encoded,
//! on Established sessions. Figures: time from the first UPDATE octet written to the last
//! route's netlink event (and first-to-last event), CPU seconds the daemon used meanwhile,
//! peak resident memory, and bytes per route (peak minus the resident set before the
//! routes, over the routes). FRR counts bgpd + zebra, with bgpd alone in its own rows.
//!
//! The kernel floors install the same routes in a fresh namespace from the daemon CPU:
//! `ip -batch` (one route per netlink request, each acknowledged) and route-sync (many
//! requests per sendmsg), timed by the same netlink watch.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use ipnet::{IpNet, Ipv4Net};

use super::{Context, daemon_columns, mib, remark_table, seconds, timeout_for};
use crate::dut::{Dut, DutConfig, Kind, PEER_ASN, peer_spec};
use crate::generator::{check_nothing_received, updates, wait_all_established};
use crate::poller::Poller;
use crate::report::{Collector, Table, Unit};
use crate::routelog::{Mark, RouteLog};
use crate::system;
use crate::topology::Slot;

/// The floor subjects (extra columns).
const IP_BATCH: &str = "ip -batch";
const NETLINK_BATCH: &str = "batched netlink (route-sync)";

/// One load: `peers` peers with `per_peer` routes each.
#[derive(Clone, Copy, Debug)]
pub(super) struct Load {
    pub peers: usize,
    pub per_peer: usize,
}

impl Load {
    fn routes(self) -> usize {
        self.peers * self.per_peer
    }

    pub fn name(self) -> String {
        format!("{} × {}", self.peers, short(self.per_peer))
    }
}

/// 100000 as "100k", 1000000 as "1M".
fn short(n: usize) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

pub fn run(context: &Context) -> Result<Table> {
    let loads = context.size(
        vec![
            Load {
                peers: 2,
                per_peer: 100_000,
            },
            Load {
                peers: 1,
                per_peer: 1_000_000,
            },
        ],
        vec![
            Load {
                peers: 2,
                per_peer: 5_000,
            },
            Load {
                peers: 1,
                per_peer: 20_000,
            },
        ],
    );
    let mut collector = Collector::default();
    let kinds = context.daemons(&mut collector)?;
    for load in &loads {
        let name = load.name();
        collector.declare(&time_figure(&name), Unit::Seconds);
        collector.declare(&spread_figure(&name), Unit::Seconds);
        collector.declare(&format!("{name}: CPU"), Unit::CpuSeconds);
        collector.declare(&format!("{name}: peak RSS"), Unit::MiB);
        collector.declare(&format!("{name}: bytes per route"), Unit::Bytes);
        collector.declare(&format!("{name}: peak RSS, bgpd alone"), Unit::MiB);
        collector.declare(&format!("{name}: bytes per route, bgpd alone"), Unit::Bytes);
        collector.chart(&time_figure(&name));
        remark_table(&mut collector, &time_figure(&name));
        remark_table(&mut collector, &spread_figure(&name));
    }
    for run in 1..=context.runs() {
        for load in &loads {
            let name = load.name();
            for &kind in &kinds {
                context.progress_run(kind.name(), run, &name);
                let figures = context.attempt(&mut collector, kind, || {
                    once(context, kind, *load, Placement::Pinned)
                })?;
                if let Some(figures) = figures {
                    figures.record(&mut collector, &name, kind);
                }
            }
            for (subject, floor) in [
                (IP_BATCH, Floor::IpBatch),
                (NETLINK_BATCH, Floor::RouteSync),
            ] {
                context.progress_run(subject, run, &name);
                let (time, spread) = floor_once(context, floor, *load)
                    .with_context(|| format!("{subject} floor, {name}"))?;
                collector.add(&time_figure(&name), Unit::Seconds, subject, time);
                collector.add(&spread_figure(&name), Unit::Seconds, subject, spread);
            }
        }
    }
    let (mut subjects, mut ratios) = daemon_columns();
    subjects.extend([IP_BATCH.to_owned(), NETLINK_BATCH.to_owned()]);
    ratios.push(("Wren".into(), NETLINK_BATCH.into()));
    Ok(Table {
        scenario: "bulk".into(),
        title: "bulk: time to install many routes, CPU and memory".into(),
        notes: vec![
            "Every UPDATE is encoded before the clock starts; the sessions are Established \
             first. Time to FIB runs from the instant the generator starts writing to the \
             netlink event of the last route in the daemon's kernel table; \"first → last\" \
             is between the first and last route events (how the reference figures were taken). \
             Memory is read from /proc/PID/status (VmHWM for the peak, VmRSS before the routes); \
             bytes per route = (peak − resident before) / routes; FRR is bgpd + zebra."
                .into(),
            format!(
                "Floors install the same routes into a fresh namespace from the daemon CPU: \
                 `{IP_BATCH}` sends one acknowledged request per route, route-sync batches many \
                 requests per sendmsg; both are timed by the same netlink watch, from the start \
                 of the command."
            ),
        ],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios,
        chart_axis: "seconds to all routes in the FIB".into(),
    })
}

pub(super) fn time_figure(load: &str) -> String {
    format!("{load}: time to FIB")
}

pub(super) fn spread_figure(load: &str) -> String {
    format!("{load}: first → last route")
}

/// Where the daemon's threads may run during [`once`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// On the daemon CPU (every scenario's default).
    Pinned,
    /// On both CPUs, with a /proc poller beside it (`bulk-unpinned`).
    Unpinned,
}

/// One daemon run's figures.
pub(super) struct Figures {
    pub time: f64,
    /// From the first UPDATE octet written to the first route event.
    pub to_first: f64,
    pub spread: f64,
    pub cpu: f64,
    pub peak: u64,
    pub per_route: f64,
    pub bgp_peak: Option<u64>,
    pub bgp_per_route: Option<f64>,
    /// CPU seconds of each thread of the BGP process during the run, busiest first,
    /// for the progress lines.
    pub threads: Vec<(String, f64)>,
}

impl Figures {
    pub fn record(&self, collector: &mut Collector, load: &str, kind: Kind) {
        let subject = kind.name();
        collector.add(&time_figure(load), Unit::Seconds, subject, self.time);
        collector.add(&spread_figure(load), Unit::Seconds, subject, self.spread);
        collector.add(&format!("{load}: CPU"), Unit::CpuSeconds, subject, self.cpu);
        collector.add(
            &format!("{load}: peak RSS"),
            Unit::MiB,
            subject,
            mib(self.peak),
        );
        collector.add(
            &format!("{load}: bytes per route"),
            Unit::Bytes,
            subject,
            self.per_route,
        );
        if let (Some(peak), Some(per_route)) = (self.bgp_peak, self.bgp_per_route) {
            collector.add(
                &format!("{load}: peak RSS, bgpd alone"),
                Unit::MiB,
                subject,
                mib(peak),
            );
            collector.add(
                &format!("{load}: bytes per route, bgpd alone"),
                Unit::Bytes,
                subject,
                per_route,
            );
        }
    }
}

/// One run of `kind` with `load`.
pub(super) fn once(
    context: &Context,
    kind: Kind,
    load: Load,
    placement: Placement,
) -> Result<Figures> {
    let bench = context.bench;
    let slot = bench.slot(kind.slug(), load.peers)?;
    let config = DutConfig::for_slot(&slot);
    let nets: Vec<Vec<Ipv4Net>> = (0..load.peers)
        .map(|p| {
            let first = (p * load.per_peer) as u32;
            updates::prefixes(first..first + load.per_peer as u32)
        })
        .collect();
    let messages = nets
        .iter()
        .enumerate()
        .map(|(p, nets)| updates::announce(slot.peer(p), PEER_ASN, nets))
        .collect::<Result<Vec<_>>>()?;
    let keys: Vec<_> = nets.iter().flat_map(|n| updates::keys(n)).collect();

    let dut = Dut::start(kind, &slot, &config)?;
    let poller = match placement {
        Placement::Pinned => None,
        Placement::Unpinned => {
            dut.unpin()?;
            Some(Poller::start(dut.pids())?)
        }
    };
    let peers: Vec<_> = (0..load.peers)
        .map(|p| {
            bench
                .generator()
                .peer(peer_spec(&slot, p, bytes::Bytes::new()))
        })
        .collect();
    wait_all_established(&peers, Duration::from_secs(120))?;
    let table = dut.table();
    let before = dut.usage()?;
    let bgp_before = dut.bgp_usage()?;
    let threads_before = thread_cpu(&dut)?;
    let mark = table.mark();
    let pending = peers
        .iter()
        .zip(messages)
        .map(|(peer, bytes)| peer.start_send(bytes))
        .collect::<Result<Vec<_>>>()?;
    let mut start: Option<Instant> = None;
    for pending in pending {
        let at = pending.wait(timeout_for(load.routes()))?;
        start = Some(start.map_or(at, |s| s.min(at)));
    }
    let start = start.ok_or_else(|| anyhow!("nothing sent"))?;
    table.wait_all_present(timeout_for(load.routes()) * 4, &keys)?;
    let after = dut.usage()?;
    let bgp_after = dut.bgp_usage()?;
    let threads = thread_cpu_since(&threads_before, thread_cpu(&dut)?);
    if let Some(poller) = poller {
        poller.finish().context("the /proc poller")?;
    }
    dut.check_alive()?;
    table.check_complete()?;
    check_nothing_received(&peers)?;
    let (first, last) = added_span(table, mark)?;
    let routes = load.routes() as f64;
    let per_route = |peak: u64, resident: u64| peak.saturating_sub(resident) as f64 / routes;
    let frr = kind == Kind::Frr;
    let figures = Figures {
        time: seconds(start, last),
        to_first: seconds(start, first),
        spread: seconds(first, last),
        cpu: after.cpu_seconds - before.cpu_seconds,
        peak: after.peak_rss,
        per_route: per_route(after.peak_rss, before.rss),
        bgp_peak: frr.then_some(bgp_after.peak_rss),
        bgp_per_route: frr.then(|| per_route(bgp_after.peak_rss, bgp_before.rss)),
        threads,
    };
    drop(peers);
    // A graceful stop would delete every route one by one; the namespace goes anyway.
    dut.kill();
    drop(slot);
    Ok(figures)
}

/// CPU seconds of each thread of the daemon's BGP process now (none without one).
fn thread_cpu(dut: &Dut) -> Result<Vec<(String, f64)>> {
    match dut.bgp_pid() {
        Some(pid) => system::thread_cpu(pid),
        None => Ok(Vec::new()),
    }
}

/// Per thread, the CPU seconds used between `before` and `after`, busiest first (threads
/// that used none left out).
fn thread_cpu_since(before: &[(String, f64)], after: Vec<(String, f64)>) -> Vec<(String, f64)> {
    let mut used: Vec<(String, f64)> = Vec::new();
    let mut add = |name: &str, cpu: f64| match used.iter_mut().find(|(n, _)| n == name) {
        Some((_, sum)) => *sum += cpu,
        None => used.push((name.to_owned(), cpu)),
    };
    for (name, cpu) in &after {
        add(name, *cpu);
    }
    for (name, cpu) in before {
        add(name, -cpu);
    }
    used.retain(|(_, cpu)| *cpu > 0.0);
    used.sort_by(|a, b| b.1.total_cmp(&a.1));
    used
}

/// A kernel floor.
#[derive(Clone, Copy, Debug)]
enum Floor {
    IpBatch,
    RouteSync,
}

/// Installs the load's routes with `floor`; returns (time to the last route, first → last).
fn floor_once(context: &Context, floor: Floor, load: Load) -> Result<(f64, f64)> {
    let slot = context.bench.slot("floor", load.peers)?;
    let routes: Vec<(Ipv4Net, std::net::Ipv4Addr)> = (0..load.peers)
        .flat_map(|p| {
            let first = (p * load.per_peer) as u32;
            let next_hop = slot.peer(p);
            updates::prefixes(first..first + load.per_peer as u32)
                .into_iter()
                .map(move |net| (net, next_hop))
        })
        .collect();
    let keys: Vec<_> = routes
        .iter()
        .map(|(net, _)| crate::routelog::Key::of(*net))
        .collect();
    let table = slot.kernel().clone();
    let mark = table.mark();
    let start = match floor {
        Floor::IpBatch => ip_batch(&slot, &routes)?,
        Floor::RouteSync => route_sync(&slot, &routes)?,
    };
    table.wait_all_present(timeout_for(routes.len()), &keys)?;
    table.check_complete()?;
    let (first, last) = added_span(&table, mark)?;
    drop(slot);
    Ok((seconds(start, last), seconds(first, last)))
}

/// When the first and the last route since `mark` were added to `table`.
fn added_span(table: &RouteLog, mark: Mark) -> Result<(Instant, Instant)> {
    let first = table.first_since(mark, |e| e.added);
    let last = table.last_since(mark, |e| e.added);
    first.zip(last).ok_or_else(|| anyhow!("no route events"))
}

fn ip_batch(slot: &Slot, routes: &[(Ipv4Net, std::net::Ipv4Addr)]) -> Result<Instant> {
    let lines: Vec<String> = routes
        .iter()
        .map(|(net, via)| format!("route add {net} via {via} dev d0 proto static"))
        .collect();
    let start = Instant::now();
    system::ip_batch(
        slot.netns().name(),
        &lines,
        Some(system::cpus().dut),
        slot.netns().dir(),
    )?;
    Ok(start)
}

fn route_sync(slot: &Slot, routes: &[(Ipv4Net, std::net::Ipv4Addr)]) -> Result<Instant> {
    let changes: Vec<route_sync::Change> = routes
        .iter()
        .map(|(net, via)| {
            route_sync::Change::Install(route_sync::Route::via(IpNet::V4(*net), IpAddr::V4(*via)))
        })
        .collect();
    let count = changes.len();
    slot.netns().enter(move || -> Result<Instant> {
        system::pin_current_thread(system::cpus().dut)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building a runtime for route-sync")?;
        runtime.block_on(async move {
            let fib = route_sync::start(route_sync::Config::default()).await?;
            let start = Instant::now();
            fib.apply(changes).await?;
            fib.sync().await?;
            let snapshot = fib.snapshot().await?;
            if snapshot.installed.len() != count || !snapshot.failed.is_empty() {
                bail!(
                    "route-sync installed {} of {count} routes ({} failed)",
                    snapshot.installed.len(),
                    snapshot.failed.len()
                );
            }
            fib.shutdown(true).await?;
            Ok(start)
        })
    })?
}
