#![allow(clippy::unwrap_used)]
//! Property tests of the session state machine: arbitrary event sequences (with a
//! bias toward the events that move a session forward, so that Established is
//! reached often) never panic and keep the invariants of the calling contract after
//! every event; and a driver that follows the documented collision procedure with
//! two state machines never keeps two sessions.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_proto::fsm::{
    Action, Event, FamilyErrorPolicy, Fsm, Initiator, Loser, PeerAs, Role, SessionConfig, State,
    Timer, collision,
};
use bgp_proto::{
    Capability, Family, FramingError, Message, Notification, Open, RouteRefresh, decode_message,
};
use proptest::prelude::*;

/// An event, in a form proptest can generate and print.
#[derive(Clone, Debug)]
enum Step {
    ManualStart,
    ManualStartPassive,
    ManualStop(Option<String>),
    AutomaticStart,
    AutomaticStop(Option<u64>),
    TcpConnected(bool),
    TcpFailed,
    RecvOpen {
        asn: u32,
        id: Ipv4Addr,
        hold: u16,
        version: u8,
        as4: bool,
    },
    RecvKeepalive,
    RecvUpdate,
    RecvNotification(u8, u8),
    RecvRouteRefresh(u8),
    /// Arbitrary bytes behind a valid header of the given type.
    RecvFrame(u8, Vec<u8>),
    Framing(u8),
    Expire(usize),
    OutputProgressed,
    CollisionDump,
    /// Whatever moves the session forward from its current state.
    Forward,
}

fn step() -> impl Strategy<Value = Step> {
    let open = (
        prop::sample::select(vec![65002u32, 65002, 65002, 65003, 0, 23456, 4_200_000_000]),
        prop::sample::select(vec![
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::UNSPECIFIED,
        ]),
        prop::sample::select(vec![90u16, 90, 0, 1, 3, 9, 300]),
        prop::sample::select(vec![4u8, 4, 4, 3]),
        any::<bool>(),
    )
        .prop_map(|(asn, id, hold, version, as4)| Step::RecvOpen {
            asn,
            id,
            hold,
            version,
            as4,
        });
    prop_oneof![
        2 => Just(Step::ManualStart),
        1 => Just(Step::ManualStartPassive),
        1 => prop::option::of("[a-z ]{0,12}").prop_map(Step::ManualStop),
        1 => Just(Step::AutomaticStart),
        1 => prop::option::of(1u64..100).prop_map(Step::AutomaticStop),
        3 => any::<bool>().prop_map(Step::TcpConnected),
        2 => Just(Step::TcpFailed),
        3 => open,
        3 => Just(Step::RecvKeepalive),
        2 => Just(Step::RecvUpdate),
        1 => (1u8..9, 0u8..11).prop_map(|(code, subcode)| Step::RecvNotification(code, subcode)),
        1 => (0u8..4).prop_map(Step::RecvRouteRefresh),
        2 => (0u8..7, prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(kind, body)| Step::RecvFrame(kind, body)),
        1 => (0u8..3).prop_map(Step::Framing),
        4 => (0..Timer::ALL.len()).prop_map(Step::Expire),
        2 => Just(Step::OutputProgressed),
        1 => Just(Step::CollisionDump),
        8 => Just(Step::Forward),
    ]
}

fn config() -> impl Strategy<Value = SessionConfig> {
    (
        any::<bool>(),
        prop::option::of(1u64..10),
        prop::sample::select(vec![90u16, 0, 3, 240]),
        any::<bool>(),
    )
        .prop_map(|(passive, delay_open, hold, disable)| {
            let mut config =
                SessionConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1), PeerAs::Exact(65002));
            config.passive = passive;
            config.delay_open = delay_open.map(Duration::from_secs);
            config.hold_time = hold;
            if disable {
                config.family_errors = FamilyErrorPolicy::DisableFamily;
            }
            config
        })
}

fn peer_open(asn: u32, id: Ipv4Addr, hold: u16, version: u8, as4: bool) -> Open {
    let mut capabilities = vec![Capability::Multiprotocol {
        family: Family::IPV4_UNICAST,
    }];
    if as4 {
        capabilities.push(Capability::FourOctetAs { asn });
    }
    let mut open = Open::new(asn, hold, id, capabilities);
    open.version = version;
    open
}

fn decoded(message: Message) -> Event {
    Event::Received(Ok(message.into()))
}

const UPDATE: &str = "ffffffffffffffffffffffffffffffff002f02000000144001010040020602010000fdea400304c000020118c63364";

fn event(fsm: &Fsm, step: &Step) -> Event {
    match step.clone() {
        Step::ManualStart => Event::ManualStart,
        Step::ManualStartPassive => Event::ManualStartPassive,
        Step::ManualStop(None) => Event::ManualStop { notification: None },
        Step::ManualStop(Some(text)) => Event::shutdown(&text),
        Step::AutomaticStart => Event::AutomaticStart,
        Step::AutomaticStop(after) => Event::AutomaticStop {
            notification: Notification::new(6, 1, Vec::new()),
            restart_after: after.map(Duration::from_secs),
        },
        Step::TcpConnected(local) => Event::TcpConnected(if local {
            Initiator::Local
        } else {
            Initiator::Remote
        }),
        Step::TcpFailed => Event::TcpFailed,
        Step::RecvOpen {
            asn,
            id,
            hold,
            version,
            as4,
        } => decoded(Message::Open(peer_open(asn, id, hold, version, as4))),
        Step::RecvKeepalive => decoded(Message::Keepalive),
        Step::RecvUpdate => Event::Received(decode_message(
            &hex::decode(UPDATE).unwrap(),
            &fsm.codec_context(),
        )),
        Step::RecvNotification(code, subcode) => decoded(Message::Notification(Notification::new(
            code,
            subcode,
            b"\x02hi".to_vec(),
        ))),
        Step::RecvRouteRefresh(subtype) => decoded(Message::RouteRefresh(RouteRefresh {
            family: Family::IPV4_UNICAST,
            subtype,
        })),
        Step::RecvFrame(kind, body) => {
            let mut frame = vec![0xff; 16];
            let length = u16::try_from(19 + body.len()).unwrap();
            frame.extend_from_slice(&length.to_be_bytes());
            frame.push(kind);
            frame.extend_from_slice(&body);
            Event::Received(decode_message(&frame, &fsm.codec_context()))
        }
        Step::Framing(0) => Event::FramingError(FramingError::BadMarker),
        Step::Framing(1) => Event::FramingError(FramingError::BadLength {
            length: 5000,
            max: 4096,
        }),
        Step::Framing(_) => Event::FramingError(FramingError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        ))),
        Step::Expire(index) => Event::TimerExpired(Timer::ALL[index]),
        Step::OutputProgressed => Event::OutputProgressed,
        Step::CollisionDump => Event::CollisionDump,
        Step::Forward => match fsm.state() {
            State::Idle if fsm.is_enabled() => Event::TimerExpired(Timer::IdleHold),
            State::Idle => Event::ManualStart,
            State::Connect if fsm.is_connected() => Event::TimerExpired(Timer::DelayOpen),
            State::Connect => Event::TcpConnected(Initiator::Local),
            State::Active if fsm.is_connected() => decoded(Message::Open(peer_open(
                65002,
                Ipv4Addr::new(10, 0, 0, 2),
                90,
                4,
                true,
            ))),
            State::Active => Event::TcpConnected(Initiator::Remote),
            State::OpenSent => decoded(Message::Open(peer_open(
                65002,
                Ipv4Addr::new(10, 0, 0, 2),
                90,
                4,
                true,
            ))),
            State::OpenConfirm => decoded(Message::Keepalive),
            State::Established => decoded(Message::Keepalive),
        },
    }
}

/// What the driver knows of one state machine, from the actions alone.
#[derive(Debug, Default)]
struct Model {
    armed: BTreeMap<Timer, Duration>,
    attempt: bool,
    connected: bool,
}

/// The position of an action kind in the documented batch order.
fn rank(action: &Action) -> u8 {
    match action {
        Action::Send(_) => 0,
        Action::Close(_) => 1,
        Action::Connect => 2,
        Action::ArmTimer { .. } | Action::StopTimer(_) => 3,
        Action::StateChanged { .. } => 4,
        Action::Established(_)
        | Action::SessionDown(_)
        | Action::Update(_)
        | Action::RouteRefresh(_) => 5,
    }
}

/// Feeds `event` and checks every invariant of the contract on the result.
fn check(fsm: &mut Fsm, model: &mut Model, event: Event) -> Result<Vec<Action>, TestCaseError> {
    let before = fsm.state();
    prop_assert_eq!(fsm.is_connected(), model.connected);
    let mut may_send = model.connected;
    let mut accepted = false;
    match &event {
        Event::TcpConnected(initiator) => {
            accepted = fsm.wants_connection(*initiator);
            if accepted {
                if *initiator == Initiator::Local {
                    prop_assert!(model.attempt, "our connection completed without an attempt");
                }
                may_send = true;
            }
        }
        Event::TcpFailed => may_send = false,
        Event::TimerExpired(timer) => {
            model.armed.remove(timer);
        }
        _ => {}
    }
    let description = format!("{event:?}");
    let actions = fsm.handle(event);
    let context = || format!("{description} in {before}: {actions:?}");

    // Order within the batch.
    let ranks: Vec<u8> = actions.iter().map(rank).collect();
    prop_assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "order: {}",
        context()
    );

    let mut connected = model.connected || accepted;
    if accepted {
        model.attempt = false;
    }
    let mut state = before;
    let mut saw_established = false;
    let mut saw_down = false;
    for action in &actions {
        match action {
            Action::Send(_) => prop_assert!(may_send && connected, "send: {}", context()),
            Action::Close(_) => {
                prop_assert!(
                    connected || model.attempt,
                    "close of nothing: {}",
                    context()
                );
                may_send = false;
                connected = false;
                model.attempt = false;
            }
            Action::Connect => {
                prop_assert!(
                    !model.attempt && !connected,
                    "second attempt: {}",
                    context()
                );
                model.attempt = true;
            }
            Action::ArmTimer { timer, duration } => {
                prop_assert!(!duration.is_zero(), "zero timer: {}", context());
                model.armed.insert(*timer, *duration);
            }
            Action::StopTimer(timer) => {
                prop_assert!(
                    model.armed.remove(timer).is_some(),
                    "stop of a timer not armed: {}",
                    context()
                );
            }
            Action::StateChanged { from, to, reason } => {
                prop_assert_eq!(*from, state, "state chain: {}", context());
                prop_assert_ne!(from, to);
                if *to == State::Idle {
                    prop_assert!(reason.is_some(), "Idle without a reason: {}", context());
                }
                if *from == State::Established {
                    saw_down = true;
                }
                if *to == State::Established {
                    saw_established = true;
                }
                state = *to;
            }
            Action::Established(negotiated) => {
                prop_assert!(saw_established, "{}", context());
                prop_assert_eq!(negotiated.context, fsm.codec_context());
            }
            Action::SessionDown(_) => prop_assert!(saw_down, "{}", context()),
            Action::Update(_) | Action::RouteRefresh(_) => {
                prop_assert_eq!(fsm.state(), State::Established, "{}", context());
            }
        }
    }
    prop_assert_eq!(state, fsm.state(), "final state: {}", context());
    let established = actions
        .iter()
        .filter(|a| matches!(a, Action::Established(_)))
        .count();
    let down = actions
        .iter()
        .filter(|a| matches!(a, Action::SessionDown(_)))
        .count();
    prop_assert_eq!(established, usize::from(saw_established), "{}", context());
    prop_assert_eq!(down, usize::from(saw_down), "{}", context());
    model.connected = connected;
    prop_assert_eq!(fsm.is_connected(), connected, "connection: {}", context());

    // The timers the driver holds are the ones the state machine believes armed, and
    // they fit the state.
    let armed: BTreeMap<Timer, Duration> = fsm.armed_timers().collect();
    prop_assert_eq!(&armed, &model.armed, "timers: {}", context());
    let names: Vec<Timer> = armed.keys().copied().collect();
    let hold = fsm.negotiated().map(|n| n.hold_time);
    let delay_open = fsm.is_connected() && matches!(fsm.state(), State::Connect | State::Active);
    let expected: &[Timer] = match fsm.state() {
        State::Idle if fsm.is_enabled() && fsm.role() == Role::Primary => {
            if names.is_empty() {
                &[]
            } else {
                &[Timer::IdleHold]
            }
        }
        State::Idle => &[],
        State::Connect if delay_open => &[Timer::DelayOpen],
        State::Connect => &[Timer::ConnectRetry],
        State::Active if delay_open => &[Timer::DelayOpen],
        State::Active if names.is_empty() => &[],
        State::Active => &[Timer::ConnectRetry],
        State::OpenSent => &[Timer::Hold],
        State::OpenConfirm if hold == Some(0) => &[],
        State::OpenConfirm => &[Timer::Hold, Timer::Keepalive],
        // The backoff reset timer runs once per session.
        State::Established => {
            let reset = names.contains(&Timer::BackoffReset);
            match (hold == Some(0), reset) {
                (true, true) => &[Timer::BackoffReset],
                (true, false) => &[],
                (false, true) => &[
                    Timer::Hold,
                    Timer::Keepalive,
                    Timer::SendHold,
                    Timer::BackoffReset,
                ],
                (false, false) => &[Timer::Hold, Timer::Keepalive, Timer::SendHold],
            }
        }
    };
    prop_assert_eq!(
        &names[..],
        expected,
        "timers in {}: {}",
        fsm.state(),
        context()
    );
    // Connected exactly where the state says so.
    let needs_connection = matches!(
        fsm.state(),
        State::OpenSent | State::OpenConfirm | State::Established
    );
    if needs_connection {
        prop_assert!(fsm.is_connected(), "{}", context());
    }
    if fsm.state() == State::Idle {
        prop_assert!(!fsm.is_connected() && !model.attempt, "{}", context());
    }
    if fsm.state() == State::Connect && !fsm.is_connected() {
        prop_assert!(model.attempt, "Connect without an attempt: {}", context());
    }
    Ok(actions)
}

/// Runs the steps on one state machine, checking every batch; true when the session
/// was Established at some point.
fn run_steps(config: SessionConfig, steps: &[Step]) -> Result<bool, TestCaseError> {
    let mut fsm = Fsm::new(config).unwrap();
    let mut model = Model::default();
    let mut reached = false;
    for step in steps {
        let event = event(&fsm, step);
        check(&mut fsm, &mut model, event)?;
        reached |= fsm.state() == State::Established;
    }
    Ok(reached)
}

/// The generated sequences reach Established often enough for the properties to
/// say something about it.
#[test]
fn generated_sequences_reach_established() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = (config(), prop::collection::vec(step(), 1..120));
    let mut reached = 0;
    for _ in 0..200 {
        let (config, steps) = strategy.new_tree(&mut runner).unwrap().current();
        if run_steps(config, &steps).unwrap() {
            reached += 1;
        }
    }
    eprintln!("{reached} of 200 reached Established");
    assert!(
        reached >= 60,
        "only {reached} of 200 sequences reached Established"
    );
}

proptest! {
    // No regression files: the tree stays clean; a failure prints its input.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_events_keep_the_invariants(
        config in config(),
        steps in prop::collection::vec(step(), 1..120),
    ) {
        run_steps(config, &steps)?;
    }

    /// A driver following the module documentation with a primary and a secondary.
    #[test]
    fn the_collision_procedure_keeps_one_session(
        local_id in prop::sample::select(vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 9)]),
        steps in prop::collection::vec((any::<bool>(), step()), 1..120),
    ) {
        let config = SessionConfig::new(65001, local_id, PeerAs::Exact(65002));
        let mut primary = Fsm::new(config).unwrap();
        let mut primary_model = Model::default();
        let mut secondary: Option<(Fsm, Model)> = None;
        for (to_secondary, step) in &steps {
            let target_secondary = *to_secondary && secondary.is_some();
            if let Some((second, second_model)) = secondary.as_mut().filter(|_| target_secondary) {
                let event = event(second, step);
                check(second, second_model, event)?;
            } else {
                let event = event(&primary, step);
                // A peer's connection the primary does not want goes to a new secondary.
                if let Event::TcpConnected(Initiator::Remote) = event {
                    if !primary.wants_connection(Initiator::Remote)
                        && primary.state() != State::Idle
                        && secondary.is_none()
                    {
                        let mut second = primary.secondary();
                        let mut model = Model::default();
                        check(&mut second, &mut model, event)?;
                        secondary = Some((second, model));
                        continue;
                    }
                }
                let stop = matches!(event, Event::ManualStop { .. });
                check(&mut primary, &mut primary_model, event)?;
                // A manual stop goes to both.
                if let (true, Some((second, second_model))) = (stop, secondary.as_mut()) {
                    let event = Event::ManualStop { notification: None };
                    check(second, second_model, event)?;
                }
            }
            // The collision procedure after every batch.
            if let Some((second, second_model)) = secondary.as_mut() {
                match collision::decide(&primary, second) {
                    Some(Loser::Secondary) => {
                        check(second, second_model, Event::CollisionDump)?;
                        prop_assert!(second.is_finished());
                        secondary = None;
                    }
                    Some(Loser::Primary) => {
                        check(&mut primary, &mut primary_model, Event::CollisionDump)?;
                        prop_assert!(primary.is_finished());
                        let (mut second, second_model) = secondary.take().unwrap();
                        second.promote(&primary);
                        primary = second;
                        primary_model = second_model;
                    }
                    None => {}
                }
            }
            if secondary.as_ref().is_some_and(|(second, _)| second.is_finished()) {
                secondary = None;
            }
            if let Some((second, _)) = &secondary {
                prop_assert!(
                    !(primary.state() == State::Established
                        && second.state() == State::Established),
                    "two sessions"
                );
                prop_assert_eq!(second.role(), Role::Secondary);
            }
            prop_assert_eq!(primary.role(), Role::Primary);
        }
    }
}
