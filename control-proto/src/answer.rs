//! What bgpd answers.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::bfd::BfdSession;
use crate::fib::Snapshot;
use crate::health::Health;
use crate::monitor::{Disconnected, MonitorEvent, MonitorTopic};
use crate::neighbor::{NeighborEntry, ReloadSummary};
use crate::route::RouteLine;

/// One line of an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Response {
    /// The whole answer of every request but `show-routes`, and the first line of a
    /// `monitor` answer.
    Ok(Answer),
    /// One path of a `show-routes` answer; more lines follow.
    Route(RouteLine),
    /// The last line of a `show-routes` answer.
    End(RoutesEnd),
    /// The request failed (a `show-routes` answer may fail after some routes).
    Error(String),
    /// One change a `monitor` follows; more lines follow.
    Event(MonitorEvent),
    /// The last line to a `monitor` cut off for reading too slowly.
    Disconnected(Disconnected),
}

/// The answer to one request, tagged by its kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Answer {
    /// `show-neighbors`.
    Neighbors(Vec<NeighborEntry>),
    /// `show-neighbor`: the entry with its `detail`.
    Neighbor(Box<NeighborEntry>),
    /// `show-fib`: route-sync's snapshot.
    Fib(Snapshot),
    /// `neighbor`: one line saying what was done.
    Done(String),
    /// `reload`.
    Reloaded(ReloadSummary),
    /// `ipam`: the JSON text of the ipam crate's report for the request (text,
    /// because IPv6 pool sizes exceed what a JSON number holds; see [`crate::ipam`]).
    Ipam(String),
    /// `ipam-changed`: the IPAM task was told to re-read.
    Notified,
    /// `show-health`.
    Health(Health),
    /// `show-bfd`: sessions ordered by peer, then interface or local address.
    Bfd(Vec<BfdSession>),
    /// `monitor`: bgpd listens to these topics; event lines follow.
    Monitoring(Vec<MonitorTopic>),
}

/// How a `show-routes` answer ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesEnd {
    /// Prefixes and paths sent.
    pub prefixes: u64,
    pub paths: u64,
    /// Set when the limit cut the answer short and more prefixes follow: the last
    /// prefix sent, to be given as `after` for the next page.
    pub next: Option<IpNet>,
}
