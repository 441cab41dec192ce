//! The load generator: simulated BGP peers written on bgp-proto, all in one tokio
//! current-thread runtime on a thread inside the generator namespace, pinned to the
//! generator CPU. Each peer connects from its own address on the generator's veth.
//!
//! A peer keeps counters and time stamps of what it receives, not the routes (unless it
//! is a monitor with a route log), so thousands fit in one process (the `scale-*`
//! scenarios run 5000).
//!
//! The harness drives it from its own thread: [`Generator::peer`] starts a peer task,
//! [`Peer::send`] hands it pre-encoded UPDATEs (encode them with [`updates`] before the
//! clock starts) and returns the instant the write began, [`Peer::close`] drops the
//! connection as a killed process would; [`Generator::watching_peer`] starts one that also
//! follows a few prefixes one by one ([`watch`]); [`Generator::bfd`] runs the BFD far end of
//! peers ([`bfd_responder`]).

pub mod bfd_responder;
pub mod session;
pub mod updates;
pub mod watch;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use session::Request;
pub use session::{PeerShared, PeerSpec, State};
pub use watch::{Seen, Watch};

use crate::system;

/// The running generator; dropping it closes every session.
#[derive(Debug)]
pub struct Generator {
    handle: tokio::runtime::Handle,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Generator {
    /// Starts the runtime thread inside `netns`.
    pub fn start(netns: &lab::Netns) -> Result<Generator> {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let thread = netns.enter(move || {
            std::thread::Builder::new()
                .name("generator".into())
                .spawn(move || {
                    let runtime =
                        system::pin_current_thread(system::cpus().generator).and_then(|()| {
                            tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .context("building the generator runtime")
                        });
                    match runtime {
                        Ok(runtime) => {
                            let _ = handle_tx.send(Ok(runtime.handle().clone()));
                            let _ = runtime.block_on(shutdown_rx);
                        }
                        Err(error) => {
                            let _ = handle_tx.send(Err(error));
                        }
                    }
                })
        })??;
        let handle = handle_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow!("the generator thread did not start"))??;
        Ok(Generator {
            handle,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Starts a simulated peer; it connects at once.
    pub fn peer(&self, spec: PeerSpec) -> Peer {
        self.watching_peer(spec, None)
    }

    /// [`Generator::peer`], following the prefixes of `watch` one by one ([`watch`]).
    pub fn watching_peer(&self, spec: PeerSpec, watch: Option<Arc<Watch>>) -> Peer {
        // Unbounded on purpose: the benchmark's scenario (a synchronous thread) sends
        // a bounded script of announcements and withdrawals; a bounded channel would
        // make it block on the generator it measures.
        let (requests, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(PeerShared::default());
        let local = spec.local;
        self.handle
            .spawn(session::run(spec, watch, receiver, shared.clone()));
        Peer {
            local,
            requests,
            shared,
        }
    }
}

impl Generator {
    /// Starts the BFD side of `peers` (generator addresses) towards `daemon`: one
    /// session each, on the generator's runtime ([`bfd_responder`]).
    pub fn bfd(
        &self,
        daemon: std::net::Ipv4Addr,
        peers: &[std::net::Ipv4Addr],
    ) -> Result<bfd_responder::Responder> {
        bfd_responder::Responder::start(&self.handle, daemon, peers)
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A simulated peer; dropping the handle closes its session.
#[derive(Debug)]
pub struct Peer {
    local: std::net::Ipv4Addr,
    requests: mpsc::UnboundedSender<Request>,
    shared: Arc<PeerShared>,
}

/// A write under way; [`PendingSend::wait`] returns when it has completed.
#[derive(Debug)]
pub struct PendingSend {
    peer: std::net::Ipv4Addr,
    reply: std::sync::mpsc::Receiver<Result<Instant, String>>,
}

impl PendingSend {
    /// The instant just before the write began, once it has completed.
    pub fn wait(self, timeout: Duration) -> Result<Instant> {
        self.reply
            .recv_timeout(timeout)
            .map_err(|_| {
                anyhow!(
                    "peer {}: the write did not complete in {timeout:?}",
                    self.peer
                )
            })?
            .map_err(|e| anyhow!("peer {}: {e}", self.peer))
    }
}

impl Peer {
    /// The peer's address.
    pub fn address(&self) -> std::net::Ipv4Addr {
        self.local
    }

    /// Its state now.
    pub fn state(&self) -> State {
        self.shared.state()
    }

    /// What it saw of its watched prefixes (see [`Generator::watching_peer`]).
    pub fn seen<T>(&self, look: impl FnOnce(&Seen) -> T) -> T {
        self.shared.seen(look)
    }

    /// Waits until a session is Established (the `n`th one, counting from 1); returns when
    /// it became so.
    pub fn wait_established(&self, deadline: Instant, n: u32) -> Result<Instant> {
        let state = self.shared.wait(
            deadline,
            &format!("peer {} session {n} Established", self.local),
            |s| s.established && s.sessions >= n,
        )?;
        state
            .established_at
            .ok_or_else(|| anyhow!("peer {}: Established without a time", self.local))
    }

    /// Waits until `condition` holds on the peer's state (`what` names it in the error);
    /// returns that state.
    pub fn wait_for(
        &self,
        deadline: Instant,
        what: &str,
        condition: impl Fn(&State) -> bool,
    ) -> Result<State> {
        self.shared
            .wait(deadline, &format!("peer {} {what}", self.local), condition)
    }

    /// Starts writing `bytes` on the session.
    pub fn start_send(&self, bytes: Bytes) -> Result<PendingSend> {
        let (reply, receiver) = std::sync::mpsc::channel();
        self.requests
            .send(Request::Send(bytes, reply))
            .map_err(|_| anyhow!("peer {}: the peer task has stopped", self.local))?;
        Ok(PendingSend {
            peer: self.local,
            reply: receiver,
        })
    }

    /// Writes `bytes` and returns the instant the write began.
    pub fn send(&self, bytes: Bytes) -> Result<Instant> {
        self.start_send(bytes)?.wait(Duration::from_secs(300))
    }

    /// Closes the connection and stops the peer.
    pub fn close(&self) {
        let _ = self.requests.send(Request::Close);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.close();
    }
}

/// Fails when the daemon announced routes to any of `peers` (generator peers must receive
/// nothing: every daemon is configured to export only to the monitor).
pub fn check_nothing_received(peers: &[Peer]) -> Result<()> {
    for peer in peers {
        let received = peer.state().received;
        if received > 0 {
            return Err(anyhow!(
                "the daemon announced {received} prefixes to generator peer {}: its export \
                 policy is not the benchmark's",
                peer.address()
            ));
        }
    }
    Ok(())
}

/// Waits until every peer has an Established session; returns the instant the last one
/// became Established.
pub fn wait_all_established(peers: &[Peer], timeout: Duration) -> Result<Instant> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    for peer in peers {
        let at = peer.wait_established(deadline, 1)?;
        last = Some(last.map_or(at, |l: Instant| l.max(at)));
    }
    last.ok_or_else(|| anyhow!("no peers"))
}
