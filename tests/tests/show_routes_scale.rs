//! `bgpctl show routes` at 1M routes, end to end (issue 13 item 3); ignored by
//! default (minutes of CPU), run by hand with release binaries:
//!
//! ```text
//! cargo build --release -p bgpd -p bgpctl
//! WREN_BIN_DIR=target/release cargo test -p wren-tests --test show_routes_scale -- --ignored --nocapture
//! ```
//!
//! bgpd (FIB off) learns 1,000,000 /32s from one peer. Then a whole-table dump runs
//! (`/usr/bin/time -v bgpctl --json show routes`, its lines counted) while a second
//! peer sends another 1,000,000 /32s (bulk load), and `bgpctl show neighbors` is
//! asked in a loop meanwhile: its answer needs a turn of the rib task, so its
//! latency bounds from above how long the rib task is held. Printed: bgpctl's peak
//! resident memory, the dump's time and paths, the longest `show neighbors`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use lab::fixture::wren_binary;
use wren_tests::peer_bench::{Bench, config, listen_range};
use wren_tests::table::announce;

const ROUTES: u32 = 1_000_000;

/// `count` /32s from `first` on.
fn table(first: Ipv4Addr, count: u32) -> Vec<Ipv4Net> {
    (0..count)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(u32::from(first) + i), 32).unwrap())
        .collect()
}

/// Waits until bgpd counts `count` prefixes from the peer at `source`.
fn wait_received(bench: &Bench, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let received: u64 = bench
            .observer
            .neighbors()
            .unwrap()
            .iter()
            .map(|n| n["prefixes_received"].as_u64().unwrap_or(0))
            .sum();
        if received >= count {
            return;
        }
        assert!(Instant::now() < deadline, "{received} of {count} received");
        bench.assert_alive();
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "1M routes: minutes of CPU; run by hand with release binaries"]
fn a_full_dump_of_a_million_routes_under_bulk_load() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let bench = Bench::start_with_env("wsr", &[("RUST_LOG", "info")], |socket| {
        config(socket, false, &listen_range(1, 65001, ""))
    });
    let started = Instant::now();
    let _first = announce(
        &bench,
        bench.fresh_address(1),
        &table(Ipv4Addr::new(10, 0, 0, 0), ROUTES),
    );
    wait_received(&bench, u64::from(ROUTES));
    println!(
        "1M routes learned in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The bulk load: a second million from another peer, sent from a thread.
    let second = table(Ipv4Addr::new(11, 0, 0, 0), ROUTES);
    let bulk = std::thread::scope(|scope| {
        let feeder = scope.spawn(|| announce(&bench, bench.fresh_address(1), &second));
        // Let the second session start sending.
        std::thread::sleep(Duration::from_secs(1));
        let mut dump = Command::new("ip")
            .args([
                "netns",
                "exec",
                bench.daemon_ns.name(),
                "/usr/bin/time",
                "-v",
            ])
            .arg(wren_binary("bgpctl"))
            .arg("--socket")
            .arg(&bench.socket)
            .args(["--json", "show", "routes"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = dump.stdout.take().unwrap();
        let dump_started = Instant::now();
        let counter = scope.spawn(move || BufReader::new(stdout).lines().count());
        let mut longest = Duration::ZERO;
        let mut asked = 0;
        while dump.try_wait().unwrap().is_none() {
            let asking = Instant::now();
            bench.observer.neighbors().unwrap();
            longest = longest.max(asking.elapsed());
            asked += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        let dump_time = dump_started.elapsed();
        let output = dump.wait_with_output().unwrap();
        let lines = counter.join().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        let peak = stderr
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .expect("no peak memory from /usr/bin/time")
            .to_owned();
        println!(
            "dump: {lines} paths in {:.1} s; bgpctl peak RSS {peak} KiB; show neighbors during the dump: {asked} asked, longest {:.1} ms",
            dump_time.as_secs_f64(),
            longest.as_secs_f64() * 1e3
        );
        assert!(lines >= ROUTES as usize, "{lines} paths dumped");
        feeder.join().unwrap()
    });
    wait_received(&bench, 2 * u64::from(ROUTES));
    drop(bulk);
    bench.assert_alive();
}
