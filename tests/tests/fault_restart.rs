//! bgpd killed with SIGKILL while 10 000 routes are in the kernel, then restarted:
//! forwarding is kept (the kernel routes stay while bgpd is down), bgpd restarts as a
//! graceful-restart restarting speaker (Restart State bit, Forwarding State flag), and
//! the restart causes zero churn: `ip monitor route` sees no change of those routes
//! from the kill until bgpd has converged again, and route-sync adds, replaces and
//! deletes nothing. Needs root (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use wren_tests::peer_bench::{Bench, TIMEOUT, config};
use wren_tests::table::{
    RouteMonitor, assert_adopted_without_churn, bgpd_converged, feed, kernel_routes, table,
    wait_kernel_routes,
};

const ROUTES: usize = 10_000;

#[test]
fn sigkill_with_ten_thousand_routes_keeps_forwarding_and_restarts_without_churn() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let mut bench = Bench::start("wfr", |socket| {
        config(
            socket,
            true,
            "[[bgp.neighbor]]\naddress = \"10.66.6.1\"\nremote_asn = 65001\npassive = true\nhold_time = 9\n",
        )
    });
    let source = bench.fresh_address(6);
    let prefixes = table(ROUTES);

    let first = feed(&bench, source, &prefixes);
    wait_kernel_routes(&bench.daemon_ns, ROUTES);
    bgpd_converged(&bench);

    // From here on, every change of these routes is seen.
    let monitor = RouteMonitor::start(&bench.daemon_ns);

    bench.bgpd.kill().unwrap();
    first.wait_closed(TIMEOUT).unwrap();
    // Forwarding kept: the routes stay while bgpd is down.
    assert_eq!(kernel_routes(&bench.daemon_ns), ROUTES);

    bench.bgpd.restart().unwrap();
    bench.wait_control();
    let second = feed(&bench, source, &prefixes);
    let Some(open) = second.observed().daemon_open else {
        panic!("no OPEN")
    };
    // A restarting speaker: the Restart State bit and the Forwarding State flag.
    let graceful_restart = open
        .capabilities
        .iter()
        .find_map(|capability| match capability {
            bgp_proto::Capability::GracefulRestart(gr) => Some(gr.clone()),
            _ => None,
        })
        .expect("graceful restart capability");
    assert!(graceful_restart.restart_state(), "{graceful_restart:?}");
    assert!(
        graceful_restart
            .families
            .iter()
            .any(|f| f.family == bgp_proto::Family::IPV4_UNICAST && f.flags & 0x80 != 0),
        "{graceful_restart:?}"
    );
    bench
        .bgpd
        .wait_log(TIMEOUT, "10000 kernel routes kept from before")
        .unwrap();

    // Converged again (End-of-RIB from the peer): the adopted routes were all claimed.
    assert_adopted_without_churn(&bench, &monitor, ROUTES, "during the restart");
    bench.assert_alive();
}
