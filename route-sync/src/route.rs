//! Desired routes: what bgpd (or any caller) asks route-sync to keep in the
//! kernel. A route is keyed by its prefix; its target is a set of next hops
//! (ECMP when more than one) or a blackhole.
//!
//! An IPv4 route may have IPv6 gateways (RFC 8950 extended next hop): they are
//! installed with RTA_VIA, as `ip route add 10.0.0.0/24 via inet6 fe80::1 dev
//! eth1` does (Linux 5.2 or later). An IPv6 link-local gateway needs its device.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One desired route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    /// Destination; host bits are cleared when the route is accepted.
    pub prefix: IpNet,
    /// Where packets to `prefix` go.
    pub target: Target,
}

/// Where packets of a route go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Forward through one or more next hops (several: ECMP via RTA_MULTIPATH).
    Unicast(Vec<NextHop>),
    /// Drop silently (the node's own address blocks).
    Blackhole,
}

/// One next hop of a unicast route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextHop {
    /// Through a gateway. Without a device the gateway is resolved: directly
    /// when it is on a connected subnet, else recursively through the
    /// kernel's own routes. With a device it is installed as given.
    Gateway {
        address: IpAddr,
        device: Option<String>,
    },
    /// Straight out of a device (a device route, scope link).
    Device(String),
    /// Through a gateway on `device` that no connected subnet covers, taken as on
    /// the device's link (RTNH_F_ONLINK, `ip route ... via A dev D onlink`): a
    /// VXLAN peer's tunnel address on the VXLAN device.
    OnLink { address: IpAddr, device: String },
    /// BGP's IPv6 next hop pair (RFC 2545): `global` when it resolves (on a
    /// connected subnet or recursively), else `link_local` through `device`.
    /// Re-resolved like any gateway, so it moves to the global address once
    /// that becomes reachable and back when it no longer is.
    GlobalOrLinkLocal {
        global: Ipv6Addr,
        link_local: Ipv6Addr,
        device: String,
    },
}

impl Route {
    /// A route through one gateway, resolved by route-sync.
    pub fn via(prefix: IpNet, gateway: IpAddr) -> Route {
        Route {
            prefix,
            target: Target::Unicast(vec![NextHop::gateway(gateway)]),
        }
    }

    /// A blackhole route.
    pub fn blackhole(prefix: IpNet) -> Route {
        Route {
            prefix,
            target: Target::Blackhole,
        }
    }

    /// A device route.
    pub fn device(prefix: IpNet, device: impl Into<String>) -> Route {
        Route {
            prefix,
            target: Target::Unicast(vec![NextHop::Device(device.into())]),
        }
    }
}

impl NextHop {
    /// A gateway next hop without a device (resolved by route-sync).
    pub fn gateway(address: IpAddr) -> NextHop {
        NextHop::Gateway {
            address,
            device: None,
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.prefix, self.target)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Blackhole => f.write_str("blackhole"),
            Target::Unicast(hops) => {
                for (i, hop) in hops.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{hop}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::Gateway {
                address,
                device: None,
            } => write!(f, "via {address}"),
            NextHop::Gateway {
                address,
                device: Some(device),
            } => write!(f, "via {address} dev {device}"),
            NextHop::Device(device) => write!(f, "dev {device}"),
            NextHop::OnLink { address, device } => write!(f, "via {address} dev {device} onlink"),
            NextHop::GlobalOrLinkLocal {
                global,
                link_local,
                device,
            } => write!(f, "via {global} or {link_local} dev {device}"),
        }
    }
}
