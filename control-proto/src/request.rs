//! What bgpctl (and the wren-ipam plugin) ask bgpd.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ipam::IpamRequest;
use crate::monitor::MonitorTopic;
use crate::neighbor::NeighborAction;
use crate::route::RouteQuery;

/// A request: one JSON object on one line, tagged by `command`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    ShowNeighbors,
    ShowNeighbor {
        address: IpAddr,
    },
    /// Answered as a stream (see the crate doc): routes in prefix order, IPv4 before
    /// IPv6, each prefix's best path first.
    ShowRoutes {
        #[serde(default)]
        query: RouteQuery,
        /// Only prefixes after this one in that order (the last prefix of the
        /// previous page).
        #[serde(default)]
        after: Option<IpNet>,
        /// At most this many prefixes (with all their paths).
        #[serde(default)]
        limit: Option<u64>,
    },
    ShowFib,
    Neighbor {
        address: IpAddr,
        action: NeighborAction,
        #[serde(default)]
        message: Option<String>,
    },
    Reload,
    /// An IPAM command, run against bgpd's datastore.
    Ipam {
        request: IpamRequest,
    },
    /// IPAM changed (a CNI ADD or DEL): re-read the node's allocations now.
    IpamChanged,
    /// Alive and ready? (the DaemonSet's probes).
    ShowHealth,
    /// Every BFD session.
    ShowBfd,
    /// Follow changes of these topics (at least one) as they happen: answered as a
    /// stream (see [`crate::monitor`]).
    Monitor {
        topics: Vec<MonitorTopic>,
    },
}

impl Request {
    /// True for requests that change nothing (allowed to `read_only_group`).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Request::ShowNeighbors
                | Request::ShowNeighbor { .. }
                | Request::ShowRoutes { .. }
                | Request::ShowFib
                | Request::ShowHealth
                | Request::ShowBfd
                | Request::Monitor { .. }
        ) || matches!(self, Request::Ipam { request } if request.is_read_only())
    }
}
