//! A node for the plugin's tests: a network namespace (the plugin runs in it, as a
//! runtime on that node would run it), a SQLite IPAM datastore with the given pools, an
//! MTU file as bgpd writes it, and pods (namespaces) attached through `wren` with
//! `lab::cni::CniInvocation`. `Node::new` checks the lab first (`lab::require!`), so a
//! test starts with it. Everything is removed on drop.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ipam::store::SqliteStore;
use ipam::{Ipam, Pool};
use lab::cni::{CniInvocation, CniOutput, wren_config};
use serde_json::Value;

/// The MTU the tests' bgpd "writes".
pub const MTU: u32 = 1440;

pub struct Node {
    pub netns: lab::Netns,
    pub url: String,
    pub mtu_file: PathBuf,
    pub name: String,
    pub ipam_dir: PathBuf,
    runtime: tokio::runtime::Runtime,
    ipam: Ipam<SqliteStore>,
    dir: tempfile::TempDir,
    _ready: lab::Ready,
}

impl Node {
    /// A node with `pools` (CIDRs) in its datastore; `None` when the lab is missing (see
    /// `lab::require!`).
    pub fn new(pools: &[&str]) -> Option<Node> {
        let ready = lab::require!(Root)?;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ipam.db", dir.path().display());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ipam = runtime.block_on(async {
            let ipam = Ipam::new(SqliteStore::open(&url).await.unwrap());
            for pool in pools {
                ipam.add_pool(Pool::new(pool.parse().unwrap()))
                    .await
                    .unwrap();
            }
            ipam
        });
        let mtu_file = dir.path().join("mtu");
        std::fs::write(&mtu_file, format!("{MTU}\n")).unwrap();
        let netns = lab::Netns::new("wren-node").unwrap();
        netns.lo_up().unwrap();
        let ipam_binary = lab::fixture::wren_binary("wren-ipam");
        Some(Node {
            netns,
            url,
            mtu_file,
            name: String::from("node-a"),
            ipam_dir: ipam_binary.parent().unwrap().to_owned(),
            runtime,
            ipam,
            dir,
            _ready: ready,
        })
    }

    /// A scratch path of this node.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The node's `wren` network configuration (bgpd's control socket: none).
    pub fn config(&self) -> String {
        wren_config(&self.url, &self.name, Some(Path::new("")), &self.mtu_file)
    }

    /// The configuration with `edit` applied to its JSON.
    pub fn config_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut value: Value = serde_json::from_str(&self.config()).unwrap();
        edit(&mut value);
        value.to_string()
    }

    /// Runs `wren` in the node's namespace for `verb`, the way a runtime runs it.
    pub fn invoke(&self, invocation: CniInvocation, config: &str) -> CniOutput {
        let invocation = invocation.path(vec![self.ipam_dir.clone()]);
        self.invoke_with_path(invocation, config)
    }

    /// Like [`Node::invoke`] with the invocation's own `CNI_PATH`.
    pub fn invoke_with_path(&self, invocation: CniInvocation, config: &str) -> CniOutput {
        let ip = lab::find_program("ip").unwrap();
        let mut command = lab::cni::plugin_command(ip);
        command
            .args(["netns", "exec", self.netns.name()])
            .arg(env!("CARGO_BIN_EXE_wren"));
        invocation.run(command, config.as_bytes()).unwrap()
    }

    /// ADD for `pod` (namespace `default`, pod name = the namespace's name), which must
    /// succeed; returns the result.
    pub fn add(&self, pod: &lab::Netns) -> Value {
        let output = self.invoke(invocation("ADD", pod), &self.config());
        assert!(output.success, "ADD failed: {}", output.text());
        output.json().unwrap()
    }

    /// DEL for `pod`, which must succeed.
    pub fn del(&self, pod: &lab::Netns) {
        let output = self.invoke(invocation("DEL", pod), &self.config());
        assert!(output.success, "DEL failed: {}", output.text());
    }

    /// Nothing of `pod` is left: no address handed out, no host link.
    pub fn assert_nothing_of(&self, pod: &lab::Netns) {
        assert_eq!(self.in_use(), 0, "{:?}", self.handles());
        let link = host_link(pod);
        assert!(
            self.netns.ip(&["link", "show", "dev", &link]).is_err(),
            "{link} is left"
        );
    }

    /// How many addresses the datastore has handed out.
    pub fn in_use(&self) -> usize {
        let snapshot = self.runtime.block_on(self.ipam.snapshot()).unwrap();
        snapshot
            .blocks
            .iter()
            .map(|b| b.value.allocations.len())
            .sum()
    }

    /// The handles holding addresses.
    pub fn handles(&self) -> Vec<String> {
        let snapshot = self.runtime.block_on(self.ipam.snapshot()).unwrap();
        snapshot
            .blocks
            .iter()
            .flat_map(|b| b.value.allocations.values().map(|a| a.handle.clone()))
            .collect()
    }

    /// `ip -j -n NODE ARGS...`.
    pub fn ip(&self, args: &[&str]) -> Value {
        self.netns.ip_json(args).unwrap()
    }

    /// A sysctl of the node (`net.ipv4.ip_forward` as `ipv4/ip_forward`).
    pub fn sysctl(&self, key: &str) -> String {
        sysctl(&self.netns, key)
    }
}

/// A sysctl under /proc/sys/net of a namespace.
pub fn sysctl(netns: &lab::Netns, key: &str) -> String {
    netns
        .exec(&["cat", &format!("/proc/sys/net/{key}")])
        .unwrap()
        .trim()
        .to_owned()
}

/// A pod namespace has no interface but `lo`.
pub fn assert_only_loopback(pod: &lab::Netns) {
    let links = pod.ip_json(&["link", "show"]).unwrap();
    assert_eq!(links.as_array().unwrap().len(), 1, "{links}");
}

/// A pod namespace (its name is the container id: not `wren-...`, which wren-ipam keeps
/// for Wren's own handles).
pub fn pod() -> lab::Netns {
    lab::Netns::new("pod").unwrap()
}

/// An invocation for `pod`: container id and pod name are the namespace's name.
pub fn invocation(verb: &str, pod: &lab::Netns) -> CniInvocation {
    CniInvocation::new(verb, pod.name(), pod.path()).pod("default", pod.name())
}

/// The host link's name for a pod of [`invocation`].
pub fn host_link(pod: &lab::Netns) -> String {
    cni::config::host_link_name(&format!("default.{}", pod.name()))
}

/// The addresses (without prefix) of a result.
pub fn addresses(result: &Value) -> Vec<String> {
    result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| {
            let text = ip["address"].as_str().unwrap();
            text.split('/').next().unwrap().to_owned()
        })
        .collect()
}

/// Runs `command`, failing the test with its output when it fails.
pub fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{command:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The error object of a failed invocation: (code, msg).
pub fn error(output: &CniOutput) -> (u64, String) {
    assert!(!output.success, "expected a failure, got {}", output.text());
    let json = output.json().unwrap();
    (
        json["code"].as_u64().unwrap(),
        json["msg"].as_str().unwrap().to_owned(),
    )
}
