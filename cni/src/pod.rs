//! What one pod attachment is: the names, the MTU, the addresses and the fixed gateway
//! every pod uses (169.254.1.1 and fe80::ecee:eeff:feee:eeee, both the host veth's MAC
//! ee:ee:ee:ee:ee:ee), and the CNI result describing it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use rscni_types::types::{CNIResult, CNIResultWithVersion, Dns, Interface, IpConfig, Route};
use rscni_types::version::SpecVersion;

use crate::sysctl::{self, Sysctl};

/// The MAC of every host-side veth.
pub const HOST_MAC: [u8; 6] = [0xee; 6];
/// The pod's IPv4 gateway: on-link, answered by the host veth (permanent neighbour entry
/// in the pod, proxy ARP on the host as the fallback).
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The pod's IPv6 gateway: the host veth's link-local address (EUI-64 of [`HOST_MAC`]).
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);

/// The MAC as `ip` prints it.
pub fn mac_text(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One attachment: host veth `host_link`, pod interface `ifname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub host_link: String,
    pub ifname: String,
    /// `CONTAINERID/IFNAME`, the host link's alias.
    pub attachment: String,
    pub mtu: u32,
    pub addresses: Vec<IpAddr>,
}

impl Plan {
    pub fn has_ipv4(&self) -> bool {
        self.addresses.iter().any(IpAddr::is_ipv4)
    }

    pub fn has_ipv6(&self) -> bool {
        self.addresses.iter().any(IpAddr::is_ipv6)
    }

    pub fn host_sysctls(&self) -> Vec<Sysctl> {
        let mut settings = sysctl::host_link(&self.host_link, self.has_ipv4(), self.has_ipv6());
        settings.extend(sysctl::host_forwarding(self.has_ipv4(), self.has_ipv6()));
        settings
    }

    pub fn pod_sysctls(&self) -> Vec<Sysctl> {
        sysctl::pod_link(&self.ifname, self.has_ipv6())
    }

    /// The gateways the pod routes through, one per family it has.
    pub fn gateways(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        if self.has_ipv4() {
            out.push(IpAddr::V4(GATEWAY_V4));
        }
        if self.has_ipv6() {
            out.push(IpAddr::V6(GATEWAY_V6));
        }
        out
    }

    /// The CNI result of a made attachment.
    pub fn result(&self, pod_mac: &[u8], sandbox: &str, dns: Option<Dns>) -> CNIResult {
        let interface = |name: &str, mac: &[u8], sandbox: Option<String>| Interface {
            name: name.to_string(),
            mac: mac_text(mac),
            mtu: Some(self.mtu),
            sandbox,
            socket_path: None,
            pci_id: None,
        };
        CNIResult {
            interfaces: vec![
                interface(&self.host_link, &HOST_MAC, None),
                interface(&self.ifname, pod_mac, Some(sandbox.to_string())),
            ],
            ips: self
                .addresses
                .iter()
                .map(|address| IpConfig {
                    interface: Some(1),
                    address: host_prefix(*address),
                    gateway: Some(gateway_of(*address)),
                })
                .collect(),
            routes: self
                .gateways()
                .into_iter()
                .map(|gateway| Route {
                    dst: default_route(gateway),
                    gw: Some(gateway),
                    mtu: None,
                    advmss: None,
                    priority: None,
                    table: None,
                    scope: None,
                })
                .collect(),
            dns,
        }
    }
}

/// The address as a host prefix (`/32`, `/128`).
pub fn host_prefix(address: IpAddr) -> IpNet {
    IpNet::from(address)
}

/// The gateway of an address's family.
pub fn gateway_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => IpAddr::V4(GATEWAY_V4),
        IpAddr::V6(_) => IpAddr::V6(GATEWAY_V6),
    }
}

/// `0.0.0.0/0` or `::/0`, of the family of `like`.
pub fn default_route(like: IpAddr) -> IpNet {
    zero(like.is_ipv6())
}

fn zero(ipv6: bool) -> IpNet {
    let address = if ipv6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    // A prefix length of 0 is valid for both families.
    IpNet::new(address, 0).unwrap_or(IpNet::from(address))
}

/// The result's JSON in the layout of `version` (0.3.x and 0.4.0 have their own).
pub fn result_json(version: SpecVersion, result: CNIResult) -> String {
    let json = if version.is_legacy() {
        serde_json::to_string(&rscni_types::legacy::CNIResult::new(version, result))
    } else {
        serde_json::to_string(&CNIResultWithVersion::new(version, result))
    };
    // Plain data always serializes.
    json.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_and_defaults() {
        assert_eq!(GATEWAY_V6.to_string(), "fe80::ecee:eeff:feee:eeee");
        assert_eq!(
            default_route(IpAddr::V4(GATEWAY_V4)).to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(default_route(IpAddr::V6(GATEWAY_V6)).to_string(), "::/0");
        assert_eq!(
            host_prefix("10.0.0.1".parse().unwrap_or(IpAddr::V4(GATEWAY_V4))).to_string(),
            "10.0.0.1/32"
        );
        assert_eq!(mac_text(&HOST_MAC), "ee:ee:ee:ee:ee:ee");
    }
}
