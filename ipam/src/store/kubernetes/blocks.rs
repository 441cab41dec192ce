//! The labels of an `IPAMBlock` object, so that a node's blocks are listed and
//! watched by label instead of reading every block: `wren.io/node` names the block's
//! owner (its `affinity`), and `borrower.wren.io/NODE` (empty value) each node that
//! borrowed one of its addresses. Node names go through [`label_value`] (a long or
//! odd name is shortened with a hash; the store still filters what it lists by the
//! spec, so two names sharing a label value cannot mix). The annotation
//! `wren.io/in-use` counts its allocations, for `kubectl get ipamblocks`.

use std::collections::{BTreeMap, HashMap};

use kube::api::ListParams;
use serde_json::Value;

use super::names::label_value;
use super::{Freshness, Kind, KubernetesStore, NODE_LABEL};
use crate::block::Block;
use crate::store::{Entry, StoreError, block_names_node};

/// The prefix of a borrower's label key.
const BORROWER_LABEL_PREFIX: &str = "borrower.wren.io/";

/// The labels of a block whose spec is `spec`.
pub(super) fn labels(spec: &Value) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if let Some(owner) = spec.get("affinity").and_then(Value::as_str) {
        labels.insert(NODE_LABEL.to_string(), label_value(owner));
    }
    let allocations = spec.get("allocations").and_then(Value::as_object);
    for allocation in allocations.into_iter().flat_map(|a| a.values()) {
        if let Some(borrower) = allocation.get("borrower").and_then(Value::as_str) {
            labels.insert(
                format!("{BORROWER_LABEL_PREFIX}{}", label_value(borrower)),
                String::new(),
            );
        }
    }
    labels
}

/// The annotation counting a block's allocations (`kubectl get ipamblocks`' IN USE).
const IN_USE_ANNOTATION: &str = "wren.io/in-use";

/// The annotations of a block whose spec is `spec`: its allocations' count.
pub(super) fn annotations(spec: &Value) -> BTreeMap<String, String> {
    let in_use = spec
        .get("allocations")
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len);
    BTreeMap::from([(IN_USE_ANNOTATION.to_string(), in_use.to_string())])
}

/// The label selectors of the blocks that name `node`: as owner, as borrower.
pub(super) fn selectors(node: &str) -> [String; 2] {
    let value = label_value(node);
    [
        format!("{NODE_LABEL}={value}"),
        format!("{BORROWER_LABEL_PREFIX}{value}"),
    ]
}

/// What of a block the VXLAN overlay follows: its owner, and the addresses another
/// node uses (ordinal -> that node, as `Block::user_of` says).
#[derive(Debug, Clone, PartialEq, Eq)]
struct BlockUse {
    owner: Option<String>,
    borrowed: BTreeMap<u32, String>,
}

impl BlockUse {
    /// The use of a block's spec; `None` when it is not a block.
    fn of(value: &[u8]) -> Option<BlockUse> {
        let block: Block = serde_json::from_slice(value).ok()?;
        let borrowed = block
            .allocations
            .iter()
            .filter_map(|(ordinal, allocation)| {
                let user = block.user_of(allocation)?;
                (Some(user) != block.affinity.as_deref()).then(|| (*ordinal, user.to_string()))
            })
            .collect();
        Some(BlockUse {
            owner: block.affinity,
            borrowed,
        })
    }

    fn is_unused(&self) -> bool {
        self.owner.is_none() && self.borrowed.is_empty()
    }
}

/// The last use seen of every block, so that a watch of every block reports only a
/// change of who uses a block or an address, never a node's pods in its own blocks.
/// A block it does not know (after [`Users::clear`]) counts as changed.
#[derive(Debug, Default)]
pub(super) struct Users {
    blocks: HashMap<String, BlockUse>,
}

impl Users {
    /// Records `entry` (a block seen added or modified, or `deleted`); whether who
    /// uses it changed.
    pub(super) fn changed(&mut self, entry: &Entry, deleted: bool) -> bool {
        if deleted {
            return self
                .blocks
                .remove(&entry.key)
                .is_none_or(|old| !old.is_unused());
        }
        match BlockUse::of(&entry.value) {
            Some(now) => self.blocks.insert(entry.key.clone(), now.clone()) != Some(now),
            None => {
                self.blocks.remove(&entry.key);
                true
            }
        }
    }

    /// Forgets every block (a change may have been missed).
    pub(super) fn clear(&mut self) {
        self.blocks.clear();
    }
}

impl KubernetesStore {
    /// The blocks that name `node` (`Read::NodeBlocks`): two label-selected lists,
    /// sent together, each block once, sorted by key.
    pub(super) async fn node_blocks(&self, node: &str) -> Result<Vec<Entry>, StoreError> {
        let kind = Kind::Block;
        let [owner, borrower] = selectors(node);
        let (owner, borrower) = (
            ListParams::default().labels(&owner),
            ListParams::default().labels(&borrower),
        );
        let (owned, borrowed) = futures::future::try_join(
            self.list_kind(kind, &owner, Freshness::Latest),
            self.list_kind(kind, &borrower, Freshness::Latest),
        )
        .await?;
        let mut out: Vec<Entry> = Vec::new();
        for object in owned.items.iter().chain(&borrowed.items) {
            if let Some(entry) = self.entry(kind, object)?
                && block_names_node(&entry.value, node)
                && !out.iter().any(|e| e.key == entry.key)
            {
                out.push(entry);
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_borrowers_become_labels() {
        let spec = serde_json::json!({
            "cidr": "10.0.0.0/26",
            "affinity": "node-a",
            "allocations": {
                "1": { "handle": "h1", "sequence": 1 },
                "2": { "handle": "h2", "sequence": 2, "borrower": "node-b" },
                "3": { "handle": "h3", "sequence": 3, "borrower": "node-b" },
            },
        });
        let labels = labels(&spec);
        assert_eq!(labels.len(), 2, "{labels:?}");
        assert_eq!(labels["wren.io/node"], "node-a");
        assert_eq!(labels["borrower.wren.io/node-b"], "");
        assert_eq!(annotations(&spec)["wren.io/in-use"], "3");
        assert_eq!(
            selectors("node-b"),
            ["wren.io/node=node-b", "borrower.wren.io/node-b"]
        );
        let orphan =
            serde_json::json!({ "cidr": "10.0.0.0/26", "affinity": null, "allocations": {} });
        assert!(super::labels(&orphan).is_empty());
    }

    #[test]
    fn users_report_owners_and_borrowed_addresses_not_the_owners_pods() {
        let entry = |affinity: Option<&str>, allocations: serde_json::Value| Entry {
            key: "/wren/v1/ipam/blocks/10.0.0.0-26".into(),
            value: serde_json::to_vec(&serde_json::json!({
                "cidr": "10.0.0.0/26",
                "affinity": affinity,
                "sequence": 9,
                "cursor": 4,
                "allocations": allocations,
            }))
            .unwrap(),
            revision: 1,
        };
        let own = |n: u32| serde_json::json!({ "handle": format!("h{n}"), "sequence": n });
        let mut users = Users::default();
        // First seen (a new block): changed; its owner's pods come and go: not.
        assert!(users.changed(&entry(Some("a"), serde_json::json!({})), false));
        assert!(!users.changed(&entry(Some("a"), serde_json::json!({ "1": own(1) })), false));
        assert!(!users.changed(
            &entry(Some("a"), serde_json::json!({ "1": own(1), "2": own(2) })),
            false
        ));
        // b borrows an address, then a second one, then gives one back: changed.
        let borrowed = |n: u32| serde_json::json!({ "handle": format!("h{n}"), "sequence": n, "borrower": "b" });
        // (The third only takes the owner's pod 1 away: not a change of users.)
        let steps = [
            (serde_json::json!({ "1": own(1), "3": borrowed(3) }), true),
            (
                serde_json::json!({ "1": own(1), "3": borrowed(3), "4": borrowed(4) }),
                true,
            ),
            (
                serde_json::json!({ "3": borrowed(3), "4": borrowed(4) }),
                false,
            ),
            (serde_json::json!({ "3": borrowed(3) }), true),
        ];
        for (allocations, changed) in steps {
            assert_eq!(
                users.changed(&entry(Some("a"), allocations.clone()), false),
                changed,
                "{allocations}"
            );
        }
        // The owner goes (its node released): changed; deleted while used: changed.
        let orphan = entry(None, serde_json::json!({ "3": borrowed(3) }));
        assert!(users.changed(&orphan, false));
        assert!(users.changed(&orphan, true));
        // Unknown (after clear): changed; an unused block deleted: not.
        users.clear();
        assert!(users.changed(&entry(Some("a"), serde_json::json!({})), false));
        assert!(users.changed(&entry(Some("a"), serde_json::json!({})), true));
        assert!(users.changed(&entry(None, serde_json::json!({})), false));
        assert!(!users.changed(&entry(None, serde_json::json!({})), true));
    }
}
