//! The IPAM records as Kubernetes custom resources (group `wren.io`, version
//! `v1alpha1`, all cluster-scoped), and the [`KubernetesStore`] that keeps the IPAM
//! keys in them.
//!
//! The records are the resources' specs (the `CustomResource` derive on `Pool`,
//! `Block`, `Affinity`, `HandleRecord` and `IpamConfig`), so [`crds`] is generated
//! from the Rust types; `deploy/crds.yaml` is its committed rendering (the test
//! `tests/tests/crds.rs` compares them). The store itself is `store/kubernetes.rs`;
//! it names the kinds without these types (so that the store depends on no record
//! module), and a test here checks that both agree.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use crate::store::KubernetesStore;
pub use crate::store::kubernetes::{GROUP, object_name, safe_name};

use crate::block::IPAMBlock;
use crate::pool::IPPool;
use crate::records::{BlockAffinity, IPAMConfig, IPAMHandle};

/// The CustomResourceDefinitions of the IPAM resources.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        IPPool::crd(),
        IPAMBlock::crd(),
        BlockAffinity::crd(),
        IPAMHandle::crd(),
        IPAMConfig::crd(),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_store_names_the_kinds_the_types_define() {
        let mut defined: Vec<(String, String, String, String)> = super::crds()
            .into_iter()
            .map(|crd| {
                let version = crd.spec.versions.first().map(|v| v.name.clone());
                (
                    crd.spec.group,
                    version.unwrap_or_default(),
                    crd.spec.names.kind,
                    crd.spec.names.plural,
                )
            })
            .collect();
        let mut named: Vec<(String, String, String, String)> =
            crate::store::kubernetes::resources()
                .into_iter()
                .map(|r| (r.group, r.version, r.kind, r.plural))
                .collect();
        defined.sort();
        named.sort();
        assert_eq!(defined, named);
    }
}
