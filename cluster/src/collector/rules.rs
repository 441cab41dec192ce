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
//! - A handle whose record names a pod that the list of Pods lacks (by namespace and
//!   name, and by uid when the record has one: a pod made again under the same name
//!   is another pod) is suspected once a GET of that Pod confirms it gone
//!   ([`decide_pods`]); when it has been suspected for the grace period, a second GET
//!   re-checks and the whole handle is released. The Pod showing up again cancels it;
//!   a handle without a pod (Wren's own addresses, records from before) is never
//!   released by this rule.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ipam::{HandleRecord, PodReference, Snapshot, Stored};
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

/// A handle and the pod its record names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodHandle {
    pub handle: String,
    pub pod: PodReference,
}

/// The Pods the API server listed: their uid by namespace and name.
pub type ListedPods = BTreeMap<(String, String), String>;

/// What the pod-gone rule does in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodDecision {
    /// Pods the list lacks that are not suspected yet: a GET of each confirms it is
    /// gone, and its grace starts then.
    pub confirm: Vec<PodHandle>,
    /// Suspects whose grace has run out: a GET re-checks each, then its handle goes.
    pub recheck: Vec<PodHandle>,
    /// Every suspect that still stands (the recheck ones too), since when: the
    /// collector's memory for the next pass. A suspect whose Pod is listed again, or
    /// whose handle is gone, is dropped.
    pub suspects: BTreeMap<PodHandle, Instant>,
}

/// Whether `pod` is among the listed Pods (with the recorded uid, when there is one).
pub fn is_listed(pod: &PodReference, listed: &ListedPods) -> bool {
    listed
        .get(&(pod.namespace.clone(), pod.name.clone()))
        .is_some_and(|uid| pod.uid.as_ref().is_none_or(|recorded| recorded == uid))
}

/// Decides the pod-gone rule for one pass: `handles` of one IPAM snapshot, the Pods
/// `listed` after that snapshot was read (so every handle's pod was made before the
/// list), the `suspects` of the last pass, and the time now.
pub fn decide_pods(
    handles: &[Stored<HandleRecord>],
    listed: &ListedPods,
    suspects: &BTreeMap<PodHandle, Instant>,
    now: Instant,
    grace: Duration,
) -> PodDecision {
    let mut decision = PodDecision::default();
    for stored in handles {
        let record = &stored.value;
        let Some(pod) = &record.pod else {
            continue;
        };
        // A record naming no pod Kubernetes could have is no pod's.
        if pod.validate().is_err() || is_listed(pod, listed) {
            continue;
        }
        let suspect = PodHandle {
            handle: record.handle.clone(),
            pod: pod.clone(),
        };
        match suspects.get(&suspect) {
            Some(since) => {
                if now.saturating_duration_since(*since) >= grace {
                    decision.recheck.push(suspect.clone());
                }
                decision.suspects.insert(suspect, *since);
            }
            None => decision.confirm.push(suspect),
        }
    }
    decision
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

    fn handle(name: &str, pod: Option<(&str, &str, Option<&str>)>) -> Stored<HandleRecord> {
        let mut record = HandleRecord::new(name);
        record.pod = pod.map(|(namespace, name, uid)| PodReference {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.map(str::to_owned),
        });
        Stored {
            key: format!("/handles/{name}"),
            revision: 1,
            value: record,
        }
    }

    fn listed(pods: &[(&str, &str, &str)]) -> ListedPods {
        pods.iter()
            .map(|(namespace, name, uid)| {
                (
                    ((*namespace).to_owned(), (*name).to_owned()),
                    (*uid).to_owned(),
                )
            })
            .collect()
    }

    fn handles_of(list: &[PodHandle]) -> Vec<&str> {
        list.iter().map(|p| p.handle.as_str()).collect()
    }

    #[test]
    fn a_gone_pod_is_confirmed_then_rechecked_after_the_grace() {
        let grace = Duration::from_secs(300);
        let start = Instant::now();
        let handles = vec![
            handle("live", Some(("default", "web", Some("u1")))),
            handle("gone", Some(("default", "job", Some("u2")))),
            // Made again under the same name: another pod.
            handle("renamed", Some(("kube-system", "dns", Some("old")))),
            // No uid recorded: the name decides.
            handle("by-name", Some(("default", "db", None))),
            // No pod, or one Kubernetes could not have: never this rule's.
            handle("wren-gateway.node-a.ipv4", None),
            handle("bad", Some(("Default", "x/../y", None))),
        ];
        let pods = listed(&[
            ("default", "web", "u1"),
            ("kube-system", "dns", "new"),
            ("default", "db", "u9"),
        ]);
        let first = decide_pods(&handles, &pods, &BTreeMap::new(), start, grace);
        assert_eq!(handles_of(&first.confirm), vec!["gone", "renamed"]);
        assert!(first.recheck.is_empty() && first.suspects.is_empty());

        // The pass confirmed both by a GET: they are suspects from `start`.
        let suspects: BTreeMap<PodHandle, Instant> =
            first.confirm.iter().map(|p| (p.clone(), start)).collect();
        let early = decide_pods(&handles, &pods, &suspects, start + grace / 2, grace);
        assert!(early.confirm.is_empty() && early.recheck.is_empty());
        assert_eq!(early.suspects, suspects);
        let due = decide_pods(&handles, &pods, &suspects, start + grace, grace);
        assert_eq!(handles_of(&due.recheck), vec!["gone", "renamed"]);
        assert_eq!(due.suspects, suspects);
    }

    #[test]
    fn a_pod_back_or_a_handle_gone_cancels_the_suspicion() {
        let grace = Duration::from_secs(5);
        let start = Instant::now();
        let handles = [
            handle("back", Some(("default", "web", None))),
            handle("released", Some(("default", "job", Some("u2")))),
        ];
        let suspects: BTreeMap<PodHandle, Instant> = handles
            .iter()
            .map(|h| {
                let pod = h.value.pod.clone().unwrap();
                let suspect = PodHandle {
                    handle: h.value.handle.clone(),
                    pod,
                };
                (suspect, start)
            })
            .collect();
        // web is listed again; the handle of job was released by a CNI DEL.
        let pods = listed(&[("default", "web", "u7")]);
        let later = decide_pods(&handles[..1], &pods, &suspects, start + grace * 2, grace);
        assert_eq!(later, PodDecision::default());
    }
}
