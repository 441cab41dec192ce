//! bgpd against hostile and broken input, as a black box (issue 8): the table in
//! `tests/data/conformance.txt` (every row of bgp-proto's RFC 7606 table
//! `bgp-proto/tests/data/rules.txt`, the incidents byte for byte, and more) run against ONE
//! bgpd by the adversarial peer, each case's outcome read from the session (the
//! NOTIFICATION, the close), the RIB (`bgpctl --json`) and the kernel FIB.
//!
//! Each new session comes from a fresh address of a listen range (a new dynamic
//! neighbor), so a reset never waits for the restart backoff. The observed outcome
//! of every case is printed as a table (`cargo test -p wren-tests --test conformance --
//! --nocapture`). Needs root (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use peer::table::{self, Row};
use peer::wire::{self, Attributes};
use peer::{Handshake, Peer, Probe, RibRoute, RouteState, Session, Victim};
use wren_tests::peer_bench::{Bench, config, listen_range};

mod cases;
mod runner;

use cases::*;
use runner::*;

/// Bound of each wait of a case.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);
/// The listen range and AS of the eBGP neighbor that `exported` checks read.
const OBSERVER_RANGE: u8 = 7;
const OBSERVER_ASN: u32 = 65007;
/// How long the victims of a `kept` case must stay after the session ended.
const KEPT_WAIT: Duration = Duration::from_secs(3);

const V4_VICTIM: &str = "198.51.100.0/24";
const V6_VICTIM: &str = "2001:db8:1::/48";
const V4_NEXT_HOP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const V6_NEXT_HOP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

#[test]
fn conformance_table() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let cases = load_cases();
    let bench = Bench::start("wcf", |socket| {
        config(
            socket,
            true,
            &[
                listen_range(1, 65001, ""),
                listen_range(2, 64512, ""),
                listen_range(3, 4_200_000_001, ""),
                listen_range(4, 65001, "max_prefixes = { limit = 3, restart = 1 }"),
                listen_range(5, 65001, "enforce_first_as = false"),
                listen_range(
                    6,
                    65001,
                    "max_prefixes = { ipv4 = 3, ipv6 = 1, restart = 1 }",
                ),
                listen_range(OBSERVER_RANGE, OBSERVER_ASN, "export = \"everything\""),
                "[[policy.filter]]\nname = \"everything\"\ndefault = \"accept\"\n".to_owned(),
            ]
            .concat(),
        )
    });
    let mut runner = Runner {
        bench: &bench,
        session: None,
        sentinels: std::cell::Cell::new(0),
        observer: None,
    };
    let started = Instant::now();
    let mut report = String::new();
    let mut failures = Vec::new();
    for case in &cases {
        let begun = Instant::now();
        let (expected, observed, pass) = match &case.skip {
            Some(reason) => ("-".to_owned(), format!("not applicable: {reason}"), true),
            None => {
                let observed = runner.run(case);
                bench.assert_alive();
                let pass = case.expect.matches(&observed);
                (case.expect.to_string(), observed.to_string(), pass)
            }
        };
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} | {:.2} s |",
            case.name,
            expected,
            observed,
            if pass { "ok" } else { "FAIL" },
            begun.elapsed().as_secs_f64()
        );
        if !pass {
            failures.push(format!(
                "conformance.txt:{} {}: expected {expected}, observed {observed}",
                case.line, case.name
            ));
        }
    }
    drop(runner);
    eprintln!(
        "| case | expected | observed | | time |\n|---|---|---|---|---|\n{report}\n{} cases in {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\n--- bgpd log tail ---\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        bench.bgpd.log_tail(40)
    );
}

/// Graceful restart keeps a lost peer's routes (stale), but a stale path loses to
/// any fresh one: a reflector killed by SIGKILL must not hold the clients on its
/// stale routes while another neighbor offers fresh ones. Two peers, RIB and kernel
/// seen from outside.
#[test]
fn fresh_paths_win_over_stale_ones() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let bench = Bench::start("wfs", |socket| {
        config(
            socket,
            true,
            &[listen_range(1, 65001, ""), listen_range(8, 65008, "")].concat(),
        )
    });
    let victim: IpNet = V4_VICTIM.parse().unwrap();
    let prefix: Ipv4Net = V4_VICTIM.parse().unwrap();
    let restarting_source = bench.fresh_address(1);
    let restarting = bench.connect(restarting_source);
    match restarting.establish(&Kind::EbgpGr.open(restarting_source), CASE_TIMEOUT) {
        Ok(Handshake::Established(_)) => {}
        other => panic!("graceful restart session: {other:?}"),
    }
    restarting
        .send(&wire::announce_v4(
            &[prefix],
            &Attributes::from_as(65001),
            V4_NEXT_HOP,
        ))
        .unwrap();
    let other_source = bench.fresh_address(8);
    let other = bench.connect(other_source);
    let open = wire::open(65008, 90, other_source, &[(1, 1), (2, 1)], false, &[]);
    match other.establish(&open, CASE_TIMEOUT) {
        Ok(Handshake::Established(_)) => {}
        other => panic!("second session: {other:?}"),
    }
    let mut longer = Attributes::from_as(65008);
    longer.as_path = vec![65008, 65009, 65010];
    let other_hop = Ipv4Addr::new(192, 0, 2, 2);
    other
        .send(&wire::announce_v4(&[prefix], &longer, other_hop))
        .unwrap();
    let best_via = |hop: Ipv4Addr, paths: usize| {
        let deadline = Instant::now() + CASE_TIMEOUT;
        loop {
            let routes = bench.observer.paths(victim).unwrap();
            let best: Vec<&RibRoute> = routes.iter().filter(|route| route.best).collect();
            let kernel = bench
                .observer
                .kernel_route(victim)
                .unwrap()
                .map(|route| route.gateways());
            if routes.len() == paths
                && best.len() == 1
                && best[0].next_hops == [IpAddr::V4(hop)]
                && kernel == Some(vec![IpAddr::V4(hop)])
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected the best path via {hop} of {paths}; RIB {routes:?}, kernel {kernel:?}\n{}",
                bench.bgpd.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The shorter path wins while both are fresh.
    best_via(V4_NEXT_HOP, 2);
    // The connection is lost: its path stays, stale, and the fresh one takes over.
    restarting.close();
    best_via(other_hop, 2);
    bench.assert_alive();
    other.notify_and_close(6, 2, &[]);
}
