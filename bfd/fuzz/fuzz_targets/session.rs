//! A session driven by a script of events: the first byte picks the configuration,
//! then the low three bits of each step's first byte pick an event (a packet made of the next 24 bytes, time
//! passing, admin down or up, new intervals). Nothing panics, every packet the session
//! sends passes the reception checks, Init and Up come only from a received packet,
//! and a detection expiry always goes Down with diagnostic 1.
#![no_main]

use std::time::{Duration, Instant};

use bfd::{Action, ControlPacket, Diagnostic, Session, SessionConfig, State};
use libfuzzer_sys::fuzz_target;

fn config(byte: u8) -> SessionConfig {
    SessionConfig {
        desired_min_tx: Duration::from_millis(10 + 50 * u64::from(byte & 7)),
        required_min_rx: Duration::from_millis(10 + 50 * u64::from((byte >> 3) & 7)),
        detect_mult: 1 + (byte >> 6),
    }
}

fn check(actions: &[Action], received: bool, timer: bool) {
    for action in actions {
        match action {
            Action::Send(packet) => {
                assert_eq!(ControlPacket::decode(&packet.encode()), Ok(*packet));
                assert!(!(packet.poll && packet.r#final));
            }
            Action::StateChanged(transition) => {
                if matches!(transition.to, State::Init | State::Up) {
                    assert!(received, "{transition:?} without a packet");
                }
                if timer {
                    assert_eq!(transition.to, State::Down);
                    assert_eq!(transition.diagnostic, Diagnostic::CONTROL_DETECTION_TIME_EXPIRED);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut script)) = data.split_first() else {
        return;
    };
    let start = Instant::now();
    let mut now = start;
    let Ok(mut session) = Session::new(now, config(first), 0x1234_5678, u64::from(first)) else {
        return;
    };
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        match op & 7 {
            0 | 1 => {
                let Some((packet, rest)) = script.split_first_chunk::<24>() else {
                    return;
                };
                script = rest;
                let mut bytes = *packet;
                if op & 0x80 != 0 {
                    // Often address this session, so the state machine is reached.
                    bytes[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
                }
                if let Ok(packet) = ControlPacket::decode(&bytes) {
                    if let Ok(actions) = session.on_packet(now, &packet) {
                        check(&actions, true, false);
                    }
                }
            }
            2..=5 => {
                let step = Duration::from_millis(u64::from(op >> 3) * 37);
                now += step;
                while let Some(deadline) = session.poll_timeout().filter(|d| *d <= now) {
                    let actions = session.on_timer(deadline);
                    check(&actions, false, true);
                    assert!(session.poll_timeout().is_none_or(|next| next > deadline));
                }
            }
            6 => {
                let actions = session.set_admin_down(now, op & 0x80 != 0);
                check(&actions, false, false);
            }
            _ => {
                if let Some((&byte, rest)) = script.split_first() {
                    script = rest;
                    if let Ok(actions) = session.set_config(now, config(byte)) {
                        check(&actions, false, false);
                    }
                }
            }
        }
        assert!(now.duration_since(start) < Duration::from_secs(1 << 20));
    }
});
