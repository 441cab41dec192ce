//! Prerequisite checks for tests that need root, network namespaces or peer daemons.
//!
//! A test starts with one line:
//! ```no_run
//! # fn test() {
//! let Some(_ready) = lab::require!(Root, Frr) else { return };
//! # }
//! ```
//! When something is missing the reason is printed (to the real stderr, so it shows in CI
//! logs even under the test harness's capture) and the test returns: a skip. With
//! `WREN_REQUIRE_LAB=1` in the environment a missing prerequisite panics instead: CI sets it
//! so that nothing skips silently there.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tempfile::TempDir;

use crate::command;
use crate::names::unique_name;

/// Environment variable that turns a missing prerequisite into a test failure.
pub const REQUIRE_ENV: &str = "WREN_REQUIRE_LAB";

/// Something a lab test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prereq {
    /// Running as root and able to create network namespaces.
    Root,
    /// FRR daemons (zebra, bgpd, staticd in /usr/lib/frr) and vtysh.
    Frr,
    /// BIRD 2 (`bird`, `birdc`).
    Bird,
    /// GoBGP (`gobgpd`, `gobgp`).
    Gobgp,
    /// GoBGP v4 (native BFD) built by `scripts/gobgp` (or `WREN_GOBGP_V4`):
    /// [`crate::Gobgp::start_v4`].
    GobgpV4,
    /// ExaBGP (`exabgp`).
    Exabgp,
    /// etcd server and client (`etcd`, `etcdctl`).
    Etcd,
    /// CNI plugins `ptp` and `host-local` in /usr/lib/cni (or `CNI_PATH`).
    Cni,
    /// `tcpdump`.
    Tcpdump,
    /// `tshark`.
    Tshark,
    /// `nft` (nftables), used for packet loss on links and by bgpd's dataplane.
    Nft,
    /// `iptables-nft` (Debian's iptables), the rules kube-proxy writes, for the
    /// dataplane's coexistence tests.
    Iptables,
    /// A kube-apiserver and kubectl built by `scripts/kube-apiserver` (or
    /// `WREN_KUBE_APISERVER`), etcd under it, `openssl` (its service-account key):
    /// [`crate::kube`].
    KubeApiserver,
    /// What [`Prereq::KubeApiserver`] needs, and the kube-controller-manager of the same
    /// release beside it (its garbage collector: [`crate::kube::ControlPlane::start_garbage_collector`]).
    KubeControllerManager,
    /// `promtool` (Debian's `prometheus` package), for `promtool check metrics`.
    Promtool,
    /// Python `prometheus_client`'s OpenMetrics parser under Debian's
    /// `/usr/bin/python3` (`python3-prometheus-client`): [`crate::metrics`].
    OpenMetricsParser,
}

/// Proof that the prerequisites are present, with a scratch directory for the test that is
/// removed when this value is dropped (kept when `WREN_LAB_KEEP=1`).
#[derive(Debug)]
pub struct Ready {
    dir: TempDir,
}

impl Ready {
    /// The test's scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        if keep_files() {
            self.dir.disable_cleanup(true);
        }
    }
}

/// Checks every prerequisite. Returns `Some` when the test may run. Otherwise prints why and
/// returns `None`, or panics with the reason when `WREN_REQUIRE_LAB=1`.
pub fn require(prereqs: &[Prereq]) -> Option<Ready> {
    let missing: Vec<String> = prereqs.iter().filter_map(|p| check(*p).err()).collect();
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    if missing.is_empty() {
        return match scratch_dir("wren-test-") {
            Ok(dir) => Some(Ready { dir }),
            Err(error) => fail_or_skip(
                &test,
                &format!("cannot create a scratch directory: {error}"),
            ),
        };
    }
    fail_or_skip(&test, &missing.join("; "))
}

/// Checks one prerequisite; `Err` carries a one-line reason naming what is missing.
pub fn check(prereq: Prereq) -> Result<(), String> {
    match prereq {
        Prereq::Root => root().clone(),
        Prereq::Frr => {
            for daemon in ["zebra", "bgpd", "staticd"] {
                let path = Path::new(FRR_DIR).join(daemon);
                if !path.is_file() {
                    return Err(format!(
                        "FRR is not installed ({} missing; apt-get install frr)",
                        path.display()
                    ));
                }
            }
            programs(&["vtysh"], "frr")
        }
        Prereq::Bird => programs(&["bird", "birdc"], "bird2"),
        Prereq::Gobgp => programs(&["gobgpd", "gobgp"], "gobgpd"),
        Prereq::GobgpV4 => crate::gobgp_build::gobgp_v4_binaries().map(drop),
        Prereq::Exabgp => programs(&["exabgp"], "exabgp"),
        Prereq::Etcd => programs(&["etcd", "etcdctl"], "etcd-server etcd-client"),
        Prereq::Cni => {
            for plugin in ["ptp", "host-local"] {
                if !cni_dir().join(plugin).is_file() {
                    return Err(format!(
                        "CNI plugin {plugin} not found in {} (apt-get install containernetworking-plugins)",
                        cni_dir().display()
                    ));
                }
            }
            Ok(())
        }
        Prereq::Tcpdump => programs(&["tcpdump"], "tcpdump"),
        Prereq::Tshark => programs(&["tshark"], "tshark"),
        Prereq::Nft => programs(&["nft"], "nftables"),
        Prereq::Iptables => programs(&["iptables-nft"], "iptables"),
        Prereq::KubeApiserver => {
            crate::kube_build::kubectl_binary()?;
            programs(&["etcd", "etcdctl"], "etcd-server etcd-client")?;
            programs(&["openssl"], "openssl")
        }
        Prereq::KubeControllerManager => {
            check(Prereq::KubeApiserver)?;
            crate::kube_build::controller_manager_binary().map(drop)
        }
        Prereq::Promtool => programs(&["promtool"], "prometheus"),
        Prereq::OpenMetricsParser => {
            let probe = Command::new(PYTHON)
                .args(["-c", "import prometheus_client.openmetrics.parser"])
                .output();
            match probe {
                Ok(output) if output.status.success() => Ok(()),
                _ => Err(format!(
                    "{} cannot import prometheus_client.openmetrics.parser (apt-get install python3-prometheus-client)",
                    PYTHON
                )),
            }
        }
    }
}

/// The Python that has Debian's `python3-prometheus-client` (not a pyenv one first on
/// `PATH`), for [`crate::metrics`].
pub const PYTHON: &str = "/usr/bin/python3";

/// Where the FRR daemons live (Debian's package).
pub const FRR_DIR: &str = "/usr/lib/frr";

/// The CNI plugin directory: `CNI_PATH` (first entry) or /usr/lib/cni.
pub fn cni_dir() -> PathBuf {
    std::env::var_os("CNI_PATH")
        .and_then(|p| std::env::split_paths(&p).next())
        .unwrap_or_else(|| PathBuf::from("/usr/lib/cni"))
}

/// Finds an executable by name in `PATH`, then in the sbin directories (which a non-login
/// root shell may lack in its `PATH`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// True when `WREN_LAB_KEEP=1`: scratch directories (logs, configs) survive the test.
pub fn keep_files() -> bool {
    std::env::var("WREN_LAB_KEEP").is_ok_and(|v| v == "1")
}

/// Creates a scratch directory under the system temp dir, mode 0755 whatever the umask:
/// daemons that drop privileges (FRR runs as user `frr`) must reach their files inside.
pub(crate) fn scratch_dir(prefix: &str) -> std::io::Result<TempDir> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    open_dir(dir.path())?;
    Ok(dir)
}

/// Creates `dir` (and missing parents) and sets it to mode 0755 whatever the umask.
pub(crate) fn open_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}

fn fail_or_skip<T>(test: &str, reason: &str) -> Option<T> {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: lab prerequisite missing and {REQUIRE_ENV}=1: {reason}");
    }
    // Straight to the process's stderr, past the test harness's output capture, so the
    // skip is visible in CI logs.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    None
}

fn programs(names: &[&str], package: &str) -> Result<(), String> {
    for name in names {
        if find_program(name).is_none() {
            return Err(format!("{name} not found (apt-get install {package})"));
        }
    }
    Ok(())
}

/// Root and a working `ip netns add`, probed once per process.
fn root() -> &'static Result<(), String> {
    static ROOT: OnceLock<Result<(), String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            return Err("not running as root (network namespaces need it)".to_owned());
        }
        if find_program("ip").is_none() {
            return Err("ip not found (apt-get install iproute2)".to_owned());
        }
        let name = unique_name("wl-probe");
        command::run(Command::new("ip").args(["netns", "add", &name]))
            .map_err(|e| format!("cannot create a network namespace: {e}"))?;
        command::run(Command::new("ip").args(["netns", "del", &name]))
            .map_err(|e| format!("cannot delete network namespace {name}: {e}"))?;
        Ok(())
    })
}

/// `lab::require!(Root, Frr)`: [`require`] with the listed [`Prereq`] variants.
#[macro_export]
macro_rules! require {
    ($($prereq:ident),* $(,)?) => {
        $crate::require(&[$($crate::Prereq::$prereq),*])
    };
}
