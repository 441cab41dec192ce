//! route-sync keeps the kernel's FIB equal to a desired set of routes, over
//! rtnetlink.
//!
//! [`start`] opens two NETLINK_ROUTE sockets, dumps the kernel's routes and
//! adopts those carrying our protocol number in our table, then spawns the
//! syncer task that owns both sockets. Callers talk to it through a
//! [`FibHandle`] (a bounded channel): install, replace and remove routes
//! (IPv4 and IPv6; one or more next hops, blackhole, device routes), mark
//! the end of initial convergence, read a [`Snapshot`] (every route) or a
//! [`Summary`] (counts, for metrics), shut down.
//!
//! - **Zero churn on restart.** A route already in the kernel exactly as
//!   desired is never sent again. Adopted routes nobody asks for stay until
//!   [`FibHandle::end_of_initial_convergence`], then they are deleted.
//! - **Never another protocol's route.** New routes are added with
//!   NLM_F_EXCL, so an existing route with the same prefix and metric (a
//!   person's, another daemon's) makes the add fail with EEXIST, which is
//!   reported; deletes name our protocol and metric.
//! - **Batches.** Many requests go in one sendmsg; only the last asks for an
//!   ack, errors come back for the others by sequence number.
//! - **Watching.** Link and route multicast groups (our own echoes filtered
//!   out in the kernel): a route of ours deleted or changed by someone else
//!   is put back; link changes under our routes trigger a fresh dump; next
//!   hops are re-resolved when the kernel's routes change.
//! - **Next hops.** A gateway on a connected subnet is installed directly;
//!   otherwise through the kernel's own covering route (recursively); an
//!   unresolvable one is reported in the snapshot, not installed. An IPv6
//!   link-local gateway goes out of the device it names; BGP's global plus
//!   link-local pair ([`NextHop::GlobalOrLinkLocal`]) takes the global address
//!   while it resolves, else the link-local one. IPv4 routes may have IPv6
//!   gateways (RFC 8950; `via inet6`, RTA_VIA, Linux 5.2 or later), in ECMP
//!   too, and are adopted on restart like any other. [`NextHop::OnLink`] is a
//!   gateway no connected subnet covers, taken as on its device's link
//!   (RTNH_F_ONLINK: a VXLAN peer's tunnel address on the VXLAN device); the
//!   flag is compared on adoption like the rest.
//!
//! # Privileges
//!
//! route-sync needs only `CAP_NET_ADMIN` (to change routes, and to raise
//! its netlink receive buffers with SO_RCVBUFFORCE; without it, adoption
//! and snapshots still work but every change fails with EPERM, reported per
//! route).
//!
//! # Naming the protocol
//!
//! So that `ip route` prints `proto wren` instead of `proto 196`:
//!
//! ```text
//! mkdir -p /etc/iproute2/rt_protos.d
//! echo "196 wren" > /etc/iproute2/rt_protos.d/wren.conf
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod census;
pub mod config;
pub mod error;
mod intern;
mod message;
mod netlink;
pub mod observe;
mod reconcile;
mod resolve;
pub mod route;
pub mod summary;
mod table;
mod task;
mod watch;

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

pub use config::{Config, Ecmp};
/// What `bgpctl show fib` prints; the type lives with the control protocol.
pub use control_proto::fib::{Counters, FailedRoute, InstalledNextHop, InstalledRoute, Snapshot};
/// What an [`Observer`] is told (`bgpctl monitor fib`); also the control protocol's.
pub use control_proto::fib::{KernelAction, KernelOperation};
pub use error::{Error, RouteError};
pub use observe::Observer;
pub use route::{NextHop, Route, Target};
pub use summary::{Histogram, RouteCount, Summary};
pub use task::Change;

use message::Placement;
use reconcile::State;
use resolve::Resolver;
use task::{Command, Syncer};

/// Commands queued to the syncer task before senders wait. Few, because
/// one command may carry thousands of changes: the syncer takes commands
/// between batches, so changes wait in its packed table (about 20 octets a
/// route) rather than in the channel as `Change` values (over 100).
pub const COMMAND_CAPACITY: usize = 4;

/// Starts a syncer in the current tokio runtime and returns its handle.
///
/// Adoption happens before this returns: the kernel's routes of our
/// protocol in our table are loaded and left untouched until they are
/// either desired (and then only changed if they differ) or, after
/// [`FibHandle::end_of_initial_convergence`], deleted.
pub async fn start(config: Config) -> Result<FibHandle, Error> {
    start_with(config, None).await
}

/// [`start`], with `observer` told of every kernel operation from the first
/// change on (see [`observe`]; adoption at start is not told).
pub async fn start_observed(
    config: Config,
    observer: std::sync::Arc<dyn Observer>,
) -> Result<FibHandle, Error> {
    start_with(config, Some(observer)).await
}

async fn start_with(
    config: Config,
    observer: Option<std::sync::Arc<dyn Observer>>,
) -> Result<FibHandle, Error> {
    config.validate()?;
    let placement = Placement {
        table: config.table,
        protocol: config.protocol,
        metric: config.metric,
    };
    let mut state = State::new(
        placement,
        config.ecmp.max_paths(),
        Resolver::new(config.resolve_via_default),
    );
    if let Some(observer) = observer {
        state.set_observer(observer);
    }
    let (syncer, summary) = Syncer::start(config, state).await?;
    let (commands, receiver) = mpsc::channel(COMMAND_CAPACITY);
    tokio::spawn(syncer.run(receiver));
    Ok(FibHandle { commands, summary })
}

/// The way to the syncer task. Cheap to clone; when the last clone is
/// dropped the task stops as if [`FibHandle::shutdown`] were called with
/// the config's `keep_on_shutdown`.
#[derive(Debug, Clone)]
pub struct FibHandle {
    commands: mpsc::Sender<Command>,
    /// What the task publishes after every batch and every round.
    summary: tokio::sync::watch::Receiver<Summary>,
}

impl FibHandle {
    /// Wants `route` in the kernel (replacing any earlier desire for its
    /// prefix). Returns once queued; see [`FibHandle::sync`].
    pub async fn install(&self, route: Route) -> Result<(), Error> {
        self.apply(vec![Change::Install(route)]).await
    }

    /// No longer wants a route for `prefix`. Returns once queued.
    pub async fn remove(&self, prefix: IpNet) -> Result<(), Error> {
        self.apply(vec![Change::Remove(prefix)]).await
    }

    /// Queues many changes at once (the cheap way for a decision process).
    pub async fn apply(&self, changes: Vec<Change>) -> Result<(), Error> {
        self.send(Command::Apply(changes)).await
    }

    /// Waits until every change queued before has reached the kernel (or
    /// been refused, see the snapshot).
    pub async fn sync(&self) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Sync(reply)).await?;
        answer.await.map_err(|_| Error::Stopped)
    }

    /// Marks the end of initial convergence (End-of-RIB from every peer, or
    /// the restart timer): adopted routes nobody asked for, and routes of
    /// ours at another metric, are deleted. Returns the number of routes
    /// deleted while completing it.
    pub async fn end_of_initial_convergence(&self) -> Result<u64, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Converged(reply)).await?;
        answer.await.map_err(|_| Error::Stopped)
    }

    /// What is installed, what failed and why, and counters.
    pub async fn snapshot(&self) -> Result<Snapshot, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Snapshot(reply)).await?;
        answer.await.map_err(|_| Error::Stopped)
    }

    /// The counts (routes per family and kind, failed routes, counters, batch
    /// durations) as the task published them after its last batch or round (after
    /// [`FibHandle::sync`], those of everything synced): never waits for the task
    /// or behind queued changes, and cheap at any number of routes, unlike
    /// [`FibHandle::snapshot`].
    pub fn summary(&self) -> Result<Summary, Error> {
        if self.summary.has_changed().is_err() {
            return Err(Error::Stopped);
        }
        Ok(self.summary.borrow().clone())
    }

    /// Applies what is queued, then stops the task; with `keep_routes`
    /// false every route of ours is deleted first.
    pub async fn shutdown(&self, keep_routes: bool) -> Result<(), Error> {
        let (done, answer) = oneshot::channel();
        self.send(Command::Shutdown { keep_routes, done }).await?;
        answer.await.map_err(|_| Error::Stopped)
    }

    async fn send(&self, command: Command) -> Result<(), Error> {
        self.commands
            .send(command)
            .await
            .map_err(|_| Error::Stopped)
    }
}
