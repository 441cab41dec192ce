//! A session's `bfd` key (and `[bgp] node_mesh_bfd`): `bfd = true` (FRR's defaults:
//! 300 ms, 300 ms, 3) or `bfd = { min_tx = 300, min_rx = 300, multiplier = 3,
//! on_down = "reset" | "graceful" }`. With it, the session follows a BFD session to
//! its peer (bgpd's `bfd_task`) and closes with Cease / BFD Down (RFC 9384) when BFD
//! sees the path fail.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// The least and greatest interval accepted, in milliseconds (FRR's range).
pub const INTERVAL_RANGE_MS: std::ops::RangeInclusive<u32> = 10..=60_000;

/// What a BGP session does when its BFD session goes down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDown {
    /// Close the session with Cease / BFD Down: its routes leave the RIB and the
    /// kernel, and it reconnects by itself.
    #[default]
    Reset,
    /// Close the session likewise, but keep the peer's routes as stale ones, as
    /// graceful restart's helper does (BIRD's `bfd graceful`): in the RIB and the
    /// kernel until the peer's End-of-RIB after it returns (routes it did not send
    /// again go), or until its restart time runs out. Needs graceful restart
    /// negotiated with the peer; without it the routes go as with `reset`.
    Graceful,
}

/// BFD timers of one session, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BfdOptions {
    /// Desired minimum transmit interval (ms).
    #[serde(default = "default_interval")]
    pub min_tx: u32,
    /// Required minimum receive interval (ms).
    #[serde(default = "default_interval")]
    pub min_rx: u32,
    /// Detection time multiplier.
    #[serde(default = "default_multiplier")]
    pub multiplier: u8,
    #[serde(default)]
    pub on_down: OnDown,
}

impl Default for BfdOptions {
    fn default() -> Self {
        BfdOptions {
            min_tx: default_interval(),
            min_rx: default_interval(),
            multiplier: default_multiplier(),
            on_down: OnDown::Reset,
        }
    }
}

impl BfdOptions {
    /// The BFD session's configuration.
    pub fn session_config(&self) -> bfd::SessionConfig {
        bfd::SessionConfig {
            desired_min_tx: Duration::from_millis(self.min_tx.into()),
            required_min_rx: Duration::from_millis(self.min_rx.into()),
            detect_mult: self.multiplier,
        }
    }

    /// What is wrong with these values, if anything: (key, message).
    /// `graceful_restart`: whether `[bgp.graceful_restart]` is enabled, which
    /// `on_down = "graceful"` needs.
    pub fn problems(&self, graceful_restart: bool) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.on_down == OnDown::Graceful && !graceful_restart {
            problems.push((
                "on_down",
                "on_down = \"graceful\" keeps routes through graceful restart, which [bgp.graceful_restart] disables".to_owned(),
            ));
        }
        for (key, value) in [("min_tx", self.min_tx), ("min_rx", self.min_rx)] {
            if !INTERVAL_RANGE_MS.contains(&value) {
                problems.push((
                    key,
                    format!(
                        "{key} must be between {} and {} milliseconds",
                        INTERVAL_RANGE_MS.start(),
                        INTERVAL_RANGE_MS.end()
                    ),
                ));
            }
        }
        if self.multiplier == 0 {
            problems.push((
                "multiplier",
                "multiplier must be between 1 and 255".to_owned(),
            ));
        }
        problems
    }
}

fn default_interval() -> u32 {
    bfd::DEFAULT_MIN_TX.as_millis() as u32
}

fn default_multiplier() -> u8 {
    bfd::DEFAULT_DETECT_MULT
}

/// Reads `bfd = true | false | { ... }` into `Some(options)` or `None`.
pub fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BfdOptions>, D::Error> {
    deserializer.deserialize_any(BfdVisitor)
}

struct BfdVisitor;

impl<'de> Visitor<'de> for BfdVisitor {
    type Value = Option<BfdOptions>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true, false or a table { min_tx, min_rx, multiplier, on_down }")
    }

    fn visit_bool<E: de::Error>(self, enabled: bool) -> Result<Self::Value, E> {
        Ok(enabled.then(BfdOptions::default))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        BfdOptions::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }
}
