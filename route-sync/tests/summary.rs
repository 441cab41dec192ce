//! `FibHandle::summary` (the counts bgpd's metrics read at every scrape) against a
//! real kernel: after every kind of change (adds, replaces, deletes, blackholes,
//! IPv6, a next hop that does not resolve, a route the kernel refuses, a route
//! deleted by hand, adoption after a restart, convergence) it says what the whole
//! snapshot says: routes per family and kind, failed routes, counters. Each test in
//! its own network namespace.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{Result, ensure};
use common::{in_netns, ip, veth, wait_for};
use ipnet::IpNet;
use route_sync::{Change, Config, FibHandle, NextHop, Route, Target};

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The summary equals what the snapshot lists; returns the routes per
/// (IPv6, kind).
///
/// The task keeps working between the snapshot and the summary (a link event of
/// the fresh veth makes it dump the kernel again, which counts a resync), so the
/// two are compared only when the summary read before the snapshot equals the
/// one read after it: the counters only grow, so the task published nothing in
/// between and the snapshot shows that same moment.
async fn agree(fib: &FibHandle) -> Result<BTreeMap<(bool, String), u64>> {
    fib.sync().await?;
    let mut attempts = 0;
    let (snapshot, summary) = loop {
        let before = fib.summary()?;
        let snapshot = fib.snapshot().await?;
        let after = fib.summary()?;
        if before == after {
            break (snapshot, after);
        }
        attempts += 1;
        ensure!(
            attempts < 50,
            "the summary changed across each of 50 snapshots: {before:?}, then {after:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut listed = BTreeMap::new();
    for route in &snapshot.installed {
        *listed
            .entry((route.prefix.addr().is_ipv6(), route.kind.clone()))
            .or_insert(0u64) += 1;
    }
    let counted: BTreeMap<(bool, String), u64> = summary
        .routes
        .iter()
        .map(|r| ((r.ipv6, r.kind.clone()), r.routes))
        .collect();
    ensure!(
        counted == listed,
        "summary {counted:?}, snapshot {listed:?}"
    );
    ensure!(
        summary.failed == snapshot.failed.len() as u64,
        "summary: {} failed, snapshot: {:?}",
        summary.failed,
        snapshot.failed
    );
    ensure!(summary.counters == snapshot.counters);
    ensure!(summary.converged == snapshot.converged);
    ensure!(summary.batch_durations.count == snapshot.counters.batches);
    let buckets: u64 = summary.batch_durations.buckets().iter().map(|b| b.1).sum();
    ensure!(buckets == summary.batch_durations.count);
    Ok(listed)
}

fn count(routes: &BTreeMap<(bool, String), u64>, ipv6: bool, kind: &str) -> u64 {
    routes
        .get(&(ipv6, kind.to_owned()))
        .copied()
        .unwrap_or_default()
}

#[test]
fn the_summary_says_what_the_snapshot_lists() {
    in_netns("the_summary_says_what_the_snapshot_lists", || async {
        veth("s0", &["10.0.0.1/24", "2001:db8::1/64"])?;
        let fib = route_sync::start(Config::default()).await?;
        let empty = agree(&fib).await?;
        ensure!(empty.is_empty(), "{empty:?}");

        // 50 IPv4 and 20 IPv6 unicast routes, two blackholes, one next hop that
        // no connected subnet covers.
        let mut changes = Vec::new();
        for i in 0..50u8 {
            changes.push(Change::Install(Route::via(
                net(&format!("10.1.{i}.0/24")),
                addr("10.0.0.2"),
            )));
        }
        for i in 0..20u16 {
            changes.push(Change::Install(Route::via(
                net(&format!("2001:db8:1:{i:x}::/64")),
                addr("2001:db8::2"),
            )));
        }
        changes.push(Change::Install(Route::blackhole(net("10.9.0.0/26"))));
        changes.push(Change::Install(Route::blackhole(net("2001:db8:9::/122"))));
        changes.push(Change::Install(Route::via(
            net("10.8.0.0/24"),
            addr("192.0.2.1"),
        )));
        fib.apply(changes).await?;
        let routes = agree(&fib).await?;
        ensure!(count(&routes, false, "unicast") == 50, "{routes:?}");
        ensure!(count(&routes, true, "unicast") == 20, "{routes:?}");
        ensure!(count(&routes, false, "blackhole") == 1, "{routes:?}");
        ensure!(count(&routes, true, "blackhole") == 1, "{routes:?}");
        ensure!(fib.summary()?.failed == 1);

        // Someone else's route where ours would go: the kernel refuses ours.
        ip(&[
            "route",
            "add",
            "10.7.0.0/24",
            "via",
            "10.0.0.3",
            "metric",
            "20",
        ])?;
        fib.install(Route::via(net("10.7.0.0/24"), addr("10.0.0.2")))
            .await?;
        agree(&fib).await?;
        ensure!(fib.summary()?.failed == 2);
        ensure!(fib.summary()?.counters.refused >= 1);

        // Replaced (ECMP), withdrawn, a blackhole becoming unicast, the
        // unresolvable one resolvable.
        fib.apply(vec![
            Change::Install(Route {
                prefix: net("10.1.0.0/24"),
                target: Target::Unicast(vec![
                    NextHop::gateway(addr("10.0.0.2")),
                    NextHop::gateway(addr("10.0.0.3")),
                ]),
            }),
            Change::Remove(net("10.1.1.0/24")),
            Change::Remove(net("2001:db8:1:1::/64")),
            Change::Install(Route::via(net("10.9.0.0/26"), addr("10.0.0.2"))),
            Change::Install(Route::via(net("10.8.0.0/24"), addr("10.0.0.4"))),
        ])
        .await?;
        let routes = agree(&fib).await?;
        ensure!(count(&routes, false, "unicast") == 51, "{routes:?}");
        ensure!(count(&routes, false, "blackhole") == 0, "{routes:?}");
        ensure!(count(&routes, true, "unicast") == 19, "{routes:?}");
        ensure!(fib.summary()?.failed == 1);

        // A route of ours deleted by hand: put back, counted the same.
        ip(&["route", "del", "10.1.2.0/24", "proto", "196"])?;
        wait_for("the route put back", async || {
            Ok(common::our_route("10.1.2.0/24")?.is_some())
        })
        .await?;
        agree(&fib).await?;

        // A restart: everything adopted, nothing desired yet, then a third of it
        // desired again and convergence.
        fib.shutdown(true).await?;
        let fib = route_sync::start(Config::default()).await?;
        let adopted = agree(&fib).await?;
        ensure!(count(&adopted, false, "unicast") == 51, "{adopted:?}");
        let summary = fib.summary()?;
        ensure!(summary.counters.adopted == 51 + 19 + 1, "{summary:?}");
        ensure!(!summary.converged);
        for i in 0..20u8 {
            fib.install(Route::via(net(&format!("10.1.{i}.0/24")), addr("10.0.0.2")))
                .await?;
        }
        fib.end_of_initial_convergence().await?;
        let routes = agree(&fib).await?;
        // 10.1.1.0/24 (withdrawn before the restart) added again, 10.1.0.0/24
        // replaced, the rest deleted.
        ensure!(count(&routes, false, "unicast") == 20, "{routes:?}");
        ensure!(routes.len() == 1, "{routes:?}");
        ensure!(fib.summary()?.converged);
        fib.shutdown(false).await?;
        Ok(())
    });
}
