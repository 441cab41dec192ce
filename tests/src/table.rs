//! A route table fed by the adversarial peer and followed into the kernel: what the
//! restart and supervision tests share.
//!
//! The table is /32s of [`TABLE_PREFIX`] via 192.0.2.1 (the peer's side of the
//! bench's link), announced from AS 65001; the kernel's copy is counted with `ip
//! route`, and [`RouteMonitor`] records every change `ip monitor route` sees.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use lab::{Family, Netns};
use peer::wire::{self, Attributes};
use peer::{Handshake, Peer, probe::poll};

use crate::peer_bench::{Bench, TIMEOUT};

/// Where the table's prefixes are.
pub const TABLE_PREFIX: &str = "10.200.0.0/16";

/// `count` /32s of [`TABLE_PREFIX`].
pub fn table(count: usize) -> Vec<Ipv4Net> {
    (0..count)
        .map(|i| {
            Ipv4Net::new(Ipv4Addr::new(10, 200, (i / 256) as u8, (i % 256) as u8), 32).unwrap()
        })
        .collect()
}

/// A session from `source` that announces `prefixes` (800 per UPDATE) via 192.0.2.1
/// and End-of-RIB; returns once bgpd counts them all.
pub fn feed(bench: &Bench, source: std::net::Ipv4Addr, prefixes: &[Ipv4Net]) -> Peer {
    let peer = announce(bench, source, prefixes);
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

/// A session from `source` that announces `prefixes` (800 per UPDATE) via 192.0.2.1
/// and End-of-RIB, without waiting for bgpd to take them.
pub fn announce(bench: &Bench, source: std::net::Ipv4Addr, prefixes: &[Ipv4Net]) -> Peer {
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
    peer
}

/// Waits until route-sync says the first convergence is done; returns `show fib`.
pub fn bgpd_converged(bench: &Bench) -> serde_json::Value {
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

/// After a restart: bgpd's first convergence adopted every one of `routes` kernel routes
/// and route-sync added, replaced and deleted nothing, the kernel still holds them all,
/// and `monitor` saw no change of the table `during` (named in the message).
pub fn assert_adopted_without_churn(
    bench: &Bench,
    monitor: &RouteMonitor,
    routes: usize,
    during: &str,
) {
    let fib = bgpd_converged(bench);
    let counters = &fib["counters"];
    assert_eq!(counters["adopted"], routes, "{counters}");
    assert_eq!(
        (
            &counters["added"],
            &counters["replaced"],
            &counters["deleted"]
        ),
        (&0.into(), &0.into(), &0.into()),
        "route-sync changed the kernel after the restart: {counters}"
    );
    assert_eq!(kernel_routes(&bench.daemon_ns), routes);
    let changes = monitor.changes("10.200.");
    assert!(
        changes.is_empty(),
        "{} kernel route changes {during}, first: {:?}",
        changes.len(),
        changes.first()
    );
}

/// How many routes of [`TABLE_PREFIX`] the kernel of `netns` holds.
pub fn kernel_routes(netns: &Netns) -> usize {
    netns
        .route_destinations(Family::Ipv4, &["root", TABLE_PREFIX])
        .unwrap()
        .len()
}

pub fn wait_kernel_routes(netns: &Netns, count: usize) {
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
#[derive(Debug)]
pub struct RouteMonitor {
    daemon: lab::Daemon,
}

impl RouteMonitor {
    pub fn start(netns: &Netns) -> RouteMonitor {
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
    pub fn changes(&self, needle: &str) -> Vec<String> {
        self.daemon
            .log()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}
