//! Where the Kubernetes binaries for tests are: the kube-apiserver, kubectl and
//! kube-controller-manager that `scripts/kube-apiserver` builds from the wrapper module `tools/kube` (the release
//! its go.mod pins), or `WREN_KUBE_APISERVER`. Used by [`crate::kube`], the
//! prerequisite check and the topology runner; it uses nothing of the crate.

use std::path::{Path, PathBuf};

/// The wrapper module's go.mod: the one place the Kubernetes release is written.
const WRAPPER_GO_MOD: &str = include_str!("../../tools/kube/go.mod");

/// Environment variable naming a kube-apiserver binary to use instead of the built one.
pub const APISERVER_ENV: &str = "WREN_KUBE_APISERVER";

/// The Kubernetes release the wrapper module builds (`v1.37.2`), from its go.mod.
pub fn kubernetes_version() -> Option<&'static str> {
    WRAPPER_GO_MOD.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("k8s.io/kubernetes"))
            .then(|| words.next())
            .flatten()
    })
}

/// The cargo target dir (`CARGO_TARGET_DIR`, else the workspace's `target/`), under
/// whose `go/` the scripts building Go test peers put them.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// Where `scripts/kube-apiserver` puts the binary for this release.
pub fn built_apiserver() -> Option<PathBuf> {
    let version = kubernetes_version()?;
    Some(
        target_dir()
            .join("go")
            .join(format!("kubernetes-{version}"))
            .join("kube-apiserver"),
    )
}

/// The kube-apiserver binary to run: `WREN_KUBE_APISERVER`, else the built one; `Err` says
/// how to get it.
pub fn apiserver_binary() -> std::result::Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(APISERVER_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{APISERVER_ENV}={} is not a file", path.display()))
        };
    }
    match built_apiserver() {
        Some(path) if path.is_file() => Ok(path),
        Some(path) => Err(format!(
            "kube-apiserver not built ({} missing; run scripts/kube-apiserver)",
            path.display()
        )),
        None => Err(String::from(
            "tools/kube/go.mod names no k8s.io/kubernetes version",
        )),
    }
}

/// The kubectl beside the kube-apiserver binary (same release); `Err` says how to get it.
pub fn kubectl_binary() -> std::result::Result<PathBuf, String> {
    beside_apiserver("kubectl")
}

/// The kube-controller-manager beside the kube-apiserver binary (same release); `Err` says
/// how to get it.
pub fn controller_manager_binary() -> std::result::Result<PathBuf, String> {
    beside_apiserver("kube-controller-manager")
}

/// The command `name` that `scripts/kube-apiserver` builds beside the kube-apiserver.
fn beside_apiserver(name: &str) -> std::result::Result<PathBuf, String> {
    let binary = apiserver_binary()?.with_file_name(name);
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "{name} not built ({} missing; run scripts/kube-apiserver)",
            binary.display()
        ))
    }
}
