//! The host's network interfaces as the dataplane needs them: name, MTU, whether
//! up. One RTM_GETLINK dump over a blocking NETLINK_ROUTE socket of its own (the
//! caller runs it off the async threads), in the network namespace of the caller.

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::error::Error;

/// Most attempts at a dump that a concurrent change keeps interrupting.
const DUMP_ATTEMPTS: usize = 5;

/// One interface of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    /// Administratively up (IFF_UP).
    pub up: bool,
}

/// Every interface of the caller's network namespace.
pub fn links() -> Result<Vec<Link>, Error> {
    let mut socket =
        Socket::new(NETLINK_ROUTE).map_err(|e| Error::io("opening a netlink socket", e))?;
    socket
        .bind_auto()
        .map_err(|e| Error::io("binding a netlink socket", e))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| Error::io("connecting a netlink socket", e))?;
    for seq in 1..=DUMP_ATTEMPTS as u32 {
        if let Some(links) = dump(&socket, seq)? {
            return Ok(links);
        }
    }
    Err(Error::Netlink {
        context: "dumping the interfaces",
        message: format!("interrupted by changes {DUMP_ATTEMPTS} times in a row"),
    })
}

/// One dump; `None` when the kernel says a change interrupted it.
fn dump(socket: &Socket, seq: u32) -> Result<Option<Vec<Link>>, Error> {
    let context = "dumping the interfaces";
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetLink(LinkMessage::default())),
    );
    request.finalize();
    let mut buffer = vec![0; request.buffer_len()];
    request.serialize(&mut buffer);
    socket
        .send(&buffer, 0)
        .map_err(|e| Error::io("sending the interface dump request", e))?;
    let mut links = Vec::new();
    let mut consistent = true;
    loop {
        let (datagram, _) = socket
            .recv_from_full()
            .map_err(|e| Error::io("reading the interface dump", e))?;
        let mut rest = datagram.as_slice();
        while !rest.is_empty() {
            let message =
                NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest).map_err(|e| {
                    Error::Netlink {
                        context,
                        message: format!("undecodable answer: {e}"),
                    }
                })?;
            let length = (message.header.length as usize).max(16);
            rest = rest.get(length.next_multiple_of(4)..).unwrap_or(&[]);
            if message.header.sequence_number != seq {
                continue;
            }
            consistent &= message.header.flags & NLM_F_DUMP_INTR == 0;
            match message.payload {
                NetlinkPayload::Done(_) => return Ok(consistent.then_some(links)),
                NetlinkPayload::Error(error) => {
                    return Err(Error::Netlink {
                        context,
                        message: error.to_string(),
                    });
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    links.push(from_message(&link));
                }
                _ => {}
            }
        }
    }
}

fn from_message(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        mtu: 0,
        up: message.header.flags.contains(LinkFlags::Up),
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name.clone_from(name),
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            _ => {}
        }
    }
    link
}
