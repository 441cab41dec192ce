//! The plugin's inputs: the `CNI_*` environment and the network configuration on
//! stdin, of which the plugin owns the `ipam` object (`type`, `datastore`, `node`).

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Deserialize;

use super::code;
use super::result::{CniError, SUPPORTED_VERSIONS};
use crate::records::PodReference;

/// The datastore used when the configuration names none.
pub const DEFAULT_DATASTORE: &str = "sqlite:///var/lib/wren/ipam.db";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

/// The `CNI_*` environment variables the plugin reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniEnv {
    pub command: Command,
    pub container_id: Option<String>,
    pub ifname: Option<String>,
    /// The pod, from `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_UID`),
    /// when the runtime is Kubernetes'.
    pub pod: Option<PodReference>,
    /// `NODENAME`: the node's name when the network configuration names none.
    pub nodename: Option<String>,
}

impl CniEnv {
    /// Reads the environment of this process.
    pub fn from_process() -> Result<CniEnv, CniError> {
        CniEnv::from_map(&std::env::vars().collect())
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<CniEnv, CniError> {
        let command = match vars.get("CNI_COMMAND").map(String::as_str) {
            Some("ADD") => Command::Add,
            Some("DEL") => Command::Del,
            Some("CHECK") => Command::Check,
            Some("STATUS") => Command::Status,
            Some("GC") => Command::Gc,
            Some("VERSION") => Command::Version,
            Some(other) => {
                return Err(CniError::new(
                    "1.0.0",
                    code::INVALID_ENVIRONMENT,
                    format!("CNI_COMMAND {other:?} is not ADD, DEL, CHECK, STATUS, GC or VERSION"),
                ));
            }
            None => {
                return Err(CniError::new(
                    "1.0.0",
                    code::INVALID_ENVIRONMENT,
                    String::from("CNI_COMMAND is not set"),
                ));
            }
        };
        let get = |name: &str| vars.get(name).filter(|v| !v.is_empty()).cloned();
        Ok(CniEnv {
            command,
            container_id: get("CNI_CONTAINERID"),
            ifname: get("CNI_IFNAME"),
            pod: pod_of(vars.get("CNI_ARGS").map(String::as_str))?,
            nodename: get(crate::node_name::NODENAME_ENV),
        })
    }

    /// `CONTAINERID.IFNAME`, the handle of the container's addresses.
    pub fn handle(&self) -> Result<String, CniError> {
        let missing = |name: &str| {
            CniError::new(
                "1.0.0",
                code::INVALID_ENVIRONMENT,
                format!("{name} is not set"),
            )
        };
        let id = self
            .container_id
            .as_deref()
            .ok_or_else(|| missing("CNI_CONTAINERID"))?;
        let ifname = self
            .ifname
            .as_deref()
            .ok_or_else(|| missing("CNI_IFNAME"))?;
        let handle = format!("{id}.{ifname}");
        crate::keys::validate_handle(&handle)
            .map_err(|e| CniError::new("1.0.0", code::INVALID_ENVIRONMENT, e.to_string()))?;
        Ok(handle)
    }
}

/// The pod `CNI_ARGS` (`KEY=VALUE;KEY=VALUE`) names: none without
/// `K8S_POD_NAMESPACE` and `K8S_POD_NAME`; other keys are the main plugin's.
fn pod_of(args: Option<&str>) -> Result<Option<PodReference>, CniError> {
    let bad = |reason: String| CniError::new("1.0.0", code::INVALID_ENVIRONMENT, reason);
    let (mut namespace, mut name, mut uid) = (None, None, None);
    for pair in args
        .unwrap_or_default()
        .split(';')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("CNI_ARGS: {pair:?} is not KEY=VALUE")))?;
        let value = Some(value.to_owned()).filter(|v| !v.is_empty());
        match key {
            "K8S_POD_NAMESPACE" => namespace = value,
            "K8S_POD_NAME" => name = value,
            "K8S_POD_UID" => uid = value,
            _ => {}
        }
    }
    let pod = match (namespace, name) {
        (None, None) => return Ok(None),
        (Some(namespace), Some(name)) => PodReference {
            namespace,
            name,
            uid,
        },
        _ => {
            return Err(bad(String::from(
                "CNI_ARGS has one of K8S_POD_NAMESPACE and K8S_POD_NAME without the other",
            )));
        }
    };
    pod.validate()
        .map_err(|reason| bad(format!("CNI_ARGS: {reason}")))?;
    Ok(Some(pod))
}

/// The parts of the network configuration the plugin reads; the other keys belong to
/// the main plugin and are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub name: String,
    pub ipam: IpamConf,
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<serde_json::Value>,
    /// The runtime's live attachments (GC, CNI 1.1).
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<Attachment>>,
}

/// One entry of `cni.dev/valid-attachments`.
#[derive(Debug, Clone, Deserialize)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The `ipam` object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamConf {
    #[serde(rename = "type")]
    pub kind: String,
    /// `sqlite:///PATH` or `etcd://HOST:PORT[,...]`.
    #[serde(default = "default_datastore")]
    pub datastore: String,
    /// This node's name (default: the host name).
    #[serde(default)]
    pub node: Option<String>,
    /// bgpd's control socket, told after each ADD and DEL (default
    /// `/run/wren/bgpd.sock`; `""`: tell nobody).
    #[serde(default)]
    pub control_socket: Option<String>,
    /// Reserve the node's gateway address per family and return it as each pod's
    /// gateway, for main plugins that put a gateway on the host side (`ptp`). Plugins
    /// that route through a fixed link-local gateway (`wren`) leave it unset: then a pod
    /// gets its address as a host prefix (`/32`, `/128`) and no address is reserved.
    #[serde(default)]
    pub gateway: bool,
}

fn default_datastore() -> String {
    DEFAULT_DATASTORE.to_string()
}

impl NetConf {
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        // The version first, so that later errors carry it.
        let version = serde_json::from_slice::<serde_json::Value>(stdin)
            .ok()
            .and_then(|v| {
                v.get("cniVersion")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from("1.0.0"));
        let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| {
            let code = if e.is_syntax() || e.is_eof() {
                code::DECODE_FAILED
            } else {
                code::INVALID_CONFIG
            };
            CniError::new(
                &version,
                code,
                format!("network configuration on stdin: {e}"),
            )
        })?;
        if !SUPPORTED_VERSIONS.contains(&conf.cni_version.as_str()) {
            return Err(CniError::new(
                "1.0.0",
                code::INCOMPATIBLE_VERSION,
                format!(
                    "cniVersion {:?} is not supported (supported: {})",
                    conf.cni_version,
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ));
        }
        if conf.ipam.kind != "wren-ipam" {
            return Err(CniError::new(
                &conf.cni_version,
                code::INVALID_CONFIG,
                format!(
                    "ipam type is {:?}, this plugin is \"wren-ipam\"",
                    conf.ipam.kind
                ),
            ));
        }
        Ok(conf)
    }

    /// The addresses of `prevResult` (CHECK).
    pub fn previous_addresses(&self) -> Result<Vec<IpAddr>, CniError> {
        let Some(prev) = &self.prev_result else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for ip in prev
            .get("ips")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let text = ip
                .get("address")
                .and_then(|a| a.as_str())
                .unwrap_or_default();
            let address = text
                .split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| {
                    CniError::new(
                        &self.cni_version,
                        code::INVALID_CONFIG,
                        format!("prevResult address {text:?} is not ADDRESS/PREFIX"),
                    )
                })?;
            out.push(address);
        }
        Ok(out)
    }
}

impl IpamConf {
    /// The control socket to notify after a change, if any.
    pub fn control_socket(&self) -> Option<&std::path::Path> {
        match self.control_socket.as_deref() {
            None => Some(std::path::Path::new(super::notify::DEFAULT_CONTROL_SOCKET)),
            Some("") => None,
            Some(path) => Some(std::path::Path::new(path)),
        }
    }

    /// The configured node name, else `nodename` (the `NODENAME` environment
    /// variable), else the host name: bgpd's rule (`crate::node_name`).
    pub fn node_name(&self, nodename: Option<&str>) -> Result<String, CniError> {
        let invalid = |reason: String| CniError::new("1.0.0", code::INVALID_CONFIG, reason);
        let name = match &self.node {
            Some(node) => node.clone(),
            None => crate::node_name::resolve(nodename, crate::node_name::host_name)
                .map_err(|e| invalid(format!("ipam.node is not set and the {e}")))?,
        };
        crate::keys::validate_node(&name).map_err(|e| invalid(format!("ipam.node: {e}")))?;
        Ok(name)
    }
}
