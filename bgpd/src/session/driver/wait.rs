//! The futures a session task waits on at once (`Driver::wait`): its connections'
//! frames, our connection attempt, the next timer, the rib's UPDATEs, and the seldom
//! ones boxed only while they exist.

use super::*;

/// What a connection has to say: a frame (or its end), or write progress.
#[allow(clippy::large_enum_variant)]
pub(super) enum ConnectionEvent {
    Frame(Option<Result<Frame, FramingError>>),
    Progress,
}

impl ConnectionEvent {
    pub(super) fn wake(self, which: Which) -> Wake {
        match self {
            ConnectionEvent::Frame(frame) => Wake::Frame(which, frame),
            ConnectionEvent::Progress => Wake::Progress(which),
        }
    }
}

pub(super) async fn connection_event(conn: Option<&mut Connection>) -> ConnectionEvent {
    let Some(conn) = conn else {
        return std::future::pending().await;
    };
    let Connection { reader, writer, .. } = conn;
    tokio::select! {
        frame = reader.next_frame() => ConnectionEvent::Frame(frame),
        // A writer that ended (its socket failed) makes no more progress; the reader
        // will tell.
        () = writer.progressed() => ConnectionEvent::Progress,
    }
}

/// What wakes a session seldom: the secondary connection of a collision, room in the
/// rib's channel for the `Drained` owed, a change of the followed BFD session. Their
/// futures are boxed for one wait, and only while one of them is there (a session
/// that follows BFD allocates it at each wait, as it does each turn): inline, they
/// made every session's task about 440 bytes larger (issue 18's memory per session).
pub(super) type Seldom<'a> = Pin<Box<dyn Future<Output = Wake> + Send + 'a>>;

pub(super) fn seldom<'a>(
    secondary: Option<&'a mut Connection>,
    drained: Option<(&'a mpsc::Sender<RibInput>, PeerId)>,
    bfd: Option<&'a mut crate::bfd_task::Subscription>,
) -> Option<Seldom<'a>> {
    if secondary.is_none() && drained.is_none() && bfd.is_none() {
        return None;
    }
    Some(Box::pin(async move {
        tokio::select! {
            event = connection_event(secondary) => event.wake(Which::Secondary),
            () = tell_drained(drained) => Wake::DrainedTold,
            () = bfd::changed(bfd) => Wake::Bfd,
        }
    }))
}

pub(super) async fn poll_seldom(seldom: Option<&mut Seldom<'_>>) -> Wake {
    match seldom {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// Sends the `Drained` owed once the rib's channel has room (or the rib is gone);
/// forever without one.
pub(super) async fn tell_drained(drained: Option<(&mpsc::Sender<RibInput>, PeerId)>) {
    let Some((rib, peer)) = drained else {
        return std::future::pending().await;
    };
    if let Ok(permit) = rib.reserve().await {
        permit.send(RibInput::Drained { peer });
    }
}

pub(super) async fn poll_connecting(connecting: Option<&mut Connecting>) -> io::Result<TcpStream> {
    match connecting {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

pub(super) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

pub(super) async fn recv_outbound(up: Option<&mut Up>) -> Option<Outbound> {
    match up {
        Some(up) => up.outbound.recv().await.map(|item| *item),
        None => std::future::pending().await,
    }
}
