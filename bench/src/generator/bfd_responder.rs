//! The generator's BFD side (the `bfd` scenario): the far end of a daemon's single hop BFD
//! sessions (RFC 5881), one `bfd::Session` per simulated peer address at FRR's defaults
//! (300 ms, 300 ms, 3), each a task on the generator's runtime with its own sockets: one
//! bound to `PEER:3784` receiving what the daemon sends, one bound to `PEER:49152+i`
//! sending with TTL 255. The same responder faces every daemon, so each is measured
//! against the same peer. The state of each session is published for the scenario
//! (Up, and whether the daemon has been heard at its 300 ms).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bfd::{Action, ControlPacket, Session, SessionConfig, State};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// The single hop control port.
const CONTROL_PORT: u16 = 3784;
/// The first source port (RFC 5881: 49152-65535).
const FIRST_SOURCE_PORT: u16 = 49152;

/// A session's published state: not Up; Up; Up with the daemon's 300 ms in use on both
/// sides (no Poll Sequence pending, the daemon advertising 300 ms and Up).
const NOT_UP: u8 = 0;
const UP: u8 = 1;
const SETTLED: u8 = 2;

/// Every responder session of one daemon; dropping it stops them (each sends nothing
/// more: the daemon's sessions time out, as at a real peer's death).
#[derive(Debug)]
pub struct Responder {
    states: Arc<Vec<AtomicU8>>,
    stop: watch::Sender<bool>,
}

impl Responder {
    /// Starts one session from each of `peers` to `daemon` on `runtime` (the generator's,
    /// in its namespace, where the peer addresses are).
    pub(super) fn start(
        runtime: &tokio::runtime::Handle,
        daemon: Ipv4Addr,
        peers: &[Ipv4Addr],
    ) -> Result<Responder> {
        let (stop, stopped) = watch::channel(false);
        let states: Arc<Vec<AtomicU8>> =
            Arc::new(peers.iter().map(|_| AtomicU8::new(NOT_UP)).collect());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for (index, peer) in peers.iter().enumerate() {
            let port = u16::try_from(index)
                .ok()
                .and_then(|i| FIRST_SOURCE_PORT.checked_add(i))
                .ok_or_else(|| anyhow!("too many BFD peers ({})", peers.len()))?;
            let discriminator = u32::try_from(index + 1)?;
            let states = states.clone();
            let stopped = stopped.clone();
            let ready = ready_tx.clone();
            let peer = *peer;
            runtime.spawn(async move {
                match Sockets::bind(peer, port).await {
                    Ok(sockets) => {
                        let _ = ready.send(Ok(()));
                        run(
                            sockets,
                            SocketAddr::new(IpAddr::V4(daemon), CONTROL_PORT),
                            discriminator,
                            &states[index],
                            stopped,
                        )
                        .await;
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                    }
                }
            });
        }
        drop(ready_tx);
        for _ in peers {
            ready_rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| anyhow!("a BFD responder task did not start"))??;
        }
        Ok(Responder { states, stop })
    }

    /// Sessions Up with 300 ms in use both ways (see the module documentation).
    pub fn settled(&self) -> usize {
        self.states
            .iter()
            .filter(|state| state.load(Ordering::Relaxed) == SETTLED)
            .count()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Sockets {
    receive: UdpSocket,
    send: UdpSocket,
}

impl Sockets {
    async fn bind(peer: Ipv4Addr, port: u16) -> Result<Sockets> {
        let receive = UdpSocket::bind((peer, CONTROL_PORT))
            .await
            .with_context(|| format!("binding {peer}:{CONTROL_PORT}"))?;
        let send = UdpSocket::bind((peer, port))
            .await
            .with_context(|| format!("binding {peer}:{port}"))?;
        send.set_ttl(255)
            .with_context(|| format!("TTL 255 on {peer}:{port}"))?;
        Ok(Sockets { receive, send })
    }
}

async fn run(
    sockets: Sockets,
    daemon: SocketAddr,
    discriminator: u32,
    state: &AtomicU8,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok(mut session) = Session::new(
        Instant::now(),
        SessionConfig::default(),
        discriminator,
        u64::from(discriminator).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    ) else {
        return;
    };
    let mut buffer = [0u8; 128];
    loop {
        let deadline = session.poll_timeout();
        let actions = tokio::select! {
            received = sockets.receive.recv_from(&mut buffer) => match received {
                Ok((length, from)) if from.ip() == daemon.ip() => {
                    match ControlPacket::decode(&buffer[..length]) {
                        Ok(packet) => session.on_packet(Instant::now(), &packet).unwrap_or_default(),
                        Err(_) => Vec::new(),
                    }
                }
                Ok(_) => Vec::new(),
                Err(_) => return,
            },
            () = sleep_until(deadline) => session.on_timer(Instant::now()),
            _ = stopped.changed() => return,
        };
        for action in actions {
            if let Action::Send(packet) = action {
                // A packet the socket cannot take now is lost, as on the wire.
                let _ = sockets.send.try_send_to(&packet.encode(), daemon);
            }
        }
        let remote = session.remote();
        let now = match session.state() {
            State::Up
                if !session.is_polling()
                    && remote.state == State::Up
                    && remote.desired_min_tx == bfd::DEFAULT_MIN_TX =>
            {
                SETTLED
            }
            State::Up => UP,
            _ => NOT_UP,
        };
        state.store(now, Ordering::Relaxed);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
