//! The node registry on the Kubernetes datastore: the cluster's Node objects. A node's
//! BGP addresses and ASN are the annotations `wren.io/ipv4-address`,
//! `wren.io/ipv6-address` and `wren.io/asn` (and its VXLAN endpoints, `wren.io/vteps`),
//! which bgpd writes for itself (a merge
//! patch of those annotations and the record's labels); a Node without `wren.io/asn`
//! is not registered. The store never creates or deletes Node objects (kubelet does):
//! registering a node that has none is an error, and a leave removes the annotations.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node as KubeNode;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::KubernetesStore;
use crate::keys;
use crate::store::{Entry, Expect, Outcome, StoreError};

pub(crate) const IPV4_ANNOTATION: &str = "wren.io/ipv4-address";
pub(crate) const IPV6_ANNOTATION: &str = "wren.io/ipv6-address";
pub(crate) const ASN_ANNOTATION: &str = "wren.io/asn";
/// The node's VXLAN tunnel endpoints, as the JSON of the record's `vteps`.
pub(crate) const VTEPS_ANNOTATION: &str = "wren.io/vteps";

/// The fields of a registry record (`records::Node`) the annotations carry; read
/// here without that type, which the store does not depend on.
#[derive(serde::Deserialize)]
struct NodeRecord {
    addresses: Vec<IpAddr>,
    asn: u32,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    vteps: Vec<Value>,
}

impl KubernetesStore {
    pub(super) fn nodes_api(&self) -> Api<KubeNode> {
        Api::all(self.client.clone())
    }

    fn node_error(&self, error: kube::Error) -> StoreError {
        let reason = match &error {
            kube::Error::Api(status) => format!(
                "API server {} refused a request on nodes: {} {} {}",
                self.server, status.code, status.reason, status.message
            ),
            other => format!(
                "API server {} did not answer a request on nodes: {other}",
                self.server
            ),
        };
        StoreError::Unavailable {
            url: self.url.clone(),
            reason,
        }
    }

    /// The registry entry of a Node: `None` when it carries no `wren.io/asn`.
    pub(super) fn node_entry(&self, node: &KubeNode) -> Result<Option<Entry>, StoreError> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let annotations = node.metadata.annotations.clone().unwrap_or_default();
        let Some(asn) = annotations.get(ASN_ANNOTATION) else {
            return Ok(None);
        };
        let mut addresses = Vec::new();
        for annotation in [IPV4_ANNOTATION, IPV6_ANNOTATION] {
            if let Some(text) = annotations.get(annotation) {
                // A malformed annotation decodes as the record's error (naming the key).
                addresses.push(Value::String(text.clone()));
            }
        }
        let asn = asn
            .parse::<u32>()
            .map_or_else(|_| Value::String(asn.clone()), Value::from);
        let mut record = json!({
            "name": name,
            "addresses": addresses,
            "asn": asn,
            "labels": node.metadata.labels.clone().unwrap_or_default(),
        });
        if let Some(vteps) = annotations.get(VTEPS_ANNOTATION) {
            // Not JSON: kept as text, so decoding the record fails naming the node.
            record["vteps"] =
                serde_json::from_str(vteps).unwrap_or_else(|_| Value::String(vteps.clone()));
        }
        Ok(Some(Entry {
            key: keys::node(&name),
            value: serde_json::to_vec(&record).map_err(|e| self.failed(e.to_string()))?,
            revision: self.revision_of(&node.metadata)?,
        }))
    }

    /// What a watch of the registry reports for a Node: every change (a leave removes
    /// the annotations, and must be seen too).
    pub(super) fn node_change(&self, node: &KubeNode) -> Result<Option<Entry>, StoreError> {
        Ok(Some(Entry {
            key: keys::node(node.metadata.name.as_deref().unwrap_or_default()),
            value: Vec::new(),
            revision: self.revision_of(&node.metadata)?,
        }))
    }

    pub(super) async fn get_node(&self, name: &str) -> Result<Option<Entry>, StoreError> {
        match self.nodes_api().get_opt(name).await {
            Ok(Some(node)) => self.node_entry(&node),
            Ok(None) => Ok(None),
            Err(e) => Err(self.node_error(e)),
        }
    }

    pub(super) async fn list_nodes(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let list = self
            .nodes_api()
            .list(&ListParams::default())
            .await
            .map_err(|e| self.node_error(e))?;
        let mut out = Vec::new();
        for node in &list.items {
            if let Some(entry) = self.node_entry(node)?
                && entry.key.starts_with(prefix)
            {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Registers (`value`: a [`Node`] record) or, with `None`, deregisters a node.
    pub(super) async fn write_node(
        &self,
        name: &str,
        value: Option<&[u8]>,
        expect: Expect,
    ) -> Result<Outcome, StoreError> {
        let mut annotations = json!({
            IPV4_ANNOTATION: null,
            IPV6_ANNOTATION: null,
            ASN_ANNOTATION: null,
            VTEPS_ANNOTATION: null,
        });
        let mut labels = json!({});
        if let Some(value) = value {
            let record: NodeRecord = serde_json::from_slice(value)
                .map_err(|e| self.failed(format!("the record of node {name}: {e}")))?;
            let (mut v4, mut v6) = (Vec::new(), Vec::new());
            for address in &record.addresses {
                match address {
                    IpAddr::V4(_) => v4.push(address),
                    IpAddr::V6(_) => v6.push(address),
                }
            }
            if v4.len() > 1 || v6.len() > 1 {
                return Err(self.failed(format!(
                    "node {name}: the Kubernetes datastore records one IPv4 and one IPv6 address \
                     per node ({IPV4_ANNOTATION}, {IPV6_ANNOTATION}), not {}",
                    record.addresses.len()
                )));
            }
            annotations[IPV4_ANNOTATION] = v4.first().map_or(Value::Null, |a| a.to_string().into());
            annotations[IPV6_ANNOTATION] = v6.first().map_or(Value::Null, |a| a.to_string().into());
            annotations[ASN_ANNOTATION] = record.asn.to_string().into();
            if !record.vteps.is_empty() {
                annotations[VTEPS_ANNOTATION] = serde_json::to_string(&record.vteps)
                    .map_err(|e| self.failed(e.to_string()))?
                    .into();
            }
            labels =
                serde_json::to_value(&record.labels).map_err(|e| self.failed(e.to_string()))?;
        }
        let mut metadata = json!({ "annotations": annotations, "labels": labels });
        match expect {
            Expect::Revision(revision) => {
                metadata["resourceVersion"] = revision.to_string().into();
            }
            Expect::Absent if self.get_node(name).await?.is_some() => {
                return Ok(Outcome::Conflict);
            }
            _ => {}
        }
        let patch = Patch::Merge(json!({ "metadata": metadata }));
        match self
            .nodes_api()
            .patch(name, &PatchParams::default(), &patch)
            .await
        {
            Ok(node) => Ok(Outcome::Committed {
                revision: self.revision_of(&node.metadata)?,
            }),
            Err(kube::Error::Api(s)) if s.code == 404 && value.is_none() => {
                Ok(Outcome::Committed {
                    revision: self.current_revision().await?,
                })
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Err(self.failed(format!(
                "node {name} has no Node object on API server {} (kubelet creates it)",
                self.server
            ))),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Outcome::Conflict),
            Err(e) => Err(self.node_error(e)),
        }
    }
}
