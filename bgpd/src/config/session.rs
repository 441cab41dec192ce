//! The settings of a BGP session, written once: [`SessionOptions`] is what
//! `[[bgp.neighbor]]`, `[[bgp.listen_range]]` and the node mesh have in common (the
//! sections themselves are in `section`). Keys that make sense for an outgoing
//! session only ([`NEIGHBOR_ONLY`]) are refused in a listen range by `check`.

use std::net::IpAddr;

use serde::Deserialize;

use super::{Asn, FamilyName, HoldTime, InterfaceName, MaxPrefixes};

/// The session keys a `[[bgp.listen_range]]` refuses: its sessions are accepted,
/// never opened, and come over whatever address and interface the peer used.
pub const NEIGHBOR_ONLY: [&str; 6] = [
    "port",
    "passive",
    "connect_retry",
    "local_address",
    "interface",
    "shutdown",
];

/// Seconds before the first reconnection attempt, when not configured.
pub const DEFAULT_CONNECT_RETRY: u16 = 5;

/// One session's settings, as every kind of neighbor configures them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionOptions {
    pub remote_asn: Asn,
    /// The peer's TCP port.
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
    /// RFC 9687 send hold time in seconds: a peer that reads nothing of ours for
    /// that long is dropped. Default: the greater of 8 minutes and twice the hold
    /// time. Must exceed `hold_time`.
    #[serde(default)]
    pub send_hold_time: Option<u32>,
    /// TCP-MD5 key (RFC 2385), at most 80 bytes.
    #[serde(default)]
    pub password: Option<String>,
    /// GTSM (RFC 5082): send with TTL 255 and refuse packets that arrive below 255.
    #[serde(default)]
    pub ttl_security: bool,
    /// eBGP multihop: TTL of outgoing packets (default 1 for eBGP).
    #[serde(default)]
    pub multihop: Option<u8>,
    /// Families to negotiate; default: the family of the peer's address.
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
    /// The interface a link-local `address` (fe80::/10) is reached on; required for
    /// such a neighbor, refused for any other. Routes it announces with link-local
    /// next hops go out of this interface.
    #[serde(default)]
    pub interface: Option<InterfaceName>,
    /// Advertise the extended next hop capability (RFC 8950) for IPv4 unicast: over
    /// an IPv6 session, IPv4 routes may then come with IPv6 next hops (installed
    /// `via inet6`), as FRR's `neighbor X capability extended-nexthop` sends them.
    /// Needs "ipv4" in `families`.
    #[serde(default)]
    pub extended_next_hop: bool,
    /// Administratively down (`bgpctl neighbor ADDR shutdown` persists nothing; this does).
    #[serde(default)]
    pub shutdown: bool,
    /// eBGP: routes whose AS_PATH does not start with the peer's AS are
    /// treat-as-withdraw (FRR's `enforce-first-as`). Turn off toward route servers
    /// (RFC 7947), which do not put their AS in the path. No effect on iBGP.
    #[serde(default = "default_true")]
    pub enforce_first_as: bool,
    /// Follow a BFD session to the peer (`bfd = true` or a table of timers) and
    /// close at once when it goes down (`config::bfd`).
    #[serde(default, deserialize_with = "super::bfd::deserialize")]
    pub bfd: Option<super::bfd::BfdOptions>,
}

impl SessionOptions {
    /// The defaults of every key, toward `remote_asn`.
    pub fn new(remote_asn: Asn) -> SessionOptions {
        SessionOptions {
            remote_asn,
            port: default_port(),
            passive: false,
            hold_time: HoldTime::DEFAULT,
            keepalive: None,
            connect_retry: DEFAULT_CONNECT_RETRY,
            send_hold_time: None,
            password: None,
            ttl_security: false,
            multihop: None,
            families: None,
            route_reflector_client: false,
            next_hop_self: false,
            max_prefixes: None,
            import: None,
            export: None,
            description: None,
            local_address: None,
            interface: None,
            extended_next_hop: false,
            shutdown: false,
            enforce_first_as: true,
            bfd: None,
        }
    }

    /// The families to negotiate with a peer at `address`: the configured ones, or
    /// the address's own family.
    pub fn families_for(&self, address: IpAddr) -> Vec<FamilyName> {
        match self.families.as_deref() {
            Some(families) if !families.is_empty() => families.to_vec(),
            _ => vec![match address {
                IpAddr::V4(_) => FamilyName::Ipv4,
                IpAddr::V6(_) => FamilyName::Ipv6,
            }],
        }
    }
}

fn default_port() -> u16 {
    bgp_proto::BGP_PORT
}

fn default_true() -> bool {
    true
}

fn default_connect_retry() -> u16 {
    DEFAULT_CONNECT_RETRY
}
