//! `[ipam]`: pod address management in the datastore that bgpd advertises from, and
//! the node registry the node-to-node mesh follows (issue 4).
//!
//! ```toml
//! [ipam]
//! node = "node-a"                           # default: $NODENAME, else the host name
//! datastore = "sqlite:///var/lib/wren/ipam.db"   # or "etcd://10.0.0.5:2379,10.0.0.6:2379", "kubernetes", "kubernetes:///etc/wren/kubeconfig"
//! node_addresses = ["10.0.0.1", "fd00::1"]  # registered for the mesh; default: router_id
//! address_detection = "first-found"         # instead of node_addresses (cluster::address)
//! node_labels = { zone = "a" }              # registered; pools' node_selector matches them
//! strict_affinity = false                   # cluster-wide, written at start when given
//! max_blocks_per_node = 0                   # cluster-wide, written at start when given
//! resync_interval = 10                      # seconds between full re-reads (a fallback)
//! [[ipam.pool]]                             # created at start when missing
//! cidr = "10.244.0.0/16"
//! block_size = 26                           # default 26 (IPv4), 122 (IPv6)
//! disabled = false
//! node_selector = { zone = "a" }
//! nat_outgoing = false
//! vxlan_mode = "never"                      # "always", "cross_subnet" or "never"
//! vxlan_vni = 4096                          # one VNI and port per family: every
//! vxlan_port = 4789                         #   VXLAN pool of a family shares them
//! ```
//!
//! `ipip_mode` is refused: Wren has no IPIP overlay (use `vxlan_mode`).
//!
//! With `[ipam]`, `[bgp] node_mesh` defaults to true: bgpd peers with every other
//! node of the registry. Changes to `[ipam]` take effect at the next start.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cluster::address::Detection;
use serde::Deserialize;

/// The datastore bgpd and `wren-ipam` use when not told.
pub const DEFAULT_DATASTORE: &str = "sqlite:///var/lib/wren/ipam.db";
/// Seconds between full re-reads of the node's allocations when nothing announced a
/// change (the control socket notification and the datastore watch come first).
pub const DEFAULT_RESYNC_INTERVAL: u32 = 10;

/// The `[ipam]` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamConfig {
    /// This node's name in IPAM and the registry; default: `NODENAME` (the
    /// downward API's `spec.nodeName` in the DaemonSet), else the host name.
    #[serde(default)]
    pub node: Option<String>,
    /// `sqlite:///PATH` or `etcd://HOST:PORT[,HOST:PORT...]`.
    #[serde(default = "default_datastore")]
    pub datastore: String,
    /// Addresses other nodes peer with (one session per family both nodes have);
    /// default: the router id.
    #[serde(default)]
    pub node_addresses: Vec<IpAddr>,
    /// How to find the node's addresses instead of listing them (Calico's methods:
    /// `first-found`, `interface=REGEX`, `skip-interface=REGEX`, `can-reach=ADDR`,
    /// `cidr=CIDR`), detected once at start.
    #[serde(default)]
    pub address_detection: Option<Detection>,
    /// Labels recorded with the node (pools' `node_selector` matches them).
    #[serde(default)]
    pub node_labels: BTreeMap<String, String>,
    /// Cluster-wide: never borrow addresses from other nodes' blocks. Written to the
    /// datastore at start when set; left as stored when absent.
    #[serde(default)]
    pub strict_affinity: Option<bool>,
    /// Cluster-wide: most blocks per node and family (0: no limit). Written at start
    /// when set.
    #[serde(default)]
    pub max_blocks_per_node: Option<u32>,
    /// Seconds between full re-reads when nothing announced a change.
    #[serde(default = "default_resync_interval")]
    pub resync_interval: u32,
    /// Pools created at start when missing.
    #[serde(default, rename = "pool")]
    pub pools: Vec<PoolConfig>,
}

/// `[[ipam.pool]]`: the settings `bgpctl ipam pool add` sends too (one type), so
/// both refuse `ipip_mode` alike.
pub type PoolConfig = control_proto::PoolSettings;

impl IpamConfig {
    /// The node name: `node`, else `NODENAME`, else the host name.
    pub fn node_name(&self) -> Result<String, String> {
        let name = match &self.node {
            Some(node) => node.clone(),
            None => cluster::node::name()
                .map_err(|error| format!("ipam.node is not set and the {error}"))?,
        };
        ipam::keys::validate_node(&name)
            .map_err(|error| format!("node name {name:?} is not usable: {error}"))?;
        Ok(name)
    }

    /// The addresses registered for the mesh: `node_addresses`, else those
    /// `address_detection` finds (in the calling thread's network namespace; the
    /// Node's `internal_ips` for `kubernetes-internal-ip`), else the router id.
    pub fn addresses(
        &self,
        router_id: std::net::Ipv4Addr,
        internal_ips: Option<&[IpAddr]>,
    ) -> Result<Vec<IpAddr>, String> {
        if !self.node_addresses.is_empty() {
            return Ok(self.node_addresses.clone());
        }
        match &self.address_detection {
            Some(detection) => detection
                .detect(internal_ips)
                .map_err(|error| format!("ipam.address_detection: {error}")),
            None => Ok(vec![IpAddr::V4(router_id)]),
        }
    }
}

fn default_datastore() -> String {
    DEFAULT_DATASTORE.to_owned()
}

fn default_resync_interval() -> u32 {
    DEFAULT_RESYNC_INTERVAL
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n";

    /// The single error of `text`: (line, key, message), checked to be one line.
    fn error(text: &str) -> (usize, String, String) {
        let errors = match Config::parse(text, "test.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(errors) => errors,
        };
        assert_eq!(errors.0.len(), 1, "{errors}");
        let error = &errors.0[0];
        let message = error.to_string();
        assert!(!message.contains('\n'), "{message}");
        (error.line, error.key.clone(), message)
    }

    #[test]
    fn kubernetes_internal_ip_needs_the_kubernetes_section_and_uses_the_nodes_addresses() {
        let section = "[ipam]\nnode = \"node-a\"\naddress_detection = \"kubernetes-internal-ip\"\n";
        let (_, key, message) = error(&format!("{BASE}{section}"));
        assert_eq!(key, "ipam.address_detection");
        assert!(message.contains("add a [kubernetes] section"), "{message}");
        let config = Config::parse(&format!("{BASE}{section}[kubernetes]\n"), "test.toml").unwrap();
        let ipam = config.ipam.as_ref().unwrap();
        let internal: Vec<std::net::IpAddr> = vec![
            "fd00::7".parse().unwrap(),
            "10.0.0.7".parse().unwrap(),
            "10.0.0.8".parse().unwrap(),
        ];
        assert_eq!(
            ipam.addresses(config.bgp.router_id, Some(&internal))
                .unwrap(),
            vec![internal[1], internal[0]],
            "the first of each family, IPv4 first"
        );
        assert!(ipam.addresses(config.bgp.router_id, None).is_err());
    }

    #[test]
    fn the_documented_section_parses_with_defaults() {
        let config = Config::parse(
            &format!(
                "{BASE}[ipam]\nnode = \"node-a\"\ndatastore = \"etcd://10.0.0.5:2379,10.0.0.6:2379\"\n\
                 [[ipam.pool]]\ncidr = \"10.244.0.0/16\"\n\
                 [[ipam.pool]]\ncidr = \"fd00:10:244::/56\"\nnode_selector = {{ zone = \"a\" }}\n"
            ),
            "test.toml",
        )
        .unwrap();
        let ipam = config.ipam.as_ref().unwrap();
        assert_eq!(ipam.node_name().unwrap(), "node-a");
        assert_eq!(ipam.resync_interval, super::DEFAULT_RESYNC_INTERVAL);
        assert_eq!(ipam.strict_affinity, None);
        let pools: Vec<ipam::Pool> = ipam.pools.iter().map(ipam::Pool::from_settings).collect();
        assert_eq!((pools[0].block_size, pools[1].block_size), (26, 122));
        assert_eq!(pools[1].node_selector["zone"], "a");
        assert_eq!(
            (pools[0].vxlan_mode, pools[0].vxlan_vni, pools[0].vxlan_port),
            (ipam::VxlanMode::Never, 4096, 4789)
        );
        let vxlan = Config::parse(
            &format!(
                "{BASE}[ipam]\nnode = \"node-a\"\n[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\n\
                 vxlan_mode = \"cross_subnet\"\nvxlan_vni = 7\nvxlan_port = 8472\n\
                 [[ipam.pool]]\ncidr = \"fd00:10:244::/56\"\nvxlan_mode = \"always\"\n"
            ),
            "test.toml",
        )
        .unwrap();
        let pools: Vec<ipam::Pool> = vxlan
            .ipam
            .unwrap()
            .pools
            .iter()
            .map(ipam::Pool::from_settings)
            .collect();
        assert_eq!(
            (pools[0].vxlan_mode, pools[0].vxlan_vni, pools[0].vxlan_port),
            (ipam::VxlanMode::CrossSubnet, 7, 8472)
        );
        // Another family's device: its own VNI and port.
        assert_eq!(
            (pools[1].vxlan_mode, pools[1].vxlan_vni, pools[1].vxlan_port),
            (ipam::VxlanMode::Always, 4096, 4789)
        );
        // The node registers its router id when no address is given.
        assert_eq!(
            ipam.addresses(config.bgp.router_id, None).unwrap(),
            vec!["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        // node_mesh: on with [ipam], off without, as configured when given.
        assert!(config.node_mesh());
        assert!(!Config::parse(BASE, "test.toml").unwrap().node_mesh());
        let off = Config::parse(
            "[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\nnode_mesh = false\n[ipam]\nnode = \"n\"\n",
            "test.toml",
        )
        .unwrap();
        assert!(!off.node_mesh());
        assert_eq!(off.ipam.unwrap().datastore, super::DEFAULT_DATASTORE);
    }

    #[test]
    fn bad_sections_give_one_error_naming_line_and_key() {
        let cases = [
            // (text after BASE, line, key, words in the message)
            (
                "[ipam]\nnode = \"n\"\ndatastore = \"mysql://db\"\n",
                6,
                "ipam.datastore",
                "unknown scheme",
            ),
            (
                "[ipam]\nnode = \"n\"\n[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\nblock_size = 40\n",
                8,
                "ipam.pool[0].block_size",
                "block",
            ),
            (
                "[ipam]\nnode = \"n\"\n[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\n[[ipam.pool]]\ncidr = \"10.244.128.0/17\"\n",
                9,
                "ipam.pool[1].cidr",
                "overlaps ipam.pool[0]",
            ),
            (
                "[ipam]\nnode = \"n\"\n[[ipam.pool]]\ncidr = \"10.244.0.0/33\"\n",
                7,
                "ipam.pool[0].cidr",
                "",
            ),
            (
                "[ipam]\nnode = \"n\"\nnode_addresses = [\"0.0.0.0\"]\n",
                6,
                "ipam.node_addresses[0]",
                "peering address",
            ),
            (
                "[ipam]\nnode = \"n\"\nresync_interval = 0\n",
                6,
                "ipam.resync_interval",
                "at least 1 second",
            ),
            (
                "[ipam]\nnode = \"n\"\naddress_detection = \"interface=eth(\"\n",
                6,
                "ipam.address_detection",
                "not a regular expression",
            ),
            (
                "[ipam]\nnode = \"n\"\naddress_detection = \"nearest\"\n",
                6,
                "ipam.address_detection",
                "unknown address detection method",
            ),
            (
                "[ipam]\nnode = \"n\"\nnode_addresses = [\"10.0.0.1\"]\naddress_detection = \"first-found\"\n",
                7,
                "ipam.address_detection",
                "not both",
            ),
            (
                "[ipam]\nnode = \"n\"\n[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\nipip_mode = \"always\"\n",
                8,
                "ipam.pool[0].ipip_mode",
                "IPIP (tunl0) is not supported",
            ),
            (
                "[ipam]\nnode = \"n\"\n[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\nvxlan_mode = \"sometimes\"\n",
                8,
                "ipam.pool[0].vxlan_mode",
                "cross_subnet",
            ),
            (
                "[ipam]\nnode = \"n\"\n[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\nvxlan_vni = 16777216\n",
                8,
                "ipam.pool[0].vxlan_vni",
                "outside 1-16777215",
            ),
            (
                "[ipam]\nnode = \"n\"\n[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\nvxlan_port = 0\n",
                8,
                "ipam.pool[0].vxlan_port",
                "not a UDP port",
            ),
            (
                "[ipam]\nnode = \"n\"\n[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\nvxlan_mode = \"always\"\n\
                 [[ipam.pool]]\ncidr = \"10.245.0.0/16\"\nvxlan_mode = \"cross_subnet\"\nvxlan_vni = 7\n",
                12,
                "ipam.pool[1].vxlan_vni",
                "7 differs from ipam.pool[0]'s 4096: one VXLAN device serves every IPv4 pool",
            ),
            (
                "[ipam]\nnode = \"n\"\nstrict = true\n",
                6,
                "ipam.strict",
                "unknown field",
            ),
        ];
        for (section, line, key, words) in cases {
            let text = format!("{BASE}{section}");
            let (at, named, message) = error(&text);
            assert_eq!((at, named.as_str()), (line, key), "{message}\n{text}");
            assert!(message.contains(words), "{message}");
        }
        // node_mesh needs [ipam].
        let (_, key, message) =
            error("[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\nnode_mesh = true\n");
        assert_eq!(key, "bgp.node_mesh", "{message}");
    }
}
