//! Deploying a [`Topology`] into namespaces: a [`Lab`] value that owns every namespace,
//! link, daemon and pod it made, and removes them all when dropped (also after a failed
//! deploy or a panicking test).
//!
//! Order of deployment: a namespace per node (named as containerlab names the container),
//! the management network (when nodes name `mgmt-ipv4`/`mgmt-ipv6` addresses), the links as
//! named in the file, each node's `exec:` commands (addresses, routes), the daemons (etcd
//! nodes first, then FRR, then Wren, so each finds what it needs), then every node's pods.
//! Tear-down runs in reverse.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::command;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::frr::Frr;
use crate::link::Veth;
use crate::netns::{NETNS_RUN_DIR, Netns};
use crate::prereq::{find_program, keep_files, open_dir, scratch_dir};
use crate::topology::cni::{Network, NodeContext, Pod};
use crate::topology::file::{Node, Topology};
use crate::topology::mgmt::Mgmt;
use crate::topology::node::{
    Apply, BGPD_CONF, CNI_CONF_DIR, Role, WREN_CONTROL_SOCKET, apiserver_url, bind_etc_wren,
    etcd_client_url, find_wren_binary, node_command, pod_count,
};
use crate::topology::state::{DaemonState, LinkState, NodeState, PodState, State};
use crate::wait::TIMEOUT;

/// How long a kube-apiserver node may take to become ready (it installs its built-in
/// resources and roles into an empty etcd first).
const KUBE_APISERVER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// A deployed topology. See the module documentation.
#[derive(Debug)]
pub struct Lab {
    topology: Topology,
    links: Vec<Veth>,
    nodes: Vec<LabNode>,
    // After the nodes: its namespace holds the other ends of their eth0.
    mgmt: Option<Mgmt>,
    // Last: removed after everything inside it has stopped.
    dir: LabDir,
}

#[derive(Debug)]
enum LabDir {
    Temp(TempDir),
    Fixed(PathBuf),
}

/// One deployed node.
#[derive(Debug)]
pub struct LabNode {
    name: String,
    role: Role,
    context: NodeContext,
    // Drop order: pods (CNI DEL may need the node's daemons), daemons, FRR, namespace.
    pods: Vec<Pod>,
    daemons: Vec<Daemon>,
    frr: Option<Frr>,
    netns: Netns,
}

/// A node's plan, checked before anything is created.
struct Plan<'a> {
    node: &'a Node,
    role: Role,
    pods: u32,
    network: Option<Network>,
}

impl Topology {
    /// Deploys the topology with a temporary lab directory (removed on drop unless
    /// `WREN_LAB_KEEP=1`).
    pub fn deploy(&self) -> Result<Lab> {
        let dir = scratch_dir(&format!("wren-lab-{}-", self.name))
            .map_err(|e| Error::io(format!("creating a directory for lab {}", self.name), e))?;
        self.deploy_into(LabDir::Temp(dir))
    }

    /// Deploys the topology with `dir` as the lab directory (the runner uses
    /// /run/wren-lab/NAME).
    pub fn deploy_in(&self, dir: &Path) -> Result<Lab> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        self.deploy_into(LabDir::Fixed(dir.to_owned()))
    }

    fn deploy_into(&self, dir: LabDir) -> Result<Lab> {
        let plans = self.plan()?;
        for plan in &plans {
            let netns = self.netns_name(&plan.node.name);
            if Path::new(NETNS_RUN_DIR).join(&netns).exists() {
                return Err(Error::invalid(
                    format!("lab {}", self.name),
                    format!(
                        "namespace {netns} exists already: is the lab up? (wren-lab down {})",
                        self.path.display()
                    ),
                ));
            }
        }
        let mut lab = Lab {
            topology: self.clone(),
            links: Vec::new(),
            nodes: Vec::new(),
            mgmt: None,
            dir,
        };
        let nodes_dir = lab.dir().join("nodes");
        open_dir(&nodes_dir)
            .map_err(|e| Error::io(format!("creating {}", nodes_dir.display()), e))?;
        for plan in &plans {
            let name = &plan.node.name;
            let node_dir = lab.dir().join("nodes").join(name);
            let netns = Netns::named(&self.netns_name(name), &node_dir)?;
            let etc = bind_etc_wren(plan.node, &node_dir);
            lab.nodes.push(LabNode {
                name: name.clone(),
                role: plan.role.clone(),
                context: NodeContext {
                    netns: netns.name().to_owned(),
                    dir: node_dir,
                    env: plan.node.env.clone(),
                },
                pods: Vec::new(),
                daemons: Vec::new(),
                frr: None,
                netns,
            });
            etc?;
        }
        let node_netns: Vec<&Netns> = lab.nodes.iter().map(|n| &n.netns).collect();
        let mgmt = Mgmt::build(self, &node_netns, &lab.dir().join("mgmt"))?;
        lab.mgmt = mgmt;
        for link in &self.links {
            let a = lab.node(&link.a.0)?;
            let b = lab.node(&link.b.0)?;
            let veth = Veth::new(&a.netns, &link.a.1, &b.netns, &link.b.1)?;
            if let Some(mtu) = link.mtu {
                a.netns.iface(&link.a.1).mtu(mtu)?;
                b.netns.iface(&link.b.1).mtu(mtu)?;
            }
            lab.links.push(veth);
        }
        for (plan, node) in plans.iter().zip(&lab.nodes) {
            for line in &plan.node.exec {
                node.exec(&["sh", "-c", line]).map_err(|e| {
                    Error::invalid(format!("node {}: exec {line:?}", node.name), e.to_string())
                })?;
            }
        }
        let mut order: Vec<usize> = (0..lab.nodes.len()).collect();
        order.sort_by_key(|&index| lab.nodes[index].role.start_rank());
        for index in order {
            lab.nodes[index].start_services()?;
        }
        for (plan, node) in plans.iter().zip(lab.nodes.iter_mut()) {
            if let Some(network) = &plan.network {
                for index in 1..=plan.pods {
                    let pod_name = pod_netns_name(&node.context.netns, index);
                    let pod_dir = node.context.dir.join("pods").join(format!("pod{index}"));
                    node.pods
                        .push(Pod::add(&pod_name, &pod_dir, network, &node.context)?);
                }
            }
        }
        Ok(lab)
    }

    fn plan(&self) -> Result<Vec<Plan<'_>>> {
        self.nodes
            .iter()
            .map(|node| {
                let role = Role::of(node)?;
                let pods = pod_count(node)?;
                let network = if pods == 0 {
                    None
                } else {
                    let bind = node
                        .binds
                        .iter()
                        .find(|b| b.target.starts_with(CNI_CONF_DIR))
                        .ok_or_else(|| {
                            Error::invalid(
                                format!("node {}", node.name),
                                format!(
                                    "asks for pods but binds no CNI config under {CNI_CONF_DIR}"
                                ),
                            )
                        })?;
                    Some(Network::load(&bind.source)?)
                };
                Ok(Plan {
                    node,
                    role,
                    pods,
                    network,
                })
            })
            .collect()
    }
}

/// The namespace name of pod `index` (from 1) of a node.
pub fn pod_netns_name(node_netns: &str, index: u32) -> String {
    format!("{node_netns}-pod{index}")
}

impl Lab {
    /// The lab's name (from the topology file).
    pub fn name(&self) -> &str {
        &self.topology.name
    }

    /// The topology it was deployed from.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The lab directory (node directories with configs, sockets and logs).
    pub fn dir(&self) -> &Path {
        match &self.dir {
            LabDir::Temp(dir) => dir.path(),
            LabDir::Fixed(dir) => dir,
        }
    }

    /// Every node, in the file's (alphabetical) order.
    pub fn nodes(&self) -> &[LabNode] {
        &self.nodes
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Result<&LabNode> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            Error::invalid(
                format!("lab {}", self.topology.name),
                format!("no node {name:?}"),
            )
        })
    }

    /// A node by name, to restart its daemons ([`LabNode::daemons_mut`]).
    pub fn node_mut(&mut self, name: &str) -> Result<&mut LabNode> {
        let lab = self.topology.name.clone();
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::invalid(format!("lab {lab}"), format!("no node {name:?}")))
    }

    /// A node's namespace.
    pub fn netns(&self, node: &str) -> Result<&Netns> {
        Ok(&self.node(node)?.netns)
    }

    /// The management network's namespace, when the topology has one.
    pub fn mgmt_netns(&self) -> Option<&Netns> {
        self.mgmt.as_ref().map(Mgmt::netns)
    }

    /// A node's FRR (for FRR nodes).
    pub fn frr(&self, node: &str) -> Result<&Frr> {
        self.node(node)?
            .frr
            .as_ref()
            .ok_or_else(|| Error::invalid(format!("node {node}"), "is not an FRR node"))
    }

    /// Runs a command in a node's context (see [`crate::topology::node`]); returns stdout.
    pub fn exec<S: AsRef<OsStr>>(&self, node: &str, args: &[S]) -> Result<String> {
        self.node(node)?.exec(args)
    }

    /// Leaves everything running and records it in `DIR/state.json` (for `wren-lab up`).
    pub fn persist(mut self) -> Result<State> {
        let state = State {
            name: self.topology.name.clone(),
            topology: self.topology.path.clone(),
            dir: self.dir().to_owned(),
            nodes: self.nodes.iter().map(LabNode::state).collect(),
            links: self
                .topology
                .links
                .iter()
                .map(|link| LinkState {
                    a_netns: self.topology.netns_name(&link.a.0),
                    a_interface: link.a.1.clone(),
                    b_netns: self.topology.netns_name(&link.b.0),
                    b_interface: link.b.1.clone(),
                })
                .chain(
                    self.mgmt
                        .iter()
                        .flat_map(|m| m.link_states().iter().cloned()),
                )
                .collect(),
        };
        state.write()?;
        for link in self.links.drain(..) {
            link.persist();
        }
        for node in self.nodes.drain(..) {
            node.persist();
        }
        if let Some(mgmt) = self.mgmt.take() {
            mgmt.persist();
        }
        if let LabDir::Temp(dir) = &mut self.dir {
            dir.disable_cleanup(true);
        }
        Ok(state)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Every pod first, while every daemon (the datastore among them) still runs for
        // CNI DEL; then the nodes in reverse order of start (Wren, FRR, etcd last), each
        // dropping its daemons and then its namespace.
        for node in &mut self.nodes {
            node.pods.clear();
        }
        self.nodes.sort_by_key(|node| node.role.start_rank());
        while let Some(node) = self.nodes.pop() {
            drop(node);
        }
        drop(self.mgmt.take());
        if let LabDir::Temp(dir) = &mut self.dir
            && keep_files()
        {
            dir.disable_cleanup(true);
        }
    }
}

impl LabNode {
    /// The node's name in the topology.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What runs in it.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// Its namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Its FRR, for FRR nodes.
    pub fn frr(&self) -> Option<&Frr> {
        self.frr.as_ref()
    }

    /// Its daemons other than FRR (Wren's bgpd).
    pub fn daemons(&self) -> &[Daemon] {
        &self.daemons
    }

    /// Its daemons other than FRR, to kill and restart them (fault tests).
    pub fn daemons_mut(&mut self) -> &mut [Daemon] {
        &mut self.daemons
    }

    /// Its pods.
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// A command running `program` in the node context.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        node_command(
            &self.context.netns,
            &self.context.dir,
            &self.context.env,
            program,
        )
    }

    /// Runs `args` in the node context; returns stdout.
    pub fn exec<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String> {
        let (program, rest) = args.split_first().ok_or_else(|| {
            Error::invalid(format!("exec in node {}", self.name), "empty command")
        })?;
        command::run(self.command(program).args(rest))
    }

    fn start_services(&mut self) -> Result<()> {
        match &self.role {
            Role::Frr { config, daemons } => {
                let text = std::fs::read_to_string(config).map_err(|e| {
                    Error::io(
                        format!("reading {} (node {})", config.display(), self.name),
                        e,
                    )
                })?;
                let daemons: Vec<&str> = daemons.iter().map(String::as_str).collect();
                self.frr = Some(Frr::start_daemons(&self.netns, &text, &daemons)?);
            }
            Role::Wren {
                bgpd_config: Some(config),
            } => {
                let bgpd = find_wren_binary("bgpd").ok_or_else(|| {
                    Error::invalid(
                        format!("node {}", self.name),
                        "bgpd not found (build it with cargo build -p bgpd, or set WREN_BIN_DIR)",
                    )
                })?;
                let mut command = self.command(&bgpd);
                command.arg("--config").arg(config);
                let daemon = self.netns.spawn_command("bgpd", command)?;
                if let Some(socket) = control_socket(config, &self.context.dir)? {
                    daemon.wait_until(
                        TIMEOUT,
                        &format!("control socket {}", socket.display()),
                        || socket.exists(),
                    )?;
                }
                self.daemons.push(daemon);
            }
            Role::Etcd => {
                let etcd = find_program("etcd").ok_or_else(|| {
                    Error::invalid(
                        format!("node {}", self.name),
                        "etcd not found (apt-get install etcd-server)",
                    )
                })?;
                let mut command = self.command(&etcd);
                command.arg("--data-dir").arg(self.context.dir.join("etcd"));
                let daemon = self.netns.spawn_command("etcd", command)?;
                let url = etcd_client_url(&self.context.env);
                daemon.wait_for(TIMEOUT, &format!("etcd healthy at {url}"), || {
                    command::run(self.command("etcdctl").args([
                        "--endpoints",
                        &url,
                        "--command-timeout=2s",
                        "endpoint",
                        "health",
                    ]))
                })?;
                self.daemons.push(daemon);
            }
            Role::KubeApiserver { args, apply } => {
                let what = || format!("node {}", self.name);
                let binary =
                    crate::kube_build::apiserver_binary().map_err(|e| Error::invalid(what(), e))?;
                let curl = find_program("curl").ok_or_else(|| {
                    Error::invalid(what(), "curl not found (apt-get install curl)")
                })?;
                let mut command = self.command(&binary);
                command
                    .args(args)
                    .arg("--cert-dir")
                    .arg(self.context.dir.join("kube-apiserver"));
                let daemon = self.netns.spawn_command("kube-apiserver", command)?;
                let url = apiserver_url(args).ok_or_else(|| {
                    Error::invalid(
                        format!("node {}: cmd", self.name),
                        "a kube-apiserver node needs --advertise-address or --bind-address",
                    )
                })?;
                // /readyz is open to anonymous clients (system:public-info-viewer), which
                // kubectl cannot be (with no credentials it asks for a user name); the
                // certificate is the one the API server generated at start.
                daemon.wait_for(
                    KUBE_APISERVER_TIMEOUT,
                    &format!("kube-apiserver ready at {url}"),
                    || {
                        command::run(
                            self.command(&curl)
                                .args([
                                    "--silent",
                                    "--show-error",
                                    "--fail",
                                    "--insecure",
                                    "--max-time",
                                    "5",
                                ])
                                .arg(format!("{url}/readyz")),
                        )
                    },
                )?;
                self.daemons.push(daemon);
                if let Some(apply) = apply {
                    self.apply(apply)?;
                }
            }
            Role::Wren { bgpd_config: None } | Role::Plain => {}
        }
        Ok(())
    }

    /// Applies a kube-apiserver node's manifests in order, each time waiting until every
    /// CustomResourceDefinition is Established (so the next manifest may use them).
    fn apply(&self, apply: &Apply) -> Result<()> {
        let kubectl = crate::kube_build::kubectl_binary()
            .map_err(|e| Error::invalid(format!("node {}", self.name), e))?;
        let kubectl = |args: &[&OsStr]| {
            command::run(
                self.command(&kubectl)
                    .arg("--kubeconfig")
                    .arg(&apply.kubeconfig)
                    .args(args),
            )
        };
        for manifest in &apply.manifests {
            let what = || format!("node {}: applying {}", self.name, manifest.display());
            kubectl(&["apply".as_ref(), "-f".as_ref(), manifest.as_os_str()])
                .map_err(|e| Error::invalid(what(), e.to_string()))?;
            let crds = kubectl(&["get", "customresourcedefinitions", "-o", "name"].map(OsStr::new))
                .map_err(|e| Error::invalid(what(), e.to_string()))?;
            if crds.trim().is_empty() {
                continue;
            }
            kubectl(
                &[
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    "customresourcedefinitions",
                    "--all",
                ]
                .map(OsStr::new),
            )
            .map_err(|e| Error::invalid(what(), e.to_string()))?;
        }
        Ok(())
    }

    fn state(&self) -> NodeState {
        let mut daemons: Vec<DaemonState> = self
            .frr
            .iter()
            .flat_map(|frr| frr.daemons())
            .map(DaemonState::of)
            .collect();
        daemons.extend(self.daemons.iter().map(DaemonState::of));
        NodeState {
            name: self.name.clone(),
            netns: self.context.netns.clone(),
            dir: self.context.dir.clone(),
            role: self.role.name().to_owned(),
            daemons,
            pods: self
                .pods
                .iter()
                .map(|pod| PodState {
                    netns: pod.netns().name().to_owned(),
                    addresses: pod.addresses(),
                })
                .collect(),
        }
    }

    fn persist(mut self) {
        for pod in self.pods.drain(..) {
            pod.persist();
        }
        for daemon in self.daemons.drain(..) {
            daemon.detach();
        }
        if let Some(frr) = self.frr.take() {
            frr.detach();
        }
        self.netns.release();
    }
}

/// Where the node's bgpd puts its control socket on the host: its config's
/// `[control] socket` (default /run/wren/bgpd.sock) seen through the node's /run/wren bind.
/// `None` when the socket is elsewhere (nothing to wait for).
fn control_socket(config: &Path, node_dir: &Path) -> Result<Option<PathBuf>> {
    let what = || format!("{} ({BGPD_CONF})", config.display());
    let text = std::fs::read_to_string(config).map_err(|e| Error::io(what(), e))?;
    let value: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::invalid(what(), e.to_string()))?;
    let socket = value
        .get("control")
        .and_then(|c| c.get("socket"))
        .and_then(|s| s.as_str())
        .unwrap_or(WREN_CONTROL_SOCKET);
    Ok(socket
        .strip_prefix("/run/wren/")
        .map(|rest| node_dir.join("wren").join(rest)))
}

/// Removes a lab deployed from `topology` whatever state it is in (also after a crash of the
/// process that deployed it): CNI DEL for every pod, every namespace deleted (which kills the
/// processes inside), and the lab directory `dir` removed. Returns what was removed.
pub fn teardown(topology: &Topology, dir: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    let exists = |name: &str| Path::new(NETNS_RUN_DIR).join(name).exists();
    for node in &topology.nodes {
        let netns = topology.netns_name(&node.name);
        let context = NodeContext {
            netns: netns.clone(),
            dir: dir.join("nodes").join(&node.name),
            env: node.env.clone(),
        };
        let pods = pod_count(node).unwrap_or(0);
        let network = node
            .binds
            .iter()
            .find(|b| b.target.starts_with(CNI_CONF_DIR))
            .and_then(|b| Network::load(&b.source).ok());
        for index in 1..=pods {
            let pod = pod_netns_name(&netns, index);
            if !exists(&pod) {
                continue;
            }
            if let Some(network) = &network
                && exists(&netns)
                && let Err(error) = crate::topology::cni::del_detached(&pod, network, &context)
            {
                errors.push(error.to_string());
            }
            match crate::netns::delete(&pod) {
                Ok(()) => removed.push(format!("namespace {pod}")),
                Err(error) => errors.push(error.to_string()),
            }
        }
    }
    let names = topology
        .nodes
        .iter()
        .map(|node| topology.netns_name(&node.name))
        .chain([topology.mgmt_netns_name()]);
    for netns in names {
        if exists(&netns) {
            match crate::netns::delete(&netns) {
                Ok(()) => removed.push(format!("namespace {netns}")),
                Err(error) => errors.push(error.to_string()),
            }
        }
    }
    if dir.exists() {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => removed.push(format!("directory {}", dir.display())),
            Err(error) => errors.push(format!("removing {}: {error}", dir.display())),
        }
    }
    if errors.is_empty() {
        Ok(removed)
    } else {
        Err(Error::invalid(
            format!("tearing down lab {}", topology.name),
            errors.join("; "),
        ))
    }
}
