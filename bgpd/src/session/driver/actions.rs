//! Executing the state machine's actions, in the order given: sends, close,
//! connect, timers, state change, then the notices for the speaker (Established,
//! SessionDown, UPDATE, ROUTE-REFRESH), which become `RibInput`s. Also: UPDATEs from
//! the rib task toward the peer, route refresh requests, the published status, and
//! rate-limited logs of malformed messages (a hostile peer cannot fill the disk).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bgp_proto::fsm::{Action, CloseMode, DownReason, Event, Negotiated, ReceivedUpdate, State};
use bgp_proto::{Action as ErrorAction, Decoded, Malformed, Message, MessageType, RouteRefresh};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Driver, Up, Which, timer_index};
use crate::events::Event as DaemonEvent;
use crate::session::addresses::{canonical, local_addresses, scoped};
use crate::session::status::{ConnectionEnds, Direction, LastError};
use crate::tasks::{OUTBOUND_CAPACITY, Outbound, PeerInfo, PeerUp, RibInput};

/// Malformed-message log lines per session and minute; the rest are counted.
const MALFORMED_LOGS_PER_MINUTE: u32 = 10;
/// Octets of a malformed message shown in hex.
const MALFORMED_HEX_MAX: usize = 256;

impl Driver {
    /// Executes one batch of actions of the state machine `which`.
    pub(super) async fn execute(&mut self, which: Which, actions: Vec<Action>) {
        for action in actions {
            tracing::trace!(neighbor = %self.settings.address, ?which, "{action}");
            match action {
                Action::Connect => self.start_connect(which),
                Action::Send(message) => self.send(which, &message),
                Action::Close(mode) => self.close(which, mode),
                Action::ArmTimer { timer, duration } => {
                    if let Some(slot) = self.slot_mut(which) {
                        slot.timers[timer_index(timer)] = Some(Instant::now() + duration);
                    }
                }
                Action::StopTimer(timer) => {
                    if let Some(slot) = self.slot_mut(which) {
                        slot.timers[timer_index(timer)] = None;
                    }
                }
                Action::StateChanged { from, to, reason } => {
                    self.state_changed(which, from, to, reason.as_ref());
                }
                Action::Established(negotiated) => self.established(which, negotiated).await,
                Action::SessionDown(reason) => self.session_down(which, &reason).await,
                Action::Update(received) => self.update(*received).await,
                Action::RouteRefresh(refresh) => self.route_refresh(refresh).await,
            }
        }
    }

    fn start_connect(&mut self, which: Which) {
        if which != Which::Primary {
            return;
        }
        let (peer, local) = self.endpoints();
        let options = self.settings.socket_options(&self.speaker);
        let timeout = self.primary.fsm.config().connect_retry;
        let interface = self.settings.interface.clone();
        self.connecting = Some(Box::pin(async move {
            let peer = scoped(peer, interface.as_ref().map(|name| name.as_str()))?;
            crate::socket::connect(peer, local, &options, timeout).await
        }));
    }

    fn send(&mut self, which: Which, message: &Message) {
        let counters = self.counters.clone();
        let Some(slot) = self.slot_mut(which) else {
            return;
        };
        match message.to_bytes(&slot.fsm.codec_context()) {
            Ok(bytes) => {
                if let Some(conn) = &slot.conn {
                    counters.count_sent(message.message_type(), 1);
                    if let Message::Notification(notification) = message {
                        counters.count_notification(Direction::Sent, notification);
                    }
                    conn.send_urgent(bytes);
                }
            }
            Err(error) => tracing::error!("cannot encode {:?}: {error}", message.message_type()),
        }
    }

    fn close(&mut self, which: Which, mode: CloseMode) {
        if which == Which::Primary {
            self.connecting = None;
        }
        let Some(slot) = self.slot_mut(which) else {
            return;
        };
        if let Some(conn) = slot.conn.take()
            && let Some(handle) = conn.close(mode == CloseMode::Flush)
        {
            self.closing.push(handle);
        }
        self.closing.retain(|handle| !handle.is_finished());
    }

    fn state_changed(&mut self, which: Which, from: State, to: State, reason: Option<&DownReason>) {
        let address = self.settings.address;
        let role = if which == Which::Primary {
            "primary"
        } else {
            "secondary"
        };
        match reason {
            Some(reason) if from == State::Established || to == State::Idle => {
                tracing::info!(neighbor = %address, connection = role, "{from} -> {to}: {reason}");
            }
            Some(reason) => {
                tracing::debug!(neighbor = %address, connection = role, "{from} -> {to}: {reason}");
            }
            None if to == State::Established => {
                tracing::info!(neighbor = %address, connection = role, "{from} -> {to}");
            }
            None => tracing::debug!(neighbor = %address, connection = role, "{from} -> {to}"),
        }
        if let Some(reason) = reason
            && !matches!(reason, DownReason::ConnectFailed)
        {
            self.set_last_error(reason.to_string());
        }
        if to == State::Established {
            self.status.modify(|status| status.established_count += 1);
        }
    }

    /// The session is up: PeerUp to the rib task with a fresh outbound channel.
    async fn established(&mut self, which: Which, negotiated: std::sync::Arc<Negotiated>) {
        if self.up.is_some() {
            // The other connection was up (cannot happen with the collision
            // procedure; kept consistent anyway).
            self.rib_down(None).await;
        }
        let Some(slot) = self.slot_mut(which) else {
            return;
        };
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        conn.set_context(negotiated.context);
        let local = canonical(conn.local.ip());
        slot.up = true;
        let addresses = local_addresses(local);
        let info = Arc::new(PeerInfo {
            address: self.settings.address,
            local_address: local,
            local_ipv4: addresses.ipv4,
            local_ipv6: addresses.ipv6,
            local_link_local: addresses.link_local,
            local_asn: self.speaker.local_asn,
            remote_asn: negotiated.peer_as,
            remote_router_id: negotiated.peer_id,
            context: negotiated.context,
            graceful_restart: negotiated.peer_graceful_restart.clone(),
        });
        let (outbound, receiver) = crate::queue::channel(OUTBOUND_CAPACITY);
        self.stale_deadline = None;
        self.up = Some(Up {
            outbound: receiver,
            outbound_closed: false,
            drained_owed: false,
            negotiated,
        });
        self.tell_rib(RibInput::PeerUp(PeerUp {
            peer: self.peer,
            info,
            outbound,
        }))
        .await;
        self.follow_bfd(local).await;
    }

    /// The session left Established: PeerDown, keeping the routes stale when the
    /// peer may be restarting (RFC 4724).
    async fn session_down(&mut self, which: Which, reason: &DownReason) {
        let Some(slot) = self.slot_mut(which) else {
            return;
        };
        if !slot.up {
            return;
        }
        slot.up = false;
        let Some(up) = self.up.take() else {
            return;
        };
        let stale = self.stale_times(reason, &up.negotiated, self.bfd_graceful_close);
        if self.bfd_graceful_close && stale.is_none() {
            tracing::warn!(neighbor = %self.settings.address, "BFD graceful: graceful restart is not negotiated with the peer (with families); its routes go");
            self.set_last_error("BFD went down with on_down = graceful, but graceful restart was not negotiated with families: routes withdrawn".to_owned());
        }
        if let Some((restart, _)) = stale {
            tracing::info!(
                neighbor = %self.settings.address,
                "graceful restart: keeping the peer's routes for {}s while it restarts",
                restart.as_secs()
            );
            self.stale_deadline = Some(Instant::now() + restart);
        }
        self.tell_rib(RibInput::PeerDown {
            peer: self.peer,
            stale_for: stale.map(|(_, total)| total),
        })
        .await;
    }

    /// (How long the peer has to come back, how long its routes may stay stale in
    /// all) when graceful restart applies to this loss: both sides negotiated it, the
    /// peer listed families in its capability, and the connection ended without a
    /// NOTIFICATION (RFC 4724 4.2), a new connection of the peer replaced it, both
    /// sides set the N bit and the NOTIFICATION was not a Hard Reset (RFC 8538), or
    /// (`bfd_graceful`) BFD went down with `on_down = "graceful"`.
    fn stale_times(
        &self,
        reason: &DownReason,
        negotiated: &Negotiated,
        bfd_graceful: bool,
    ) -> Option<(Duration, Duration)> {
        let config = self.speaker.graceful_restart;
        if !config.enabled || !negotiated.graceful_restart {
            return None;
        }
        let peer = negotiated.peer_graceful_restart.as_ref()?;
        // A capability without families (helper only) preserves nothing.
        if peer.restart_time == 0 || peer.families.is_empty() {
            return None;
        }
        if !bfd_graceful && !reason.keeps_routes(negotiated.graceful_notification) {
            return None;
        }
        let restart = Duration::from_secs(u64::from(peer.restart_time));
        let total = restart + Duration::from_secs(u64::from(config.stale_routes_time));
        Some((restart, total))
    }

    /// The restarting peer did not come back in time: its stale routes go.
    pub(super) async fn flush_stale(&mut self) {
        if self.up.is_some() {
            return;
        }
        tracing::info!(neighbor = %self.settings.address, "graceful restart: the peer did not come back in time; its routes go");
        self.tell_rib(RibInput::PeerDown {
            peer: self.peer,
            stale_for: None,
        })
        .await;
    }

    /// A shutdown without a state machine (the other connection replaced it).
    async fn rib_down(&mut self, stale_for: Option<Duration>) {
        self.up = None;
        for which in [Which::Primary, Which::Secondary] {
            if let Some(slot) = self.slot_mut(which) {
                slot.up = false;
            }
        }
        self.tell_rib(RibInput::PeerDown {
            peer: self.peer,
            stale_for,
        })
        .await;
    }

    async fn update(&mut self, received: ReceivedUpdate) {
        let disabled: Vec<_> = received.disabled_families().collect();
        for family in disabled {
            tracing::warn!(neighbor = %self.settings.address, "RFC 7606: {family} disabled until the session restarts");
            self.tell_rib(RibInput::DisableFamily {
                peer: self.peer,
                family,
            })
            .await;
        }
        let update = received.update;
        if let Some(family) = update.end_of_rib_family() {
            self.tell_rib(RibInput::EndOfRib {
                peer: self.peer,
                family,
            })
            .await;
            return;
        }
        crate::fault::on_update(crate::fault::Site::Session, &update);
        self.tell_rib(RibInput::Update {
            peer: self.peer,
            update: Box::new(update),
            treat_as_withdraw: received.action == ErrorAction::TreatAsWithdraw,
        })
        .await;
    }

    async fn route_refresh(&mut self, refresh: RouteRefresh) {
        if refresh.subtype == RouteRefresh::REQUEST {
            self.tell_rib(RibInput::RouteRefresh {
                peer: self.peer,
                family: refresh.family,
            })
            .await;
        } else {
            tracing::debug!(neighbor = %self.settings.address, family = %refresh.family, subtype = refresh.subtype, "enhanced route refresh marker");
        }
    }

    /// UPDATEs (or a close) from the rib task.
    pub(super) async fn outbound(&mut self, item: Option<Outbound>) {
        let Some(up) = self.up.as_mut() else {
            return;
        };
        match item {
            None => up.outbound_closed = true,
            Some(Outbound::Updates(bytes)) => {
                // One slot free now means the channel was full: the rib task waits.
                let was_full = up.outbound.capacity() <= 1;
                self.counters
                    .count_sent(MessageType::Update, count_messages(&bytes));
                let which = self.up_slot();
                if let Some(conn) = which
                    .and_then(|w| self.slot(w))
                    .and_then(|s| s.conn.as_ref())
                {
                    conn.send_updates(bytes);
                }
                if was_full {
                    match self.rib.try_send(RibInput::Drained { peer: self.peer }) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            if let Some(up) = &mut self.up {
                                up.drained_owed = true;
                            }
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            tracing::debug!("the rib task is gone");
                        }
                    }
                }
            }
            Some(Outbound::Close {
                notification,
                idle_for,
            }) => {
                if let Some(which) = self.up_slot() {
                    tracing::warn!(neighbor = %self.settings.address, "closing the session: {notification}");
                    self.feed(
                        which,
                        Event::AutomaticStop {
                            notification,
                            restart_after: idle_for,
                        },
                    )
                    .await;
                }
            }
        }
    }

    /// `bgpctl neighbor ADDR refresh`: ROUTE-REFRESH for every negotiated family.
    pub(super) fn refresh(&mut self) -> Result<(), String> {
        let up = self.up.as_ref().ok_or("the session is not established")?;
        if !up.negotiated.route_refresh {
            return Err("the peer does not support route refresh".into());
        }
        let context = up.negotiated.context;
        let families: Vec<_> = context.families.iter().collect();
        let which = self.up_slot().ok_or("the session is not established")?;
        let conn = self
            .slot(which)
            .and_then(|slot| slot.conn.as_ref())
            .ok_or("the session has no connection")?;
        for family in families {
            let message = Message::RouteRefresh(RouteRefresh::request(family));
            let bytes = message.to_bytes(&context).map_err(|e| e.to_string())?;
            self.counters.count_sent(MessageType::RouteRefresh, 1);
            conn.send_urgent(bytes);
        }
        Ok(())
    }

    /// Counts a received frame (a NOTIFICATION also by code, a malformed UPDATE by
    /// the RFC 7606 action taken) and logs a malformed one (rate-limited).
    pub(super) fn received(&mut self, bytes: &Bytes, decoded: &Result<Decoded, Malformed>) {
        let kind = bytes.get(18).copied().and_then(MessageType::from_code);
        if let Some(kind) = kind {
            self.counters.count_received(kind);
        }
        if let Ok(Decoded {
            message: Message::Notification(notification),
            ..
        }) = decoded
        {
            self.counters
                .count_notification(Direction::Received, notification);
        }
        let (action, problems, notification) = match decoded {
            Ok(decoded) if decoded.errors.is_empty() => return,
            Ok(decoded) => (decoded.action, &decoded.errors, None),
            Err(malformed) => (
                ErrorAction::SessionReset,
                &malformed.errors,
                Some(&malformed.notification),
            ),
        };
        if kind == Some(MessageType::Update) {
            self.counters.count_malformed(action);
        }
        let Some(suppressed) = self.malformed_log.allow(Instant::now()) else {
            return;
        };
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let shown = &bytes[..bytes.len().min(MALFORMED_HEX_MAX)];
        tracing::warn!(
            neighbor = %self.settings.address,
            action = %action,
            notification = notification.map(ToString::to_string),
            problems = ?problems,
            length = bytes.len(),
            hex = %hex::encode(shown),
            suppressed_before = suppressed,
            "malformed message"
        );
    }

    pub(super) fn set_last_error(&mut self, reason: String) {
        self.status.modify(|status| {
            status.last_error = Some(LastError {
                reason,
                unix_time: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs()),
            });
        });
    }

    /// Publishes the state of the most advanced state machine (only when something
    /// shown changed: this runs after every message).
    pub(super) fn publish(&mut self) {
        let shown = match self.secondary.as_deref() {
            Some(secondary) if secondary.fsm.state() > self.primary.fsm.state() => secondary,
            _ => &self.primary,
        };
        let state = shown.fsm.state();
        let signature = Published {
            state,
            admin_down: self.admin_down,
            up: self.up.is_some(),
            negotiated: shown.fsm.negotiated().is_some(),
            ends: shown.conn.as_ref().map(|conn| (conn.local, conn.remote)),
            settings: self.settings_generation,
        };
        if self.published.as_ref() == Some(&signature) {
            return;
        }
        self.published = Some(signature);
        let connection = shown.conn.as_ref().map(|conn| ConnectionEnds {
            local: conn.local,
            remote: conn.remote,
            initiator: shown.fsm.initiator(),
        });
        let negotiated = match &self.up {
            Some(up) => Some(Arc::clone(&up.negotiated)),
            None => shown.fsm.negotiated().cloned(),
        };
        let settings = &self.settings;
        let admin_down = self.admin_down;
        let (peer, address) = (self.peer, settings.address);
        let events = &self.events;
        self.status.modify(|status| {
            if status.state != state {
                let from = status.state;
                status.state = state;
                status.since = Instant::now();
                status.changed_at = SystemTime::now();
                events.send_with(|| DaemonEvent::Session {
                    peer,
                    address,
                    from,
                    state,
                });
            }
            status.admin_down = admin_down;
            status.connection = connection;
            status.negotiated = negotiated;
            status.description = settings.description.clone();
            status.remote_asn = settings.remote_asn.get();
            status.passive = settings.passive;
            status.hold_time = settings.hold_time.seconds();
            status.keepalive = settings.keepalive;
            status.connect_retry = settings.connect_retry;
        });
    }

    fn up_slot(&self) -> Option<Which> {
        if self.primary.up {
            Some(Which::Primary)
        } else if self.secondary.as_ref().is_some_and(|s| s.up) {
            Some(Which::Secondary)
        } else {
            None
        }
    }

    /// Sends to the rib task, waiting while it is busy (backpressure on the peer).
    async fn tell_rib(&mut self, input: RibInput) {
        if self.rib.send(input).await.is_err() {
            tracing::debug!("the rib task is gone");
        }
    }
}

/// What the published status depends on, to publish only changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Published {
    state: State,
    admin_down: bool,
    up: bool,
    negotiated: bool,
    ends: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    settings: u64,
}

/// The number of BGP messages in a run of encoded messages.
fn count_messages(bytes: &[u8]) -> u64 {
    let mut count = 0;
    let mut at = 0;
    while let Some(length) = bytes.get(at + 16..at + 18) {
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        if length < bgp_proto::HEADER_LEN {
            break;
        }
        count += 1;
        at += length;
    }
    count
}

/// At most [`MALFORMED_LOGS_PER_MINUTE`] lines per minute; the lines left out are
/// counted and reported with the next one.
#[derive(Debug, Default)]
pub(super) struct RateLimit {
    window: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl RateLimit {
    /// `Some(lines suppressed since the last one)` when a line may be written now.
    pub(super) fn allow(&mut self, now: Instant) -> Option<u64> {
        let window = *self.window.get_or_insert(now);
        if now.duration_since(window) >= Duration::from_secs(60) {
            self.window = Some(now);
            self.logged = 0;
        }
        if self.logged < MALFORMED_LOGS_PER_MINUTE {
            self.logged += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_counted_by_their_headers() {
        let mut bytes = Vec::new();
        for _ in 0..3 {
            bytes.extend_from_slice(&[0xff; 16]);
            bytes.extend_from_slice(&[0, 23, 2, 0, 0, 0, 0]);
        }
        assert_eq!(count_messages(&bytes), 3);
        assert_eq!(count_messages(&[]), 0);
    }

    #[test]
    fn rate_limit_counts_what_it_leaves_out() {
        let mut limit = RateLimit::default();
        let start = Instant::now();
        for _ in 0..MALFORMED_LOGS_PER_MINUTE {
            assert_eq!(limit.allow(start), Some(0));
        }
        assert_eq!(limit.allow(start), None);
        assert_eq!(limit.allow(start), None);
        assert_eq!(limit.allow(start + Duration::from_secs(61)), Some(2));
    }
}
