//! route-sync against a real kernel, each test in its own network namespace.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;

use anyhow::Result;
use common::{gateways, in_netns, ip, our_route, restart_unchanged, routes, veth, wait_for};
use ipnet::IpNet;
use route_sync::{Change, Config, Ecmp, NextHop, Route, Target};

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn ecmp(prefix: &str, gateways: &[&str]) -> Route {
    Route {
        prefix: net(prefix),
        target: Target::Unicast(gateways.iter().map(|g| NextHop::gateway(addr(g))).collect()),
    }
}

/// d0: 10.0.0.1/24, 10.0.1.1/24 and 2001:db8::1/64, 2001:db8:0:1::1/64.
fn uplink() -> Result<()> {
    veth(
        "d0",
        &[
            "10.0.0.1/24",
            "10.0.1.1/24",
            "2001:db8::1/64",
            "2001:db8:0:1::1/64",
        ],
    )
}

#[test]
fn add_replace_delete_ipv4() {
    in_netns("add_replace_delete_ipv4", || async {
        uplink()?;
        let fib = route_sync::start(Config::default()).await?;
        fib.install(Route::via(net("10.1.0.0/24"), addr("10.0.0.2")))
            .await?;
        fib.sync().await?;
        let route = our_route("10.1.0.0/24")?.expect("route installed");
        assert_eq!(gateways(&route), ["10.0.0.2"]);
        assert_eq!(route["dev"], "d0");
        assert_eq!(route["metric"], 20);

        fib.install(Route::via(net("10.1.0.0/24"), addr("10.0.1.2")))
            .await?;
        fib.sync().await?;
        assert_eq!(gateways(&our_route("10.1.0.0/24")?.unwrap()), ["10.0.1.2"]);
        let snapshot = fib.snapshot().await?;
        assert_eq!(
            (snapshot.counters.added, snapshot.counters.replaced),
            (1, 1)
        );
        assert_eq!(snapshot.installed.len(), 1);
        assert_eq!(snapshot.installed[0].next_hops[0].device, "d0");

        fib.remove(net("10.1.0.0/24")).await?;
        fib.sync().await?;
        assert!(our_route("10.1.0.0/24")?.is_none());
        assert!(fib.snapshot().await?.installed.is_empty());
        fib.shutdown(false).await?;
        Ok(())
    });
}

#[test]
fn ecmp_blackhole_and_device_routes() {
    in_netns("ecmp_blackhole_and_device_routes", || async {
        uplink()?;
        let fib = route_sync::start(Config::default()).await?;
        fib.apply(vec![
            Change::Install(ecmp("10.2.0.0/24", &["10.0.1.2", "10.0.0.2"])),
            Change::Install(Route::blackhole(net("10.3.0.0/26"))),
            Change::Install(Route::device(net("10.4.0.0/24"), "d0")),
            Change::Install(Route {
                prefix: net("10.5.0.0/24"),
                target: Target::Unicast(vec![NextHop::Gateway {
                    address: addr("10.0.0.9"),
                    device: Some("d0".into()),
                }]),
            }),
        ])
        .await?;
        fib.sync().await?;
        assert_eq!(
            gateways(&our_route("10.2.0.0/24")?.unwrap()),
            ["10.0.0.2", "10.0.1.2"]
        );
        assert_eq!(our_route("10.3.0.0/26")?.unwrap()["type"], "blackhole");
        let device = our_route("10.4.0.0/24")?.unwrap();
        assert_eq!(
            (device["dev"].as_str(), device["scope"].as_str()),
            (Some("d0"), Some("link"))
        );
        assert_eq!(gateways(&our_route("10.5.0.0/24")?.unwrap()), ["10.0.0.9"]);
        // ECMP down to one path, then back to two.
        fib.install(ecmp("10.2.0.0/24", &["10.0.0.2"])).await?;
        fib.sync().await?;
        assert_eq!(gateways(&our_route("10.2.0.0/24")?.unwrap()), ["10.0.0.2"]);
        fib.install(ecmp("10.2.0.0/24", &["10.0.0.2", "10.0.1.2"]))
            .await?;
        fib.sync().await?;
        assert_eq!(
            gateways(&our_route("10.2.0.0/24")?.unwrap()),
            ["10.0.0.2", "10.0.1.2"]
        );
        fib.shutdown(false).await?;
        assert!(routes("-4", "196")?.is_empty());
        Ok(())
    });
}

#[test]
fn ecmp_off_installs_one_path() {
    in_netns("ecmp_off_installs_one_path", || async {
        uplink()?;
        let config = Config {
            ecmp: Ecmp::Off,
            ..Config::default()
        };
        let fib = route_sync::start(config).await?;
        fib.install(ecmp("10.2.0.0/24", &["10.0.1.2", "10.0.0.2"]))
            .await?;
        fib.sync().await?;
        assert_eq!(gateways(&our_route("10.2.0.0/24")?.unwrap()), ["10.0.0.2"]);
        fib.shutdown(false).await?;
        Ok(())
    });
}

#[test]
fn ipv6_unicast_ecmp_blackhole() {
    in_netns("ipv6_unicast_ecmp_blackhole", || async {
        uplink()?;
        let fib = route_sync::start(Config::default()).await?;
        fib.apply(vec![
            Change::Install(Route::via(net("2001:db8:100::/48"), addr("2001:db8::2"))),
            Change::Install(ecmp(
                "2001:db8:200::/48",
                &["2001:db8::2", "2001:db8:0:1::2"],
            )),
            Change::Install(Route::blackhole(net("2001:db8:300::/122"))),
        ])
        .await?;
        fib.sync().await?;
        assert_eq!(
            gateways(&our_route("2001:db8:100::/48")?.unwrap()),
            ["2001:db8::2"]
        );
        assert_eq!(
            gateways(&our_route("2001:db8:200::/48")?.unwrap()),
            ["2001:db8:0:1::2", "2001:db8::2"]
        );
        assert_eq!(
            our_route("2001:db8:300::/122")?.unwrap()["type"],
            "blackhole"
        );
        fib.install(Route::via(
            net("2001:db8:100::/48"),
            addr("2001:db8:0:1::2"),
        ))
        .await?;
        fib.remove(net("2001:db8:200::/48")).await?;
        fib.sync().await?;
        assert_eq!(
            gateways(&our_route("2001:db8:100::/48")?.unwrap()),
            ["2001:db8:0:1::2"]
        );
        assert!(our_route("2001:db8:200::/48")?.is_none());
        let snapshot = fib.snapshot().await?;
        assert!(snapshot.failed.is_empty(), "{:?}", snapshot.failed);
        fib.shutdown(false).await?;
        assert!(routes("-6", "196")?.is_empty());
        Ok(())
    });
}

fn restart_routes() -> Vec<Change> {
    let mut changes: Vec<Change> = (0..200)
        .map(|i| {
            Change::Install(Route::via(
                net(&format!("10.{}.{}.0/24", 100 + i / 256, i % 256)),
                addr("10.0.0.2"),
            ))
        })
        .collect();
    changes.push(Change::Install(ecmp(
        "10.9.0.0/16",
        &["10.0.0.2", "10.0.1.2"],
    )));
    changes.push(Change::Install(Route::blackhole(net("10.8.0.0/26"))));
    changes.push(Change::Install(Route::device(net("10.7.0.0/24"), "d0")));
    changes.push(Change::Install(Route::via(
        net("2001:db8:100::/48"),
        addr("2001:db8::2"),
    )));
    changes.push(Change::Install(ecmp(
        "2001:db8:200::/48",
        &["2001:db8::2", "2001:db8:0:1::2"],
    )));
    changes.push(Change::Install(Route::blackhole(net("2001:db8:300::/122"))));
    changes
}

#[test]
fn restart_adopts_routes_without_a_single_change() {
    in_netns("restart_adopts_routes_without_a_single_change", || async {
        uplink()?;
        let first = route_sync::start(Config::default()).await?;
        first.apply(restart_routes()).await?;
        first.sync().await?;
        let installed = first.snapshot().await?.installed.len();
        assert_eq!(installed, 206);
        first.shutdown(true).await?;
        let (second, snapshot, mut monitor) = restart_unchanged(restart_routes(), 206).await?;
        assert_eq!(snapshot.installed.len(), 206);
        // Control: a real change is seen by the monitor.
        second
            .install(Route::via(net("10.200.0.0/24"), addr("10.0.0.2")))
            .await?;
        second.sync().await?;
        monitor.mark().await?;
        let seen = monitor
            .lines()?
            .into_iter()
            .filter(|l| l.contains("proto 196"))
            .count();
        assert_eq!(seen, 1);
        second.shutdown(false).await?;
        Ok(())
    });
}

#[test]
fn adopted_routes_nobody_wants_go_after_convergence() {
    in_netns(
        "adopted_routes_nobody_wants_go_after_convergence",
        || async {
            uplink()?;
            let first = route_sync::start(Config::default()).await?;
            first
                .install(Route::via(net("10.1.0.0/24"), addr("10.0.0.2")))
                .await?;
            first
                .install(Route::via(net("10.1.1.0/24"), addr("10.0.0.2")))
                .await?;
            first
                .install(Route::via(net("10.1.2.0/24"), addr("10.0.0.2")))
                .await?;
            first.shutdown(true).await?;

            let second = route_sync::start(Config::default()).await?;
            second
                .install(Route::via(net("10.1.0.0/24"), addr("10.0.0.2")))
                .await?;
            // A different next hop for an adopted route: replaced, not re-added.
            second
                .install(Route::via(net("10.1.1.0/24"), addr("10.0.1.2")))
                .await?;
            second.sync().await?;
            assert!(
                our_route("10.1.2.0/24")?.is_some(),
                "kept until convergence"
            );
            assert_eq!(gateways(&our_route("10.1.1.0/24")?.unwrap()), ["10.0.1.2"]);
            assert_eq!(second.end_of_initial_convergence().await?, 1);
            assert!(our_route("10.1.2.0/24")?.is_none());
            assert!(our_route("10.1.0.0/24")?.is_some());
            let counters = second.snapshot().await?.counters;
            assert_eq!(
                (counters.added, counters.replaced, counters.deleted),
                (0, 1, 1)
            );
            second.shutdown(false).await?;
            Ok(())
        },
    );
}

#[test]
fn routes_of_other_protocols_are_untouched() {
    in_netns("routes_of_other_protocols_are_untouched", || async {
        uplink()?;
        ip(&[
            "route",
            "add",
            "10.1.1.0/24",
            "via",
            "10.0.0.3",
            "proto",
            "static",
            "metric",
            "20",
        ])?;
        ip(&[
            "route",
            "add",
            "10.6.0.0/24",
            "via",
            "10.0.0.3",
            "proto",
            "12",
        ])?;
        ip(&[
            "route",
            "add",
            "10.6.1.0/24",
            "via",
            "10.0.0.3",
            "proto",
            "196",
            "table",
            "100",
        ])?;
        let others = |_: ()| -> Result<Vec<String>> {
            let mut all = vec![
                ip(&["route", "show", "proto", "static"])?,
                ip(&["route", "show", "proto", "12"])?,
            ];
            all.push(ip(&["route", "show", "table", "100"])?);
            Ok(all)
        };
        let before = others(())?;
        let fib = route_sync::start(Config::default()).await?;
        fib.apply(vec![
            Change::Install(Route::via(net("10.1.0.0/24"), addr("10.0.0.2"))),
            Change::Install(Route::via(net("10.1.1.0/24"), addr("10.0.0.2"))),
            Change::Install(Route::via(net("10.1.2.0/24"), addr("10.0.0.2"))),
        ])
        .await?;
        fib.sync().await?;
        // The clash with the static route is reported; the others go in.
        let snapshot = fib.snapshot().await?;
        assert_eq!(snapshot.failed.len(), 1, "{:?}", snapshot.failed);
        let reason = &snapshot.failed[0].reason;
        assert!(
            reason.starts_with("add 10.1.1.0/24 via 10.0.0.2 dev d0:"),
            "{reason}"
        );
        assert!(reason.contains("(EEXIST)"), "{reason}");
        assert!(our_route("10.1.0.0/24")?.is_some() && our_route("10.1.2.0/24")?.is_some());
        assert_eq!(snapshot.installed.len(), 2);
        fib.end_of_initial_convergence().await?;
        fib.shutdown(false).await?;
        assert!(routes("-4", "196")?.is_empty());
        assert_eq!(others(())?, before);
        Ok(())
    });
}

#[test]
fn route_deleted_by_hand_is_restored() {
    in_netns("route_deleted_by_hand_is_restored", || async {
        uplink()?;
        let fib = route_sync::start(Config::default()).await?;
        fib.install(Route::via(net("10.1.0.0/24"), addr("10.0.0.2")))
            .await?;
        fib.install(Route::blackhole(net("2001:db8:300::/122")))
            .await?;
        fib.sync().await?;
        ip(&["route", "del", "10.1.0.0/24", "proto", "196"])?;
        ip(&[
            "-6",
            "route",
            "del",
            "blackhole",
            "2001:db8:300::/122",
            "proto",
            "196",
        ])?;
        wait_for("the deleted routes to be back", async || {
            Ok(our_route("10.1.0.0/24")?.is_some() && our_route("2001:db8:300::/122")?.is_some())
        })
        .await?;
        // Changed by hand: put back as desired.
        ip(&[
            "route",
            "replace",
            "10.1.0.0/24",
            "via",
            "10.0.1.7",
            "proto",
            "196",
            "metric",
            "20",
        ])?;
        wait_for("the changed route to be put back", async || {
            Ok(our_route("10.1.0.0/24")?.is_some_and(|r| gateways(&r) == ["10.0.0.2"]))
        })
        .await?;
        assert!(fib.snapshot().await?.counters.external_changes >= 3);
        fib.shutdown(false).await?;
        Ok(())
    });
}

#[test]
fn recursive_next_hop_is_resolved_and_re_resolved() {
    in_netns("recursive_next_hop_is_resolved_and_re_resolved", || async {
        uplink()?;
        ip(&[
            "route",
            "add",
            "192.0.2.0/24",
            "via",
            "10.0.0.2",
            "proto",
            "static",
        ])?;
        let fib = route_sync::start(Config::default()).await?;
        fib.install(Route::via(net("198.51.100.0/24"), addr("192.0.2.7")))
            .await?;
        fib.install(Route::via(net("198.51.101.0/24"), addr("203.0.113.1")))
            .await?;
        fib.sync().await?;
        let route = our_route("198.51.100.0/24")?.expect("resolved through 192.0.2.0/24");
        assert_eq!(
            (gateways(&route), route["dev"].as_str()),
            (vec!["10.0.0.2".to_string()], Some("d0"))
        );
        let snapshot = fib.snapshot().await?;
        assert_eq!(snapshot.failed.len(), 1);
        assert!(
            snapshot.failed[0]
                .reason
                .contains("203.0.113.1 is unresolvable"),
            "{:?}",
            snapshot.failed
        );
        assert!(our_route("198.51.101.0/24")?.is_none());

        ip(&[
            "route",
            "replace",
            "192.0.2.0/24",
            "via",
            "10.0.1.2",
            "proto",
            "static",
        ])?;
        wait_for("re-resolution through 10.0.1.2", async || {
            Ok(our_route("198.51.100.0/24")?.is_some_and(|r| gateways(&r) == ["10.0.1.2"]))
        })
        .await?;
        // Now the unresolvable one gets a route: installed.
        ip(&[
            "route",
            "add",
            "203.0.113.0/24",
            "nexthop",
            "via",
            "10.0.0.5",
            "nexthop",
            "via",
            "10.0.1.5",
        ])?;
        wait_for("203.0.113.1 to resolve over two paths", async || {
            Ok(our_route("198.51.101.0/24")?
                .is_some_and(|r| gateways(&r) == ["10.0.0.5", "10.0.1.5"]))
        })
        .await?;
        ip(&["route", "del", "192.0.2.0/24"])?;
        wait_for("the route to go with its next hop", async || {
            Ok(our_route("198.51.100.0/24")?.is_none())
        })
        .await?;
        let snapshot = fib.snapshot().await?;
        assert!(
            snapshot
                .failed
                .iter()
                .any(|f| f.reason.contains("192.0.2.7 is unresolvable"))
        );
        fib.shutdown(false).await?;
        Ok(())
    });
}

#[test]
fn link_down_and_up() {
    in_netns("link_down_and_up", || async {
        uplink()?;
        veth("d2", &["10.0.2.1/24"])?;
        let fib = route_sync::start(Config::default()).await?;
        fib.install(Route::via(net("10.1.0.0/24"), addr("10.0.0.2")))
            .await?;
        fib.install(Route::via(net("10.1.2.0/24"), addr("10.0.2.2")))
            .await?;
        fib.install(Route {
            prefix: net("10.1.3.0/24"),
            target: Target::Unicast(vec![NextHop::Gateway {
                address: addr("10.0.0.9"),
                device: Some("d0".into()),
            }]),
        })
        .await?;
        fib.sync().await?;
        assert!(our_route("10.1.0.0/24")?.is_some() && our_route("10.1.3.0/24")?.is_some());
        ip(&["link", "set", "d0", "down"])?;
        wait_for("routes through d0 to be reported", async || {
            Ok(fib.snapshot().await?.failed.len() == 2)
        })
        .await?;
        assert!(our_route("10.1.0.0/24")?.is_none());
        assert!(
            our_route("10.1.2.0/24")?.is_some(),
            "a route through another link stays"
        );
        ip(&["link", "set", "d0", "up"])?;
        wait_for("routes through d0 to be back", async || {
            Ok(our_route("10.1.0.0/24")?.is_some() && our_route("10.1.3.0/24")?.is_some())
        })
        .await?;
        assert!(fib.snapshot().await?.failed.is_empty());
        fib.shutdown(false).await?;
        Ok(())
    });
}
