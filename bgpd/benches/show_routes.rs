#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `bgpctl show routes` at 1M routes (issue 13 item 3): how long one turn of a
//! whole-table dump holds the rib task. The rib task handles one input at a time, so
//! the time of one query turn is the longest stall a dump can cause.
//!
//! - `--bench` first runs the dump once under bulk load, as the rib task would
//!   interleave them: a RIB with 1,000,000 prefixes from one eBGP peer, while that
//!   peer re-announces all of them with a longer AS path (1,250 UPDATEs of 800
//!   prefixes: every best path changes), two UPDATEs handled and flushed between two
//!   query turns so that the load lasts the whole dump. It prints the longest and the
//!   99th percentile turn of each kind ([`RibQuery::Prefixes`],
//!   [`RibQuery::RouteChunk`]) in wall time and in the thread's own CPU time
//!   (CLOCK_THREAD_CPUTIME_ID: what the turn costs the rib task, without the time
//!   other processes of a busy machine took the core), the longest gap of UPDATEs for
//!   comparison, the sort of the prefixes (done by the control server on a blocking
//!   thread, not by the rib task) and the paths dumped.
//! - Then criterion times one turn of each kind on the loaded RIB.
//!
//! `cargo bench -p bgpd --bench show_routes`
//!
//! [`RibQuery::Prefixes`]: bgpd::tasks::RibQuery::Prefixes
//! [`RibQuery::RouteChunk`]: bgpd::tasks::RibQuery::RouteChunk

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bgpd::tasks::{PREFIX_SCAN, PrefixCursor, ROUTE_CHUNK};
use control_proto::RouteQuery;
use criterion::Criterion;
use ipnet::IpNet;
use support::{Loaded, Scenario, cpu_time, load, longest_and_p99, setup, updates};

/// UPDATEs handled between two query turns.
const UPDATES_PER_GAP: usize = 2;

/// Wall and CPU time of one turn.
fn timed<T>(turn: impl FnOnce() -> T, wall: &mut Vec<Duration>, cpu: &mut Vec<Duration>) -> T {
    let (started, cpu_started) = (Instant::now(), cpu_time());
    let result = turn();
    cpu.push(cpu_time().saturating_sub(cpu_started));
    wall.push(started.elapsed());
    result
}

/// One line: turns, longest and p99 in wall and CPU time.
fn summary(name: &str, wall: Vec<Duration>, cpu: Vec<Duration>) {
    let turns = wall.len();
    let (wall_max, wall_p99) = longest_and_p99(wall);
    let (cpu_max, cpu_p99) = longest_and_p99(cpu);
    println!(
        "  {name}: {turns} turns, longest {wall_max:.2} ms (CPU {cpu_max:.2} ms), p99 {wall_p99:.2} ms (CPU {cpu_p99:.2} ms)"
    );
}

/// A RIB with 1M prefixes from one peer.
fn loaded() -> Loaded {
    let (mut loaded, inputs) = setup(Scenario::OneMillionOnePeer);
    load(&mut loaded, inputs);
    loaded
}

/// Every prefix, listed in turns as the control server asks for them.
fn prefixes(loaded: &Loaded) -> Vec<IpNet> {
    let mut all = Vec::new();
    let mut from = Some(PrefixCursor::default());
    while let Some(cursor) = from {
        let chunk = loaded.rib.prefix_chunk(None, None, cursor, PREFIX_SCAN);
        all.extend(chunk.prefixes);
        from = chunk.next;
    }
    all
}

/// The dump under bulk load, once.
fn dump_under_load() {
    let mut loaded = loaded();
    let now = Instant::now();
    let mut bulk = updates(1, 65001, [10, 0, 0, 2], 1_000_000, 3).peekable();
    let (mut batches, mut batches_cpu) = (Vec::new(), Vec::new());
    let mut feed = |loaded: &mut Loaded| {
        if bulk.peek().is_none() {
            return;
        }
        timed(
            || {
                for input in bulk.by_ref().take(UPDATES_PER_GAP) {
                    loaded.rib.handle(input, now);
                }
                loaded.rib.flush();
                loaded.rib.take_fib();
                for receiver in &mut loaded.outbound {
                    while receiver.try_recv().is_ok() {}
                }
            },
            &mut batches,
            &mut batches_cpu,
        );
    };
    let started = Instant::now();
    let (mut scans, mut scans_cpu) = (Vec::new(), Vec::new());
    let mut all = Vec::new();
    let mut from = Some(PrefixCursor::default());
    while let Some(cursor) = from {
        let chunk = timed(
            || loaded.rib.prefix_chunk(None, None, cursor, PREFIX_SCAN),
            &mut scans,
            &mut scans_cpu,
        );
        all.extend(chunk.prefixes);
        from = chunk.next;
        feed(&mut loaded);
    }
    let sorting = Instant::now();
    all.sort_unstable();
    let sorted = sorting.elapsed();
    let query = RouteQuery::default();
    let (mut chunks, mut chunks_cpu) = (Vec::new(), Vec::new());
    let mut paths = 0;
    for prefixes in all.chunks(ROUTE_CHUNK) {
        let routes = timed(
            || loaded.rib.route_chunk(prefixes, &query),
            &mut chunks,
            &mut chunks_cpu,
        );
        paths += routes.len();
        black_box(routes);
        feed(&mut loaded);
    }
    let total = started.elapsed();
    println!(
        "show routes, 1M prefixes, under bulk load ({} prefixes listed, {paths} paths dumped in {:.2} s):",
        all.len(),
        total.as_secs_f64()
    );
    summary(&format!("Prefixes ({PREFIX_SCAN} slots)"), scans, scans_cpu);
    summary(
        &format!("RouteChunk ({ROUTE_CHUNK} prefixes)"),
        chunks,
        chunks_cpu,
    );
    summary(
        &format!("UPDATEs between turns ({UPDATES_PER_GAP} x 800 prefixes)"),
        batches,
        batches_cpu,
    );
    println!(
        "  sorting {} prefixes (control server, blocking thread): {:.1} ms",
        all.len(),
        sorted.as_secs_f64() * 1e3
    );
}

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        dump_under_load();
    }
    let loaded = loaded();
    let all = {
        let mut all = prefixes(&loaded);
        all.sort_unstable();
        all
    };
    let mut loaded = loaded;
    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("show_routes_1M");
    group.bench_function("prefixes_turn", |b| {
        b.iter(|| {
            black_box(
                loaded
                    .rib
                    .prefix_chunk(None, None, PrefixCursor::default(), PREFIX_SCAN),
            )
        })
    });
    let middle = &all[all.len() / 2..all.len() / 2 + ROUTE_CHUNK];
    let query = RouteQuery::default();
    group.bench_function("route_chunk_turn", |b| {
        b.iter(|| black_box(loaded.rib.route_chunk(middle, &query)))
    });
    group.finish();
    c.final_summary();
}
