//! IPv6 link-local next hops and IPv4 routes through IPv6 next hops (RFC 8950,
//! RTA_VIA) and on-link next hops through a VXLAN device (RTNH_F_ONLINK) against a
//! real kernel, each test in its own network namespace.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;

use anyhow::Result;
use common::{in_netns, ip, our_route, restart_unchanged, routes, veth, wait_for};
use ipnet::IpNet;
use route_sync::{Change, Config, NextHop, Route, Target};
use serde_json::Value;

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn on_link(address: &str, device: &str) -> NextHop {
    NextHop::Gateway {
        address: address.parse::<IpAddr>().unwrap(),
        device: Some(device.into()),
    }
}

fn pair(global: &str, link_local: &str, device: &str) -> NextHop {
    NextHop::GlobalOrLinkLocal {
        global: global.parse().unwrap(),
        link_local: link_local.parse().unwrap(),
        device: device.into(),
    }
}

fn route(prefix: &str, hops: Vec<NextHop>) -> Change {
    Change::Install(Route {
        prefix: net(prefix),
        target: Target::Unicast(hops),
    })
}

/// `(gateway or via host, device)` of each next hop of a route as `ip -j`
/// prints it, sorted; `via inet6` shows as `inet6 ADDRESS`.
fn hops(route: &Value) -> Vec<(String, String)> {
    let one = |hop: &Value| {
        let gateway = match (hop["gateway"].as_str(), hop["via"]["host"].as_str()) {
            (Some(gateway), _) => gateway.to_string(),
            (None, Some(host)) => format!("{} {host}", hop["via"]["family"].as_str().unwrap()),
            (None, None) => String::new(),
        };
        (gateway, hop["dev"].as_str().unwrap_or_default().to_string())
    };
    let mut hops: Vec<(String, String)> = match route["nexthops"].as_array() {
        Some(list) => list.iter().map(one).collect(),
        None => vec![one(route)],
    };
    hops.sort();
    hops
}

fn expect(prefix: &str, want: &[(&str, &str)]) -> Result<()> {
    let route = our_route(prefix)?.unwrap_or_else(|| panic!("{prefix} not installed"));
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(g, d)| (g.to_string(), d.to_string()))
        .collect();
    assert_eq!(hops(&route), want, "{prefix}: {route}");
    Ok(())
}

/// d0: 2001:db8::1/64 and 10.0.0.1/24; d1: 2001:db8:1::1/64.
fn links() -> Result<()> {
    veth("d0", &["2001:db8::1/64", "10.0.0.1/24"])?;
    veth("d1", &["2001:db8:1::1/64"])
}

fn changes() -> Vec<Change> {
    vec![
        // IPv6 through a link-local gateway on its device.
        route("2001:db8:5::/48", vec![on_link("fe80::2", "d0")]),
        // IPv4 through IPv6 link-local gateways: one, then ECMP over two devices.
        route("10.6.0.0/24", vec![on_link("fe80::2", "d0")]),
        route(
            "10.8.0.0/24",
            vec![on_link("fe80::2", "d0"), on_link("fe80::3", "d1")],
        ),
        // IPv4 through a global IPv6 gateway, resolved on the connected subnet.
        route(
            "10.7.0.0/24",
            vec![NextHop::gateway("2001:db8::2".parse().unwrap())],
        ),
        // Global + link-local pairs: the global one is connected, or not reachable.
        route("10.9.0.0/24", vec![pair("2001:db8::2", "fe80::2", "d0")]),
        route(
            "2001:db8:6::/48",
            vec![pair("2001:db8:99::1", "fe80::2", "d0")],
        ),
    ]
}

fn expect_all() -> Result<()> {
    expect("2001:db8:5::/48", &[("fe80::2", "d0")])?;
    expect("10.6.0.0/24", &[("inet6 fe80::2", "d0")])?;
    expect(
        "10.8.0.0/24",
        &[("inet6 fe80::2", "d0"), ("inet6 fe80::3", "d1")],
    )?;
    expect("10.7.0.0/24", &[("inet6 2001:db8::2", "d0")])?;
    expect("10.9.0.0/24", &[("inet6 2001:db8::2", "d0")])?;
    expect("2001:db8:6::/48", &[("fe80::2", "d0")])
}

#[test]
fn link_local_and_ipv6_next_hops_of_ipv4_routes() {
    in_netns("link_local_and_ipv6_next_hops_of_ipv4_routes", || async {
        links()?;
        let fib = route_sync::start(Config::default()).await?;
        fib.apply(changes()).await?;
        fib.sync().await?;
        let snapshot = fib.snapshot().await?;
        assert!(snapshot.failed.is_empty(), "{:?}", snapshot.failed);
        assert_eq!(snapshot.installed.len(), 6);
        expect_all()?;

        // The global address of a pair becomes reachable (through d1): the
        // route moves to it; when that route goes, back to the link-local one.
        ip(&["-6", "route", "add", "2001:db8:99::/64", "dev", "d1"])?;
        wait_for("2001:db8:6::/48 through the global address", async || {
            Ok(our_route("2001:db8:6::/48")?
                .is_some_and(|r| hops(&r) == [("2001:db8:99::1".into(), "d1".into())]))
        })
        .await?;
        ip(&["-6", "route", "del", "2001:db8:99::/64", "dev", "d1"])?;
        wait_for("2001:db8:6::/48 back through fe80::2", async || {
            Ok(our_route("2001:db8:6::/48")?
                .is_some_and(|r| hops(&r) == [("fe80::2".into(), "d0".into())]))
        })
        .await?;

        // A link-local gateway without a device, an IPv4 gateway of an IPv6 route
        // and an unknown device are reported, not installed.
        fib.apply(vec![
            route(
                "10.10.0.0/24",
                vec![NextHop::gateway("fe80::2".parse().unwrap())],
            ),
            route(
                "2001:db8:7::/48",
                vec![NextHop::gateway("10.0.0.2".parse().unwrap())],
            ),
            route(
                "10.11.0.0/24",
                vec![pair("2001:db8:98::1", "fe80::2", "nope0")],
            ),
        ])
        .await?;
        fib.sync().await?;
        let failed: Vec<String> = fib
            .snapshot()
            .await?
            .failed
            .iter()
            .map(|f| f.reason.clone())
            .collect();
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert!(
            failed.iter().any(|r| r.contains("needs a device")),
            "{failed:?}"
        );
        assert!(
            failed.iter().any(|r| r.contains("IPv4 next hop")),
            "{failed:?}"
        );
        assert!(failed.iter().any(|r| r.contains("nope0")), "{failed:?}");
        assert!(our_route("10.10.0.0/24")?.is_none());
        fib.shutdown(false).await?;
        assert!(routes("-4", "196")?.is_empty());
        assert!(routes("-6", "196")?.is_empty());
        Ok(())
    });
}

#[test]
fn restart_adopts_link_local_and_via_inet6_routes_unchanged() {
    in_netns(
        "restart_adopts_link_local_and_via_inet6_routes_unchanged",
        || async {
            links()?;
            let first = route_sync::start(Config::default()).await?;
            first.apply(changes()).await?;
            first.sync().await?;
            assert_eq!(first.snapshot().await?.installed.len(), 6);
            first.shutdown(true).await?;
            let (second, snapshot, _) = restart_unchanged(changes(), 6).await?;
            assert_eq!(snapshot.installed.len(), 6);
            expect_all()?;
            // The snapshot names the IPv6 gateways of IPv4 routes.
            let installed = snapshot
                .installed
                .iter()
                .find(|r| r.prefix == net("10.6.0.0/24"))
                .unwrap();
            assert_eq!(
                installed.next_hops[0].gateway,
                Some("fe80::2".parse::<IpAddr>().unwrap())
            );
            assert_eq!(installed.next_hops[0].device, "d0");
            second.shutdown(false).await?;
            Ok(())
        },
    );
}

/// Routes through a VXLAN peer's tunnel address on the VXLAN device, which no
/// connected subnet covers: `via A dev vxlan.t onlink`, IPv4 and IPv6.
fn overlay_changes() -> Vec<Change> {
    let onlink = |address: &str| NextHop::OnLink {
        address: address.parse().unwrap(),
        device: "vxlan.t".into(),
    };
    vec![
        route("10.244.1.0/26", vec![onlink("10.244.1.0")]),
        route("fd00:10:244:1::/122", vec![onlink("fd00:10:244:1::")]),
    ]
}

#[test]
fn onlink_next_hops_through_a_vxlan_device_and_restart_unchanged() {
    in_netns(
        "onlink_next_hops_through_a_vxlan_device_and_restart_unchanged",
        || async {
            veth("d0", &["192.0.2.1/24"])?;
            ip(&[
                "link",
                "add",
                "vxlan.t",
                "type",
                "vxlan",
                "id",
                "4096",
                "dstport",
                "4789",
                "local",
                "192.0.2.1",
                "dev",
                "d0",
                "nolearning",
            ])?;
            ip(&["link", "set", "vxlan.t", "up"])?;
            let first = route_sync::start(Config::default()).await?;
            first.apply(overlay_changes()).await?;
            first.sync().await?;
            let snapshot = first.snapshot().await?;
            assert!(snapshot.failed.is_empty(), "{:?}", snapshot.failed);
            for (prefix, gateway) in [
                ("10.244.1.0/26", "10.244.1.0"),
                ("fd00:10:244:1::/122", "fd00:10:244:1::"),
            ] {
                let route = our_route(prefix)?.unwrap_or_else(|| panic!("{prefix} missing"));
                assert_eq!(hops(&route), [(gateway.to_string(), "vxlan.t".to_string())]);
                let flags = route["flags"].as_array().cloned().unwrap_or_default();
                assert!(flags.iter().any(|f| f == "onlink"), "{route}");
            }
            first.shutdown(true).await?;
            let (second, _, _) = restart_unchanged(overlay_changes(), 2).await?;
            second.shutdown(false).await?;
            Ok(())
        },
    );
}
