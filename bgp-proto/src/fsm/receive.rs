//! Received messages: what each message does in each state (RFC 4271 section 8.2.2,
//! FSM errors with the RFC 6608 subcodes), the OPEN exchange up to Established, and
//! the RFC 7606 handling of UPDATEs.

use std::time::Duration;

use crate::error::{self, Malformed};
use crate::fsm::action::{Action, CloseMode, ReceivedUpdate};
use crate::fsm::config::FamilyErrorPolicy;
use crate::fsm::machine::{Fsm, Restart};
use crate::fsm::negotiated::Negotiated;
use crate::fsm::open_check::check_open;
use crate::fsm::reason::{DownReason, message_type_name};
use crate::fsm::state::{Initiator, State};
use crate::fsm::timer::Timer;
use crate::message::{Decoded, Message, MessageType};
use crate::notification::{Notification, cease_subcode, code, fsm_subcode};
use crate::open::Open;

impl Fsm {
    pub(super) fn received(&mut self, decoded: Decoded, out: &mut Vec<Action>) {
        let message_type = decoded.message.message_type();
        match (self.state, decoded.message) {
            (_, Message::Notification(notification)) => {
                let restart = if notification.code == code::CEASE
                    && notification.subcode == cease_subcode::CONNECTION_COLLISION_RESOLUTION
                {
                    Restart::Initial
                } else {
                    Restart::Backoff
                };
                let reason = DownReason::received(notification);
                self.tear_down(None, CloseMode::Flush, reason, restart, out);
            }
            (State::Connect | State::Active, Message::Open(open)) => {
                // The peer's OPEN arrived while our delay open timer ran.
                let Some(initiator) = self.connection else {
                    return;
                };
                if let Some(negotiated) = self.accept_open(&open, initiator, out) {
                    out.push(Action::Send(Box::new(Message::Open(Open::clone(
                        &self.local_open,
                    )))));
                    self.open_confirm(negotiated, out);
                }
            }
            (State::Connect | State::Active, _) => {
                let reason = DownReason::UnexpectedMessage {
                    message: message_type,
                    state: self.state,
                };
                self.tear_down(None, CloseMode::Flush, reason, Restart::Backoff, out);
            }
            (State::OpenSent, Message::Open(open)) => {
                let Some(initiator) = self.connection else {
                    return;
                };
                if let Some(negotiated) = self.accept_open(&open, initiator, out) {
                    self.open_confirm(negotiated, out);
                }
            }
            (State::OpenConfirm, Message::Keepalive) => self.establish(out),
            (State::Established, Message::Keepalive) => self.restart_hold(out),
            (State::Established, Message::Update(update)) => {
                self.restart_hold(out);
                self.deliver_update(update, decoded.action, decoded.errors, out);
            }
            (State::Established, Message::RouteRefresh(refresh)) => {
                self.restart_hold(out);
                let advertised = self.local_open.families().contains(&refresh.family);
                if !refresh.is_ignorable() && advertised {
                    out.push(Action::RouteRefresh(refresh));
                }
            }
            (State::OpenSent | State::OpenConfirm | State::Established, _) => {
                self.fsm_error(message_type, out);
            }
            (State::Idle, _) => {}
        }
    }

    /// Checks the peer's OPEN; a refusal tears the connection down.
    fn accept_open(
        &mut self,
        open: &Open,
        initiator: Initiator,
        out: &mut Vec<Action>,
    ) -> Option<Negotiated> {
        match check_open(&self.config, &self.local_open, open, initiator) {
            Ok(negotiated) => Some(negotiated),
            Err(refusal) => {
                self.fail(refusal.notification, refusal.detail, out);
                None
            }
        }
    }

    /// The peer's OPEN is accepted: KEEPALIVE, negotiated timers, OpenConfirm.
    fn open_confirm(&mut self, negotiated: Negotiated, out: &mut Vec<Action>) {
        out.push(Action::Send(Box::new(Message::Keepalive)));
        self.stop(Timer::DelayOpen, out);
        if negotiated.hold_time == 0 {
            self.stop(Timer::Hold, out);
        } else {
            let hold = Duration::from_secs(u64::from(negotiated.hold_time));
            let keepalive = Duration::from_secs(u64::from(negotiated.keepalive));
            self.arm(Timer::Hold, hold, out);
            self.arm(Timer::Keepalive, keepalive, out);
        }
        self.negotiated = Some(std::sync::Arc::new(negotiated));
        self.set_state(State::OpenConfirm, None, out);
    }

    fn establish(&mut self, out: &mut Vec<Action>) {
        let Some(negotiated) = self.negotiated.clone() else {
            return;
        };
        self.restart_hold(out);
        if let Some(send_hold) = negotiated.send_hold_time {
            self.arm(Timer::SendHold, send_hold, out);
        }
        self.arm(Timer::BackoffReset, self.config.backoff.reset_after, out);
        self.set_state(State::Established, None, out);
        out.push(Action::Established(negotiated));
    }

    fn restart_hold(&mut self, out: &mut Vec<Action>) {
        if let Some(negotiated) = &self.negotiated {
            if negotiated.hold_time != 0 {
                let hold = Duration::from_secs(u64::from(negotiated.hold_time));
                self.arm(Timer::Hold, hold, out);
            }
        }
    }

    fn deliver_update(
        &mut self,
        update: crate::update::Update,
        action: error::Action,
        errors: Vec<error::DecodeError>,
        out: &mut Vec<Action>,
    ) {
        if action == error::Action::AfiSafiDisable
            && self.config.family_errors == FamilyErrorPolicy::ResetSession
        {
            let problem = errors
                .iter()
                .find(|error| error.action == error::Action::AfiSafiDisable);
            let notification = problem
                .and_then(|error| error.notification.clone())
                .unwrap_or_else(|| Notification::new(code::UPDATE_MESSAGE, 0, Vec::new()));
            let family = problem
                .and_then(|error| error.family)
                .map_or_else(String::new, |family| format!(" of {family}"));
            let detail = format!(
                "AFI/SAFI disable{family}: {}",
                problem.map_or_else(String::new, problem_detail)
            );
            self.fail(notification, detail, out);
            return;
        }
        out.push(Action::Update(Box::new(ReceivedUpdate {
            update,
            action,
            errors,
        })));
    }

    /// A message the state does not allow: FSM error with the RFC 6608 subcode.
    fn fsm_error(&mut self, message_type: MessageType, out: &mut Vec<Action>) {
        let subcode = match self.state {
            State::OpenSent => fsm_subcode::UNEXPECTED_IN_OPEN_SENT,
            State::OpenConfirm => fsm_subcode::UNEXPECTED_IN_OPEN_CONFIRM,
            State::Established => fsm_subcode::UNEXPECTED_IN_ESTABLISHED,
            _ => fsm_subcode::UNSPECIFIED,
        };
        let notification = Notification::new(code::FSM, subcode, Vec::new());
        let detail = format!(
            "unexpected {} in {}",
            message_type_name(message_type),
            self.state
        );
        self.fail(notification, detail, out);
    }

    pub(super) fn malformed(&mut self, malformed: Malformed, out: &mut Vec<Action>) {
        let what = MessageType::from_code(malformed.message_type).map_or_else(
            || format!("message of type {}", malformed.message_type),
            |message| message_type_name(message).to_string(),
        );
        let detail = match malformed
            .errors
            .iter()
            .find(|error| error.action == error::Action::SessionReset)
        {
            Some(error) => format!("malformed {what}: {}", problem_detail(error)),
            None => format!("malformed {what}"),
        };
        if malformed.message_type == MessageType::Notification as u8 {
            // Never answer a NOTIFICATION with a NOTIFICATION (RFC 4271 6.4).
            let reason = DownReason::InvalidNotification { detail };
            self.tear_down(None, CloseMode::Flush, reason, Restart::Backoff, out);
            return;
        }
        self.fail(malformed.notification, detail, out);
    }
}

/// A decode problem in words: the attribute concerned, then the reason.
fn problem_detail(error: &error::DecodeError) -> String {
    match error.attribute {
        Some(attribute) => format!(
            "{}: {}",
            crate::attribute::type_name(attribute),
            error.reason
        ),
        None => error.reason.to_string(),
    }
}
