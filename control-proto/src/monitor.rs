//! `bgpctl monitor`: what bgpd streams to a client that asked to follow its changes.
//!
//! The answer to [`Request::Monitor`](crate::Request::Monitor) is one
//! `{"ok":{"monitoring":[TOPICS]}}` line once bgpd listens, then one
//! `{"event": MonitorEvent}` line per change of the topics asked for, as the tasks
//! make them, for as long as the client reads. A client that falls behind is sent
//! (best effort) one `{"disconnected": {...}}` line ([`Disconnected`]) and closed:
//! bgpd never waits for a monitor.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::fib::KernelOperation;

/// What a monitor follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MonitorTopic {
    /// Best-route changes in the Loc-RIB.
    Routes,
    /// BGP session state changes.
    Neighbors,
    /// Kernel route operations of route-sync, route by route.
    Fib,
}

impl MonitorTopic {
    /// Every topic, in the order bgpctl names them.
    pub const ALL: [MonitorTopic; 3] = [
        MonitorTopic::Routes,
        MonitorTopic::Neighbors,
        MonitorTopic::Fib,
    ];

    /// The topic's name as the command line and the JSON spell it.
    pub fn name(self) -> &'static str {
        match self {
            MonitorTopic::Routes => "routes",
            MonitorTopic::Neighbors => "neighbors",
            MonitorTopic::Fib => "fib",
        }
    }
}

/// One change, with the time the task that made it told it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorEvent {
    /// RFC 3339, UTC, milliseconds: `2026-12-06T22:50:01.123Z`.
    pub time: String,
    pub change: MonitorChange,
}

/// What changed, tagged by its topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum MonitorChange {
    /// `routes`.
    Route(RouteChange),
    /// `neighbors`.
    Neighbor(NeighborChange),
    /// `fib`.
    Fib(KernelOperation),
}

impl MonitorChange {
    /// The topic this change belongs to.
    pub fn topic(&self) -> MonitorTopic {
        match self {
            MonitorChange::Route(_) => MonitorTopic::Routes,
            MonitorChange::Neighbor(_) => MonitorTopic::Neighbors,
            MonitorChange::Fib(_) => MonitorTopic::Fib,
        }
    }
}

/// A prefix's best route (or its set of ECMP paths) changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteChange {
    pub action: RouteAction,
    pub prefix: IpNet,
    /// The next hops of the selected paths, best first (none for a local route or a
    /// withdraw).
    pub next_hops: Vec<IpAddr>,
    /// The best path's AS path as FRR writes it (`65002 {65003,65004}`); empty
    /// without one (iBGP, local, withdraw).
    pub as_path: String,
    /// Where the best path came from: the neighbor's address, or "local"; for a
    /// withdraw, the source of the path that was best.
    pub source: String,
}

/// What happened to a prefix's best route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteAction {
    /// The prefix had no route and now has one.
    Add,
    /// Another path is best, or the best path's attributes or the ECMP set changed.
    Change,
    /// The prefix has no route any more.
    Withdraw,
}

impl RouteAction {
    pub fn name(self) -> &'static str {
        match self {
            RouteAction::Add => "add",
            RouteAction::Change => "change",
            RouteAction::Withdraw => "withdraw",
        }
    }
}

/// A neighbor's session changed state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborChange {
    pub address: IpAddr,
    /// The state left and the state entered (Idle, Connect, Active, OpenSent,
    /// OpenConfirm, Established).
    pub from: String,
    pub to: String,
}

/// The last line to a monitor that could not keep up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disconnected {
    /// Events of its topics it did not get (at the moment it was cut off).
    pub missed: u64,
    /// One line saying why, for bgpctl to print.
    pub message: String,
}
