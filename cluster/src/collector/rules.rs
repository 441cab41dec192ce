//! What the collector releases, decided from one IPAM snapshot and the cluster's Node
//! names: a pure function, so every rule is checked by table tests.
//!
//! - A node that IPAM knows (an affinity, a block, an address in use, a registry
//!   record) and the cluster has no Node for is released at once, whole
//!   ([`ipam::Ipam::release_node`]: its addresses, blocks and record).
//! - A live node's block with no address in use is released when it was empty at the
//!   previous pass too (two consecutive observations), except that a live node keeps
//!   one block per family: when every block of a family would go, the first by CIDR
//!   stays.

use std::collections::{BTreeMap, BTreeSet};

use ipam::Snapshot;
use ipnet::IpNet;

/// One release the collector makes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Release {
    /// Everything of a node the cluster no longer has.
    Node(String),
    /// One empty block of a live node.
    EmptyBlock { node: String, cidr: IpNet },
}

/// A pass's decisions, and the empty blocks it saw (the next pass's `seen_empty`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub releases: Vec<Release>,
    pub empty: BTreeSet<IpNet>,
}

/// Decides one pass. `registered` are the nodes of IPAM's registry, `live` the
/// cluster's Node names, `seen_empty` the empty blocks of the previous pass.
pub fn decide(
    snapshot: &Snapshot,
    registered: &BTreeSet<String>,
    live: &BTreeSet<String>,
    seen_empty: &BTreeSet<IpNet>,
) -> Decision {
    let mut known: BTreeSet<&str> = registered.iter().map(String::as_str).collect();
    known.extend(snapshot.affinities.iter().map(|a| a.value.node.as_str()));
    for block in &snapshot.blocks {
        known.extend(block.value.affinity.as_deref());
        known.extend(
            block
                .value
                .allocations
                .values()
                .filter_map(|allocation| block.value.user_of(allocation)),
        );
    }
    let mut releases: Vec<Release> = known
        .into_iter()
        .filter(|node| !live.contains(*node))
        .map(|node| Release::Node(node.to_owned()))
        .collect();

    // A live node's blocks by family (IPv4 first), each with whether it is empty.
    let mut blocks: BTreeMap<(&str, bool), Vec<(IpNet, bool)>> = BTreeMap::new();
    for block in &snapshot.blocks {
        let Some(node) = block.value.affinity.as_deref() else {
            continue;
        };
        if !live.contains(node) {
            continue;
        }
        let family = matches!(block.value.cidr, IpNet::V6(_));
        blocks
            .entry((node, family))
            .or_default()
            .push((block.value.cidr, block.value.is_empty()));
    }
    let mut empty = BTreeSet::new();
    for ((node, _), mut family_blocks) in blocks {
        family_blocks.sort();
        empty.extend(
            family_blocks
                .iter()
                .filter(|(_, e)| *e)
                .map(|(cidr, _)| *cidr),
        );
        let mut going: Vec<IpNet> = family_blocks
            .iter()
            .filter(|(cidr, e)| *e && seen_empty.contains(cidr))
            .map(|(cidr, _)| *cidr)
            .collect();
        if going.len() == family_blocks.len() {
            // Every block of the family would go: the node keeps its first.
            going.remove(0);
        }
        releases.extend(going.into_iter().map(|cidr| Release::EmptyBlock {
            node: node.to_owned(),
            cidr,
        }));
    }
    Decision { releases, empty }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ipam::Stored;
    use ipam::block::Block;

    use super::*;

    fn block(cidr: &str, node: Option<&str>, used: &[(u32, &str, Option<&str>)]) -> Stored<Block> {
        let mut block = Block::new(cidr.parse().unwrap(), node.map(str::to_owned));
        for (ordinal, handle, borrower) in used {
            block.allocate_ordinal(*ordinal, handle, *borrower).unwrap();
        }
        Stored {
            key: format!("/blocks/{cidr}"),
            revision: 1,
            value: block,
        }
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn nets(list: &[&str]) -> BTreeSet<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn empty_block(node: &str, cidr: &str) -> Release {
        Release::EmptyBlock {
            node: node.to_owned(),
            cidr: cidr.parse().unwrap(),
        }
    }

    #[test]
    fn a_node_without_its_node_object_is_released_whole() {
        let snapshot = Snapshot {
            blocks: vec![
                block("10.244.0.0/26", Some("a"), &[(1, "pod-a", None)]),
                block("10.244.0.64/26", Some("b"), &[(1, "pod-b", None)]),
                // c only borrows an address in a's block; d is only registered.
                block("10.244.0.128/26", Some("a"), &[(2, "pod-c", Some("c"))]),
            ],
            ..Snapshot::default()
        };
        let decision = decide(
            &snapshot,
            &names(&["a", "b", "d"]),
            &names(&["a"]),
            &BTreeSet::new(),
        );
        assert_eq!(
            decision.releases,
            vec![
                Release::Node("b".into()),
                Release::Node("c".into()),
                Release::Node("d".into())
            ]
        );
    }

    #[test]
    fn empty_blocks_go_on_the_second_sight_and_one_per_family_stays() {
        let snapshot = Snapshot {
            blocks: vec![
                block("10.244.0.0/26", Some("a"), &[(1, "pod", None)]),
                block("10.244.0.64/26", Some("a"), &[]),
                block("10.244.0.128/26", Some("a"), &[]),
                // b's only IPv4 blocks are both empty: one stays.
                block("10.244.1.0/26", Some("b"), &[]),
                block("10.244.1.64/26", Some("b"), &[]),
                // b's only IPv6 block is empty: it stays.
                block("fd00:10:244::/122", Some("b"), &[]),
                // A block without an owner is no live node's.
                block("10.244.2.0/26", None, &[(3, "pod", Some("a"))]),
            ],
            ..Snapshot::default()
        };
        let live = names(&["a", "b"]);
        let first = decide(&snapshot, &live, &live, &BTreeSet::new());
        assert_eq!(first.releases, vec![]);
        assert_eq!(
            first.empty,
            nets(&[
                "10.244.0.64/26",
                "10.244.0.128/26",
                "10.244.1.0/26",
                "10.244.1.64/26",
                "fd00:10:244::/122"
            ])
        );
        let second = decide(&snapshot, &live, &live, &first.empty);
        assert_eq!(
            second.releases,
            vec![
                empty_block("a", "10.244.0.64/26"),
                empty_block("a", "10.244.0.128/26"),
                empty_block("b", "10.244.1.64/26"),
            ]
        );
        // Seen empty once, then in use: it stays.
        let only_one = decide(&snapshot, &live, &live, &nets(&["10.244.0.64/26"]));
        assert_eq!(only_one.releases, vec![empty_block("a", "10.244.0.64/26")]);
        let used_since = decide(&snapshot, &live, &live, &nets(&["10.244.0.0/26"]));
        assert_eq!(used_since.releases, vec![]);
    }
}
