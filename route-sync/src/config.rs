//! Typed configuration of the route syncer.
//!
//! `Config` deserializes from the keys bgpd puts in its `[fib]` section
//! (`table`, `protocol`, `metric`, `ecmp`, `keep_on_shutdown`, ...); every
//! field has a default, unknown keys are rejected, and values that would make
//! route-sync take over routes that are not its own (table 0 or `local`,
//! protocols 0-4 which belong to the kernel, boot and static routes) are
//! refused while parsing, so a `Config` in hand is always usable.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The kernel's main routing table.
pub const TABLE_MAIN: u32 = 254;
/// Wren's route protocol number (`proto wren` once named in rt_protos.d).
pub const PROTOCOL_WREN: u8 = 196;
/// Metric of installed routes; FRR installs BGP routes with metric 20 too.
pub const DEFAULT_METRIC: u32 = 20;

/// Settings of one route syncer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig", into = "RawConfig")]
pub struct Config {
    /// Kernel routing table the routes go into (default 254, `main`).
    pub table: u32,
    /// Route protocol number that marks routes as ours (default 196).
    pub protocol: u8,
    /// Route priority (`metric`) of installed routes (default 20).
    pub metric: u32,
    /// How many next hops one route may have.
    pub ecmp: Ecmp,
    /// Leave the routes in the kernel when the syncer shuts down.
    pub keep_on_shutdown: bool,
    /// Allow next hops to be resolved through a default route.
    pub resolve_via_default: bool,
    /// How often routes the kernel refused are tried again.
    pub retry_interval: Duration,
}

/// ECMP setting: `ecmp = true`, `ecmp = false` or `ecmp = <max paths>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecmp {
    /// One next hop per route (the first after sorting).
    Off,
    /// As many next hops as the route has.
    On,
    /// At most this many next hops (>= 1).
    MaxPaths(u16),
}

impl Ecmp {
    /// Largest number of next hops one route may carry.
    pub fn max_paths(self) -> usize {
        match self {
            Ecmp::Off => 1,
            Ecmp::On => usize::MAX,
            Ecmp::MaxPaths(n) => usize::from(n.max(1)),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            table: TABLE_MAIN,
            protocol: PROTOCOL_WREN,
            metric: DEFAULT_METRIC,
            ecmp: Ecmp::On,
            keep_on_shutdown: false,
            resolve_via_default: false,
            retry_interval: Duration::from_secs(30),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("fib table {0} cannot be used: choose 1-252, 253 (default), 254 (main) or above 255")]
    Table(u32),
    #[error(
        "fib protocol {0} belongs to the kernel (0 unspec, 1 redirect, 2 kernel, 3 boot, 4 static): choose 5-255"
    )]
    Protocol(u8),
    #[error("fib ecmp must be true, false or a number of paths from 1 to 65535, got {0}")]
    Ecmp(String),
    #[error("fib retry_interval_secs must be at least 1, got {0}")]
    RetryInterval(u64),
}

impl Config {
    /// Checks values that serde cannot express as types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.table == 0 || self.table == 255 {
            return Err(ConfigError::Table(self.table));
        }
        if self.protocol <= 4 {
            return Err(ConfigError::Protocol(self.protocol));
        }
        if let Ecmp::MaxPaths(0) = self.ecmp {
            return Err(ConfigError::Ecmp("0".into()));
        }
        if self.retry_interval < Duration::from_secs(1) {
            return Err(ConfigError::RetryInterval(self.retry_interval.as_secs()));
        }
        Ok(())
    }
}

impl fmt::Display for Ecmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ecmp::Off => f.write_str("off"),
            Ecmp::On => f.write_str("on"),
            Ecmp::MaxPaths(n) => write!(f, "max {n} paths"),
        }
    }
}

/// The on-disk shape of [`Config`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    table: u32,
    protocol: u8,
    metric: u32,
    ecmp: RawEcmp,
    keep_on_shutdown: bool,
    resolve_via_default: bool,
    retry_interval_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum RawEcmp {
    Switch(bool),
    Paths(i64),
}

impl Default for RawConfig {
    fn default() -> Self {
        Config::default().into()
    }
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let ecmp = match raw.ecmp {
            RawEcmp::Switch(true) => Ecmp::On,
            RawEcmp::Switch(false) => Ecmp::Off,
            RawEcmp::Paths(n) => match u16::try_from(n) {
                Ok(n) if n >= 1 => Ecmp::MaxPaths(n),
                _ => return Err(ConfigError::Ecmp(n.to_string())),
            },
        };
        let config = Config {
            table: raw.table,
            protocol: raw.protocol,
            metric: raw.metric,
            ecmp,
            keep_on_shutdown: raw.keep_on_shutdown,
            resolve_via_default: raw.resolve_via_default,
            retry_interval: Duration::from_secs(raw.retry_interval_secs),
        };
        config.validate()?;
        Ok(config)
    }
}

impl From<Config> for RawConfig {
    fn from(config: Config) -> Self {
        RawConfig {
            table: config.table,
            protocol: config.protocol,
            metric: config.metric,
            ecmp: match config.ecmp {
                Ecmp::On => RawEcmp::Switch(true),
                Ecmp::Off => RawEcmp::Switch(false),
                Ecmp::MaxPaths(n) => RawEcmp::Paths(i64::from(n)),
            },
            keep_on_shutdown: config.keep_on_shutdown,
            resolve_via_default: config.resolve_via_default,
            retry_interval_secs: config.retry_interval.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        toml::from_str::<Config>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_main_table_protocol_196() {
        let config = parse("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.table, 254);
        assert_eq!(config.protocol, 196);
        assert_eq!(config.ecmp, Ecmp::On);
        assert!(!config.keep_on_shutdown);
    }

    #[test]
    fn ecmp_accepts_bool_and_paths() {
        assert_eq!(parse("ecmp = false").unwrap().ecmp, Ecmp::Off);
        assert_eq!(parse("ecmp = true").unwrap().ecmp, Ecmp::On);
        assert_eq!(parse("ecmp = 4").unwrap().ecmp, Ecmp::MaxPaths(4));
        assert_eq!(Ecmp::MaxPaths(4).max_paths(), 4);
        assert_eq!(Ecmp::Off.max_paths(), 1);
        assert!(parse("ecmp = 0").unwrap_err().contains("ecmp"));
        assert!(parse("ecmp = 70000").unwrap_err().contains("ecmp"));
    }

    #[test]
    fn refuses_foreign_protocols_tables_and_unknown_keys() {
        assert!(parse("protocol = 4").unwrap_err().contains("protocol 4"));
        assert!(parse("table = 255").unwrap_err().contains("table 255"));
        assert!(parse("table = 0").unwrap_err().contains("table 0"));
        assert!(parse("tabel = 10").unwrap_err().contains("tabel"));
        assert!(
            parse("retry_interval_secs = 0")
                .unwrap_err()
                .contains("retry")
        );
    }

    #[test]
    fn round_trips_through_toml() {
        let config =
            parse("table = 100\nprotocol = 200\necmp = 8\nkeep_on_shutdown = true").unwrap();
        let text = toml::to_string(&config).unwrap();
        assert_eq!(parse(&text).unwrap(), config);
    }
}
