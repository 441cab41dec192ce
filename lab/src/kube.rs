//! A real Kubernetes control plane for tests and the lab: etcd ([`Etcd`]) and a
//! kube-apiserver built from the Go module `k8s.io/kubernetes` by `scripts/kube-apiserver`
//! (wrapper module `tools/kube-apiserver`; the release is the one its go.mod names).
//!
//! The API server starts the way envtest starts it: local etcd, `--authorization-mode=RBAC`,
//! a service-account signing key of its own (so `kubectl create token` works), a serving
//! certificate it generates itself, and a static token for an administrator in
//! `system:masters`. [`ControlPlane::kubeconfig`] is that administrator's kubeconfig;
//! [`ControlPlane::service_account_kubeconfig`] writes one with a service account's token,
//! for tests that check what a role allows.
//!
//! [`ControlPlane::start_garbage_collector`] adds kube-controller-manager running only its
//! garbage collector (the test control plane has no other controller).
//!
//! Where the binaries come from: `WREN_KUBE_APISERVER` (a path), else
//! `target/go/kubernetes-VERSION/kube-apiserver`, which `scripts/kube-apiserver` builds
//! (`scripts/test` and `.ci/run` run it first), with `kubectl` of the same release beside
//! it (Debian 12's kubectl is 1.20, outside Kubernetes' version skew and without
//! `kubectl create token`). [`crate::Prereq::KubeApiserver`] checks them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::command;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::etcd::Etcd;
use crate::netns::Netns;
use crate::prereq::{find_program, keep_files, scratch_dir};

pub use crate::kube_build::{
    APISERVER_ENV, apiserver_binary, built_apiserver, controller_manager_binary, kubectl_binary,
    kubernetes_version,
};

/// The administrator's bearer token (static token file; group `system:masters`).
const ADMIN_TOKEN: &str = "wren-lab-admin-token";

/// What kube-controller-manager logs once its garbage collector watches every resource.
const GARBAGE_COLLECTOR_SYNCED: &str = "Garbage collector: all resource monitors have synced";

/// How long the API server may take to become ready (it installs its built-in resources
/// and RBAC roles into an empty etcd on the first start).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// etcd plus a kube-apiserver. Dropping it stops both and removes their files.
#[derive(Debug)]
pub struct ControlPlane {
    // Dropped in this order: the controller manager, then the API server, then the etcd
    // under it.
    controller_manager: Option<Daemon>,
    apiserver: Daemon,
    etcd: Etcd,
    kubectl: PathBuf,
    netns: Option<String>,
    url: String,
    kubeconfig: PathBuf,
    dir: TempDir,
}

impl ControlPlane {
    /// Starts etcd and the API server on the host's 127.0.0.1 (free ports) and waits until
    /// the API server is ready.
    pub fn on_host() -> Result<ControlPlane> {
        ControlPlane::start(None, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Starts them inside `netns`; the API server listens on `ip` (an address of the
    /// namespace, so that other namespaces routed to it reach it), etcd on the namespace's
    /// 127.0.0.1.
    pub fn in_netns(netns: &Netns, ip: IpAddr) -> Result<ControlPlane> {
        ControlPlane::start(Some(netns), ip)
    }

    fn start(netns: Option<&Netns>, ip: IpAddr) -> Result<ControlPlane> {
        let binary = apiserver_binary().map_err(|e| Error::invalid("kube-apiserver", e))?;
        let kubectl = kubectl_binary().map_err(|e| Error::invalid("kubectl", e))?;
        let dir = scratch_dir("wren-kube-")
            .map_err(|e| Error::io("creating a kube-apiserver directory", e))?;
        let etcd = match netns {
            Some(netns) => Etcd::in_netns(netns, IpAddr::V4(Ipv4Addr::LOCALHOST))?,
            None => Etcd::on_host()?,
        };
        let port = match netns {
            Some(netns) => netns.enter(|| free_port(ip))??,
            None => free_port(ip)?,
        };
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let url = format!("https://{host}:{port}");
        write_credentials(dir.path())?;
        let mut command = match netns {
            Some(netns) => netns.command(&binary),
            None => Command::new(&binary),
        };
        let file = |name: &str| dir.path().join(name);
        command
            .arg(format!("--etcd-servers={}", etcd.endpoint()))
            .arg(format!("--bind-address={ip}"))
            .arg(format!("--advertise-address={ip}"))
            .arg(format!("--secure-port={port}"))
            .arg(format!("--cert-dir={}", file("certs").display()))
            .arg(format!(
                "--token-auth-file={}",
                file("tokens.csv").display()
            ))
            .arg("--authorization-mode=RBAC")
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!(
                "--service-account-key-file={}",
                file("service-account.pub").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                file("service-account.key").display()
            ))
            .arg("--allow-privileged=true")
            // One test cluster, no noisy neighbours: fairness queues only add latency.
            .arg("--enable-priority-and-fairness=false")
            .arg("--v=1");
        if ip.is_loopback() {
            // The `kubernetes` Service's endpoint may not be a loopback address; nothing in
            // a test on 127.0.0.1 reaches the API server through that Service.
            command.arg("--endpoint-reconciler-type=none");
        }
        let label = match netns {
            Some(netns) => format!("kube-apiserver@{}", netns.name()),
            None => String::from("kube-apiserver"),
        };
        let apiserver = Daemon::spawn(&label, command, &file("kube-apiserver.log"))?;
        let kubeconfig = file("admin.kubeconfig");
        let control_plane = ControlPlane {
            controller_manager: None,
            etcd,
            kubectl,
            apiserver,
            netns: netns.map(|ns| ns.name().to_owned()),
            url,
            kubeconfig,
            dir,
        };
        control_plane.wait_ready(READY_TIMEOUT)?;
        // What the controller manager's service-account controller would make, so that
        // tests can create Pods in `default` (admission looks the account up).
        control_plane.kubectl(&["-n", "default", "create", "serviceaccount", "default"])?;
        Ok(control_plane)
    }

    /// Starts kube-controller-manager (the same release's, [`controller_manager_binary`])
    /// with its garbage collector alone, as the administrator, and waits until the
    /// collector watches every resource: objects whose owners (`ownerReferences`) are
    /// gone are then deleted, as in a real cluster. No other controller runs, no leader
    /// election, no serving port. Stopped with the control plane. Start it once the
    /// CRDs are served: it looks for new resource types only every 30 s.
    pub fn start_garbage_collector(&mut self) -> Result<()> {
        if self.controller_manager.is_some() {
            return Ok(());
        }
        let binary = controller_manager_binary()
            .map_err(|e| Error::invalid("kube-controller-manager", e))?;
        let mut command = match &self.netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg("--controllers=garbagecollector")
            .arg("--leader-elect=false")
            .arg("--secure-port=0")
            .arg("--v=1");
        let label = match &self.netns {
            Some(netns) => format!("kube-controller-manager@{netns}"),
            None => String::from("kube-controller-manager"),
        };
        let log = self.dir.path().join("kube-controller-manager.log");
        let daemon = Daemon::spawn(&label, command, &log)?;
        daemon.wait_log(READY_TIMEOUT, GARBAGE_COLLECTOR_SYNCED)?;
        self.controller_manager = Some(daemon);
        Ok(())
    }

    /// The controller manager's process guard, once started.
    pub fn controller_manager(&self) -> Option<&Daemon> {
        self.controller_manager.as_ref()
    }

    /// The API server's URL, `https://IP:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The administrator's kubeconfig (cluster-admin through `system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The directory holding the logs, keys and kubeconfigs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The API server's process guard (log, signals).
    pub fn apiserver(&self) -> &Daemon {
        &self.apiserver
    }

    /// The etcd under the API server.
    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// The etcd under the API server, for fault tests (kill, restart).
    pub fn etcd_mut(&mut self) -> &mut Etcd {
        &mut self.etcd
    }

    /// The kubectl binary of the API server's release.
    pub fn kubectl_path(&self) -> &Path {
        &self.kubectl
    }

    /// Runs `kubectl --kubeconfig ADMIN ARGS...` where the API server runs; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.kubectl_as(&self.kubeconfig, args)
    }

    /// Runs kubectl with `args` and `input` on its stdin (`apply -f -`).
    pub fn kubectl_input(&self, args: &[&str], input: &str) -> Result<String> {
        let mut command = self.kubectl_command(&self.kubeconfig, args);
        command::run_input(&mut command, input.as_bytes())
    }

    /// Runs kubectl with another kubeconfig (a service account's).
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Result<String> {
        command::run(&mut self.kubectl_command(kubeconfig, args))
    }

    /// Applies the shipped manifests as a user would (`kubectl apply -f deploy/crds.yaml
    /// -f deploy/wren.yaml`, see [`deploy_file`]) and waits until the CRDs are served.
    pub fn apply_deploy(&self) -> Result<()> {
        let crds = deploy_file("crds.yaml");
        let wren = deploy_file("wren.yaml");
        self.kubectl(&[
            "apply",
            "-f",
            &crds.display().to_string(),
            "-f",
            &wren.display().to_string(),
        ])?;
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ])
        .map(drop)
    }

    /// The user name the API server gives `kubeconfig`'s credentials (`kubectl auth
    /// whoami`), e.g. `system:serviceaccount:NAMESPACE:NAME`.
    pub fn user_of(&self, kubeconfig: &Path) -> Result<String> {
        let out = self.kubectl_as(
            kubeconfig,
            &[
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ],
        )?;
        Ok(out.trim().to_owned())
    }

    fn kubectl_command(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut command = match &self.netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(&self.kubectl);
                command
            }
            None => Command::new(&self.kubectl),
        };
        command
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--request-timeout=10s")
            .args(args);
        command
    }

    /// True when the API server answers `/readyz` now.
    pub fn is_ready(&self) -> bool {
        self.kubectl(&["get", "--raw", "/readyz"]).is_ok()
    }

    /// Waits until the API server answers `/readyz` (and writes the administrator's
    /// kubeconfig first, since the serving certificate it trusts appears at start).
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.apiserver
            .wait_for(
                timeout,
                &format!("kube-apiserver ready at {}", self.url),
                || {
                    self.write_admin_kubeconfig()?;
                    self.kubectl(&["get", "--raw", "/readyz"])
                },
            )
            .map(drop)
    }

    /// Writes a kubeconfig at `path` that authenticates with `token` (and trusts the API
    /// server's certificate).
    pub fn write_kubeconfig(&self, path: &Path, user: &str, token: &str) -> Result<()> {
        let certificate = self.dir.path().join("certs").join("apiserver.crt");
        if !certificate.is_file() {
            return Err(Error::invalid(
                "kube-apiserver",
                format!("no serving certificate yet at {}", certificate.display()),
            ));
        }
        let text = kubeconfig_text(&self.url, &certificate, user, token);
        std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// A kubeconfig with a fresh token (1 hour) of service account `namespace/name`
    /// (`kubectl create token`), written into the control plane's directory.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> Result<PathBuf> {
        let token = self.kubectl(&["-n", namespace, "create", "token", name, "--duration=1h"])?;
        let path = self
            .dir
            .path()
            .join(format!("{namespace}-{name}.kubeconfig"));
        self.write_kubeconfig(
            &path,
            &format!("system:serviceaccount:{namespace}:{name}"),
            token.trim(),
        )?;
        Ok(path)
    }

    /// SIGKILL of the API server (etcd stays); [`ControlPlane::restart_apiserver`] brings
    /// it back on the same port.
    pub fn kill_apiserver(&self) -> Result<()> {
        self.apiserver.kill().map(drop)
    }

    /// Starts the API server again (killing it first if it runs) and waits until ready.
    pub fn restart_apiserver(&mut self) -> Result<()> {
        self.apiserver.restart()?;
        self.wait_ready(READY_TIMEOUT)
    }

    fn write_admin_kubeconfig(&self) -> Result<()> {
        self.write_kubeconfig(&self.kubeconfig, "admin", ADMIN_TOKEN)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if keep_files() {
            self.dir.disable_cleanup(true);
        }
    }
}

/// The static token file and the service-account signing key pair (ECDSA P-256, which
/// the API server accepts for both signing and verifying).
fn write_credentials(dir: &Path) -> Result<()> {
    let tokens = dir.join("tokens.csv");
    std::fs::write(
        &tokens,
        format!("{ADMIN_TOKEN},admin,admin-uid,\"system:masters\"\n"),
    )
    .map_err(|e| Error::io(format!("writing {}", tokens.display()), e))?;
    let openssl =
        find_program("openssl").ok_or_else(|| Error::invalid("openssl", "not found in PATH"))?;
    let key = dir.join("service-account.key");
    let public = dir.join("service-account.pub");
    command::run(
        Command::new(&openssl)
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&key),
    )?;
    command::run(
        Command::new(&openssl)
            .args(["ec", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public),
    )?;
    Ok(())
}

/// A file of the repository's `deploy/` (the shipped Kubernetes manifests).
pub fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name)
}

fn kubeconfig_text(url: &str, certificate: &Path, user: &str, token: &str) -> String {
    let certificate = certificate.display();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: wren-lab
  cluster:
    server: {url}
    certificate-authority: {certificate}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: wren-lab
  context:
    cluster: wren-lab
    user: {user}
current-context: wren-lab
"
    )
}

fn free_port(ip: IpAddr) -> Result<u16> {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .map_err(|e| Error::io(format!("binding a free port on {ip}"), e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("reading a bound port", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_comes_from_the_wrapper_module() {
        let version = kubernetes_version().expect("go.mod names k8s.io/kubernetes");
        assert!(version.starts_with("v1."), "{version}");
    }
}
