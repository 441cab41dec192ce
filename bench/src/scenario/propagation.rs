//! `propagation`: 100 peers Established (each with one /26), then one peer announces and
//! withdraws one more /26, 200 times. For each announcement and withdrawal: the time from
//! the instant the generator starts writing the UPDATE to the route appearing in (leaving)
//! the daemon's kernel table, and to the daemon's UPDATE for it reaching the monitor peer.
//! Per run the p50 and p99 of the 200 samples; each figure is the median of the runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};

use super::{Context, daemon_columns, remark_table, seconds};
use crate::dut::{Dut, DutConfig, Kind, PEER_ASN, monitor_spec, peer_spec};
use crate::generator::{check_nothing_received, updates, wait_all_established};
use crate::report::{Collector, Table, Unit};
use crate::routelog::{Key, RouteLog};
use crate::scraper::{self, Scrape, Scraper};
use crate::stats::percentile;

/// How long one announcement or withdrawal may take to be seen.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(context: &Context) -> Result<Table> {
    let peers = context.size(100, 10);
    let cycles = context.size(200, 20);
    let mut collector = Collector::default();
    let kinds = context.daemons(&mut collector)?;
    for figure in FIGURES {
        collector.declare(figure, Unit::Milliseconds);
    }
    for figure in [FIGURES[0], FIGURES[1], FIGURES[4], FIGURES[5]] {
        collector.chart(figure);
    }
    for figure in &FIGURES[..4] {
        remark_table(&mut collector, figure);
    }
    for run in 1..=context.runs() {
        for &kind in &kinds {
            let step = format!("{peers} peers, {cycles} announce/withdraw cycles");
            context.progress_run(kind.name(), run, step);
            let samples = context.attempt(&mut collector, kind, || {
                once(context, kind, peers, cycles, None).map(|(samples, _)| samples)
            })?;
            if let Some(samples) = samples {
                for (i, series) in samples.iter().enumerate() {
                    let p50 = percentile(series, 0.5).ok_or_else(|| anyhow!("no samples"))?;
                    let p99 = percentile(series, 0.99).ok_or_else(|| anyhow!("no samples"))?;
                    collector.add(FIGURES[2 * i], Unit::Milliseconds, kind.name(), p50);
                    collector.add(FIGURES[2 * i + 1], Unit::Milliseconds, kind.name(), p99);
                }
            }
        }
    }
    let (subjects, ratios) = daemon_columns();
    Ok(Table {
        scenario: "propagation".into(),
        title: format!(
            "propagation: one /26 announced and withdrawn {cycles} times with {peers} peers up"
        ),
        notes: vec![format!(
            "{peers} generator peers are Established with one /26 each; one of them announces \
             a further /26 and withdraws it, {cycles} times, each step once the previous one \
             was seen everywhere. Latency runs from the instant the generator starts writing the \
             UPDATE to the netlink event of the route in the daemon's kernel table, and to the \
             arrival of the daemon's UPDATE at a monitor peer it re-advertises to. p50 and p99 \
             are over the {cycles} samples of one run; cells show the median over runs (min–max)."
        )],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios,
        chart_axis: "milliseconds".into(),
    })
}

/// Row labels: announce/withdraw × kernel/monitor × p50/p99.
const FIGURES: [&str; 8] = [
    "announce → kernel table, p50",
    "announce → kernel table, p99",
    "withdraw → kernel table, p50",
    "withdraw → kernel table, p99",
    "announce → monitor peer, p50",
    "announce → monitor peer, p99",
    "withdraw → monitor peer, p50",
    "withdraw → monitor peer, p99",
];

/// One run: latencies in ms, as [announce→table, withdraw→table, announce→monitor,
/// withdraw→monitor]. With `scrape_every` (Wren only), bgpd serves `/metrics` and a
/// scraper GETs it at that interval during the cycles; its scrapes come back too.
pub fn once(
    context: &Context,
    kind: Kind,
    peers: usize,
    cycles: usize,
    scrape_every: Option<Duration>,
) -> Result<([Vec<f64>; 4], Vec<Scrape>)> {
    let bench = context.bench;
    let slot = bench.slot(kind.slug(), peers)?;
    let mut config = DutConfig::for_slot(&slot);
    if scrape_every.is_some() {
        config.metrics = Some(SocketAddr::new(slot.daemon().into(), scraper::PORT));
    }
    // Encoded before any clock starts.
    let initial: Vec<_> = (0..peers)
        .map(|i| {
            updates::announce(
                slot.peer(i),
                PEER_ASN,
                &updates::prefixes(i as u32..i as u32 + 1),
            )
        })
        .collect::<Result<_>>()?;
    let moving = updates::prefixes(peers as u32..peers as u32 + 1);
    let key = Key::of(moving[0]);
    let announce = updates::announce(slot.peer(0), PEER_ASN, &moving)?;
    let withdraw = updates::withdraw(&moving)?;
    let initial_keys = updates::keys(&updates::prefixes(0..peers as u32));

    let dut = Dut::start(kind, &slot, &config)?;
    let monitor_log = Arc::new(RouteLog::new(format!("monitor peer of {}", kind.name())));
    let monitor = bench
        .generator()
        .peer(monitor_spec(&slot, monitor_log.clone()));
    let generators: Vec<_> = initial
        .into_iter()
        .enumerate()
        .map(|(i, initial)| bench.generator().peer(peer_spec(&slot, i, initial)))
        .collect();
    wait_all_established(&generators, Duration::from_secs(120)).context("generator peers")?;
    monitor.wait_established(std::time::Instant::now() + Duration::from_secs(120), 1)?;
    let table = dut.table();
    table.wait_all_present(Duration::from_secs(120), &initial_keys)?;
    monitor_log.wait_all_present(Duration::from_secs(120), &initial_keys)?;

    let scraper = match (scrape_every, config.metrics) {
        (Some(every), Some(address)) => Some(Scraper::start(bench.netns(), address, every)?),
        _ => None,
    };
    let mut series: [Vec<f64>; 4] = Default::default();
    let sender = &generators[0];
    for _ in 0..cycles {
        for (added, bytes) in [(true, &announce), (false, &withdraw)] {
            let table_mark = table.mark();
            let monitor_mark = monitor_log.mark();
            let sent = sender.send(bytes.clone())?;
            let arrived = |inner: &crate::routelog::Inner| inner.contains(key) == added;
            table.wait(STEP_TIMEOUT, "the moving route in the table", arrived)?;
            monitor_log.wait(STEP_TIMEOUT, "the moving route at the monitor", arrived)?;
            let at_table = table
                .first_since(table_mark, |e| e.key == key && e.added == added)
                .ok_or_else(|| anyhow!("no table event for the moving route"))?;
            let at_monitor = monitor_log
                .first_since(monitor_mark, |e| e.key == key && e.added == added)
                .ok_or_else(|| anyhow!("no monitor event for the moving route"))?;
            let offset = if added { 0 } else { 1 };
            series[offset].push(seconds(sent, at_table) * 1000.0);
            series[2 + offset].push(seconds(sent, at_monitor) * 1000.0);
        }
    }
    let scrapes = match scraper {
        Some(scraper) => scraper.finish().context("scraping /metrics")?,
        None => Vec::new(),
    };
    dut.check_alive()?;
    table.check_complete()?;
    check_nothing_received(&generators)?;
    drop(generators);
    drop(monitor);
    drop(dut);
    Ok((series, scrapes))
}
