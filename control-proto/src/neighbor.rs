//! `show neighbors`, `show neighbor ADDR`, the operator's neighbor commands and what a
//! reload did.
//!
//! The field names of [`NeighborView`] are a contract with users and tests (issue 3):
//! renaming one is a breaking change.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
    /// Everything `show neighbor ADDR` adds; absent in the summary list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<NeighborDetail>,
}

/// One neighbor in `show neighbors`: the contract fields of [`NeighborView`] at the
/// top level, plus what the summary table shows besides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborEntry {
    #[serde(flatten)]
    pub view: NeighborView,
    pub description: Option<String>,
    pub messages_received: u64,
    pub messages_sent: u64,
    /// Shut down by an operator or the config.
    pub admin_down: bool,
    /// Times the session reached Established.
    pub established_count: u64,
}

/// What `show neighbor ADDR` adds: timers, connection, capabilities, counters, last
/// error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborDetail {
    pub description: Option<String>,
    pub state: String,
    pub seconds_in_state: u64,
    pub admin_down: bool,
    pub passive: bool,
    /// The listen range of a dynamic neighbor.
    pub dynamic_range: Option<IpNet>,
    /// The configured AS (the AS the peer must have).
    pub configured_remote_asn: u32,
    pub timers: Timers,
    /// The connection in use.
    pub connection: Option<ConnectionInfo>,
    /// What the OPENs settled, while OpenConfirm or Established.
    pub negotiated: Option<NegotiatedInfo>,
    pub messages_sent: MessageCount,
    pub messages_received: MessageCount,
    pub prefixes: PeerCounters,
    pub established_count: u64,
    /// Why the session last went down, and when.
    pub last_error: Option<LastError>,
    /// The state of the BFD session the BGP session follows (`Up`, `Down`, `Init`,
    /// `AdminDown`); none when it follows none.
    #[serde(default)]
    pub bfd: Option<String>,
}

/// The configured timers, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timers {
    pub hold_time: u16,
    /// None: a third of the hold time.
    pub keepalive: Option<u16>,
    pub connect_retry: u16,
}

/// A connection's ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// "local" when we connected, "remote" when the peer did.
    pub initiator: String,
}

/// The negotiated parameters of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NegotiatedInfo {
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    pub hold_time: u16,
    pub keepalive: u16,
    pub send_hold_time_secs: Option<u64>,
    pub ibgp: bool,
    pub four_octet_as: bool,
    pub families: Vec<String>,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub extended_message: bool,
    pub graceful_restart: bool,
    /// The peer's graceful restart restart time, if it advertised the capability.
    pub peer_restart_time: Option<u16>,
    /// The peer said it restarted (R bit).
    pub peer_restarted: bool,
    pub peer_hostname: Option<String>,
    /// Capability names we sent and the peer sent.
    pub local_capabilities: Vec<String>,
    pub peer_capabilities: Vec<String>,
}

/// Messages sent or received, by type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageCount {
    pub open: u64,
    pub update: u64,
    pub notification: u64,
    pub keepalive: u64,
    pub route_refresh: u64,
}

impl MessageCount {
    pub fn total(&self) -> u64 {
        self.open + self.update + self.notification + self.keepalive + self.route_refresh
    }
}

/// Prefix counters of one peer, as the RIB sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerCounters {
    /// Prefixes in the peer's adj_rib_in (before import policy).
    pub received: u64,
    /// Prefixes the import policy accepted.
    pub accepted: u64,
    /// Prefixes in the peer's adj_rib_out.
    pub advertised: u64,
}

/// Why a session last went down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastError {
    pub reason: String,
    /// When, in seconds since the Unix epoch.
    pub unix_time: u64,
}

/// `bgpctl neighbor ADDR ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NeighborAction {
    Reset,
    Shutdown,
    Enable,
    Refresh,
}

/// What a reload (or a node mesh change) did to the neighbor set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadSummary {
    pub added: Vec<IpAddr>,
    pub removed: Vec<IpAddr>,
    /// Sessions restarted because their OPEN or connection settings changed.
    pub reset: Vec<IpAddr>,
    /// Sessions whose other settings changed in place.
    pub updated: Vec<IpAddr>,
    pub unchanged: usize,
}

/// One line: `configuration reloaded: added A; removed none; ...` (bgpctl prints it,
/// bgpd logs it on SIGHUP).
impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |list: &[IpAddr]| {
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        write!(
            f,
            "configuration reloaded: added {}; removed {}; restarted {}; updated in place {}; {} unchanged",
            join(&self.added),
            join(&self.removed),
            join(&self.reset),
            join(&self.updated),
            self.unchanged
        )
    }
}
