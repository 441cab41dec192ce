//! `deploy/crds.yaml` is the CustomResourceDefinitions of every Wren custom resource,
//! rendered from the Rust types (kube's `CustomResourceExt`): this test fails when the
//! committed file and the types differ, and rewrites the file when run with
//! `WREN_UPDATE_CRDS=1`. A crate with resources of its own adds its `crds()` to
//! `every_crd`.

#![allow(clippy::unwrap_used)]

use std::path::Path;

const UPDATE_ENV: &str = "WREN_UPDATE_CRDS";

fn every_crd() -> Vec<serde_json::Value> {
    let mut crds: Vec<serde_json::Value> = ipam::kubernetes::crds()
        .into_iter()
        .chain(cluster::crds())
        .map(|crd| serde_json::to_value(crd).unwrap())
        .collect();
    crds.sort_by_key(|crd| {
        crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    crds
}

fn render() -> String {
    let mut out = String::from(
        "# Generated from the Rust types by tests/tests/crds.rs; do not edit.\n\
         # Regenerate: WREN_UPDATE_CRDS=1 cargo test -p wren-tests --test crds\n",
    );
    for crd in every_crd() {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd).unwrap());
    }
    out
}

#[test]
fn committed_crds_match_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds.yaml");
    let rendered = render();
    if std::env::var(UPDATE_ENV).is_ok_and(|v| v == "1") {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "{} differs from the CRDs the Rust types render: run {UPDATE_ENV}=1 cargo test -p wren-tests --test crds, and commit it",
        path.display()
    );
}

#[test]
fn every_resource_is_cluster_scoped_in_wren_io() {
    let crds = every_crd();
    let kinds: Vec<&str> = crds
        .iter()
        .map(|crd| crd["spec"]["names"]["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "IPPool",
        "IPAMBlock",
        "BlockAffinity",
        "IPAMHandle",
        "IPAMConfig",
        "BGPConfiguration",
        "BGPPeer",
        "WrenNode",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    for crd in &crds {
        assert_eq!(crd["spec"]["group"], "wren.io", "{crd}");
        assert_eq!(crd["spec"]["scope"], "Cluster", "{crd}");
        assert_eq!(crd["spec"]["versions"][0]["name"], "v1alpha1", "{crd}");
        assert!(
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
                .is_object(),
            "{crd}"
        );
    }
}
