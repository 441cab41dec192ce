//! The table a snapshot asks for, the table as listed, and the commands between
//! them. Pure: no I/O.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use nftables::expr::{
    Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix, Range,
};
use nftables::schema::{
    Chain, Element, NfCmd, NfListObject, Rule, Set, SetFlag, SetType, SetTypeValue, Table,
};
use nftables::stmt::{Match, NAT, NATFlag, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::{CHAIN, NatSettings, TABLE};
use crate::snapshot::Snapshot;

/// The priority of `srcnat` (NF_IP_PRI_NAT_SRC).
const SRCNAT: i32 = 100;
/// The version of the rules' shape, in their comments: a change to how a rule is
/// built changes it, so tables of older bgpd versions are rebuilt.
const SHAPE: u32 = 1;

/// One set of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetSpec {
    pub name: &'static str,
    pub ipv6: bool,
    /// Prefixes (`flags interval`) or single addresses.
    pub interval: bool,
    pub elements: BTreeSet<IpNet>,
}

/// One masquerade rule: its family and, for UDP, the source ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub ipv6: bool,
    pub udp_ports: Option<(u16, u16)>,
}

impl RuleSpec {
    /// The comment naming the rule's shape.
    pub fn comment(&self) -> String {
        let family = if self.ipv6 { "ipv6" } else { "ipv4" };
        match self.udp_ports {
            Some((first, last)) => {
                format!("wren nat_outgoing {family} udp ports {first}-{last} (shape {SHAPE})")
            }
            None => format!("wren nat_outgoing {family} (shape {SHAPE})"),
        }
    }
}

/// The table a snapshot asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub sets: Vec<SetSpec>,
    pub rules: Vec<RuleSpec>,
}

/// The table `inet wren` as `nft -j list table` shows it, reduced to what the plan
/// compares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    /// The table's handle (a table deleted and made again gets a new one).
    pub handle: Option<u32>,
    /// Set name -> (type, interval flag, elements; `None` when one is not a plain
    /// address or prefix).
    pub sets: BTreeMap<String, (SetTypeValue<'static>, bool, Option<BTreeSet<IpNet>>)>,
    /// Chains: (name, type, hook, priority, policy).
    pub chains: Vec<ListedChain>,
    /// Rules in order: (chain, comment).
    pub rules: Vec<(String, Option<String>)>,
    /// Anything else (maps, counters, flowtables...): the table is not ours as made.
    pub other: usize,
}

/// A chain as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedChain {
    pub name: String,
    pub chain_type: Option<NfChainType>,
    pub hook: Option<NfHook>,
    pub priority: Option<i32>,
    pub policy: Option<NfChainPolicy>,
}

/// The table `snapshot` asks for: `None` when no pool has `nat_outgoing`.
pub fn desired(snapshot: &Snapshot, settings: &NatSettings) -> Option<Desired> {
    if !snapshot.needs_nat() {
        return None;
    }
    let mut sets = Vec::new();
    for ipv6 in [false, true] {
        let family = |net: &IpNet| matches!(net, IpNet::V6(_)) == ipv6;
        let pools = snapshot.pools.iter().map(|p| p.cidr.trunc()).filter(family);
        let nat = snapshot
            .pools
            .iter()
            .filter(|p| p.nat_outgoing)
            .map(|p| p.cidr.trunc())
            .filter(family);
        let nodes = snapshot
            .nodes
            .iter()
            .flat_map(|n| n.addresses.iter())
            .map(|a| IpNet::from(*a))
            .filter(family);
        let suffix = if ipv6 { 6 } else { 4 };
        sets.push(set_spec(set_name("pools", suffix), ipv6, true, pools));
        sets.push(set_spec(set_name("nat_outgoing", suffix), ipv6, true, nat));
        sets.push(set_spec(set_name("nodes", suffix), ipv6, false, nodes));
    }
    let mut rules = Vec::new();
    for ipv6 in [false, true] {
        // The port of the family's VXLAN device, else the settings' port.
        let avoided_port = snapshot
            .vxlan_pool(!ipv6)
            .map_or(settings.avoided_port, |pool| pool.vxlan_port);
        rules.push(RuleSpec {
            ipv6,
            udp_ports: Some(NatSettings { avoided_port }.udp_ports()),
        });
        rules.push(RuleSpec {
            ipv6,
            udp_ports: None,
        });
    }
    Some(Desired { sets, rules })
}

fn set_spec(
    name: &'static str,
    ipv6: bool,
    interval: bool,
    elements: impl Iterator<Item = IpNet>,
) -> SetSpec {
    SetSpec {
        name,
        ipv6,
        interval,
        elements: elements.collect(),
    }
}

fn set_name(what: &str, suffix: u8) -> &'static str {
    match (what, suffix) {
        ("pools", 4) => "pools_ipv4",
        ("pools", _) => "pools_ipv6",
        ("nat_outgoing", 4) => "nat_outgoing_ipv4",
        ("nat_outgoing", _) => "nat_outgoing_ipv6",
        (_, 4) => "nodes_ipv4",
        _ => "nodes_ipv6",
    }
}

impl Listed {
    /// The table from what `nft -j list table inet wren` printed. Rules are read
    /// for their chain and comment only (their expressions are ours, named by the
    /// comment); tables, sets and chains with the nftables crate's types.
    pub fn from_json(text: &str) -> Result<Listed, String> {
        let document: serde_json::Value =
            serde_json::from_str(text).map_err(|error| error.to_string())?;
        let objects = document
            .get("nftables")
            .and_then(|objects| objects.as_array())
            .ok_or("no \"nftables\" array")?;
        let mut listed = Listed::default();
        for object in objects {
            let Some((kind, value)) = object.as_object().and_then(|o| o.iter().next()) else {
                listed.other += 1;
                continue;
            };
            let typed = |kind: &str| -> Result<NfListObject<'static>, String> {
                let mut wrapped = serde_json::Map::new();
                wrapped.insert(kind.to_owned(), value.clone());
                serde_json::from_value(serde_json::Value::Object(wrapped))
                    .map_err(|error| format!("{kind}: {error}"))
            };
            match kind.as_str() {
                "metainfo" => {}
                "rule" => listed.rules.push((
                    value["chain"].as_str().unwrap_or_default().to_owned(),
                    value["comment"].as_str().map(str::to_owned),
                )),
                "table" | "set" | "chain" => listed.add(&typed(kind)?),
                _ => listed.other += 1,
            }
        }
        Ok(listed)
    }

    fn add(&mut self, object: &NfListObject<'_>) {
        match object {
            NfListObject::Table(table) => self.handle = table.handle,
            NfListObject::Set(set) => {
                let interval = set
                    .flags
                    .as_ref()
                    .is_some_and(|flags| flags.contains(&SetFlag::Interval));
                let extra_flags = set
                    .flags
                    .as_ref()
                    .is_some_and(|flags| flags.iter().any(|f| *f != SetFlag::Interval));
                let elements = if extra_flags {
                    None
                } else {
                    set.elem
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .map(parse_element)
                        .collect::<Option<BTreeSet<IpNet>>>()
                };
                self.sets.insert(
                    set.name.to_string(),
                    (owned_type(&set.set_type), interval, elements),
                );
            }
            NfListObject::Chain(chain) => self.chains.push(ListedChain {
                name: chain.name.to_string(),
                chain_type: chain._type,
                hook: chain.hook,
                priority: chain.prio,
                policy: chain.policy,
            }),
            _ => self.other += 1,
        }
    }

    /// Whether the table has the sets, chain and rules of `desired` (contents
    /// aside).
    fn same_shape(&self, desired: &Desired) -> bool {
        let sets = self.sets.len() == desired.sets.len()
            && desired.sets.iter().all(|spec| {
                self.sets
                    .get(spec.name)
                    .is_some_and(|(kind, interval, elements)| {
                        *kind == set_type(spec.ipv6)
                            && *interval == spec.interval
                            && elements.is_some()
                    })
            });
        let chain = self.chains.len() == 1
            && self.chains[0]
                == ListedChain {
                    name: CHAIN.to_owned(),
                    chain_type: Some(NfChainType::NAT),
                    hook: Some(NfHook::Postrouting),
                    priority: Some(SRCNAT),
                    policy: Some(NfChainPolicy::Accept),
                };
        let rules = self.rules.len() == desired.rules.len()
            && self
                .rules
                .iter()
                .zip(&desired.rules)
                .all(|((chain, comment), spec)| {
                    chain == CHAIN && comment.as_deref() == Some(spec.comment().as_str())
                });
        sets && chain && rules && self.other == 0
    }
}

/// What a plan does to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing: the table is as wanted (or absent and not wanted).
    None,
    /// The table is made.
    Created,
    /// Set elements are added and deleted; the table, chain and rules stay.
    Elements { added: usize, deleted: usize },
    /// The table had another shape: deleted and made again in the same transaction.
    Rebuilt,
    /// No pool needs the table any more: it is deleted.
    Removed,
}

/// The commands that turn one table into another, meant to run as one
/// transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub commands: Vec<NfCmd<'static>>,
    pub change: Change,
}

/// The plan that turns `listed` (`None`: no table) into `desired` (`None`: no
/// table). Its commands are empty when nothing is to change.
pub fn plan(desired: Option<&Desired>, listed: Option<&Listed>) -> Plan {
    match (desired, listed) {
        (None, None) => Plan {
            commands: Vec::new(),
            change: Change::None,
        },
        (None, Some(_)) => Plan {
            commands: vec![NfCmd::Delete(NfListObject::Table(table()))],
            change: Change::Removed,
        },
        (Some(desired), None) => Plan {
            commands: create(desired),
            change: Change::Created,
        },
        (Some(desired), Some(listed)) if listed.same_shape(desired) => {
            element_changes(desired, listed)
        }
        (Some(desired), Some(_)) => {
            let mut commands = vec![NfCmd::Delete(NfListObject::Table(table()))];
            commands.extend(create(desired));
            Plan {
                commands,
                change: Change::Rebuilt,
            }
        }
    }
}

/// Deletions first (an interval replaced by a larger one must go before the other
/// comes in), then additions.
fn element_changes(desired: &Desired, listed: &Listed) -> Plan {
    let mut deletions = Vec::new();
    let mut additions = Vec::new();
    let (mut added, mut deleted) = (0, 0);
    for spec in &desired.sets {
        let Some((_, _, Some(present))) = listed.sets.get(spec.name) else {
            continue;
        };
        let gone: Vec<IpNet> = present.difference(&spec.elements).copied().collect();
        let new: Vec<IpNet> = spec.elements.difference(present).copied().collect();
        added += new.len();
        deleted += gone.len();
        if !gone.is_empty() {
            deletions.push(NfCmd::Delete(NfListObject::Element(element(spec, &gone))));
        }
        if !new.is_empty() {
            additions.push(NfCmd::Add(NfListObject::Element(element(spec, &new))));
        }
    }
    deletions.extend(additions);
    let change = if deletions.is_empty() {
        Change::None
    } else {
        Change::Elements { added, deleted }
    };
    Plan {
        commands: deletions,
        change,
    }
}

fn create(desired: &Desired) -> Vec<NfCmd<'static>> {
    let mut commands = vec![NfCmd::Add(NfListObject::Table(table()))];
    for spec in &desired.sets {
        let elements: Vec<IpNet> = spec.elements.iter().copied().collect();
        commands.push(NfCmd::Add(NfListObject::Set(Box::new(Set {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: spec.name.into(),
            handle: None,
            set_type: set_type(spec.ipv6),
            policy: None,
            flags: spec.interval.then(|| HashSet::from([SetFlag::Interval])),
            elem: (!elements.is_empty()).then(|| to_expressions(spec, &elements).into()),
            timeout: None,
            gc_interval: None,
            size: None,
            comment: None,
        }))));
    }
    commands.push(NfCmd::Add(NfListObject::Chain(Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: CHAIN.into(),
        newname: None,
        handle: None,
        _type: Some(NfChainType::NAT),
        hook: Some(NfHook::Postrouting),
        prio: Some(SRCNAT),
        dev: None,
        policy: Some(NfChainPolicy::Accept),
    })));
    for spec in &desired.rules {
        commands.push(NfCmd::Add(NfListObject::Rule(rule(spec))));
    }
    commands
}

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }
}

fn set_type(ipv6: bool) -> SetTypeValue<'static> {
    SetTypeValue::Single(if ipv6 {
        SetType::Ipv6Addr
    } else {
        SetType::Ipv4Addr
    })
}

fn owned_type(kind: &SetTypeValue<'_>) -> SetTypeValue<'static> {
    match kind {
        SetTypeValue::Single(single) => SetTypeValue::Single(*single),
        SetTypeValue::Concatenated(many) => SetTypeValue::Concatenated(Cow::Owned(many.to_vec())),
    }
}

fn element(spec: &SetSpec, elements: &[IpNet]) -> Element<'static> {
    Element {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: spec.name.into(),
        elem: to_expressions(spec, elements).into(),
    }
}

/// A prefix in an interval set, an address otherwise.
fn to_expressions(spec: &SetSpec, elements: &[IpNet]) -> Vec<Expression<'static>> {
    elements
        .iter()
        .map(|net| {
            let address = Expression::String(net.addr().to_string().into());
            if spec.interval && net.prefix_len() < net.max_prefix_len() {
                Expression::Named(NamedExpression::Prefix(Prefix {
                    addr: Box::new(address),
                    len: u32::from(net.prefix_len()),
                }))
            } else {
                address
            }
        })
        .collect()
}

/// An address or a prefix as listed; `None` for anything else (a range).
fn parse_element(expression: &Expression<'_>) -> Option<IpNet> {
    match expression {
        Expression::String(text) => text.parse::<IpAddr>().ok().map(IpNet::from),
        Expression::Named(NamedExpression::Prefix(prefix)) => match prefix.addr.as_ref() {
            Expression::String(text) => {
                let address = text.parse::<IpAddr>().ok()?;
                IpNet::new(address, u8::try_from(prefix.len).ok()?).ok()
            }
            _ => None,
        },
        _ => None,
    }
}

/// `ip saddr @nat_outgoing_ipv4 ip daddr != @pools_ipv4 ip daddr != @nodes_ipv4
/// [meta l4proto udp] masquerade [to :FIRST-LAST] fully-random`.
fn rule(spec: &RuleSpec) -> Rule<'static> {
    let (protocol, suffix) = if spec.ipv6 { ("ip6", 6) } else { ("ip", 4) };
    let address = |field: &'static str| {
        Expression::Named(NamedExpression::Payload(Payload::PayloadField(
            PayloadField {
                protocol: protocol.into(),
                field: field.into(),
            },
        )))
    };
    let set = |what: &str| Expression::String(format!("@{}", set_name(what, suffix)).into());
    let matching = |left, op, right| Statement::Match(Match { left, right, op });
    let mut statements = vec![
        matching(address("saddr"), Operator::EQ, set("nat_outgoing")),
        matching(address("daddr"), Operator::NEQ, set("pools")),
        matching(address("daddr"), Operator::NEQ, set("nodes")),
    ];
    let mut port = None;
    if let Some((first, last)) = spec.udp_ports {
        statements.push(matching(
            Expression::Named(NamedExpression::Meta(Meta {
                key: MetaKey::L4proto,
            })),
            Operator::EQ,
            Expression::String("udp".into()),
        ));
        port = Some(Expression::Range(Box::new(Range {
            range: [
                Expression::Number(u32::from(first)),
                Expression::Number(u32::from(last)),
            ],
        })));
    }
    statements.push(Statement::Masquerade(Some(NAT {
        addr: None,
        family: None,
        port,
        flags: Some(HashSet::from([NATFlag::FullyRandom])),
    })));
    Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: CHAIN.into(),
        expr: statements.into(),
        handle: None,
        index: None,
        comment: Some(spec.comment().into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::snapshot::{Node, Pool};

    fn snapshot(nat: bool) -> Snapshot {
        Snapshot {
            pools: vec![
                Pool {
                    cidr: "10.244.0.0/16".parse().unwrap(),
                    nat_outgoing: nat,
                    vxlan_mode: Default::default(),
                    vxlan_vni: 4096,
                    vxlan_port: 4789,
                },
                Pool {
                    cidr: "fd00:244::/48".parse().unwrap(),
                    nat_outgoing: false,
                    vxlan_mode: Default::default(),
                    vxlan_vni: 4096,
                    vxlan_port: 4789,
                },
            ],
            nodes: vec![Node {
                name: "a".into(),
                addresses: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
                vteps: vec![],
            }],
            blocks: vec![],
            borrowed: vec![],
        }
    }

    #[test]
    fn udp_ports_leave_out_the_avoided_port() {
        let ports = |avoided_port| NatSettings { avoided_port }.udp_ports();
        assert_eq!(ports(4789), (4790, 65535));
        assert_eq!(ports(8472), (8473, 65535));
        assert_eq!(ports(60000), (1024, 59999));
        assert_eq!(ports(80), (1024, 65535));
        assert_eq!(ports(65535), (1024, 65534));
    }

    #[test]
    fn udp_masquerade_leaves_out_the_vxlan_port_of_each_family() {
        let ports = |snapshot: &Snapshot| -> Vec<(bool, (u16, u16))> {
            desired(snapshot, &NatSettings::default())
                .unwrap()
                .rules
                .iter()
                .filter_map(|rule| rule.udp_ports.map(|ports| (rule.ipv6, ports)))
                .collect()
        };
        let mut cluster = snapshot(true);
        assert_eq!(
            ports(&cluster),
            [(false, (4790, 65535)), (true, (4790, 65535))]
        );
        cluster.pools[0].vxlan_mode = crate::snapshot::VxlanMode::Always;
        cluster.pools[0].vxlan_port = 8472;
        // A pool that does not encapsulate does not count.
        cluster.pools[1].vxlan_port = 60000;
        assert_eq!(
            ports(&cluster),
            [(false, (8473, 65535)), (true, (4790, 65535))]
        );
        cluster.pools[1].vxlan_mode = crate::snapshot::VxlanMode::CrossSubnet;
        assert_eq!(
            ports(&cluster),
            [(false, (8473, 65535)), (true, (1024, 59999))]
        );
    }

    #[test]
    fn no_nat_outgoing_pool_no_table() {
        assert_eq!(desired(&snapshot(false), &NatSettings::default()), None);
        assert_eq!(plan(None, None).change, Change::None);
        assert!(plan(None, None).commands.is_empty());
        let removed = plan(None, Some(&Listed::default()));
        assert_eq!(removed.change, Change::Removed);
        assert_eq!(removed.commands.len(), 1);
    }

    #[test]
    fn sets_split_by_family_and_purpose() {
        let wanted = desired(&snapshot(true), &NatSettings::default()).unwrap();
        let elements = |name: &str| {
            let set = wanted.sets.iter().find(|s| s.name == name).unwrap();
            set.elements
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(elements("pools_ipv4"), ["10.244.0.0/16"]);
        assert_eq!(elements("nat_outgoing_ipv4"), ["10.244.0.0/16"]);
        assert_eq!(elements("nodes_ipv4"), ["192.0.2.1/32"]);
        assert_eq!(elements("pools_ipv6"), ["fd00:244::/48"]);
        assert!(elements("nat_outgoing_ipv6").is_empty());
        assert_eq!(elements("nodes_ipv6"), ["2001:db8::1/128"]);
        assert_eq!(
            wanted.rules[0].comment(),
            "wren nat_outgoing ipv4 udp ports 4790-65535 (shape 1)"
        );
        let created = plan(Some(&wanted), None);
        assert_eq!(created.change, Change::Created);
        // Table, six sets, the chain, four rules.
        assert_eq!(created.commands.len(), 12);
    }

    #[test]
    fn a_listed_table_with_another_shape_is_rebuilt() {
        let wanted = desired(&snapshot(true), &NatSettings::default()).unwrap();
        let listed = Listed::from_json(r#"{"nftables":[{"metainfo":{"version":"1.0.6"}},{"table":{"family":"inet","name":"wren","handle":7}}]}"#).unwrap();
        assert_eq!(listed.handle, Some(7));
        let rebuilt = plan(Some(&wanted), Some(&listed));
        assert_eq!(rebuilt.change, Change::Rebuilt);
        assert_eq!(rebuilt.commands.len(), 13);
        assert!(Listed::from_json("[]").is_err());
        assert!(Listed::from_json("not json").is_err());
    }
}
