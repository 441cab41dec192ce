//! `[dataplane]`: what bgpd programs on the host beside the routes (issue 15): the
//! pod MTU the CNI plugin reads. The nftables table for pools' `nat_outgoing`
//! follows the pools (with `[ipam]`) and needs no key here.
//!
//! ```toml
//! [dataplane]
//! state_dir = "/var/lib/wren"   # the pod MTU goes to STATE_DIR/mtu
//! mtu = 1450                    # the pod MTU; default: detected (see below)
//! mtu_interface_pattern = "^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)"
//! ```
//!
//! Detection: the smallest MTU of the up interfaces matching
//! `mtu_interface_pattern` (Calico's default), or 1460 when none matches, less the
//! encapsulation's overhead. `mtu` larger than the underlay allows stops bgpd at
//! start with one line naming the interface. The dataplane task runs with
//! `[dataplane]` or `[ipam]`; without either bgpd touches neither the MTU file nor
//! nftables.

use std::fmt;
use std::path::PathBuf;

use regex::Regex;
use serde::{Deserialize, Deserializer, de};

/// Where bgpd keeps what other programs of the node read (the pod MTU).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/wren";
/// The smallest MTU accepted: IPv4's minimum (RFC 791).
pub const MIN_MTU: u32 = 68;
/// The largest MTU an interface can have.
pub const MAX_MTU: u32 = 65535;

/// The `[dataplane]` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneConfig {
    /// The directory of the pod MTU file (`mtu`).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The pod MTU; default: detected.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The interfaces that carry the underlay, for MTU detection.
    #[serde(default)]
    pub mtu_interface_pattern: InterfacePattern,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            state_dir: default_state_dir(),
            mtu: None,
            mtu_interface_pattern: InterfacePattern::default(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}

/// A regular expression over interface names.
#[derive(Clone)]
pub struct InterfacePattern(Regex);

impl InterfacePattern {
    pub fn regex(&self) -> &Regex {
        &self.0
    }
}

impl Default for InterfacePattern {
    fn default() -> Self {
        // The constant is a valid expression (the unit test below compiles it).
        #[allow(clippy::unwrap_used)]
        InterfacePattern(Regex::new(dataplane::mtu::DEFAULT_INTERFACE_PATTERN).unwrap())
    }
}

impl PartialEq for InterfacePattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for InterfacePattern {}

impl fmt::Debug for InterfacePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for InterfacePattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Regex::new(&text).map(InterfacePattern).map_err(|error| {
            let first = error.to_string();
            let line = first.lines().last().unwrap_or("invalid").trim().to_owned();
            de::Error::custom(format!("{text:?} is not a regular expression: {line}"))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n";

    fn parse(rest: &str) -> Result<Config, String> {
        Config::parse(&format!("{BASE}{rest}"), "test.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_keys() {
        let config = parse("[dataplane]\n").unwrap();
        let dataplane = config.dataplane.unwrap();
        assert_eq!(dataplane, super::DataplaneConfig::default());
        assert!(dataplane.mtu_interface_pattern.regex().is_match("eth0"));
        assert!(!dataplane.mtu_interface_pattern.regex().is_match("lo"));
        let config = parse(
            "[dataplane]\nstate_dir = \"/run/w\"\nmtu = 1400\nmtu_interface_pattern = \"^bond\"\n",
        )
        .unwrap();
        let dataplane = config.dataplane.unwrap();
        assert_eq!(dataplane.state_dir, std::path::PathBuf::from("/run/w"));
        assert_eq!(dataplane.mtu, Some(1400));
        assert!(dataplane.mtu_interface_pattern.regex().is_match("bond0"));
        assert!(parse("").unwrap().dataplane.is_none());
    }

    #[test]
    fn bad_values_name_their_key() {
        let error = parse("[dataplane]\nmtu_interface_pattern = \"(eth\"\n").unwrap_err();
        assert!(
            error.contains("test.toml:5") && error.contains("not a regular expression"),
            "{error}"
        );
        assert_eq!(error.lines().count(), 1, "{error}");
        let error = parse("[dataplane]\nmtu = 40\n").unwrap_err();
        assert!(
            error.contains("dataplane.mtu") && error.contains("68"),
            "{error}"
        );
        let error = parse("[dataplane]\nmtu = 70000\n").unwrap_err();
        assert!(error.contains("65535"), "{error}");
        let error = parse("[dataplane]\nmut = 1400\n").unwrap_err();
        assert!(error.contains("unknown field `mut`"), "{error}");
    }
}
