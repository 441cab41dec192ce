//! Timer negotiation (RFC 5880 sections 6.8.2 to 6.8.4 and 6.8.7), as pure functions
//! of the values each side advertises.

use std::time::Duration;

use crate::state::State;

/// The least desired transmit interval advertised while a session is not Up (section
/// 6.8.3: not less than one second).
pub const SLOW_TX_INTERVAL: Duration = Duration::from_secs(1);

/// The desired minimum transmit interval to advertise in `state`: the configured one
/// when Up, at least [`SLOW_TX_INTERVAL`] otherwise.
pub fn advertised_min_tx(configured: Duration, state: State) -> Duration {
    if state == State::Up {
        configured
    } else {
        configured.max(SLOW_TX_INTERVAL)
    }
}

/// The periodic transmit interval before jitter: the greater of our desired minimum
/// transmit interval and the peer's required minimum receive interval; `None` when
/// the peer's required minimum receive interval is 0 (it asks for no periodic
/// packets, section 6.8.7).
pub fn transmit_interval(
    desired_min_tx: Duration,
    remote_required_min_rx: Duration,
) -> Option<Duration> {
    if remote_required_min_rx.is_zero() {
        None
    } else {
        Some(desired_min_tx.max(remote_required_min_rx))
    }
}

/// The detection time in asynchronous mode (section 6.8.4): the peer's Detect Mult
/// times the greater of our required minimum receive interval and the peer's desired
/// minimum transmit interval.
pub fn detection_time(
    remote_detect_mult: u8,
    required_min_rx: Duration,
    remote_desired_min_tx: Duration,
) -> Duration {
    required_min_rx.max(remote_desired_min_tx) * u32::from(remote_detect_mult)
}
