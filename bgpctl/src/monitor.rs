//! `bgpctl monitor [routes|neighbors|fib]... [--json]`: follows bgpd's changes as
//! they happen, one line each, until interrupted (no topic: all three).
//!
//! Each line starts with the time bgpd's task made the change (RFC 3339, UTC,
//! milliseconds), then the topic and what happened:
//!
//! ```text
//! 2026-12-06T22:50:01.123Z route     add      10.1.0.0/26  via 10.0.0.2  as-path 65001  from 10.0.0.2
//! 2026-12-06T22:50:01.125Z fib       add      10.1.0.0/26  via 10.0.0.2 dev eth1
//! 2026-12-06T22:50:07.410Z neighbor  10.0.0.2  Established -> Idle
//! ```
//!
//! With `--json`, one `MonitorEvent` object per line. Once bgpd listens, bgpctl says
//! so on stderr (`monitoring routes, neighbors, fib`). bgpd cuts off a monitor that
//! reads too slowly; bgpctl then prints bgpd's line saying so on stderr and exits
//! with status 1, as it does when bgpd closes the stream (bgpd stopping). A reader
//! of bgpctl's output that goes away (`| head`) ends it quietly with 0.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use control_proto::fib::{KernelAction, KernelOperation};
use control_proto::{
    Answer, MonitorChange, MonitorEvent, MonitorTopic, NeighborChange, Request, Response,
    RouteAction, RouteChange,
};

use crate::client::{Answers, Connection, socket_path};
use crate::output::{fail, stopped, write_out};

/// `bgpctl monitor [TOPIC]...`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// What to follow (default: all of them).
    #[arg(value_enum)]
    pub topics: Vec<Topic>,
}

/// A topic as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Topic {
    /// Best-route changes (add, change, withdraw).
    Routes,
    /// BGP session state changes.
    Neighbors,
    /// Kernel route operations, route by route.
    Fib,
}

impl From<Topic> for MonitorTopic {
    fn from(topic: Topic) -> MonitorTopic {
        match topic {
            Topic::Routes => MonitorTopic::Routes,
            Topic::Neighbors => MonitorTopic::Neighbors,
            Topic::Fib => MonitorTopic::Fib,
        }
    }
}

/// Runs `monitor` until interrupted, cut off, or bgpd goes away.
pub fn run(connection: &Connection, args: &MonitorArgs) -> ExitCode {
    let mut topics: Vec<MonitorTopic> = args.topics.iter().copied().map(Into::into).collect();
    if topics.is_empty() {
        topics = MonitorTopic::ALL.to_vec();
    }
    topics.dedup();
    let path = socket_path(connection.socket.as_deref());
    let mut answers = match Answers::send(&path, &Request::Monitor { topics }) {
        Ok(answers) => answers,
        Err(error) => return fail(&error.to_string()),
    };
    if let Err(error) = answers.wait_forever() {
        return fail(&error.to_string());
    }
    let mut out = std::io::stdout().lock();
    loop {
        let line = match answers.next_line() {
            Ok(line) => line,
            Err(crate::client::ClientError::BadAnswer(message))
                if message.starts_with("the connection closed") =>
            {
                return fail("bgpd closed the monitor stream (bgpd stopped?)");
            }
            Err(error) => return fail(&error.to_string()),
        };
        match line {
            Response::Ok(Answer::Monitoring(topics)) => {
                let names: Vec<&str> = topics.iter().map(|t| t.name()).collect();
                let _ = writeln!(std::io::stderr(), "monitoring {}", names.join(", "));
            }
            Response::Event(event) => {
                let text = if connection.json {
                    match serde_json::to_string(&event) {
                        Ok(mut text) => {
                            text.push('\n');
                            text
                        }
                        Err(error) => return fail(&format!("cannot encode JSON: {error}")),
                    }
                } else {
                    human(&event)
                };
                if let Err(stop) = write_out(&mut out, &text) {
                    return stopped(stop);
                }
            }
            Response::Disconnected(disconnected) => return fail(&disconnected.message),
            Response::Error(message) => return fail(&message),
            other => {
                return fail(&format!(
                    "bgpd sent an answer bgpctl cannot read: {other:?} where monitor events were due"
                ));
            }
        }
    }
}

/// One event as a line of text.
pub fn human(event: &MonitorEvent) -> String {
    let mut text = format!("{} ", event.time);
    match &event.change {
        MonitorChange::Route(route) => route_line(&mut text, route),
        MonitorChange::Neighbor(neighbor) => neighbor_line(&mut text, neighbor),
        MonitorChange::Fib(operation) => fib_line(&mut text, operation),
    }
    text.push('\n');
    text
}

fn route_line(text: &mut String, route: &RouteChange) {
    let _ = write!(
        text,
        "route     {:<8} {:<18}",
        route.action.name(),
        route.prefix.to_string()
    );
    if route.action != RouteAction::Withdraw {
        if !route.next_hops.is_empty() {
            let hops: Vec<String> = route.next_hops.iter().map(ToString::to_string).collect();
            let _ = write!(text, "  via {}", hops.join(", "));
        }
        if !route.as_path.is_empty() {
            let _ = write!(text, "  as-path {}", route.as_path);
        }
    }
    let _ = write!(text, "  from {}", route.source);
}

fn neighbor_line(text: &mut String, neighbor: &NeighborChange) {
    let _ = write!(
        text,
        "neighbor  {}  {} -> {}",
        neighbor.address, neighbor.from, neighbor.to
    );
}

fn fib_line(text: &mut String, operation: &KernelOperation) {
    let _ = write!(
        text,
        "fib       {:<8} {:<18}",
        operation.action.name(),
        operation.prefix.to_string()
    );
    if operation.kind != "unicast" {
        let _ = write!(text, "  {}", operation.kind);
    }
    if !operation.next_hops.is_empty() {
        text.push(' ');
        for hop in &operation.next_hops {
            if let Some(gateway) = hop.gateway {
                let _ = write!(text, " via {gateway}");
            }
            let _ = write!(text, " dev {}", hop.device);
        }
    }
    if let Some(error) = &operation.error {
        let word = match operation.action {
            KernelAction::NotInstalled => "",
            _ => "refused: ",
        };
        let _ = write!(text, "  {word}{error}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use control_proto::fib::InstalledNextHop;

    fn event(change: MonitorChange) -> MonitorEvent {
        MonitorEvent {
            time: "2026-12-06T22:50:01.123Z".into(),
            change,
        }
    }

    #[test]
    fn one_line_per_event() {
        let route = RouteChange {
            action: RouteAction::Add,
            prefix: "10.1.0.0/26".parse().unwrap(),
            next_hops: vec!["10.0.0.2".parse().unwrap()],
            as_path: "65001".into(),
            source: "10.0.0.2".into(),
        };
        assert_eq!(
            human(&event(MonitorChange::Route(route.clone()))),
            "2026-12-06T22:50:01.123Z route     add      10.1.0.0/26         via 10.0.0.2  as-path 65001  from 10.0.0.2\n"
        );
        let withdraw = RouteChange {
            action: RouteAction::Withdraw,
            next_hops: vec![],
            as_path: String::new(),
            ..route
        };
        assert_eq!(
            human(&event(MonitorChange::Route(withdraw))),
            "2026-12-06T22:50:01.123Z route     withdraw 10.1.0.0/26         from 10.0.0.2\n"
        );
        assert_eq!(
            human(&event(MonitorChange::Neighbor(NeighborChange {
                address: "10.0.0.2".parse().unwrap(),
                from: "Established".into(),
                to: "Idle".into(),
            }))),
            "2026-12-06T22:50:01.123Z neighbor  10.0.0.2  Established -> Idle\n"
        );
        let fib = KernelOperation {
            action: KernelAction::Add,
            prefix: "10.1.0.0/26".parse().unwrap(),
            kind: "unicast".into(),
            next_hops: vec![InstalledNextHop {
                gateway: Some("10.0.0.2".parse().unwrap()),
                device: "eth1".into(),
            }],
            error: None,
        };
        assert_eq!(
            human(&event(MonitorChange::Fib(fib.clone()))),
            "2026-12-06T22:50:01.123Z fib       add      10.1.0.0/26         via 10.0.0.2 dev eth1\n"
        );
        let refused = KernelOperation {
            error: Some("add 10.1.0.0/26 via 10.0.0.2 dev eth1: File exists".into()),
            ..fib
        };
        assert!(
            human(&event(MonitorChange::Fib(refused))).ends_with(
                "dev eth1  refused: add 10.1.0.0/26 via 10.0.0.2 dev eth1: File exists\n"
            )
        );
    }
}
