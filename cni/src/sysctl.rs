//! The sysctls of a pod's veth. `/proc/sys/net` shows the network namespace of the
//! thread that opens it, so the pod's are written from the thread inside its namespace.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// One setting: its path under `/proc/sys/net/` and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    pub key: String,
    pub value: &'static str,
}

impl Sysctl {
    fn new(key: String, value: &'static str) -> Sysctl {
        Sysctl { key, value }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/proc/sys/net").join(&self.key)
    }

    /// Writes the value.
    pub fn apply(&self) -> Result<()> {
        std::fs::write(self.path(), self.value).map_err(|e| {
            Error::kernel(format!("writing net.{} = {}", self.dotted(), self.value), e)
        })
    }

    /// Reads the value back: a description naming the setting and both values when it
    /// differs.
    pub fn verify(&self) -> Result<Option<String>> {
        let now = std::fs::read_to_string(self.path())
            .map_err(|e| Error::kernel(format!("reading net.{}", self.dotted()), e))?;
        let now = now.trim();
        Ok((now != self.value)
            .then(|| format!("net.{} is {now}, not {}", self.dotted(), self.value)))
    }

    /// `ipv4.conf.wrenX.proxy_arp`.
    pub fn dotted(&self) -> String {
        self.key.replace('/', ".")
    }
}

/// The host veth's settings: proxy ARP answering for 169.254.1.1 at once, forwarding,
/// and for IPv6 proxy NDP without router advertisements or duplicate address detection.
pub fn host_link(name: &str, ipv4: bool, ipv6: bool) -> Vec<Sysctl> {
    let mut out = Vec::new();
    if ipv4 {
        out.extend([
            Sysctl::new(format!("ipv4/conf/{name}/proxy_arp"), "1"),
            Sysctl::new(format!("ipv4/neigh/{name}/proxy_delay"), "0"),
            Sysctl::new(format!("ipv4/conf/{name}/forwarding"), "1"),
            Sysctl::new(format!("ipv4/conf/{name}/route_localnet"), "1"),
        ]);
    }
    if ipv6 {
        out.extend([
            Sysctl::new(format!("ipv6/conf/{name}/disable_ipv6"), "0"),
            Sysctl::new(format!("ipv6/conf/{name}/accept_dad"), "0"),
            Sysctl::new(format!("ipv6/conf/{name}/accept_ra"), "0"),
            Sysctl::new(format!("ipv6/conf/{name}/proxy_ndp"), "1"),
            Sysctl::new(format!("ipv6/conf/{name}/forwarding"), "1"),
        ]);
    }
    out
}

/// The host's global forwarding switches.
pub fn host_forwarding(ipv4: bool, ipv6: bool) -> Vec<Sysctl> {
    let mut out = Vec::new();
    if ipv4 {
        out.push(Sysctl::new(String::from("ipv4/ip_forward"), "1"));
    }
    if ipv6 {
        out.push(Sysctl::new(String::from("ipv6/conf/all/forwarding"), "1"));
    }
    out
}

/// The pod interface's settings for IPv6 (IPv4 needs none).
pub fn pod_link(name: &str, ipv6: bool) -> Vec<Sysctl> {
    if !ipv6 {
        return Vec::new();
    }
    vec![
        Sysctl::new(format!("ipv6/conf/{name}/disable_ipv6"), "0"),
        Sysctl::new(format!("ipv6/conf/{name}/accept_dad"), "0"),
    ]
}

/// Applies every setting in order.
pub fn apply_all(settings: &[Sysctl]) -> Result<()> {
    settings.iter().try_for_each(Sysctl::apply)
}

/// The first setting that differs, described.
pub fn first_difference(settings: &[Sysctl]) -> Result<Option<String>> {
    for setting in settings {
        if let Some(difference) = setting.verify()? {
            return Ok(Some(difference));
        }
    }
    Ok(None)
}
