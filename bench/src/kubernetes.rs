//! The Kubernetes side of the `k8s-join` scenario (issue 14): a real control plane (etcd
//! and kube-apiserver, [`lab::kube::ControlPlane`]) in the generator namespace, one segment
//! every node shares (a bridge there), Wren's bgpd on the Kubernetes datastore in
//! namespaces of its own, and the Node objects, created and deleted through the API with a
//! kube client from threads in the generator namespace (so the time of a create call is
//! the request's, not a kubectl start-up).
//!
//! Addresses, all in 10.251.0.0/16 (the slots of `topology` use 10.1–10.250): real node
//! `j` is 10.251.0.(1 + j) on `d0` of its namespace, the API server 10.251.0.254 and
//! simulated node `i` 10.251.(1 + i / 250).(1 + i % 250), both on the bridge, where the
//! generator's peers bind. The control plane runs on every CPU the harness has (it
//! stands for the cluster's API server elsewhere), the real bgpd on the daemon CPU.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use lab::kube::ControlPlane;
use lab::{Netns, Veth};

use crate::fibwatch::FibWatch;
use crate::routelog::RouteLog;
use crate::system;

/// The bridge in the generator namespace.
const BRIDGE: &str = "kjbr";
/// The API server's address on the bridge.
const APISERVER: Ipv4Addr = Ipv4Addr::new(10, 251, 0, 254);
/// The pool the real nodes claim their blocks from.
pub const POOL: &str = "10.244.0.0/16";
/// The real nodes' AS (one AS: iBGP among them).
pub const REAL_ASN: u32 = 64512;
/// Simulated nodes at most (the bridge's addresses).
pub const MAX_SIMULATED: usize = 249 * 250;
/// Time allowed for a bgpd to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Real node `j`'s address.
pub fn real_address(j: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 251, 0, 1 + j.min(200) as u8)
}

/// Simulated node `i`'s address.
pub fn simulated_address(i: usize) -> Ipv4Addr {
    let i = i.min(MAX_SIMULATED - 1);
    Ipv4Addr::new(10, 251, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

/// The control plane, the bridge and a client. Dropping it stops the control plane and
/// deletes the bridge.
pub struct Cluster {
    // Dropped in this order: the client and its runtime before the API server.
    client: kube::Client,
    runtime: tokio::runtime::Runtime,
    control_plane: ControlPlane,
    // Every request is made from a thread in here, where the API server is.
    generator: Netns,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("api_server", &self.control_plane.url())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Makes the bridge in `generator` with the API server's address and `simulated`
    /// simulated nodes' addresses, starts the control plane there and applies the shipped
    /// manifests (deploy/crds.yaml, deploy/wren.yaml).
    pub fn start(generator: &Netns, simulated: usize) -> Result<Cluster> {
        if simulated > MAX_SIMULATED {
            bail!("{simulated} simulated nodes do not fit (at most {MAX_SIMULATED})");
        }
        generator.lo_up()?;
        generator.ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        let mut lines = vec![
            format!("link set {BRIDGE} up"),
            format!("addr add {APISERVER}/16 dev {BRIDGE}"),
        ];
        lines.extend(
            (0..simulated).map(|i| format!("addr add {}/16 dev {BRIDGE}", simulated_address(i))),
        );
        let made = system::ip_batch(generator.name(), &lines, None, generator.dir());
        let control_plane = made.and_then(|_| {
            system::on_every_cpu(|| {
                ControlPlane::in_netns(generator, IpAddr::V4(APISERVER))
                    .context("starting etcd and kube-apiserver")
            })
        });
        let control_plane = match control_plane {
            Ok(control_plane) => control_plane,
            Err(error) => {
                let _ = generator.ip(&["link", "del", BRIDGE]);
                return Err(error);
            }
        };
        control_plane
            .apply_deploy()
            .context("applying deploy/crds.yaml and deploy/wren.yaml")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the Kubernetes client's runtime")?;
        let (client, _) = runtime
            .block_on(cluster::client::connect(Some(control_plane.kubeconfig())))
            .context("connecting to the API server")?;
        Ok(Cluster {
            client,
            runtime,
            control_plane,
            generator: Netns::open(generator.name(), generator.dir())?,
        })
    }

    /// The administrator's kubeconfig, which the real nodes use.
    pub fn kubeconfig(&self) -> &Path {
        self.control_plane.kubeconfig()
    }

    /// Creates Node `name`, with Wren's annotations (address, AS) when given; returns the
    /// instant just before the request was sent.
    pub fn create_node(&self, name: &str, annotations: Option<(Ipv4Addr, u32)>) -> Result<Instant> {
        let annotations = annotations.map(|(address, asn)| {
            BTreeMap::from([
                (
                    cluster::translate::ADDRESS_KEYS[0].to_owned(),
                    address.to_string(),
                ),
                (cluster::translate::ASN_KEY.to_owned(), asn.to_string()),
            ])
        });
        let node = Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                annotations,
                ..ObjectMeta::default()
            },
            ..Node::default()
        };
        let api: Api<Node> = Api::all(self.client.clone());
        let (at, created) = self.generator.enter(|| {
            let at = Instant::now();
            (
                at,
                self.runtime
                    .block_on(api.create(&PostParams::default(), &node)),
            )
        })?;
        created.with_context(|| format!("creating Node {name} at {}", self.control_plane.url()))?;
        Ok(at)
    }

    /// Deletes Node `name`.
    pub fn delete_node(&self, name: &str) -> Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        self.generator
            .enter(|| {
                self.runtime
                    .block_on(api.delete(name, &DeleteParams::default()))
            })?
            .with_context(|| format!("deleting Node {name} at {}", self.control_plane.url()))
            .map(drop)
    }

    /// The IPv4 blocks of the IPAM datastore and their owners.
    pub fn block_owners(&self) -> Result<Vec<(Ipv4Net, String)>> {
        let url = format!("kubernetes://{}", self.kubeconfig().display());
        self.generator.enter(|| {
            self.runtime.block_on(async {
                let ipam = ipam::connect(&url)
                    .await
                    .with_context(|| format!("opening the IPAM datastore {url}"))?;
                let users = ipam
                    .block_users()
                    .await
                    .context("reading the blocks' owners")?;
                Ok(users
                    .owners
                    .into_iter()
                    .filter_map(|(block, owner)| match block {
                        IpNet::V4(block) => Some((block, owner)),
                        IpNet::V6(_) => None,
                    })
                    .collect())
            })
        })?
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.generator.ip(&["link", "del", BRIDGE]);
    }
}

/// A real Wren node: bgpd on the Kubernetes datastore (node mesh on) in its namespace on
/// the bridge, its kernel table watched. Dropping it stops bgpd and removes the namespace.
#[derive(Debug)]
pub struct RealNode {
    // Dropped in this order: bgpd, the watcher, the link, the namespace.
    daemon: lab::Daemon,
    fib: FibWatch,
    _veth: Veth,
    netns: Netns,
    name: String,
}

impl RealNode {
    /// Makes real node `j`'s namespace and link to the bridge in `generator`, and starts its
    /// kernel watcher; bgpd is not started yet.
    pub fn prepare(generator: &Netns, j: usize) -> Result<Prepared> {
        let netns = Netns::new(&format!("wbkj{j}"))
            .with_context(|| format!("creating the namespace of real node {j}"))?;
        let outside = format!("kj{j}");
        let veth = Veth::new(generator, &outside, &netns, "d0")?;
        generator.ip(&["link", "set", &outside, "master", BRIDGE])?;
        let address = real_address(j);
        netns.iface("d0").addr(&format!("{address}/16"))?;
        let name = real_name(j);
        let fib = FibWatch::start(&netns, &name)?;
        Ok(Prepared {
            fib,
            veth,
            netns,
            name,
            address,
        })
    }

    /// The node's name (also its Node object's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log of its kernel table.
    pub fn kernel(&self) -> &Arc<RouteLog> {
        self.fib.log()
    }

    /// Fails when bgpd has exited.
    pub fn check_alive(&self) -> Result<()> {
        if self.daemon.is_alive() {
            Ok(())
        } else {
            bail!("{}: bgpd exited:\n{}", self.name, self.daemon.log_tail(20))
        }
    }

    /// Waits until bgpd listens on port 179, then pins it to the daemon CPU.
    pub fn wait_listening(&self) -> Result<()> {
        let netns = self.netns.name().to_owned();
        lab::wait_for(
            START_TIMEOUT,
            &format!("bgpd of {} to listen in {netns}", self.name),
            || {
                self.check_alive()?;
                if system::listening(&netns, bgp_proto::BGP_PORT) {
                    Ok(())
                } else {
                    Err(anyhow!("not listening yet"))
                }
            },
        )?;
        system::pin_process(self.daemon.pid(), system::cpus().dut)
    }
}

/// Real node `j`'s name.
pub fn real_name(j: usize) -> String {
    format!("wren-{j}")
}

/// A real node made ready: [`Prepared::start`] runs its bgpd.
#[derive(Debug)]
pub struct Prepared {
    fib: FibWatch,
    veth: Veth,
    netns: Netns,
    name: String,
    address: Ipv4Addr,
}

impl Prepared {
    /// The log of its kernel table.
    pub fn kernel(&self) -> &Arc<RouteLog> {
        self.fib.log()
    }

    /// Starts bgpd with the node mesh on the Kubernetes datastore of `kubeconfig` (its
    /// configuration checked with `bgpd --check-config` first).
    pub fn start(self, kubeconfig: &Path) -> Result<RealNode> {
        let binary = crate::dut::locate_wren().map_err(|reason| anyhow!(reason))?;
        let dir = self.netns.dir().join("wren");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("bgpd.toml");
        let text = config_text(&self.name, self.address, &dir, kubeconfig);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        check_config(&binary, &path)?;
        let mut command = self.netns.command(&binary);
        command.arg("--config").arg(&path);
        let daemon = self
            .netns
            .spawn_command(&format!("bgpd-{}", self.name), command)?;
        Ok(RealNode {
            daemon,
            fib: self.fib,
            _veth: self.veth,
            netns: self.netns,
            name: self.name,
        })
    }
}

/// bgpd.toml of a real node: the cluster's AS, the node mesh over the Node objects, IPAM
/// and the BGP resources on the API server, the kernel FIB.
fn config_text(name: &str, address: Ipv4Addr, dir: &Path, kubeconfig: &Path) -> String {
    let kubeconfig = kubeconfig.display();
    lab::fixture::wren_config(
        &address.to_string(),
        &dir.join("bgpd.sock"),
        true,
        &format!(
            "[ipam]\nnode = \"{name}\"\ndatastore = \"kubernetes://{kubeconfig}\"\n\
             node_addresses = [\"{address}\"]\n\n\
             [[ipam.pool]]\ncidr = \"{POOL}\"\nblock_size = 26\n\n\
             [kubernetes]\nkubeconfig = \"{kubeconfig}\"\n"
        ),
    )
}

fn check_config(binary: &PathBuf, path: &Path) -> Result<()> {
    let check = Command::new(binary)
        .arg("--check-config")
        .arg(path)
        .output()
        .with_context(|| format!("running {} --check-config", binary.display()))?;
    if !check.status.success() {
        let stderr = String::from_utf8_lossy(&check.stderr);
        bail!(
            "bgpd --check-config refused {}: {}",
            path.display(),
            stderr.lines().next().unwrap_or("(no message)")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_never_collide() {
        assert_eq!(real_address(0).to_string(), "10.251.0.1");
        assert_eq!(simulated_address(0).to_string(), "10.251.1.1");
        assert_eq!(simulated_address(249).to_string(), "10.251.1.250");
        assert_eq!(simulated_address(250).to_string(), "10.251.2.1");
        assert_eq!(
            simulated_address(MAX_SIMULATED - 1).to_string(),
            "10.251.249.250"
        );
        assert_ne!(real_address(200), APISERVER);
    }
}
