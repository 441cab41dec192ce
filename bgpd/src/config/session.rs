//! The settings of a BGP session, written once: [`SessionOptions`] is what
//! `[[bgp.neighbor]]`, `[[bgp.listen_range]]` and the node mesh have in common.
//!
//! A section is the peer it names plus its session options, in one TOML table:
//! `[[bgp.neighbor]]` adds `address`, `[[bgp.listen_range]]` adds `prefix` and
//! `max_neighbors`. serde's `flatten` would buffer the table and lose the place of
//! every error, and it does not combine with `deny_unknown_fields`, so
//! [`section`](super::section) reads the section's own keys and hands every other
//! key to `SessionOptions`' derived deserializer, which still refuses unknown ones
//! at their line. Keys that make sense for an outgoing session only
//! ([`NEIGHBOR_ONLY`]) are refused in a listen range by `check`.
//!
//! A section reads as its options (`neighbor.hold_time`) through `Deref`.

use std::net::IpAddr;
use std::ops::Deref;

use ipnet::IpNet;
use serde::de::{IgnoredAny, MapAccess};
use serde::{Deserialize, Deserializer};

use super::section::{self, OwnKeys};
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

/// `[[bgp.neighbor]]`: one configured peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborConfig {
    pub address: IpAddr,
    pub session: SessionOptions,
}

/// `[[bgp.listen_range]]`: accept sessions from any address in `prefix` (dynamic
/// neighbors, as route reflectors need), each with the range's session options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenRangeConfig {
    pub prefix: IpNet,
    /// Most sessions accepted from the range at once.
    pub max_neighbors: Option<u32>,
    pub session: SessionOptions,
}

impl Deref for NeighborConfig {
    type Target = SessionOptions;
    fn deref(&self) -> &SessionOptions {
        &self.session
    }
}

impl Deref for ListenRangeConfig {
    type Target = SessionOptions;
    fn deref(&self) -> &SessionOptions {
        &self.session
    }
}

#[derive(Default)]
struct NeighborKeys {
    address: Option<IpAddr>,
}

impl OwnKeys for NeighborKeys {
    const KEYS: &'static [&'static str] = &["address"];
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "address" => self.address = Some(map.next_value()?),
            _ => map.next_value::<IgnoredAny>().map(drop)?,
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for NeighborConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (own, session) = section::deserialize::<D, NeighborKeys>(deserializer)?;
        Ok(NeighborConfig {
            address: own
                .address
                .ok_or_else(|| serde::de::Error::missing_field("address"))?,
            session,
        })
    }
}

#[derive(Default)]
struct ListenRangeKeys {
    prefix: Option<IpNet>,
    max_neighbors: Option<u32>,
}

impl OwnKeys for ListenRangeKeys {
    const KEYS: &'static [&'static str] = &["prefix", "max_neighbors"];
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "prefix" => self.prefix = Some(map.next_value()?),
            "max_neighbors" => self.max_neighbors = Some(map.next_value()?),
            _ => map.next_value::<IgnoredAny>().map(drop)?,
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ListenRangeConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (own, session) = section::deserialize::<D, ListenRangeKeys>(deserializer)?;
        Ok(ListenRangeConfig {
            prefix: own
                .prefix
                .ok_or_else(|| serde::de::Error::missing_field("prefix"))?,
            max_neighbors: own.max_neighbors,
            session,
        })
    }
}

fn default_port() -> u16 {
    bgp_proto::BGP_PORT
}

fn default_connect_retry() -> u16 {
    DEFAULT_CONNECT_RETRY
}
