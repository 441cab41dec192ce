//! The labels of an `IPAMBlock` object, so that a node's blocks are listed and
//! watched by label instead of reading every block: `wren.io/node` names the block's
//! owner (its `affinity`), and `borrower.wren.io/NODE` (empty value) each node that
//! borrowed one of its addresses. Node names go through [`label_value`] (a long or
//! odd name is shortened with a hash; the store still filters what it lists by the
//! spec, so two names sharing a label value cannot mix).

use std::collections::BTreeMap;

use kube::api::ListParams;
use serde_json::Value;

use super::names::label_value;
use super::{Kind, KubernetesStore, NODE_LABEL};
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

/// The label selectors of the blocks that name `node`: as owner, as borrower.
pub(super) fn selectors(node: &str) -> [String; 2] {
    let value = label_value(node);
    [
        format!("{NODE_LABEL}={value}"),
        format!("{BORROWER_LABEL_PREFIX}{value}"),
    ]
}

impl KubernetesStore {
    /// The blocks that name `node` (`Read::NodeBlocks`): two label-selected lists,
    /// each block once, sorted by key.
    pub(super) async fn node_blocks(&self, node: &str) -> Result<Vec<Entry>, StoreError> {
        let kind = Kind::Block;
        let mut out: Vec<Entry> = Vec::new();
        for selector in selectors(node) {
            let list = self
                .api(kind)
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| self.error(kind, e))?;
            for object in &list.items {
                if let Some(entry) = self.entry(kind, object)?
                    && block_names_node(&entry.value, node)
                    && !out.iter().any(|e| e.key == entry.key)
                {
                    out.push(entry);
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[cfg(test)]
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
        assert_eq!(
            selectors("node-b"),
            ["wren.io/node=node-b", "borrower.wren.io/node-b"]
        );
        let orphan =
            serde_json::json!({ "cidr": "10.0.0.0/26", "affinity": null, "allocations": {} });
        assert!(super::labels(&orphan).is_empty());
    }
}
