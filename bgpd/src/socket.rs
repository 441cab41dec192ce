//! TCP sockets of BGP sessions: listening, connecting, and the socket options BGP
//! needs — TCP-MD5 signatures (RFC 2385, `TCP_MD5SIG`), GTSM (RFC 5082: send with TTL
//! 255, refuse packets below a minimum TTL with `IP_MINTTL` / `IPV6_MINHOPCOUNT`) and
//! the TTL of eBGP sessions (1 unless multihop).
//!
//! socket2 and nix have no setter for `TCP_MD5SIG`, `IP_MINTTL` or
//! `IPV6_MINHOPCOUNT`; nix's documented `sockopt_impl!` macro declares them here as
//! typed socket options, so this crate needs no `unsafe` of its own. The one layout
//! that must match the kernel is [`TcpMd5Sig`] (`struct tcp_md5sig` of
//! linux/tcp.h), built field by field below.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use ipnet::IpNet;
use nix::sys::socket::setsockopt;
use socket2::SockRef;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use raw::{MinHopCount, MinTtl, SockaddrStorage, TcpMd5Key, TcpMd5KeyExt, TcpMd5Sig};

/// TCP-MD5 keys are at most this long (TCP_MD5SIG_MAXKEYLEN).
pub const MD5_MAX_KEY_LEN: usize = 80;
/// The TTL a GTSM session sends with, and the least it accepts from a direct peer.
pub const GTSM_TTL: u8 = 255;

/// `TCP_MD5SIG_EXT` (linux/tcp.h): `TCP_MD5SIG` with flags (prefix, ifindex).
const TCP_MD5SIG_EXT: libc::c_int = 32;
/// `TCP_MD5SIG_FLAG_PREFIX`: the key applies to `tcpm_prefixlen` bits of the address.
const TCP_MD5SIG_FLAG_PREFIX: u8 = 1;

/// What a session socket needs besides its addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// TTL (IPv4) or hop limit (IPv6) of outgoing packets; `None`: the system default.
    pub ttl: Option<u8>,
    /// Packets that arrive with a lower TTL / hop limit are dropped (GTSM).
    pub min_ttl: Option<u8>,
    /// TCP-MD5 key shared with the peer.
    pub password: Option<String>,
}

impl SocketOptions {
    /// The options of a session: GTSM sends with 255 and accepts 255 only (the peer is
    /// directly connected); otherwise eBGP sends with the multihop TTL or 1, and iBGP
    /// with the system default.
    pub fn new(
        ebgp: bool,
        ttl_security: bool,
        multihop: Option<u8>,
        password: Option<&str>,
    ) -> SocketOptions {
        let (ttl, min_ttl) = if ttl_security {
            (Some(GTSM_TTL), Some(GTSM_TTL))
        } else if let Some(hops) = multihop {
            (Some(hops), None)
        } else if ebgp {
            (Some(1), None)
        } else {
            (None, None)
        };
        SocketOptions {
            ttl,
            min_ttl,
            password: password.map(str::to_owned),
        }
    }
}

/// Opens a listening socket on `address` (IPv6 sockets are IPv6 only, so that
/// `0.0.0.0:179` and `[::]:179` can both be bound).
pub fn listen(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => {
            let socket = TcpSocket::new_v6()?;
            SockRef::from(&socket).set_only_v6(true)?;
            socket
        }
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Connections the kernel queues before bgpd accepts them: a route reflector or a
/// node mesh of hundreds of peers that all connect at once must not see SYNs dropped
/// (with 128, 7 of 150 simultaneous connections were dropped in the bench's mesh
/// scenario and came back a second later). The kernel caps it at
/// `net.core.somaxconn` (4096 by default, per network namespace), so asking for the
/// most lets an operator raise that sysctl without a new bgpd (README, "Large
/// clusters": 5000 nodes connecting at once overflowed 4096 in the bench).
const LISTEN_BACKLOG: u32 = 65535;

/// Connects to `peer` from `local` (if given) with `options`, giving up after
/// `timeout`. The MD5 key and TTLs are set before the SYN leaves.
pub async fn connect(
    peer: SocketAddr,
    local: Option<IpAddr>,
    options: &SocketOptions,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let socket = match peer {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(local) = local {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    if let Some(password) = &options.password {
        set_md5(&socket, IpNet::from(peer.ip()), Some(password.as_bytes()))?;
    }
    apply_ttl(&socket, peer.ip(), options)?;
    socket.set_nodelay(true)?;
    match tokio::time::timeout(timeout, socket.connect(peer)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {} s", timeout.as_secs()),
        )),
    }
}

/// Applies the TTL options to an accepted connection (the MD5 key is on the
/// listener).
pub fn accepted(stream: &TcpStream, options: &SocketOptions) -> io::Result<()> {
    let peer = stream.peer_addr()?.ip();
    apply_ttl(stream, peer, options)?;
    stream.set_nodelay(true)
}

/// Sets (`Some`) or removes (`None`) the TCP-MD5 key for peers in `peers` on
/// `socket`: a listener (for the connections it accepts) or a socket about to
/// connect. A host prefix uses `TCP_MD5SIG`, a shorter one `TCP_MD5SIG_EXT` with a
/// prefix length (listen ranges).
pub fn set_md5<F: AsFd>(socket: &F, peers: IpNet, key: Option<&[u8]>) -> io::Result<()> {
    let key = key.unwrap_or_default();
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TCP-MD5 key of {} bytes (at most {MD5_MAX_KEY_LEN})",
                key.len()
            ),
        ));
    }
    let mut value = TcpMd5Sig {
        addr: SockaddrStorage::of(peers.network()),
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; MD5_MAX_KEY_LEN],
    };
    value.key[..key.len()].copy_from_slice(key);
    let result = if peers.prefix_len() == peers.max_prefix_len() {
        setsockopt(socket, TcpMd5Key, &value)
    } else {
        value.flags = TCP_MD5SIG_FLAG_PREFIX;
        value.prefixlen = peers.prefix_len();
        setsockopt(socket, TcpMd5KeyExt, &value)
    };
    match result {
        // Removing a key that is not there.
        Err(nix::errno::Errno::ENOENT) if key.is_empty() => Ok(()),
        other => other.map_err(io::Error::from),
    }
}

fn apply_ttl<F: AsFd>(socket: &F, peer: IpAddr, options: &SocketOptions) -> io::Result<()> {
    let sock = SockRef::from(socket);
    let v4 = match peer {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    };
    if let Some(ttl) = options.ttl {
        if v4 {
            sock.set_ttl_v4(u32::from(ttl))?;
        } else {
            sock.set_unicast_hops_v6(u32::from(ttl))?;
        }
    }
    if let Some(min) = options.min_ttl {
        let min = libc::c_int::from(min);
        if v4 {
            setsockopt(socket, MinTtl, &min)?;
        } else {
            setsockopt(socket, MinHopCount, &min)?;
        }
    }
    Ok(())
}

/// The socket options socket2 and nix lack, declared with nix's macro.
mod raw {
    use nix::{setsockopt_impl, sockopt_impl};

    use super::{MD5_MAX_KEY_LEN, TCP_MD5SIG_EXT};

    sockopt_impl!(
        /// `IP_MINTTL`: drop IPv4 packets whose TTL is below the value.
        MinTtl,
        SetOnly,
        libc::IPPROTO_IP,
        libc::IP_MINTTL,
        libc::c_int
    );

    sockopt_impl!(
        /// `IPV6_MINHOPCOUNT`: drop IPv6 packets whose hop limit is below the value.
        MinHopCount,
        SetOnly,
        libc::IPPROTO_IPV6,
        libc::IPV6_MINHOPCOUNT,
        libc::c_int
    );

    sockopt_impl!(
        /// `TCP_MD5SIG`: the key for one peer address.
        TcpMd5Key,
        SetOnly,
        libc::IPPROTO_TCP,
        libc::TCP_MD5SIG,
        TcpMd5Sig
    );

    sockopt_impl!(
        /// `TCP_MD5SIG_EXT`: the key for a prefix of peer addresses.
        TcpMd5KeyExt,
        SetOnly,
        libc::IPPROTO_TCP,
        TCP_MD5SIG_EXT,
        TcpMd5Sig
    );

    /// `struct tcp_md5sig` of linux/tcp.h: a `__kernel_sockaddr_storage` (128 octets,
    /// 8-aligned), flags, prefix length, key length, interface index, 80 octets of key.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct TcpMd5Sig {
        pub addr: SockaddrStorage,
        pub flags: u8,
        pub prefixlen: u8,
        pub keylen: u16,
        pub ifindex: libc::c_int,
        pub key: [u8; MD5_MAX_KEY_LEN],
    }

    /// A `sockaddr_storage` written octet by octet: `sockaddr_in` or `sockaddr_in6` with
    /// port 0 at the start, zeros after.
    #[repr(C, align(8))]
    #[derive(Clone, Copy, Debug)]
    pub struct SockaddrStorage([u8; 128]);

    impl SockaddrStorage {
        pub fn of(address: std::net::IpAddr) -> SockaddrStorage {
            let mut bytes = [0u8; 128];
            match address {
                std::net::IpAddr::V4(v4) => {
                    // sa_family (host order), sin_port (0), sin_addr.
                    bytes[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
                    bytes[4..8].copy_from_slice(&v4.octets());
                }
                std::net::IpAddr::V6(v6) => {
                    // sa_family, sin6_port (0), sin6_flowinfo (0), sin6_addr, scope (0).
                    bytes[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
                    bytes[8..24].copy_from_slice(&v6.octets());
                }
            }
            SockaddrStorage(bytes)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn md5sig_has_the_kernel_layout() {
        // linux/tcp.h: 128 + 1 + 1 + 2 + 4 + 80.
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
        assert_eq!(std::mem::align_of::<TcpMd5Sig>(), 8);
    }

    #[test]
    fn options_follow_the_session_kind() {
        let gtsm = SocketOptions::new(true, true, None, None);
        assert_eq!((gtsm.ttl, gtsm.min_ttl), (Some(255), Some(255)));
        let multihop = SocketOptions::new(true, false, Some(3), Some("k"));
        assert_eq!((multihop.ttl, multihop.min_ttl), (Some(3), None));
        assert_eq!(multihop.password.as_deref(), Some("k"));
        assert_eq!(SocketOptions::new(true, false, None, None).ttl, Some(1));
        assert_eq!(SocketOptions::new(false, false, None, None).ttl, None);
    }

    #[tokio::test]
    async fn the_kernel_takes_every_option() {
        // Loopback: TTLs, GTSM, and MD5 keys for a host and a prefix (TCP_MD5SIG needs
        // no privilege).
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        set_md5(&listener, "127.0.0.1/32".parse().unwrap(), Some(b"secret")).unwrap();
        set_md5(&listener, "127.0.0.0/8".parse().unwrap(), Some(b"other")).unwrap();
        set_md5(&listener, "127.0.0.0/8".parse().unwrap(), None).unwrap();
        set_md5(&listener, "10.9.9.9/32".parse().unwrap(), None).unwrap();
        let address = listener.local_addr().unwrap();
        // eBGP TTL 1 works on loopback; GTSM is set on the accepted side only (the
        // listener's SYN-ACK leaves with the default TTL, which GTSM would drop).
        let options = SocketOptions::new(true, false, None, Some("secret"));
        let (stream, accepted_stream) = tokio::join!(
            connect(address, None, &options, Duration::from_secs(10)),
            tokio::time::timeout(Duration::from_secs(10), listener.accept())
        );
        let stream = stream.unwrap();
        let (accepted_stream, _) = accepted_stream.unwrap().unwrap();
        assert_eq!(SockRef::from(&stream).ttl_v4().unwrap(), 1);
        accepted(
            &accepted_stream,
            &SocketOptions::new(true, true, None, None),
        )
        .unwrap();
        assert_eq!(SockRef::from(&accepted_stream).ttl_v4().unwrap(), 255);
        let v6 = listen("[::1]:0".parse().unwrap()).unwrap();
        set_md5(&v6, "::1/128".parse().unwrap(), Some(b"k")).unwrap();
        set_md5(&v6, "fd00::/64".parse().unwrap(), Some(b"k")).unwrap();
        assert!(set_md5(&v6, "::1/128".parse().unwrap(), Some(&[b'x'; 81])).is_err());
    }

    #[tokio::test]
    async fn a_wrong_key_never_connects() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        set_md5(&listener, "127.0.0.1/32".parse().unwrap(), Some(b"right")).unwrap();
        let address = listener.local_addr().unwrap();
        let options = SocketOptions::new(false, false, None, Some("wrong"));
        let accept = tokio::time::timeout(Duration::from_secs(2), listener.accept());
        let (connected, accepted) = tokio::join!(
            connect(address, None, &options, Duration::from_secs(2)),
            accept
        );
        assert!(connected.is_err(), "connected with the wrong key");
        assert!(
            accepted.is_err(),
            "accepted a connection with the wrong key"
        );
    }
}
