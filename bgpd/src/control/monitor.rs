//! `bgpctl monitor`: one control client following the event stream
//! ([`crate::events`]) until it leaves, bgpd stops, or it cannot keep up.
//!
//! The client is subscribed before the first line (`{"ok":{"monitoring":[...]}}`)
//! is written, so every change after that line reaches it. Each event of its topics
//! becomes one `{"event": MonitorEvent}` line, stamped with the time the task told
//! it (RFC 3339, UTC, milliseconds).
//!
//! A slow client never slows bgpd: the tasks send on the broadcast without waiting,
//! and this task alone waits for the client. It cuts the client off when
//! - it fell more than `EVENT_CAPACITY` events behind the broadcast (`Lagged`), or
//! - one line did not go out within [`WRITE_TIMEOUT`] (the socket's buffer is full:
//!   the client stopped reading);
//!
//! then drops its subscription, tries for [`LAST_LINE_TIMEOUT`] to write one
//! `{"disconnected": {...}}` line saying so and how many events were missed, and
//! closes. What is held for a client is bounded: the broadcast's ring (shared by
//! every reader), one line in the codec's buffer, and the socket's kernel buffer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::codec::{Framed, LinesCodec};

use control_proto::{
    Answer, Disconnected, MonitorChange, MonitorEvent, MonitorTopic, NeighborChange, Response,
};

use crate::events::{Event, Occurrence};

/// Longest one line to a monitor may take to go out before the monitor is cut off.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest the last line to a monitor that is cut off may take: long enough for a
/// client that reads again (bgpctl whose own output was blocked for a while) to get
/// it; all it holds meanwhile is that line.
pub const LAST_LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one `monitor` request on `lines` with the subscription `events`, taken
/// before this was called; returns when the client is gone or was cut off.
pub async fn serve(
    lines: Framed<UnixStream, LinesCodec>,
    mut events: broadcast::Receiver<Arc<Occurrence>>,
    topics: Vec<MonitorTopic>,
) -> anyhow::Result<()> {
    let (mut sink, mut requests) = lines.split();
    let first = super::encode(&Response::Ok(Answer::Monitoring(topics.clone())));
    let cut = match tokio::time::timeout(WRITE_TIMEOUT, sink.send(first)).await {
        Ok(sent) => {
            sent?;
            loop {
                let received = tokio::select! {
                    request = requests.next() => match request {
                        // Nothing more is asked on a monitor; a line is ignored.
                        Some(Ok(_)) => continue,
                        // The client left (or sent a line too long to read).
                        Some(Err(_)) | None => return Ok(()),
                    },
                    received = events.recv() => received,
                };
                match received {
                    Ok(occurrence) => {
                        let Some(event) = monitor_event(&occurrence, &topics) else {
                            continue;
                        };
                        let line = super::encode(&Response::Event(event));
                        match tokio::time::timeout(WRITE_TIMEOUT, sink.send(line)).await {
                            Ok(sent) => sent?,
                            Err(_) => {
                                break Cut::Stalled {
                                    missed: 1 + events.len() as u64,
                                };
                            }
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        break Cut::Behind {
                            missed: missed + events.len() as u64,
                        };
                    }
                    // bgpd is stopping.
                    Err(RecvError::Closed) => return Ok(()),
                }
            }
        }
        Err(_) => Cut::Stalled { missed: 0 },
    };
    // Nothing more is wanted: the events stop being built for this client now.
    drop(events);
    let disconnected = cut.disconnected();
    tracing::info!("control: a monitor was {}", disconnected.message);
    let last = super::encode(&Response::Disconnected(disconnected));
    // Best effort: a client that does not read at all never gets it.
    let _ = tokio::time::timeout(LAST_LINE_TIMEOUT, sink.send(last)).await;
    Ok(())
}

/// Why a monitor was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// It fell behind the broadcast by more than it holds.
    Behind { missed: u64 },
    /// A line did not go out within [`WRITE_TIMEOUT`].
    Stalled { missed: u64 },
}

impl Cut {
    fn disconnected(self) -> Disconnected {
        match self {
            Cut::Behind { missed } => Disconnected {
                missed,
                message: format!(
                    "disconnected for reading too slowly: fell more than {} events behind, {missed} events missed",
                    crate::events::EVENT_CAPACITY
                ),
            },
            Cut::Stalled { missed } => Disconnected {
                missed,
                message: format!(
                    "disconnected for reading too slowly: a line was not taken within {} s, {missed} events missed",
                    WRITE_TIMEOUT.as_secs()
                ),
            },
        }
    }
}

/// The line for an event, when it belongs to one of `topics`.
pub fn monitor_event(occurrence: &Occurrence, topics: &[MonitorTopic]) -> Option<MonitorEvent> {
    let change = match &occurrence.event {
        Event::Session {
            address,
            from,
            state,
            ..
        } => MonitorChange::Neighbor(NeighborChange {
            address: *address,
            from: from.to_string(),
            to: state.to_string(),
        }),
        Event::BestRoute(change) => MonitorChange::Route(change.clone()),
        Event::KernelRoute(operation) => MonitorChange::Fib(operation.clone()),
        Event::Converged | Event::Kernel { .. } | Event::Ipam { .. } => return None,
    };
    if !topics.contains(&change.topic()) {
        return None;
    }
    Some(MonitorEvent {
        time: rfc3339_millis(occurrence.at),
        change,
    })
}

/// `2026-12-06T22:50:01.123Z`.
pub fn rfc3339_millis(at: SystemTime) -> String {
    match jiff::Timestamp::try_from(at) {
        Ok(timestamp) => format!("{timestamp:.3}"),
        // Outside jiff's range (years -9999 to 9999): the clock is wrong.
        Err(_) => "0000-00-00T00:00:00.000Z".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bgp_proto::fsm::State;
    use control_proto::{RouteAction, RouteChange};

    #[test]
    fn times_are_utc_with_milliseconds() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_597_401_123);
        assert_eq!(rfc3339_millis(at), "2026-12-06T22:50:01.123Z");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_597_401);
        assert_eq!(rfc3339_millis(at), "2026-12-06T22:50:01.000Z");
    }

    #[test]
    fn events_become_lines_of_their_topic_only() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_597_401_123);
        let session = Occurrence {
            at,
            event: Event::Session {
                peer: 1,
                address: "10.0.0.2".parse().unwrap(),
                from: State::OpenConfirm,
                state: State::Established,
            },
        };
        let route = Occurrence {
            at,
            event: Event::BestRoute(RouteChange {
                action: RouteAction::Add,
                prefix: "10.1.0.0/26".parse().unwrap(),
                next_hops: vec!["10.0.0.2".parse().unwrap()],
                as_path: "65001".into(),
                source: "10.0.0.2".into(),
            }),
        };
        let all = MonitorTopic::ALL;
        assert_eq!(
            monitor_event(&session, &all),
            Some(MonitorEvent {
                time: "2026-12-06T22:50:01.123Z".into(),
                change: MonitorChange::Neighbor(NeighborChange {
                    address: "10.0.0.2".parse().unwrap(),
                    from: "OpenConfirm".into(),
                    to: "Established".into(),
                }),
            })
        );
        assert_eq!(monitor_event(&session, &[MonitorTopic::Routes]), None);
        assert!(monitor_event(&route, &[MonitorTopic::Routes]).is_some());
        assert_eq!(monitor_event(&route, &[MonitorTopic::Fib]), None);
        let converged = Occurrence {
            at,
            event: Event::Converged,
        };
        assert_eq!(monitor_event(&converged, &all), None);
    }
}
