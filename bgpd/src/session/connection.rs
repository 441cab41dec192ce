//! One TCP connection of a session: reading and writing run apart, so a peer that
//! stops reading (TCP zero window) never stops us from reading its KEEPALIVEs.
//!
//! - Reading: a `FramedRead` over the read half, polled by the session task itself,
//!   with [`SessionCodec`]: bgp-proto's framing (`frame_length`, the context's
//!   maximum length) and `decode_message` with the context the session sets before
//!   each read, yielding the frame's bytes too (for logs of malformed messages).
//! - Writing: a writer task owns the write half. Messages of the state machine
//!   (OPEN, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH) go on an urgent queue that is
//!   written first; UPDATEs on a small bounded queue ([`UPDATE_QUEUE`] batches; the
//!   session takes from the rib's outbound channel only while it has room). After
//!   each completed write the task reports progress (RFC 9687 send hold timer),
//!   coalesced into one wake-up.
//!
//!   Both queues live in one [`WriteQueue`] shared by the session and its writer (a
//!   mutex held for a push or a pop, never across an await, and two `Notify`s): a
//!   connection costs a few hundred bytes of queue until something is queued, where
//!   three tokio channels cost about 4 KiB each connection (every mpsc channel
//!   allocates a block of 32 slots up front), which mattered at thousands of
//!   sessions (issue 18).
//!
//!   The urgent queue is the daemon's one unbounded queue, on purpose: the state
//!   machine's actions are executed without waiting, and what it queues is small
//!   and paced by its timers. Its length has a bound all the same: a peer that stops
//!   reading lets at most one KEEPALIVE per keepalive interval pile up until the
//!   send hold timer (RFC 9687, `send_hold_time`) closes the connection, and every
//!   other message there is one per state change.
//! - Reading starts with a [`READ_BUFFER`]-byte buffer, which grows to the frame being
//!   read (bgp-proto's codec reserves a whole frame once its header is in): most
//!   sessions of a large mesh only ever read an OPEN, a few small UPDATEs and
//!   KEEPALIVEs.
//! - Closing: [`Connection::close`] with flush writes the urgent queue (the
//!   NOTIFICATION last; at most [`FLUSH_TIMEOUT`]) then shuts the socket down; abort
//!   drops the queues and closes at once.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bgp_proto::codec::BgpCodec;
use bgp_proto::{Decoded, FramingError, Malformed, SessionContext, decode_message, frame_length};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::codec::{Decoder, FramedRead};

/// Longest a closing connection may take to write what is queued.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// UPDATE batches queued toward the writer.
pub const UPDATE_QUEUE: usize = 4;
/// The read buffer's first size (bytes); it grows to the longest frame read.
pub const READ_BUFFER: usize = 1024;

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
    queue: SessionEnd,
    task: JoinHandle<()>,
}

impl Writer {
    /// Completes once a write has completed since the last time it completed (many
    /// writes wake it once).
    pub async fn progressed(&self) {
        self.queue.progress.notified().await;
    }
}

/// The session's hold on the queue: once it is dropped, the writer task writes what
/// is urgent and ends (as when a channel's senders are gone).
#[derive(Debug)]
struct SessionEnd(Arc<WriteQueue>);

impl std::ops::Deref for SessionEnd {
    type Target = WriteQueue;
    fn deref(&self) -> &WriteQueue {
        &self.0
    }
}

impl Drop for SessionEnd {
    fn drop(&mut self) {
        self.0.lock().dropped = true;
        self.0.wake_writer.notify_one();
    }
}

/// What the session queued for its writer task.
#[derive(Debug, Default)]
struct WriteQueue {
    state: Mutex<Queued>,
    /// The writer task waits on it for something queued.
    wake_writer: Notify,
    /// The session waits on it for write progress.
    progress: Notify,
}

#[derive(Debug, Default)]
struct Queued {
    urgent: VecDeque<WriteItem>,
    updates: VecDeque<Bytes>,
    /// The session's end is gone: write what is urgent, then end.
    dropped: bool,
}

impl WriteQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queued> {
        // Nothing panics while holding the lock (pushes and pops); a poisoned lock
        // still holds consistent queues.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push_urgent(&self, item: WriteItem) {
        self.lock().urgent.push_back(item);
        self.wake_writer.notify_one();
    }

    /// The next thing to write, urgent first; `None` when the writer should end.
    async fn next(&self) -> Option<WriteItem> {
        loop {
            {
                let mut queued = self.lock();
                if let Some(item) = queued.urgent.pop_front() {
                    return Some(item);
                }
                if queued.dropped {
                    return None;
                }
                if let Some(bytes) = queued.updates.pop_front() {
                    return Some(WriteItem::Bytes(bytes));
                }
            }
            // A push between the look above and this wait leaves a permit: no
            // wake-up is lost.
            self.wake_writer.notified().await;
        }
    }
}

#[derive(Debug)]
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
        let queue = Arc::new(WriteQueue::default());
        let task = tokio::spawn(write_loop(write, queue.clone()));
        Ok(Connection {
            reader: FramedRead::with_capacity(read, SessionCodec::new(context), READ_BUFFER),
            writer: Writer {
                queue: SessionEnd(queue),
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
        self.writer.queue.push_urgent(WriteItem::Bytes(bytes));
    }

    /// True when an UPDATE batch can be queued without waiting.
    pub fn has_room(&self) -> bool {
        self.writer.queue.lock().updates.len() < UPDATE_QUEUE
    }

    /// Queues UPDATEs; call only when [`Connection::has_room`].
    pub fn send_updates(&self, bytes: Bytes) {
        {
            let mut queued = self.writer.queue.lock();
            if queued.updates.len() >= UPDATE_QUEUE {
                tracing::debug!("writer queue full; UPDATE batch dropped with the connection");
                return;
            }
            queued.updates.push_back(bytes);
        }
        self.writer.queue.wake_writer.notify_one();
    }

    /// Closes the connection. With `flush`, the writer writes what is queued first
    /// (bounded by [`FLUSH_TIMEOUT`]); the returned handle ends when it is done.
    pub fn close(self, flush: bool) -> Option<JoinHandle<()>> {
        let Connection { reader, writer, .. } = self;
        drop(reader);
        if flush {
            writer.queue.push_urgent(WriteItem::Close);
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

async fn write_loop(mut write: OwnedWriteHalf, queue: Arc<WriteQueue>) {
    while let Some(item) = queue.next().await {
        match item {
            WriteItem::Bytes(bytes) => {
                if let Err(error) = write.write_all(&bytes).await {
                    tracing::debug!("write failed: {error}");
                    return;
                }
                queue.progress.notify_one();
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
