//! BGP from the custom resources: the ToR's BGPPeer following its nodeSelector, and a
//! route reflector topology declared with peerSelectors only.

use super::*;

/// Item 3: the ToR's BGPPeer on exactly the nodes its nodeSelector picks, and a changed
/// holdTime resetting only those sessions.
pub(crate) fn bgp_peer_follows_its_node_selector(k8s: &K8s) {
    let before = tor_sessions(k8s);
    let mesh = mesh_sessions(k8s);
    for (node, (state, _, _)) in &before {
        assert_eq!(
            state, "Established",
            "ToR's session with {node}: {before:?}"
        );
    }
    k8s.kubectl(&[
        "label",
        "node",
        "node3",
        "topology.wren.io/rack=rack2",
        "--overwrite",
    ])
    .unwrap();
    let tor = k8s.lab.frr("tor").unwrap();
    wait_for(TIMEOUT, "node3 out of the BGPPeer rack1-tor", || {
        let state = tor.neighbor_state("10.0.0.3").map_err(|e| e.to_string())?;
        let node3 = k8s.neighbors("node3")?;
        if state.as_deref() != Some("Established") && !node3.contains_key("10.0.0.254") {
            Ok(())
        } else {
            Err(format!(
                "FRR sees node3 {state:?}; node3's neighbors {node3:?}"
            ))
        }
    })
    .unwrap();
    let after = tor_sessions(k8s);
    for node in ["node1", "node2"] {
        assert_eq!(after[node], before[node], "{node}'s ToR session moved");
    }

    // holdTime 30 -> 6 (below FRR's 9, so the negotiated hold time shows it): node1's and
    // node2's ToR sessions reset with it, node3 stays out, no mesh session moves.
    k8s.set_tor_hold_time(6);
    let reset = wait_for(TIMEOUT, "the selected nodes' ToR sessions reset", || {
        let now = tor_sessions(k8s);
        let done = ["node1", "node2"].iter().all(|node| {
            let (state, established, hold) = &now[node];
            state == "Established" && *established == before[node].1 + 1 && *hold == 6000
        });
        if done {
            Ok(now)
        } else {
            Err(format!("{now:?}"))
        }
    })
    .unwrap();
    assert_ne!(reset["node3"].0, "Established", "{reset:?}");
    assert_eq!(reset["node3"].1, before["node3"].1, "{reset:?}");
    assert_eq!(mesh_sessions(k8s), mesh, "a mesh session was reset");

    // node3 back in rack1: its session comes back with the new hold time.
    k8s.kubectl(&[
        "label",
        "node",
        "node3",
        "topology.wren.io/rack=rack1",
        "--overwrite",
    ])
    .unwrap();
    wait_for(TIMEOUT, "node3 back with the ToR", || {
        let now = tor_sessions(k8s);
        match &now["node3"] {
            (state, _, 6000) if state == "Established" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .unwrap();
}

/// Item 3: a route reflector topology from BGPPeers with peerSelectors (no address
/// written down) and the mesh off.
pub(crate) fn route_reflectors_from_peer_selectors(k8s: &K8s) {
    k8s.kubectl(&[
        "label",
        "node",
        "node1",
        "topology.wren.io/route-reflector=true",
        "wren.io/route-reflector-cluster-id=10.0.0.1",
    ])
    .unwrap();
    k8s.apply(
        r#"apiVersion: wren.io/v1alpha1
kind: BGPPeer
metadata:
  name: to-reflectors
spec:
  nodeSelector:
    matchExpressions:
      - {key: topology.wren.io/route-reflector, operator: DoesNotExist}
  peerSelector:
    matchExpressions:
      - {key: topology.wren.io/route-reflector, operator: Exists}
---
apiVersion: wren.io/v1alpha1
kind: BGPPeer
metadata:
  name: reflector-clients
spec:
  nodeSelector:
    matchExpressions:
      - {key: topology.wren.io/route-reflector, operator: Exists}
  peerSelector:
    matchExpressions:
      - {key: topology.wren.io/route-reflector, operator: DoesNotExist}
  routeReflectorClient: true
---
apiVersion: wren.io/v1alpha1
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
"#,
    );
    let wanted = [
        ("node1", vec!["10.0.0.2", "10.0.0.254", "10.0.0.3"]),
        ("node2", vec!["10.0.0.1", "10.0.0.254"]),
        ("node3", vec!["10.0.0.1", "10.0.0.254"]),
    ];
    for (node, addresses) in &wanted {
        wait_for(TIMEOUT, &format!("{node}'s sessions {addresses:?}"), || {
            let neighbors = k8s.neighbors(node)?;
            let established: Vec<&str> = neighbors
                .iter()
                .filter(|(_, (state, _))| state == "Established")
                .map(|(address, _)| address.as_str())
                .collect();
            if neighbors.len() == addresses.len() && established == *addresses {
                Ok(())
            } else {
                Err(format!("{neighbors:?}"))
            }
        })
        .unwrap();
    }
    let descriptions = k8s.bgpctl("node2", &["show", "neighbors"]).unwrap();
    assert!(
        descriptions.to_string().contains("to-reflectors"),
        "{descriptions}"
    );
    // node2 and node3 reach each other's blocks through the reflector, next hop the
    // owner (a reflector passes it on unchanged).
    let mut blocks = k8s.blocks().unwrap();
    blocks.retain(|_, owner| NODES.iter().any(|(node, _)| node == owner));
    k8s.wait_kernels(&blocks);
    let routes = k8s.bgpctl("node2", &["show", "routes"]).unwrap();
    let node3_block = blocks.iter().find(|(_, n)| *n == "node3").unwrap().0;
    let best = routes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["prefix"] == node3_block.as_str() && r["best"] == true)
        .unwrap_or_else(|| panic!("node2 has no best route to {node3_block}: {routes}"));
    assert_eq!(best["source"], "10.0.0.1", "{best}");
}
