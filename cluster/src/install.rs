//! What the DaemonSet's init container (`wren-install`) puts on the node, in this
//! order: the CNI plugins into the runtime's plugin directory, the plugins' kubeconfig
//! (a `wren-cni` token, [`crate::token`]), and last the conflist, whose appearance tells
//! the runtime that the network is ready. Every file is replaced atomically
//! ([`crate::files`]): a pod being added meanwhile runs the old plugin or the new one.
//!
//! The paths written into the conflist are the node's: the init container mounts the
//! host's directories at the same paths.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::ClusterError;
use crate::files::{copy_atomic, write_atomic};

/// The plugins the image ships.
pub const PLUGINS: [&str; 2] = ["wren", "wren-ipam"];
/// The conflist's file name (runtimes take the first one in lexical order).
pub const CONFLIST: &str = "10-wren.conflist";
/// The plugins' kubeconfig's file name, beside the conflist.
pub const KUBECONFIG: &str = "wren-kubeconfig";
/// The network's name in the conflist.
pub const NETWORK: &str = "wren";

const PLUGIN_MODE: u32 = 0o755;
const CONFLIST_MODE: u32 = 0o644;

/// Copies each of `plugins` from `source` into `bin` (atomically); returns the paths
/// written.
pub fn copy_plugins(
    source: &Path,
    bin: &Path,
    plugins: &[String],
) -> Result<Vec<PathBuf>, ClusterError> {
    create_directory(bin)?;
    let mut written = Vec::new();
    for plugin in plugins {
        if plugin.is_empty() || plugin.contains('/') || plugin.starts_with('.') {
            return Err(ClusterError::File {
                path: source.join(plugin),
                reason: format!("plugin name {plugin:?} is not a file name"),
            });
        }
        let target = bin.join(plugin);
        copy_atomic(&source.join(plugin), &target, PLUGIN_MODE)?;
        written.push(target);
    }
    Ok(written)
}

/// The conflist: the `wren` plugin with `wren-ipam` on the Kubernetes datastore through
/// `kubeconfig`, for `node`.
pub fn conflist(node: &str, kubeconfig: &Path) -> String {
    let conflist = json!({
        "cniVersion": "1.1.0",
        "name": NETWORK,
        "plugins": [{
            "type": "wren",
            "ipam": {
                "type": "wren-ipam",
                "datastore": format!("kubernetes://{}", kubeconfig.display()),
                "node": node,
            },
        }],
    });
    format!("{conflist:#}\n")
}

/// Writes [`conflist`] into `net` as [`CONFLIST`] (atomically); returns its path.
pub fn write_conflist(net: &Path, node: &str, kubeconfig: &Path) -> Result<PathBuf, ClusterError> {
    create_directory(net)?;
    let path = net.join(CONFLIST);
    write_atomic(&path, conflist(node, kubeconfig).as_bytes(), CONFLIST_MODE)?;
    Ok(path)
}

fn create_directory(path: &Path) -> Result<(), ClusterError> {
    std::fs::create_dir_all(path).map_err(|e| ClusterError::File {
        path: path.to_owned(),
        reason: format!("creating the directory: {e}"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_conflist_names_the_kubernetes_datastore_and_the_node() {
        let text = conflist("node-a", Path::new("/etc/cni/net.d/wren-kubeconfig"));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let plugin = &value["plugins"][0];
        assert_eq!(plugin["type"], "wren");
        assert_eq!(plugin["ipam"]["type"], "wren-ipam");
        assert_eq!(
            plugin["ipam"]["datastore"],
            "kubernetes:///etc/cni/net.d/wren-kubeconfig"
        );
        assert_eq!(plugin["ipam"]["node"], "node-a");
    }

    #[test]
    fn a_plugin_name_with_a_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = copy_plugins(dir.path(), dir.path(), &[String::from("../bgpd")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a file name"), "{error}");
    }
}
