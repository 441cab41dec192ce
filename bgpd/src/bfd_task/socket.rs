//! The BFD task's UDP sockets: the receiving sockets of RFC 5881 (single hop, port
//! 3784, the TTL or hop limit of each datagram read with IP_RECVTTL /
//! IPV6_RECVHOPLIMIT) and RFC 5883 (multihop, port 4784), with the interface and
//! local address of each datagram (IP_PKTINFO / IPV6_RECVPKTINFO); and one sending
//! socket per session, bound to the session's local address and a source port from
//! 49152-65535, sending with TTL 255.

use std::io;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use bfd::key::{MULTIHOP_PORT, SINGLE_HOP_PORT, SINGLE_HOP_TTL, SOURCE_PORTS};
use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, SockaddrStorage, sockopt};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The largest datagram read: a control packet with the largest authentication
/// section is 24 + 28 bytes; longer ones are cut and their Length check fails.
pub const MAX_DATAGRAM: usize = 64;

/// One received datagram with what the transport checks and keys on.
#[derive(Debug)]
pub struct Datagram {
    pub bytes: Vec<u8>,
    pub source: IpAddr,
    /// Our address it was sent to.
    pub destination: Option<IpAddr>,
    /// The interface it arrived on.
    pub interface_index: Option<u32>,
    /// Its TTL or hop limit.
    pub ttl: Option<u8>,
    pub multihop: bool,
}

/// A receiving socket on port 3784 (single hop) or 4784 (multihop) of one family.
pub fn receiver(ipv6: bool, multihop: bool) -> io::Result<UdpSocket> {
    let port = if multihop {
        MULTIHOP_PORT
    } else {
        SINGLE_HOP_PORT
    };
    let (domain, address) = if ipv6 {
        (
            Domain::IPV6,
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        )
    } else {
        (
            Domain::IPV4,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        )
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if ipv6 {
        socket.set_only_v6(true)?;
        socket::setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)?;
        socket::setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)?;
    } else {
        socket::setsockopt(&socket, sockopt::Ipv4RecvTtl, &true)?;
        socket::setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    UdpSocket::from_std(socket.into())
}

/// Reads the next datagram of `socket` with its TTL, interface and destination.
pub async fn receive(socket: &UdpSocket, multihop: bool) -> io::Result<Datagram> {
    socket
        .async_io(Interest::READABLE, || read(socket, multihop))
        .await
}

fn read(socket: &UdpSocket, multihop: bool) -> io::Result<Datagram> {
    let mut buffer = [0u8; MAX_DATAGRAM];
    let mut control = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int, libc::in_pktinfo);
    let mut iov = [IoSliceMut::new(&mut buffer)];
    let message = socket::recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let length = message.bytes;
    let source = message
        .address
        .as_ref()
        .and_then(|address| {
            address
                .as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| {
                    address
                        .as_sockaddr_in6()
                        .map(|v6| canonical(IpAddr::V6(v6.ip())))
                })
        })
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let mut datagram = Datagram {
        bytes: Vec::new(),
        source,
        destination: None,
        interface_index: None,
        ttl: None,
        multihop,
    };
    for cmsg in message.cmsgs().map_err(io::Error::from)? {
        match cmsg {
            ControlMessageOwned::Ipv4Ttl(ttl) | ControlMessageOwned::Ipv6HopLimit(ttl) => {
                datagram.ttl = u8::try_from(ttl).ok();
            }
            ControlMessageOwned::Ipv4PacketInfo(info) => {
                datagram.interface_index = u32::try_from(info.ipi_ifindex).ok();
                datagram.destination = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
            }
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                datagram.interface_index = Some(info.ipi6_ifindex);
                datagram.destination = Some(canonical(IpAddr::V6(Ipv6Addr::from(
                    info.ipi6_addr.s6_addr,
                ))));
            }
            _ => {}
        }
    }
    datagram.bytes = buffer[..length.min(MAX_DATAGRAM)].to_vec();
    Ok(datagram)
}

/// An IPv4-mapped IPv6 address as IPv4.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// A sending socket bound to `local` and a free source port of 49152-65535 (tried
/// from `start`), TTL 255, for packets to `peer`; link-local peers get the scope of
/// `interface_index`.
pub fn sender(
    local: IpAddr,
    peer: IpAddr,
    interface_index: Option<u32>,
    start: u16,
) -> io::Result<(UdpSocket, SocketAddr, u16)> {
    let domain = if local.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if local.is_ipv6() {
        socket.set_unicast_hops_v6(u32::from(SINGLE_HOP_TTL))?;
    } else {
        socket.set_ttl_v4(u32::from(SINGLE_HOP_TTL))?;
    }
    socket.set_nonblocking(true)?;
    let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let mut bound = None;
    for attempt in 0..span.min(512) {
        let offset = (u32::from(start) + attempt) % span;
        let port = SOURCE_PORTS.start() + offset as u16;
        let address = scoped(local, port, interface_index);
        match socket.bind(&address.into()) {
            Ok(()) => {
                bound = Some(port);
                break;
            }
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => continue,
            Err(error) => return Err(error),
        }
    }
    let port = bound.ok_or_else(|| io::Error::other("no free source port in 49152-65535"))?;
    let destination = scoped(peer, 0, interface_index);
    Ok((UdpSocket::from_std(socket.into())?, destination, port))
}

/// `address:port`, with the interface as scope for an IPv6 link-local address.
fn scoped(address: IpAddr, port: u16, interface_index: Option<u32>) -> SocketAddr {
    match address {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, interface_index.unwrap_or(0)))
        }
        _ => SocketAddr::new(address, port),
    }
}

/// The name of the interface with index `index`.
pub fn interface_name(index: u32) -> Option<String> {
    nix::net::if_::if_indextoname(index)
        .ok()
        .and_then(|name| name.into_string().ok())
}

/// The interface holding `local` (its name and index), for a single hop session.
pub fn interface_of(local: IpAddr) -> Option<(String, u32)> {
    let addresses = nix::ifaddrs::getifaddrs().ok()?;
    for entry in addresses {
        let Some(address) = entry.address else {
            continue;
        };
        let ip = address
            .as_sockaddr_in()
            .map(|v4| IpAddr::V4(v4.ip()))
            .or_else(|| address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())));
        if ip == Some(local) {
            let index = nix::net::if_::if_nametoindex(entry.interface_name.as_str()).ok()?;
            return Some((entry.interface_name, index));
        }
    }
    None
}
