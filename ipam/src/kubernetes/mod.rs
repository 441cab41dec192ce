//! The IPAM records as Kubernetes custom resources (group `wren.io`, version
//! `v1alpha1`, all cluster-scoped), and the [`KubernetesStore`] that keeps the IPAM
//! keys in them.
//!
//! The records are the resources' specs (the `CustomResource` derive on `Pool`,
//! `Block`, `Affinity`, `HandleRecord` and `IpamConfig`), so [`crds`] is generated
//! from the Rust types; `deploy/crds.yaml` is its committed rendering (the test
//! `tests/tests/crds.rs` compares them). Each key maps to one object (`names.rs`).

mod names;
mod store;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use names::{object_name, safe_name};
pub use store::KubernetesStore;
pub(crate) use store::parse_url;

use crate::block::IPAMBlock;
use crate::pool::IPPool;
use crate::records::{BlockAffinity, IPAMConfig, IPAMHandle};

/// The API group of every Wren custom resource.
pub const GROUP: &str = "wren.io";

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
