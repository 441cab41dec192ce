//! A session's configured timers (RFC 5880 section 6.8.1: bfd.DesiredMinTxInterval,
//! bfd.RequiredMinRxInterval, bfd.DetectMult), with FRR's defaults.

use std::time::Duration;

use crate::error::ConfigError;
use crate::packet::MAX_INTERVAL;

/// FRR's default desired minimum transmit interval (300 ms).
pub const DEFAULT_MIN_TX: Duration = Duration::from_millis(300);
/// FRR's default required minimum receive interval (300 ms).
pub const DEFAULT_MIN_RX: Duration = Duration::from_millis(300);
/// FRR's default detection time multiplier (3).
pub const DEFAULT_DETECT_MULT: u8 = 3;

/// The timers one session asks for; see [`crate::timers`] for what is negotiated from
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionConfig {
    /// bfd.DesiredMinTxInterval once Up (raised to 1 s while not Up).
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval.
    pub required_min_rx: Duration,
    /// bfd.DetectMult: how many of our intervals the peer waits before declaring us
    /// down.
    pub detect_mult: u8,
}

impl Default for SessionConfig {
    /// FRR's defaults: 300 ms, 300 ms, 3.
    fn default() -> Self {
        SessionConfig {
            desired_min_tx: DEFAULT_MIN_TX,
            required_min_rx: DEFAULT_MIN_RX,
            detect_mult: DEFAULT_DETECT_MULT,
        }
    }
}

impl SessionConfig {
    /// Checks that a packet can carry every value and that none is 0.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.detect_mult == 0 {
            return Err(ConfigError::ZeroDetectMult);
        }
        for (name, interval) in [
            ("min_tx", self.desired_min_tx),
            ("min_rx", self.required_min_rx),
        ] {
            // The packet counts microseconds: below 1 us is 0 on the wire.
            if interval < Duration::from_micros(1) {
                return Err(ConfigError::ZeroInterval { name });
            }
            if interval > MAX_INTERVAL {
                return Err(ConfigError::IntervalTooLarge { name, interval });
            }
        }
        Ok(())
    }
}
