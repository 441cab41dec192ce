//! One simulated peer: a task that connects from its own source address to the daemon
//! (configured passive), exchanges OPEN and KEEPALIVE, sends its pre-encoded initial
//! UPDATEs once Established, then writes what the harness hands it and keeps the session
//! alive. A second task reads everything the daemon sends; for a monitor peer it records
//! each announced and withdrawn prefix, with its arrival time, into a [`RouteLog`].
//!
//! A first session that cannot open yet is tried again every 5 ms for 100 ms, then every
//! 50 ms for about a minute. With `reconnect`, a lost session is opened again (every
//! 50 ms) and the initial UPDATEs are sent again, as a restarted daemon needs. The harness sees the peer through
//! [`PeerShared`]: a state behind a mutex and a condition variable.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bgp_proto::codec::BgpCodec;
use bgp_proto::{BGP_PORT, Capability, Family, Message, Open, SessionContext};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use super::updates;
use super::watch::{Seen, Watch};
use crate::routelog::{Key, RouteLog};

/// Time allowed for the OPEN and KEEPALIVE exchange.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause before opening a lost session again.
const RECONNECT_DELAY: Duration = Duration::from_millis(50);
/// Attempts to open the first session before giving up (about a minute).
const FIRST_ATTEMPTS: u32 = 1200;
/// The first attempts that follow each other faster: a peer that starts before the
/// daemon accepts it (a Node being created) is not late by a whole [`RECONNECT_DELAY`].
const FAST_ATTEMPTS: u32 = 20;
/// The pause between those (100 ms in all).
const FAST_DELAY: Duration = Duration::from_millis(5);

/// What a simulated peer is.
#[derive(Clone, Debug)]
pub struct PeerSpec {
    /// Source address (also the BGP identifier and the NEXT_HOP of its routes).
    pub local: Ipv4Addr,
    /// The daemon's address.
    pub remote: Ipv4Addr,
    pub asn: u32,
    pub hold_time: u16,
    /// UPDATEs sent as soon as the session is Established (each time it is).
    pub initial: Bytes,
    /// Open the session again when it is lost.
    pub reconnect: bool,
    /// Record what the daemon advertises here.
    pub monitor: Option<Arc<RouteLog>>,
}

/// A request from the harness to a peer task.
#[derive(Debug)]
pub enum Request {
    /// Write these octets; the reply is the instant just before the write started.
    Send(Bytes, std::sync::mpsc::Sender<Result<Instant, String>>),
    /// Close the connection (as a killed process would: FIN) and stop.
    Close,
}

/// The peer as the harness sees it.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub established: bool,
    /// When the current session became Established.
    pub established_at: Option<Instant>,
    /// How many times a session became Established.
    pub sessions: u32,
    /// UPDATE messages the daemon has sent this peer, over all sessions.
    pub updates: u64,
    /// Prefixes the daemon has announced to this peer, over all sessions.
    pub received: u64,
    /// When the first and the latest of those arrived.
    pub first_received_at: Option<Instant>,
    pub last_received_at: Option<Instant>,
    /// Prefixes the daemon has withdrawn from this peer, over all sessions, and when the
    /// latest withdrawal arrived.
    pub withdrawn: u64,
    pub last_withdrawn_at: Option<Instant>,
    /// The last error, if any (a session that ended or could not open).
    pub error: Option<String>,
    /// The task has stopped for good.
    pub stopped: bool,
}

/// State shared between a peer task and the harness.
#[derive(Debug, Default)]
pub struct PeerShared {
    state: Mutex<State>,
    changed: Condvar,
    /// Threads in [`PeerShared::wait`]: a change wakes the condition variable only
    /// when somebody waits, since every notification is a system call (futex wake)
    /// and a peer of a large scenario changes its state for each of millions of
    /// UPDATEs (5000 reflector clients: 50 million).
    waiters: AtomicUsize,
    /// What it saw of its [`Watch`]'s prefixes (empty without one).
    seen: Mutex<Seen>,
}

impl PeerShared {
    /// What the peer saw of its watched prefixes, under their lock.
    pub fn seen<T>(&self, look: impl FnOnce(&Seen) -> T) -> T {
        look(
            &self
                .seen
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// A copy of the state now.
    pub fn state(&self) -> State {
        self.lock().clone()
    }

    /// Waits until `condition` holds, up to `deadline`; fails early when the task stops.
    pub fn wait(
        &self,
        deadline: Instant,
        what: &str,
        condition: impl Fn(&State) -> bool,
    ) -> Result<State> {
        let state = self.lock();
        // Counted while the lock is held: a change made after this look takes the
        // lock after it, and so sees the count.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let outcome = self.wait_locked(state, deadline, what, condition);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    fn wait_locked(
        &self,
        mut state: MutexGuard<'_, State>,
        deadline: Instant,
        what: &str,
        condition: impl Fn(&State) -> bool,
    ) -> Result<State> {
        loop {
            if condition(&state) {
                return Ok(state.clone());
            }
            if state.stopped {
                bail!(
                    "{what}: the peer stopped ({})",
                    state.error.as_deref().unwrap_or("no error")
                );
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "{what}: timed out (last error: {})",
                    state.error.as_deref().unwrap_or("none")
                );
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.lock());
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.changed.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The peer task: sessions until closed. Until the first session is Established, failed
/// attempts are repeated for a minute; after it, a lost session is opened again only with
/// `reconnect`.
pub async fn run(
    spec: PeerSpec,
    watch: Option<Arc<Watch>>,
    mut requests: mpsc::UnboundedReceiver<Request>,
    shared: Arc<PeerShared>,
) {
    let mut first_attempts = 0;
    loop {
        let outcome = session(&spec, watch.as_ref(), &mut requests, &shared).await;
        shared.update(|state| {
            state.established = false;
            state.established_at = None;
            if let Err(error) = &outcome {
                state.error = Some(format!("{error:#}"));
            }
        });
        if let Some(log) = &spec.monitor {
            // The daemon's routes on this session are gone with it.
            log.record_reset();
        }
        if matches!(outcome, Ok(End::Closed)) {
            break;
        }
        if shared.state().sessions == 0 {
            // Not Established yet (the daemon may still be starting): try again, for a
            // while.
            first_attempts += 1;
            if first_attempts >= FIRST_ATTEMPTS {
                break;
            }
        } else if !spec.reconnect {
            break;
        }
        let fast = shared.state().sessions == 0 && first_attempts <= FAST_ATTEMPTS;
        tokio::time::sleep(if fast { FAST_DELAY } else { RECONNECT_DELAY }).await;
        // Requests that arrived while down are answered with an error, Close ends.
        while let Ok(request) = requests.try_recv() {
            match request {
                Request::Send(_, reply) => {
                    let _ = reply.send(Err("the session is down".into()));
                }
                Request::Close => {
                    shared.update(|state| state.stopped = true);
                    return;
                }
            }
        }
    }
    shared.update(|state| state.stopped = true);
}

/// How a session ended without error.
enum End {
    /// The harness closed it.
    Closed,
}

async fn session(
    spec: &PeerSpec,
    watch: Option<&Arc<Watch>>,
    requests: &mut mpsc::UnboundedReceiver<Request>,
    shared: &Arc<PeerShared>,
) -> Result<End> {
    let socket = TcpSocket::new_v4().context("creating a TCP socket")?;
    socket
        .bind(SocketAddr::from((spec.local, 0)))
        .with_context(|| format!("binding to {}", spec.local))?;
    let stream = socket
        .connect(SocketAddr::from((spec.remote, BGP_PORT)))
        .await
        .with_context(|| format!("connecting {} -> {}:{BGP_PORT}", spec.local, spec.remote))?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    let (read, mut write) = stream.into_split();
    let mut reader = FramedRead::new(read, BgpCodec::new(updates::context(false)));

    let local_open = Open::new(
        spec.asn,
        spec.hold_time,
        spec.local,
        vec![
            Capability::Multiprotocol {
                family: Family::IPV4_UNICAST,
            },
            Capability::RouteRefresh,
            Capability::FourOctetAs { asn: spec.asn },
        ],
    );
    let ctx = updates::context(false);
    write_message(&mut write, &Message::Open(local_open.clone()), &ctx).await?;
    let (remote_open, ctx) = tokio::time::timeout(OPEN_TIMEOUT, async {
        let remote_open = match next_message(&mut reader).await? {
            Message::Open(open) => open,
            other => bail!("expected OPEN, got {:?}", other.message_type()),
        };
        // iBGP when the daemon is in the peer's own AS (a mesh or reflector scenario).
        let ibgp = remote_open.asn() == spec.asn;
        let ctx = SessionContext::negotiate(&local_open, &remote_open, ibgp);
        updates::check_context(&ctx)?;
        reader.decoder_mut().set_context(ctx);
        write_message(&mut write, &Message::Keepalive, &ctx).await?;
        match next_message(&mut reader).await? {
            Message::Keepalive => Ok((remote_open, ctx)),
            other => bail!("expected KEEPALIVE, got {:?}", other.message_type()),
        }
    })
    .await
    .map_err(|_| anyhow!("no OPEN and KEEPALIVE within {OPEN_TIMEOUT:?}"))??;

    let established_at = Instant::now();
    shared.update(|state| {
        state.established = true;
        state.established_at = Some(established_at);
        state.sessions += 1;
    });
    let (ended, mut reader_end) = tokio::sync::oneshot::channel();
    let reader_task = tokio::spawn(read_loop(
        reader,
        spec.monitor.clone(),
        watch.cloned(),
        shared.clone(),
        ended,
    ));
    let result = write_loop(
        spec,
        &mut write,
        requests,
        &mut reader_end,
        &remote_open,
        &ctx,
    )
    .await;
    reader_task.abort();
    result
}

/// Sends the initial UPDATEs, then serves requests and keepalives until the session ends.
async fn write_loop(
    spec: &PeerSpec,
    write: &mut OwnedWriteHalf,
    requests: &mut mpsc::UnboundedReceiver<Request>,
    reader_end: &mut tokio::sync::oneshot::Receiver<anyhow::Error>,
    remote_open: &Open,
    ctx: &SessionContext,
) -> Result<End> {
    if !spec.initial.is_empty() {
        write
            .write_all(&spec.initial)
            .await
            .context("sending the initial UPDATEs")?;
    }
    let hold = spec.hold_time.min(remote_open.hold_time);
    let interval = Duration::from_secs(u64::from(hold.max(3) / 3));
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                Some(Request::Send(bytes, reply)) => {
                    let at = Instant::now();
                    let written = write.write_all(&bytes).await;
                    let _ = reply.send(written.as_ref().map(|()| at).map_err(|e| e.to_string()));
                    written.context("sending UPDATEs")?;
                }
                Some(Request::Close) | None => {
                    let _ = write.shutdown().await;
                    return Ok(End::Closed);
                }
            },
            error = &mut *reader_end => {
                return Err(error.unwrap_or_else(|_| anyhow!("the reader stopped")));
            }
            _ = keepalive.tick() => {
                write_message(write, &Message::Keepalive, ctx).await?;
            }
        }
    }
}

/// Reads until the session ends; reports why on `ended`.
async fn read_loop(
    mut reader: FramedRead<OwnedReadHalf, BgpCodec>,
    monitor: Option<Arc<RouteLog>>,
    watch: Option<Arc<Watch>>,
    shared: Arc<PeerShared>,
    ended: tokio::sync::oneshot::Sender<anyhow::Error>,
) {
    let error = loop {
        let message = match next_message(&mut reader).await {
            Ok(message) => message,
            Err(error) => break error,
        };
        match message {
            Message::Update(update) => {
                if !update.nlri.is_empty() || !update.withdrawn.is_empty() {
                    let at = Instant::now();
                    shared.update(|state| {
                        state.updates += 1;
                        if !update.nlri.is_empty() {
                            state.received += update.nlri.len() as u64;
                            state.first_received_at.get_or_insert(at);
                            state.last_received_at = Some(at);
                        }
                        if !update.withdrawn.is_empty() {
                            state.withdrawn += update.withdrawn.len() as u64;
                            state.last_withdrawn_at = Some(at);
                        }
                    });
                    if let Some(watch) = &watch {
                        shared
                            .seen
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .record(
                                watch,
                                at,
                                update.withdrawn.iter().map(|p| &p.net),
                                update.nlri.iter().map(|p| &p.net),
                            );
                    }
                }
                if let Some(log) = &monitor {
                    let at = Instant::now();
                    let added = update.nlri.iter().map(|p| (Key::of(p.net), true));
                    let removed = update.withdrawn.iter().map(|p| (Key::of(p.net), false));
                    log.record(at, removed.chain(added));
                }
            }
            Message::Notification(notification) => {
                break anyhow!("the daemon sent NOTIFICATION {notification}");
            }
            _ => {}
        }
    };
    let _ = ended.send(error);
}

async fn next_message(reader: &mut FramedRead<OwnedReadHalf, BgpCodec>) -> Result<Message> {
    match reader.next().await {
        None => bail!("the daemon closed the connection"),
        Some(Err(framing)) => bail!("unframeable stream from the daemon: {framing}"),
        Some(Ok(Err(malformed))) => bail!("the daemon sent a {malformed}"),
        Some(Ok(Ok(decoded))) => Ok(decoded.message),
    }
}

async fn write_message(
    write: &mut OwnedWriteHalf,
    message: &Message,
    ctx: &SessionContext,
) -> Result<()> {
    let bytes = message
        .to_bytes(ctx)
        .with_context(|| format!("encoding {:?}", message.message_type()))?;
    write
        .write_all(&bytes)
        .await
        .with_context(|| format!("sending {:?}", message.message_type()))
}
