//! The mesh over the Node objects: a fourth bgpd's Node created and deleted, and its
//! block freed by the collector.

use super::*;

/// A fourth Wren node outside the topology file: a namespace on the ToR's bridge
/// (10.0.0.4) and the management network (172.31.4.14), and its bgpd on the Kubernetes
/// datastore as node4. Dropping it stops bgpd and removes the links and the namespace.
pub(crate) struct Fourth {
    pub(crate) wren: Wren,
    pub(crate) _links: [Veth; 2],
    pub(crate) _netns: Netns,
}

impl Fourth {
    const ADDRESS: &str = "10.0.0.4";

    pub(crate) fn start(k8s: &K8s, prefix: &str, root: &Path) -> Fourth {
        let netns = Netns::new(&format!("{prefix}-node4")).unwrap();
        netns.lo_up().unwrap();
        let tor = k8s.lab.netns("tor").unwrap();
        let mgmt = k8s.lab.mgmt_netns().unwrap();
        let rack = Veth::new(tor, "eth4", &netns, "eth1").unwrap();
        let management = Veth::new(mgmt, "node4", &netns, "eth0").unwrap();
        tor.ip(&["link", "set", "eth4", "master", "br0"]).unwrap();
        mgmt.ip(&[
            "link",
            "set",
            "node4",
            "master",
            lab::topology::mgmt::BRIDGE,
        ])
        .unwrap();
        netns.iface("eth1").addr("10.0.0.4/24").unwrap();
        netns.iface("eth0").addr("172.31.4.14/24").unwrap();
        let kubeconfig = root
            .join("containerlab/k8s/admin.kubeconfig")
            .canonicalize()
            .unwrap();
        // Accepts the others whether or not its own registry read has listed them yet.
        let config = wren_config(
            Self::ADDRESS,
            &Wren::socket_path(&netns),
            false,
            &format!(
                "[ipam]\nnode = \"node4\"\ndatastore = \"kubernetes://{}\"\n\
                 node_addresses = [\"{}\"]\n\n\
                 [[bgp.listen_range]]\nprefix = \"10.0.0.0/24\"\nremote_asn = 64512\n",
                kubeconfig.display(),
                Self::ADDRESS
            ),
        );
        let wren = Wren::start(&netns, &config);
        Fourth {
            wren,
            _links: [rack, management],
            _netns: netns,
        }
    }
}

/// Item 2: the mesh follows the Node objects.
pub(crate) fn mesh_follows_the_nodes(k8s: &K8s, prefix: &str, root: &Path) {
    let fourth = Fourth::start(k8s, prefix, root);
    let created = std::time::Instant::now();
    k8s.apply(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: node4\n  annotations:\n    \
         wren.io/asn: \"64512\"\n    wren.io/ipv4-address: 10.0.0.4\n",
    );
    wait_for(
        TIMEOUT,
        "mesh sessions of the three nodes with node4",
        || {
            for (node, _) in NODES {
                let neighbors = k8s.neighbors(node)?;
                match neighbors.get(Fourth::ADDRESS) {
                    Some((state, _)) if state == "Established" => {}
                    other => return Err(format!("{node}: {other:?}")),
                }
            }
            Ok(())
        },
    )
    .unwrap();
    let elapsed = created.elapsed();
    eprintln!("node4 created: mesh sessions Established on the three nodes after {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(2),
        "node4's mesh sessions took {elapsed:?}"
    );

    // node4's bgpd claims a block in the API server; it reaches every node's kernel
    // through node4.
    let block = wait_for(TIMEOUT, "an IPAMBlock affine to node4", || {
        k8s.blocks()?
            .into_iter()
            .find(|(_, owner)| owner == "node4")
            .map(|(cidr, _)| cidr)
            .ok_or_else(|| fourth.wren.daemon.log_tail(10).to_string())
    })
    .unwrap();
    for (node, _) in NODES {
        let netns = k8s.lab.netns(node).unwrap();
        wait_for(
            TIMEOUT,
            &format!("{block} of node4 in {node}'s kernel"),
            || match netns.route(&block) {
                Ok(Some(route)) if route["gateway"] == Fourth::ADDRESS => Ok(()),
                Ok(other) => Err(format!("route {other:?}")),
                Err(error) => Err(error.to_string()),
            },
        )
        .unwrap();
    }

    // The Node deleted: the three drop their sessions with node4 (which still runs).
    k8s.kubectl(&["delete", "node", "node4"]).unwrap();
    wait_for(TIMEOUT, "node4's mesh sessions gone", || {
        for (node, _) in NODES {
            if k8s.neighbors(node)?.contains_key(Fourth::ADDRESS) {
                return Err(format!("{node} still peers with node4"));
            }
        }
        Ok(())
    })
    .unwrap();
    assert!(fourth.wren.daemon.is_alive());
    drop(fourth);

    // node4 gone for good: the collector (elected among the three bgpd) frees its
    // block and affinity, and the datastore checks clean.
    let freed = std::time::Instant::now();
    freed_by_the_collector(k8s, "node4", &block);
    eprintln!(
        "node4's block freed {:?} after node4 stopped",
        freed.elapsed()
    );
}

/// Waits until `node`'s `block` and its affinity are gone from the API server (the
/// collector's work), then checks the datastore clean.
pub(crate) fn freed_by_the_collector(k8s: &K8s, node: &str, block: &str) {
    wait_for(
        TIMEOUT,
        &format!("{node}'s block freed by the collector"),
        || {
            let blocks = k8s.blocks()?;
            let affinities = k8s.kubectl(&["get", "blockaffinities", "-o", "name"])?;
            if blocks.contains_key(block) || affinities.contains(&format!("/{node}-")) {
                Err(format!("blocks {blocks:?}, affinities {affinities}"))
            } else {
                Ok(())
            }
        },
    )
    .unwrap();
    let check = k8s.bgpctl("node1", &["ipam", "check"]).unwrap();
    assert_eq!(check["problems"], 0, "{check}");
}
