//! Containerlab's management network, built out of namespaces: one extra namespace holding a
//! Linux bridge (Docker's `clab` network stands in the host), and for every node that names a
//! `mgmt-ipv4` or `mgmt-ipv6` address a veth pair from the node's `eth0` to a port of that
//! bridge, with the address and the subnet's prefix length on `eth0`. Nodes without a
//! management address get no `eth0` (containerlab would give them one from Docker's IPAM).
//! No default route is added: unlike Docker's network, this one leads nowhere else, so it
//! cannot carry traffic meant for the lab's own links.
//!
//! Topologies use it for services every node reaches the way a cluster reaches its control
//! plane, such as etcd.

use std::path::Path;

use crate::error::Result;
use crate::link::Veth;
use crate::netns::Netns;
use crate::topology::file::{MGMT_IFNAME, Topology};
use crate::topology::state::LinkState;

/// The bridge's name inside the management namespace.
pub const BRIDGE: &str = "mgmt0";

/// A built management network; dropping it removes the links and the namespace.
#[derive(Debug)]
pub struct Mgmt {
    links: Vec<Veth>,
    records: Vec<LinkState>,
    // Last: the links go before the namespace that holds the bridge.
    netns: Netns,
}

impl Topology {
    /// The namespace of the management network: `wren-lab.NAME.mgmt`, or
    /// `wren-lab.PREFIX.NAME.mgmt` under a custom `prefix` (so two copies of one topology
    /// under different prefixes never share it). Node names cannot contain dots, so it never
    /// collides with a node's namespace.
    pub fn mgmt_netns_name(&self) -> String {
        match self.prefix.as_deref() {
            None | Some("") | Some("__lab-name") => format!("wren-lab.{}.mgmt", self.name),
            Some(prefix) => format!("wren-lab.{prefix}.{}.mgmt", self.name),
        }
    }

    /// True when some node has a management address, so the lab has a management network.
    pub fn has_mgmt(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| n.mgmt_ipv4.is_some() || n.mgmt_ipv6.is_some())
    }
}

impl Mgmt {
    /// Builds the network for the nodes of `topology` whose namespaces are `nodes` (in the
    /// topology's node order); `dir` is the namespace's scratch directory. `None` when no
    /// node has a management address.
    pub fn build(topology: &Topology, nodes: &[&Netns], dir: &Path) -> Result<Option<Mgmt>> {
        if !topology.has_mgmt() {
            return Ok(None);
        }
        let netns = Netns::named(&topology.mgmt_netns_name(), dir)?;
        let mut mgmt = Mgmt {
            links: Vec::new(),
            records: Vec::new(),
            netns,
        };
        mgmt.netns.ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        mgmt.netns.ip(&["link", "set", BRIDGE, "up"])?;
        for (index, (node, node_netns)) in topology.nodes.iter().zip(nodes).enumerate() {
            if node.mgmt_ipv4.is_none() && node.mgmt_ipv6.is_none() {
                continue;
            }
            let port = format!("n{index}");
            let veth = Veth::new(node_netns, MGMT_IFNAME, &mgmt.netns, &port)?;
            mgmt.links.push(veth);
            mgmt.netns.ip(&["link", "set", &port, "master", BRIDGE])?;
            let eth0 = node_netns.iface(MGMT_IFNAME);
            if let Some(mtu) = topology.mgmt_mtu {
                eth0.mtu(mtu)?;
                mgmt.netns.iface(&port).mtu(mtu)?;
            }
            if let Some((address, len)) = node.mgmt_ipv4 {
                eth0.addr(&format!("{address}/{len}"))?;
            }
            if let Some((address, len)) = node.mgmt_ipv6 {
                eth0.addr(&format!("{address}/{len}"))?;
            }
            mgmt.records.push(LinkState {
                a_netns: node_netns.name().to_owned(),
                a_interface: MGMT_IFNAME.to_owned(),
                b_netns: mgmt.netns.name().to_owned(),
                b_interface: port,
            });
        }
        Ok(Some(mgmt))
    }

    /// The management namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The node-to-bridge links, for the lab's state record.
    pub fn link_states(&self) -> &[LinkState] {
        &self.records
    }

    /// Leaves everything in place (for `wren-lab up`).
    pub fn persist(mut self) {
        for link in self.links.drain(..) {
            link.persist();
        }
        self.netns.release();
    }
}
