//! The plugin's inputs: the `CNI_*` environment and the network configuration on stdin.
//! The configuration's standard keys are `rscni_types`' `NetConf`; the keys of this
//! plugin (`mtu`, `mtu_file`) are [`PluginConf`], which refuses any other key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rscni_types::types::{Cmd, NetConf};
use rscni_types::version::{PluginInfo, SpecVersion};
use serde::Deserialize;

use crate::error::{Error, Result, code};

/// The name this plugin is configured by (`"type": "wren"`).
pub const PLUGIN_TYPE: &str = "wren";
/// Prefix of every host-side veth this plugin makes.
pub const HOST_LINK_PREFIX: &str = "wren";
/// Hex characters of the sha1 after the prefix: 4 + 11 = 15, the kernel's longest name.
const HOST_LINK_HASH_LEN: usize = 11;

/// The versions this plugin speaks (CHECK from 0.4.0, STATUS and GC from 1.1.0).
pub fn plugin_info() -> PluginInfo {
    PluginInfo::new(
        SpecVersion::new(1, 1, 0),
        vec![
            SpecVersion::new(0, 3, 1),
            SpecVersion::new(0, 4, 0),
            SpecVersion::new(1, 0, 0),
            SpecVersion::new(1, 1, 0),
        ],
    )
}

/// The `CNI_*` variables of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub command: Cmd,
    pub container_id: Option<String>,
    pub netns: Option<PathBuf>,
    pub ifname: Option<String>,
    /// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`.
    pub args: HashMap<String, String>,
    /// `CNI_PATH`: where delegated plugins are searched, first match wins.
    pub path: Vec<PathBuf>,
}

impl Env {
    /// Reads the environment of this process.
    pub fn from_process() -> Result<Env> {
        Env::from_map(&std::env::vars().collect())
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Env> {
        let get = |name: &str| vars.get(name).filter(|v| !v.is_empty()).cloned();
        let command = get("CNI_COMMAND")
            .ok_or_else(|| Error::Environment(String::from("CNI_COMMAND is not set")))?;
        let command: Cmd = command.parse().map_err(|_| {
            Error::Environment(format!(
                "CNI_COMMAND {command:?} is not ADD, DEL, CHECK, STATUS, GC or VERSION"
            ))
        })?;
        let mut args = HashMap::new();
        for pair in get("CNI_ARGS").unwrap_or_default().split(';') {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                Error::Environment(format!("CNI_ARGS: {pair:?} is not KEY=VALUE"))
            })?;
            args.insert(key.to_string(), value.to_string());
        }
        Ok(Env {
            command,
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS").map(PathBuf::from),
            ifname: get("CNI_IFNAME"),
            args,
            path: get("CNI_PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
        })
    }

    fn required<'a>(&self, name: &str, value: Option<&'a str>) -> Result<&'a str> {
        value.ok_or_else(|| Error::Environment(format!("{name} is not set")))
    }

    pub fn container_id(&self) -> Result<&str> {
        self.required("CNI_CONTAINERID", self.container_id.as_deref())
    }

    pub fn ifname(&self) -> Result<&str> {
        let name = self.required("CNI_IFNAME", self.ifname.as_deref())?;
        if name.len() > 15 || name.contains(['/', ' ', ':']) || name == "." || name == ".." {
            return Err(Error::Environment(format!(
                "CNI_IFNAME {name:?} is not a Linux interface name"
            )));
        }
        Ok(name)
    }

    pub fn netns(&self) -> Result<&Path> {
        self.netns
            .as_deref()
            .ok_or_else(|| Error::Environment(String::from("CNI_NETNS is not set")))
    }

    /// `NAMESPACE.POD` from `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`), when both
    /// are there.
    pub fn pod(&self) -> Option<String> {
        let namespace = self
            .args
            .get("K8S_POD_NAMESPACE")
            .filter(|v| !v.is_empty())?;
        let name = self.args.get("K8S_POD_NAME").filter(|v| !v.is_empty())?;
        Some(format!("{namespace}.{name}"))
    }

    /// The host side of the pod's veth: `wren` and 11 hex characters of the sha1 of
    /// `NAMESPACE.POD`, else of the container id.
    pub fn host_link(&self) -> Result<String> {
        let seed = match self.pod() {
            Some(pod) => pod,
            None => self.container_id()?.to_string(),
        };
        Ok(host_link_name(&seed))
    }

    /// What the host link's alias records: `CONTAINERID/IFNAME`, which GC matches
    /// against the runtime's valid attachments.
    pub fn attachment(&self) -> Result<String> {
        Ok(attachment(self.container_id()?, self.ifname()?))
    }
}

/// `wren` + the first 11 hex characters of sha1(`seed`).
pub fn host_link_name(seed: &str) -> String {
    let digest = sha1_smol::Sha1::from(seed).digest().to_string();
    format!(
        "{HOST_LINK_PREFIX}{}",
        &digest[..HOST_LINK_HASH_LEN.min(digest.len())]
    )
}

/// Whether `name` is one this plugin makes (`wren` + 11 lowercase hex characters).
pub fn is_host_link(name: &str) -> bool {
    name.strip_prefix(HOST_LINK_PREFIX).is_some_and(|hash| {
        hash.len() == HOST_LINK_HASH_LEN
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The alias text of an attachment.
pub fn attachment(container_id: &str, ifname: &str) -> String {
    format!("{container_id}/{ifname}")
}

/// This plugin's own keys of the network configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConf {
    /// The pod MTU; when set it wins over `mtu_file`.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The file bgpd writes the pod MTU to (default [`crate::mtu::DEFAULT_MTU_FILE`]).
    #[serde(default)]
    pub mtu_file: Option<PathBuf>,
}

/// A parsed network configuration with its negotiated version.
#[derive(Debug, Clone)]
pub struct Config {
    pub net: NetConf,
    pub version: SpecVersion,
    pub plugin: PluginConf,
    /// The text on stdin, passed unchanged to the IPAM plugin.
    pub raw: Vec<u8>,
}

impl Config {
    /// Parses stdin for `command` and negotiates the version.
    pub fn parse(stdin: &[u8], command: Cmd) -> Result<Config> {
        let net: NetConf = serde_json::from_slice(stdin).map_err(|e| Error::Protocol {
            code: if e.is_syntax() || e.is_eof() {
                code::DECODE_FAILED
            } else {
                code::INVALID_CONFIG
            },
            message: format!("network configuration on stdin: {e}"),
        })?;
        let version = plugin_info().negotiate(&net, command)?;
        if net.r#type != PLUGIN_TYPE {
            return Err(Error::Config(format!(
                "\"type\" is {:?}, this plugin is {PLUGIN_TYPE:?}",
                net.r#type
            )));
        }
        let plugin: PluginConf = serde_json::from_value(serde_json::Value::Object(
            net.custom.clone().into_iter().collect(),
        ))
        .map_err(|e| Error::Config(e.to_string()))?;
        if net.ipam.is_none() {
            return Err(Error::Config(String::from(
                "\"ipam\" is missing: wren delegates addresses to an IPAM plugin (\"ipam\": {\"type\": \"wren-ipam\"})",
            )));
        }
        Ok(Config {
            net,
            version,
            plugin,
            raw: stdin.to_vec(),
        })
    }

    /// The IPAM plugin's type.
    pub fn ipam_type(&self) -> &str {
        self.net
            .ipam
            .as_ref()
            .map_or("", |ipam| ipam.r#type.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<Env> {
        Env::from_map(
            &vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_host_link_is_named_after_the_pod_else_the_container() {
        let by_pod = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
            ),
        ]);
        let name = by_pod.and_then(|e| e.host_link()).unwrap_or_default();
        // sha1("default.web-0") begins 0d7763386da.
        assert_eq!(name, "wren0d7763386da");
        assert_eq!(name.len(), 15);
        assert!(is_host_link(&name));
        let by_container = env(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "abc")])
            .and_then(|e| e.host_link())
            .unwrap_or_default();
        assert_eq!(by_container, "wrena9993e36470");
        assert!(!is_host_link("wren.vxlan"));
        assert!(!is_host_link("wrenA9993E36470"));
    }

    #[test]
    fn bad_environment_is_one_line() {
        let error = env(&[("CNI_COMMAND", "ATTACH")])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("CNI_COMMAND \"ATTACH\" is not ADD, DEL, CHECK, STATUS, GC or VERSION")
        );
        let error = env(&[("CNI_COMMAND", "ADD"), ("CNI_ARGS", "K8S_POD_NAME")])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("CNI_ARGS: \"K8S_POD_NAME\" is not KEY=VALUE")
        );
    }

    #[test]
    fn unknown_keys_and_old_versions_are_refused() {
        let parse = |text: &str, cmd| Config::parse(text.as_bytes(), cmd).map(|c| c.plugin);
        let ok = parse(
            r#"{"cniVersion":"1.1.0","name":"n","type":"wren","mtu":1400,"ipam":{"type":"wren-ipam"}}"#,
            Cmd::Add,
        );
        assert_eq!(ok.ok().and_then(|p| p.mtu), Some(1400));
        let typo = parse(
            r#"{"cniVersion":"1.1.0","name":"n","type":"wren","mut":1400,"ipam":{"type":"wren-ipam"}}"#,
            Cmd::Add,
        );
        assert!(matches!(typo, Err(Error::Config(m)) if m.contains("unknown field `mut`")));
        let status_at_1_0 = parse(
            r#"{"cniVersion":"1.0.0","name":"n","type":"wren","ipam":{"type":"wren-ipam"}}"#,
            Cmd::Status,
        );
        assert_eq!(
            status_at_1_0.err().map(|e| e.code()),
            Some(code::INCOMPATIBLE_VERSION)
        );
        let no_ipam = parse(
            r#"{"cniVersion":"1.1.0","name":"n","type":"wren"}"#,
            Cmd::Add,
        );
        assert!(matches!(no_ipam, Err(Error::Config(_))));
    }
}
