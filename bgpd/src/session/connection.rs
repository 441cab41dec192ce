//! One TCP connection of a session: reading and writing run apart, so a peer that
//! stops reading (TCP zero window) never stops us from reading its KEEPALIVEs.
//!
//! - Reading: a `FramedRead` over the read half, polled by the session task itself,
//!   with [`SessionCodec`]: bgp-proto's framing (`frame_length`, the context's
//!   maximum length) and `decode_message` with the context the session sets before
//!   each read, yielding the frame's bytes too (for logs of malformed messages).
//! - Writing: a writer task owns the write half. Messages of the state machine
//!   (OPEN, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH) go on an urgent queue that is
//!   written first; UPDATEs on a small bounded queue (the session takes from the
//!   rib's outbound channel only while it has room). After each completed write the
//!   task reports progress (RFC 9687 send hold timer).
//!
//!   The urgent queue is the daemon's one unbounded channel, on purpose: the state
//!   machine's actions are executed without waiting, and what it queues is small
//!   and paced by its timers. Its length has a bound all the same: a peer that stops
//!   reading lets at most one KEEPALIVE per keepalive interval pile up until the
//!   send hold timer (RFC 9687, `send_hold_time`) closes the connection, and every
//!   other message there is one per state change.
//! - Closing: [`Connection::close`] with flush writes the urgent queue (the
//!   NOTIFICATION last; at most [`FLUSH_TIMEOUT`]) then shuts the socket down; abort
//!   drops the queues and closes at once.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bgp_proto::codec::BgpCodec;
use bgp_proto::{Decoded, FramingError, Malformed, SessionContext, decode_message, frame_length};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{Decoder, FramedRead};

/// Longest a closing connection may take to write what is queued.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// UPDATE batches queued toward the writer.
pub const UPDATE_QUEUE: usize = 4;

/// A received frame: its bytes and what they decode to.
pub type Frame = (Bytes, Result<Decoded, Malformed>);

/// The codec of a session's reading side.
#[derive(Debug)]
pub struct SessionCodec {
    inner: BgpCodec,
}

impl SessionCodec {
    pub fn new(context: SessionContext) -> SessionCodec {
        SessionCodec {
            inner: BgpCodec::new(context),
        }
    }

    pub fn set_context(&mut self, context: SessionContext) {
        self.inner.set_context(context);
    }

    pub fn context(&self) -> &SessionContext {
        self.inner.context()
    }
}

impl Decoder for SessionCodec {
    type Item = Frame;
    type Error = FramingError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        let context = *self.inner.context();
        match frame_length(src, context.max_message_len())? {
            Some(length) => {
                let frame = src.split_to(length).freeze();
                let decoded = decode_message(&frame, &context);
                Ok(Some((frame, decoded)))
            }
            // Incomplete: bgp-proto's codec reserves room for the rest.
            None => self.inner.decode(src).map(|_| None),
        }
    }
}

/// A connection in use by a state machine.
#[derive(Debug)]
pub struct Connection {
    pub reader: FramedRead<OwnedReadHalf, SessionCodec>,
    pub writer: Writer,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// The way to a connection's writer task.
#[derive(Debug)]
pub struct Writer {
    urgent: mpsc::UnboundedSender<WriteItem>,
    updates: mpsc::Sender<Bytes>,
    /// One message per completed write since the last look (coalesced).
    pub progress: mpsc::Receiver<()>,
    task: JoinHandle<()>,
}

enum WriteItem {
    Bytes(Bytes),
    Close,
}

impl Connection {
    /// Splits `stream` and starts its writer task.
    pub fn new(stream: TcpStream, context: SessionContext) -> io::Result<Connection> {
        let local = stream.local_addr()?;
        let remote = stream.peer_addr()?;
        let (read, write) = stream.into_split();
        let (urgent, urgent_rx) = mpsc::unbounded_channel();
        let (updates, updates_rx) = mpsc::channel(UPDATE_QUEUE);
        let (progress_tx, progress) = mpsc::channel(1);
        let task = tokio::spawn(write_loop(write, urgent_rx, updates_rx, progress_tx));
        Ok(Connection {
            reader: FramedRead::new(read, SessionCodec::new(context)),
            writer: Writer {
                urgent,
                updates,
                progress,
                task,
            },
            local,
            remote,
        })
    }

    /// The next frame; `None` when the peer closed the connection.
    pub async fn next_frame(&mut self) -> Option<Result<Frame, FramingError>> {
        self.reader.next().await
    }

    /// Sets the context the next message is decoded with.
    pub fn set_context(&mut self, context: SessionContext) {
        if *self.reader.decoder().context() != context {
            self.reader.decoder_mut().set_context(context);
        }
    }

    /// Queues a message of the state machine (written before queued UPDATEs).
    pub fn send_urgent(&self, bytes: Bytes) {
        // A writer that is gone has failed its socket; the reader sees it too.
        let _ = self.writer.urgent.send(WriteItem::Bytes(bytes));
    }

    /// True when an UPDATE batch can be queued without waiting.
    pub fn has_room(&self) -> bool {
        self.writer.updates.capacity() > 0
    }

    /// Queues UPDATEs; call only when [`Connection::has_room`].
    pub fn send_updates(&self, bytes: Bytes) {
        if self.writer.updates.try_send(bytes).is_err() {
            tracing::debug!("writer queue full or gone; UPDATE batch dropped with the connection");
        }
    }

    /// Closes the connection. With `flush`, the writer writes what is queued first
    /// (bounded by [`FLUSH_TIMEOUT`]); the returned handle ends when it is done.
    pub fn close(self, flush: bool) -> Option<JoinHandle<()>> {
        let Connection { reader, writer, .. } = self;
        drop(reader);
        if flush {
            let _ = writer.urgent.send(WriteItem::Close);
            // Bounded: a peer that does not read must not keep the task (and the
            // socket) forever.
            let abort = writer.task.abort_handle();
            tokio::spawn(async move {
                tokio::time::sleep(FLUSH_TIMEOUT).await;
                abort.abort();
            });
            Some(writer.task)
        } else {
            writer.task.abort();
            None
        }
    }
}

async fn write_loop(
    mut write: OwnedWriteHalf,
    mut urgent: mpsc::UnboundedReceiver<WriteItem>,
    mut updates: mpsc::Receiver<Bytes>,
    progress: mpsc::Sender<()>,
) {
    loop {
        let item = tokio::select! {
            biased;
            item = urgent.recv() => match item {
                Some(item) => item,
                None => return,
            },
            bytes = updates.recv() => match bytes {
                Some(bytes) => WriteItem::Bytes(bytes),
                None => return,
            },
        };
        match item {
            WriteItem::Bytes(bytes) => {
                if let Err(error) = write.write_all(&bytes).await {
                    tracing::debug!("write failed: {error}");
                    return;
                }
                let _ = progress.try_send(());
            }
            WriteItem::Close => {
                // Everything urgent before the close (the NOTIFICATION last) is
                // written; UPDATEs still queued are moot on a closing session.
                let _ = write.shutdown().await;
                return;
            }
        }
    }
}
