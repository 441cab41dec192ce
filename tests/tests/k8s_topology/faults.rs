//! Faults: the API server and etcd killed under the running nodes, and a node's bgpd
//! killed while its Node is deleted.

use super::*;

/// The three nodes' blocks (node4's, freed, excluded).
pub(crate) fn node_blocks(k8s: &K8s) -> BTreeMap<String, String> {
    let mut blocks = k8s.blocks().unwrap();
    blocks.retain(|_, owner| NODES.iter().any(|(node, _)| node == owner));
    blocks
}

/// Item 4: the API server, then etcd under it, killed and restarted under the three
/// running nodes.
pub(crate) fn control_plane_faults(k8s: &mut K8s) {
    let blocks = node_blocks(k8s);
    for (daemon_node, hold) in [("apiserver", 7), ("etcd", 8)] {
        let sessions: Vec<_> = NODES
            .iter()
            .map(|(n, _)| k8s.neighbors(n).unwrap())
            .collect();
        let logged: Vec<usize> = NODES
            .iter()
            .map(|(n, _)| k8s.lab.node(n).unwrap().daemons()[0].log().len())
            .collect();
        k8s.lab.node(daemon_node).unwrap().daemons()[0]
            .kill()
            .unwrap();
        // While it is down: sessions and routes stay.
        std::thread::sleep(Duration::from_secs(3));
        for ((node, _), before) in NODES.iter().zip(&sessions) {
            assert_eq!(
                &k8s.neighbors(node).unwrap(),
                before,
                "{node}'s sessions moved with {daemon_node} down"
            );
        }
        k8s.wait_kernels(&blocks);
        k8s.lab.node_mut(daemon_node).unwrap().daemons_mut()[0]
            .restart()
            .unwrap();
        wait_until(TIMEOUT, "the API server ready again", || {
            k8s.kubectl(&["get", "--raw", "/readyz"]).is_ok()
        })
        .unwrap();
        // Recovered by itself: a change made now reaches every node.
        k8s.set_tor_hold_time(hold);
        wait_for(
            TIMEOUT,
            &format!("holdTime {hold} on every node after {daemon_node}'s restart"),
            || {
                let now = tor_sessions(k8s);
                if now
                    .values()
                    .all(|(state, _, ms)| state == "Established" && *ms == hold * 1000)
                {
                    Ok(())
                } else {
                    Err(format!("{now:?}"))
                }
            },
        )
        .unwrap();
        for ((node, _), from) in NODES.iter().zip(logged) {
            let log = k8s.lab.node(node).unwrap().daemons()[0].log();
            let warnings: Vec<&str> = log[from..]
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect();
            let back: Vec<&str> = log[from..]
                .lines()
                .filter(|l| l.contains("reachable again"))
                .collect();
            eprintln!(
                "{node}, {daemon_node} killed: {} warnings, {} lines back:\n{}\n{}",
                warnings.len(),
                back.len(),
                warnings.join("\n"),
                back.join("\n")
            );
            if daemon_node == "apiserver" {
                // One line for the outage, naming the API server and the resources
                // whose watches failed, and one when it is back (9 warnings before:
                // one per watch and task; 48 before the IPAM watches logged once).
                assert!(
                    warnings.len() == 1
                        && warnings[0].contains("API server https://172.31.4.101")
                        && warnings[0].contains("watches of"),
                    "{node}: {} warnings for one outage:\n{}",
                    warnings.len(),
                    warnings.join("\n")
                );
                assert!(
                    back.len() == 1 && back[0].contains("API server https://172.31.4.101"),
                    "{node}: {back:?}"
                );
            }
        }
    }
}

/// Item 4: node3's bgpd killed with SIGKILL while its Node is deleted.
pub(crate) fn node_killed_while_deleted(k8s: &K8s) {
    let blocks = node_blocks(k8s);
    let block = blocks
        .iter()
        .find(|(_, owner)| *owner == "node3")
        .unwrap()
        .0
        .clone();
    k8s.lab.node("node3").unwrap().daemons()[0].kill().unwrap();
    k8s.kubectl(&["delete", "node", "node3"]).unwrap();
    wait_for(
        TIMEOUT,
        "node3's sessions gone from node1 and node2",
        || {
            for node in ["node1", "node2"] {
                if k8s.neighbors(node)?.contains_key("10.0.0.3") {
                    return Err(format!("{node} still has node3 as a neighbor"));
                }
            }
            Ok(())
        },
    )
    .unwrap();
    freed_by_the_collector(k8s, "node3", &block);
    for node in ["node1", "node2"] {
        let netns = k8s.lab.netns(node).unwrap();
        wait_for(
            TIMEOUT,
            &format!("{block} of node3 out of {node}'s kernel"),
            || match netns.route(&block) {
                Ok(None) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
        .unwrap();
    }
}
