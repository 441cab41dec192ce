//! The containerlab topology file (`*.clab.yml`) as typed structs: the subset of
//! containerlab's schema that a namespace lab can honour, plus the containerlab fields that
//! only matter to containers (accepted and ignored, so a file stays valid for both tools).
//! Anything else is refused with the file and key named.
//!
//! Node settings merge as containerlab does: the node's own value, else its kind's entry in
//! `topology.kinds`, else `topology.defaults`; `env` and `labels` maps are merged key by key.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::names::valid_ifname;

/// A whole topology file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub name: String,
    /// Container name prefix: `clab` by default (names are `clab-LAB-NODE`), `""` for bare
    /// node names, `__lab-name` for `LAB-NODE`.
    pub prefix: Option<String>,
    /// Containerlab's management network; the runner builds it as a bridge that every
    /// node with a `mgmt-ipv4` / `mgmt-ipv6` address joins on `eth0` (see [`super::mgmt`]).
    pub mgmt: Option<MgmtConfig>,
    pub topology: Section,
}

/// `mgmt:`, containerlab's management network. The subnets give the prefix length of the
/// nodes' `eth0` addresses (default 172.20.20.0/24 and a /64); the other keys only matter to
/// Docker.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MgmtConfig {
    pub network: Option<String>,
    pub bridge: Option<String>,
    pub ipv4_subnet: Option<String>,
    pub ipv6_subnet: Option<String>,
    pub ipv4_gw: Option<String>,
    pub ipv6_gw: Option<String>,
    pub ipv4_range: Option<String>,
    pub ipv6_range: Option<String>,
    pub mtu: Option<u32>,
    pub external_access: Option<bool>,
}

/// `topology:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    #[serde(default)]
    pub defaults: NodeConfig,
    #[serde(default)]
    pub kinds: BTreeMap<String, NodeConfig>,
    pub nodes: BTreeMap<String, NodeConfig>,
    #[serde(default)]
    pub links: Vec<LinkConfig>,
}

/// One node's settings (also the shape of `defaults` and `kinds` entries).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeConfig {
    pub kind: Option<String>,
    pub image: Option<String>,
    /// `HOST_PATH:CONTAINER_PATH[:ro|rw]`, host paths relative to the topology file.
    pub binds: Option<Vec<String>>,
    /// Commands run inside the node after the links are up.
    pub exec: Option<Vec<String>>,
    /// The image's command line (containerlab's `cmd`): a kube-apiserver node's flags.
    pub cmd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub labels: BTreeMap<String, Scalar>,
    // Container-only settings, accepted for compatibility and ignored.
    #[serde(rename = "type")]
    pub node_type: Option<String>,
    pub group: Option<String>,
    pub ports: Option<Vec<String>>,
    /// `mgmt-ipv4` (older files spell it `mgmt_ipv4`).
    #[serde(alias = "mgmt_ipv4")]
    pub mgmt_ipv4: Option<String>,
    #[serde(alias = "mgmt_ipv6")]
    pub mgmt_ipv6: Option<String>,
    pub network_mode: Option<String>,
    pub startup_delay: Option<u64>,
    pub wait_for: Option<Vec<String>>,
    pub image_pull_policy: Option<String>,
    pub restart_policy: Option<String>,
    pub cpu: Option<f64>,
    pub memory: Option<String>,
    pub cpu_set: Option<String>,
}

/// A YAML scalar used as an env or label value (containerlab allows strings and numbers).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Text(text) => f.write_str(text),
            Scalar::Integer(n) => write!(f, "{n}"),
            Scalar::Float(n) => write!(f, "{n}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One entry of `topology.links` in containerlab's brief form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// Exactly two `NODE:INTERFACE` strings.
    pub endpoints: Vec<String>,
    pub mtu: Option<u32>,
    #[serde(default)]
    pub labels: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub vars: Option<serde_yaml_ng::Value>,
}

/// A node with its settings merged and its binds resolved against the file's directory.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub kind: String,
    pub image: String,
    pub binds: Vec<Bind>,
    pub exec: Vec<String>,
    /// `cmd` split into words (no shell quoting).
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The node's address on the management network (`eth0`), with the subnet's length.
    pub mgmt_ipv4: Option<(Ipv4Addr, u8)>,
    pub mgmt_ipv6: Option<(Ipv6Addr, u8)>,
}

/// A bind: a host file or directory shown at `target` in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
}

impl Node {
    /// The host path bound at `target` (exact container path), if any.
    pub fn bound(&self, target: &str) -> Option<&Path> {
        self.binds
            .iter()
            .find(|b| b.target == target)
            .map(|b| b.source.as_path())
    }
}

/// A link between two node interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub a: (String, String),
    pub b: (String, String),
    pub mtu: Option<u32>,
}

/// A parsed, checked topology.
#[derive(Debug, Clone)]
pub struct Topology {
    pub name: String,
    pub prefix: Option<String>,
    /// The topology file's path.
    pub path: PathBuf,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    /// The management network's MTU, when the file sets one.
    pub mgmt_mtu: Option<u32>,
}

impl Topology {
    /// Reads and checks a topology file.
    pub fn load(path: &Path) -> Result<Topology> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading topology {}", path.display()), e))?;
        Topology::parse(&text, path)
    }

    /// Parses topology text; `path` names the file in errors and anchors relative binds.
    pub fn parse(text: &str, path: &Path) -> Result<Topology> {
        let file: File = serde_yaml_ng::from_str(text).map_err(|e| {
            let place = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            Error::invalid(format!("topology {}{place}", path.display()), e.to_string())
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let what = |key: &str| format!("topology {}: {key}", path.display());
        check_name(&file.name).map_err(|detail| Error::invalid(what("name"), detail))?;

        let mgmt = file.mgmt.clone().unwrap_or_default();
        let subnets =
            Subnets::of(&mgmt).map_err(|(key, detail)| Error::invalid(what(key), detail))?;
        let mut nodes = Vec::new();
        for (name, config) in &file.topology.nodes {
            check_name(name).map_err(|detail| {
                Error::invalid(what(&format!("topology.nodes.{name}")), detail)
            })?;
            let mut node = merge(name, config, &file.topology, base, &what)?;
            let key = |k: &str| what(&format!("topology.nodes.{name}.{k}"));
            if let Some(text) = &config.mgmt_ipv4 {
                let address = subnets
                    .v4_address(text)
                    .map_err(|detail| Error::invalid(key("mgmt-ipv4"), detail))?;
                node.mgmt_ipv4 = Some(address);
            }
            if let Some(text) = &config.mgmt_ipv6 {
                let address = subnets
                    .v6_address(text)
                    .map_err(|detail| Error::invalid(key("mgmt-ipv6"), detail))?;
                node.mgmt_ipv6 = Some(address);
            }
            nodes.push(node);
        }
        let mut used: Vec<(String, String)> = nodes
            .iter()
            .filter(|n| n.mgmt_ipv4.is_some() || n.mgmt_ipv6.is_some())
            .map(|n| (n.name.clone(), MGMT_IFNAME.to_owned()))
            .collect();

        let mut links = Vec::new();
        for (index, link) in file.topology.links.iter().enumerate() {
            let key = what(&format!("topology.links[{index}].endpoints"));
            let [a, b] = link.endpoints.as_slice() else {
                return Err(Error::invalid(
                    key,
                    "needs exactly two \"node:interface\" endpoints",
                ));
            };
            let a = endpoint(a, &nodes).map_err(|detail| Error::invalid(key.clone(), detail))?;
            let b = endpoint(b, &nodes).map_err(|detail| Error::invalid(key.clone(), detail))?;
            for end in [&a, &b] {
                if used.contains(end) {
                    let detail = if end.1 == MGMT_IFNAME {
                        format!("{}:{} is the node's management interface", end.0, end.1)
                    } else {
                        format!("{}:{} is used by two links", end.0, end.1)
                    };
                    return Err(Error::invalid(key, detail));
                }
                used.push(end.clone());
            }
            links.push(Link {
                a,
                b,
                mtu: link.mtu,
            });
        }

        Ok(Topology {
            name: file.name,
            prefix: file.prefix,
            path: path.to_owned(),
            nodes,
            links,
            mgmt_mtu: mgmt.mtu,
        })
    }

    /// The namespace name of a node, as containerlab names its container:
    /// `clab-LAB-NODE` by default, following `prefix`.
    pub fn netns_name(&self, node: &str) -> String {
        match self.prefix.as_deref() {
            None => format!("clab-{}-{node}", self.name),
            Some("") => node.to_owned(),
            Some("__lab-name") => format!("{}-{node}", self.name),
            Some(prefix) => format!("{prefix}-{}-{node}", self.name),
        }
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

fn merge(
    name: &str,
    node: &NodeConfig,
    section: &Section,
    base: &Path,
    what: &dyn Fn(&str) -> String,
) -> Result<Node> {
    let defaults = &section.defaults;
    let kind = node
        .kind
        .clone()
        .or_else(|| defaults.kind.clone())
        .ok_or_else(|| {
            Error::invalid(
                what(&format!("topology.nodes.{name}.kind")),
                "missing (and no default kind)",
            )
        })?;
    let kind_config = section.kinds.get(&kind);
    let pick = |get: &dyn Fn(&NodeConfig) -> Option<Vec<String>>| {
        get(node)
            .or_else(|| kind_config.and_then(get))
            .or_else(|| get(defaults))
            .unwrap_or_default()
    };
    let image = node
        .image
        .clone()
        .or_else(|| kind_config.and_then(|k| k.image.clone()))
        .or_else(|| defaults.image.clone())
        .unwrap_or_default();
    let mut env = BTreeMap::new();
    let mut labels = BTreeMap::new();
    for layer in [Some(defaults), kind_config, Some(node)]
        .into_iter()
        .flatten()
    {
        env.extend(layer.env.iter().map(|(k, v)| (k.clone(), v.to_string())));
        labels.extend(layer.labels.iter().map(|(k, v)| (k.clone(), v.to_string())));
    }
    let mut binds = Vec::new();
    for spec in pick(&|c| c.binds.clone()) {
        let mut parts = spec.split(':');
        let (Some(source), Some(target)) = (parts.next(), parts.next()) else {
            return Err(Error::invalid(
                what(&format!("topology.nodes.{name}.binds")),
                format!("{spec:?} is not HOST_PATH:CONTAINER_PATH"),
            ));
        };
        let source = Path::new(source);
        binds.push(Bind {
            source: if source.is_absolute() {
                source.to_owned()
            } else {
                base.join(source)
            },
            target: target.to_owned(),
        });
    }
    let cmd = pick(&|c| c.cmd.clone().map(|cmd| vec![cmd])).join(" ");
    if cmd.contains(['"', '\'', '\\']) {
        return Err(Error::invalid(
            what(&format!("topology.nodes.{name}.cmd")),
            "wren-lab splits cmd at spaces and does not read shell quoting; write one word per flag",
        ));
    }
    Ok(Node {
        name: name.to_owned(),
        kind,
        image,
        binds,
        exec: pick(&|c| c.exec.clone()),
        cmd: cmd.split_whitespace().map(str::to_owned).collect(),
        env,
        labels,
        mgmt_ipv4: None,
        mgmt_ipv6: None,
    })
}

/// The interface of a node on the management network, as in containerlab.
pub const MGMT_IFNAME: &str = "eth0";

/// The management subnets' prefix lengths and the checks of node addresses against them.
struct Subnets {
    v4: (Ipv4Addr, u8),
    v6: Option<(Ipv6Addr, u8)>,
}

impl Subnets {
    fn of(mgmt: &MgmtConfig) -> Result<Subnets, (&'static str, String)> {
        let v4 = match &mgmt.ipv4_subnet {
            Some(text) => cidr::<Ipv4Addr>(text, 32).map_err(|d| ("mgmt.ipv4-subnet", d))?,
            None => (Ipv4Addr::new(172, 20, 20, 0), 24),
        };
        let v6 = match &mgmt.ipv6_subnet {
            Some(text) => Some(cidr::<Ipv6Addr>(text, 128).map_err(|d| ("mgmt.ipv6-subnet", d))?),
            None => None,
        };
        Ok(Subnets { v4, v6 })
    }

    fn v4_address(&self, text: &str) -> Result<(Ipv4Addr, u8), String> {
        let address: Ipv4Addr = text
            .parse()
            .map_err(|_| format!("{text:?} is not an IPv4 address"))?;
        let (net, len) = self.v4;
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        if u32::from(address) & mask != u32::from(net) & mask {
            return Err(format!(
                "{address} is outside the management subnet {net}/{len}"
            ));
        }
        Ok((address, len))
    }

    fn v6_address(&self, text: &str) -> Result<(Ipv6Addr, u8), String> {
        let address: Ipv6Addr = text
            .parse()
            .map_err(|_| format!("{text:?} is not an IPv6 address"))?;
        let Some((net, len)) = self.v6 else {
            return Ok((address, 64));
        };
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        if u128::from(address) & mask != u128::from(net) & mask {
            return Err(format!(
                "{address} is outside the management subnet {net}/{len}"
            ));
        }
        Ok((address, len))
    }
}

/// `ADDRESS/LENGTH`.
fn cidr<A: std::str::FromStr>(text: &str, max: u8) -> Result<(A, u8), String> {
    let bad = || format!("{text:?} is not ADDRESS/LENGTH");
    let (address, len) = text.split_once('/').ok_or_else(bad)?;
    let address = address.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > max {
        return Err(bad());
    }
    Ok((address, len))
}

fn endpoint(text: &str, nodes: &[Node]) -> Result<(String, String), String> {
    let Some((node, interface)) = text.split_once(':') else {
        return Err(format!("{text:?} is not \"node:interface\""));
    };
    if !nodes.iter().any(|n| n.name == node) {
        return Err(format!(
            "{text:?} names node {node:?}, which is not in topology.nodes"
        ));
    }
    if !valid_ifname(interface) {
        return Err(format!(
            "{text:?}: interface name must be 1-15 characters without '/', ':' or spaces"
        ));
    }
    Ok((node.to_owned(), interface.to_owned()))
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?}: use 1-64 letters, digits, '-' and '_'"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    const PAIR: &str = r#"
name: pair
topology:
  defaults:
    env:
      COMMON: "1"
  kinds:
    linux:
      image: alpine:3
  nodes:
    r1:
      kind: linux
      image: quay.io/frrouting/frr:8.4.0
      binds:
        - r1/frr.conf:/etc/frr/frr.conf
      exec:
        - ip addr add 10.0.0.1/30 dev eth1
      labels:
        wren.io/pods: 2
    r2:
      kind: linux
      mgmt-ipv4: 172.20.20.3
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
      mtu: 1400
"#;

    #[test]
    fn parses_and_merges() {
        let topology = Topology::parse(PAIR, Path::new("/labs/pair.clab.yml")).unwrap();
        assert_eq!(topology.name, "pair");
        let r1 = topology.node("r1").unwrap();
        assert_eq!(r1.image, "quay.io/frrouting/frr:8.4.0");
        assert_eq!(
            r1.bound("/etc/frr/frr.conf").unwrap(),
            Path::new("/labs/r1/frr.conf")
        );
        assert_eq!(r1.labels["wren.io/pods"], "2");
        assert_eq!(r1.env["COMMON"], "1");
        assert_eq!(topology.node("r2").unwrap().image, "alpine:3");
        assert_eq!(
            topology.links,
            [Link {
                a: ("r1".into(), "eth1".into()),
                b: ("r2".into(), "eth1".into()),
                mtu: Some(1400)
            }]
        );
        assert_eq!(topology.netns_name("r1"), "clab-pair-r1");
    }

    #[test]
    fn unknown_key_is_named() {
        let text = PAIR.replace("      exec:", "      exce:");
        let error = Topology::parse(&text, Path::new("t.clab.yml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("t.clab.yml") && error.contains("exce"),
            "{error}"
        );
    }

    #[test]
    fn bad_links_are_refused() {
        for (bad, needle) in [
            (r#"["r1:eth1", "r3:eth1"]"#, "r3"),
            (r#"["r1:eth1"]"#, "exactly two"),
            (r#"["r1:eth1", "r2"]"#, "node:interface"),
            (r#"["r1:eth1", "r2:an-interface-name-too-long"]"#, "15"),
        ] {
            let text = PAIR.replace(r#"["r1:eth1", "r2:eth1"]"#, bad);
            let error = Topology::parse(&text, Path::new("t.clab.yml"))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("links[0]") && error.contains(needle),
                "{bad}: {error}"
            );
        }
        let twice = PAIR.replace(
            "      mtu: 1400",
            "    - endpoints: [\"r1:eth1\", \"r2:eth2\"]",
        );
        let error = Topology::parse(&twice, Path::new("t.clab.yml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("two links"), "{error}");
    }

    #[test]
    fn prefixes_follow_containerlab() {
        let mut topology = Topology::parse(PAIR, Path::new("t.clab.yml")).unwrap();
        topology.prefix = Some(String::new());
        assert_eq!(topology.netns_name("r1"), "r1");
        topology.prefix = Some("__lab-name".into());
        assert_eq!(topology.netns_name("r1"), "pair-r1");
        topology.prefix = Some("lab".into());
        assert_eq!(topology.netns_name("r1"), "lab-pair-r1");
    }
}
