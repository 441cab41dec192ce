//! What a node is and how a command runs "inside" it.
//!
//! A node's role comes from its image, as a container would: `quay.io/frrouting/frr:*` is an
//! FRR router (the host's FRR started with the bound /etc/frr/frr.conf and the daemons
//! enabled in the bound /etc/frr/daemons), an image named `wren` (`wren:latest`,
//! `ghcr.io/x/wren:1`) is a Wren node (`bgpd --config` the bound /etc/wren/bgpd.toml), and
//! an etcd image (`quay.io/coreos/etcd:v3.5.17`) is the host's etcd configured by the node's
//! `env:` (`ETCD_*` variables, as the image reads them), a kube-apiserver image
//! (`registry.k8s.io/kube-apiserver:v1.37.2`) is the kube-apiserver that
//! `scripts/kube-apiserver` builds, run with the node's `cmd:` flags (paths under its binds
//! turned into the host files), and any other image is a plain Linux host that only runs
//! its `exec:` commands.
//!
//! The node context: every process of a node (its daemons, its `exec:` commands, and
//! `wren-lab exec`) runs in the node's namespace through `ip netns exec`, which gives it a
//! private mount namespace; there the node's own directories are bind-mounted over
//! `/run/frr`, `/run/wren` and `/var/lib/wren`, so `vtysh` and `bgpctl` reach that node's
//! daemons at their default paths without flags, and the pod MTU bgpd writes to
//! `/var/lib/wren/mtu` is the one the node's CNI plugin reads. `WREN_CONTROL_SOCKET` is set to the same socket, and the
//! node's `env:` is added. A node's binds under `/etc/wren/` (its bgpd.toml, a kubeconfig)
//! are seen there too ([`bind_etc_wren`]: a directory of links to the bound files mounted
//! over `/etc/wren`), so a config naming `/etc/wren/kubeconfig` reads the bound file.
//!
//! A kube-apiserver node may carry the wren-lab labels `wren.io/kubeconfig` (a kubeconfig
//! with the rights to create what follows) and `wren.io/apply` (manifests, separated by
//! spaces), container paths under its binds: once the API server is ready, wren-lab
//! applies each manifest in order with kubectl and waits until every
//! CustomResourceDefinition is Established, before any router or Wren node starts (the
//! CRDs and Node objects that bgpd expects, as a cluster's installer and kubelets would
//! have made them). Under containerlab these labels do nothing; run the same `kubectl
//! apply` by hand.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::prereq::{FRR_DIR, cni_dir, find_program};
use crate::topology::file::Node;

/// Where a Wren node's control socket is, inside the node context.
pub const WREN_CONTROL_SOCKET: &str = "/run/wren/bgpd.sock";

/// Container paths of the configs a node binds.
pub const FRR_CONF: &str = "/etc/frr/frr.conf";
pub const FRR_DAEMONS: &str = "/etc/frr/daemons";
pub const BGPD_CONF: &str = "/etc/wren/bgpd.toml";
/// CNI network configs are bound under this directory.
pub const CNI_CONF_DIR: &str = "/etc/cni/net.d/";

/// The label that asks for pods on a node: `wren.io/pods: "2"`.
pub const PODS_LABEL: &str = "wren.io/pods";
/// A kube-apiserver node's kubeconfig for applying manifests (a container path).
pub const KUBECONFIG_LABEL: &str = "wren.io/kubeconfig";
/// A kube-apiserver node's manifests, applied in order once it is ready (container paths).
pub const APPLY_LABEL: &str = "wren.io/apply";
/// The container directory whose bound files a node's commands see at their paths.
pub const ETC_WREN: &str = "/etc/wren/";
/// The directory, in a node's own directory, mounted over `/etc/wren`.
const ETC_WREN_DIR: &str = "etc-wren";

/// What runs in a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// etcd (the host's /usr/bin/etcd for an etcd image such as `quay.io/coreos/etcd`),
    /// configured by the node's `env:` (`ETCD_LISTEN_CLIENT_URLS`, ...) as the image is; its
    /// data directory is the node's own.
    Etcd,
    /// kube-apiserver with these flags (bound paths already the host's); its generated
    /// serving certificate goes to the node's own directory. `apply`: what the
    /// `wren.io/kubeconfig` and `wren.io/apply` labels ask to apply once it is ready.
    KubeApiserver {
        args: Vec<String>,
        apply: Option<Apply>,
    },
    /// FRR with this frr.conf and these daemons (besides zebra and staticd).
    Frr {
        config: PathBuf,
        daemons: Vec<String>,
    },
    /// Wren: `bgpd --config CONFIG` when a bgpd.toml is bound.
    Wren { bgpd_config: Option<PathBuf> },
    /// Only the `exec:` commands.
    Plain,
}

impl Role {
    /// The role of `node`, from its kind, image and binds.
    pub fn of(node: &Node) -> Result<Role> {
        let what = |key: &str| format!("node {}: {key}", node.name);
        if node.kind != "linux" {
            return Err(Error::invalid(
                what("kind"),
                format!(
                    "{:?} cannot run in a network namespace; use kind: linux",
                    node.kind
                ),
            ));
        }
        let repository = node
            .image
            .rsplit_once(':')
            .map_or(node.image.as_str(), |(r, tag)| {
                // "host:5000/img" has a ':' in the registry part, not a tag.
                if tag.contains('/') {
                    node.image.as_str()
                } else {
                    r
                }
            });
        let last = repository.rsplit('/').next().unwrap_or(repository);
        if repository.ends_with("frrouting/frr") || last == "frr" {
            let config = node
                .bound(FRR_CONF)
                .ok_or_else(|| {
                    Error::invalid(
                        what("binds"),
                        format!("an FRR node needs a bind to {FRR_CONF}"),
                    )
                })?
                .to_owned();
            let daemons = match node.bound(FRR_DAEMONS) {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        Error::io(
                            format!("reading {} (node {})", path.display(), node.name),
                            e,
                        )
                    })?;
                    frr_daemons(&text)
                }
                None => vec!["bgpd".to_owned()],
            };
            return Ok(Role::Frr { config, daemons });
        }
        if last == "etcd" {
            return Ok(Role::Etcd);
        }
        if last == "kube-apiserver" {
            if let Some(flag) = node.cmd.iter().find(|a| a.starts_with("--cert-dir")) {
                return Err(Error::invalid(
                    what("cmd"),
                    format!(
                        "{flag}: wren-lab puts the API server's certificates in the node's own directory"
                    ),
                ));
            }
            // The image's entrypoint runs the command named first (`kube-apiserver --...`).
            let flags = match node.cmd.split_first() {
                Some((first, rest)) if first.ends_with("kube-apiserver") => rest,
                _ => &node.cmd[..],
            };
            return Ok(Role::KubeApiserver {
                args: flags.iter().map(|arg| host_path_arg(node, arg)).collect(),
                apply: Apply::of(node)?,
            });
        }
        if last == "wren" {
            return Ok(Role::Wren {
                bgpd_config: node.bound(BGPD_CONF).map(Path::to_owned),
            });
        }
        Ok(Role::Plain)
    }
}

/// Manifests a kube-apiserver node applies once ready (host paths), with the kubeconfig
/// to apply them with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    pub kubeconfig: PathBuf,
    pub manifests: Vec<PathBuf>,
}

impl Apply {
    /// From the node's `wren.io/kubeconfig` and `wren.io/apply` labels (both or neither;
    /// each path a container path under one of its binds).
    fn of(node: &Node) -> Result<Option<Apply>> {
        let label = |name: &str| node.labels.get(name).map(|v| v.trim().to_owned());
        let what = |name: &str| format!("node {}: labels.{name}", node.name);
        let bound = |name: &str, path: &str| {
            let host = host_path_arg(node, path);
            if host == path {
                Err(Error::invalid(
                    what(name),
                    format!("{path} is under none of the node's binds"),
                ))
            } else {
                Ok(PathBuf::from(host))
            }
        };
        match (label(KUBECONFIG_LABEL), label(APPLY_LABEL)) {
            (None, None) => Ok(None),
            (Some(kubeconfig), Some(manifests)) => {
                let manifests: Vec<PathBuf> = manifests
                    .split_whitespace()
                    .map(|path| bound(APPLY_LABEL, path))
                    .collect::<Result<_>>()?;
                if manifests.is_empty() {
                    return Err(Error::invalid(what(APPLY_LABEL), "names no manifest"));
                }
                Ok(Some(Apply {
                    kubeconfig: bound(KUBECONFIG_LABEL, &kubeconfig)?,
                    manifests,
                }))
            }
            (Some(_), None) => Err(Error::invalid(
                what(KUBECONFIG_LABEL),
                format!("given without {APPLY_LABEL} (nothing to apply)"),
            )),
            (None, Some(_)) => Err(Error::invalid(
                what(APPLY_LABEL),
                format!("needs {KUBECONFIG_LABEL} (the credentials to apply with)"),
            )),
        }
    }
}

/// Makes `DIR/etc-wren` hold a link to each of `node`'s binds under `/etc/wren/` (at the
/// same relative path), which [`node_command`] mounts over `/etc/wren`. Nothing when the
/// node binds nothing there.
pub fn bind_etc_wren(node: &Node, dir: &Path) -> Result<()> {
    for bind in &node.binds {
        let Some(rest) = bind.target.strip_prefix(ETC_WREN) else {
            continue;
        };
        if rest.is_empty() || rest.split('/').any(|part| part.is_empty() || part == "..") {
            return Err(Error::invalid(
                format!("node {}: binds", node.name),
                format!("{}: name a file under {ETC_WREN}", bind.target),
            ));
        }
        let link = dir.join(ETC_WREN_DIR).join(rest);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let source = std::path::absolute(&bind.source)
            .map_err(|e| Error::io(format!("resolving {}", bind.source.display()), e))?;
        std::os::unix::fs::symlink(&source, &link).map_err(|e| {
            Error::io(
                format!("linking {} to {}", link.display(), source.display()),
                e,
            )
        })?;
    }
    Ok(())
}

/// `arg` with a container path under one of `node`'s binds (`--flag=PATH` or `PATH`)
/// replaced by the bound host path.
fn host_path_arg(node: &Node, arg: &str) -> String {
    let (flag, value) = match arg.split_once('=') {
        Some((flag, value)) => (Some(flag), value),
        None => (None, arg),
    };
    let Some(host) = node.binds.iter().find_map(|bind| {
        let rest = value.strip_prefix(bind.target.as_str())?;
        (rest.is_empty() || rest.starts_with('/') || bind.target.ends_with('/'))
            .then(|| format!("{}{rest}", bind.source.display()))
    }) else {
        return arg.to_owned();
    };
    match flag {
        Some(flag) => format!("{flag}={host}"),
        None => host,
    }
}

/// The daemons an FRR `daemons` file enables (`bgpd=yes`), other than zebra and staticd,
/// that the host's FRR has.
pub fn frr_daemons(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().split_once('='))
        .filter(|(name, value)| {
            name.ends_with('d')
                && !name.contains('_')
                && value.trim().trim_matches('"') == "yes"
                && *name != "zebra"
                && *name != "staticd"
        })
        .map(|(name, _)| name.to_owned())
        .filter(|name| Path::new(FRR_DIR).join(name).is_file())
        .collect()
}

impl Role {
    /// The order in which roles start: the datastore first, then the API server on it,
    /// then routers, then Wren nodes (which need all of them), then plain hosts.
    pub fn start_rank(&self) -> u8 {
        match self {
            Role::Etcd => 0,
            Role::KubeApiserver { .. } => 1,
            Role::Frr { .. } => 2,
            Role::Wren { .. } => 3,
            Role::Plain => 4,
        }
    }

    /// The role's name in the lab's state and status (`etcd`, `kube-apiserver`, `frr`,
    /// `wren`, `linux`).
    pub fn name(&self) -> &'static str {
        match self {
            Role::Etcd => "etcd",
            Role::KubeApiserver { .. } => "kube-apiserver",
            Role::Frr { .. } => "frr",
            Role::Wren { .. } => "wren",
            Role::Plain => "linux",
        }
    }
}

/// The URL a kube-apiserver node serves, from its flags: `--advertise-address`, else
/// `--bind-address`, and `--secure-port` (default 6443).
pub fn apiserver_url(args: &[String]) -> Option<String> {
    let flag = |name: &str| {
        args.iter()
            .find_map(|arg| arg.strip_prefix(name)?.strip_prefix('='))
    };
    let address: std::net::IpAddr = flag("--advertise-address")
        .or_else(|| flag("--bind-address"))?
        .parse()
        .ok()?;
    let port = flag("--secure-port").unwrap_or("6443");
    Some(format!(
        "https://{}",
        std::net::SocketAddr::new(address, port.parse().ok()?)
    ))
}

/// etcd's client URL as the node's environment sets it (the first of
/// `ETCD_ADVERTISE_CLIENT_URLS`), else etcd's default.
pub fn etcd_client_url(env: &BTreeMap<String, String>) -> String {
    env.get("ETCD_ADVERTISE_CLIENT_URLS")
        .and_then(|urls| urls.split(',').map(str::trim).find(|u| !u.is_empty()))
        .unwrap_or("http://localhost:2379")
        .to_owned()
}

/// The number of pods a node asks for with `wren.io/pods`.
pub fn pod_count(node: &Node) -> Result<u32> {
    match node.labels.get(PODS_LABEL) {
        None => Ok(0),
        Some(value) => value.trim().parse().map_err(|_| {
            Error::invalid(
                format!("node {}: labels.{PODS_LABEL}", node.name),
                format!("{value:?} is not a number of pods"),
            )
        }),
    }
}

/// A command that runs `program` in the node context (see the module documentation).
pub fn node_command(
    netns: &str,
    dir: &Path,
    env: &BTreeMap<String, String>,
    program: impl AsRef<OsStr>,
) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", netns, "sh", "-c"])
        .arg(concat!(
            "mkdir -p /run/frr /run/wren /var/lib/wren \"$0/frr\" \"$0/wren\" \"$0/state\"",
            " && mount --bind \"$0/frr\" /run/frr",
            " && mount --bind \"$0/wren\" /run/wren",
            " && mount --bind \"$0/state\" /var/lib/wren",
            " && { [ ! -d \"$0/etc-wren\" ] || { mkdir -p /etc/wren",
            " && mount --bind \"$0/etc-wren\" /etc/wren; }; }",
            " && exec \"$@\""
        ))
        .arg(dir)
        .arg(program)
        .envs(env)
        .env("WREN_CONTROL_SOCKET", WREN_CONTROL_SOCKET);
    command
}

/// Finds one of Wren's binaries (bgpd, bgpctl, wren-ipam): in `WREN_BIN_DIR`, beside the
/// running executable (wren-lab sits beside bgpd in the cargo target dir; test binaries one
/// level below), in `CARGO_TARGET_DIR/{debug,release}`, in the workspace's
/// `target/{debug,release}`, then in `PATH`.
pub fn find_wren_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("WREN_BIN_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_owned());
        if dir.ends_with("deps")
            && let Some(up) = dir.parent()
        {
            dirs.push(up.to_owned());
        }
    }
    let profiles = |target: &Path| [target.join("debug"), target.join("release")];
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.extend(profiles(Path::new(&target)));
    }
    dirs.extend(profiles(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    ));
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .or_else(|| find_program(name))
}

/// The directories searched for CNI plugins: Wren's binaries (for wren-ipam) first, then
/// the system's CNI plugins.
pub fn cni_path() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(ipam) = find_wren_binary("wren-ipam")
        && let Some(dir) = ipam.parent()
    {
        dirs.push(dir.to_owned());
    }
    dirs.push(cni_dir());
    dirs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::topology::file::Bind;

    fn node(image: &str, binds: &[(&str, &str)]) -> Node {
        Node {
            name: "n".into(),
            kind: "linux".into(),
            image: image.into(),
            binds: binds
                .iter()
                .map(|(s, t)| Bind {
                    source: PathBuf::from(s),
                    target: (*t).into(),
                })
                .collect(),
            exec: Vec::new(),
            cmd: Vec::new(),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            mgmt_ipv4: None,
            mgmt_ipv6: None,
        }
    }

    #[test]
    fn kube_apiserver_flags_point_at_the_bound_files() {
        let mut apiserver = node(
            "registry.k8s.io/kube-apiserver:v1.37.2",
            &[
                ("/lab/k8s/tokens.csv", "/etc/kubernetes/tokens.csv"),
                ("/lab/k8s/keys", "/etc/kubernetes/keys"),
            ],
        );
        apiserver.cmd = [
            "kube-apiserver",
            "--token-auth-file=/etc/kubernetes/tokens.csv",
            "--service-account-key-file=/etc/kubernetes/keys/sa.pub",
            "--etcd-servers=http://172.31.3.100:2379",
            "--authorization-mode=RBAC",
            "/etc/kubernetes/tokens.csv.old",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            Role::of(&apiserver).unwrap(),
            Role::KubeApiserver {
                args: [
                    "--token-auth-file=/lab/k8s/tokens.csv",
                    "--service-account-key-file=/lab/k8s/keys/sa.pub",
                    "--etcd-servers=http://172.31.3.100:2379",
                    "--authorization-mode=RBAC",
                    "/etc/kubernetes/tokens.csv.old",
                ]
                .map(String::from)
                .to_vec(),
                apply: None,
            }
        );
        apiserver.cmd.push("--cert-dir=/var/run/kubernetes".into());
        let error = Role::of(&apiserver).unwrap_err().to_string();
        assert!(error.contains("--cert-dir"), "{error}");
    }

    #[test]
    fn kube_apiserver_applies_bound_manifests_with_its_kubeconfig() {
        let mut apiserver = node(
            "registry.k8s.io/kube-apiserver:v1.37.2",
            &[
                ("/lab/k8s", "/etc/kubernetes/wren"),
                (
                    "/repo/deploy/crds.yaml",
                    "/etc/kubernetes/manifests/crds.yaml",
                ),
            ],
        );
        apiserver.labels.insert(
            KUBECONFIG_LABEL.into(),
            "/etc/kubernetes/wren/admin.kubeconfig".into(),
        );
        apiserver.labels.insert(
            APPLY_LABEL.into(),
            "/etc/kubernetes/manifests/crds.yaml  /etc/kubernetes/wren/cluster.yaml".into(),
        );
        let Role::KubeApiserver { apply, .. } = Role::of(&apiserver).unwrap() else {
            panic!("not a kube-apiserver");
        };
        assert_eq!(
            apply,
            Some(Apply {
                kubeconfig: "/lab/k8s/admin.kubeconfig".into(),
                manifests: vec![
                    "/repo/deploy/crds.yaml".into(),
                    "/lab/k8s/cluster.yaml".into()
                ],
            })
        );
        // A path under no bind, or one label without the other, is refused by name.
        apiserver
            .labels
            .insert(APPLY_LABEL.into(), "/srv/cluster.yaml".into());
        let error = Role::of(&apiserver).unwrap_err().to_string();
        assert!(
            error.contains("/srv/cluster.yaml") && error.contains(APPLY_LABEL),
            "{error}"
        );
        apiserver.labels.remove(APPLY_LABEL);
        let error = Role::of(&apiserver).unwrap_err().to_string();
        assert!(error.contains(KUBECONFIG_LABEL), "{error}");
    }

    #[test]
    fn binds_under_etc_wren_are_linked_for_the_mount() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("admin.kubeconfig");
        std::fs::write(&kubeconfig, "kubeconfig").unwrap();
        let wren = node(
            "wren",
            &[
                (kubeconfig.to_str().unwrap(), "/etc/wren/kubeconfig"),
                ("/x/10-wren.conflist", "/etc/cni/net.d/10-wren.conflist"),
            ],
        );
        let node_dir = dir.path().join("node");
        bind_etc_wren(&wren, &node_dir).unwrap();
        let linked = node_dir.join(ETC_WREN_DIR);
        assert_eq!(
            std::fs::read_to_string(linked.join("kubeconfig")).unwrap(),
            "kubeconfig"
        );
        assert_eq!(std::fs::read_dir(&linked).unwrap().count(), 1);
        let escape = node("wren", &[("/x/y", "/etc/wren/../shadow")]);
        let error = bind_etc_wren(&escape, &dir.path().join("other"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/etc/wren/../shadow"), "{error}");
    }

    #[test]
    fn roles_from_images() {
        assert_eq!(
            Role::of(&node(
                "quay.io/frrouting/frr:8.4.0",
                &[("/x/frr.conf", FRR_CONF)]
            ))
            .unwrap(),
            Role::Frr {
                config: "/x/frr.conf".into(),
                daemons: vec!["bgpd".into()]
            }
        );
        assert_eq!(
            Role::of(&node("wren:latest", &[("/x/bgpd.toml", BGPD_CONF)])).unwrap(),
            Role::Wren {
                bgpd_config: Some("/x/bgpd.toml".into())
            }
        );
        assert_eq!(
            Role::of(&node("registry:5000/wren", &[])).unwrap(),
            Role::Wren { bgpd_config: None }
        );
        assert_eq!(Role::of(&node("alpine:3", &[])).unwrap(), Role::Plain);
        assert_eq!(
            Role::of(&node("quay.io/coreos/etcd:v3.5.17", &[])).unwrap(),
            Role::Etcd
        );
        let error = Role::of(&node("quay.io/frrouting/frr:8.4.0", &[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains(FRR_CONF), "{error}");
        let mut srl = node("ghcr.io/nokia/srlinux", &[]);
        srl.kind = "nokia_srlinux".into();
        assert!(
            Role::of(&srl)
                .unwrap_err()
                .to_string()
                .contains("kind: linux")
        );
    }

    #[test]
    fn daemons_file() {
        let daemons = frr_daemons(
            "zebra=yes\nbgpd=yes\nospfd=no\nbfdd=yes\nvtysh_enable=yes\nbgpd_options=\"  -A 127.0.0.1\"\n",
        );
        assert!(daemons.contains(&"bgpd".to_owned()));
        assert!(
            !daemons
                .iter()
                .any(|d| d == "zebra" || d == "ospfd" || d.contains('_'))
        );
    }

    #[test]
    fn pod_label() {
        let mut n = node("wren", &[]);
        assert_eq!(pod_count(&n).unwrap(), 0);
        n.labels.insert(PODS_LABEL.into(), "2".into());
        assert_eq!(pod_count(&n).unwrap(), 2);
        n.labels.insert(PODS_LABEL.into(), "two".into());
        assert!(pod_count(&n).unwrap_err().to_string().contains("two"));
    }
}
