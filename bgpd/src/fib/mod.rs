//! The fib task: best routes from the rib task into the kernel, through route-sync.
//!
//! # Entry points (for `daemon.rs` and the control server)
//!
//! ```no_run
//! # async fn example(config: std::sync::Arc<bgpd::config::Config>) -> anyhow::Result<()> {
//! let events = bgpd::events::Events::new();
//! let keep = config.fib.sync.keep_on_shutdown || config.bgp.graceful_restart.enabled;
//! let (fib_sender, fib_view, fib_task) =
//!     bgpd::fib::spawn(config.fib.sync.clone(), keep, events.clone()).await?;
//! let (rib, _questions, rib_task) = bgpd::rib::spawn(config.clone(), Some(fib_sender), events);
//! // `bgpctl show fib`: route-sync's snapshot, its JSON as it is.
//! let _snapshot = fib_view.snapshot().await?;
//! // On exit: stop, drop every RibInput sender, await the rib task, then the fib
//! // task (which shuts route-sync down, keeping the routes when `keep` was true).
//! fib_view.stop();
//! drop(rib);
//! rib_task.await?;
//! fib_task.await?;
//! # Ok(())
//! # }
//! ```
//!
//! - [`spawn`] starts route-sync (which adopts the kernel's routes of our protocol
//!   before it returns) and the fib task, and returns the sender for
//!   [`FibChange`]s (capacity [`FIB_CAPACITY`]), a [`FibView`] for snapshots, and the
//!   task's handle. The task ends when every sender is gone. After [`FibView::stop`]
//!   it then shuts route-sync down, keeping the routes in the kernel when
//!   `keep_routes` is true (graceful restart or `keep_on_shutdown`); without it (the
//!   rib task failed) it leaves the kernel as it is, for the next start to adopt.
//! - Changes are applied in batches: the task takes what is queued (up to
//!   [`MAX_FIB_BATCH`]) and hands it to route-sync in one `apply`; each batch is told
//!   on the event stream (`Event::Kernel`), and route-sync's task tells every kernel
//!   operation route by route (`Event::KernelRoute`, through
//!   [`KernelObserver`](crate::events::KernelObserver)) while somebody listens.
//! - `FibChange::Converged` (first full convergence, from the rib task) is passed on
//!   as `end_of_initial_convergence` after every change before it: only then does
//!   route-sync delete the routes it adopted at start that nobody asked for again.
//! - The rib task never sends a route whose next hop is this node (locally
//!   originated routes have none; a peer's route with one of our addresses as next
//!   hop is ignored on receipt), so every `Install` here has real gateways.
//! - IPv6 link-local next hops (`InstallOnLink`) go out of the interface that holds
//!   the session's local address, looked up once per batch: a global + link-local
//!   pair becomes [`route_sync::NextHop::GlobalOrLinkLocal`] (the global address
//!   while it resolves), a link-local one alone `via fe80::… dev IF`. IPv6 next hops
//!   of IPv4 routes (RFC 8950) are passed on as they are: route-sync installs them
//!   `via inet6`. When no interface holds the local address, the global address is
//!   used, or the link-local one without a device, which route-sync reports in
//!   `bgpctl show fib` instead of installing.
//! - The VXLAN overlay ([`overlay`], with `[ipam]`): the dataplane task's routes of
//!   the remote blocks (on a `watch`, the latest wins) are merged with the rib's and
//!   win for their prefixes; the first convergence waits for their first value.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use route_sync::{Change, FibHandle, NextHop, Route, Snapshot, Target};

pub mod overlay;

use overlay::Merge;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::dataplane_task::OverlayReceiver;
use crate::events::{Event, Events};
use crate::session::addresses::canonical;
use crate::tasks::{FIB_CAPACITY, FibChange, FibNextHop};

/// Most changes handed to route-sync in one `apply`.
pub const MAX_FIB_BATCH: usize = 4096;

/// What the control server and the daemon need of the fib task.
#[derive(Clone, Debug)]
pub struct FibView {
    handle: FibHandle,
    stopping: Arc<AtomicBool>,
}

impl FibView {
    /// Says that the daemon stops in order: once its input ends, the fib task shuts
    /// route-sync down (keeping or removing the routes, per `keep_routes`). Without
    /// it, an end of input means the rib task failed, and the fib task leaves the
    /// kernel as it is for the next start to adopt.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// What is installed, what failed and why (`bgpctl show fib`).
    pub async fn snapshot(&self) -> Result<Snapshot, route_sync::Error> {
        self.handle.snapshot().await
    }

    /// The counts for metrics (routes per family and kind, failed routes,
    /// counters, batch durations), as route-sync published them after its last
    /// batch: never waits for its task, whatever the number of routes.
    pub fn summary(&self) -> Result<route_sync::Summary, route_sync::Error> {
        self.handle.summary()
    }

    /// Waits until every change handed over so far reached the kernel.
    pub async fn sync(&self) -> Result<(), route_sync::Error> {
        self.handle.sync().await
    }
}

/// Starts route-sync and the fib task.
pub async fn spawn(
    config: route_sync::Config,
    keep_routes: bool,
    events: Events,
) -> Result<(mpsc::Sender<FibChange>, FibView, JoinHandle<()>), route_sync::Error> {
    spawn_with_overlay(config, keep_routes, events, None).await
}

/// Starts route-sync and the fib task, with the VXLAN overlay's routes as a second
/// source when `overlay` is given.
pub async fn spawn_with_overlay(
    config: route_sync::Config,
    keep_routes: bool,
    events: Events,
    overlay: Option<OverlayReceiver>,
) -> Result<(mpsc::Sender<FibChange>, FibView, JoinHandle<()>), route_sync::Error> {
    let observer = Arc::new(crate::events::KernelObserver(events.clone()));
    let handle = route_sync::start_observed(config, observer).await?;
    let (sender, receiver) = mpsc::channel(FIB_CAPACITY);
    let view = FibView {
        handle: handle.clone(),
        stopping: Arc::new(AtomicBool::new(false)),
    };
    let task = tokio::spawn(run_with_overlay(
        handle,
        receiver,
        overlay,
        Shutdown {
            requested: view.stopping.clone(),
            keep_routes,
        },
        events,
    ));
    Ok((sender, view, task))
}

/// What the fib task does once its input ends.
#[derive(Debug)]
pub struct Shutdown {
    /// Set by [`FibView::stop`]: shut route-sync down. Unset: leave the kernel as
    /// it is (the rib task failed).
    pub requested: Arc<AtomicBool>,
    /// Keep our routes in the kernel at that shutdown.
    pub keep_routes: bool,
}

/// Runs the fib task until every sender of `changes` is gone.
pub async fn run(
    handle: FibHandle,
    changes: mpsc::Receiver<FibChange>,
    shutdown: Shutdown,
    events: Events,
) {
    run_with_overlay(handle, changes, None, shutdown, events).await;
}

/// Runs the fib task with the VXLAN overlay as a second route source (see
/// [`overlay`]): the first convergence's deletion of stale kernel routes waits for
/// the overlay's first value.
pub async fn run_with_overlay(
    handle: FibHandle,
    mut changes: mpsc::Receiver<FibChange>,
    mut overlay: Option<OverlayReceiver>,
    shutdown: Shutdown,
    events: Events,
) {
    let mut merge = overlay.is_some().then(Merge::default);
    let mut convergence_held = false;
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            first = changes.recv() => {
                let Some(first) = first else {
                    break;
                };
                let mut interfaces = Interfaces::default();
                let mut next = Some(first);
                while let Some(change) = next.take() {
                    match translate(change, &mut interfaces) {
                        Some(change) => batch.extend(match merge.as_mut() {
                            Some(merge) => merge.from_rib(change),
                            None => Some(change),
                        }),
                        None => {
                            // Converged: everything before it first.
                            if apply(&handle, &mut batch, &events).await.is_err() {
                                return;
                            }
                            if merge.as_ref().is_some_and(|m| !m.has_overlay()) {
                                tracing::info!("first convergence: stale kernel routes are removed once the overlay's routes are known");
                                convergence_held = true;
                            } else {
                                converge(&handle).await;
                            }
                        }
                    }
                    if batch.len() < MAX_FIB_BATCH {
                        next = changes.try_recv().ok();
                    }
                }
                if apply(&handle, &mut batch, &events).await.is_err() {
                    return;
                }
            }
            changed = next_overlay(&mut overlay) => {
                if changed.is_err() {
                    // The dataplane task is gone (bgpd stops): keep what is installed.
                    overlay = None;
                    continue;
                }
                let latest = overlay.as_mut().and_then(|o| o.borrow_and_update().clone());
                let (Some(latest), Some(merge)) = (latest, merge.as_mut()) else {
                    continue;
                };
                batch.extend(merge.replace(latest));
                if apply(&handle, &mut batch, &events).await.is_err() {
                    return;
                }
                if convergence_held {
                    convergence_held = false;
                    converge(&handle).await;
                }
            }
        }
    }
    if !shutdown.requested.load(Ordering::SeqCst) {
        tracing::error!(
            "fib: the rib task is gone without a stop; the kernel routes stay as they are"
        );
        return;
    }
    if let Err(error) = handle.shutdown(shutdown.keep_routes).await {
        tracing::error!("fib: shutting route-sync down failed: {error}");
    }
}

/// The first convergence: route-sync deletes what it adopted and nobody asked for.
async fn converge(handle: &FibHandle) {
    match handle.end_of_initial_convergence().await {
        Ok(deleted) => tracing::info!(deleted, "first convergence: stale kernel routes removed"),
        Err(error) => tracing::error!("fib: marking convergence failed: {error}"),
    }
}

/// The next change of an optional watch (never, without one).
async fn next_overlay(
    overlay: &mut Option<OverlayReceiver>,
) -> Result<(), tokio::sync::watch::error::RecvError> {
    match overlay {
        Some(receiver) => receiver.changed().await,
        None => std::future::pending().await,
    }
}

/// Hands `batch` to route-sync; `Err` when route-sync's task has stopped (the fib
/// task then ends, and the daemon with it: routes no longer reach the kernel).
async fn apply(
    handle: &FibHandle,
    batch: &mut Vec<Change>,
    events: &Events,
) -> Result<(), route_sync::Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let changes = batch.len();
    let started = std::time::Instant::now();
    let applied = handle.apply(std::mem::take(batch)).await;
    if applied.is_ok() {
        events.send_with(|| Event::Kernel {
            changes,
            took: started.elapsed(),
        });
    }
    match applied {
        Err(route_sync::Error::Stopped) => {
            tracing::error!("fib: route-sync's task has stopped");
            Err(route_sync::Error::Stopped)
        }
        Err(error) => {
            tracing::error!("fib: route-sync refused changes: {error}");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// Interface names by address, read from the kernel (getifaddrs) at the first
/// question and kept for one batch.
#[derive(Debug, Default)]
pub struct Interfaces {
    by_address: Option<HashMap<IpAddr, String>>,
}

impl Interfaces {
    /// Names given in advance (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (IpAddr, &'a str)>) -> Interfaces {
        Interfaces {
            by_address: Some(
                pairs
                    .into_iter()
                    .map(|(address, name)| (address, name.to_string()))
                    .collect(),
            ),
        }
    }

    /// The interface holding `address` (the first one when a link-local address
    /// is on several).
    pub fn holding(&mut self, address: IpAddr) -> Option<&str> {
        self.by_address
            .get_or_insert_with(read_interfaces)
            .get(&canonical(address))
            .map(String::as_str)
    }
}

fn read_interfaces() -> HashMap<IpAddr, String> {
    let mut names = HashMap::new();
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return names;
    };
    for entry in interfaces {
        let Some(address) = entry.address else {
            continue;
        };
        let ip = if let Some(v4) = address.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = address.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        names.entry(ip).or_insert(entry.interface_name);
    }
    names
}

/// The route-sync change for a FIB change (None for `Converged`).
pub fn translate(change: FibChange, interfaces: &mut Interfaces) -> Option<Change> {
    Some(match change {
        FibChange::Install { prefix, next_hops } if !next_hops.is_empty() => {
            Change::Install(Route {
                prefix,
                target: Target::Unicast(next_hops.into_iter().map(NextHop::gateway).collect()),
            })
        }
        FibChange::InstallOnLink { prefix, next_hops } if !next_hops.is_empty() => {
            Change::Install(Route {
                prefix,
                target: Target::Unicast(
                    next_hops
                        .into_iter()
                        .map(|hop| route_sync_next_hop(hop, interfaces))
                        .collect(),
                ),
            })
        }
        FibChange::Install { prefix, .. }
        | FibChange::InstallOnLink { prefix, .. }
        | FibChange::Remove { prefix } => Change::Remove(prefix),
        FibChange::Blackhole { prefix } => Change::Install(Route::blackhole(prefix)),
        FibChange::Converged => return None,
    })
}

/// One next hop for route-sync, with the session's interface for link-local ones.
fn route_sync_next_hop(hop: FibNextHop, interfaces: &mut Interfaces) -> NextHop {
    match hop {
        FibNextHop::Address(address) => NextHop::gateway(address),
        FibNextHop::LinkLocal {
            global,
            link_local,
            local,
        } => match (interfaces.holding(local), global) {
            (Some(device), Some(global)) => NextHop::GlobalOrLinkLocal {
                global,
                link_local,
                device: device.to_string(),
            },
            (Some(device), None) => NextHop::Gateway {
                address: IpAddr::V6(link_local),
                device: Some(device.to_string()),
            },
            (None, Some(global)) => NextHop::gateway(IpAddr::V6(global)),
            (None, None) => NextHop::gateway(IpAddr::V6(link_local)),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn none() -> Interfaces {
        Interfaces::from_pairs([])
    }

    #[test]
    fn fib_changes_become_route_sync_changes() {
        let prefix: ipnet::IpNet = "10.1.0.0/24".parse().unwrap();
        let hops = vec!["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()];
        assert_eq!(
            translate(
                FibChange::Install {
                    prefix,
                    next_hops: hops.clone()
                },
                &mut none()
            ),
            Some(Change::Install(Route {
                prefix,
                target: Target::Unicast(hops.iter().copied().map(NextHop::gateway).collect())
            }))
        );
        assert_eq!(
            translate(FibChange::Blackhole { prefix }, &mut none()),
            Some(Change::Install(Route::blackhole(prefix)))
        );
        assert_eq!(
            translate(FibChange::Remove { prefix }, &mut none()),
            Some(Change::Remove(prefix))
        );
        assert_eq!(
            translate(
                FibChange::Install {
                    prefix,
                    next_hops: vec![]
                },
                &mut none()
            ),
            Some(Change::Remove(prefix))
        );
        assert_eq!(translate(FibChange::Converged, &mut none()), None);
    }

    #[test]
    fn link_local_next_hops_take_the_interface_of_the_session() {
        let prefix: ipnet::IpNet = "2001:db8:5::/48".parse().unwrap();
        let local: IpAddr = "2001:db8::1".parse().unwrap();
        let unnumbered: IpAddr = "fe80::1".parse().unwrap();
        let mut interfaces = Interfaces::from_pairs([(local, "eth1"), (unnumbered, "eth2")]);
        let pair = FibNextHop::LinkLocal {
            global: Some("2001:db8::2".parse().unwrap()),
            link_local: "fe80::2".parse().unwrap(),
            local,
        };
        let alone = FibNextHop::LinkLocal {
            global: None,
            link_local: "fe80::3".parse().unwrap(),
            local: unnumbered,
        };
        let plain = FibNextHop::Address("2001:db8:9::1".parse().unwrap());
        assert_eq!(
            translate(
                FibChange::InstallOnLink {
                    prefix,
                    next_hops: vec![pair, alone, plain]
                },
                &mut interfaces
            ),
            Some(Change::Install(Route {
                prefix,
                target: Target::Unicast(vec![
                    NextHop::GlobalOrLinkLocal {
                        global: "2001:db8::2".parse().unwrap(),
                        link_local: "fe80::2".parse().unwrap(),
                        device: "eth1".into()
                    },
                    NextHop::Gateway {
                        address: "fe80::3".parse().unwrap(),
                        device: Some("eth2".into())
                    },
                    NextHop::gateway("2001:db8:9::1".parse().unwrap()),
                ])
            }))
        );
        // No interface holds the session's address: the global address, or the
        // link-local one without a device (route-sync reports it, never guesses).
        assert_eq!(
            translate(
                FibChange::InstallOnLink {
                    prefix,
                    next_hops: vec![pair, alone]
                },
                &mut none()
            ),
            Some(Change::Install(Route {
                prefix,
                target: Target::Unicast(vec![
                    NextHop::gateway("2001:db8::2".parse().unwrap()),
                    NextHop::gateway("fe80::3".parse().unwrap()),
                ])
            }))
        );
        assert_eq!(
            translate(
                FibChange::InstallOnLink {
                    prefix,
                    next_hops: vec![]
                },
                &mut none()
            ),
            Some(Change::Remove(prefix))
        );
    }

    #[test]
    fn loopback_is_found_by_getifaddrs() {
        let mut interfaces = Interfaces::default();
        assert_eq!(interfaces.holding("127.0.0.1".parse().unwrap()), Some("lo"));
    }
}
