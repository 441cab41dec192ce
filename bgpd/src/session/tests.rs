//! The session task against a scripted peer over loopback TCP: open sequences in
//! both directions, UPDATEs both ways, End-of-RIB, backpressure notices, route
//! refresh, shutdown with a communication, graceful restart on a lost connection,
//! and a collision.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::codec::BgpCodec;
use bgp_proto::{
    AsPath, Capability, Family, GracefulRestart, GracefulRestartFamily, Ipv4Prefix, Message,
    Notification, Open, Origin, PathAttributes, RouteRefresh, SessionContext, UpdatePacker,
};
use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

use super::*;
use crate::config::{Asn, FamilyName, GracefulRestartConfig, HoldTime, SessionOptions};
use crate::tasks::{Outbound, PeerUp, RibInput};

const WAIT: Duration = Duration::from_secs(20);

fn speaker() -> Arc<SpeakerSettings> {
    Arc::new(SpeakerSettings {
        local_asn: 64512,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        graceful_restart: GracefulRestartConfig::default(),
        restarting_until: None,
    })
}

fn settings(port: u16, passive: bool) -> NeighborSettings {
    NeighborSettings {
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        range: None,
        session: SessionOptions {
            port,
            passive,
            hold_time: HoldTime::new(9).unwrap(),
            connect_retry: 1,
            families: Some(vec![FamilyName::Ipv4]),
            description: Some("test peer".into()),
            ..SessionOptions::new(Asn::new(65001).unwrap())
        },
    }
}

fn peer_open(id: Ipv4Addr, graceful_restart: bool) -> Message {
    let mut capabilities = vec![
        Capability::Multiprotocol {
            family: Family::IPV4_UNICAST,
        },
        Capability::RouteRefresh,
        Capability::FourOctetAs { asn: 65001 },
    ];
    if graceful_restart {
        capabilities.push(Capability::GracefulRestart(GracefulRestart {
            flags: 0,
            restart_time: 30,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                flags: GracefulRestartFamily::FORWARDING_STATE,
            }],
        }));
    }
    Message::Open(Open::new(65001, 9, id, capabilities))
}

type Peer = Framed<TcpStream, BgpCodec>;

async fn next_message(peer: &mut Peer) -> Message {
    tokio::time::timeout(WAIT, peer.next())
        .await
        .expect("peer waited too long")
        .expect("connection closed")
        .expect("framing")
        .expect("malformed")
        .message
}

/// Reads until a message other than KEEPALIVE arrives.
async fn next_non_keepalive(peer: &mut Peer) -> Message {
    loop {
        let message = next_message(peer).await;
        if message != Message::Keepalive {
            return message;
        }
    }
}

async fn next_rib(rib: &mut mpsc::Receiver<RibInput>) -> RibInput {
    tokio::time::timeout(WAIT, rib.recv())
        .await
        .expect("rib waited too long")
        .expect("session gone")
}

/// Hands the session a batch from the rib announcing `prefix`; the peer receives it.
async fn batch_reaches_the_peer(
    up: &PeerUp,
    peer: &mut Peer,
    prefix: &str,
    context: &SessionContext,
) {
    up.outbound
        .send(Box::new(Outbound::Updates(update(prefix, context))))
        .await
        .unwrap();
    match next_non_keepalive(peer).await {
        Message::Update(update) => assert_eq!(update.nlri[0].net.to_string(), prefix),
        other => panic!("expected UPDATE, got {other:?}"),
    }
}

/// Opens the session from the peer's side of an accepted connection; returns the
/// negotiated context.
async fn open_session(peer: &mut Peer, graceful_restart: bool) -> SessionContext {
    let ours = match next_message(peer).await {
        Message::Open(open) => open,
        other => panic!("expected OPEN, got {other:?}"),
    };
    assert_eq!(ours.asn(), 64512);
    assert_eq!(ours.bgp_identifier, Ipv4Addr::new(10, 0, 0, 1));
    let theirs = peer_open(Ipv4Addr::new(10, 0, 0, 2), graceful_restart);
    peer.send(&theirs).await.unwrap();
    peer.send(Message::Keepalive).await.unwrap();
    assert_eq!(next_message(peer).await, Message::Keepalive);
    let Message::Open(theirs) = theirs else {
        unreachable!()
    };
    let context = SessionContext::negotiate(&theirs, &ours, false);
    peer.codec_mut().set_context(context);
    context
}

fn update(prefix: &str, context: &SessionContext) -> bytes::Bytes {
    let attributes = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(&[65001])),
        next_hop: Some(Ipv4Addr::LOCALHOST),
        ..PathAttributes::default()
    };
    let mut out = BytesMut::new();
    UpdatePacker::new(context)
        .announce_ipv4(
            &attributes,
            [Ipv4Prefix::new(prefix.parse().unwrap())],
            &mut out,
        )
        .unwrap();
    out.freeze()
}

struct Harness {
    handle: SessionHandle,
    rib: mpsc::Receiver<RibInput>,
    tasks: tokio::task::JoinSet<()>,
}

fn start(settings: NeighborSettings) -> Harness {
    let (rib_tx, rib) = mpsc::channel(64);
    let mut tasks = tokio::task::JoinSet::new();
    let handle = spawn(
        7,
        Arc::new(settings),
        speaker(),
        rib_tx,
        crate::events::Events::new(),
        None,
        &mut tasks,
        super::History::default(),
    )
    .unwrap();
    Harness { handle, rib, tasks }
}

async fn wait_state(handle: &SessionHandle, state: bgp_proto::fsm::State) {
    let reached = async {
        while handle.status.read(|s| s.state) != state {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, reached)
        .await
        .unwrap_or_else(|_| panic!("state {state} not reached"));
}

/// Starts a session with `settings(port)` toward a scripted peer listening on
/// `port`, and returns the peer's end of the session's connection.
async fn connected(settings: impl FnOnce(u16) -> NeighborSettings) -> (Harness, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let harness = start(settings(listener.local_addr().unwrap().port()));
    let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    (
        harness,
        Framed::new(stream, BgpCodec::new(SessionContext::default())),
    )
}

/// A connected pair: one end for the session (as if accepted), one for the peer.
async fn accepted_pair() -> (TcpStream, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ours, theirs) = tokio::join!(
        listener.accept(),
        TcpStream::connect(listener.local_addr().unwrap())
    );
    (
        ours.unwrap().0,
        Framed::new(theirs.unwrap(), BgpCodec::new(SessionContext::default())),
    )
}

/// The peer connects to the session (as if through a listener); returns its end.
async fn peer_connects(harness: &Harness) -> Peer {
    let (ours, peer) = accepted_pair().await;
    harness
        .handle
        .commands
        .send(SessionCommand::Incoming(ours))
        .await
        .unwrap();
    peer
}

#[tokio::test]
async fn active_session_carries_updates_both_ways() {
    let (mut harness, mut peer) = connected(|port| settings(port, false)).await;
    let context = open_session(&mut peer, false).await;

    let RibInput::PeerUp(up) = next_rib(&mut harness.rib).await else {
        panic!("expected PeerUp")
    };
    assert_eq!(up.peer, 7);
    assert_eq!(up.info.remote_asn, 65001);
    assert_eq!(up.info.local_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(up.info.local_ipv4, Some(Ipv4Addr::LOCALHOST));
    assert!(!up.info.context.ibgp);
    wait_state(&harness.handle, bgp_proto::fsm::State::Established).await;

    // Peer to us: an UPDATE, then End-of-RIB.
    peer.send(update("10.1.0.0/24", &context)).await.unwrap();
    match next_rib(&mut harness.rib).await {
        RibInput::Update {
            peer: 7,
            update,
            treat_as_withdraw: false,
        } => assert_eq!(update.nlri[0].net.to_string(), "10.1.0.0/24"),
        other => panic!("expected Update, got {other:?}"),
    }
    peer.send(&Message::Update(bgp_proto::Update::end_of_rib(
        Family::IPV4_UNICAST,
    )))
    .await
    .unwrap();
    assert!(matches!(
        next_rib(&mut harness.rib).await,
        RibInput::EndOfRib { peer: 7, family } if family == Family::IPV4_UNICAST
    ));

    // Us to the peer: UPDATEs the rib encoded.
    batch_reaches_the_peer(&up, &mut peer, "10.2.0.0/24", &context).await;
    // The channel holds one batch: taking it asks the rib for the next.
    assert!(matches!(
        next_rib(&mut harness.rib).await,
        RibInput::Drained { peer: 7 }
    ));

    // The peer asks for a refresh; we ask the peer for one.
    peer.send(&Message::RouteRefresh(RouteRefresh::request(
        Family::IPV4_UNICAST,
    )))
    .await
    .unwrap();
    assert!(matches!(
        next_rib(&mut harness.rib).await,
        RibInput::RouteRefresh { peer: 7, .. }
    ));
    let (reply, answer) = tokio::sync::oneshot::channel();
    harness
        .handle
        .commands
        .send(SessionCommand::Refresh { reply })
        .await
        .unwrap();
    answer.await.unwrap().unwrap();
    assert_eq!(
        next_non_keepalive(&mut peer).await,
        Message::RouteRefresh(RouteRefresh::request(Family::IPV4_UNICAST))
    );

    // Counters saw it all.
    let sent = harness.handle.counters.sent();
    assert!(
        sent.open == 1 && sent.update == 1 && sent.route_refresh == 1,
        "{sent:?}"
    );
    let received = harness.handle.counters.received();
    assert!(
        received.update == 2 && received.route_refresh == 1,
        "{received:?}"
    );

    // Shutdown with a communication: Cease 6/2 carrying it, then PeerDown.
    harness
        .handle
        .commands
        .send(SessionCommand::Shutdown {
            message: Some("maintenance".into()),
        })
        .await
        .unwrap();
    match next_non_keepalive(&mut peer).await {
        Message::Notification(notification) => {
            assert_eq!((notification.code, notification.subcode), (6, 2));
            assert_eq!(
                notification.shutdown_communication().unwrap().unwrap(),
                "maintenance"
            );
        }
        other => panic!("expected NOTIFICATION, got {other:?}"),
    }
    assert!(matches!(
        next_rib(&mut harness.rib).await,
        RibInput::PeerDown {
            peer: 7,
            stale_for: None
        }
    ));
    let status = harness.handle.status.get();
    assert!(status.admin_down);
    assert!(status.last_error.unwrap().reason.contains("6/2"));
}

#[tokio::test]
async fn passive_session_takes_the_peers_connection_and_keeps_routes_on_loss() {
    let mut harness = start(settings(179, true));
    wait_state(&harness.handle, bgp_proto::fsm::State::Active).await;
    // The peer connects to "our listener": a connected pair, one end handed over.
    let mut peer = peer_connects(&harness).await;
    open_session(&mut peer, true).await;
    let RibInput::PeerUp(up) = next_rib(&mut harness.rib).await else {
        panic!("expected PeerUp")
    };
    assert!(up.info.graceful_restart.is_some());
    // The connection drops without a NOTIFICATION: graceful restart keeps the
    // routes (the peer's 30 s plus our stale_routes_time).
    drop(peer);
    match next_rib(&mut harness.rib).await {
        RibInput::PeerDown {
            peer: 7,
            stale_for: Some(stale),
        } => assert_eq!(stale, Duration::from_secs(30 + 360)),
        other => panic!("expected PeerDown with stale_for, got {other:?}"),
    }
}

#[tokio::test]
async fn rib_close_and_drained() {
    let (mut harness, mut peer) = connected(|port| settings(port, false)).await;
    let context = open_session(&mut peer, false).await;
    let RibInput::PeerUp(up) = next_rib(&mut harness.rib).await else {
        panic!("expected PeerUp")
    };
    // Fill the outbound channel while the session is busy: it reports Drained.
    let batch = update("10.3.0.0/24", &context);
    let mut sent = 0;
    while up
        .outbound
        .try_send(Box::new(Outbound::Updates(batch.clone())))
        .is_ok()
    {
        sent += 1;
    }
    assert_eq!(sent, crate::tasks::OUTBOUND_CAPACITY);
    assert!(matches!(
        next_rib(&mut harness.rib).await,
        RibInput::Drained { peer: 7 }
    ));
    // max_prefixes: the rib closes the session with Cease/1.
    up.outbound
        .send(Box::new(Outbound::Close {
            notification: Notification::new(6, 1, Vec::new()),
            idle_for: Some(Duration::from_secs(60)),
        }))
        .await
        .unwrap();
    loop {
        match next_message(&mut peer).await {
            Message::Notification(notification) => {
                assert_eq!((notification.code, notification.subcode), (6, 1));
                break;
            }
            Message::Update(_) | Message::Keepalive => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    loop {
        if let RibInput::PeerDown { peer: 7, .. } = next_rib(&mut harness.rib).await {
            break;
        }
    }
    wait_state(&harness.handle, bgp_proto::fsm::State::Idle).await;
}

#[tokio::test]
async fn stop_sends_the_notification_and_ends_the_task() {
    let (mut harness, mut peer) = connected(|port| settings(port, false)).await;
    open_session(&mut peer, false).await;
    assert!(matches!(
        next_rib(&mut harness.rib).await,
        RibInput::PeerUp(_)
    ));
    let (done, finished) = tokio::sync::oneshot::channel();
    harness
        .handle
        .commands
        .send(SessionCommand::Stop {
            notification: Notification::new(6, 3, Vec::new()),
            done,
        })
        .await
        .unwrap();
    match next_non_keepalive(&mut peer).await {
        Message::Notification(n) => assert_eq!((n.code, n.subcode), (6, 3)),
        other => panic!("expected NOTIFICATION, got {other:?}"),
    }
    tokio::time::timeout(WAIT, finished).await.unwrap().unwrap();
    let ended = tokio::time::timeout(WAIT, harness.tasks.join_next_with_id())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ended.0, harness.handle.task.id());
}

#[tokio::test]
async fn collision_keeps_the_connection_of_the_higher_identifier() {
    // The peer (10.0.0.2) has the higher identifier: its connection survives and
    // ours is closed with Cease 6/7.
    let (mut harness, mut ours_at_peer) = connected(|port| settings(port, false)).await;
    assert!(matches!(
        next_message(&mut ours_at_peer).await,
        Message::Open(_)
    ));
    // Meanwhile the peer connects to us.
    let mut theirs = peer_connects(&harness).await;
    // The peer answers on both connections.
    let open = peer_open(Ipv4Addr::new(10, 0, 0, 2), false);
    ours_at_peer.send(&open).await.unwrap();
    assert!(matches!(next_message(&mut theirs).await, Message::Open(_)));
    theirs.send(&open).await.unwrap();
    theirs.send(Message::Keepalive).await.unwrap();
    // Our connection is dumped with 6/7.
    loop {
        match next_message(&mut ours_at_peer).await {
            Message::Keepalive => continue,
            Message::Notification(n) => {
                assert_eq!((n.code, n.subcode), (6, 7));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // The peer's connection becomes the session.
    assert_eq!(next_message(&mut theirs).await, Message::Keepalive);
    let RibInput::PeerUp(_) = next_rib(&mut harness.rib).await else {
        panic!("expected PeerUp")
    };
    wait_state(&harness.handle, bgp_proto::fsm::State::Established).await;
    let status = harness.handle.status.get();
    assert_eq!(status.connection.unwrap().info().initiator, "remote");
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_dropped_by_the_send_hold_timer() {
    // The peer reads nothing after the OPEN exchange but keeps sending KEEPALIVEs:
    // our reading goes on (the hold timer never fires) while our writes stall, and
    // the send hold timer (RFC 9687) closes the session.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let mut settings = settings(listener.local_addr().unwrap().port(), false);
    settings.session.send_hold_time = Some(10);
    let mut harness = start(settings);
    let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut peer = Framed::new(stream, BgpCodec::new(SessionContext::default()));
    let context = open_session(&mut peer, false).await;
    let RibInput::PeerUp(up) = next_rib(&mut harness.rib).await else {
        panic!("expected PeerUp")
    };
    // Keepalives from the peer, every second, without reading anything.
    let (_, mut sink) = {
        let parts = peer.into_parts();
        let (read, write) = parts.io.into_split();
        (
            read,
            tokio_util::codec::FramedWrite::new(write, BgpCodec::new(context)),
        )
    };
    let keepalives = tokio::spawn(async move {
        loop {
            if sink.send(Message::Keepalive).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    // The rib sends far more than the socket buffers hold.
    let one = update("10.4.0.0/24", &context);
    let mut batch = BytesMut::new();
    while batch.len() < 1 << 20 {
        batch.extend_from_slice(&one);
    }
    let batch = batch.freeze();
    let feeder = tokio::spawn(async move {
        for _ in 0..64 {
            if up
                .outbound
                .send(Box::new(Outbound::Updates(batch.clone())))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    // The session goes down for the send hold timer, not the hold timer.
    loop {
        match tokio::time::timeout(Duration::from_secs(60), harness.rib.recv()).await {
            Ok(Some(RibInput::PeerDown { peer: 7, .. })) => break,
            Ok(Some(RibInput::Drained { .. })) => continue,
            other => panic!("expected PeerDown, got {other:?}"),
        }
    }
    let status = harness.handle.status.get();
    let reason = status.last_error.unwrap().reason;
    assert!(reason.contains("send hold timer expired"), "{reason}");
    keepalives.abort();
    feeder.abort();
}

#[tokio::test]
async fn rfc7606_treat_as_withdraw_and_session_reset() {
    let (mut harness, mut peer) = connected(|port| settings(port, false)).await;
    let context = open_session(&mut peer, false).await;
    assert!(matches!(
        next_rib(&mut harness.rib).await,
        RibInput::PeerUp(_)
    ));

    // ORIGIN 3 (the FRR incident): treat-as-withdraw, the session stays.
    let mut bad_origin = update("10.5.0.0/24", &context).to_vec();
    // Header, withdrawn length, attributes length, then ORIGIN: flags, type, length, value.
    assert_eq!(&bad_origin[23..26], &[0x40, 1, 1]);
    bad_origin[26] = 3;
    peer.send(bytes::Bytes::from(bad_origin)).await.unwrap();
    match next_rib(&mut harness.rib).await {
        RibInput::Update {
            treat_as_withdraw: true,
            update,
            ..
        } => assert_eq!(update.nlri[0].net.to_string(), "10.5.0.0/24"),
        other => panic!("expected a treat-as-withdraw Update, got {other:?}"),
    }
    assert_eq!(
        harness.handle.status.read(|s| s.state),
        bgp_proto::fsm::State::Established
    );

    // A prefix longer than 32 bits cannot be parsed: NOTIFICATION 3/10, session down.
    let mut bad_nlri = update("10.6.0.0/24", &context).to_vec();
    let at = bad_nlri.len() - 4;
    assert_eq!(bad_nlri[at], 24);
    bad_nlri[at] = 33;
    peer.send(bytes::Bytes::from(bad_nlri)).await.unwrap();
    match next_non_keepalive(&mut peer).await {
        Message::Notification(n) => assert_eq!((n.code, n.subcode), (3, 10)),
        other => panic!("expected NOTIFICATION 3/10, got {other:?}"),
    }
    assert!(matches!(
        next_rib(&mut harness.rib).await,
        RibInput::PeerDown {
            peer: 7,
            stale_for: None
        }
    ));
}

#[tokio::test]
async fn a_returning_peer_cuts_the_restart_delay_short() {
    let harness = start(settings(179, true));
    wait_state(&harness.handle, bgp_proto::fsm::State::Active).await;
    // First connection: the peer sends an OPEN with a bad AS; we refuse it (2/2)
    // and wait out a restart delay in Idle.
    let mut peer = peer_connects(&harness).await;
    assert!(matches!(next_message(&mut peer).await, Message::Open(_)));
    let wrong = Message::Open(Open::new(65099, 9, Ipv4Addr::new(10, 0, 0, 2), vec![]));
    peer.send(&wrong).await.unwrap();
    match next_message(&mut peer).await {
        Message::Notification(n) => assert_eq!((n.code, n.subcode), (2, 2)),
        other => panic!("expected NOTIFICATION 2/2, got {other:?}"),
    }
    wait_state(&harness.handle, bgp_proto::fsm::State::Idle).await;
    // The peer connects again at once: the session takes it.
    let mut peer = peer_connects(&harness).await;
    assert!(matches!(next_message(&mut peer).await, Message::Open(_)));
}

/// A session that could not read for longer than its hold time (its task waited for
/// room in the rib's channel) reads what arrived before its hold timer may expire:
/// the peer's KEEPALIVEs were on time, they were only unread. Before the fix the
/// timer and the waiting frames were ready together and `select!` picked one at
/// random: this test failed 1 run in 6 then.
#[tokio::test]
async fn hold_timer_reads_what_arrived_while_the_session_was_busy() {
    let (mut harness, mut peer) = connected(|port| {
        let mut settings = settings(port, false);
        settings.session.hold_time = HoldTime::new(3).unwrap();
        settings
    })
    .await;
    let context = open_session(&mut peer, false).await;
    let RibInput::PeerUp(_up) = next_rib(&mut harness.rib).await else {
        panic!("expected PeerUp")
    };
    wait_state(&harness.handle, bgp_proto::fsm::State::Established).await;

    // More UPDATEs than the rib's channel holds (64): the session task waits for room.
    let sent = 80;
    for i in 0..sent {
        peer.send(update(&format!("10.1.{i}.0/24"), &context))
            .await
            .unwrap();
    }
    // The peer's KEEPALIVEs keep coming on time, for twice the hold time.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peer.send(Message::Keepalive).await.unwrap();
    }
    // Room again: the session reads its backlog, every UPDATE reaches the rib, and
    // the session stays up.
    for _ in 0..sent {
        match next_rib(&mut harness.rib).await {
            RibInput::Update { .. } => {}
            other => panic!("expected Update, got {other:?}"),
        }
    }
    let quiet = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(message) = tokio::time::timeout_at(quiet, next_message(&mut peer)).await {
        assert_eq!(message, Message::Keepalive, "the session ended");
    }
    assert_eq!(
        harness.handle.status.read(|s| s.state),
        bgp_proto::fsm::State::Established
    );
}

/// A session that takes a batch while the rib's channel is full owes the rib its
/// `Drained` and goes on meanwhile (reading, writing, answering commands), sending it
/// when there is room; it used to wait for that room inside the turn.
#[tokio::test]
async fn drained_waits_for_room_in_the_rib_without_stopping_the_session() {
    let (mut harness, mut peer) = connected(|port| settings(port, false)).await;
    let context = open_session(&mut peer, false).await;
    let RibInput::PeerUp(up) = next_rib(&mut harness.rib).await else {
        panic!("expected PeerUp")
    };
    wait_state(&harness.handle, bgp_proto::fsm::State::Established).await;

    // The peer's UPDATEs fill the rib's channel (64), which nobody reads for now.
    let capacity = harness.rib.max_capacity();
    for i in 0..capacity {
        peer.send(update(&format!("10.1.{i}.0/24"), &context))
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while harness.rib.len() < capacity {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the channel never filled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A batch from the rib goes out to the peer, and a command is answered, while
    // the Drained it owes waits.
    batch_reaches_the_peer(&up, &mut peer, "10.2.0.0/24", &context).await;
    let (reply, answer) = tokio::sync::oneshot::channel();
    harness
        .handle
        .commands
        .send(SessionCommand::Refresh { reply })
        .await
        .unwrap();
    tokio::time::timeout(WAIT, answer)
        .await
        .expect("the session answered no command while it owed the rib")
        .unwrap()
        .unwrap();

    // Room again: the UPDATEs, then the Drained.
    for _ in 0..capacity {
        match next_rib(&mut harness.rib).await {
            RibInput::Update { .. } => {}
            other => panic!("expected Update, got {other:?}"),
        }
    }
    assert!(matches!(
        next_rib(&mut harness.rib).await,
        RibInput::Drained { peer: 7 }
    ));
}
