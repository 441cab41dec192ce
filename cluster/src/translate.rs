//! From the BGP custom resources and the Node objects to one node's BGP settings, as
//! pure functions.
//!
//! Each resource is checked alone ([`configuration`], [`peer`]): a bad one is refused
//! with a reason (for its status) and the others go on. [`node_settings`] then gives
//! what applies to one node: its AS and route reflector cluster id, whether it
//! meshes, its BGP port, the communities of its blocks, and its neighbors, each one
//! a `[[bgp.neighbor]]` table with the keys of bgpd's file, so that bgpd reads it
//! with the parser and checks of its own file (the same `NeighborConfig`).
//!
//! Precedence of a node's AS and cluster id (bgpd's file wins over all of these):
//! the Node's annotation `wren.io/asn` (`wren.io/route-reflector-cluster-id`), else
//! its label of that name, else (for the AS) the `BGPConfiguration`'s `asNumber`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use toml::{Table, Value};

use crate::refusal::{Problem, Refusal, Subject};
use crate::resources::{Bfd, BgpConfigurationSpec, BgpPeerSpec, SecretKeyRef};
use crate::selector;

/// The Node annotation (or label) with the node's AS number.
pub const ASN_KEY: &str = "wren.io/asn";
/// The Node annotation (or label) with the node's route reflector cluster id.
pub const CLUSTER_ID_KEY: &str = "wren.io/route-reflector-cluster-id";
/// The Node annotations with the addresses the node registered for peering.
pub const ADDRESS_KEYS: [&str; 2] = ["wren.io/ipv4-address", "wren.io/ipv6-address"];

/// What the translation needs of a Node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl NodeFacts {
    pub fn from_node(node: &Node) -> NodeFacts {
        NodeFacts {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            annotations: node.metadata.annotations.clone().unwrap_or_default(),
        }
    }

    /// The annotation `key`, else the label.
    fn setting(&self, key: &str) -> Option<&str> {
        self.annotations
            .get(key)
            .or_else(|| self.labels.get(key))
            .map(|value| value.trim())
    }

    /// The node's own AS (annotation, else label), if it sets one.
    pub fn asn(&self) -> Result<Option<u32>, Refusal> {
        self.setting(ASN_KEY)
            .map(|text| {
                text.parse::<u32>()
                    .ok()
                    .filter(|asn| usable_asn(*asn))
                    .ok_or_else(|| Refusal::InvalidNodeSetting {
                        node: self.name.clone(),
                        key: ASN_KEY,
                        value: text.to_owned(),
                        expected: "a usable AS number",
                    })
            })
            .transpose()
    }

    /// The node's route reflector cluster id (annotation, else label), if it sets one.
    pub fn cluster_id(&self) -> Result<Option<Ipv4Addr>, Refusal> {
        self.setting(CLUSTER_ID_KEY)
            .map(|text| {
                text.parse::<Ipv4Addr>()
                    .map_err(|_| Refusal::InvalidNodeSetting {
                        node: self.name.clone(),
                        key: CLUSTER_ID_KEY,
                        value: text.to_owned(),
                        expected: "an IPv4 address",
                    })
            })
            .transpose()
    }

    /// The peering addresses the node registered (annotations), IPv4 first.
    pub fn addresses(&self) -> Vec<IpAddr> {
        ADDRESS_KEYS
            .iter()
            .filter_map(|key| self.annotations.get(*key))
            .filter_map(|text| text.trim().parse::<IpAddr>().ok())
            .collect()
    }
}

/// An AS bgpd can use: not 0 (RFC 7607), not AS_TRANS (RFC 6793).
fn usable_asn(asn: u32) -> bool {
    asn != 0 && asn != 23456
}

/// A checked `BGPConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Configuration {
    pub asn: Option<u32>,
    pub node_mesh: Option<bool>,
    pub listen_port: Option<u16>,
    /// RFC 1997 values.
    pub communities: Vec<u32>,
}

/// Checks a `BGPConfiguration`'s spec.
pub fn configuration(spec: &BgpConfigurationSpec) -> Result<Configuration, Refusal> {
    if let Some(asn) = spec.as_number.filter(|asn| !usable_asn(*asn)) {
        return Err(Refusal::UnusableAsNumber(asn));
    }
    if spec.listen_port == Some(0) {
        return Err(Refusal::InvalidListenPort);
    }
    let communities = spec
        .communities
        .iter()
        .map(|text| community(text).ok_or_else(|| Refusal::InvalidCommunity(text.clone())))
        .collect::<Result<_, _>>()?;
    Ok(Configuration {
        asn: spec.as_number,
        node_mesh: spec.node_to_node_mesh_enabled,
        listen_port: spec.listen_port,
        communities,
    })
}

fn community(text: &str) -> Option<u32> {
    let (high, low) = text.trim().split_once(':')?;
    Some((u32::from(high.parse::<u16>().ok()?) << 16) | u32::from(low.parse::<u16>().ok()?))
}

/// The nodes a `BGPPeer` is for.
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    Every,
    Node(String),
    Selector(LabelSelector),
}

/// Whom a `BGPPeer` peers with.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Address {
        address: IpAddr,
        asn: u32,
    },
    /// Every node matching, at its registered addresses, with its AS (or this one).
    Nodes {
        selector: LabelSelector,
        asn: Option<u32>,
    },
}

/// A checked `BGPPeer`.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub name: String,
    pub scope: Scope,
    pub target: Target,
    /// The session keys of `[[bgp.neighbor]]` it sets, but `address`, `remote_asn`,
    /// `password`, `local_address` and `description`.
    pub session: Table,
    pub password: Option<SecretKeyRef>,
    /// `sourceAddress: UseNodeIP` (the default): from the node's address of the
    /// peer's family.
    pub use_node_ip: bool,
}

/// Checks the `BGPPeer` `name`.
pub fn peer(name: &str, spec: &BgpPeerSpec) -> Result<Peer, Refusal> {
    let scope = match (&spec.node, &spec.node_selector) {
        (Some(_), Some(_)) => return Err(Refusal::BothNodeAndNodeSelector),
        (Some(node), None) => {
            crate::node::validate(node).map_err(|reason| Refusal::InvalidNodeName {
                node: node.clone(),
                reason,
            })?;
            Scope::Node(node.clone())
        }
        (None, Some(selector)) => {
            selector::validate(selector).map_err(|reason| Refusal::InvalidSelector {
                field: "nodeSelector",
                reason,
            })?;
            Scope::Selector(selector.clone())
        }
        (None, None) => Scope::Every,
    };
    if let Some(asn) = spec.as_number.filter(|asn| !usable_asn(*asn)) {
        return Err(Refusal::UnusableAsNumber(asn));
    }
    let target = match (&spec.peer_ip, &spec.peer_selector) {
        (Some(_), Some(_)) => return Err(Refusal::BothPeerIPAndPeerSelector),
        (None, None) => return Err(Refusal::NoPeerIPOrPeerSelector),
        (Some(text), None) => Target::Address {
            address: text
                .trim()
                .parse()
                .map_err(|_| Refusal::InvalidPeerIP(text.clone()))?,
            asn: spec.as_number.ok_or(Refusal::MissingAsNumber)?,
        },
        (None, Some(selector)) => {
            selector::validate(selector).map_err(|reason| Refusal::InvalidSelector {
                field: "peerSelector",
                reason,
            })?;
            Target::Nodes {
                selector: selector.clone(),
                asn: spec.as_number,
            }
        }
    };
    let mut session = Table::new();
    if let Some(seconds) = spec.hold_time {
        if seconds != 0 && !(3..=65535).contains(&seconds) {
            return Err(Refusal::InvalidHoldTime(seconds));
        }
        session.insert("hold_time".into(), Value::Integer(i64::from(seconds)));
    }
    if let Some(families) = &spec.families {
        let mut names = Vec::new();
        for family in families {
            match family.as_str() {
                "ipv4" | "ipv6" => names.push(Value::String(family.clone())),
                other => return Err(Refusal::InvalidFamily(other.to_owned())),
            }
        }
        session.insert("families".into(), Value::Array(names));
    }
    for (key, value) in [
        ("ttl_security", spec.ttl_security),
        ("extended_next_hop", spec.extended_next_hop),
        ("route_reflector_client", spec.route_reflector_client),
    ] {
        if let Some(value) = value {
            session.insert(key.into(), Value::Boolean(value));
        }
    }
    if let Some(limit) = spec.max_prefixes {
        session.insert("max_prefixes".into(), Value::Integer(i64::from(limit)));
    }
    if let Some(bfd) = &spec.bfd {
        session.insert("bfd".into(), Value::Table(bfd_table(bfd)?));
    }
    let use_node_ip = match spec.source_address.as_deref() {
        None | Some("UseNodeIP") => true,
        Some("None") => false,
        Some(other) => return Err(Refusal::InvalidSourceAddress(other.to_owned())),
    };
    Ok(Peer {
        name: name.to_owned(),
        scope,
        target,
        session,
        password: spec.password.as_ref().map(|p| p.secret_key_ref.clone()),
        use_node_ip,
    })
}

/// `spec.bfd` as bgpd's `bfd` table (only the fields given; bgpd's defaults are
/// FRR's).
fn bfd_table(bfd: &Bfd) -> Result<Table, Refusal> {
    let mut table = Table::new();
    for (field, key, value) in [
        ("minTx", "min_tx", bfd.min_tx),
        ("minRx", "min_rx", bfd.min_rx),
    ] {
        if let Some(value) = value {
            if !(10..=60_000).contains(&value) {
                return Err(Refusal::InvalidBfd {
                    field,
                    value: value.to_string(),
                    expected: "10 to 60000 milliseconds",
                });
            }
            table.insert(key.into(), Value::Integer(i64::from(value)));
        }
    }
    if let Some(multiplier) = bfd.multiplier {
        if !(1..=255).contains(&multiplier) {
            return Err(Refusal::InvalidBfd {
                field: "multiplier",
                value: multiplier.to_string(),
                expected: "1 to 255",
            });
        }
        table.insert("multiplier".into(), Value::Integer(i64::from(multiplier)));
    }
    if let Some(on_down) = &bfd.on_down {
        let value = match on_down.as_str() {
            "Reset" => "reset",
            "Graceful" => "graceful",
            _ => {
                return Err(Refusal::InvalidBfd {
                    field: "onDown",
                    value: on_down.clone(),
                    expected: "Reset or Graceful",
                });
            }
        };
        table.insert("on_down".into(), Value::String(value.into()));
    }
    Ok(table)
}

/// What the cluster says about one node's BGP.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeSettings {
    pub asn: Option<u32>,
    pub cluster_id: Option<Ipv4Addr>,
    pub node_mesh: Option<bool>,
    pub listen_port: Option<u16>,
    /// Communities of the node's IPAM block routes.
    pub block_communities: Vec<u32>,
    /// `[[bgp.neighbor]]` tables, one per peer address, ordered by `BGPPeer` name.
    pub neighbors: Vec<Table>,
    /// Problems of this node with resources that are fine in themselves (its own
    /// annotations, a missing Secret, a peer address two `BGPPeer`s claim).
    pub problems: Vec<Problem>,
}

/// The settings of node `me` with peering `addresses`, from the checked
/// `BGPConfiguration` `default` (if any), the checked `BGPPeer`s (sorted by name),
/// every Node, and the Secrets' values (`secret`).
pub fn node_settings(
    me: &NodeFacts,
    addresses: &[IpAddr],
    configuration: Option<&Configuration>,
    peers: &[Peer],
    nodes: &[NodeFacts],
    secret: impl Fn(&SecretKeyRef) -> Option<String>,
) -> NodeSettings {
    let mut settings = NodeSettings {
        node_mesh: configuration.and_then(|c| c.node_mesh),
        listen_port: configuration.and_then(|c| c.listen_port),
        block_communities: configuration
            .map(|c| c.communities.clone())
            .unwrap_or_default(),
        ..NodeSettings::default()
    };
    let default_asn = configuration.and_then(|c| c.asn);
    match me.asn() {
        Ok(asn) => settings.asn = asn.or(default_asn),
        Err(refusal) => {
            settings.asn = default_asn;
            settings.problems.push(Problem {
                subject: Subject::Node(me.name.clone()),
                refusal,
            });
        }
    }
    match me.cluster_id() {
        Ok(id) => settings.cluster_id = id,
        Err(refusal) => settings.problems.push(Problem {
            subject: Subject::Node(me.name.clone()),
            refusal,
        }),
    }
    let mut taken: BTreeMap<IpAddr, String> = addresses
        .iter()
        .map(|a| (*a, "this node".to_owned()))
        .collect();
    for peer in peers {
        let applies = match &peer.scope {
            Scope::Every => true,
            Scope::Node(node) => *node == me.name,
            Scope::Selector(selector) => selector::matches(selector, &me.labels),
        };
        if !applies {
            continue;
        }
        let password = match &peer.password {
            None => None,
            Some(reference) => match secret(reference) {
                Some(password) => Some(password),
                None => {
                    settings.problems.push(Problem {
                        subject: Subject::BgpPeer(peer.name.clone()),
                        refusal: Refusal::SecretKeyNotFound {
                            secret: reference.name.clone(),
                            key: reference.key.clone(),
                        },
                    });
                    continue;
                }
            },
        };
        for (address, asn, description) in
            targets(peer, me, nodes, default_asn, &mut settings.problems)
        {
            if let Some(owner) = taken.get(&address) {
                if owner != "this node" {
                    settings.problems.push(Problem {
                        subject: Subject::BgpPeer(peer.name.clone()),
                        refusal: Refusal::AddressAlreadyPeered {
                            address,
                            owner: owner.clone(),
                        },
                    });
                }
                continue;
            }
            taken.insert(address, format!("BGPPeer {}", peer.name));
            let mut table = peer.session.clone();
            table.insert("address".into(), Value::String(address.to_string()));
            table.insert("remote_asn".into(), Value::Integer(i64::from(asn)));
            table.insert("description".into(), Value::String(description));
            if let Some(password) = &password {
                table.insert("password".into(), Value::String(password.clone()));
            }
            if peer.use_node_ip
                && let Some(local) = addresses.iter().find(|a| a.is_ipv4() == address.is_ipv4())
            {
                table.insert("local_address".into(), Value::String(local.to_string()));
            }
            settings.neighbors.push(table);
        }
    }
    settings
}

/// The (address, AS, description) sessions of `peer` for node `me`.
fn targets(
    peer: &Peer,
    me: &NodeFacts,
    nodes: &[NodeFacts],
    default_asn: Option<u32>,
    problems: &mut Vec<Problem>,
) -> Vec<(IpAddr, u32, String)> {
    match &peer.target {
        Target::Address { address, asn } => {
            vec![(*address, *asn, format!("BGPPeer {}", peer.name))]
        }
        Target::Nodes { selector, asn } => {
            let mut out = Vec::new();
            let mut seen = BTreeSet::new();
            for node in nodes
                .iter()
                .filter(|node| node.name != me.name && seen.insert(&node.name))
            {
                if !selector::matches(selector, &node.labels) {
                    continue;
                }
                let node_asn = match (asn, node.asn()) {
                    (Some(asn), _) => Some(*asn),
                    (None, Ok(own)) => own.or(default_asn),
                    (None, Err(refusal)) => {
                        problems.push(Problem {
                            subject: Subject::BgpPeer(peer.name.clone()),
                            refusal,
                        });
                        continue;
                    }
                };
                let Some(node_asn) = node_asn else {
                    problems.push(Problem {
                        subject: Subject::BgpPeer(peer.name.clone()),
                        refusal: Refusal::PeerNodeWithoutAsNumber(node.name.clone()),
                    });
                    continue;
                };
                for address in node.addresses() {
                    out.push((
                        address,
                        node_asn,
                        format!("BGPPeer {} node {}", peer.name, node.name),
                    ));
                }
            }
            out
        }
    }
}
