//! `[fib]`: whether and how best routes go into the kernel.
//!
//! ```toml
//! [fib]
//! enabled = true               # default
//! table = 254                  # route-sync's keys, see route_sync::Config
//! protocol = 196
//! metric = 20
//! ecmp = true                  # true, false or a number of paths
//! keep_on_shutdown = false
//! resolve_via_default = false
//! retry_interval_secs = 30
//! ```
//!
//! `enabled` is bgpd's; every other key belongs to route-sync and is handed to it as
//! is (it refuses unknown keys itself). Errors from route-sync name their key, so the
//! error line points at it.

use serde::{Deserialize, Deserializer, de};

/// The `[fib]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibConfig {
    /// Install best routes in the kernel (default true).
    pub enabled: bool,
    /// How route-sync installs them.
    pub sync: route_sync::Config,
}

impl Default for FibConfig {
    fn default() -> Self {
        FibConfig {
            enabled: true,
            sync: route_sync::Config::default(),
        }
    }
}

impl<'de> Deserialize<'de> for FibConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(deserializer)?;
        let enabled = match table.remove("enabled") {
            None => true,
            Some(toml::Value::Boolean(enabled)) => enabled,
            Some(other) => {
                return Err(de::Error::custom(format!(
                    "`enabled`: expected true or false, found {}",
                    other.type_str()
                )));
            }
        };
        let sync = sync_config(&table).map_err(de::Error::custom)?;
        Ok(FibConfig { enabled, sync })
    }
}

/// route-sync's config from the rest of the table; on failure, the message names the
/// first key that fails alone ("`table`: ..."), or the unknown key.
fn sync_config(table: &toml::Table) -> Result<route_sync::Config, String> {
    let whole = route_sync::Config::deserialize(toml::Value::Table(table.clone()));
    let error = match whole {
        Ok(config) => return Ok(config),
        Err(error) => error.to_string(),
    };
    for (key, value) in table {
        let mut alone = toml::Table::new();
        alone.insert(key.clone(), value.clone());
        if let Err(single) = route_sync::Config::deserialize(toml::Value::Table(alone)) {
            let message = single.to_string();
            if message.starts_with("unknown field") {
                return Err(message);
            }
            return Err(format!("`{key}`: {message}"));
        }
    }
    Err(error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FibConfig, String> {
        toml::from_str::<FibConfig>(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn enabled_is_ours_and_the_rest_is_route_sync() {
        let config = parse("enabled = false\ntable = 100\necmp = 4").unwrap();
        assert!(!config.enabled);
        assert_eq!(config.sync.table, 100);
        assert_eq!(config.sync.ecmp, route_sync::Ecmp::MaxPaths(4));
        assert_eq!(parse("").unwrap(), FibConfig::default());
        assert!(parse("").unwrap().enabled);
    }

    #[test]
    fn errors_name_their_key() {
        assert!(
            parse("tabel = 1")
                .unwrap_err()
                .starts_with("unknown field `tabel`")
        );
        let error = parse("metric = 5\nprotocol = 3").unwrap_err();
        assert!(error.starts_with("`protocol`: "), "{error}");
        assert!(parse("enabled = 1").unwrap_err().starts_with("`enabled`: "));
    }
}
