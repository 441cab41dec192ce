//! `show fib`: the routes route-sync has in the kernel, the ones it could not install
//! with the reason, and counters; and one kernel route operation as `bgpctl monitor
//! fib` follows them ([`KernelOperation`]). route-sync builds both; bgpctl prints them.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A consistent picture taken by the syncer task between two batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    /// The end of initial convergence was marked: unclaimed adopted routes
    /// are gone.
    pub converged: bool,
    /// Routes of ours in the kernel, sorted by prefix.
    pub installed: Vec<InstalledRoute>,
    /// Desired routes that are not in the kernel as wanted, sorted by prefix.
    pub failed: Vec<FailedRoute>,
    pub counters: Counters,
}

/// One route of ours in the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledRoute {
    pub prefix: IpNet,
    /// `unicast`, `blackhole` or the kernel's type number.
    pub kind: String,
    pub next_hops: Vec<InstalledNextHop>,
    /// Found in the kernel at start and not (yet) asked for again.
    pub adopted: bool,
    /// Set when only some next hops could be resolved.
    pub warning: Option<String>,
}

/// One next hop as installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledNextHop {
    pub gateway: Option<IpAddr>,
    pub device: String,
}

/// A desired route that is not installed (or not as desired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRoute {
    pub prefix: IpNet,
    /// One line naming the route and the reason.
    pub reason: String,
}

/// Totals since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Routes found in the kernel at start with our protocol.
    pub adopted: u64,
    pub added: u64,
    pub replaced: u64,
    pub deleted: u64,
    /// Requests the kernel refused.
    pub refused: u64,
    /// Changes to our routes made by someone else (then undone).
    pub external_changes: u64,
    /// Full dumps after lost notifications or link changes.
    pub resyncs: u64,
    /// sendmsg calls carrying route requests.
    pub batches: u64,
}

/// One route request route-sync settled with the kernel, or a route it could not
/// install at all (`bgpctl monitor fib`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelOperation {
    pub action: KernelAction,
    pub prefix: IpNet,
    /// `unicast`, `blackhole` or the kernel's type number, as [`InstalledRoute`]: of
    /// the route added or replaced, or of the route deleted.
    pub kind: String,
    /// The next hops added or replaced, or those of the route deleted (none when not
    /// known: a refused delete, a route not installed).
    pub next_hops: Vec<InstalledNextHop>,
    /// Set when the kernel refused the request, or why the route is not installed:
    /// one line naming the route and the reason.
    pub error: Option<String>,
}

/// What route-sync asked of the kernel for one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelAction {
    Add,
    Replace,
    Delete,
    /// Nothing: the route cannot be installed (its next hop does not resolve, its
    /// device does not exist, ...); `error` says why.
    NotInstalled,
}

impl KernelAction {
    pub fn name(self) -> &'static str {
        match self {
            KernelAction::Add => "add",
            KernelAction::Replace => "replace",
            KernelAction::Delete => "delete",
            KernelAction::NotInstalled => "not-installed",
        }
    }
}
