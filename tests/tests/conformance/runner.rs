//! Runs the table's cases against bgpd, one after the other, over sessions of the
//! adversarial peer opened as needed, and reads each outcome.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Runs cases one after the other over sessions it opens as needed.
pub struct Runner<'a> {
    pub bench: &'a Bench,
    /// The established session and its kind, reused by the next case of that kind.
    pub session: Option<(Kind, Peer)>,
    /// Sentinels used so far (each case gets new ones).
    pub sentinels: std::cell::Cell<u16>,
    /// An eBGP neighbor that bgpd sends every route (for `exported` checks), once
    /// one is needed.
    pub observer: Option<Peer>,
}

impl Drop for Runner<'_> {
    fn drop(&mut self) {
        if let Some((_, peer)) = self.session.take() {
            peer.notify_and_close(6, 2, &[]);
        }
        if let Some(observer) = self.observer.take() {
            observer.notify_and_close(6, 2, &[]);
        }
    }
}

impl Runner<'_> {
    pub fn run(&mut self, case: &Case) -> Outcome {
        let outcome = if case.on_open {
            self.run_open(case)
        } else {
            self.run_established(case)
        };
        match (&outcome, &case.expect) {
            (Outcome::Accepted(_, Some(route)), Outcome::Accepted(..)) => {
                let failures: Vec<String> = case
                    .checks
                    .iter()
                    .filter_map(|c| c.failure(route))
                    .collect();
                if !failures.is_empty() {
                    return Outcome::Other(format!("{outcome}: {}", failures.join("; ")));
                }
                match self.check_exported(case) {
                    Ok(()) => outcome,
                    Err(error) => Outcome::Other(format!("{outcome}, exported: {error}")),
                }
            }
            _ => outcome,
        }
    }

    /// The `exported` checks: the IPv4 victim as bgpd sends it to the observer.
    pub fn check_exported(&mut self, case: &Case) -> Result<(), String> {
        if case.exported.is_empty() {
            return Ok(());
        }
        if self.observer.is_none() {
            let source = self.bench.fresh_address(OBSERVER_RANGE);
            let peer = self.bench.connect(source);
            let open = wire::open(OBSERVER_ASN, 90, source, &[(1, 1), (2, 1)], false, &[]);
            match peer.establish(&open, CASE_TIMEOUT) {
                Ok(Handshake::Established(_)) => {}
                other => return Err(format!("observer not established: {other:?}")),
            }
            self.observer = Some(peer);
        }
        let observer = self.observer.as_ref().expect("observer");
        let victim: IpNet = V4_VICTIM.parse().unwrap();
        observer
            .wait_for(CASE_TIMEOUT, "the exported route to pass", |seen| {
                let route = seen
                    .routes
                    .get(&victim)
                    .ok_or_else(|| format!("{victim} not sent"))?;
                let failures: Vec<String> = case
                    .exported
                    .iter()
                    .filter_map(|check| check.exported_failure(&route.attributes))
                    .collect();
                if failures.is_empty() {
                    Ok(())
                } else {
                    Err(failures.join("; "))
                }
            })
            .map_err(|error| error.to_string())
    }

    /// The case's bytes as the OPEN of a new connection.
    pub fn run_open(&mut self, case: &Case) -> Outcome {
        self.close_session();
        let source = self.bench.fresh_address(case.kind.range());
        let peer = self.bench.connect(source);
        match peer.establish(&case.bytes, CASE_TIMEOUT) {
            Ok(Handshake::Established(_)) => {
                peer.notify_and_close(6, 2, &[]);
                Outcome::Established
            }
            Ok(Handshake::Refused {
                notification: Some(n),
                ..
            }) => Outcome::Refused {
                code: n.code,
                subcode: n.subcode,
                data: Some(n.data),
            },
            Ok(Handshake::Refused {
                notification: None,
                reason,
            }) => Outcome::Other(format!("closed without NOTIFICATION: {reason}")),
            Err(error) => Outcome::Other(format!("no answer: {error}")),
        }
    }

    /// The case's bytes on an established session, between victims and a sentinel.
    pub fn run_established(&mut self, case: &Case) -> Outcome {
        let kind = case.kind;
        if self
            .session
            .as_ref()
            .is_none_or(|(k, peer)| *k != kind || peer.observed().closed.is_some())
        {
            self.close_session();
            let source = self.bench.fresh_address(kind.range());
            let peer = self.bench.connect(source);
            match peer.establish(&kind.open(source), CASE_TIMEOUT) {
                Ok(Handshake::Established(_)) => {}
                other => {
                    return Outcome::Other(format!("session {kind:?} not established: {other:?}"));
                }
            }
            self.session = Some((kind, peer));
        }
        let (_, peer) = self.session.as_ref().expect("session");
        let probe = self.probe(peer);
        let marker = 10_000 + u32::from(self.next_number());
        let victims = [
            Victim {
                prefix: V4_VICTIM.parse().unwrap(),
                med: marker,
            },
            Victim {
                prefix: V6_VICTIM.parse().unwrap(),
                med: marker,
            },
        ];
        let announcements = vec![
            wire::announce_v4(
                &[V4_VICTIM.parse().unwrap()],
                &kind.attributes(Some(marker)),
                V4_NEXT_HOP,
            ),
            wire::announce_v6(
                &[V6_VICTIM.parse().unwrap()],
                &kind.attributes(Some(marker)),
                V6_NEXT_HOP,
                None,
            ),
        ];
        if let Err(error) = probe.prepare(&victims, &announcements) {
            return Outcome::Other(format!("victims not installed: {error}"));
        }
        // A case that disables IPv4 needs an IPv6 sentinel.
        let sentinel_family = match case.expect {
            Outcome::Disabled(Fam::V4) => Fam::V6,
            _ => Fam::V4,
        };
        let (sentinel_prefix, sentinel) = self.sentinel(kind, sentinel_family);
        // Victims expected to stay are watched for a while, not until they go.
        let probe = Probe {
            timeout: if case.expect.kept() {
                KEPT_WAIT
            } else {
                CASE_TIMEOUT
            },
            ..probe
        };
        let observation = match probe.run(&case.bytes, &sentinel, sentinel_prefix, &victims) {
            Ok(observation) => observation,
            Err(error) => return Outcome::Other(format!("probe failed: {error}")),
        };
        let states: Vec<(Fam, RouteState, bool)> = observation
            .victims
            .iter()
            .map(|v| {
                let family = if v.prefix.addr().is_ipv4() {
                    Fam::V4
                } else {
                    Fam::V6
                };
                (family, v.rib.clone(), v.kernel)
            })
            .collect();
        let outcome = match observation.session {
            Session::Reset(notification) => {
                let source = self.session.take().map(|(_, peer)| peer.local_addr().ip());
                let leftover: Vec<String> = states
                    .iter()
                    .filter(|(_, rib, kernel)| *rib != RouteState::Absent || *kernel)
                    .map(|(family, rib, kernel)| {
                        format!("{} {rib:?} kernel {kernel}", family.name())
                    })
                    .collect();
                // Kept as graceful restart keeps them: every victim as it was.
                let kept = states
                    .iter()
                    .all(|(_, rib, kernel)| *rib == RouteState::Unchanged && *kernel);
                let outcome = match notification {
                    Some(n) => Outcome::Reset {
                        code: n.code,
                        subcode: n.subcode,
                        data: Some(n.data),
                        kept,
                    },
                    None => Outcome::Closed { kept },
                };
                if kept {
                    if let Err(error) = self.flush_kept(kind, source, &victims) {
                        return Outcome::Other(format!("{outcome}, then {error}"));
                    }
                    outcome
                } else if leftover.is_empty() {
                    outcome
                } else {
                    Outcome::Other(format!(
                        "{outcome} but routes left: {}",
                        leftover.join(", ")
                    ))
                }
            }
            Session::Stuck => {
                self.close_session();
                Outcome::Other("stuck: no sentinel, no reset".into())
            }
            Session::Up => self.up_outcome(case, kind, &states),
        };
        if let Some((_, peer)) = &self.session {
            let _ = peer.send(&wire::withdraw(&[sentinel_prefix]));
        }
        outcome
    }

    /// The outcome of a case after which the session is still up.
    pub fn up_outcome(
        &mut self,
        case: &Case,
        kind: Kind,
        states: &[(Fam, RouteState, bool)],
    ) -> Outcome {
        // The kernel must agree with the RIB.
        for (family, rib, kernel) in states {
            if (*rib != RouteState::Absent) != *kernel {
                return Outcome::Other(format!(
                    "{} is {rib:?} in the RIB but kernel route {}",
                    family.name(),
                    if *kernel { "present" } else { "absent" }
                ));
            }
        }
        let absent: Vec<Fam> = states
            .iter()
            .filter(|(_, rib, _)| *rib == RouteState::Absent)
            .map(|(family, _, _)| *family)
            .collect();
        let replaced: Vec<(Fam, RibRoute)> = states
            .iter()
            .filter_map(|(family, rib, _)| match rib {
                RouteState::Replaced(route) => Some((*family, (**route).clone())),
                _ => None,
            })
            .collect();
        match (absent.as_slice(), replaced.as_slice()) {
            ([], []) => Outcome::Unchanged,
            ([family], []) if case.expect == Outcome::Disabled(*family) => {
                self.check_disabled(kind, *family)
            }
            (absent, []) => Outcome::Withdrawn(absent.to_vec()),
            ([], [(family, route)]) => Outcome::Accepted(*family, Some(Box::new(route.clone()))),
            _ => Outcome::Other(format!("absent {absent:?}, replaced {replaced:?}")),
        }
    }

    /// After a victim of `family` went: a new route of that family must be ignored
    /// while one of the other family arrives. The session is closed afterwards (the
    /// family stays disabled until it restarts).
    pub fn check_disabled(&mut self, kind: Kind, family: Fam) -> Outcome {
        let (ignored_prefix, ignored) = self.sentinel(kind, family);
        let (sentinel_prefix, sentinel) = self.sentinel(kind, family.other());
        let (_, peer) = self.session.as_ref().expect("session");
        let probe = self.probe(peer);
        let outcome = match probe.run(&ignored, &sentinel, sentinel_prefix, &[]) {
            Ok(observation) if observation.session == Session::Up => {
                match probe.has_route(ignored_prefix) {
                    Ok(false) => Outcome::Disabled(family),
                    Ok(true) => Outcome::Withdrawn(vec![family]),
                    Err(error) => Outcome::Other(error.to_string()),
                }
            }
            Ok(observation) => Outcome::Other(format!(
                "withdrawn {} then {:?}",
                family.name(),
                observation.session
            )),
            Err(error) => Outcome::Other(error.to_string()),
        };
        self.close_session();
        outcome
    }

    /// After a `kept` case: the neighbor at `source` comes back and sends End-of-RIB,
    /// so its stale victims go before the next case (they would stand in the kernel
    /// for its victims), then leaves with a Hard Reset.
    pub fn flush_kept(
        &self,
        kind: Kind,
        source: Option<IpAddr>,
        victims: &[Victim],
    ) -> Result<(), String> {
        let Some(IpAddr::V4(source)) = source else {
            return Err("no IPv4 source to come back from".into());
        };
        let peer = self.bench.connect(source);
        match peer.establish(&kind.open(source), CASE_TIMEOUT) {
            Ok(Handshake::Established(_)) => {}
            other => return Err(format!("coming back: {other:?}")),
        }
        for (afi, safi) in [(1, 1), (2, 1)] {
            peer.send(&wire::end_of_rib(afi, safi))
                .map_err(|error| format!("End-of-RIB: {error}"))?;
        }
        let probe = self.probe(&peer);
        let deadline = Instant::now() + CASE_TIMEOUT;
        loop {
            let states = probe.states(victims).map_err(|error| error.to_string())?;
            if states
                .iter()
                .all(|state| state.rib == RouteState::Absent && !state.kernel)
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("stale victims left after End-of-RIB: {states:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        peer.notify_and_close(6, 9, &[6, 2]);
        Ok(())
    }

    /// A new sentinel route of `family`: its prefix and its UPDATE.
    pub fn sentinel(&self, kind: Kind, family: Fam) -> (IpNet, Vec<u8>) {
        let number = self.next_number();
        let [high, low] = number.to_be_bytes();
        match family {
            Fam::V4 => {
                let net = Ipv4Net::new(Ipv4Addr::new(10, 250, high, low), 32).unwrap();
                (
                    IpNet::V4(net),
                    wire::announce_v4(&[net], &kind.attributes(None), V4_NEXT_HOP),
                )
            }
            Fam::V6 => {
                let address = Ipv6Addr::new(0x2001, 0xdb8, 0x250, 0, 0, 0, 0, number);
                let net = Ipv6Net::new(address, 128).unwrap();
                (
                    IpNet::V6(net),
                    wire::announce_v6(&[net], &kind.attributes(None), V6_NEXT_HOP, None),
                )
            }
        }
    }

    /// A probe of `peer` that checks the daemon and its kernel, each wait bounded by
    /// [`CASE_TIMEOUT`].
    fn probe<'p>(&'p self, peer: &'p Peer) -> Probe<'p> {
        Probe {
            peer,
            daemon: &self.bench.observer,
            kernel: true,
            timeout: CASE_TIMEOUT,
        }
    }

    /// A number used by no earlier marker or sentinel.
    pub fn next_number(&self) -> u16 {
        self.sentinels.set(self.sentinels.get() + 1);
        self.sentinels.get()
    }

    /// Ends the current session with Cease / Administrative Shutdown.
    pub fn close_session(&mut self) {
        if let Some((_, peer)) = self.session.take() {
            peer.notify_and_close(6, 2, &[]);
        }
    }
}
