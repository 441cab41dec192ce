//! Supervision: tasks of bgpd made to fail on purpose, through the test-only fault
//! hook (`WREN_FAULT`, bgpd's `fault-injection` feature in a debug build;
//! `scripts/test` builds bgpd with it).
//!
//! - A session task that panics: its routes leave the RIB and the kernel, bgpctl no
//!   longer shows the session Established, the session starts again and takes the
//!   peer's next connection, and bgpd stays up.
//! - The rib task that panics: bgpd exits with status 1 within a second, naming the
//!   task; the kernel routes stay; the next start adopts them and, once the peer is
//!   back, has changed nothing in the kernel.
//!
//! Needs root (skips otherwise; fails with WREN_REQUIRE_LAB=1), and a bgpd built with
//! the feature (fails saying so otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use peer::probe::poll;
use peer::wire::{self, Attributes};
use wren_tests::peer_bench::{Bench, TIMEOUT, config};
use wren_tests::table::{
    RouteMonitor, assert_adopted_without_churn, bgpd_converged, feed, kernel_routes, table,
    wait_kernel_routes,
};

/// The UPDATE announcing this prefix trips the fault.
const TRIGGER: &str = "10.250.0.1/32";
const ROUTES: usize = 1000;

/// A bench whose bgpd has the fault `fault` armed and one passive neighbor
/// 10.66.`range`.1 (the bench's first fresh address of that range).
fn bench(prefix: &str, fault: &str, range: u8) -> (Bench, Ipv4Addr) {
    let neighbor = format!(
        "[[bgp.neighbor]]\naddress = \"10.66.{range}.1\"\nremote_asn = 65001\npassive = true\nhold_time = 9\n"
    );
    // No backtrace: resolving one in a debug build takes longer than the exit.
    let env = [("WREN_FAULT", fault), ("RUST_BACKTRACE", "0")];
    let bench = Bench::start_with_env(prefix, &env, |socket| config(socket, true, &neighbor));
    if !bench.bgpd.log().contains("fault injection armed") {
        panic!(
            "bgpd was built without its test-only fault hook: run `cargo build --workspace --bins --features bgpd/fault-injection` (scripts/test does)\n{}",
            bench.bgpd.log_tail(20)
        );
    }
    let source = bench.fresh_address(range);
    (bench, source)
}

fn trigger() -> Ipv4Net {
    TRIGGER.parse().unwrap()
}

fn state(bench: &Bench, neighbor: Ipv4Addr) -> String {
    bench.observer.neighbor(IpAddr::V4(neighbor)).unwrap()["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_failed_session_task_withdraws_its_routes_and_starts_again() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let (bench, source) = bench("wsv", &format!("session-panic={TRIGGER}"), 7);
    let prefixes = table(ROUTES);
    let attributes = Attributes::from_as(65001);
    let next_hop = Ipv4Addr::new(192, 0, 2, 1);

    let first = feed(&bench, source, &prefixes);
    wait_kernel_routes(&bench.daemon_ns, ROUTES);
    assert_eq!(state(&bench, source), "Established");

    // The session task panics on this UPDATE.
    first
        .send(&wire::announce_v4(&[trigger()], &attributes, next_hop))
        .unwrap();
    first.wait_closed(TIMEOUT).unwrap();
    bench
        .bgpd
        .wait_log(
            TIMEOUT,
            "the session task of 10.66.7.1 ended unexpectedly (panicked: fault injected",
        )
        .unwrap();
    // Its routes leave the RIB and the kernel; the session is no longer shown up.
    wait_kernel_routes(&bench.daemon_ns, 0);
    poll(TIMEOUT, "the session shown down", || {
        let detail = bench.observer.neighbor(IpAddr::V4(source))?;
        Ok(match detail["state"].as_str() {
            Some("Established") => Err(String::from("still Established")),
            _ if detail["prefixes_received"] != 0 => {
                Err(format!("{} prefixes", detail["prefixes_received"]))
            }
            _ => Ok(()),
        })
    })
    .unwrap();
    bench.assert_alive();

    // It starts again: the peer's next connection is taken, every route comes back,
    // and the same UPDATE goes through (the fault fires once).
    let second = feed(&bench, source, &prefixes);
    second
        .send(&wire::announce_v4(&[trigger()], &attributes, next_hop))
        .unwrap();
    lab::wait_for(TIMEOUT, "the trigger route in the kernel", || {
        let found = bench
            .daemon_ns
            .route_destinations(lab::Family::Ipv4, &["root", TRIGGER])
            .unwrap();
        if found.is_empty() {
            Err(String::from("not yet"))
        } else {
            Ok(())
        }
    })
    .unwrap();
    wait_kernel_routes(&bench.daemon_ns, ROUTES);
    assert_eq!(state(&bench, source), "Established");
    bench.assert_alive();
}

#[test]
fn a_failed_rib_task_stops_bgpd_at_once_and_the_next_start_adopts_the_routes() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let (mut bench, source) = bench("wsr", &format!("rib-panic={TRIGGER}"), 8);
    let prefixes = table(ROUTES);
    let first = feed(&bench, source, &prefixes);
    wait_kernel_routes(&bench.daemon_ns, ROUTES);
    bgpd_converged(&bench);
    let monitor = RouteMonitor::start(&bench.daemon_ns);

    // The rib task panics on this UPDATE: bgpd stops at once, naming it.
    let sent = Instant::now();
    first
        .send(&wire::announce_v4(
            &[trigger()],
            &Attributes::from_as(65001),
            Ipv4Addr::new(192, 0, 2, 1),
        ))
        .unwrap();
    let status = loop {
        if let Some(status) = bench.bgpd.exit_status() {
            break status;
        }
        assert!(
            sent.elapsed() < TIMEOUT,
            "bgpd still runs without its rib task; log:\n{}",
            bench.bgpd.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = sent.elapsed();
    eprintln!("bgpd exited {took:?} after the UPDATE that made its rib task fail ({status})");
    assert_eq!(status.code(), Some(1), "{}", bench.bgpd.log_tail(30));
    assert!(
        took < Duration::from_secs(1),
        "bgpd took {took:?} to exit after its rib task failed"
    );
    let log = bench.bgpd.log();
    assert!(
        log.contains("rib (panicked: fault injected") && log.contains("ended unexpectedly"),
        "{}",
        bench.bgpd.log_tail(30)
    );
    // Forwarding kept: the kernel routes stay while bgpd is down.
    first.wait_closed(TIMEOUT).unwrap();
    assert_eq!(kernel_routes(&bench.daemon_ns), ROUTES);

    // The next start adopts them; with the peer back, nothing changed in the kernel.
    bench.bgpd.restart().unwrap();
    bench.wait_control();
    let _second = feed(&bench, source, &prefixes);
    assert_adopted_without_churn(
        &bench,
        &monitor,
        ROUTES,
        "across the failure and the restart",
    );
    bench.assert_alive();
}
