//! Connection collision detection (RFC 4271 section 6.8): when a peer and we connect
//! to each other at once, both sides keep the connection opened by the speaker with
//! the higher BGP identifier (the higher AS when the identifiers are equal, RFC 6286)
//! and close the other with Cease / Connection Collision Resolution (6/7).
//!
//! [`resolve`] is the rule on plain values; [`decide`] applies it to the two state
//! machines of one peer and says which one to dump now, if any (see the calling
//! contract in [`crate::fsm`]).

use std::net::Ipv4Addr;

use crate::fsm::machine::Fsm;
use crate::fsm::state::{Initiator, Role, State};
use crate::fsm::timer::Timer;

/// One side of the session, for the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Speaker {
    /// BGP identifier.
    pub id: Ipv4Addr,
    /// AS number.
    pub asn: u32,
}

/// One of the two colliding connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contender {
    /// Its state (OpenSent, OpenConfirm or Established).
    pub state: State,
    /// Who opened it.
    pub initiator: Initiator,
    /// For an Established connection: graceful restart was negotiated on it. For one
    /// in OpenConfirm: the peer's OPEN on it carries the graceful restart capability.
    pub graceful_restart: bool,
}

/// Which connection goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Survivor {
    /// The connection that existed first.
    Existing,
    /// The newer connection.
    New,
}

/// Which of two state machines to feed [`Event::CollisionDump`].
///
/// [`Event::CollisionDump`]: crate::fsm::Event::CollisionDump
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loser {
    /// The primary: dump it, then [promote](Fsm::promote) the secondary.
    Primary,
    /// The secondary: dump it and drop it.
    Secondary,
}

/// The collision rule.
///
/// - An Established connection survives (RFC 4271 6.8), except when graceful restart
///   was negotiated on it and the new connection's OPEN carries the capability in
///   OpenConfirm: the peer restarted, its old connection is dead (RFC 4724 4.2).
/// - Otherwise the connection opened by the speaker with the higher BGP identifier
///   survives; with equal identifiers (possible on eBGP, RFC 6286), the one opened
///   by the speaker with the larger AS.
/// - Two connections opened by the same side: the newer survives (the older was
///   abandoned by its opener).
pub fn resolve(local: Speaker, remote: Speaker, existing: Contender, new: Contender) -> Survivor {
    match (
        existing.state == State::Established,
        new.state == State::Established,
    ) {
        (true, false) => {
            if existing.graceful_restart && new.graceful_restart && new.state == State::OpenConfirm
            {
                Survivor::New
            } else {
                Survivor::Existing
            }
        }
        (false, true) => Survivor::New,
        (true, true) => Survivor::Existing,
        (false, false) => {
            if existing.initiator == new.initiator {
                return Survivor::New;
            }
            let local_wins = if local.id == remote.id {
                local.asn > remote.asn
            } else {
                u32::from(local.id) > u32::from(remote.id)
            };
            let keep = if local_wins {
                Initiator::Local
            } else {
                Initiator::Remote
            };
            if new.initiator == keep {
                Survivor::New
            } else {
                Survivor::Existing
            }
        }
    }
}

/// The collision decision for the primary and the secondary state machine of one
/// peer, to be asked after every batch of actions while both exist: which one to dump
/// now, or `None` to wait.
///
/// Nothing is decided before one of them has the peer's OPEN (OpenConfirm or
/// Established): only then is the peer's identifier known. Then:
/// - against one in OpenSent or OpenConfirm, [`resolve`] decides;
/// - an Established one dumps the other when it is still connecting, or waits for
///   its OPEN when graceful restart could let the newcomer win;
/// - an Established one dumps a primary waiting in Idle to restart.
pub fn decide(primary: &Fsm, secondary: &Fsm) -> Option<Loser> {
    if primary.role() != Role::Primary || secondary.role() != Role::Secondary {
        return None;
    }
    let has_open = |fsm: &Fsm| matches!(fsm.state(), State::OpenConfirm | State::Established);
    let (known, other, other_is) = if has_open(primary) {
        (primary, secondary, Loser::Secondary)
    } else if has_open(secondary) {
        (secondary, primary, Loser::Primary)
    } else {
        return None;
    };
    let negotiated = known.negotiated()?;
    let established = known.state() == State::Established;
    match other.state() {
        State::Idle => {
            let restart_pending = other
                .armed_timers()
                .any(|(timer, _)| timer == Timer::IdleHold);
            (established && restart_pending).then_some(other_is)
        }
        State::Connect | State::Active => established.then_some(other_is),
        // The newcomer may be the restarted peer: wait for its OPEN.
        State::OpenSent
            if established && negotiated.graceful_restart && other_is == Loser::Secondary =>
        {
            None
        }
        State::OpenSent | State::OpenConfirm | State::Established => {
            let local = Speaker {
                id: primary.config().local_id,
                asn: primary.config().local_as,
            };
            let remote = Speaker {
                id: negotiated.peer_id,
                asn: negotiated.peer_as,
            };
            let survivor = resolve(local, remote, contender(primary)?, contender(secondary)?);
            Some(match survivor {
                Survivor::Existing => Loser::Secondary,
                Survivor::New => Loser::Primary,
            })
        }
    }
}

fn contender(fsm: &Fsm) -> Option<Contender> {
    let graceful_restart = match (fsm.state(), fsm.negotiated()) {
        (State::Established, Some(negotiated)) => negotiated.graceful_restart,
        (_, Some(negotiated)) => negotiated.peer_graceful_restart.is_some(),
        (_, None) => false,
    };
    Some(Contender {
        state: fsm.state(),
        initiator: fsm.initiator()?,
        graceful_restart,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: Speaker = Speaker {
        id: Ipv4Addr::new(10, 0, 0, 1),
        asn: 65001,
    };
    const HIGH: Speaker = Speaker {
        id: Ipv4Addr::new(10, 0, 0, 2),
        asn: 65000,
    };

    fn at(state: State, initiator: Initiator) -> Contender {
        Contender {
            state,
            initiator,
            graceful_restart: false,
        }
    }

    #[test]
    fn the_connection_of_the_higher_identifier_survives() {
        use Initiator::{Local, Remote};
        use State::{OpenConfirm, OpenSent};
        let ours = at(OpenConfirm, Local);
        let theirs = at(OpenConfirm, Remote);
        // We are lower: keep the peer's connection, whichever came first.
        assert_eq!(resolve(LOW, HIGH, ours, theirs), Survivor::New);
        assert_eq!(resolve(LOW, HIGH, theirs, ours), Survivor::Existing);
        // We are higher: keep ours.
        assert_eq!(resolve(HIGH, LOW, ours, theirs), Survivor::Existing);
        assert_eq!(
            resolve(HIGH, LOW, theirs, at(OpenSent, Local)),
            Survivor::New
        );
        // Equal identifiers: the larger AS decides.
        let same = Speaker {
            id: LOW.id,
            asn: 65002,
        };
        assert_eq!(resolve(LOW, same, ours, theirs), Survivor::New);
        assert_eq!(resolve(same, LOW, ours, theirs), Survivor::Existing);
        // Same opener: the newer.
        assert_eq!(resolve(HIGH, LOW, theirs, theirs), Survivor::New);
    }

    #[test]
    fn established_wins_unless_the_peer_restarted_gracefully() {
        use Initiator::{Local, Remote};
        let established = at(State::Established, Local);
        let newcomer = at(State::OpenConfirm, Remote);
        assert_eq!(
            resolve(LOW, HIGH, established, newcomer),
            Survivor::Existing
        );
        assert_eq!(resolve(LOW, HIGH, newcomer, established), Survivor::New);
        let gr = |c: Contender| Contender {
            graceful_restart: true,
            ..c
        };
        assert_eq!(
            resolve(HIGH, LOW, gr(established), gr(newcomer)),
            Survivor::New
        );
        assert_eq!(
            resolve(HIGH, LOW, gr(established), newcomer),
            Survivor::Existing
        );
        assert_eq!(
            resolve(HIGH, LOW, established, gr(newcomer)),
            Survivor::Existing
        );
    }
}
