//! The `scale-ipam` scenario's `--quick` variant, as CI runs it: 200 simulated nodes
//! claim their first block at once on etcd, on the Kubernetes datastore and on SQLite.
//! The bench binary fails the run when `ipam check` is not clean, a node does not own
//! exactly one block or a block is affine to two nodes; this test also reads those
//! figures back from the JSON it wrote.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn two_hundred_nodes_claim_at_once_on_every_store() {
    let Some(_ready) = lab::require!(Root, Etcd, KubeApiserver) else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["scale-ipam", "--quick", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench scale-ipam --quick failed:\n{stderr}"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("scale-ipam.json")).unwrap())
            .unwrap();
    let rows = json["rows"].as_array().unwrap();
    let runs = |figure: &str, store: &str| -> Vec<f64> {
        let row = rows
            .iter()
            .find(|row| row["figure"] == figure)
            .unwrap_or_else(|| panic!("no row {figure:?} in {json}"));
        row["subjects"][store]["runs"]
            .as_array()
            .unwrap_or_else(|| panic!("no runs of {figure:?} on {store}: {row}"))
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    for store in ["etcd", "Kubernetes", "SQLite"] {
        assert_eq!(
            runs("blocks affine to two nodes (calico#6001)", store),
            [0.0],
            "{store}"
        );
        assert_eq!(runs("ipam check: problems", store), [0.0], "{store}");
        let p99 = runs("claim time, p99", store);
        assert!(p99.len() == 1 && p99[0] > 0.0, "{store}: p99 {p99:?}");
        let operations = runs("store operations per claim", store);
        // A claim reads and writes the store: at least the pending affinity, the block
        // and the confirmation.
        assert!(
            operations[0] >= 3.0,
            "{store}: {operations:?} operations per claim"
        );
    }
    assert!(out.path().join("scale-ipam.md").is_file());
}
