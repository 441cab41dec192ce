//! Property tests: the codec on arbitrary bytes and packets, and two sessions wired
//! together from arbitrary starts (configurations, delays, seeds, losses, admin
//! down, changes of intervals).
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::Duration;

use bfd::{ControlPacket, Diagnostic, PACKET_LEN, SessionConfig, State};
use common::Pair;
use proptest::prelude::*;

fn any_state() -> impl Strategy<Value = State> {
    (0u8..4).prop_map(State::from_code)
}

prop_compose! {
    fn any_packet()(
        diag in 0u8..32, state in any_state(), poll: bool, r#final: bool,
        control_plane_independent: bool, demand: bool, detect_mult in 1u8..,
        my_discriminator in 1u32.., your in any::<u32>(), desired_min_tx: u32,
        required_min_rx: u32, required_min_echo_rx: u32,
    ) -> ControlPacket {
        let your_discriminator = if matches!(state, State::Down | State::AdminDown) { your } else { your.max(1) };
        ControlPacket {
            diagnostic: Diagnostic::from_code(diag), state, poll, r#final,
            control_plane_independent, demand, detect_mult, my_discriminator,
            your_discriminator, desired_min_tx, required_min_rx, required_min_echo_rx,
        }
    }
}

prop_compose! {
    /// Timers from 10 ms to 2 s, multipliers 1 to 10.
    fn any_config()(tx in 10u64..2000, rx in 10u64..2000, detect_mult in 1u8..=10) -> SessionConfig {
        common::config(tx, rx, detect_mult)
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(packet) = ControlPacket::decode(&bytes) {
            // An accepted datagram encodes back to its mandatory section.
            let mut want = bytes[..PACKET_LEN].to_vec();
            want[3] = PACKET_LEN as u8;
            prop_assert_eq!(&packet.encode()[..], &want[..]);
        }
    }

    #[test]
    fn mutated_packets_decode_or_drop(packet in any_packet(), at in 0usize..24, value: u8, cut in 0usize..=24) {
        let mut bytes = packet.encode().to_vec();
        bytes[at] = value;
        bytes.truncate(cut);
        match ControlPacket::decode(&bytes) {
            Ok(decoded) => prop_assert_eq!(&decoded.encode()[..], &bytes[..]),
            Err(reason) => prop_assert!(bfd::DropReason::NAMES.contains(&reason.name())),
        }
    }

    #[test]
    fn packets_round_trip(packet in any_packet()) {
        let bytes = packet.encode();
        prop_assert_eq!(ControlPacket::decode(&bytes), Ok(packet));
    }

    /// From any start (either side alone for a while, admin down for a while, a loss
    /// period, any timers and delays), the two sessions reach Up once the path works,
    /// and stay Up.
    #[test]
    fn two_sessions_reach_up_from_any_start(
        configs in [any_config(), any_config()],
        delays in [0u64..5, 0u64..5],
        seeds: [u64; 2],
        head_start in 0u64..5000,
        admin_down in proptest::option::of((0usize..2, 0u64..3000)),
        loss in proptest::option::of((0u64..5000, 0u64..5000, 0usize..3)),
    ) {
        let ms = Duration::from_millis;
        let mut pair = Pair::new(configs, [ms(delays[0]), ms(delays[1])], seeds);
        // Side 1 is not there yet: its packets are lost.
        pair.cut[1] = true;
        pair.run_for(ms(head_start));
        pair.cut[1] = false;
        if let Some((side, duration)) = admin_down {
            let now = pair.now;
            let actions = pair.sides[side].set_admin_down(now, true);
            pair.apply(side, actions);
            pair.run_for(ms(duration));
            prop_assert_eq!(pair.sides[side].state(), State::AdminDown);
            let now = pair.now;
            let actions = pair.sides[side].set_admin_down(now, false);
            pair.apply(side, actions);
        }
        if let Some((after, duration, which)) = loss {
            pair.run_for(ms(after));
            // 0 and 1: one direction; 2: both.
            pair.cut = [which != 1, which != 0];
            pair.run_for(ms(duration));
            pair.cut = [false, false];
        }
        // Down -> Init -> Up takes a few packets at 1 s (one detection time, at 1 s
        // and up to 10 x 2 s, to notice a peer that went silent).
        prop_assert!(pair.run_until_up(Duration::from_secs(25)), "{:?}", pair.states());
        pair.run_for(Duration::from_secs(30));
        prop_assert_eq!(pair.states(), [State::Up, State::Up]);
        for (side, other) in [(0, 1), (1, 0)] {
            let session = &pair.sides[side];
            prop_assert!(!session.is_polling());
            prop_assert_eq!(session.remote().discriminator, pair.sides[other].local_discriminator());
            let config = configs[side];
            let peer = configs[other];
            prop_assert_eq!(
                session.transmit_interval(),
                Some(config.desired_min_tx.max(peer.required_min_rx))
            );
            prop_assert_eq!(
                session.detection_time(),
                Some(config.required_min_rx.max(peer.desired_min_tx) * u32::from(peer.detect_mult))
            );
        }
    }

    /// Once Up, a silent peer always takes a session Down with diagnostic 1, exactly
    /// one detection time after the last packet heard, and a session is never Init or
    /// Up but on a packet from the peer (checked by `Pair` at every change).
    #[test]
    fn detection_expiry_goes_down_with_diag_1(
        configs in [any_config(), any_config()],
        seeds: [u64; 2],
        after in 0u64..3000,
        which in 0usize..3,
    ) {
        let mut pair = Pair::new(configs, [Duration::ZERO; 2], seeds);
        prop_assert!(pair.run_until_up(Duration::from_secs(10)));
        pair.run_for(Duration::from_millis(after));
        pair.cut = [which != 1, which != 0];
        pair.run_for(Duration::from_secs(25));
        for side in 0..2 {
            // A side whose peer went silent (the other side's packets were cut).
            if !pair.cut[1 - side] {
                continue;
            }
            let detection = pair.sides[side].detection_time();
            let down = pair.logs[side]
                .transitions
                .iter()
                .find(|(_, t)| t.from == State::Up);
            let (at, transition) = down.copied().unwrap();
            prop_assert_eq!(transition.to, State::Down);
            prop_assert_eq!(transition.diagnostic, Diagnostic::CONTROL_DETECTION_TIME_EXPIRED);
            prop_assert!(transition.signals_failure());
            let heard = pair.logs[side].last_heard.unwrap();
            // The detection time in force when it expired: the session has since
            // gone Down (1 s intervals), so compare with the bound from the configs.
            let bound = configs[side].required_min_rx.max(configs[1 - side].desired_min_tx)
                * u32::from(configs[1 - side].detect_mult);
            prop_assert!(at > heard && at - heard <= bound, "{:?} after the last packet, bound {:?} ({:?} now)", at - heard, bound, detection);
            prop_assert_eq!(pair.sides[side].state(), State::Down);
        }
    }

    /// A change of intervals in the middle of an Up session never takes it down:
    /// the Poll Sequence holds the old values until the Final.
    #[test]
    fn interval_changes_keep_the_session_up(
        configs in [any_config(), any_config()],
        changes in proptest::collection::vec((0usize..2, any_config(), 0u64..3000), 1..6),
        delays in [0u64..5, 0u64..5],
        seeds: [u64; 2],
    ) {
        let ms = Duration::from_millis;
        let mut pair = Pair::new(configs, [ms(delays[0]), ms(delays[1])], seeds);
        prop_assert!(pair.run_until_up(Duration::from_secs(10)));
        let mut current = configs;
        for (side, config, wait) in changes {
            let now = pair.now;
            let actions = pair.sides[side].set_config(now, config).unwrap();
            pair.apply(side, actions);
            current[side] = config;
            pair.run_for(ms(wait));
            prop_assert_eq!(pair.states(), [State::Up, State::Up]);
        }
        pair.run_for(Duration::from_secs(10));
        prop_assert_eq!(pair.states(), [State::Up, State::Up]);
        for side in 0..2 {
            prop_assert!(pair.logs[side].transitions.iter().all(|(_, t)| t.to != State::Down));
            let session = &pair.sides[side];
            prop_assert_eq!(
                session.transmit_interval(),
                Some(current[side].desired_min_tx.max(current[1 - side].required_min_rx))
            );
        }
    }
}
