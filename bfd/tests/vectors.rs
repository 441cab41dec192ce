//! Byte vectors checked both ways: packets captured between two FRR bfdd
//! (`vectors/frr-bfdd.txt`, with `capture-frr.sh`), the reception checks written from
//! RFC 5880's layout (`vectors/rfc5880-checks.txt`), and a session of ours fed the
//! whole sequence one FRR bfdd sent (`vectors/frr-bfdd-a.txt`).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::{Duration, Instant};

use bfd::{Action, ControlPacket, Diagnostic, PACKET_LEN, Session, SessionConfig, State};

/// The data lines of a vectors file, split on `|` and trimmed.
fn rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split('|').map(str::trim).collect())
        .collect()
}

#[test]
fn frr_packets_decode_and_encode_back() {
    let rows = rows(include_str!("vectors/frr-bfdd.txt"));
    assert_eq!(rows.len(), 18);
    for row in rows {
        let [name, hex, decoded] = row[..] else {
            panic!("malformed line {row:?}");
        };
        let bytes = hex::decode(hex).unwrap();
        let packet = ControlPacket::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(packet.to_string(), decoded, "{name}");
        assert_eq!(packet.encode()[..], bytes[..], "{name}");
    }
}

#[test]
fn rfc_reception_checks() {
    let rows = rows(include_str!("vectors/rfc5880-checks.txt"));
    assert!(rows.len() >= 20);
    for row in rows {
        let [expected, hex, what] = row[..] else {
            panic!("malformed line {row:?}");
        };
        let bytes = hex::decode(hex).unwrap();
        match ControlPacket::decode(&bytes) {
            Ok(packet) => {
                assert_eq!(expected, "ok", "{what}: decoded as {packet}");
                let mut want = bytes[..PACKET_LEN].to_vec();
                want[3] = PACKET_LEN as u8;
                assert_eq!(packet.encode()[..], want[..], "{what}");
                assert_eq!(
                    ControlPacket::decode(&packet.encode()),
                    Ok(packet),
                    "{what}"
                );
            }
            Err(reason) => {
                assert_eq!(reason.name(), expected, "{what}: {reason}");
                assert!(!reason.to_string().is_empty());
            }
        }
    }
}

/// Our session, given B's discriminator, hears everything A sent to B (at the
/// captured times, with its timers run in between): the same packets of a real bfdd
/// take it through the same states B went through, it answers A's Polls with Finals,
/// and it never times out while A keeps sending.
#[test]
fn session_follows_frr_sequence() {
    let rows = rows(include_str!("vectors/frr-bfdd-a.txt"));
    let start = Instant::now();
    let mut session = Session::new(start, SessionConfig::default(), 3_691_729_318, 7).unwrap();
    let mut transitions = Vec::new();
    let mut finals = 0;
    let mut run = |actions: Vec<Action>, transitions: &mut Vec<(State, u8)>| {
        for action in actions {
            match action {
                Action::Send(packet) => {
                    assert_eq!(packet.my_discriminator, 3_691_729_318);
                    finals += usize::from(packet.r#final);
                }
                Action::StateChanged(t) => transitions.push((t.to, t.diagnostic.code())),
            }
        }
    };
    for row in &rows {
        let at = start + Duration::from_secs_f64(row[0].parse().unwrap());
        while let Some(deadline) = session.poll_timeout().filter(|d| *d <= at) {
            let actions = session.on_timer(deadline);
            run(actions, &mut transitions);
        }
        let packet = ControlPacket::decode(&hex::decode(row[1]).unwrap()).unwrap();
        let actions = session.on_packet(at, &packet).unwrap();
        run(actions, &mut transitions);
    }
    use State::*;
    assert_eq!(
        transitions,
        [
            (Init, 0),
            (Up, 0),
            (Down, 3), // A went Down (B was AdminDown)
            (Init, 3),
            (Up, 0),
            (Down, 3), // A's detection time expired: it says Down
            (Init, 3),
        ]
    );
    assert_eq!(finals, 3, "A's three Polls are answered");
    assert_eq!(
        session.diagnostic(),
        Diagnostic::NEIGHBOR_SIGNALED_SESSION_DOWN
    );
}
