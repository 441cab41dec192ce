//! The IPAM tests' pods: namespaces attached to a node with the real `ptp` plugin and
//! `wren-ipam` (DEL and namespace removal on drop), the `[ipam]` config text, and kernel
//! route lookups in a node's namespace.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};

use lab::Netns;
use serde_json::{Value, json};

/// A `ptp` + `wren-ipam` network config.
pub fn cni_conf(datastore: &str, node: &str, control_socket: &Path) -> String {
    json!({
        "cniVersion": "1.0.0",
        "name": "wren",
        "type": "ptp",
        "ipMasq": false,
        "ipam": {
            "type": "wren-ipam",
            "datastore": datastore,
            "node": node,
            "control_socket": control_socket,
        }
    })
    .to_string()
}

/// The `[ipam]` section: `node`, `datastore`, the node's addresses, then `rest`
/// (settings and `[[ipam.pool]]` tables).
pub fn ipam_section(node: &str, datastore: &str, addresses: &[&str], rest: &str) -> String {
    let addresses: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[ipam]\nnode = \"{node}\"\ndatastore = \"{datastore}\"\nnode_addresses = [{}]\n{rest}\n",
        addresses.join(", ")
    )
}

/// A pod: a namespace attached to a node through `ptp` + `wren-ipam`.
#[derive(Debug)]
pub struct Pod {
    pub netns: Netns,
    node: String,
    conf: String,
    plugin_dir: PathBuf,
    container: String,
    /// The ADD result.
    pub result: Value,
}

impl Pod {
    /// Runs ADD in `node`'s namespace for a new pod namespace.
    pub fn add(node: &Netns, wren_ipam: &Path, conf: &str) -> Pod {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let netns = Netns::new("wpod").unwrap();
        let container = format!(
            "ctr-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut pod = Pod {
            netns,
            node: node.name().to_owned(),
            conf: conf.to_owned(),
            plugin_dir: wren_ipam.parent().unwrap().to_owned(),
            container,
            result: Value::Null,
        };
        let (ok, out) = pod.cni("ADD");
        assert!(ok, "ptp ADD in {} failed: {out}", pod.node);
        pod.result = serde_json::from_str(&out).unwrap();
        pod
    }

    /// The pod's first address of the family (`ipv4`).
    pub fn address(&self, ipv4: bool) -> String {
        self.result["ips"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|ip| ip["address"].as_str())
            .map(|a| a.split('/').next().unwrap().to_owned())
            .find(|a| a.contains('.') == ipv4)
            .unwrap_or_else(|| panic!("no address of that family in {}", self.result))
    }

    /// Runs the plugin with `command`; (success, stdout and stderr).
    fn cni(&self, command: &str) -> (bool, String) {
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.node, "/usr/lib/cni/ptp"])
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &self.container)
            .env("CNI_NETNS", self.netns.path())
            .env("CNI_IFNAME", "eth0")
            .env(
                "CNI_PATH",
                format!("{}:/usr/lib/cni", self.plugin_dir.display()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(self.conf.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let (ok, out) = self.cni("DEL");
        if !ok {
            eprintln!("ptp DEL in {} failed: {out}", self.node);
        }
    }
}

/// Turns IPv4 and IPv6 forwarding on in a node's namespace.
pub fn forwarding(netns: &Netns) {
    netns
        .exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        .unwrap();
    netns
        .exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        .unwrap();
}

/// bgpd's kernel route for exactly `prefix` in the main table (protocol 196, its
/// default: `ip -j route show proto 196 exact PREFIX`), if any.
pub fn kernel_route(netns: &Netns, prefix: &str) -> Option<Value> {
    let family = if prefix.contains(':') { "-6" } else { "-4" };
    netns
        .ip_json(&[family, "route", "show", "proto", "196", "exact", prefix])
        .unwrap()
        .as_array()
        .and_then(|routes| routes.first().cloned())
}

/// Whether `route` (from [`kernel_route`]) is a blackhole.
pub fn is_blackhole(route: &Value) -> bool {
    route["type"] == "blackhole"
}

/// The `ipv4` or `ipv6` table of FRR's `show bgp ... unicast json`: prefix -> paths.
pub fn frr_prefixes(frr: &lab::Frr, ipv4: bool) -> Vec<String> {
    let family = if ipv4 { "ipv4" } else { "ipv6" };
    let routes = frr
        .vtysh_json(&format!("show bgp {family} unicast json"))
        .unwrap();
    routes["routes"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default()
}
