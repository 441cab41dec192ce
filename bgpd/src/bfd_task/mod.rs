//! The BFD task: owns every BFD session of the daemon (the `bfd` crate's state
//! machines) and their UDP sockets, and tells BGP sessions when the path to their
//! peer fails.
//!
//! # Calling contract
//!
//! - [`spawn`] starts the task and returns a [`BfdHandle`]. No socket is opened until
//!   the first subscription; a port that cannot be bound fails that subscription (the
//!   BGP session goes on without BFD, and says so) and the next one tries again.
//! - A BGP session configured with `bfd` calls [`BfdHandle::subscribe`] with its
//!   addresses as soon as it knows its local address (a configured `local_address`,
//!   else its first Established connection's), and keeps the subscription while
//!   `bfd` stays configured, Established or not (RFC 5882: BFD runs before and
//!   between BGP sessions, and BGP never waits for it): single hop (RFC 5881) unless
//!   its `multihop` TTL is above 1 (RFC 5883). Sessions are keyed by
//!   [`bfd::SessionKey`] (interface and peer, or local and peer); every subscriber of
//!   one key shares one session (the first subscriber's timers apply). The answer is a
//!   [`Subscription`]: a `watch` of the session's [`BfdStatus`].
//! - The subscriber acts when [`Subscription::failed`] says the session went from Up
//!   to Down since it subscribed or last called [`Subscription::forget_failures`]
//!   (never because the peer went AdminDown, RFC 5882; never for a failure before,
//!   so a flap cannot replay an old one: a BGP session forgets them each time it
//!   becomes Established).
//! - Dropping the subscription is the unsubscription: a session without subscribers
//!   is removed at its next timer (within about a second), with one AdminDown packet
//!   to the peer so that it does not count a failure.
//! - Received packets: single hop ones must come with TTL 255 (RFC 5881 section 5);
//!   each is decoded and checked by the `bfd` crate, and matched to a session by Your
//!   Discriminator or, when it is 0, by key. A packet never creates a session; drops
//!   are counted per reason and logged at most once a minute.
//!
//! - [`BfdHandle::sessions`] answers `show bfd` and the metrics: every session with
//!   its negotiated timers and packet counters, from the task itself (one question);
//!   [`BfdHandle::dropped`] the metrics' received packets dropped, by reason.
//!
//! Files: `socket` (the sockets, TTL and packet info), `table` (the sessions,
//! their keys and discriminators, and the demultiplexing of received packets).

mod socket;
mod table;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

pub use table::BfdStatus;

use socket::Datagram;
use table::Table;

/// Requests queued to the BFD task.
const REQUEST_CAPACITY: usize = 64;
/// Received datagrams queued from the socket readers; a flood beyond it is dropped.
const DATAGRAM_CAPACITY: usize = 1024;
/// How often drops are logged at most.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What one subscriber asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub peer: IpAddr,
    /// Our address on the session (the BGP connection's local address).
    pub local: IpAddr,
    /// RFC 5883 multihop instead of RFC 5881 single hop.
    pub multihop: bool,
}

#[derive(Debug)]
enum Request {
    Subscribe {
        path: Path,
        config: bfd::SessionConfig,
        reply: oneshot::Sender<Result<watch::Receiver<BfdStatus>, String>>,
    },
    /// `show bfd` and the metrics: every session now.
    Sessions {
        reply: oneshot::Sender<Vec<control_proto::BfdSession>>,
    },
    /// The metrics: received packets dropped since the start, by reason.
    Dropped {
        reply: oneshot::Sender<BTreeMap<String, u64>>,
    },
}

/// The daemon's way into the BFD task.
#[derive(Clone, Debug)]
pub struct BfdHandle {
    requests: mpsc::Sender<Request>,
}

/// One subscriber's hold on a BFD session.
#[derive(Debug)]
pub struct Subscription {
    path: Path,
    status: watch::Receiver<BfdStatus>,
    /// Failures counted when subscribing: older ones are not this subscriber's.
    failures_seen: u64,
}

impl BfdHandle {
    /// Follows the BFD session of `path` (made when missing) with `config`.
    pub async fn subscribe(
        &self,
        path: Path,
        config: bfd::SessionConfig,
    ) -> Result<Subscription, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Subscribe {
                path: path.clone(),
                config,
                reply,
            })
            .await
            .map_err(|_| "the BFD task is not running".to_owned())?;
        let status = answer
            .await
            .map_err(|_| "the BFD task is not running".to_owned())??;
        let failures_seen = status.borrow().failures;
        Ok(Subscription {
            path,
            status,
            failures_seen,
        })
    }
}

impl BfdHandle {
    /// Every session as `show bfd` shows it.
    pub async fn sessions(&self) -> Result<Vec<control_proto::BfdSession>, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Sessions { reply })
            .await
            .map_err(|_| "the BFD task is not running".to_owned())?;
        answer
            .await
            .map_err(|_| "the BFD task did not answer".to_owned())
    }
}

impl BfdHandle {
    /// Received packets dropped since the task started, by reason (every reason, 0
    /// included).
    pub async fn dropped(&self) -> Result<BTreeMap<String, u64>, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Dropped { reply })
            .await
            .map_err(|_| "the BFD task is not running".to_owned())?;
        answer
            .await
            .map_err(|_| "the BFD task did not answer".to_owned())
    }
}

impl Subscription {
    /// Waits until the session's status changes (pending forever once the task is
    /// gone).
    pub async fn changed(&mut self) {
        if self.status.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The path this subscription follows.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Failures until now are not this subscriber's to act on (a BGP session that
    /// became Established again).
    pub fn forget_failures(&mut self) {
        self.failures_seen = self.status.borrow_and_update().failures;
    }

    /// The session's status now.
    pub fn status(&self) -> BfdStatus {
        self.status.borrow().clone()
    }

    /// The session went from Up to Down (a path failure, not the peer's AdminDown)
    /// since the subscription or the last call that said so.
    pub fn failed(&mut self) -> Option<BfdStatus> {
        let status = self.status.borrow_and_update().clone();
        if status.failures > self.failures_seen {
            self.failures_seen = status.failures;
            Some(status)
        } else {
            None
        }
    }
}

/// Starts the BFD task.
pub fn spawn() -> (BfdHandle, JoinHandle<()>) {
    let (requests, receiver) = mpsc::channel(REQUEST_CAPACITY);
    let task = tokio::spawn(run(receiver));
    (BfdHandle { requests }, task)
}

/// The task's state besides the sessions: the socket readers and drop accounting.
struct Task {
    table: Table,
    readers: JoinSet<()>,
    /// The receiving sockets are open (their readers run).
    listening: bool,
    datagrams_tx: mpsc::Sender<Datagram>,
    datagrams: mpsc::Receiver<Datagram>,
    last_drop_log: Option<Instant>,
}

async fn run(mut requests: mpsc::Receiver<Request>) {
    let (datagrams_tx, datagrams) = mpsc::channel(DATAGRAM_CAPACITY);
    let mut task = Task {
        table: Table::new(),
        readers: JoinSet::new(),
        listening: false,
        datagrams_tx,
        datagrams,
        last_drop_log: None,
    };
    loop {
        let deadline = task.table.next_deadline();
        tokio::select! {
            request = requests.recv() => match request {
                Some(request) => task.request(request),
                None => break,
            },
            Some(datagram) = task.datagrams.recv() => {
                task.table.received(Instant::now(), datagram);
            }
            () = sleep_until(deadline) => task.table.timers(Instant::now()),
            Some(ended) = task.readers.join_next(), if !task.readers.is_empty() => {
                // A reader ends only when its socket fails: listen again at the next
                // subscription.
                tracing::warn!("BFD: a receiving socket stopped ({ended:?}); reopening at the next subscription");
                task.readers.abort_all();
                task.listening = false;
            }
        }
        task.log_drops();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

impl Task {
    fn request(&mut self, request: Request) {
        match request {
            Request::Subscribe {
                path,
                config,
                reply,
            } => {
                let result = self
                    .listen()
                    .and_then(|()| self.table.subscribe(Instant::now(), &path, config));
                if let Err(error) = &result {
                    tracing::warn!(peer = %path.peer, "BFD: {error}");
                }
                let _ = reply.send(result);
            }
            Request::Sessions { reply } => {
                let _ = reply.send(self.table.sessions(Instant::now()));
            }
            Request::Dropped { reply } => {
                let _ = reply.send(self.table.dropped());
            }
        }
    }

    /// Opens the receiving sockets (IPv4 and IPv6, single hop and multihop) once.
    fn listen(&mut self) -> Result<(), String> {
        if self.listening {
            return Ok(());
        }
        let mut sockets = Vec::new();
        for (ipv6, multihop) in [(false, false), (true, false), (false, true), (true, true)] {
            match socket::receiver(ipv6, multihop) {
                Ok(socket) => sockets.push((socket, multihop)),
                // A host without IPv6 still runs IPv4 sessions.
                Err(error) if ipv6 && error.kind() == std::io::ErrorKind::AddrNotAvailable => {}
                Err(error) => {
                    let port = if multihop { 4784 } else { 3784 };
                    let family = if ipv6 { "IPv6" } else { "IPv4" };
                    return Err(format!(
                        "cannot listen on UDP port {port} ({family}): {error}"
                    ));
                }
            }
        }
        for (socket, multihop) in sockets {
            let sender = self.datagrams_tx.clone();
            self.readers.spawn(async move {
                loop {
                    match socket::receive(&socket, multihop).await {
                        // A full queue drops the datagram: BFD tolerates loss, and
                        // a flood must not grow memory.
                        Ok(datagram) => match sender.try_send(datagram) {
                            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                            Err(mpsc::error::TrySendError::Closed(_)) => return,
                        },
                        Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(error) => {
                            tracing::warn!("BFD: receiving: {error}");
                            return;
                        }
                    }
                }
            });
        }
        self.listening = true;
        Ok(())
    }

    /// One line a minute at most with the drops since the last one.
    fn log_drops(&mut self) {
        let now = Instant::now();
        if self
            .last_drop_log
            .is_some_and(|last| now.duration_since(last) < DROP_LOG_INTERVAL)
        {
            return;
        }
        if let Some(summary) = self.table.take_drops() {
            tracing::info!("BFD: dropped packets: {summary}");
            self.last_drop_log = Some(now);
        }
    }
}
