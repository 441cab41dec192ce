//! What `bgpctl` shows: the JSON contract of the control socket's answers.
//!
//! The field names of [`NeighborView`] and [`RouteView`] are a contract with users
//! and tests (issue 3): renaming one is a breaking change.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One neighbor, as `bgpctl show neighbors --json` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborView {
    pub address: IpAddr,
    pub remote_asn: u32,
    /// Idle, Connect, Active, OpenSent, OpenConfirm or Established.
    pub state: String,
    /// Seconds since the session entered its current state (Established: its uptime).
    pub uptime_secs: u64,
    pub prefixes_received: u64,
    pub prefixes_advertised: u64,
    /// Everything `show neighbor ADDR` adds (timers, capabilities, counters, last
    /// error); absent in the summary list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// One route (one path of a prefix), as `bgpctl show routes --json` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    pub prefix: IpNet,
    pub next_hops: Vec<IpAddr>,
    /// AS numbers in order (AS_SET members flattened in place).
    pub as_path: Vec<u32>,
    /// "igp", "egp" or "incomplete".
    pub origin: String,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// "ASN:VALUE" strings; large communities as "A:B:C".
    pub communities: Vec<String>,
    /// Selected as best (or as one of the ECMP paths).
    pub best: bool,
    /// The neighbor's address, or "local".
    pub source: String,
}

/// Which routes a `show routes` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteQuery {
    /// Only this prefix (exact match), or the longest match of an address.
    pub prefix: Option<IpNet>,
    pub family: Option<crate::config::FamilyName>,
    /// With `view`: one neighbor's adj_rib_in (received) or adj_rib_out (advertised).
    pub neighbor: Option<IpAddr>,
    pub view: RouteTable,
}

/// The table a route query reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteTable {
    /// The Loc-RIB: every path of every prefix, best marked.
    #[default]
    LocRib,
    /// What a neighbor sent us (before import policy).
    Received,
    /// What we advertise to a neighbor.
    Advertised,
}
