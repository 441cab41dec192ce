//! bgpd's configuration: the TOML file parsed into typed structs.
//!
//! Unknown keys are refused everywhere (`deny_unknown_fields`); values carry their
//! invariants in their types (an [`Asn`] is never 0, a [`HoldTime`] is never 1 or 2).
//! The key names are a contract with users and tests (issue 3).
//!
//! ```toml
//! [bgp]
//! asn = 64512
//! router_id = "10.0.0.1"
//! listen = ["0.0.0.0:179", "[::]:179"]   # empty list: no listening
//! [[bgp.neighbor]]
//! address = "10.0.0.2"
//! remote_asn = 65001
//! [[bgp.network]]
//! prefix = "10.1.0.0/24"
//! [control]
//! socket = "/run/wren/bgpd.sock"
//! ```

pub mod policy;
pub mod types;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

pub use policy::{
    FilterAction, FilterConfig, FilterRule, PolicyConfig, PrefixListConfig, PrefixListRule,
    RouteSourceMatch,
};
pub use types::{Asn, CommunityValue, FamilyName, HoldTime, MaxPaths, MaxPrefixes};

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bgp: BgpConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub log: LogConfig,
}

/// `[bgp]`: the speaker.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpConfig {
    pub asn: Asn,
    pub router_id: Ipv4Addr,
    /// Addresses to accept BGP connections on; empty: accept none.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Equal-cost paths installed and used per prefix (1: no ECMP).
    #[serde(default)]
    pub max_paths: MaxPaths,
    /// Route reflector cluster id (RFC 4456); default: the router id.
    #[serde(default)]
    pub cluster_id: Option<Ipv4Addr>,
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<NeighborConfig>,
    #[serde(default, rename = "listen_range")]
    pub listen_ranges: Vec<ListenRangeConfig>,
    #[serde(default, rename = "network")]
    pub networks: Vec<NetworkConfig>,
}

/// `[[bgp.neighbor]]`: one configured peer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborConfig {
    pub address: IpAddr,
    pub remote_asn: Asn,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Never connect; wait for the peer.
    #[serde(default)]
    pub passive: bool,
    #[serde(default)]
    pub hold_time: HoldTime,
    /// Seconds between KEEPALIVEs; default: a third of the negotiated hold time.
    #[serde(default)]
    pub keepalive: Option<u16>,
    /// Seconds before the first reconnection attempt; later ones back off up to 30 s.
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u16,
    /// TCP-MD5 key (RFC 2385), at most 80 bytes.
    #[serde(default)]
    pub password: Option<String>,
    /// GTSM (RFC 5082): send with TTL 255 and refuse packets that arrive below 255.
    #[serde(default)]
    pub ttl_security: bool,
    /// eBGP multihop: TTL of outgoing packets (default 1 for eBGP).
    #[serde(default)]
    pub multihop: Option<u8>,
    /// Families to negotiate; default: the family of `address`.
    #[serde(default)]
    pub families: Option<Vec<FamilyName>>,
    #[serde(default)]
    pub route_reflector_client: bool,
    #[serde(default)]
    pub next_hop_self: bool,
    #[serde(default)]
    pub max_prefixes: Option<MaxPrefixes>,
    /// Name of a `[[policy.filter]]` applied to routes received from the peer.
    #[serde(default)]
    pub import: Option<String>,
    /// Name of a `[[policy.filter]]` applied to routes sent to the peer. Without one,
    /// eBGP peers get only locally originated routes (a node is never a transit).
    #[serde(default)]
    pub export: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Source address of the session.
    #[serde(default)]
    pub local_address: Option<IpAddr>,
    /// Administratively down (`bgpctl neighbor ADDR shutdown` persists nothing; this does).
    #[serde(default)]
    pub shutdown: bool,
}

/// `[[bgp.listen_range]]`: accept sessions from any address in `prefix` (dynamic
/// neighbors, as route reflectors need). The session settings mean what they mean
/// in [`NeighborConfig`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenRangeConfig {
    pub prefix: IpNet,
    pub remote_asn: Asn,
    #[serde(default)]
    pub hold_time: HoldTime,
    #[serde(default)]
    pub keepalive: Option<u16>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub ttl_security: bool,
    #[serde(default)]
    pub multihop: Option<u8>,
    #[serde(default)]
    pub families: Option<Vec<FamilyName>>,
    #[serde(default)]
    pub route_reflector_client: bool,
    #[serde(default)]
    pub next_hop_self: bool,
    #[serde(default)]
    pub max_prefixes: Option<MaxPrefixes>,
    #[serde(default)]
    pub import: Option<String>,
    #[serde(default)]
    pub export: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Most sessions accepted from the range at once.
    #[serde(default)]
    pub max_neighbors: Option<u32>,
}

/// `[[bgp.network]]`: a route this node originates.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub prefix: IpNet,
    #[serde(default)]
    pub communities: Vec<CommunityValue>,
}

/// `[control]`: the control socket bgpctl talks to.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_socket(),
        }
    }
}

/// `[log]`: where and how bgpd logs (always to stderr).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter, e.g. "info" or "bgpd=debug".
    #[serde(default)]
    pub level: Option<String>,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([0, 0, 0, 0], 179)),
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 179)),
    ]
}

fn default_port() -> u16 {
    179
}

fn default_connect_retry() -> u16 {
    5
}

fn default_socket() -> PathBuf {
    PathBuf::from("/run/wren/bgpd.sock")
}
