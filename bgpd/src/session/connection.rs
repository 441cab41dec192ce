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
//!   coalesced into one wake-up. The UPDATE batches queued when the writer takes one
//!   go out with it in one vectored write (unless something urgent waits): a route
//!   reflector's clients are sent many small batches, and a write per batch made
//!   the kernel's TCP path most of its CPU (issue 18).
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
//! - Reading ([`Reader`]) holds no buffer while the socket has nothing to read: once
//!   the socket is readable it takes a [`READ_BUFFER`]-byte buffer, which grows to the
//!   frame being read (bgp-proto's codec reserves a whole frame once its header is
//!   in), and gives it back when every byte read was decoded. A session waits for
//!   its next KEEPALIVE almost all the time, and thousands of them each held a
//!   buffer for it (issue 18's memory per session).
//! - The queues give their memory back once empty: they hold a KEEPALIVE or a batch
//!   for a moment, then nothing until the next one.
//! - Closing: [`Connection::close`] with flush writes the urgent queue (the
//!   NOTIFICATION last; at most [`FLUSH_TIMEOUT`]) then shuts the socket down; abort
//!   drops the queues and closes at once.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bgp_proto::codec::BgpCodec;
use bgp_proto::{Decoded, FramingError, Malformed, SessionContext, decode_message, frame_length};
use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::codec::{Decoder, FramedRead};

/// Longest a closing connection may take to write what is queued.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// UPDATE batches queued toward the writer: the one it may take next while it
/// writes, and one more so the session can take the rib's next batch meanwhile.
pub const UPDATE_QUEUE: usize = 2;
/// The read buffer's size (bytes) when the socket becomes readable; it grows to the
/// frame being read, and is given back once everything read is decoded.
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
    pub reader: Reader,
    pub writer: Writer,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// The reading side: frames decoded from a buffer that exists only while there is
/// something to decode.
#[derive(Debug)]
pub struct Reader {
    framed: FramedRead<OwnedReadHalf, SessionCodec>,
}

impl Reader {
    fn new(read: OwnedReadHalf, codec: SessionCodec) -> Reader {
        Reader {
            framed: FramedRead::with_capacity(read, codec, 0),
        }
    }

    /// The next frame; `None` when the peer closed the connection. Cancel-safe: what
    /// was read stays in the buffer for the next call.
    pub async fn next_frame(&mut self) -> Option<Result<Frame, FramingError>> {
        if self.framed.read_buffer().is_empty() {
            // Nothing half-read: no buffer while the socket has nothing to read.
            std::future::poll_fn(|context| self.poll_readable(context)).await;
            if self.framed.read_buffer().capacity() == 0 {
                *self.framed.read_buffer_mut() = BytesMut::with_capacity(READ_BUFFER);
            }
        }
        self.framed.next().await
    }

    /// Ready when the socket has bytes, its end or an error to read (the read that
    /// follows tells which); the buffer is given back while it has none.
    fn poll_readable(&mut self, context: &mut Context<'_>) -> Poll<()> {
        let mut byte = [0; 1];
        let mut peeked = ReadBuf::new(&mut byte);
        match self.framed.get_mut().poll_peek(context, &mut peeked) {
            Poll::Ready(_) => Poll::Ready(()),
            Poll::Pending => {
                if self.framed.read_buffer().capacity() > 0 {
                    // The frames read keep their own part of it.
                    *self.framed.read_buffer_mut() = BytesMut::new();
                }
                Poll::Pending
            }
        }
    }

    fn codec(&self) -> &SessionCodec {
        self.framed.decoder()
    }

    fn codec_mut(&mut self) -> &mut SessionCodec {
        self.framed.decoder_mut()
    }
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

    /// Moves the queued UPDATE batches to `batches`, unless something urgent is
    /// queued (it is written first).
    fn take_updates(&self, batches: &mut Batches) {
        let mut queued = self.lock();
        if queued.urgent.is_empty() {
            for bytes in queued.updates.drain(..) {
                batches.push(bytes);
            }
            release(&mut queued.updates);
        }
    }

    /// The next thing to write, urgent first; `None` when the writer should end.
    async fn next(&self) -> Option<WriteItem> {
        loop {
            {
                let mut queued = self.lock();
                if let Some(item) = queued.urgent.pop_front() {
                    release(&mut queued.urgent);
                    return Some(item);
                }
                if queued.dropped {
                    return None;
                }
                if let Some(bytes) = queued.updates.pop_front() {
                    release(&mut queued.updates);
                    return Some(WriteItem::Bytes(bytes));
                }
            }
            // A push between the look above and this wait leaves a permit: no
            // wake-up is lost.
            self.wake_writer.notified().await;
        }
    }
}

/// Gives an emptied queue's memory back: a connection's queues are empty nearly all
/// the time, and thousands of connections each kept the room of their busiest moment.
fn release<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > 0 {
        *queue = VecDeque::new();
    }
}

/// Buffers written with one vectored write (tokio's `write_all_buf` over a TCP
/// stream uses `writev`).
#[derive(Debug, Default)]
struct Batches {
    queued: VecDeque<Bytes>,
    remaining: usize,
}

impl Batches {
    fn push(&mut self, bytes: Bytes) {
        self.remaining += bytes.len();
        self.queued.push_back(bytes);
    }
}

impl Buf for Batches {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.queued.front().map_or(&[], |bytes| bytes.as_ref())
    }

    fn chunks_vectored<'a>(&'a self, out: &mut [io::IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slot, bytes) in out.iter_mut().zip(&self.queued) {
            *slot = io::IoSlice::new(bytes);
            filled += 1;
        }
        filled
    }

    fn advance(&mut self, mut count: usize) {
        self.remaining -= count.min(self.remaining);
        while count > 0 {
            let Some(front) = self.queued.front_mut() else {
                return;
            };
            if count < front.len() {
                front.advance(count);
                return;
            }
            count -= front.len();
            self.queued.pop_front();
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
            reader: Reader::new(read, SessionCodec::new(context)),
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
        self.reader.next_frame().await
    }

    /// Sets the context the next message is decoded with.
    pub fn set_context(&mut self, context: SessionContext) {
        if *self.reader.codec().context() != context {
            self.reader.codec_mut().set_context(context);
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
    let mut batches = Batches::default();
    while let Some(item) = queue.next().await {
        match item {
            WriteItem::Bytes(bytes) => {
                // UPDATE batches queued behind this one go in the same write (one
                // system call, fewer and fuller TCP segments), unless something
                // urgent waits.
                batches.push(bytes);
                queue.take_updates(&mut batches);
                if let Err(error) = write.write_all_buf(&mut batches).await {
                    tracing::debug!("write failed: {error}");
                    return;
                }
                release(&mut batches.queued);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tokio::io::AsyncReadExt;

    #[test]
    fn batches_advance_across_buffers() {
        let mut batches = Batches::default();
        for text in ["abc", "de", "fghi"] {
            batches.push(Bytes::from(text));
        }
        let vectored = |batches: &Batches| {
            let mut slices = [io::IoSlice::new(&[]); 8];
            let filled = batches.chunks_vectored(&mut slices);
            slices[..filled]
                .iter()
                .map(|s| s.to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(batches.remaining(), 9);
        assert_eq!(vectored(&batches), [&b"abc"[..], b"de", b"fghi"]);
        batches.advance(4);
        assert_eq!((batches.remaining(), batches.chunk()), (5, &b"e"[..]));
        batches.advance(1);
        assert_eq!(batches.chunk(), b"fghi");
        let mut rest = Vec::new();
        while batches.has_remaining() {
            rest.extend_from_slice(batches.chunk());
            let len = batches.chunk().len();
            batches.advance(len);
        }
        assert_eq!(rest, b"fghi");
        assert!(vectored(&batches).is_empty());
    }

    /// Batches queued while the writer is away go out together, in order, after
    /// what is urgent.
    #[tokio::test]
    async fn queued_batches_are_written_in_order_after_urgent_messages() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stream, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        let (mut peer, _) = accepted.unwrap();
        let connection = Connection::new(stream.unwrap(), SessionContext::default()).unwrap();
        // Current-thread runtime: the writer task runs only once this test awaits,
        // so all of these are queued before it first looks.
        for text in ["one ", "two "] {
            assert!(connection.has_room());
            connection.send_updates(Bytes::from(text));
        }
        connection.send_urgent(Bytes::from("urgent "));
        let expected = b"urgent one two ";
        let mut received = vec![0; expected.len()];
        peer.read_exact(&mut received).await.unwrap();
        assert_eq!(received, expected);
        connection.writer.progressed().await;
    }

    fn keepalive() -> Vec<u8> {
        let mut bytes = vec![0xff; 16];
        bytes.extend_from_slice(&[0, 19, 4]);
        bytes
    }

    async fn pair() -> (Connection, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stream, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        let connection = Connection::new(stream.unwrap(), SessionContext::default()).unwrap();
        (connection, accepted.unwrap().0)
    }

    /// A connection waiting for its peer holds no read buffer, and reads what comes
    /// next all the same, a frame split across writes too.
    #[tokio::test]
    async fn an_idle_reader_holds_no_buffer() {
        let (mut connection, mut peer) = pair().await;
        assert_eq!(connection.reader.framed.read_buffer().capacity(), 0);
        peer.write_all(&keepalive()).await.unwrap();
        let (bytes, decoded) = connection.next_frame().await.unwrap().unwrap();
        assert_eq!(bytes.as_ref(), keepalive().as_slice());
        assert!(decoded.is_ok());
        assert!(connection.next_frame().now_or_never().is_none());
        assert_eq!(connection.reader.framed.read_buffer().capacity(), 0);

        let second = keepalive();
        peer.write_all(&second[..10]).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(200), connection.next_frame())
                .await
                .is_err()
        );
        peer.write_all(&second[10..]).await.unwrap();
        let (bytes, _) = connection.next_frame().await.unwrap().unwrap();
        assert_eq!(bytes.as_ref(), second.as_slice());
        drop(peer);
        assert!(connection.next_frame().await.is_none());
    }

    /// The writer's queues hold no memory once what was queued is written.
    #[tokio::test]
    async fn written_queues_give_their_memory_back() {
        let (connection, mut peer) = pair().await;
        connection.send_updates(Bytes::from("update "));
        connection.send_urgent(Bytes::from("urgent "));
        let mut received = vec![0; 14];
        peer.read_exact(&mut received).await.unwrap();
        assert_eq!(received, b"urgent update ");
        let queued = connection.writer.queue.lock();
        assert_eq!(
            (queued.urgent.capacity(), queued.updates.capacity()),
            (0, 0)
        );
    }
}
