//! What the plugin prints: the ADD result, the VERSION result and the error object,
//! in the JSON of the CNI spec (1.0 and 1.1, and 0.3.x/0.4.0 where they differ).

use std::net::IpAddr;

use serde::Serialize;

/// The CNI versions this plugin speaks.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// An ADD result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CniResult {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub ips: Vec<IpConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpConfig {
    /// "4" or "6" (results before 1.0 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `ADDRESS/PREFIX`.
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub dst: String,
    pub gw: IpAddr,
}

impl CniResult {
    pub fn new(version: &str) -> CniResult {
        CniResult {
            cni_version: version.to_string(),
            ips: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// Adds an address with its gateway and a default route through the gateway.
    pub fn push(&mut self, address: IpAddr, gateway: IpAddr, prefix_len: u8) {
        self.push_address(address, Some(gateway), prefix_len);
        self.routes.push(Route {
            dst: String::from(if address.is_ipv4() {
                "0.0.0.0/0"
            } else {
                "::/0"
            }),
            gw: gateway,
        });
    }

    /// Adds an address without gateway or route, as a host prefix (`/32`, `/128`).
    pub fn push_host(&mut self, address: IpAddr) {
        let bits = if address.is_ipv4() { 32 } else { 128 };
        self.push_address(address, None, bits);
    }

    fn push_address(&mut self, address: IpAddr, gateway: Option<IpAddr>, prefix_len: u8) {
        let legacy = self.cni_version.starts_with("0.");
        self.ips.push(IpConfig {
            version: legacy.then(|| String::from(if address.is_ipv4() { "4" } else { "6" })),
            address: format!("{address}/{prefix_len}"),
            gateway,
        });
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The VERSION result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionResult {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    #[serde(rename = "supportedVersions")]
    pub supported_versions: Vec<String>,
}

impl VersionResult {
    /// Answers in the version stdin asks for, when it is one we speak.
    pub fn new(stdin: &[u8]) -> VersionResult {
        let asked = serde_json::from_slice::<serde_json::Value>(stdin)
            .ok()
            .and_then(|v| {
                v.get("cniVersion")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()));
        VersionResult {
            cni_version: asked.unwrap_or_else(|| String::from("1.1.0")),
            supported_versions: SUPPORTED_VERSIONS.iter().map(|v| v.to_string()).collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A CNI error object (printed on stdout with a non-zero exit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("CNI error {code}: {msg}")]
pub struct CniError {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(version: &str, code: u32, msg: String) -> CniError {
        CniError {
            cni_version: version.to_string(),
            code,
            msg,
            details: String::new(),
        }
    }

    pub fn detail(mut self, details: &str) -> CniError {
        self.details = details.to_string();
        self
    }

    /// The same error reported in the configuration's version.
    pub fn with_version(mut self, version: &str) -> CniError {
        self.cni_version = version.to_string();
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
