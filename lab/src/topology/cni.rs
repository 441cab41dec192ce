//! Pods: extra namespaces attached to a node through CNI, as the kubelet's container runtime
//! would do it. The node binds a CNI network config under /etc/cni/net.d/ (a `.conflist`,
//! normally `wren` with `wren-ipam`, or a `.conf` with one plugin such as `ptp`), and the label `wren.io/pods: "N"` asks for N pods. Each plugin runs in the
//! node context (so `wren-ipam` reaches the node's own daemons) as [`crate::cni`] runs
//! plugins. Tests attach pods to their own namespaces the same way (a [`NodeContext`] with the
//! namespace's name and directory, a [`Network`] parsed from text). Dropping a [`Pod`] runs DEL (releasing its address) and deletes its namespace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cni::CniInvocation;
use crate::command;
use crate::error::{Error, Result};
use crate::names::unique_name;
use crate::netns::Netns;
use crate::route::Family;
use crate::topology::node::{cni_path, find_wren_binary, node_command};
use crate::wait::TIMEOUT;

/// The Kubernetes namespace topology pods are named in (`CNI_ARGS`), with the pod's
/// network namespace as its name.
pub const POD_NAMESPACE: &str = "default";

/// A CNI network: its parsed config.
#[derive(Debug, Clone)]
pub struct Network {
    name: String,
    version: String,
    plugins: Vec<Value>,
}

impl Network {
    /// Reads a `.conf` or `.conflist`.
    pub fn load(path: &Path) -> Result<Network> {
        let what = format!("CNI config {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(what.as_str(), e))?;
        Network::parse(&what, &text)
    }

    /// A `.conf` or `.conflist` given as text; `what` names it in errors.
    pub fn parse(what: &str, text: &str) -> Result<Network> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| Error::invalid(what, e.to_string()))?;
        let name = value["name"]
            .as_str()
            .ok_or_else(|| Error::invalid(what, "no \"name\""))?
            .to_owned();
        let version = value["cniVersion"].as_str().unwrap_or("1.0.0").to_owned();
        let plugins = match value["plugins"].as_array() {
            Some(plugins) => plugins.clone(),
            None => vec![value.clone()],
        };
        if plugins.is_empty() || plugins.iter().any(|p| p["type"].as_str().is_none()) {
            return Err(Error::invalid(what, "every plugin needs a \"type\""));
        }
        Ok(Network {
            name,
            version,
            plugins,
        })
    }

    /// The network's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Where a pod runs: the node's namespace, directory and environment.
#[derive(Debug, Clone)]
pub struct NodeContext {
    pub netns: String,
    pub dir: PathBuf,
    pub env: BTreeMap<String, String>,
}

/// A pod namespace attached to its node. See the module documentation.
#[derive(Debug)]
pub struct Pod {
    network: Network,
    node: NodeContext,
    result: Value,
    attached: bool,
    // Last: the namespace goes after DEL has run.
    netns: Netns,
}

impl Pod {
    /// Creates namespace `name` (with scratch directory `dir`) and runs CNI ADD for it.
    pub fn add(name: &str, dir: &Path, network: &Network, node: &NodeContext) -> Result<Pod> {
        let netns = Netns::named(name, dir)?;
        let mut pod = Pod {
            network: network.clone(),
            node: node.clone(),
            result: Value::Null,
            attached: true,
            netns,
        };
        // From here a failure drops `pod`, which runs DEL for whatever ADD did.
        let mut previous: Option<Value> = None;
        for plugin in &network.plugins {
            let config = pod.plugin_config(plugin, previous.as_ref());
            let stdout = pod.add_until_ready(plugin, &config)?;
            previous = Some(command::parse_json(
                &format!("CNI ADD {} for pod {name}", plugin["type"]),
                &stdout,
            )?);
        }
        pod.result = previous.unwrap_or(Value::Null);
        Ok(pod)
    }

    /// A pod of a test's own node namespace `node`, without a lab around it: a namespace
    /// named uniquely with its scratch directory in the node's, and ADD of the network
    /// `config` (the text of a `.conf` or `.conflist`) run in the node's namespace.
    pub fn attach(node: &Netns, config: &str) -> Result<Pod> {
        let network = Network::parse("CNI config", config)?;
        let context = NodeContext {
            netns: node.name().to_owned(),
            dir: node.dir().to_owned(),
            env: BTreeMap::new(),
        };
        let name = unique_name("pod");
        Pod::add(
            &name,
            &node.dir().join("pods").join(&name),
            &network,
            &context,
        )
    }

    /// The pod's namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The CNI result of ADD (`ips`, `interfaces`, `routes`).
    pub fn result(&self) -> &Value {
        &self.result
    }

    /// The pod's addresses (without prefix length) from the CNI result.
    pub fn addresses(&self) -> Vec<String> {
        self.result["ips"]
            .as_array()
            .map(|ips| {
                ips.iter()
                    .filter_map(|ip| ip["address"].as_str())
                    .map(|a| a.split('/').next().unwrap_or(a).to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first address, if CNI gave one.
    pub fn address(&self) -> Option<String> {
        self.addresses().into_iter().next()
    }

    /// The first address of `family`, if CNI gave one.
    pub fn address_in(&self, family: Family) -> Option<String> {
        self.addresses()
            .into_iter()
            .find(|address| Family::of(address) == family)
    }

    /// Runs CNI DEL and deletes the namespace, reporting errors.
    pub fn delete(mut self) -> Result<()> {
        let result = self.del();
        self.attached = false;
        result
    }

    /// Leaves the pod in place after the guard is gone (for `wren-lab up`); returns its
    /// namespace name.
    pub fn persist(mut self) -> String {
        self.attached = false;
        self.netns.release();
        self.netns.name().to_owned()
    }

    fn del(&self) -> Result<()> {
        let mut first_error = None;
        for plugin in self.network.plugins.iter().rev() {
            let config = self.plugin_config(plugin, None);
            if let Err(error) = self.invoke("DEL", plugin, &config) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// ADD, run again while the plugin answers "try again later" (CNI error 11: `wren`
    /// before its node's bgpd has written the pod MTU), for at most [`TIMEOUT`], as a
    /// kubelet retries a sandbox whose network setup failed.
    fn add_until_ready(&self, plugin: &Value, config: &Value) -> Result<String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.invoke("ADD", plugin, config) {
                Err(error) if is_try_again_later(&error) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                outcome => return outcome,
            }
        }
    }

    fn plugin_config(&self, plugin: &Value, previous: Option<&Value>) -> Value {
        let mut config = plugin.clone();
        config["name"] = json!(self.network.name);
        config["cniVersion"] = json!(self.network.version);
        if let Some(previous) = previous {
            config["prevResult"] = previous.clone();
        }
        config
    }

    fn invoke(&self, verb: &str, plugin: &Value, config: &Value) -> Result<String> {
        let kind = plugin["type"].as_str().unwrap_or_default();
        let path = cni_path();
        let binary = path
            .iter()
            .map(|dir| dir.join(kind))
            .find(|p| p.is_file())
            .or_else(|| find_wren_binary(kind))
            .ok_or_else(|| {
                Error::invalid(
                    format!("CNI plugin {kind}"),
                    format!("not found in {path:?}"),
                )
            })?;
        let mut command = node_command(&self.node.netns, &self.node.dir, &self.node.env, &binary);
        CniInvocation::new(verb, self.netns.name(), self.netns.path())
            .pod(POD_NAMESPACE, self.netns.name())
            .path(path)
            .apply(&mut command)?;
        let input =
            serde_json::to_vec(config).map_err(|e| Error::invalid("CNI config", e.to_string()))?;
        command::run_input(&mut command, &input).map_err(|error| match error {
            // Plugins report errors as JSON on stdout; run() already put stdout in the message
            // when stderr was empty.
            Error::Command { stderr, .. } => Error::invalid(
                format!(
                    "CNI {verb} {kind} for pod {} on {}",
                    self.netns.name(),
                    self.node.netns
                ),
                stderr,
            ),
            other => other,
        })
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if self.attached
            && let Err(error) = self.del()
        {
            eprintln!("CNI DEL for pod {}: {error}", self.netns.name());
        }
    }
}

/// True when a plugin's failure is the CNI error "try again later" (code 11).
fn is_try_again_later(error: &Error) -> bool {
    let Error::Invalid { detail, .. } = error else {
        return false;
    };
    serde_json::from_str::<Value>(detail.trim()).is_ok_and(|answer| answer["code"] == 11)
}

/// Runs CNI DEL for a pod of a deployed lab from another process (`wren-lab down`), without
/// a guard. Errors are returned for the caller to report.
pub fn del_detached(pod_netns: &str, network: &Network, node: &NodeContext) -> Result<()> {
    let netns = Netns::open(pod_netns, &node.dir)?;
    let pod = Pod {
        network: network.clone(),
        node: node.clone(),
        result: Value::Null,
        attached: false,
        netns,
    };
    pod.del()
}
