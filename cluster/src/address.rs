//! The node's addresses, the ones other nodes peer with: chosen by
//! `[ipam] address_detection` with Calico's methods.
//!
//! | method | chooses |
//! |---|---|
//! | `first-found` | the first usable address of each family on the first interface that is up and not excluded (`cali*`, `wren*`, `veth*`, `docker*`, `vxlan*`, `lo`) |
//! | `kubernetes-internal-ip` | the Node's `status.addresses` of type `InternalIP`, the first of each family (the default in a cluster) |
//! | `interface=REGEX` | as `first-found`, over the interfaces whose whole name matches REGEX (no exclusions) |
//! | `skip-interface=REGEX` | as `first-found`, also skipping the interfaces whose whole name matches REGEX |
//! | `can-reach=ADDR[,ADDR]` | for each ADDR, the source address the kernel would use to reach it |
//! | `cidr=CIDR[,CIDR]` | the first usable address of each family inside one of the CIDRs, on any interface that is up |
//!
//! Usable: not unspecified, loopback, link-local or multicast. Interfaces are taken
//! in the kernel's order (by interface index), addresses in the order the kernel lists
//! them. At most one address per family comes out (`can-reach` gives one per
//! destination, at most one per family too). The regular expressions match the whole
//! interface name (`interface=eth.*` does not take `veth0`); several may be given
//! separated by commas, as in Calico.

use std::fmt;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::str::FromStr;

use ipnet::IpNet;
use regex::Regex;
use serde::{Deserialize, Deserializer, de};

use crate::ClusterError;

/// Interfaces `first-found` and `skip-interface` never take an address from: pods'
/// veths (Calico's, Wren's, anybody's), Docker's bridge, VXLAN devices, loopback.
pub const EXCLUDED_INTERFACES: &str = "cali.*|wren.*|veth.*|docker.*|vxlan.*|lo";

/// One way to find the node's addresses.
#[derive(Clone, Debug)]
pub enum Detection {
    FirstFound,
    KubernetesInternalIp,
    Interface(NameMatch),
    SkipInterface(NameMatch),
    CanReach(Vec<IpAddr>),
    Cidr(Vec<IpNet>),
}

/// A regular expression matched against whole interface names, with its text.
#[derive(Clone, Debug)]
pub struct NameMatch {
    text: String,
    regex: Regex,
}

impl NameMatch {
    /// `patterns`: one or more regular expressions separated by commas.
    pub fn new(patterns: &str) -> Result<NameMatch, String> {
        let parts: Vec<&str> = patterns.split(',').map(str::trim).collect();
        if parts.iter().any(|part| part.is_empty()) {
            return Err(format!("{patterns:?} holds an empty regular expression"));
        }
        let whole = format!("^(?:{})$", parts.join("|"));
        let regex = Regex::new(&whole)
            .map_err(|error| format!("{patterns:?} is not a regular expression: {error}"))?;
        Ok(NameMatch {
            text: patterns.to_owned(),
            regex,
        })
    }

    pub fn matches(&self, interface: &str) -> bool {
        self.regex.is_match(interface)
    }
}

impl PartialEq for NameMatch {
    fn eq(&self, other: &NameMatch) -> bool {
        self.text == other.text
    }
}

impl Eq for NameMatch {}

impl PartialEq for Detection {
    fn eq(&self, other: &Detection) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Detection {}

impl FromStr for Detection {
    type Err = String;

    fn from_str(text: &str) -> Result<Detection, String> {
        parse(text)
    }
}

/// [`Detection`] from its text (`method` or `method=value`).
fn parse<'a>(text: &'a str) -> Result<Detection, String> {
    let (method, value) = match text.split_once('=') {
        Some((method, value)) => (method.trim(), Some(value.trim())),
        None => (text.trim(), None),
    };
    let needs = |value: Option<&'a str>| -> Result<&'a str, String> {
        value
            .filter(|value| !value.is_empty())
            .ok_or_else(|| format!("{method}= needs a value"))
    };
    let detection = match method {
        "first-found" | "kubernetes-internal-ip" if value.is_some() => {
            return Err(format!("{method} takes no value"));
        }
        "first-found" => Detection::FirstFound,
        "kubernetes-internal-ip" => Detection::KubernetesInternalIp,
        "interface" => Detection::Interface(NameMatch::new(needs(value)?)?),
        "skip-interface" => Detection::SkipInterface(NameMatch::new(needs(value)?)?),
        "can-reach" => Detection::CanReach(list(method, needs(value)?, "an IP address")?),
        "cidr" => Detection::Cidr(list(method, needs(value)?, "a CIDR")?),
        other => {
            return Err(format!(
                "unknown address detection method {other:?} (first-found, kubernetes-internal-ip, interface=REGEX, skip-interface=REGEX, can-reach=ADDR, cidr=CIDR)"
            ));
        }
    };
    Ok(detection)
}

/// The comma-separated values of `method`, each one `what`.
fn list<T: FromStr>(method: &str, value: &str, what: &str) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(str::trim)
        .map(|part| {
            part.parse()
                .map_err(|_| format!("{method}: {part:?} is not {what}"))
        })
        .collect()
}

impl fmt::Display for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |items: Vec<String>| items.join(",");
        match self {
            Detection::FirstFound => f.write_str("first-found"),
            Detection::KubernetesInternalIp => f.write_str("kubernetes-internal-ip"),
            Detection::Interface(names) => write!(f, "interface={}", names.text),
            Detection::SkipInterface(names) => write!(f, "skip-interface={}", names.text),
            Detection::CanReach(targets) => write!(
                f,
                "can-reach={}",
                join(targets.iter().map(ToString::to_string).collect())
            ),
            Detection::Cidr(cidrs) => write!(
                f,
                "cidr={}",
                join(cidrs.iter().map(ToString::to_string).collect())
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Detection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// One network interface and its addresses, as the kernel lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub up: bool,
    pub addresses: Vec<IpAddr>,
}

/// Whether `address` can be a peering address.
pub fn usable(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified() || v4.is_loopback() || v4.is_link_local() || v4.is_multicast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_unicast_link_local()
                || v6.is_multicast())
        }
    }
}

impl Detection {
    /// The addresses an interface-based method chooses among `interfaces` (sorted by
    /// index), at most one per family, IPv4 first. `None` for the methods that do
    /// not look at interfaces (`kubernetes-internal-ip`, `can-reach`).
    pub fn choose(&self, interfaces: &[Interface]) -> Option<Vec<IpAddr>> {
        let excluded = NameMatch::new(EXCLUDED_INTERFACES).ok();
        let excluded = |name: &str| excluded.as_ref().is_some_and(|e| e.matches(name));
        let allowed = |name: &str| match self {
            Detection::FirstFound => !excluded(name),
            Detection::Interface(names) => names.matches(name),
            Detection::SkipInterface(names) => !names.matches(name) && !excluded(name),
            _ => true,
        };
        let inside: &[IpNet] = match self {
            Detection::KubernetesInternalIp | Detection::CanReach(_) => return None,
            Detection::Cidr(cidrs) => cidrs,
            _ => &[],
        };
        let candidates = || {
            interfaces
                .iter()
                .filter(|interface| interface.up && allowed(&interface.name))
                .flat_map(|interface| interface.addresses.iter().copied())
                .filter(|address| usable(*address))
                .filter(|address| inside.is_empty() || inside.iter().any(|c| c.contains(address)))
        };
        let v4 = candidates().find(IpAddr::is_ipv4);
        let v6 = candidates().find(IpAddr::is_ipv6);
        Some(v4.into_iter().chain(v6).collect())
    }

    /// The node's addresses by this method, reading the interfaces and routes of the
    /// network namespace the calling thread is in. `internal_ips`: the Node's
    /// `InternalIP` addresses, needed by `kubernetes-internal-ip` only.
    pub fn detect(&self, internal_ips: Option<&[IpAddr]>) -> Result<Vec<IpAddr>, ClusterError> {
        let found = match self {
            Detection::KubernetesInternalIp => {
                let addresses = internal_ips.ok_or_else(|| ClusterError::Detection {
                    method: self.to_string(),
                    reason: "the Node object is not known (no Kubernetes API server)".into(),
                })?;
                first_per_family(addresses.iter().copied().filter(|a| usable(*a)))
            }
            Detection::CanReach(targets) => {
                let mut found = Vec::new();
                for target in targets {
                    let source =
                        source_toward(*target).map_err(|reason| ClusterError::Detection {
                            method: self.to_string(),
                            reason,
                        })?;
                    if !found
                        .iter()
                        .any(|a: &IpAddr| a.is_ipv4() == source.is_ipv4())
                    {
                        found.push(source);
                    }
                }
                found
            }
            _ => {
                let interfaces = interfaces().map_err(|reason| ClusterError::Detection {
                    method: self.to_string(),
                    reason,
                })?;
                self.choose(&interfaces).unwrap_or_default()
            }
        };
        if found.is_empty() {
            return Err(ClusterError::Detection {
                method: self.to_string(),
                reason: "found no usable address".into(),
            });
        }
        Ok(found)
    }
}

/// The first address of each family, IPv4 first.
fn first_per_family(addresses: impl Iterator<Item = IpAddr> + Clone) -> Vec<IpAddr> {
    let v4 = addresses.clone().find(IpAddr::is_ipv4);
    let v6 = addresses.clone().find(IpAddr::is_ipv6);
    v4.into_iter().chain(v6).collect()
}

/// The source address the kernel picks to reach `target`: a UDP socket connected to
/// it (a connect sends nothing) tells its local address.
pub fn source_toward(target: IpAddr) -> Result<IpAddr, String> {
    let bind: SocketAddr = match target {
        IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        IpAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = UdpSocket::bind(bind).map_err(|error| format!("UDP socket: {error}"))?;
    // Any port: nothing is sent. 179, so a route by port (policy routing) sees BGP.
    socket
        .connect(SocketAddr::new(target, 179))
        .map_err(|error| format!("no route to {target}: {error}"))?;
    let local = socket
        .local_addr()
        .map_err(|error| format!("local address toward {target}: {error}"))?
        .ip();
    if !usable(local) {
        return Err(format!(
            "the kernel reaches {target} from {local}, not a usable peering address"
        ));
    }
    Ok(local)
}

/// The interfaces of the calling thread's network namespace, by index.
pub fn interfaces() -> Result<Vec<Interface>, String> {
    let list = nix::ifaddrs::getifaddrs().map_err(|error| format!("getifaddrs: {error}"))?;
    let mut interfaces: Vec<Interface> = Vec::new();
    for entry in list {
        let position = match interfaces
            .iter()
            .position(|i| i.name == entry.interface_name)
        {
            Some(position) => position,
            None => {
                let index = nix::net::if_::if_nametoindex(entry.interface_name.as_str())
                    .unwrap_or(u32::MAX);
                interfaces.push(Interface {
                    name: entry.interface_name.clone(),
                    index,
                    up: false,
                    addresses: Vec::new(),
                });
                interfaces.len() - 1
            }
        };
        let Some(interface) = interfaces.get_mut(position) else {
            continue;
        };
        interface.up |= entry.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP);
        let address = entry.address.as_ref().and_then(|address| {
            if let Some(v4) = address.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        });
        if let Some(address) = address {
            interface.addresses.push(address);
        }
    }
    interfaces.sort_by_key(|interface| interface.index);
    Ok(interfaces)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn interface(name: &str, index: u32, addresses: &[&str]) -> Interface {
        Interface {
            name: name.into(),
            index,
            up: true,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn host() -> Vec<Interface> {
        vec![
            interface("lo", 1, &["127.0.0.1", "::1"]),
            interface("docker0", 2, &["172.17.0.1"]),
            interface(
                "eth0",
                3,
                &["fe80::1", "169.254.3.3", "10.0.0.5", "2001:db8::5"],
            ),
            interface("eth1", 4, &["192.168.7.5", "2001:db8:7::5"]),
            interface("veth12ab", 5, &["10.99.0.1"]),
            interface("wren.vxlan", 6, &["10.98.0.1"]),
            interface("ens5", 7, &["172.31.0.9"]),
        ]
    }

    #[test]
    fn each_method_chooses_as_documented() {
        let mut down = host();
        down[2].up = false;
        let cases: [(&str, &[Interface], &[&str]); 11] = [
            ("first-found", &host(), &["10.0.0.5", "2001:db8::5"]),
            // A down interface gives nothing.
            ("first-found", &down, &["192.168.7.5", "2001:db8:7::5"]),
            ("interface=eth1", &host(), &["192.168.7.5", "2001:db8:7::5"]),
            // The whole name: veth12ab is not eth.*, ens5 is one of the alternatives.
            ("interface=eth9, ens.*", &host(), &["172.31.0.9"]),
            ("interface=veth.*", &host(), &["10.99.0.1"]),
            (
                "skip-interface=eth0",
                &host(),
                &["192.168.7.5", "2001:db8:7::5"],
            ),
            // skip-interface keeps the default exclusions.
            ("skip-interface=eth.*", &host(), &["172.31.0.9"]),
            ("cidr=172.16.0.0/12", &host(), &["172.17.0.1"]),
            (
                "cidr=172.31.0.0/16,2001:db8:7::/48",
                &host(),
                &["172.31.0.9", "2001:db8:7::5"],
            ),
            // Link-local and loopback are never chosen, even when asked for.
            ("cidr=169.254.0.0/16,127.0.0.0/8", &host(), &[]),
            ("interface=nothing", &host(), &[]),
        ];
        for (method, interfaces, expected) in cases {
            let detection: Detection = method.parse().unwrap();
            let chosen = detection.choose(interfaces).unwrap();
            let expected: Vec<IpAddr> = expected.iter().map(|a| a.parse().unwrap()).collect();
            assert_eq!(chosen, expected, "{method}");
        }
        for method in ["kubernetes-internal-ip", "can-reach=10.0.0.1"] {
            assert!(
                method
                    .parse::<Detection>()
                    .unwrap()
                    .choose(&host())
                    .is_none()
            );
        }
    }

    #[test]
    fn methods_parse_and_print_back() {
        for text in [
            "first-found",
            "kubernetes-internal-ip",
            "interface=eth.*,ens5",
            "skip-interface=eth0",
            "can-reach=10.0.0.1,2001:db8::1",
            "cidr=10.0.0.0/8",
        ] {
            assert_eq!(text.parse::<Detection>().unwrap().to_string(), text);
        }
        let bad = [
            ("first-found=eth0", "takes no value"),
            ("interface=", "needs a value"),
            ("interface=eth(", "not a regular expression"),
            ("interface=eth0,,eth1", "empty regular expression"),
            ("can-reach=example.com", "not an IP address"),
            ("cidr=10.0.0.0/33", "not a CIDR"),
            ("first", "unknown address detection method"),
        ];
        for (text, words) in bad {
            let message = text.parse::<Detection>().unwrap_err();
            assert!(message.contains(words), "{text}: {message}");
        }
    }

    #[test]
    fn kubernetes_internal_ip_takes_the_first_usable_of_each_family() {
        let detection = Detection::KubernetesInternalIp;
        let ips: Vec<IpAddr> = ["fe80::9", "10.0.0.7", "fd00::7", "10.0.0.8"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(detection.detect(Some(&ips)).unwrap(), vec![ips[1], ips[2]]);
        let message = detection.detect(None).unwrap_err().to_string();
        assert!(message.contains("kubernetes-internal-ip"), "{message}");
        let message = detection.detect(Some(&ips[..1])).unwrap_err().to_string();
        assert!(message.contains("no usable address"), "{message}");
    }
}
