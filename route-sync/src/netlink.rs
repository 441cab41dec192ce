//! The request socket: batches of route requests in one sendmsg, their
//! errors collected afterwards, and dumps.
//!
//! Calling contract: only the syncer task holds a `RequestSocket`. A batch
//! asks the kernel to acknowledge only its last request; every other request
//! answers only when it fails. The kernel handles a sendmsg to rtnetlink
//! synchronously, so when `execute` returns all answers have been read. If
//! answers were lost (ENOBUFS) `execute` fails and the caller must dump the
//! kernel again to learn what happened.

use std::future::poll_fn;
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use netlink_packet_core::{
    Emitable, ErrorBuffer, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP_INTR, NLMSG_ALIGNTO,
    NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NlasIterator,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{AsyncSocket, SocketAddr, TokioSocket, protocols::NETLINK_ROUTE};

use crate::error::Error;

/// Requests are sent in datagrams of about this size (the kernel allows up
/// to the socket's send buffer, 208 KiB by default).
pub(crate) const BATCH_BYTES: usize = 64 * 1024;
/// Receive buffer asked for with SO_RCVBUFFORCE (CAP_NET_ADMIN).
pub(crate) const RECEIVE_BUFFER: usize = 16 * 1024 * 1024;
const RECV_SIZE: usize = 64 * 1024;
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// `NLMSGERR_ATTR_MSG` of linux/netlink.h (enum nlmsgerr_attrs), the extended
/// ack's text; netlink-packet-core and libc do not name it.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// The kernel's answer to one request of a batch that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Position of the request in its batch.
    pub index: usize,
    pub errno: i32,
    /// The kernel's extended ack message, if any.
    pub detail: Option<String>,
}

/// A batch being filled: requests numbered from `first_seq`.
#[derive(Debug)]
pub(crate) struct Batch {
    pub buffer: Vec<u8>,
    pub first_seq: u32,
    pub count: usize,
    last_offset: usize,
}

impl Batch {
    /// Sequence number for the next request.
    pub(crate) fn next_seq(&self) -> u32 {
        self.first_seq.wrapping_add(self.count as u32)
    }

    /// Records that one request was appended at `offset`.
    pub(crate) fn pushed(&mut self, offset: usize) {
        self.last_offset = offset;
        self.count += 1;
    }

    pub(crate) fn is_full(&self) -> bool {
        self.buffer.len() >= BATCH_BYTES
    }

    /// Asks the kernel to acknowledge the last request.
    fn ack_last(&mut self) {
        if let Some(last) = self.buffer.get_mut(self.last_offset..)
            && let Ok(mut header) = NetlinkBuffer::new_checked(last)
        {
            let flags = header.flags() | NLM_F_ACK;
            header.set_flags(flags);
        }
    }
}

/// The netlink socket requests and dumps go through.
pub(crate) struct RequestSocket {
    socket: TokioSocket,
    portid: u32,
    seq: u32,
    receive: Vec<u8>,
    /// The buffer of the last batch, kept for the next one.
    spare: Vec<u8>,
}

impl std::fmt::Debug for RequestSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSocket")
            .field("portid", &self.portid)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl RequestSocket {
    /// Opens and binds a NETLINK_ROUTE socket (needs a tokio runtime).
    pub(crate) fn open() -> Result<RequestSocket, Error> {
        let socket = open_socket("opening the rtnetlink request socket")?;
        let context = "setting options on the rtnetlink request socket";
        let raw = socket.socket_ref();
        raw.set_cap_ack(true).map_err(|e| Error::io(context, e))?;
        raw.set_ext_ack(true).map_err(|e| Error::io(context, e))?;
        raw.set_netlink_get_strict_chk(true)
            .map_err(|e| Error::io(context, e))?;
        let mut address = SocketAddr::new(0, 0);
        raw.get_address(&mut address)
            .map_err(|e| Error::io(context, e))?;
        let portid = address.port_number();
        Ok(RequestSocket {
            socket,
            portid,
            seq: 1,
            receive: Vec::with_capacity(RECV_SIZE),
            spare: Vec::new(),
        })
    }

    /// The port id the kernel puts in notifications this socket caused.
    pub(crate) fn portid(&self) -> u32 {
        self.portid
    }

    /// A new batch with fresh sequence numbers.
    pub(crate) fn batch(&mut self) -> Batch {
        let mut buffer = std::mem::take(&mut self.spare);
        buffer.clear();
        buffer.reserve(BATCH_BYTES + 4096);
        Batch {
            buffer,
            first_seq: self.seq,
            count: 0,
            last_offset: 0,
        }
    }

    /// Keeps the buffer of a batch that was not sent for the next one.
    pub(crate) fn recycle(&mut self, batch: Batch) {
        self.spare = batch.buffer;
    }

    /// Sends a batch in one sendmsg and returns the requests that failed.
    pub(crate) async fn execute(&mut self, mut batch: Batch) -> Result<Vec<Refusal>, Error> {
        if batch.count == 0 {
            return Ok(Vec::new());
        }
        batch.ack_last();
        self.seq = batch.next_seq();
        let last_seq = batch.next_seq().wrapping_sub(1);
        self.send(&batch.buffer, "sending route requests").await?;
        let (first_seq, count) = (batch.first_seq, batch.count);
        self.recycle(batch);
        let mut refusals = Vec::new();
        let context = "reading the kernel's answers to route requests";
        loop {
            self.receive_datagram(context).await?;
            let mut finished = false;
            for message in messages(&self.receive) {
                if message.kind != NLMSG_ERROR {
                    continue;
                }
                let index = message.seq.wrapping_sub(first_seq) as usize;
                if index >= count {
                    continue;
                }
                let (errno, detail) = parse_error(&message);
                if errno != 0 {
                    refusals.push(Refusal {
                        index,
                        errno,
                        detail,
                    });
                }
                finished |= message.seq == last_seq;
            }
            if finished {
                return Ok(refusals);
            }
        }
    }

    /// Runs one dump; `on_message` sees every answer. Returns false when the
    /// kernel says the dump was interrupted by a change (run it again).
    pub(crate) async fn dump(
        &mut self,
        build: impl FnOnce(&mut Vec<u8>, u32),
        mut on_message: impl FnMut(RouteNetlinkMessage),
    ) -> Result<bool, Error> {
        let context = "dumping the kernel's routes and links";
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let mut request = Vec::new();
        build(&mut request, seq);
        self.send(&request, context).await?;
        let mut consistent = true;
        loop {
            self.receive_datagram(context).await?;
            for message in messages(&self.receive) {
                if message.seq != seq {
                    continue;
                }
                consistent &= message.flags & NLM_F_DUMP_INTR == 0;
                match message.kind {
                    NLMSG_DONE => return Ok(consistent),
                    NLMSG_ERROR => {
                        let (errno, detail) = parse_error(&message);
                        if errno == libc::EPERM || errno == libc::EACCES {
                            return Err(Error::Permission { context });
                        }
                        return Err(Error::Kernel {
                            context,
                            message: format!(
                                "{}{}",
                                io::Error::from_raw_os_error(errno),
                                detail.map(|d| format!(": {d}")).unwrap_or_default()
                            ),
                        });
                    }
                    _ => match NetlinkMessage::<RouteNetlinkMessage>::deserialize(message.bytes) {
                        Ok(NetlinkMessage {
                            payload: NetlinkPayload::InnerMessage(inner),
                            ..
                        }) => on_message(inner),
                        Ok(_) => {}
                        Err(error) => {
                            return Err(Error::Decode {
                                context,
                                detail: error.to_string(),
                            });
                        }
                    },
                }
            }
        }
    }

    async fn send(&self, buffer: &[u8], context: &'static str) -> Result<(), Error> {
        poll_fn(|cx| self.socket.poll_send(cx, buffer))
            .await
            .map(|_| ())
            .map_err(|e| Error::io(context, e))
    }

    /// Reads one datagram into `self.receive`, waiting at most ANSWER_TIMEOUT.
    async fn receive_datagram(&mut self, context: &'static str) -> Result<(), Error> {
        self.receive.clear();
        // The kernel answers during sendmsg, so the answer is usually there.
        match self
            .socket
            .socket_ref()
            .recv(&mut self.receive, libc::MSG_TRUNC)
        {
            Ok(length) => return check_length(length, self.receive.len(), context),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(Error::io(context, error)),
        }
        let (socket, receive) = (&self.socket, &mut self.receive);
        let wait = poll_fn(|cx| {
            receive.clear();
            socket.poll_recv(cx, receive)
        });
        match tokio::time::timeout(ANSWER_TIMEOUT, wait).await {
            Ok(Ok(())) if self.receive.len() == self.receive.capacity() => Err(Error::Decode {
                context,
                detail: format!(
                    "a datagram filled the whole {}-byte buffer",
                    self.receive.len()
                ),
            }),
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Error::io(context, error)),
            Err(_) => Err(Error::Timeout {
                context,
                seconds: ANSWER_TIMEOUT.as_secs(),
            }),
        }
    }
}

/// Opens a non-blocking NETLINK_ROUTE socket with a large receive buffer.
pub(crate) fn open_socket(context: &'static str) -> Result<TokioSocket, Error> {
    let mut socket = TokioSocket::new(NETLINK_ROUTE).map_err(|e| Error::io(context, e))?;
    let raw = socket.socket_mut();
    raw.bind_auto().map_err(|e| Error::io(context, e))?;
    let size = RECEIVE_BUFFER;
    if nix::sys::socket::setsockopt(&raw.as_fd(), nix::sys::socket::sockopt::RcvBufForce, &size)
        .is_err()
    {
        // Without CAP_NET_ADMIN only up to net.core.rmem_max.
        raw.set_rx_buf_sz(RECEIVE_BUFFER as libc::c_int)
            .map_err(|e| Error::io(context, e))?;
    }
    Ok(socket)
}

/// A datagram longer than the buffer would have been cut.
fn check_length(length: usize, kept: usize, context: &'static str) -> Result<(), Error> {
    if length > kept {
        return Err(Error::Decode {
            context,
            detail: format!("a {length}-byte datagram does not fit the {kept}-byte buffer"),
        });
    }
    Ok(())
}

/// One netlink message inside a datagram.
#[derive(Debug)]
pub(crate) struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// The whole message, header included.
    pub bytes: &'a [u8],
    /// What follows the header.
    pub payload: &'a [u8],
}

/// Splits a datagram into messages (netlink-packet-core's header checks),
/// stopping at the first malformed one.
pub(crate) fn messages(datagram: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        let Ok(buffer) = NetlinkBuffer::new_checked(rest) else {
            rest = &[];
            return None;
        };
        let length = buffer.length() as usize;
        let message = Message {
            kind: buffer.message_type(),
            flags: buffer.flags(),
            seq: buffer.sequence_number(),
            bytes: &rest[..length],
            payload: buffer.payload(),
        };
        rest = rest.get(aligned(length)..).unwrap_or(&[]);
        Some(message)
    })
}

/// `length` rounded up to the netlink alignment (NLMSG_ALIGN).
fn aligned(length: usize) -> usize {
    let to = usize::from(NLMSG_ALIGNTO);
    length.div_ceil(to) * to
}

/// The errno (positive, 0 for an ack) and extended ack text of NLMSG_ERROR.
fn parse_error(message: &Message<'_>) -> (i32, Option<String>) {
    let Ok(error) = ErrorBuffer::new_checked(message.payload) else {
        return (libc::EIO, Some("truncated error message".into()));
    };
    let errno = -error.code().map_or(0, i32::from);
    if message.flags & NLM_F_ACK_TLVS == 0 {
        return (errno, None);
    }
    // The request's header follows, alone when capped, else the whole request.
    let request = error.payload();
    let request_length = match NetlinkBuffer::new_checked(request) {
        Ok(whole) if message.flags & NLM_F_CAPPED == 0 => whole.length() as usize,
        _ => NetlinkHeader::default().buffer_len(),
    };
    let tlvs = request.get(aligned(request_length)..).unwrap_or(&[]);
    for attribute in NlasIterator::new(tlvs) {
        let Ok(attribute) = attribute else { break };
        if attribute.kind() == NLMSGERR_ATTR_MSG {
            let text = attribute.value().split(|b| *b == 0).next().unwrap_or(&[]);
            return (errno, Some(String::from_utf8_lossy(text).into_owned()));
        }
    }
    (errno, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_capped_error_with_extended_ack() {
        // NLMSG_ERROR for seq 9 as the kernel sends it with NETLINK_CAP_ACK and
        // NETLINK_EXT_ACK (net/netlink/af_netlink.c netlink_ack): nlmsghdr,
        // error -17, the request's nlmsghdr, then NLMSGERR_ATTR_MSG "Nexthop has invalid gateway".
        let text = b"Nexthop has invalid gateway\0";
        let attribute_length = 4 + text.len();
        let total = 16 + 4 + 16 + ((attribute_length + 3) & !3);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(total as u32).to_ne_bytes());
        bytes.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        bytes.extend_from_slice(&(NLM_F_CAPPED | NLM_F_ACK_TLVS).to_ne_bytes());
        bytes.extend_from_slice(&9u32.to_ne_bytes());
        bytes.extend_from_slice(&77u32.to_ne_bytes());
        bytes.extend_from_slice(&(-17i32).to_ne_bytes());
        bytes.extend_from_slice(&[68, 0, 0, 0, 24, 0, 1, 6, 9, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&(attribute_length as u16).to_ne_bytes());
        bytes.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        bytes.extend_from_slice(text);
        bytes.resize(total, 0);
        // A second message (an ack for seq 10) in the same datagram.
        let mut ack = vec![36, 0, 0, 0, 2, 0, 0, 1, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        ack.extend_from_slice(&[68, 0, 0, 0, 24, 0, 1, 6, 10, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&ack);
        let all: Vec<_> = messages(&bytes).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].seq, 9);
        assert_eq!(
            parse_error(&all[0]),
            (libc::EEXIST, Some("Nexthop has invalid gateway".into()))
        );
        assert_eq!(all[1].seq, 10);
        assert_eq!(parse_error(&all[1]), (0, None));
    }

    #[test]
    fn malformed_datagrams_end_iteration() {
        assert_eq!(messages(&[1, 2, 3]).count(), 0);
        assert_eq!(
            messages(&[200, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]).count(),
            0
        );
        assert_eq!(
            messages(&[4, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]).count(),
            0
        );
    }
}
