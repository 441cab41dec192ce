//! Telling "ignored", "withdrawn" and "session reset" apart from outside.
//!
//! A probe works on an established [`Peer`] and the [`Daemon`] it talks to:
//! 1. [`Probe::prepare`]: announce well-formed *victim* routes, each carrying a
//!    marker MED, and wait until the daemon's RIB (and FIB) has every one of them;
//! 2. [`Probe::run`]: send the message under test, then a *sentinel* route, and wait
//!    until either the sentinel is in the RIB (and FIB), or the connection is closed.
//!    Messages of one session are handled in order, so once the sentinel is there the
//!    message under test has had its full effect;
//! 3. the [`Observation`]: the session ([`Session::Up`] or [`Session::Reset`] with the
//!    daemon's NOTIFICATION), and each victim [`RouteState::Unchanged`] (still the
//!    marked route: the message was ignored), [`RouteState::Replaced`] (the message's
//!    route was accepted) or [`RouteState::Absent`] (withdrawn), in the RIB and in
//!    the kernel.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bgp_proto::Notification;
use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::observe::{Daemon, RibRoute};
use crate::session::Peer;

/// A route announced before the message under test, with a marker MED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Victim {
    pub prefix: IpNet,
    pub med: u32,
}

/// What became of a victim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteState {
    /// Not in the RIB (from this peer).
    Absent,
    /// Still the route announced with the marker MED.
    Unchanged,
    /// Another route from this peer (the message under test replaced it).
    Replaced(Box<RibRoute>),
}

/// The session after the message under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Session {
    /// Still up: the sentinel arrived.
    Up,
    /// The daemon closed the connection, with this NOTIFICATION if it sent one.
    Reset(Option<Notification>),
    /// Neither: the sentinel did not arrive and the connection stayed open.
    Stuck,
}

/// A victim's state in the RIB and whether the kernel has a route for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VictimState {
    pub prefix: IpNet,
    pub rib: RouteState,
    pub kernel: bool,
}

/// What a probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub session: Session,
    pub victims: Vec<VictimState>,
}

/// A probe over one peer and its daemon. See the module documentation.
#[derive(Debug)]
pub struct Probe<'a> {
    pub peer: &'a Peer,
    pub daemon: &'a Daemon,
    /// Check the kernel FIB too (the daemon installs routes).
    pub kernel: bool,
    /// Bound of each wait.
    pub timeout: Duration,
}

impl Probe<'_> {
    /// The daemon's name for this peer: routes it learned from us have it as `source`.
    pub fn source(&self) -> IpAddr {
        self.peer.local_addr().ip()
    }

    /// Sends `announcements` (well-formed UPDATEs announcing the victims with their
    /// marker MEDs) and waits until every victim is in the RIB with its marker, and in
    /// the kernel.
    pub fn prepare(&self, victims: &[Victim], announcements: &[Vec<u8>]) -> Result<()> {
        for message in announcements {
            self.peer.send(message)?;
        }
        poll(self.timeout, "the victim routes to be installed", || {
            let states = self.states(victims)?;
            let missing: Vec<String> = states
                .iter()
                .filter(|s| s.rib != RouteState::Unchanged || (self.kernel && !s.kernel))
                .map(|s| format!("{} {:?} kernel {}", s.prefix, s.rib, s.kernel))
                .collect();
            Ok(if missing.is_empty() {
                Ok(())
            } else {
                Err(missing.join(", "))
            })
        })
    }

    /// Sends `message`, then `sentinel` (a well-formed UPDATE announcing
    /// `sentinel_prefix`); returns what happened (see the module documentation).
    pub fn run(
        &self,
        message: &[u8],
        sentinel: &[u8],
        sentinel_prefix: IpNet,
        victims: &[Victim],
    ) -> Result<Observation> {
        // A send may fail once the daemon has closed: the outcome says so.
        let _ = self.peer.send(message);
        let _ = self.peer.send(sentinel);
        let session = poll(self.timeout, "the sentinel or a reset", || {
            let seen = self.peer.observed();
            if seen.closed.is_some() {
                return Ok(Ok(Session::Reset(seen.notification)));
            }
            if self.has_route(sentinel_prefix)? {
                return Ok(Ok(Session::Up));
            }
            Ok(Err(format!(
                "no sentinel {sentinel_prefix}, connection open"
            )))
        })
        .or_else(|error| match error {
            Error::Timeout { .. } => Ok(Session::Stuck),
            other => Err(other),
        })?;
        if matches!(session, Session::Reset(_)) {
            // The routes of a session that went down are withdrawn: wait for that
            // (and report what is left if it does not happen).
            let _ = poll(self.timeout, "the reset session's routes to go", || {
                let states = self.states(victims)?;
                Ok(
                    if states
                        .iter()
                        .all(|s| s.rib == RouteState::Absent && !s.kernel)
                    {
                        Ok(())
                    } else {
                        Err(format!("{states:?}"))
                    },
                )
            });
        }
        Ok(Observation {
            session,
            victims: self.states(victims)?,
        })
    }

    /// Whether `prefix` is in the RIB from this peer (and in the kernel).
    pub fn has_route(&self, prefix: IpNet) -> Result<bool> {
        let source = self.source().to_string();
        let in_rib = self
            .daemon
            .paths(prefix)?
            .iter()
            .any(|route| route.source == source);
        if !in_rib || !self.kernel {
            return Ok(in_rib);
        }
        Ok(self.daemon.kernel_route(prefix)?.is_some())
    }

    /// Every victim's state now.
    pub fn states(&self, victims: &[Victim]) -> Result<Vec<VictimState>> {
        let source = self.source().to_string();
        let routes = self.daemon.routes()?;
        let kernel = if self.kernel {
            self.daemon.kernel_routes()?
        } else {
            Vec::new()
        };
        Ok(victims
            .iter()
            .map(|victim| {
                let route = routes
                    .iter()
                    .find(|route| route.prefix == victim.prefix && route.source == source);
                let rib = match route {
                    None => RouteState::Absent,
                    Some(route) if route.med == Some(victim.med) => RouteState::Unchanged,
                    Some(route) => RouteState::Replaced(Box::new(route.clone())),
                };
                VictimState {
                    prefix: victim.prefix,
                    rib,
                    kernel: kernel.iter().any(|k| k.prefix == victim.prefix),
                }
            })
            .collect())
    }
}

/// Polls `probe` (10 ms, backing off to 200 ms) until it gives `Ok(Ok(value))`; an
/// `Ok(Err(observation))` means "not yet", an `Err` ends the wait.
pub fn poll<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<std::result::Result<T, String>>,
) -> Result<T> {
    let start = Instant::now();
    let mut interval = Duration::from_millis(10);
    loop {
        let last = match probe()? {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(Error::Timeout {
                what: what.to_owned(),
                waited,
                last: format!("; last observation: {last}"),
            });
        }
        std::thread::sleep(interval.min(timeout - waited));
        interval = (interval * 2).min(Duration::from_millis(200));
    }
}
