//! One BGP connection driven by a test: [`Peer`].
//!
//! A `Peer` owns a thread running a tokio current-thread runtime with two tasks: the
//! reader (frames and decodes what the daemon sends with bgp-proto, keeps what it saw
//! in [`Observed`]) and the writer (sends the bytes the test hands it, exactly as
//! given, and KEEPALIVEs on a timer once the session is up). The test's side is
//! blocking: `send`, `establish`, `wait_for`, so a `#[test]` needs no runtime.
//!
//! The connection is made on the peer's thread, which inherits the network namespace
//! of the thread that called [`Peer::connect`] (or [`Listener::bind`]): create the
//! peer inside `lab::Netns::enter` to connect from a namespace.
//!
//! Reading can be paused ([`Peer::pause_reading`]): the socket is then not read at
//! all, its receive window fills and closes (TCP zero window) while the writer still
//! sends KEEPALIVEs; that is the peer RFC 9687's send hold timer is for.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bgp_proto::{
    Family, Message, NextHop, Notification, Open, PathAttributes, Prefix, SessionContext,
    decode_message, frame_length,
};
use ipnet::IpNet;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};
use crate::wire;

/// How to open the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The daemon's address and port.
    pub remote: SocketAddr,
    /// Our source address (bound before connecting), if any.
    pub local: Option<IpAddr>,
    /// TTL (IPv4) or hop limit (IPv6) of our packets, if not the system's.
    pub ttl: Option<u32>,
    /// SO_RCVBUF: a small one makes a paused reader close its window sooner.
    pub receive_buffer: Option<usize>,
    /// Bound of the TCP connection attempt.
    pub timeout: Duration,
}

impl ConnectOptions {
    /// Connect to `remote` from any address, default socket options, 10 s timeout.
    pub fn new(remote: SocketAddr) -> ConnectOptions {
        ConnectOptions {
            remote,
            local: None,
            ttl: None,
            receive_buffer: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Everything the peer has seen from the daemon so far.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The daemon's OPEN.
    pub daemon_open: Option<Open>,
    pub keepalives: u64,
    pub updates: u64,
    pub route_refreshes: u64,
    /// Routes the daemon advertises to us now (announced and not withdrawn).
    pub routes: BTreeMap<IpNet, AdvertisedRoute>,
    /// End-of-RIB markers received, in order.
    pub end_of_rib: Vec<Family>,
    /// The NOTIFICATION the daemon sent, if any.
    pub notification: Option<Notification>,
    /// Why the connection ended, once it has.
    pub closed: Option<String>,
    /// Messages from the daemon that did not decode cleanly (a daemon bug).
    pub undecodable: Vec<String>,
    /// Octets read from the socket.
    pub received_octets: u64,
    /// KEEPALIVEs our timer sent.
    pub keepalives_sent: u64,
    /// The reader is paused (not reading the socket).
    pub reading_paused: bool,
}

/// A route the daemon advertises to us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdvertisedRoute {
    pub attributes: PathAttributes,
    /// NEXT_HOP, or the MP_REACH_NLRI next hop (global address).
    pub next_hop: Option<IpAddr>,
}

/// How an OPEN exchange ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// OPENs and KEEPALIVEs exchanged: the session is up. Holds the daemon's OPEN.
    Established(Box<Open>),
    /// The daemon refused (with its NOTIFICATION, if it sent one) or closed.
    Refused {
        notification: Option<Notification>,
        reason: String,
    },
}

/// A listening socket, bound in the caller's network namespace, that hands out a
/// [`Peer`] per accepted connection (for daemons that connect to us).
#[derive(Debug)]
pub struct Listener {
    listener: std::net::TcpListener,
}

impl Listener {
    /// Binds `address` now.
    pub fn bind(address: SocketAddr) -> Result<Listener> {
        let listener = std::net::TcpListener::bind(address)
            .map_err(|e| Error::io(format!("binding {address}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("listener non-blocking", e))?;
        Ok(Listener { listener })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("listener address", e))
    }

    /// Waits up to `timeout` for one connection.
    pub fn accept(&self, timeout: Duration) -> Result<Peer> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream
                        .set_nonblocking(false)
                        .map_err(|e| Error::io("accepted socket", e))?;
                    return Peer::start(move || Ok(stream));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(Error::Timeout {
                            what: "a connection from the daemon".into(),
                            waited: timeout,
                            last: String::new(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => return Err(Error::io("accept", error)),
            }
        }
    }
}

/// One connection to a daemon. See the module documentation. Dropping it closes the
/// connection (FIN) and ends its thread.
#[derive(Debug)]
pub struct Peer {
    local: SocketAddr,
    remote: SocketAddr,
    requests: mpsc::UnboundedSender<Request>,
    reading: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
enum Request {
    Write(Vec<u8>, std::sync::mpsc::Sender<io::Result<()>>),
    Keepalives(Option<Duration>),
    Shutdown,
}

#[derive(Debug, Default)]
struct Shared {
    observed: Mutex<Observed>,
    changed: Condvar,
    context: Mutex<SessionContext>,
}

impl Shared {
    fn observed(&self) -> MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut Observed)) {
        change(&mut self.observed());
        self.changed.notify_all();
    }

    fn context(&self) -> SessionContext {
        *self.context.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Peer {
    /// Opens a TCP connection to the daemon (nothing is sent yet).
    pub fn connect(options: &ConnectOptions) -> Result<Peer> {
        let options = options.clone();
        Peer::start(move || connect_socket(&options))
    }

    /// Starts the peer's thread over the stream `open` returns (called on that thread).
    fn start(
        open: impl FnOnce() -> io::Result<std::net::TcpStream> + Send + 'static,
    ) -> Result<Peer> {
        let shared = Arc::new(Shared::default());
        // Unbounded on purpose: requests come from the test's own synchronous calls,
        // one at a time (each waits for its answer), so the queue never holds more
        // than the test asked for, and a blocking `send` from a test thread is not
        // possible on a tokio channel anyway.
        let (requests, request_rx) = mpsc::unbounded_channel();
        let (reading, reading_rx) = watch::channel(true);
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wren-peer".into())
            .spawn(move || {
                let started = open().and_then(|stream| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    Ok((stream, runtime))
                });
                let (stream, runtime) = match started {
                    Ok(started) => started,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let stream = match stream
                        .set_nonblocking(true)
                        .and_then(|()| TcpStream::from_std(stream))
                    {
                        Ok(stream) => stream,
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                            return;
                        }
                    };
                    let addresses = stream
                        .local_addr()
                        .and_then(|local| stream.peer_addr().map(|remote| (local, remote)));
                    let _ = ready_tx.send(addresses);
                    let (read_half, write_half) = stream.into_split();
                    tokio::join!(
                        read_loop(read_half, &thread_shared, reading_rx, stop_rx.clone()),
                        write_loop(write_half, &thread_shared, request_rx, stop_rx),
                    );
                });
            })
            .map_err(|e| Error::io("spawning the peer thread", e))?;
        let (local, remote) = match ready_rx.recv() {
            Ok(Ok(addresses)) => addresses,
            Ok(Err(error)) => {
                let _ = thread.join();
                return Err(Error::io("connecting", error));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(Error::Closed("the peer thread ended at start".into()));
            }
        };
        Ok(Peer {
            local,
            remote,
            requests,
            reading,
            stop,
            shared,
            thread: Some(thread),
        })
    }

    /// Our end of the connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The daemon's end.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Writes `bytes` exactly as given; returns once they are in the socket (at most
    /// 10 s).
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        let (reply, result) = std::sync::mpsc::channel();
        self.requests
            .send(Request::Write(bytes.to_vec(), reply))
            .map_err(|_| Error::Closed("the peer thread has ended".into()))?;
        match result.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Error::io("sending", error)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Error::Timeout {
                what: format!("{} octets to be written", bytes.len()),
                waited: Duration::from_secs(10),
                last: String::new(),
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(Error::Closed("the peer thread has ended".into()))
            }
        }
    }

    /// Sends our OPEN (`open`, any bytes), waits for the daemon's OPEN, answers with a
    /// KEEPALIVE and waits for the daemon's. When established, KEEPALIVEs are sent every
    /// third of the negotiated hold time and UPDATEs are decoded with the negotiated
    /// session context.
    ///
    /// Established is this side's view: the daemon sends its KEEPALIVE on our OPEN,
    /// before it has read ours, so it may still be in OpenConfirm when this returns.
    /// Wait for the daemon's own view (bgpctl, a scrape) before asserting on it.
    pub fn establish(&self, open: &[u8], timeout: Duration) -> Result<Handshake> {
        self.send(open)?;
        let daemon_open = self.wait_for(timeout, "the daemon's OPEN", |seen| {
            match (&seen.daemon_open, &seen.notification, &seen.closed) {
                (Some(open), None, None) => Ok(Ok(open.clone())),
                (_, Some(_), _) | (_, _, Some(_)) => Ok(Err(refused(seen))),
                (None, None, None) => Err("nothing yet".to_owned()),
            }
        })?;
        let daemon_open = match daemon_open {
            Ok(open) => open,
            Err(refused) => return Ok(refused),
        };
        let ours = open.get(19..).and_then(|body| Open::decode_body(body).ok());
        if let Some(ours) = &ours {
            let ibgp = ours.asn() == daemon_open.asn();
            *self
                .shared
                .context
                .lock()
                .unwrap_or_else(|p| p.into_inner()) =
                SessionContext::negotiate(ours, &daemon_open, ibgp);
        }
        // The daemon may refuse our OPEN after sending its own: then no KEEPALIVE.
        let _ = self.send(&wire::keepalive());
        let up = self.wait_for(timeout, "the daemon's KEEPALIVE", |seen| {
            if seen.notification.is_some() || seen.closed.is_some() {
                Ok(false)
            } else if seen.keepalives > 0 {
                Ok(true)
            } else {
                Err("no KEEPALIVE yet".to_owned())
            }
        })?;
        if !up {
            return Ok(refused(&self.observed()));
        }
        let hold = ours.map_or(daemon_open.hold_time, |ours| {
            ours.hold_time.min(daemon_open.hold_time)
        });
        if hold > 0 {
            self.set_keepalives(Some(Duration::from_secs(u64::from((hold / 3).max(1)))));
        }
        Ok(Handshake::Established(Box::new(daemon_open)))
    }

    /// Sends KEEPALIVEs every `period` (None: stop sending them).
    pub fn set_keepalives(&self, period: Option<Duration>) {
        let _ = self.requests.send(Request::Keepalives(period));
    }

    /// Stops reading the socket: the receive window closes (zero window). Returns
    /// once the reader has stopped (or the connection is gone).
    pub fn pause_reading(&self) {
        self.reading.send_replace(false);
        let _ = self.wait_for(Duration::from_secs(10), "the reader to pause", |seen| {
            if seen.reading_paused || seen.closed.is_some() {
                Ok(())
            } else {
                Err("still reading".to_owned())
            }
        });
    }

    /// Reads the socket again.
    pub fn resume_reading(&self) {
        self.reading.send_replace(true);
    }

    /// A copy of what was seen so far.
    pub fn observed(&self) -> Observed {
        self.shared.observed().clone()
    }

    /// The session context UPDATEs are decoded with (negotiated by `establish`).
    pub fn context(&self) -> SessionContext {
        self.shared.context()
    }

    /// Waits until `probe` returns `Ok` on what was seen, re-checking on every change;
    /// on timeout the error names `what` and carries the probe's last `Err`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut probe: impl FnMut(&Observed) -> std::result::Result<T, String>,
    ) -> Result<T> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut seen = self.shared.observed();
        loop {
            let last = match probe(&seen) {
                Ok(value) => return Ok(value),
                Err(last) => last,
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    waited: now - start,
                    last: format!("; last observation: {last}"),
                });
            }
            seen = self
                .shared
                .changed
                .wait_timeout(seen, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until the connection is closed; returns the daemon's NOTIFICATION, if
    /// it sent one.
    pub fn wait_closed(&self, timeout: Duration) -> Result<Option<Notification>> {
        self.wait_for(timeout, "the daemon to close the connection", |seen| {
            if seen.closed.is_some() {
                Ok(seen.notification.clone())
            } else {
                Err(format!("open; notification {:?}", seen.notification))
            }
        })
    }

    /// Sends NOTIFICATION `code`/`subcode` with `data`, then closes.
    pub fn notify_and_close(self, code: u8, subcode: u8, data: &[u8]) {
        let _ = self.send(&wire::notification(code, subcode, data));
        self.close();
    }

    /// Closes the connection (FIN) and ends the peer's thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.requests.send(Request::Shutdown);
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn refused(seen: &Observed) -> Handshake {
    Handshake::Refused {
        notification: seen.notification.clone(),
        reason: seen
            .closed
            .clone()
            .unwrap_or_else(|| "NOTIFICATION received".to_owned()),
    }
}

fn connect_socket(options: &ConnectOptions) -> io::Result<std::net::TcpStream> {
    let socket = Socket::new(
        Domain::for_address(options.remote),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if let Some(size) = options.receive_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(ttl) = options.ttl {
        if options.remote.is_ipv4() {
            socket.set_ttl_v4(ttl)?;
        } else {
            socket.set_unicast_hops_v6(ttl)?;
        }
    }
    if let Some(local) = options.local {
        socket.set_reuse_address(true)?;
        socket.bind(&SocketAddr::new(local, 0).into())?;
    }
    socket.connect_timeout(&options.remote.into(), options.timeout)?;
    Ok(socket.into())
}

/// Reads until the connection ends or the peer stops; pauses while `reading` is false.
async fn read_loop(
    mut socket: OwnedReadHalf,
    shared: &Shared,
    mut reading: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if *stop.borrow() {
            return;
        }
        let paused = !*reading.borrow_and_update();
        if paused {
            shared.update(|seen| seen.reading_paused = true);
            tokio::select! {
                _ = reading.changed() => {}
                _ = stop.changed() => return,
            }
            shared.update(|seen| seen.reading_paused = false);
            continue;
        }
        let read = tokio::select! {
            biased;
            _ = reading.changed() => continue,
            _ = stop.changed() => return,
            read = socket.read(&mut chunk) => read,
        };
        match read {
            Ok(0) => {
                shared.update(|seen| {
                    seen.closed
                        .get_or_insert_with(|| "the daemon closed the connection".into());
                });
                return;
            }
            Ok(count) => {
                buffer.extend_from_slice(&chunk[..count]);
                shared.update(|seen| seen.received_octets += count as u64);
                if let Err(error) = frames(&mut buffer, shared) {
                    shared.update(|seen| {
                        seen.undecodable.push(error.clone());
                        seen.closed.get_or_insert(error);
                    });
                    return;
                }
            }
            Err(error) => {
                shared.update(|seen| {
                    seen.closed.get_or_insert_with(|| format!("read: {error}"));
                });
                return;
            }
        }
    }
}

/// Takes every whole message off the front of `buffer` and records it.
fn frames(buffer: &mut Vec<u8>, shared: &Shared) -> std::result::Result<(), String> {
    loop {
        let length = match frame_length(buffer, bgp_proto::MAX_EXTENDED_MESSAGE_LEN) {
            Ok(Some(length)) => length,
            Ok(None) => return Ok(()),
            Err(error) => return Err(format!("the daemon's stream does not frame: {error}")),
        };
        let frame: Vec<u8> = buffer.drain(..length).collect();
        let context = shared.context();
        shared.update(|seen| record(seen, &frame, &context));
    }
}

fn record(seen: &mut Observed, frame: &[u8], context: &SessionContext) {
    let decoded = match decode_message(frame, context) {
        Ok(decoded) => decoded,
        Err(malformed) => {
            seen.undecodable
                .push(format!("{malformed}: {}", hex::encode(frame)));
            return;
        }
    };
    if !decoded.errors.is_empty() {
        let problems: Vec<String> = decoded.errors.iter().map(ToString::to_string).collect();
        seen.undecodable
            .push(format!("{problems:?}: {}", hex::encode(frame)));
    }
    match decoded.message {
        Message::Open(open) => seen.daemon_open = Some(open),
        Message::Keepalive => seen.keepalives += 1,
        Message::Notification(notification) => {
            seen.notification.get_or_insert(notification);
        }
        Message::RouteRefresh(_) => seen.route_refreshes += 1,
        Message::Update(update) => {
            seen.updates += 1;
            if let Some(family) = update.end_of_rib_family() {
                seen.end_of_rib.push(family);
                return;
            }
            for (_, prefix) in update.withdrawals() {
                seen.routes.remove(&net(prefix));
            }
            let mp_next_hop = update
                .mp_reach
                .as_ref()
                .and_then(|reach| match reach.next_hop {
                    NextHop::Ipv4(address) => Some(IpAddr::V4(address)),
                    NextHop::Ipv6 { global, .. } => Some(IpAddr::V6(global)),
                    NextHop::Other(_) => None,
                });
            for (_, prefix) in update.announcements() {
                let next_hop = match prefix {
                    Prefix::V4(_) if update.nlri.iter().any(|p| Prefix::V4(*p) == prefix) => {
                        update.attributes.next_hop.map(IpAddr::V4)
                    }
                    _ => mp_next_hop,
                };
                seen.routes.insert(
                    net(prefix),
                    AdvertisedRoute {
                        attributes: update.attributes.clone(),
                        next_hop,
                    },
                );
            }
        }
    }
}

fn net(prefix: Prefix) -> IpNet {
    match prefix {
        Prefix::V4(prefix) => IpNet::V4(prefix.net),
        Prefix::V6(prefix) => IpNet::V6(prefix.net),
    }
}

/// Writes what the test sends, and KEEPALIVEs on the timer.
async fn write_loop(
    mut socket: OwnedWriteHalf,
    shared: &Shared,
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut stop: watch::Receiver<bool>,
) {
    let keepalive = wire::keepalive();
    let mut timer: Option<tokio::time::Interval> = None;
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                Some(Request::Write(bytes, reply)) => {
                    let result = tokio::select! {
                        result = socket.write_all(&bytes) => result,
                        _ = stop.changed() => break,
                    };
                    let _ = reply.send(result);
                }
                Some(Request::Keepalives(period)) => {
                    timer = period.map(|period| {
                        let mut timer = tokio::time::interval_at(
                            tokio::time::Instant::now() + period,
                            period,
                        );
                        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        timer
                    });
                }
                Some(Request::Shutdown) | None => break,
            },
            () = tick(timer.as_mut()) => {
                if socket.write_all(&keepalive).await.is_ok() {
                    shared.update(|seen| seen.keepalives_sent += 1);
                } else {
                    timer = None;
                }
            }
            _ = stop.changed() => break,
        }
    }
    let _ = socket.shutdown().await;
}

async fn tick(timer: Option<&mut tokio::time::Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}
