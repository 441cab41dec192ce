//! The BFD task's sessions: one `bfd::Session` per [`bfd::SessionKey`] with its
//! sending socket and the `watch` its subscribers follow; the map of local
//! discriminators; and the demultiplexing of received packets (RFC 5880 section
//! 6.8.6: by Your Discriminator when it is nonzero, otherwise by key; RFC 5881
//! section 5: single hop packets only with TTL 255).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::time::Instant;

use bfd::key::SINGLE_HOP_TTL;
use bfd::{Action, ControlPacket, Diagnostic, DropReason, Session, SessionKey, State};
use control_proto::BfdSession;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::Path;
use super::socket::{self, Datagram};

/// What subscribers see of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdStatus {
    pub key: SessionKey,
    pub state: State,
    /// Why the session last went down.
    pub diagnostic: Diagnostic,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    /// Times the session went from Up to Down because the path failed.
    pub failures: u64,
    pub since: Instant,
}

struct Entry {
    session: Session,
    socket: UdpSocket,
    destination: SocketAddr,
    status: watch::Sender<BfdStatus>,
    /// Packets accepted by the session.
    packets_received: u64,
    /// Packets the socket took.
    packets_sent: u64,
    /// Times the session left Up, by diagnostic.
    downs: BTreeMap<Diagnostic, u64>,
}

/// Every session of the task.
pub struct Table {
    entries: HashMap<SessionKey, Entry>,
    discriminators: HashMap<u32, SessionKey>,
    random: RandomState,
    counter: u64,
    /// Drops since they were last taken, by reason.
    drops: BTreeMap<&'static str, u64>,
    /// Drops since the task started, by reason (`wren_bfd_packets_dropped_total`).
    dropped: BTreeMap<&'static str, u64>,
}

/// The drop reasons of the transport, beside the `bfd` crate's [`DropReason::NAMES`]:
/// a single hop datagram whose TTL is not 255, and a packet naming a session by its
/// discriminator from another address or interface than the session's.
const TRANSPORT_DROPS: [&str; 2] = ["ttl", "wrong_source"];

impl Table {
    pub fn new() -> Table {
        Table {
            entries: HashMap::new(),
            discriminators: HashMap::new(),
            random: RandomState::new(),
            counter: 0,
            drops: BTreeMap::new(),
            dropped: DropReason::NAMES
                .iter()
                .chain(TRANSPORT_DROPS.iter())
                .map(|reason| (*reason, 0))
                .collect(),
        }
    }

    /// A random number (the process's hash keys over a counter).
    fn random(&mut self) -> u64 {
        self.counter += 1;
        self.random.hash_one(self.counter)
    }

    /// The session of `path`, made when missing; a `watch` of its status.
    pub fn subscribe(
        &mut self,
        now: Instant,
        path: &Path,
        config: bfd::SessionConfig,
    ) -> Result<watch::Receiver<BfdStatus>, String> {
        let (key, interface_index) = if path.multihop {
            let key = SessionKey::Multihop {
                local: path.local,
                peer: path.peer,
            };
            (key, None)
        } else {
            let (interface, index) = socket::interface_of(path.local)
                .ok_or_else(|| format!("no interface holds the local address {}", path.local))?;
            (
                SessionKey::SingleHop {
                    interface,
                    peer: path.peer,
                },
                Some(index),
            )
        };
        if let Some(entry) = self.entries.get(&key) {
            return Ok(entry.status.subscribe());
        }
        let discriminator = loop {
            let candidate = self.random() as u32;
            if candidate != 0 && !self.discriminators.contains_key(&candidate) {
                break candidate;
            }
        };
        let seed = self.random();
        let session = Session::new(now, config, discriminator, seed)
            .map_err(|error| format!("BFD session to {key}: {error}"))?;
        let port_start = self.random() as u16;
        let (socket, destination, _) =
            socket::sender(path.local, path.peer, interface_index, port_start).map_err(
                |error| format!("BFD session to {key}: socket from {}: {error}", path.local),
            )?;
        let destination = SocketAddr::new(destination.ip(), key.port());
        let (status, receiver) = watch::channel(BfdStatus {
            key: key.clone(),
            state: session.state(),
            diagnostic: session.diagnostic(),
            local_discriminator: discriminator,
            remote_discriminator: 0,
            failures: 0,
            since: now,
        });
        tracing::info!(session = %key, discriminator, "BFD session created");
        self.discriminators.insert(discriminator, key.clone());
        self.entries.insert(
            key,
            Entry {
                session,
                socket,
                destination,
                status,
                packets_received: 0,
                packets_sent: 0,
                downs: BTreeMap::new(),
            },
        );
        Ok(receiver)
    }

    /// The earliest timer of any session.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|entry| entry.session.poll_timeout())
            .min()
    }

    /// Runs every session's timers due at `now`, and removes sessions nobody
    /// follows any more (sending AdminDown once).
    pub fn timers(&mut self, now: Instant) {
        let mut gone = Vec::new();
        for (key, entry) in &mut self.entries {
            if entry.status.receiver_count() == 0 {
                gone.push(key.clone());
                continue;
            }
            if entry.session.poll_timeout().is_some_and(|due| due <= now) {
                let actions = entry.session.on_timer(now);
                entry.execute(now, actions);
            }
        }
        for key in gone {
            if let Some(mut entry) = self.entries.remove(&key) {
                // Tell the peer it is administratively down, not a failure (RFC 5880
                // section 6.8.16): one packet, on the way out.
                let actions = entry.session.set_admin_down(now, true);
                entry.execute(now, actions);
                self.discriminators
                    .remove(&entry.session.local_discriminator());
                tracing::info!(session = %key, "BFD session removed (no subscriber)");
            }
        }
    }

    /// Handles one received datagram.
    pub fn received(&mut self, now: Instant, datagram: Datagram) {
        if let Err(reason) = self.deliver(now, &datagram) {
            *self.drops.entry(reason).or_default() += 1;
            *self.dropped.entry(reason).or_default() += 1;
        }
    }

    fn deliver(&mut self, now: Instant, datagram: &Datagram) -> Result<(), &'static str> {
        if !datagram.multihop && datagram.ttl != Some(SINGLE_HOP_TTL) {
            return Err("ttl");
        }
        let packet = ControlPacket::decode(&datagram.bytes).map_err(|reason| reason.name())?;
        let key = if packet.your_discriminator != 0 {
            self.discriminators
                .get(&packet.your_discriminator)
                .cloned()
                .ok_or(
                    DropReason::UnknownDiscriminator {
                        discriminator: packet.your_discriminator,
                    }
                    .name(),
                )?
        } else {
            self.key_of(datagram).ok_or(DropReason::NoSession.name())?
        };
        let entry = self
            .entries
            .get_mut(&key)
            .ok_or(DropReason::NoSession.name())?;
        // The packet must come from the session's peer (and, single hop, over its
        // interface): a discriminator alone is not enough.
        if key.peer() != datagram.source || !matches_key(&key, datagram) {
            return Err("wrong_source");
        }
        let actions = entry
            .session
            .on_packet(now, &packet)
            .map_err(|reason| reason.name())?;
        entry.packets_received += 1;
        entry.execute(now, actions);
        Ok(())
    }

    /// The key a datagram with Your Discriminator 0 is for.
    fn key_of(&self, datagram: &Datagram) -> Option<SessionKey> {
        if datagram.multihop {
            Some(SessionKey::Multihop {
                local: datagram.destination?,
                peer: datagram.source,
            })
        } else {
            Some(SessionKey::SingleHop {
                interface: socket::interface_name(datagram.interface_index?)?,
                peer: datagram.source,
            })
        }
    }

    /// Every session as `show bfd` shows it, ordered by peer, then interface or local
    /// address.
    pub fn sessions(&self, now: Instant) -> Vec<BfdSession> {
        let mut sessions: Vec<BfdSession> = self
            .entries
            .iter()
            .map(|(key, entry)| entry.view(key, now))
            .collect();
        sessions
            .sort_by(|a, b| (a.peer, &a.interface, a.local).cmp(&(b.peer, &b.interface, b.local)));
        sessions
    }

    /// Every drop since the task started, by reason (every reason listed, 0 included).
    pub fn dropped(&self) -> BTreeMap<String, u64> {
        self.dropped
            .iter()
            .map(|(reason, count)| ((*reason).to_owned(), *count))
            .collect()
    }

    /// The drops since the last call, as `reason: count, ...`; `None` when none.
    pub fn take_drops(&mut self) -> Option<String> {
        if self.drops.is_empty() {
            return None;
        }
        let summary = self
            .drops
            .iter()
            .map(|(reason, count)| format!("{reason}: {count}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.drops.clear();
        Some(summary)
    }
}

/// `Control Detection Time Expired` as `control_detection_time_expired`.
fn snake_case(name: &str) -> String {
    name.to_lowercase().replace(' ', "_")
}

/// A datagram matched by discriminator arrived the way its session's key says.
fn matches_key(key: &SessionKey, datagram: &Datagram) -> bool {
    match key {
        SessionKey::SingleHop { interface, .. } => {
            !datagram.multihop
                && datagram
                    .interface_index
                    .and_then(socket::interface_name)
                    .is_some_and(|name| &name == interface)
        }
        SessionKey::Multihop { local, .. } => {
            datagram.multihop && datagram.destination == Some(*local)
        }
    }
}

impl Entry {
    /// The session as `show bfd` shows it.
    fn view(&self, key: &SessionKey, now: Instant) -> BfdSession {
        let status = self.status.borrow();
        let (interface, local) = match key {
            SessionKey::SingleHop { interface, .. } => (Some(interface.clone()), None),
            SessionKey::Multihop { local, .. } => (None, Some(*local)),
        };
        let millis =
            |duration: std::time::Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let heard = self.session.remote().detect_mult != 0;
        BfdSession {
            peer: key.peer(),
            interface,
            local,
            multihop: matches!(key, SessionKey::Multihop { .. }),
            state: self.session.state().name().to_owned(),
            local_discriminator: self.session.local_discriminator(),
            remote_discriminator: self.session.remote().discriminator,
            transmit_interval_ms: self
                .session
                .transmit_interval()
                .filter(|_| heard)
                .map(millis),
            detection_time_ms: self.session.detection_time().map(millis),
            uptime_secs: now.saturating_duration_since(status.since).as_secs(),
            diagnostic: self.session.diagnostic().to_string(),
            failures: status.failures,
            downs: self
                .downs
                .iter()
                .map(|(diagnostic, count)| (snake_case(diagnostic.name()), *count))
                .collect(),
            packets_received: self.packets_received,
            packets_sent: self.packets_sent,
        }
    }

    /// Sends the session's packets and publishes its state changes.
    fn execute(&mut self, now: Instant, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(packet) => {
                    // Never wait: a packet the socket cannot take now is lost, as
                    // on the wire.
                    match self.socket.try_send_to(&packet.encode(), self.destination) {
                        Ok(_) => self.packets_sent += 1,
                        Err(error) => {
                            tracing::debug!(peer = %self.destination, "BFD: sending: {error}");
                        }
                    }
                }
                Action::StateChanged(transition) => {
                    let key = self.status.borrow().key.clone();
                    if transition.signals_failure() {
                        tracing::warn!(session = %key, diagnostic = %transition.diagnostic, "BFD {} -> {}", transition.from, transition.to);
                    } else {
                        tracing::info!(session = %key, diagnostic = %transition.diagnostic, "BFD {} -> {}", transition.from, transition.to);
                    }
                    if transition.from == State::Up && transition.to != State::Up {
                        *self.downs.entry(transition.diagnostic).or_default() += 1;
                    }
                    let remote = self.session.remote().discriminator;
                    self.status.send_modify(|status| {
                        status.state = transition.to;
                        status.diagnostic = transition.diagnostic;
                        status.remote_discriminator = remote;
                        status.since = now;
                        if transition.signals_failure() {
                            status.failures += 1;
                        }
                    });
                }
            }
        }
    }
}
