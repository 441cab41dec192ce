//! `metrics` (issue 16): what serving Prometheus costs Wren, and what a scrape costs.
//! Wren only: the anchors export no metrics of their own (BIRD and FRR need an exporter
//! scraping their CLI), so the figures are Wren against itself in the same run.
//!
//! - Propagation, as the `propagation` scenario measures it (100 peers, a /26 announced
//!   and withdrawn 200 times), without and with a scraper GETting `/metrics` every
//!   second: the p99s, and their ratio (goal ≤ 1.05).
//! - Scrapes with 150 peers up, one /26 each: duration (connect to last octet) and size.
//! - Scrapes every 100 ms while 1M routes arrive from one peer (the slowest one is an
//!   upper bound of any stall a scrape can cause the rib task, as it includes the wait
//!   for the rib's answer behind the UPDATEs queued before it), then with the 1M routes
//!   in the RIB and kernel: duration and size.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};

use super::{Context, timeout_for};
use crate::dut::{Dut, DutConfig, Kind, PEER_ASN, peer_spec};
use crate::generator::{updates, wait_all_established};
use crate::report::{Collector, Table, Unit};
use crate::scraper::{self, Scrape, Scraper};
use crate::stats::percentile;

/// The two columns: Wren alone, and Wren scraped.
const ALONE: &str = "Wren";
const SCRAPED: &str = "Wren, scraped";

/// Scrapes taken at rest for a duration and size figure.
const SCRAPES_AT_REST: usize = 20;

pub fn run(context: &Context) -> Result<Table> {
    let peers = context.size(100, 10);
    let cycles = context.size(200, 20);
    let up = context.size(150, 10);
    let routes = context.size(1_000_000, 20_000);
    let routes_name = if routes == 1_000_000 {
        "1M".to_owned()
    } else {
        routes.to_string()
    };
    let figures = Figures {
        propagation: [
            "announce → kernel table, p99".to_owned(),
            "withdraw → kernel table, p99".to_owned(),
            "announce → monitor peer, p99".to_owned(),
            "withdraw → monitor peer, p99".to_owned(),
        ],
        peers_duration: format!("scrape with {up} peers up: duration, p50"),
        peers_duration_p99: format!("scrape with {up} peers up: duration, p99"),
        peers_size: format!("scrape with {up} peers up: size"),
        load_longest: format!("scrape every 100 ms while {routes_name} routes arrive: slowest"),
        routes_duration: format!("scrape with {routes_name} routes: duration, p50"),
        routes_size: format!("scrape with {routes_name} routes: size"),
    };
    let mut collector = Collector::default();
    for figure in &figures.propagation {
        collector.declare(figure, Unit::Milliseconds);
        collector.chart(figure);
    }
    for figure in [
        &figures.peers_duration,
        &figures.peers_duration_p99,
        &figures.load_longest,
        &figures.routes_duration,
    ] {
        collector.declare(figure, Unit::Milliseconds);
        collector.not_applicable(figure, ALONE, "nothing scrapes it");
    }
    for figure in [&figures.peers_size, &figures.routes_size] {
        collector.declare(figure, Unit::Bytes);
        collector.not_applicable(figure, ALONE, "nothing scrapes it");
    }
    if let Err(reason) = Kind::Wren.available() {
        collector.unavailable(ALONE, reason.clone());
        collector.unavailable(SCRAPED, reason);
    }
    for run in 1..=context.runs() {
        for (subject, every) in [(ALONE, None), (SCRAPED, Some(Duration::from_secs(1)))] {
            let step = format!("propagation, {peers} peers, {cycles} cycles");
            context.progress_run(subject, run, step);
            let samples = context.attempt(&mut collector, Kind::Wren, || {
                super::propagation::once(context, Kind::Wren, peers, cycles, every)
            })?;
            if let Some((series, _)) = samples {
                for (figure, series) in figures.propagation.iter().zip(&series) {
                    let p99 = percentile(series, 0.99).ok_or_else(|| anyhow!("no samples"))?;
                    collector.add(figure, Unit::Milliseconds, subject, p99);
                }
            }
        }
        context.progress(format!(
            "run {run}/{}: scrapes, {up} peers up",
            context.runs()
        ));
        if let Some(scrapes) =
            context.attempt(&mut collector, Kind::Wren, || with_peers_up(context, up))?
        {
            let (p50, p99, size) = summary(&scrapes)?;
            collector.add(&figures.peers_duration, Unit::Milliseconds, SCRAPED, p50);
            collector.add(
                &figures.peers_duration_p99,
                Unit::Milliseconds,
                SCRAPED,
                p99,
            );
            collector.add(&figures.peers_size, Unit::Bytes, SCRAPED, size);
        }
        context.progress(format!(
            "run {run}/{}: scrapes, {routes_name} routes",
            context.runs()
        ));
        if let Some((during, after)) =
            context.attempt(&mut collector, Kind::Wren, || with_routes(context, routes))?
        {
            let slowest = during
                .iter()
                .map(|s| s.took.as_secs_f64() * 1000.0)
                .fold(0.0, f64::max);
            collector.add(&figures.load_longest, Unit::Milliseconds, SCRAPED, slowest);
            let (p50, _, size) = summary(&after)?;
            collector.add(&figures.routes_duration, Unit::Milliseconds, SCRAPED, p50);
            collector.add(&figures.routes_size, Unit::Bytes, SCRAPED, size);
        }
    }
    let subjects = vec![ALONE.to_owned(), SCRAPED.to_owned()];
    Ok(Table {
        scenario: "metrics".into(),
        title: "metrics: what serving /metrics costs Wren, and what a scrape costs".into(),
        notes: vec![format!(
            "Wren only (BIRD and FRR export no Prometheus metrics of their own). Propagation \
             is the `propagation` scenario ({peers} peers, one /26 announced and withdrawn \
             {cycles} times; p99 of one run's samples), without and with a scraper GETting \
             /metrics every second from the generator's CPU. Scrape duration runs from the \
             TCP connect to the answer's last octet (OpenMetrics asked for); size is the \
             body's. The scrapes with {up} peers and with {routes_name} routes are \
             {SCRAPES_AT_REST} at rest after convergence; the slowest scrape while the \
             {routes_name} routes arrive (one every 100 ms) bounds what a scrape can hold up \
             the rib task, as it includes the wait behind the UPDATEs queued before it. \
             Cells show the median over runs (min–max)."
        )],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios: vec![(SCRAPED.to_owned(), ALONE.to_owned())],
        chart_axis: "milliseconds".into(),
    })
}

struct Figures {
    propagation: [String; 4],
    peers_duration: String,
    peers_duration_p99: String,
    peers_size: String,
    load_longest: String,
    routes_duration: String,
    routes_size: String,
}

/// p50 and p99 duration (ms) and the median size (octets) of `scrapes`.
fn summary(scrapes: &[Scrape]) -> Result<(f64, f64, f64)> {
    let took: Vec<f64> = scrapes
        .iter()
        .map(|s| s.took.as_secs_f64() * 1000.0)
        .collect();
    let sizes: Vec<f64> = scrapes.iter().map(|s| s.bytes as f64).collect();
    let none = || anyhow!("no scrapes");
    Ok((
        percentile(&took, 0.5).ok_or_else(none)?,
        percentile(&took, 0.99).ok_or_else(none)?,
        percentile(&sizes, 0.5).ok_or_else(none)?,
    ))
}

/// Starts Wren in a new slot for `peers` peers with its metrics listener on.
fn start(context: &Context, peers: usize) -> Result<(crate::topology::Slot, Dut, SocketAddr)> {
    let slot = context.bench.slot(Kind::Wren.slug(), peers)?;
    let mut config = DutConfig::for_slot(&slot);
    let address = SocketAddr::new(slot.daemon().into(), scraper::PORT);
    config.metrics = Some(address);
    let dut = Dut::start(Kind::Wren, &slot, &config)?;
    Ok((slot, dut, address))
}

/// [`SCRAPES_AT_REST`] scrapes from the generator's namespace.
fn at_rest(context: &Context, address: SocketAddr) -> Result<Vec<Scrape>> {
    context
        .bench
        .netns()
        .enter(|| {
            (0..SCRAPES_AT_REST)
                .map(|_| scraper::scrape(address))
                .collect::<Result<Vec<_>>>()
        })?
        .context("scraping /metrics at rest")
}

/// Scrapes with `peers` peers Established, one /26 each in the kernel.
fn with_peers_up(context: &Context, peers: usize) -> Result<Vec<Scrape>> {
    let bench = context.bench;
    let (slot, dut, address) = start(context, peers)?;
    let generators: Vec<_> = (0..peers)
        .map(|i| -> Result<_> {
            let initial = updates::announce(
                slot.peer(i),
                PEER_ASN,
                &updates::prefixes(i as u32..i as u32 + 1),
            )?;
            Ok(bench.generator().peer(peer_spec(&slot, i, initial)))
        })
        .collect::<Result<_>>()?;
    wait_all_established(&generators, Duration::from_secs(120)).context("generator peers")?;
    dut.table().wait_all_present(
        Duration::from_secs(120),
        &updates::keys(&updates::prefixes(0..peers as u32)),
    )?;
    let scrapes = at_rest(context, address)?;
    dut.check_alive()?;
    drop(generators);
    drop(dut);
    Ok(scrapes)
}

/// Scrapes every 100 ms while `routes` routes arrive from one peer, then at rest.
fn with_routes(context: &Context, routes: usize) -> Result<(Vec<Scrape>, Vec<Scrape>)> {
    let bench = context.bench;
    let (slot, dut, address) = start(context, 1)?;
    let nets = updates::prefixes(0..routes as u32);
    let message = updates::announce(slot.peer(0), PEER_ASN, &nets)?;
    let keys = updates::keys(&nets);
    let peer = bench
        .generator()
        .peer(peer_spec(&slot, 0, bytes::Bytes::new()));
    wait_all_established(std::slice::from_ref(&peer), Duration::from_secs(120))?;
    let scraper = Scraper::start(bench.netns(), address, Duration::from_millis(100))?;
    peer.start_send(message)?.wait(timeout_for(routes))?;
    dut.table()
        .wait_all_present(timeout_for(routes) * 4, &keys)?;
    let during = scraper.finish().context("scraping /metrics under load")?;
    let after = at_rest(context, address)?;
    dut.check_alive()?;
    drop(peer);
    drop(dut);
    Ok((during, after))
}
