//! bgpd killed with SIGKILL while 10 000 routes are in the kernel, then restarted:
//! forwarding is kept (the kernel routes stay while bgpd is down), bgpd restarts as a
//! graceful-restart restarting speaker (Restart State bit, Forwarding State flag), and
//! the restart causes zero churn: `ip monitor route` sees no change of those routes
//! from the kill until bgpd has converged again, and route-sync adds, replaces and
//! deletes nothing. Needs root (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ipnet::Ipv4Net;
use lab::{Family, Netns};
use peer::wire::{self, Attributes};
use peer::{Handshake, Peer, probe::poll};
use wren_tests::peer_bench::{Bench, TIMEOUT, config};

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
    let prefixes: Vec<Ipv4Net> = (0..ROUTES)
        .map(|i| Ipv4Net::new([10, 200, (i / 256) as u8, (i % 256) as u8].into(), 32).unwrap())
        .collect();

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
    let fib = bgpd_converged(&bench);
    let counters = &fib["counters"];
    assert_eq!(counters["adopted"], ROUTES, "{counters}");
    assert_eq!(
        (
            &counters["added"],
            &counters["replaced"],
            &counters["deleted"]
        ),
        (&0.into(), &0.into(), &0.into()),
        "route-sync changed the kernel after the restart: {counters}"
    );
    assert_eq!(kernel_routes(&bench.daemon_ns), ROUTES);
    let changes = monitor.changes("10.200.");
    assert!(
        changes.is_empty(),
        "{} kernel route changes during the restart, first: {:?}",
        changes.len(),
        changes.first()
    );
    bench.assert_alive();
}

/// A session from `source` that announces `prefixes` (800 per UPDATE) via 192.0.2.1
/// and End-of-RIB; returns once bgpd counts them all.
fn feed(bench: &Bench, source: std::net::Ipv4Addr, prefixes: &[Ipv4Net]) -> Peer {
    let peer = bench.connect(source);
    let open = wire::open(65001, 9, source, &[(1, 1)], false, &[]);
    let handshake = peer.establish(&open, TIMEOUT).unwrap();
    assert!(
        matches!(handshake, Handshake::Established(_)),
        "{handshake:?}"
    );
    let attributes = Attributes::from_as(65001);
    for chunk in prefixes.chunks(800) {
        peer.send(&wire::announce_v4(
            chunk,
            &attributes,
            [192, 0, 2, 1].into(),
        ))
        .unwrap();
    }
    peer.send(&wire::end_of_rib(1, 1)).unwrap();
    let neighbor = std::net::IpAddr::V4(source);
    poll(TIMEOUT * 2, "bgpd to count every prefix", || {
        let detail = bench.observer.neighbor(neighbor)?;
        let received = detail["prefixes_received"].as_u64().unwrap_or(0);
        Ok(if received == prefixes.len() as u64 {
            Ok(())
        } else {
            Err(format!("{received} received"))
        })
    })
    .unwrap();
    peer
}

/// Waits until route-sync says the first convergence is done; returns `show fib`.
fn bgpd_converged(bench: &Bench) -> serde_json::Value {
    poll(TIMEOUT * 3, "bgpd's FIB to converge", || {
        let fib = bench.observer.bgpctl_json(&["show", "fib"])?;
        Ok(if fib["converged"] == true {
            Ok(fib)
        } else {
            Err(format!("counters {}", fib["counters"]))
        })
    })
    .unwrap()
}

fn kernel_routes(netns: &Netns) -> usize {
    netns
        .route_destinations(Family::Ipv4, &["root", "10.200.0.0/16"])
        .unwrap()
        .len()
}

fn wait_kernel_routes(netns: &Netns, count: usize) {
    lab::wait_for(TIMEOUT * 2, "the kernel routes", || {
        let found = kernel_routes(netns);
        if found == count {
            Ok(())
        } else {
            Err(format!("{found} routes"))
        }
    })
    .unwrap();
}

/// `ip monitor route` in a namespace, from the moment `start` returns.
struct RouteMonitor {
    daemon: lab::Daemon,
}

impl RouteMonitor {
    fn start(netns: &Netns) -> RouteMonitor {
        let daemon = netns
            .spawn("ip-monitor", &["ip", "monitor", "route"])
            .unwrap();
        // A change of our own, seen in the log, proves the monitor listens. `ip
        // monitor` may not have subscribed yet when the first change is made, so the
        // change is repeated (a route added and deleted) until one is seen.
        poll(TIMEOUT, "ip monitor sees a route change", || {
            netns
                .ip(&["route", "replace", "10.201.0.1/32", "dev", "eth1"])
                .unwrap();
            netns
                .ip(&["route", "del", "10.201.0.1/32", "dev", "eth1"])
                .unwrap();
            Ok(if daemon.log().contains("10.201.0.1") {
                Ok(())
            } else {
                Err(String::from("no change seen yet"))
            })
        })
        .unwrap();
        RouteMonitor { daemon }
    }

    /// The monitor's lines mentioning `needle`.
    fn changes(&self, needle: &str) -> Vec<String> {
        self.daemon
            .log()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}
