//! One CNI plugin run as a container runtime runs it (CNI specification 1.0, "Parameters"):
//! the verb, container, namespace, interface and plugin path in `CNI_*` environment
//! variables, the network config on stdin, the result or error JSON on stdout. Topology pods
//! ([`crate::topology::Pod`]) and every test that runs `wren-ipam` or `ptp` itself go
//! through [`CniInvocation`]; [`wren_ipam_config`] (`ptp` + `wren-ipam`) and [`wren_config`]
//! (`wren` + `wren-ipam`) are the network configs such tests give them.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::command::display;
use crate::error::{Error, Result};
use crate::prereq::cni_dir;

/// The namespace path given to an IPAM plugin run on its own: `wren-ipam` never enters the
/// pod's namespace, so it needs none to exist.
pub const NO_NETNS: &str = "/var/run/netns/none";

/// The interface name a runtime asks for by default.
pub const IFNAME: &str = "eth0";

/// What a runtime tells a plugin besides the network config. See the module documentation.
#[derive(Debug, Clone)]
pub struct CniInvocation {
    verb: String,
    container_id: String,
    netns: PathBuf,
    ifname: String,
    path: Vec<PathBuf>,
    args: Option<String>,
}

impl CniInvocation {
    /// `verb` (ADD, CHECK, DEL, VERSION) for container `container_id` whose namespace is at
    /// `netns`; interface [`IFNAME`] (as Kubernetes runtimes ask), plugins searched in [`cni_dir`].
    pub fn new(verb: &str, container_id: &str, netns: impl AsRef<Path>) -> CniInvocation {
        CniInvocation {
            verb: verb.to_owned(),
            container_id: container_id.to_owned(),
            netns: netns.as_ref().to_owned(),
            ifname: IFNAME.to_owned(),
            path: vec![cni_dir()],
            args: None,
        }
    }

    /// Names the pod as the kubelet does in `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`).
    pub fn pod(mut self, namespace: &str, name: &str) -> CniInvocation {
        self.args = Some(format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name}"
        ));
        self
    }

    /// The interface name asked for (`CNI_IFNAME`, default [`IFNAME`]).
    pub fn ifname(mut self, name: &str) -> CniInvocation {
        self.ifname = name.to_owned();
        self
    }

    /// The directories searched for delegated plugins (`CNI_PATH`), first match wins.
    pub fn path(mut self, dirs: Vec<PathBuf>) -> CniInvocation {
        self.path = dirs;
        self
    }

    /// Sets the `CNI_*` variables on `command` (which runs the plugin, directly or through
    /// `ip netns exec`).
    pub fn apply(&self, command: &mut Command) -> Result<()> {
        let path = std::env::join_paths(&self.path)
            .map_err(|e| Error::invalid(format!("CNI_PATH {:?}", self.path), e.to_string()))?;
        command
            .env("CNI_COMMAND", &self.verb)
            .env("CNI_CONTAINERID", &self.container_id)
            .env("CNI_NETNS", &self.netns)
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_PATH", path);
        if let Some(args) = &self.args {
            command.env("CNI_ARGS", args);
        }
        Ok(())
    }

    /// Starts `command` with the `CNI_*` variables, `config` written to its stdin, stdout and
    /// stderr piped; [`CniOutput::wait`] collects it.
    pub fn spawn(&self, mut command: Command, config: &[u8]) -> Result<Child> {
        self.apply(&mut command)?;
        let line = display(&command);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("CNI {} with `{line}`", self.verb), e))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A plugin that exits without reading its config is judged by its output.
            let _ = stdin.write_all(config);
        }
        Ok(child)
    }

    /// Runs `command` to the end (see [`CniInvocation::spawn`]).
    pub fn run(&self, command: Command, config: &[u8]) -> Result<CniOutput> {
        CniOutput::wait(self.spawn(command, config)?)
    }
}

/// A plugin run with an empty environment, as runtimes run plugins: nothing of the test's
/// environment leaks into it.
pub fn plugin_command(plugin: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(plugin);
    command.env_clear();
    command
}

/// What a plugin answered.
#[derive(Debug, Clone)]
pub struct CniOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CniOutput {
    /// Waits for a plugin started with [`CniInvocation::spawn`].
    pub fn wait(child: Child) -> Result<CniOutput> {
        let output = child
            .wait_with_output()
            .map_err(|e| Error::io("waiting for a CNI plugin", e))?;
        Ok(CniOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Stdout as JSON (the result, or the error on failure); `Null` when it printed nothing
    /// (DEL, CHECK).
    pub fn json(&self) -> Result<Value> {
        if self.stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.stdout).map_err(|e| {
            Error::invalid(
                "CNI plugin output",
                format!("not JSON ({e}): {:?}", self.stdout),
            )
        })
    }

    /// Stdout then stderr, for messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A `ptp` network with `wren-ipam` as its IPAM plugin, on `datastore` for `node`; with
/// `control_socket` the plugin tells that bgpd about each change. `ptp` puts a gateway
/// address on the host side, so `wren-ipam` reserves one per node (`"gateway": true`).
pub fn wren_ipam_config(datastore: &str, node: &str, control_socket: Option<&Path>) -> String {
    let mut ipam = ipam_config(datastore, node, control_socket);
    ipam["gateway"] = json!(true);
    json!({
        "cniVersion": "1.0.0",
        "name": "wren",
        "type": "ptp",
        "ipMasq": false,
        "ipam": ipam,
    })
    .to_string()
}

/// A `wren` network (the main plugin of the `cni` crate) with `wren-ipam`, on `datastore`
/// for `node`, the pod MTU read from `mtu_file`.
pub fn wren_config(
    datastore: &str,
    node: &str,
    control_socket: Option<&Path>,
    mtu_file: &Path,
) -> String {
    json!({
        "cniVersion": "1.1.0",
        "name": "wren",
        "type": "wren",
        "mtu_file": mtu_file,
        "ipam": ipam_config(datastore, node, control_socket),
    })
    .to_string()
}

fn ipam_config(datastore: &str, node: &str, control_socket: Option<&Path>) -> Value {
    let mut ipam = json!({ "type": "wren-ipam", "datastore": datastore, "node": node });
    if let Some(socket) = control_socket {
        ipam["control_socket"] = json!(socket);
    }
    ipam
}
