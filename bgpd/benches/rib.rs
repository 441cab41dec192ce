#![allow(clippy::unwrap_used, clippy::expect_used)]
//! RIB speed and memory (issue 3 part 3, issue 7 "bulk"): IPv4 /26 to /32 prefixes in
//! UPDATEs of 800 prefixes (a full 4096-octet UPDATE), fed through the RIB as the rib
//! task does (`handle`, then `flush` and FIB changes taken every `MAX_BATCH` inputs).
//!
//! Scenarios:
//! - `1M_one_peer`: 1,000,000 prefixes from one eBGP peer into the Loc-RIB and FIB;
//! - `100k_two_peers`: the same 100,000 prefixes from each of two eBGP peers (the
//!   second loses on AS path length, so every prefix has two paths);
//! - `100k_to_ibgp`: 100,000 prefixes from one eBGP peer, exported to an iBGP peer
//!   (UPDATE packing into its outbound channel included).
//!
//! And, when run as root, end to end into a kernel (`--bench` only, once each, not
//! under criterion): `100k_to_kernel` and `1M_to_kernel` feed the rib task through its
//! channel as sessions do, with the fib task and route-sync installing into a private
//! network namespace; reported: time from the first UPDATE to the last route in the
//! kernel, and peak resident memory of the whole pipeline per route.
//!
//! Memory is measured first, each scenario in a fresh process (this binary again, with
//! `WREN_RIB_MEMORY=<scenario>`, UPDATEs generated as they are fed): resident set size
//! (VmRSS) before and after loading, and the peak (VmHWM), divided by the number of
//! routes. Then criterion times each scenario's load (UPDATEs generated beforehand).
//!
//! `cargo bench -p bgpd --bench rib`

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bgp_proto::SessionContext;
use bgpd::config::Config;
use bgpd::tasks::{PeerInfo, PeerUp, RibInput};
use support::{ASN, Scenario, load, setup, updates};

/// VmRSS and VmHWM of this process, in octets.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// In a child process: load one scenario and print its memory figures.
fn measure_memory(scenario: Scenario) {
    let (before, _) = memory();
    let (mut loaded, inputs) = setup(scenario);
    let started = Instant::now();
    let fib = load(&mut loaded, inputs);
    let took = started.elapsed();
    let (after, peak) = memory();
    let routes = scenario.routes();
    let per = |octets: u64| octets.saturating_sub(before) as f64 / routes as f64;
    println!(
        "{:<16} {:>9} routes  {:>7.1} MiB resident ({:>5.1} B/route)  peak {:>7.1} MiB ({:>5.1} B/route)  \
         tables {:>5.1} B/route  {} attribute sets  {} FIB changes  load {:.2?}",
        scenario.name(),
        routes,
        after.saturating_sub(before) as f64 / 1048576.0,
        per(after),
        peak.saturating_sub(before) as f64 / 1048576.0,
        per(peak),
        loaded.rib.table_memory() as f64 / routes as f64,
        loaded.rib.attribute_sets(),
        fib,
        took,
    );
    black_box(&loaded.rib);
}

/// In a child process: the rib task, fib task and route-sync into a kernel.
fn to_kernel(prefixes: u32) {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let netns = lab::Netns::new("ribbench").unwrap();
    netns
        .ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d0p"])
        .unwrap();
    netns
        .ip(&["addr", "add", "10.0.0.1/24", "dev", "d0"])
        .unwrap();
    netns.ip(&["link", "set", "d0p", "up"]).unwrap();
    netns.ip(&["link", "set", "d0", "up"]).unwrap();
    let (before, _) = memory();
    let took = netns
        .enter(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (fib, view, fib_task) =
                    bgpd::fib::spawn(route_sync::Config::default(), true, Default::default())
                        .await
                        .unwrap();
                let config: Config = toml::from_str(&format!(
                    "[bgp]\nasn = {ASN}\nrouter_id = \"10.255.0.1\"\nlisten = []\n"
                ))
                .unwrap();
                let (rib, _questions, rib_task) =
                    bgpd::rib::spawn(Arc::new(config), Some(fib), Default::default());
                let (sender, mut receiver) = bgpd::queue::channel(64);
                // A session would drain its channel; this one has nothing to send to.
                tokio::spawn(async move { while receiver.recv().await.is_some() {} });
                let info = PeerInfo {
                    address: IpAddr::from([10, 0, 0, 2]),
                    local_address: IpAddr::from([10, 0, 0, 1]),
                    local_ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
                    local_ipv6: None,
                    local_link_local: None,
                    local_asn: ASN,
                    remote_asn: 65001,
                    remote_router_id: Ipv4Addr::new(10, 0, 0, 2),
                    context: SessionContext::default(),
                    graceful_restart: None,
                };
                rib.send(RibInput::PeerUp(PeerUp {
                    peer: 1,
                    info: Arc::new(info),
                    outbound: sender,
                }))
                .await
                .unwrap();
                let started = Instant::now();
                for input in updates(1, 65001, [10, 0, 0, 2], prefixes, 1) {
                    rib.send(input).await.unwrap();
                }
                // Every input handled and its FIB changes handed on: the rib task ends;
                // then the fib task applies the rest and stops route-sync (routes kept).
                view.stop();
                drop(rib);
                rib_task.await.unwrap();
                fib_task.await.unwrap();
                started.elapsed()
            })
        })
        .unwrap();
    let (_, peak) = memory();
    let routes = netns
        .ip(&["route", "show", "proto", "196"])
        .map(|out| out.lines().count())
        .unwrap_or(0);
    println!(
        "{:<16} {:>9} routes  in the kernel after {:.2?} ({:.0} routes/s)  peak {:>7.1} MiB ({:>5.1} B/route, rib + fib task + route-sync)",
        format!(
            "{}_to_kernel",
            if prefixes >= 1_000_000 { "1M" } else { "100k" }
        ),
        routes,
        took,
        f64::from(prefixes) / took.as_secs_f64(),
        peak.saturating_sub(before) as f64 / 1048576.0,
        peak.saturating_sub(before) as f64 / f64::from(prefixes),
    );
}

fn main() {
    if let Ok(name) = std::env::var("WREN_RIB_MEMORY") {
        match name.as_str() {
            "100k_to_kernel" => to_kernel(100_000),
            "1M_to_kernel" => to_kernel(1_000_000),
            _ => {
                if let Some(scenario) = Scenario::ALL.into_iter().find(|s| s.name() == name) {
                    measure_memory(scenario);
                }
            }
        }
        return;
    }
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if bench_mode {
        println!("RIB memory, each scenario in a fresh process (RSS growth over the load):");
        let exe = std::env::current_exe().unwrap();
        let names = Scenario::ALL.map(Scenario::name);
        for name in names.iter().chain(&["100k_to_kernel", "1M_to_kernel"]) {
            let output = std::process::Command::new(&exe)
                .env("WREN_RIB_MEMORY", name)
                .output()
                .unwrap();
            print!("{}", String::from_utf8_lossy(&output.stdout));
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
        }
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .configure_from_args();
    let mut group = c.benchmark_group("rib");
    for scenario in Scenario::ALL {
        group.throughput(Throughput::Elements(scenario.routes()));
        group.bench_function(scenario.name(), |b| {
            b.iter_batched(
                || {
                    let (loaded, inputs) = setup(scenario);
                    (loaded, inputs.collect::<Vec<_>>())
                },
                |(mut loaded, inputs)| {
                    black_box(load(&mut loaded, inputs.into_iter()));
                    loaded
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    c.final_summary();
}
