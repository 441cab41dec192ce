//! One behaviour of the session state machine each: the three-way handshake and its
//! Poll, timer negotiation, detection, the peer's AdminDown and Down, our AdminDown,
//! a change of intervals mid-session (Poll/Final), jitter, and what is dropped.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::{Duration, Instant};

use bfd::{
    Action, ConfigError, ControlPacket, Diagnostic, DropReason, Jitter, Session, SessionConfig,
    State,
};
use common::{Pair, config};

const MS: Duration = Duration::from_millis(1);

fn up_pair(a: SessionConfig, b: SessionConfig) -> Pair {
    let mut pair = Pair::new([a, b], [MS, MS], [1, 2]);
    assert!(
        pair.run_until_up(Duration::from_secs(5)),
        "{:?}",
        pair.states()
    );
    // Let the Poll of going Up finish.
    pair.run_for(Duration::from_secs(1));
    pair
}

fn packets(actions: &[Action]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(*p),
            Action::StateChanged(_) => None,
        })
        .collect()
}

#[test]
fn handshake_reaches_up_and_polls_to_the_configured_interval() {
    let mut pair = Pair::new([config(300, 300, 3); 2], [MS, MS], [1, 2]);
    // Neither hears the other first: Down packets at about 1 s.
    pair.cut = [true, true];
    pair.run_for(Duration::from_secs(3));
    let sent = &pair.logs[0].sent;
    assert!(sent.len() >= 3 && sent.len() <= 5, "{}", sent.len());
    for packet in sent.iter().map(|(_, p)| p) {
        assert_eq!(packet.state, State::Down);
        assert_eq!(packet.your_discriminator, 0);
        assert_eq!(packet.desired_min_tx, 1_000_000, "1 s while not Up");
        assert_eq!(packet.required_min_rx, 300_000);
    }
    for gap in sent.windows(2).map(|w| w[1].0 - w[0].0) {
        assert!(gap >= 750 * MS && gap <= 1000 * MS, "{gap:?}");
    }
    assert_eq!(pair.states(), [State::Down, State::Down]);
    pair.cut = [false, false];
    assert!(pair.run_until_up(Duration::from_secs(3)));
    let [a, b] = &pair.logs;
    let steps = |log: &common::Log| {
        log.transitions
            .iter()
            .map(|(_, t)| t.to)
            .collect::<Vec<_>>()
    };
    // One side goes Down -> Init -> Up, the other Down -> Up.
    let mut both = [steps(a), steps(b)];
    both.sort();
    assert_eq!(both, [vec![State::Init, State::Up], vec![State::Up]]);
    pair.run_for(Duration::from_secs(1));
    for side in &pair.sides {
        assert!(!side.is_polling(), "the Poll of going Up ended");
        assert_eq!(side.advertised().desired_min_tx, 300 * MS);
        assert_eq!(side.transmit_interval(), Some(300 * MS));
        assert_eq!(side.detection_time(), Some(900 * MS));
    }
    // Going Up sent a Poll, answered by a Final.
    for log in &pair.logs {
        assert!(
            log.sent
                .iter()
                .any(|(_, p)| p.poll && p.desired_min_tx == 300_000)
        );
        assert!(log.sent.iter().any(|(_, p)| p.r#final && !p.poll));
    }
}

#[test]
fn negotiated_intervals_take_the_slower_side() {
    let pair = up_pair(config(100, 200, 5), config(500, 400, 2));
    let [a, b] = &pair.sides;
    // transmit = max(our desired min TX, their required min RX)
    assert_eq!(a.transmit_interval(), Some(400 * MS));
    assert_eq!(b.transmit_interval(), Some(500 * MS));
    // detection = their mult x max(our required min RX, their desired min TX)
    assert_eq!(a.detection_time(), Some(2 * 500 * MS));
    assert_eq!(b.detection_time(), Some(5 * 400 * MS));
}

#[test]
fn detection_expiry_goes_down_with_diag_1_at_the_detection_time() {
    let mut pair = up_pair(config(300, 300, 3), config(300, 300, 3));
    pair.cut[1] = true;
    let last_sent = pair.now;
    pair.run_for(Duration::from_secs(2));
    let (at, transition) = pair.logs[0].transitions.last().copied().unwrap();
    assert_eq!((transition.from, transition.to), (State::Up, State::Down));
    assert_eq!(
        transition.diagnostic,
        Diagnostic::CONTROL_DETECTION_TIME_EXPIRED
    );
    assert!(transition.signals_failure());
    let heard = pair.logs[0].last_heard.unwrap();
    assert_eq!(
        at - heard,
        900 * MS,
        "exactly the detection time after the last packet"
    );
    assert!(at - last_sent <= 900 * MS + MS);
    assert_eq!(pair.sides[0].remote().discriminator, 0, "forgotten (6.8.1)");
    // Side 0 tells side 1, which goes Down with diag 3.
    let other: Vec<_> = pair.logs[1]
        .transitions
        .iter()
        .map(|(_, t)| (t.to, t.diagnostic))
        .collect();
    assert!(
        other.ends_with(&[
            (State::Down, Diagnostic::NEIGHBOR_SIGNALED_SESSION_DOWN),
            (State::Init, Diagnostic::NEIGHBOR_SIGNALED_SESSION_DOWN),
        ]),
        "{other:?}"
    );
    // Traffic back: Up again by itself.
    pair.cut[1] = false;
    assert!(pair.run_until_up(Duration::from_secs(5)));
}

#[test]
fn peer_admin_down_is_not_a_failure() {
    let mut pair = up_pair(config(300, 300, 3), config(300, 300, 3));
    let now = pair.now;
    let actions = pair.sides[1].set_admin_down(now, true);
    let sent = packets(&actions);
    assert_eq!(sent[0].state, State::AdminDown);
    assert_eq!(sent[0].diagnostic, Diagnostic::ADMINISTRATIVELY_DOWN);
    pair.apply(1, actions);
    pair.run_for(10 * MS);
    let (_, t) = pair.logs[0].transitions.last().copied().unwrap();
    assert_eq!((t.from, t.to), (State::Up, State::Down));
    assert_eq!(t.diagnostic, Diagnostic::NEIGHBOR_SIGNALED_SESSION_DOWN);
    assert_eq!(t.remote_state, State::AdminDown);
    assert!(!t.signals_failure(), "RFC 5882 3.2");
    // While AdminDown, side 1 ignores side 0 and never leaves AdminDown.
    pair.run_for(Duration::from_secs(5));
    assert_eq!(pair.states(), [State::Down, State::AdminDown]);
    assert!(
        pair.logs[1]
            .sent
            .iter()
            .rev()
            .take(3)
            .all(|(_, p)| p.state == State::AdminDown)
    );
    let now = pair.now;
    let actions = pair.sides[1].set_admin_down(now, false);
    pair.apply(1, actions);
    assert!(pair.run_until_up(Duration::from_secs(5)));
}

#[test]
fn peer_down_while_up_is_a_failure_with_diag_3() {
    let mut pair = up_pair(config(300, 300, 3), config(300, 300, 3));
    let packet = ControlPacket {
        state: State::Down,
        your_discriminator: 0,
        ..pair.logs[1].sent.last().unwrap().1
    };
    let now = pair.now;
    let actions = pair.sides[0].on_packet(now, &packet).unwrap();
    let Some(Action::StateChanged(t)) = actions.last() else {
        panic!("{actions:?}")
    };
    assert_eq!(
        (t.to, t.diagnostic),
        (State::Down, Diagnostic::NEIGHBOR_SIGNALED_SESSION_DOWN)
    );
    assert!(t.signals_failure());
    assert_eq!(packets(&actions)[0].desired_min_tx, 1_000_000, "1 s again");
}

#[test]
fn slower_interval_waits_for_the_final() {
    let mut pair = up_pair(config(50, 50, 3), config(50, 50, 3));
    let now = pair.now;
    let actions = pair.sides[0]
        .set_config(now, config(1000, 2000, 3))
        .unwrap();
    let sent = packets(&actions);
    assert!(sent[0].poll && !sent[0].r#final);
    assert_eq!(
        (sent[0].desired_min_tx, sent[0].required_min_rx),
        (1_000_000, 2_000_000)
    );
    assert!(pair.sides[0].is_polling());
    // Until the Final: still 50 ms out; the slower receive interval (a longer
    // detection time) applies at once.
    assert_eq!(pair.sides[0].transmit_interval(), Some(50 * MS));
    assert_eq!(pair.sides[0].detection_time(), Some(3 * 2000 * MS));
    // The link is cut for side 1's answers: the Poll goes on in every packet.
    pair.cut[1] = true;
    pair.apply(0, actions);
    pair.run_for(100 * MS);
    assert!(pair.sides[0].is_polling());
    let recent: Vec<_> = pair.logs[0]
        .sent
        .iter()
        .filter(|(at, _)| *at > now)
        .collect();
    assert!(
        recent.len() >= 2 && recent.iter().all(|(_, p)| p.poll),
        "{recent:?}"
    );
    pair.cut[1] = false;
    pair.run_for(100 * MS);
    assert_eq!(pair.states(), [State::Up, State::Up], "nobody timed out");
    assert!(!pair.sides[0].is_polling());
    assert_eq!(pair.sides[0].transmit_interval(), Some(1000 * MS));
    assert_eq!(pair.sides[1].transmit_interval(), Some(2000 * MS));
    pair.run_for(Duration::from_secs(20));
    assert_eq!(pair.states(), [State::Up, State::Up]);
    assert_eq!(pair.sides[0].detection_time(), Some(3 * 2000 * MS));
    assert_eq!(pair.sides[1].detection_time(), Some(3 * 1000 * MS));
}

#[test]
fn poll_is_answered_with_final_at_once() {
    let mut pair = up_pair(config(300, 300, 3), config(300, 300, 3));
    let poll = ControlPacket {
        poll: true,
        ..pair.logs[1].sent.last().unwrap().1
    };
    let now = pair.now;
    let sent = packets(&pair.sides[0].on_packet(now, &poll).unwrap());
    assert_eq!(sent.len(), 1);
    assert!(sent[0].r#final && !sent[0].poll);
    assert_eq!(sent[0].state, State::Up);
}

#[test]
fn packets_for_another_discriminator_change_nothing() {
    let mut pair = up_pair(config(300, 300, 3), config(300, 300, 3));
    let packet = ControlPacket {
        state: State::Down,
        your_discriminator: 77,
        ..pair.logs[1].sent.last().unwrap().1
    };
    let before = format!("{:?}", pair.sides[0]);
    let now = pair.now;
    assert_eq!(
        pair.sides[0].on_packet(now, &packet),
        Err(DropReason::UnknownDiscriminator { discriminator: 77 })
    );
    assert_eq!(format!("{:?}", pair.sides[0]), before);
}

#[test]
fn no_periodic_packets_when_the_peer_asks_for_none() {
    let now = Instant::now();
    let mut session = Session::new(now, config(300, 300, 3), 1, 1).unwrap();
    assert_eq!(packets(&session.on_timer(now)).len(), 1);
    let silent = ControlPacket {
        diagnostic: Diagnostic::NONE,
        state: State::Down,
        poll: false,
        r#final: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 9,
        your_discriminator: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 0,
        required_min_echo_rx: 0,
    };
    let actions = session.on_packet(now, &silent).unwrap();
    assert_eq!(session.state(), State::Init);
    assert_eq!(packets(&actions).len(), 1, "the state change is still told");
    assert_eq!(session.transmit_interval(), None);
    // Only the detection deadline is left.
    assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(3)));
    let later = now + Duration::from_secs(3);
    let actions = session.on_timer(later);
    assert_eq!(session.state(), State::Down);
    assert_eq!(
        session.diagnostic(),
        Diagnostic::CONTROL_DETECTION_TIME_EXPIRED
    );
    assert!(matches!(actions.last(), Some(Action::StateChanged(_))));
}

#[test]
fn early_timer_calls_do_nothing() {
    let now = Instant::now();
    let mut session = Session::new(now, config(300, 300, 3), 1, 1).unwrap();
    assert_eq!(packets(&session.on_timer(now)).len(), 1);
    let next = session.poll_timeout().unwrap();
    assert!(session.on_timer(next - MS).is_empty());
    assert_eq!(packets(&session.on_timer(next)).len(), 1);
}

#[test]
fn jitter_stays_within_the_rfc_bounds() {
    let interval = Duration::from_millis(1000);
    let mut jitter = Jitter::new(42);
    let (mut low, mut high) = (interval, Duration::ZERO);
    for _ in 0..10_000 {
        let value = jitter.apply(interval, 3);
        assert!(value >= 750 * MS && value <= interval, "{value:?}");
        low = low.min(value);
        high = high.max(value);
    }
    assert!(
        low < 760 * MS && high > 990 * MS,
        "spread {low:?}..{high:?}"
    );
    for random in [0, 1, u64::MAX, u64::MAX / 2] {
        let value = bfd::jitter::apply(interval, 1, random);
        assert!(value >= 750 * MS && value <= 900 * MS, "{value:?}");
    }
}

#[test]
fn bad_configurations_are_refused() {
    let now = Instant::now();
    assert_eq!(
        Session::new(now, SessionConfig::default(), 0, 1).unwrap_err(),
        ConfigError::ZeroDiscriminator
    );
    assert_eq!(
        Session::new(now, config(300, 300, 0), 1, 1).unwrap_err(),
        ConfigError::ZeroDetectMult
    );
    assert_eq!(
        Session::new(now, config(0, 300, 3), 1, 1).unwrap_err(),
        ConfigError::ZeroInterval { name: "min_tx" }
    );
    let huge = SessionConfig {
        required_min_rx: Duration::from_secs(5000),
        ..SessionConfig::default()
    };
    let error = Session::new(now, huge, 1, 1).unwrap_err();
    assert!(matches!(
        error,
        ConfigError::IntervalTooLarge { name: "min_rx", .. }
    ));
    assert!(error.to_string().contains("min_rx"));
    let mut session = Session::new(now, SessionConfig::default(), 1, 1).unwrap();
    assert!(session.set_config(now, config(300, 300, 0)).is_err());
    assert_eq!(*session.config(), SessionConfig::default());
}
