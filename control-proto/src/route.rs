//! `show routes`: which routes a query asks for, and one route as bgpd shows it.
//!
//! The field names of [`RouteView`] are a contract with users and tests (issue 3):
//! renaming one is a breaking change.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

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

/// One path as a `show-routes` answer line carries it: the [`RouteView`] that
/// `bgpctl show routes --json` prints (its `as_path` flattens AS_SETs, and that JSON
/// is a contract of its own) and the AS path as FRR writes it, for the table. It
/// reads as its view (`line.best`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteLine {
    pub view: RouteView,
    /// Sequences space-separated, an AS_SET as `{a,b}`, confederation segments as
    /// `(a b)` and `[a,b]`: `65002 {65003,65004}`; empty without AS_PATH.
    pub path: String,
}

impl std::ops::Deref for RouteLine {
    type Target = RouteView;
    fn deref(&self) -> &RouteView {
        &self.view
    }
}

/// Which routes a `show routes` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteQuery {
    /// Only this prefix (exact match), or the longest match of an address.
    pub prefix: Option<IpNet>,
    pub family: Option<FamilyName>,
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

/// An address family by name, as the configuration and `--family` spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FamilyName {
    Ipv4,
    Ipv6,
}
