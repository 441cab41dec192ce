//! The fib task against a real kernel, in a private network namespace: FIB changes
//! become routes of protocol 196 (ECMP, blackhole, removal), the snapshot `bgpctl show
//! fib` reads, routes adopted from an earlier run stay until the first convergence,
//! and the rib task's best routes reach the kernel end to end.

#![allow(clippy::unwrap_used)]

mod rib_support;

use std::time::Duration;

use bgpd::events::Events;
use bgpd::fib::FibView;
use bgpd::tasks::{FibChange, RibInput};
use lab::fixture::kernel_route;
use lab::{Netns, gateways};
use rib_support::*;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A namespace with a veth pair, d0 holding 10.0.0.1/24 (gateways 10.0.0.x resolve);
/// `None` when the lab is missing (see `lab::require!`).
fn namespace() -> Option<(lab::Ready, Netns)> {
    let ready = lab::require!(Root)?;
    let netns = Netns::new("ribfib").unwrap();
    netns.lo_up().unwrap();
    netns
        .ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d0p"])
        .unwrap();
    netns
        .ip(&["addr", "add", "10.0.0.1/24", "dev", "d0"])
        .unwrap();
    netns.ip(&["link", "set", "d0p", "up"]).unwrap();
    netns.ip(&["link", "set", "d0", "up"]).unwrap();
    Some((ready, netns))
}

/// Routes of protocol 196 in the main table.
fn ours(netns: &Netns) -> Vec<Value> {
    netns
        .ip_json(&["route", "show", "proto", "196"])
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Runs `test` to its end on a current-thread runtime inside `netns`.
fn block_on_in(netns: &Netns, test: impl Future<Output = ()> + Send) {
    netns
        .enter(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(test)
        })
        .unwrap();
}

/// The fib task over route-sync's defaults (`keep_routes` as `bgpd::fib::spawn` takes it).
async fn spawn_fib(
    keep_routes: bool,
    events: Events,
) -> (mpsc::Sender<FibChange>, FibView, JoinHandle<()>) {
    bgpd::fib::spawn(route_sync::Config::default(), keep_routes, events)
        .await
        .unwrap()
}

/// Polls `check` until it holds (generous timeout for a loaded machine).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn fib_changes_reach_the_kernel() {
    let Some((_ready, netns)) = namespace() else {
        return;
    };
    block_on_in(&netns, async {
        let events = Events::new();
        let mut told = events.subscribe();
        let (fib, view, task) = spawn_fib(false, events).await;
        fib.send(install("10.1.0.0/24", &["10.0.0.2", "10.0.0.3"]))
            .await
            .unwrap();
        fib.send(FibChange::Blackhole {
            prefix: net("10.244.1.0/26"),
        })
        .await
        .unwrap();
        fib.send(install("10.2.0.0/24", &["10.0.0.4"]))
            .await
            .unwrap();
        fib.send(FibChange::Remove {
            prefix: net("10.2.0.0/24"),
        })
        .await
        .unwrap();
        eventually("three changes applied", || {
            kernel_route(&netns, "10.1.0.0/24").is_some()
                && kernel_route(&netns, "10.244.1.0/26").is_some()
        })
        .await;
        view.sync().await.unwrap();
        assert_eq!(
            gateways(&kernel_route(&netns, "10.1.0.0/24").unwrap()),
            ["10.0.0.2", "10.0.0.3"]
        );
        assert_eq!(
            kernel_route(&netns, "10.244.1.0/26").unwrap()["type"],
            "blackhole"
        );
        assert!(kernel_route(&netns, "10.2.0.0/24").is_none());

        let snapshot = view.snapshot().await.unwrap();
        assert_eq!(snapshot.installed.len(), 2);
        let kinds: Vec<(String, &str)> = snapshot
            .installed
            .iter()
            .map(|route| (route.prefix.to_string(), route.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("10.1.0.0/24".to_owned(), "unicast"),
                ("10.244.1.0/26".to_owned(), "blackhole")
            ]
        );

        // Every batch handed to route-sync was told on the event stream, and
        // every kernel operation route by route.
        let mut told_changes = 0;
        let mut operations = Vec::new();
        while let Ok(occurrence) = told.try_recv() {
            match &occurrence.event {
                bgpd::events::Event::Kernel { changes, .. } => told_changes += changes,
                bgpd::events::Event::KernelRoute(operation) => operations.push(operation.clone()),
                other => panic!("unexpected event {other:?}"),
            }
        }
        assert_eq!(told_changes, 4, "changes told as kernel batches");
        let shown: Vec<(String, &str, &str, Vec<String>)> = operations
            .iter()
            .filter(|op| op.prefix != net("10.2.0.0/24"))
            .map(|op| {
                let hops = op
                    .next_hops
                    .iter()
                    .map(|hop| format!("{:?} {}", hop.gateway, hop.device))
                    .collect();
                (
                    op.prefix.to_string(),
                    op.action.name(),
                    op.kind.as_str(),
                    hops,
                )
            })
            .collect();
        let unicast = vec![
            "Some(10.0.0.2) d0".to_owned(),
            "Some(10.0.0.3) d0".to_owned(),
        ];
        assert_eq!(
            shown,
            [
                ("10.1.0.0/24".to_owned(), "add", "unicast", unicast),
                ("10.244.1.0/26".to_owned(), "add", "blackhole", vec![]),
            ],
            "kernel operations {operations:?}"
        );
        // 10.2.0.0/24 came and went: never reached the kernel, or added then
        // deleted.
        let brief: Vec<&str> = operations
            .iter()
            .filter(|op| op.prefix == net("10.2.0.0/24"))
            .map(|op| op.action.name())
            .collect();
        assert!(
            brief.is_empty() || brief == ["add", "delete"],
            "10.2.0.0/24: {brief:?}"
        );
        assert!(operations.iter().all(|op| op.error.is_none()));

        // A stop, then every sender gone: route-sync shuts down and
        // (keep_routes false) removes our routes.
        view.stop();
        drop(fib);
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap();
    });
    assert!(ours(&netns).is_empty(), "{:?}", ours(&netns));
}

#[test]
fn without_a_stop_the_fib_task_leaves_the_kernel_as_it_is() {
    let Some((_ready, netns)) = namespace() else {
        return;
    };
    block_on_in(&netns, async {
        let (fib, view, task) = spawn_fib(false, Events::new()).await;
        fib.send(install("10.1.0.0/24", &["10.0.0.2"]))
            .await
            .unwrap();
        view.sync().await.unwrap();
        // The rib task failed: its sender is gone, nobody asked for a stop.
        drop(fib);
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap();
        assert!(
            kernel_route(&netns, "10.1.0.0/24").is_some(),
            "the route was removed without a stop"
        );
        assert_eq!(view.snapshot().await.unwrap().installed.len(), 1);
    });
}

#[test]
fn adopted_routes_stay_until_the_first_convergence() {
    let Some((_ready, netns)) = namespace() else {
        return;
    };
    // Left behind by an earlier run: one still wanted, one not.
    for prefix in ["10.1.0.0/24", "10.9.0.0/24"] {
        netns
            .ip(&[
                "route", "add", prefix, "via", "10.0.0.2", "proto", "196", "metric", "20",
            ])
            .unwrap();
    }
    block_on_in(&netns, async {
        let (fib, view, _task) = spawn_fib(true, Events::new()).await;
        fib.send(install("10.1.0.0/24", &["10.0.0.2"]))
            .await
            .unwrap();
        view.sync().await.unwrap();
        let snapshot = view.snapshot().await.unwrap();
        assert!(!snapshot.converged);
        assert_eq!(snapshot.counters.adopted, 2);
        assert_eq!(
            (snapshot.counters.added, snapshot.counters.replaced),
            (0, 0),
            "an unchanged route is not touched"
        );
        assert!(
            kernel_route(&netns, "10.9.0.0/24").is_some(),
            "kept until convergence"
        );

        fib.send(FibChange::Converged).await.unwrap();
        eventually("the stale route removed", || {
            kernel_route(&netns, "10.9.0.0/24").is_none()
        })
        .await;
        assert!(kernel_route(&netns, "10.1.0.0/24").is_some());
        assert!(view.snapshot().await.unwrap().converged);
    });
}

#[test]
fn best_routes_from_the_rib_task_reach_the_kernel() {
    let Some((_ready, netns)) = namespace() else {
        return;
    };
    block_on_in(&netns, async {
        let events = Events::new();
        let mut told = events.subscribe();
        let (fib, _view, _fib_task) = spawn_fib(false, events.clone()).await;
        let (rib, _questions, _rib_task) =
            bgpd::rib::spawn(config("max_paths = 4\n"), Some(fib), events);
        let mut sessions = Vec::new();
        for (id, address) in [(1, "10.0.0.2"), (2, "10.0.0.3")] {
            let (sender, receiver) = bgpd::queue::channel(16);
            sessions.push(receiver);
            let info = Session::v4(address, 65001).info();
            rib.send(RibInput::PeerUp(bgpd::tasks::PeerUp {
                peer: id,
                info,
                outbound: sender,
            }))
            .await
            .unwrap();
            rib.send(RibInput::Update {
                peer: id,
                update: Box::new(announce(&["10.5.0.0/24"], attrs(&[65001], address))),
                treat_as_withdraw: false,
            })
            .await
            .unwrap();
        }
        eventually("an ECMP route over both peers", || {
            kernel_route(&netns, "10.5.0.0/24")
                .is_some_and(|r| gateways(&r) == ["10.0.0.2", "10.0.0.3"])
        })
        .await;
        rib.send(RibInput::PeerDown {
            peer: 1,
            stale_for: None,
        })
        .await
        .unwrap();
        eventually("the route through the remaining peer", || {
            kernel_route(&netns, "10.5.0.0/24").is_some_and(|r| gateways(&r) == ["10.0.0.3"])
        })
        .await;
        rib.send(RibInput::PeerDown {
            peer: 2,
            stale_for: None,
        })
        .await
        .unwrap();
        eventually("the route gone", || {
            kernel_route(&netns, "10.5.0.0/24").is_none()
        })
        .await;

        // The best-route changes of 10.5.0.0/24 were told on the event stream,
        // in order: ECMP over both, the remaining peer, gone.
        let mut best = Vec::new();
        while let Ok(occurrence) = told.try_recv() {
            if let bgpd::events::Event::BestRoute(change) = &occurrence.event {
                best.push(change.clone());
            }
        }
        let shown: Vec<(&str, String, Vec<String>, &str, &str)> = best
            .iter()
            .map(|change| {
                (
                    change.action.name(),
                    change.prefix.to_string(),
                    change.next_hops.iter().map(ToString::to_string).collect(),
                    change.as_path.as_str(),
                    change.source.as_str(),
                )
            })
            .collect();
        let prefix = "10.5.0.0/24".to_owned();
        let hops = |hops: &[&str]| hops.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shown,
            [
                (
                    "add",
                    prefix.clone(),
                    hops(&["10.0.0.2"]),
                    "65001",
                    "10.0.0.2"
                ),
                (
                    "change",
                    prefix.clone(),
                    hops(&["10.0.0.2", "10.0.0.3"]),
                    "65001",
                    "10.0.0.2"
                ),
                (
                    "change",
                    prefix.clone(),
                    hops(&["10.0.0.3"]),
                    "65001",
                    "10.0.0.3"
                ),
                ("withdraw", prefix, hops(&[]), "", "10.0.0.3"),
            ],
            "best-route events {best:?}"
        );
    });
}
