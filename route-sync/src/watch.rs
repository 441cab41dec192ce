//! The watch socket: rtnetlink multicast for links and IPv4/IPv6 routes.
//!
//! A socket filter drops notifications whose nlmsg_pid is the request
//! socket's port id: those echo our own requests, and a million installs
//! would otherwise come back as a million events. What remains are changes
//! made by others (a person, another daemon) and by the kernel itself
//! (pid 0: link down, address removal).

use std::future::poll_fn;
use std::io;
use std::os::fd::AsFd;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::RouteMessage;
use netlink_sys::{AsyncSocket, TokioSocket};
use socket2::{SockFilter, SockRef};

use crate::error::Error;
use crate::message::{KernelRoute, decode};
use crate::netlink::{messages, open_socket};

/// At most this many datagrams are read per call, so commands get a turn.
const DATAGRAMS_PER_CALL: usize = 4096;

/// Something that changed in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Route {
        deleted: bool,
        route: KernelRoute,
    },
    Link(Link),
    /// Notifications were lost: the kernel must be dumped again.
    Overrun,
}

/// A link's identity and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub index: u32,
    pub name: Option<String>,
    /// Administratively up (IFF_UP); the kernel flushes IPv4 routes of a
    /// link that goes down.
    pub up: bool,
    /// Has carrier (IFF_RUNNING, set by the kernel's linkwatch a moment
    /// after the link goes up); routes stay but are marked linkdown.
    pub running: bool,
    pub deleted: bool,
}

/// The multicast socket, owned by the syncer task.
pub(crate) struct WatchSocket {
    socket: TokioSocket,
    receive: Vec<u8>,
}

impl std::fmt::Debug for WatchSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSocket").finish_non_exhaustive()
    }
}

impl WatchSocket {
    /// Subscribes to link and route groups, ignoring notifications caused
    /// by the socket with port id `ignore_portid`.
    pub(crate) fn open(ignore_portid: u32) -> Result<WatchSocket, Error> {
        let context = "opening the rtnetlink watch socket";
        let socket = open_socket(context)?;
        let raw = socket.socket_ref();
        SockRef::from(&raw.as_fd())
            .attach_filter(&ignore_filter(ignore_portid))
            .map_err(|e| Error::io(context, e))?;
        for group in [
            libc::RTNLGRP_LINK,
            libc::RTNLGRP_IPV4_ROUTE,
            libc::RTNLGRP_IPV6_ROUTE,
        ] {
            raw.add_membership(group)
                .map_err(|e| Error::io(context, e))?;
        }
        Ok(WatchSocket {
            socket,
            receive: Vec::with_capacity(64 * 1024),
        })
    }

    /// Waits for notifications and appends what they say to `events`.
    /// Cancel-safe: nothing is read before the socket is readable.
    pub(crate) async fn next(&mut self, events: &mut Vec<Event>) -> Result<(), Error> {
        let context = "reading rtnetlink notifications";
        let (socket, receive) = (&self.socket, &mut self.receive);
        let first = poll_fn(|cx| {
            receive.clear();
            socket.poll_recv(cx, receive)
        })
        .await;
        let mut result = first;
        for _ in 0..DATAGRAMS_PER_CALL {
            match result {
                Ok(()) => parse(&self.receive, events),
                Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => {
                    events.push(Event::Overrun)
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => return Err(Error::io(context, error)),
            }
            // The socket is non-blocking: drain what is queued.
            self.receive.clear();
            result = self
                .socket
                .socket_ref()
                .recv(&mut self.receive, 0)
                .map(|_| ());
        }
        Ok(())
    }
}

/// Reads link and route changes out of one datagram.
fn parse(datagram: &[u8], events: &mut Vec<Event>) {
    for message in messages(datagram) {
        let Ok(parsed) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(message.bytes) else {
            tracing::debug!(
                kind = message.kind,
                "undecodable rtnetlink notification skipped"
            );
            continue;
        };
        let NetlinkPayload::InnerMessage(inner) = parsed.payload else {
            continue;
        };
        match inner {
            RouteNetlinkMessage::NewRoute(route) => route_event(&route, false, events),
            RouteNetlinkMessage::DelRoute(route) => route_event(&route, true, events),
            RouteNetlinkMessage::NewLink(link) => {
                events.push(Event::Link(link_state(&link, false)))
            }
            RouteNetlinkMessage::DelLink(link) => events.push(Event::Link(link_state(&link, true))),
            _ => {}
        }
    }
}

/// A route of ours added (or replaced) or deleted.
fn route_event(route: &RouteMessage, deleted: bool, events: &mut Vec<Event>) {
    if let Some(route) = decode(route) {
        events.push(Event::Route { deleted, route });
    }
}

/// A link's state from RTM_NEWLINK/RTM_DELLINK (also used for dumps).
pub(crate) fn link_state(link: &LinkMessage, deleted: bool) -> Link {
    let name = link
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        });
    let flags = link.header.flags;
    Link {
        index: link.header.index,
        name,
        up: !deleted && flags.contains(LinkFlags::Up),
        running: !deleted && flags.contains(LinkFlags::Running),
        deleted,
    }
}

/// Classic BPF: drop the message when nlmsg_pid equals `portid`.
fn ignore_filter(portid: u32) -> [SockFilter; 4] {
    // BPF loads words big-endian; nlmsg_pid is stored in host order.
    let pid_as_loaded = u32::from_be_bytes(portid.to_ne_bytes());
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    [
        SockFilter::new(LD_W_ABS, 0, 0, 12),
        SockFilter::new(JEQ_K, 0, 1, pid_as_loaded),
        SockFilter::new(RET_K, 0, 0, 0),
        SockFilter::new(RET_K, 0, 0, u32::MAX),
    ]
}
