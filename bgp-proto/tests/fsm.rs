#![allow(clippy::unwrap_used)]
//! The session state machine's battery: scripts of events with the exact actions each
//! one must produce (as `Action`'s one-line `Display`), and the states reached.
//!
//! Script language (the scripts are in `fsm_scripts_session.rs` and
//! `fsm_scripts_lifecycle.rs`):
//! - `## name` starts a script; `config KEY=VALUE ...` changes the default
//!   configuration (local AS 65001, id 10.0.0.1, peer AS 65002; keys: local-as,
//!   local-id, peer-as=N|N,M|any, hold, keepalive, connect-retry, send-hold,
//!   delay-open, backoff=INITIAL,MAX,RESET, require=CODE, families=ipv4,ipv6, gr,
//!   gr-n (graceful restart with RFC 8538's N bit), passive, family-errors=disable).
//! - `a > EVENT` feeds state machine `a` (the primary, made from the configuration);
//!   the indented lines that follow are the actions expected, all of them, in order
//!   (none: no action); `a >> EVENT` feeds it without checking the actions.
//! - `a = STATE` checks the state; `a ? QUERY VALUE` checks `wants local|remote`,
//!   `finished`, `counter`, `restart-delay`, `last-error`, `timers`.
//! - `b = secondary a` makes a secondary of `a`; `decide a b -> none|primary|secondary`
//!   checks the collision decision; `promote b a` promotes `b` after `a` lost.
//! - Events: manual-start, manual-start-passive, automatic-start, manual-stop
//!   ["TEXT"|CODE/SUB], automatic-stop CODE/SUB [after DURATION], tcp-connected
//!   local|remote, tcp-failed, recv open [as= my-as= no-as4 id= hold= version=
//!   families= gr gr-n no-rr], recv keepalive, recv update, recv notification CODE/SUB
//!   ["TEXT"], recv route-refresh FAMILY [subtype N], recv hex HEX (decoded with the
//!   state machine's codec context), framing-error marker|length N|io, expire TIMER,
//!   output-progressed, collision-dump, and `establish [OPEN PARAMETERS]`, which runs
//!   the active open (checked by the first script) without checking its actions.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_proto::capability::GracefulRestartFamily;
use bgp_proto::fsm::{
    Action, ConfigError, Event, FamilyErrorPolicy, Fsm, Initiator, Loser, PeerAs, SessionConfig,
    State, Template, Timer, collision,
};
use bgp_proto::{
    Capability, Family, FramingError, GracefulRestart, Message, Notification, Open, RouteRefresh,
    decode_message,
};

#[path = "fsm_scripts_lifecycle.rs"]
mod lifecycle;
#[path = "fsm_scripts_session.rs"]
mod session;

// The runner.

struct Script {
    /// The name, after `## `.
    name: String,
    /// The lines with their line number in the file.
    lines: Vec<(usize, String)>,
}

/// The scripts of a text that starts at line `first` of its file.
fn scripts((text, first): (&str, usize)) -> Vec<Script> {
    let mut scripts: Vec<Script> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = first + index;
        if let Some(name) = line.strip_prefix("## ") {
            scripts.push(Script {
                name: name.to_string(),
                lines: Vec::new(),
            });
        } else if !line.trim().is_empty() {
            let script = scripts.last_mut().expect("a line before the first script");
            script.lines.push((number, line.to_string()));
        }
    }
    scripts
}

/// Splits on spaces, keeping "quoted text" as one token (without the quotes).
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').expect("closing quote");
            out.push(format!("\"{}", &quoted[..end]));
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    out
}

fn duration(text: &str) -> Duration {
    if let Some(ms) = text.strip_suffix("ms") {
        Duration::from_millis(ms.parse().unwrap())
    } else if let Some(m) = text.strip_suffix('m') {
        Duration::from_secs(60 * m.parse::<u64>().unwrap())
    } else {
        Duration::from_secs(text.strip_suffix('s').unwrap().parse().unwrap())
    }
}

fn code_subcode(text: &str) -> (u8, u8) {
    let (code, subcode) = text.split_once('/').unwrap();
    (code.parse().unwrap(), subcode.parse().unwrap())
}

fn notification(args: &[String]) -> Notification {
    let (code, subcode) = code_subcode(&args[0]);
    match args.get(1).map(String::as_str) {
        Some(text) if text.starts_with('"') => Notification::shutdown(subcode, &text[1..]),
        Some("data") => Notification::new(code, subcode, hex::decode(&args[2]).unwrap()),
        _ => Notification::new(code, subcode, Vec::new()),
    }
}

fn family(name: &str) -> Family {
    Family::parse(name).unwrap()
}

fn config(args: &[String]) -> SessionConfig {
    let mut config = SessionConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1), PeerAs::Exact(65002));
    for arg in args {
        let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
        match key {
            "local-as" => config.local_as = value.parse().unwrap(),
            "local-id" => config.local_id = value.parse().unwrap(),
            "peer-as" if value == "any" => config.peer_as = PeerAs::Any,
            "peer-as" if value.contains(',') => {
                config.peer_as =
                    PeerAs::OneOf(value.split(',').map(|asn| asn.parse().unwrap()).collect())
            }
            "peer-as" => config.peer_as = PeerAs::Exact(value.parse().unwrap()),
            "hold" => config.hold_time = value.parse().unwrap(),
            "keepalive" => config.keepalive = Some(value.parse().unwrap()),
            "connect-retry" => config.connect_retry = duration(value),
            "send-hold" => config.send_hold_time = Some(duration(value)),
            "delay-open" => config.delay_open = Some(duration(value)),
            "backoff" => {
                let parts: Vec<Duration> = value.split(',').map(duration).collect();
                config.backoff.initial = parts[0];
                config.backoff.max = parts[1];
                config.backoff.reset_after = parts[2];
            }
            "require" => config.required_capabilities.push(value.parse().unwrap()),
            "families" => config.capabilities.families = value.split(',').map(family).collect(),
            "gr" => config.capabilities.graceful_restart = Some(graceful_restart(0)),
            "gr-n" => {
                config.capabilities.graceful_restart =
                    Some(graceful_restart(GracefulRestart::NOTIFICATION))
            }
            "passive" => config.passive = true,
            "family-errors" => {
                assert_eq!(value, "disable");
                config.family_errors = FamilyErrorPolicy::DisableFamily;
            }
            _ => panic!("unknown config key {key}"),
        }
    }
    config
}

fn graceful_restart(flags: u8) -> GracefulRestart {
    GracefulRestart {
        flags,
        restart_time: 120,
        families: vec![GracefulRestartFamily {
            family: Family::IPV4_UNICAST,
            flags: GracefulRestartFamily::FORWARDING_STATE,
        }],
    }
}

/// The peer's OPEN: AS 65002 (4-octet AS capability), id 10.0.0.2, hold time 90,
/// IPv4 unicast, route refresh and enhanced route refresh, unless told otherwise.
fn peer_open(args: &[String]) -> Open {
    let (mut asn, mut my_as, mut as4, mut id) = (65002u32, None, true, Ipv4Addr::new(10, 0, 0, 2));
    let (mut hold, mut version, mut families) = (90u16, 4u8, vec![Family::IPV4_UNICAST]);
    let (mut gr, mut route_refresh) = (None, true);
    for arg in args {
        let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
        match key {
            "as" => asn = value.parse().unwrap(),
            "my-as" => my_as = Some(value.parse().unwrap()),
            "no-as4" => as4 = false,
            "id" => id = value.parse().unwrap(),
            "hold" => hold = value.parse().unwrap(),
            "version" => version = value.parse().unwrap(),
            "families" => families = value.split(',').map(family).collect(),
            "gr" => gr = Some(0),
            "gr-n" => gr = Some(GracefulRestart::NOTIFICATION),
            "no-rr" => route_refresh = false,
            _ => panic!("unknown OPEN parameter {key}"),
        }
    }
    let mut capabilities: Vec<Capability> = families
        .into_iter()
        .map(|family| Capability::Multiprotocol { family })
        .collect();
    if route_refresh {
        capabilities.extend([Capability::RouteRefresh, Capability::EnhancedRouteRefresh]);
    }
    if as4 {
        capabilities.push(Capability::FourOctetAs { asn });
    }
    if let Some(flags) = gr {
        capabilities.push(Capability::GracefulRestart(graceful_restart(flags)));
    }
    let mut open = Open::new(asn, hold, id, capabilities);
    open.version = version;
    if !as4 {
        open.my_as = u16::try_from(asn).unwrap();
    }
    if let Some(my_as) = my_as {
        open.my_as = my_as;
    }
    open
}

fn decoded(message: Message) -> Event {
    Event::Received(Ok(message.into()))
}

/// A valid UPDATE: 198.51.100.0/24 from AS 65002 via 192.0.2.1.
const UPDATE: &str = "ffffffffffffffffffffffffffffffff002f02000000144001010040020602010000fdea400304c000020118c63364";

fn event(fsm: &Fsm, words: &[String]) -> Event {
    let args = &words[1..];
    match words[0].as_str() {
        "manual-start" => Event::ManualStart,
        "manual-start-passive" => Event::ManualStartPassive,
        "automatic-start" => Event::AutomaticStart,
        "manual-stop" => match args.first() {
            None => Event::ManualStop { notification: None },
            Some(text) if text.starts_with('"') => Event::shutdown(&text[1..]),
            Some(_) => Event::ManualStop {
                notification: Some(notification(args)),
            },
        },
        "automatic-stop" => Event::AutomaticStop {
            notification: notification(&args[..1]),
            restart_after: (args.get(1).map(String::as_str) == Some("after"))
                .then(|| duration(&args[2])),
        },
        "tcp-connected" => Event::TcpConnected(match args[0].as_str() {
            "local" => Initiator::Local,
            "remote" => Initiator::Remote,
            other => panic!("initiator {other}"),
        }),
        "tcp-failed" => Event::TcpFailed,
        "recv" => {
            let rest = &args[1..];
            match args[0].as_str() {
                "open" => decoded(Message::Open(peer_open(rest))),
                "keepalive" => decoded(Message::Keepalive),
                "update" => Event::Received(decode_message(
                    &hex::decode(UPDATE).unwrap(),
                    &fsm.codec_context(),
                )),
                "notification" => decoded(Message::Notification(notification(rest))),
                "route-refresh" => {
                    let subtype = match rest.get(1).map(String::as_str) {
                        Some("subtype") => rest[2].parse().unwrap(),
                        _ => RouteRefresh::REQUEST,
                    };
                    decoded(Message::RouteRefresh(RouteRefresh {
                        family: family(&rest[0]),
                        subtype,
                    }))
                }
                "hex" => Event::Received(decode_message(
                    &hex::decode(rest.concat()).unwrap(),
                    &fsm.codec_context(),
                )),
                other => panic!("unknown message {other}"),
            }
        }
        "framing-error" => Event::FramingError(match args[0].as_str() {
            "marker" => FramingError::BadMarker,
            "length" => FramingError::BadLength {
                length: args[1].parse().unwrap(),
                max: 4096,
            },
            "io" => FramingError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            other => panic!("framing error {other}"),
        }),
        "expire" => Event::TimerExpired(
            *Timer::ALL
                .iter()
                .find(|timer| timer.name() == args[0])
                .unwrap_or_else(|| panic!("timer {}", args[0])),
        ),
        "output-progressed" => Event::OutputProgressed,
        "collision-dump" => Event::CollisionDump,
        other => panic!("unknown event {other}"),
    }
}

/// Runs the active open without checking its actions.
fn establish(fsm: &mut Fsm, open: &[String]) {
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpConnected(Initiator::Local));
    fsm.handle(decoded(Message::Open(peer_open(open))));
    fsm.handle(decoded(Message::Keepalive));
    assert_eq!(fsm.state(), State::Established, "establish");
}

struct Run {
    config: SessionConfig,
    fsms: BTreeMap<String, Fsm>,
    /// Per state machine, the actions of its last UPDATE delivered (for `disabled`).
    last_actions: BTreeMap<String, Vec<Action>>,
}

impl Run {
    fn fsm(&mut self, name: &str) -> &mut Fsm {
        if !self.fsms.contains_key(name) {
            assert_eq!(name, "a", "only `a` is made implicitly");
            self.fsms
                .insert(name.to_string(), Fsm::new(self.config.clone()).unwrap());
        }
        self.fsms.get_mut(name).unwrap()
    }

    fn query(&mut self, name: &str, words: &[String]) -> (String, String) {
        let expected = words[1..].join(" ");
        let fsm = self.fsm(name);
        let actual = match words[0].as_str() {
            "wants" => {
                let initiator = match words[1].as_str() {
                    "local" => Initiator::Local,
                    _ => Initiator::Remote,
                };
                let yes = fsm.wants_connection(initiator);
                format!("{} {}", words[1], if yes { "yes" } else { "no" })
            }
            "finished" => String::from(if fsm.is_finished() { "yes" } else { "no" }),
            "counter" => fsm.connect_retry_counter().to_string(),
            "restart-delay" => format!("{}s", fsm.restart_delay().as_secs()),
            "last-error" => fsm
                .last_error()
                .map(ToString::to_string)
                .unwrap_or_default(),
            "role" => format!("{:?}", fsm.role()).to_lowercase(),
            "timers" => {
                let timers: Vec<String> = fsm
                    .armed_timers()
                    .map(|(timer, duration)| format!("{timer} {}s", duration.as_secs()))
                    .collect();
                if timers.is_empty() {
                    String::from("none")
                } else {
                    timers.join(", ")
                }
            }
            "context" => {
                let negotiated = fsm.negotiated().unwrap();
                let mut text = format!(
                    "AS {} {}",
                    negotiated.peer_as,
                    if negotiated.context.ibgp {
                        "ibgp"
                    } else {
                        "ebgp"
                    }
                );
                if !negotiated.context.four_octet_as {
                    text.push_str(" as2");
                }
                text
            }
            "communication" => match fsm.last_error() {
                Some(bgp_proto::fsm::DownReason::NotificationReceived {
                    communication: Some(Ok(text)),
                    ..
                }) => text.clone(),
                other => format!("{other:?}"),
            },
            "disabled" => {
                let actions = &self.last_actions[name];
                let families: Vec<String> = actions
                    .iter()
                    .filter_map(|action| match action {
                        Action::Update(update) => Some(update),
                        _ => None,
                    })
                    .flat_map(|update| update.disabled_families())
                    .map(|family| family.to_string())
                    .collect();
                families.join(", ")
            }
            other => panic!("unknown query {other}"),
        };
        (expected, actual)
    }
}

fn run(script: &Script) -> Result<(), String> {
    let mut lines = script.lines.iter().peekable();
    let mut run = Run {
        config: config(&[]),
        fsms: BTreeMap::new(),
        last_actions: BTreeMap::new(),
    };
    while let Some((number, line)) = lines.next() {
        let words = tokens(line);
        let fail = |expected: &str, actual: &str| {
            Err(format!(
                "line {number}: `{}`\n expected:\n{expected}\n actual:\n{actual}",
                line.trim()
            ))
        };
        match (words[0].as_str(), words.get(1).map(String::as_str)) {
            ("config", _) => {
                assert!(run.fsms.is_empty(), "config after the first event");
                run.config = config(&words[1..]);
            }
            ("establish", _) => establish(run.fsm("a"), &words[1..]),
            ("decide", _) => {
                let decision = collision::decide(&run.fsms[&words[1]], &run.fsms[&words[2]]);
                let actual = match decision {
                    None => "none",
                    Some(Loser::Primary) => "primary",
                    Some(Loser::Secondary) => "secondary",
                };
                if actual != words[4] {
                    return fail(&words[4], actual);
                }
            }
            ("promote", _) => {
                let previous = run.fsms.remove(&words[2]).unwrap();
                run.fsms.get_mut(&words[1]).unwrap().promote(&previous);
            }
            (name, Some(">>")) => {
                let fsm = run.fsm(name);
                let event = event(fsm, &words[2..]);
                let actions = fsm.handle(event);
                run.last_actions.insert(name.to_string(), actions);
            }
            (name, Some(">")) => {
                let fsm = run.fsm(name);
                let event = event(fsm, &words[2..]);
                let actions = fsm.handle(event);
                let actual: Vec<String> = actions.iter().map(ToString::to_string).collect();
                let mut expected = Vec::new();
                while let Some((_, next)) = lines.peek() {
                    if !next.starts_with(' ') {
                        break;
                    }
                    expected.push(next.trim().to_string());
                    lines.next();
                }
                if actual != expected {
                    return fail(&expected.join("\n"), &actual.join("\n"));
                }
                run.last_actions.insert(name.to_string(), actions);
            }
            (name, Some("=")) if words[2] == "secondary" => {
                let secondary = run.fsm(&words[3]).secondary();
                run.fsms.insert(name.to_string(), secondary);
            }
            (name, Some("=")) => {
                let actual = run.fsm(name).state().to_string();
                if actual != words[2] {
                    return fail(&words[2], &actual);
                }
            }
            (name, Some("?")) => {
                let (expected, actual) = run.query(name, &words[2..]);
                if actual != expected {
                    return fail(&expected, &actual);
                }
            }
            _ => panic!("line {number}: cannot read `{line}`"),
        }
    }
    Ok(())
}

#[test]
fn battery() {
    let scripts: Vec<Script> = [
        (session::SCRIPTS, session::SCRIPTS_LINE),
        (lifecycle::SCRIPTS, lifecycle::SCRIPTS_LINE),
    ]
    .into_iter()
    .flat_map(scripts)
    .collect();
    assert!(scripts.len() > 60, "{} scripts", scripts.len());
    let failures: Vec<String> = scripts
        .iter()
        .filter_map(|script| {
            run(script)
                .err()
                .map(|error| format!("## {}\n{error}", script.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scripts failed:\n\n{}",
        failures.len(),
        scripts.len(),
        failures.join("\n\n")
    );
}

#[test]
fn established_carries_the_negotiated_parameters() {
    let mut config = config(&["gr".into(), "families=ipv4,ipv6".into()]);
    config.capabilities.extended_message = true;
    config.capabilities.hostname = Some(("node-1".into(), String::new()));
    let mut fsm = Fsm::new(config).unwrap();
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpConnected(Initiator::Remote));
    let actions = fsm.handle(Event::TcpConnected(Initiator::Local));
    let Some(Action::Send(open)) = actions.first() else {
        panic!("{actions:?}");
    };
    let Message::Open(open) = open.as_ref() else {
        panic!("{open:?}");
    };
    assert_eq!(open, fsm.local_open());
    assert!(open.has_capability(6) && open.has_capability(64) && open.has_capability(73));
    assert_eq!(
        open.families(),
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    // The encoded OPEN decodes to itself.
    let ctx = fsm.codec_context();
    let bytes = Message::Open(open.clone()).to_bytes(&ctx).unwrap();
    assert_eq!(
        decode_message(&bytes, &ctx).unwrap().message,
        Message::Open(open.clone())
    );

    let mut peer = peer_open(&["gr".into(), "families=ipv6".into()]);
    peer.capabilities.push(Capability::ExtendedMessage);
    peer.capabilities.push(Capability::Hostname {
        hostname: "tor-1".into(),
        domain: "example.net".into(),
    });
    fsm.handle(decoded(Message::Open(peer.clone())));
    let actions = fsm.handle(decoded(Message::Keepalive));
    let Some(Action::Established(negotiated)) = actions.last() else {
        panic!("{actions:?}");
    };
    assert_eq!(negotiated.peer_open, peer);
    assert_eq!(*negotiated.local_open, *open);
    assert_eq!(negotiated.peer_as, 65002);
    assert_eq!(negotiated.initiator, Initiator::Local);
    assert_eq!(negotiated.families, vec![Family::IPV6_UNICAST]);
    assert!(negotiated.route_refresh && negotiated.enhanced_route_refresh);
    assert!(negotiated.graceful_restart);
    assert_eq!(negotiated.peer_graceful_restart, Some(graceful_restart(0)));
    assert_eq!(
        negotiated.peer_hostname,
        Some(("tor-1".into(), "example.net".into()))
    );
    assert!(negotiated.context.extended_message && negotiated.context.four_octet_as);
    assert!(!negotiated.context.ibgp);
    assert_eq!(fsm.codec_context(), negotiated.context);
    assert_eq!(fsm.codec_context().max_message_len(), 65535);
    assert_eq!(negotiated.send_hold_time, Some(Duration::from_secs(480)));
}

#[test]
fn invalid_configurations_are_refused() {
    let mut config = config(&[]);
    config.hold_time = 1;
    assert_eq!(
        Fsm::new(config).unwrap_err().to_string(),
        "hold time 1 s is refused: use 0 or at least 3"
    );
}

/// State machines started on one `Template` share its configuration and OPEN; a
/// template no state machine holds says so; a refused configuration makes none.
#[test]
fn state_machines_share_the_template() {
    let config = SessionConfig::new(64512, Ipv4Addr::new(10, 0, 0, 1), PeerAs::Exact(64512));
    let template = Template::new(config.clone()).unwrap();
    assert!(!template.is_shared());
    assert_eq!(*template.open(), config.local_open());
    let fsm = Fsm::from_template(&template);
    assert!(template.is_shared());
    assert_eq!(fsm.config(), &config);
    assert!(std::ptr::eq(fsm.local_open(), template.open()));
    let secondary = fsm.secondary();
    assert!(std::ptr::eq(secondary.config(), template.config()));
    drop((fsm, secondary));
    assert!(!template.is_shared());
    let refused = SessionConfig {
        hold_time: 2,
        ..config
    };
    assert_eq!(Template::new(refused), Err(ConfigError::HoldTime(2)));
}
