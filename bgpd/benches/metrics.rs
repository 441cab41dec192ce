#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `/metrics` at 150 neighbors and 1M routes (issue 16): what a scrape costs the rib
//! task, and what it costs to encode.
//!
//! A scrape asks the rib task one question, [`RibQuery::Counts`] (every neighbor's
//! prefix counts per family and the Loc-RIB's, read from counts kept as paths
//! change); the rest (the supervisor's snapshots, the encoding) runs on the metrics
//! task, off the rib task.
//!
//! - `--bench` first runs 1,500 scrapes' rib turns under bulk load, as the rib task
//!   would interleave them: a RIB with 1,000,000 prefixes from one eBGP peer and 149
//!   more eBGP sessions up (slow ones: their outbound channels full, their
//!   adj_rib_out pending), while the first peer re-announces every prefix with a
//!   longer AS path (two UPDATEs of 800 prefixes handled and flushed between two
//!   turns). It prints the longest and the 99th percentile turn in wall time and in
//!   the thread's CPU time (the rib task's stall), and the size of one scrape of the
//!   150 neighbors in each format with the time to encode it.
//! - Then criterion times one counts turn and one encoding of each format.
//!
//! `cargo bench -p bgpd --bench metrics`
//!
//! [`RibQuery::Counts`]: bgpd::tasks::RibQuery::Counts

mod support;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bgp_proto::fsm::State;
use bgpd::metrics::bgp::BgpSample;
use bgpd::metrics::format::Format;
use bgpd::metrics::process::ProcessSample;
use bgpd::session::NeighborStatus;
use bgpd::session::status::MessageCounters;
use bgpd::supervisor::{NeighborKind, NeighborSnapshot};
use bgpd::tasks::{RibCounts, RibInput};
use criterion::Criterion;
use prometheus_client::registry::Registry;
use support::{Loaded, Scenario, cpu_time, load, longest_and_p99, peer_up, setup, updates};

/// Neighbors with a session up.
const NEIGHBORS: u32 = 150;
/// UPDATEs handled between two scrapes' turns.
const UPDATES_PER_GAP: usize = 2;
/// Scrapes' turns measured under load.
const TURNS: usize = 1_500;

/// 1M prefixes from peer 1, and peers 2..=150 up with a one-batch outbound channel
/// that nobody reads (their exports stay pending).
fn loaded() -> Loaded {
    let (mut loaded, inputs) = setup(Scenario::OneMillionOnePeer);
    load(&mut loaded, inputs);
    for id in 2..=NEIGHBORS {
        let address = Ipv4Addr::from(0x0a01_0000 + id).octets();
        let receiver = peer_up(&mut loaded.rib, id, address, 65000 + id, 1);
        loaded.outbound.push(receiver);
        loaded.rib.flush();
    }
    loaded.rib.take_fib();
    loaded
}

/// The supervisor's snapshots of the 150 neighbors, Established, with messages
/// counted.
fn snapshots() -> Vec<NeighborSnapshot> {
    (1..=NEIGHBORS)
        .map(|id| {
            let address = if id == 1 {
                Ipv4Addr::new(10, 0, 0, 2)
            } else {
                Ipv4Addr::from(0x0a01_0000 + id)
            };
            let counters = Arc::new(MessageCounters::default());
            for kind in [
                bgp_proto::MessageType::Open,
                bgp_proto::MessageType::Update,
                bgp_proto::MessageType::Keepalive,
            ] {
                counters.count_sent(kind, 1000);
                counters.count_received(kind);
            }
            let status = NeighborStatus {
                peer: id,
                address: IpAddr::V4(address),
                remote_asn: 65000 + id,
                description: None,
                range: None,
                state: State::Established,
                since: Instant::now(),
                changed_at: SystemTime::now(),
                admin_down: false,
                passive: false,
                hold_time: 90,
                keepalive: None,
                connect_retry: 5,
                connection: None,
                negotiated: None,
                established_count: 1,
                last_error: None,
            };
            NeighborSnapshot {
                status,
                sent: counters.sent(),
                received: counters.received(),
                kind: NeighborKind::Configured,
                counters,
            }
        })
        .collect()
}

/// One scrape's registry, as `Sources::registry` builds it.
fn registry(snapshots: &[NeighborSnapshot], counts: &RibCounts) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ProcessSample::read()));
    registry.register_collector(Box::new(BgpSample::new(
        snapshots.to_vec(),
        Some(counts.clone()),
    )));
    registry
}

/// The rib turns of 1,500 scrapes under bulk load, and one scrape's size.
fn scrapes_under_load() {
    let mut loaded = loaded();
    let now = Instant::now();
    // Every prefix re-announced three times over (AS paths of 5, 6, 7 ASes): more
    // UPDATEs than the turns need.
    let mut bulk = updates(1, 65001, [10, 0, 0, 2], 1_000_000, 3)
        .chain(updates(1, 65001, [10, 0, 0, 2], 1_000_000, 4))
        .chain(updates(1, 65001, [10, 0, 0, 2], 1_000_000, 5));
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    let mut counts = RibCounts::default();
    for _ in 0..TURNS {
        let (started, cpu_started) = (Instant::now(), cpu_time());
        counts = black_box(loaded.rib.counts());
        cpu.push(cpu_time().saturating_sub(cpu_started));
        wall.push(started.elapsed());
        for input in bulk.by_ref().take(UPDATES_PER_GAP) {
            loaded.rib.handle(input, now);
        }
        loaded.rib.flush();
        loaded.rib.take_fib();
        while loaded.outbound[0].try_recv().is_ok() {}
        loaded.rib.handle(RibInput::Drained { peer: 1 }, now);
    }
    let (wall_max, wall_p99) = longest_and_p99(wall);
    let (cpu_max, cpu_p99) = longest_and_p99(cpu);
    let (v4, _) = loaded.rib.prefixes();
    println!(
        "metrics: the rib task's turn of a scrape ({} neighbors, {v4} IPv4 prefixes, under bulk load), {TURNS} turns: longest {wall_max:.3} ms (CPU {cpu_max:.3} ms), p99 {wall_p99:.3} ms (CPU {cpu_p99:.3} ms)",
        counts.peers.len()
    );
    let snapshots = snapshots();
    for format in [Format::Text, Format::OpenMetrics] {
        let started = Instant::now();
        let body = format.encode(&registry(&snapshots, &counts)).unwrap();
        println!(
            "  one scrape of {NEIGHBORS} neighbors, {format:?}: {} bytes, {} lines, encoded in {:.2} ms",
            body.len(),
            body.lines().count(),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        scrapes_under_load();
    }
    let loaded = loaded();
    let counts = loaded.rib.counts();
    let snapshots = snapshots();
    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("metrics_150_neighbors_1M");
    group.bench_function("rib_counts_turn", |b| {
        b.iter(|| black_box(loaded.rib.counts()))
    });
    for format in [Format::Text, Format::OpenMetrics] {
        group.bench_function(format!("encode_{format:?}"), |b| {
            b.iter(|| black_box(format.encode(&registry(&snapshots, &counts)).unwrap()))
        });
    }
    group.finish();
    c.final_summary();
}
