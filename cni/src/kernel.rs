//! The netlink work of one network namespace over rtnetlink: links, addresses, routes
//! and neighbours, read back as small plain values for CHECK and the tests' messages.

use std::net::IpAddr;
use std::os::fd::RawFd;

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope, RouteType,
};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::error::{Error, Result};

/// ENODEV, ENOENT, ESRCH: what netlink answers for a link, route or entry that is gone.
const GONE: [i32; 3] = [libc_errno::ENODEV, libc_errno::ENOENT, libc_errno::ESRCH];

mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const EEXIST: i32 = 17;
    pub const ENODEV: i32 = 19;
}

/// A link as this plugin looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub mac: Vec<u8>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub alias: Option<String>,
}

/// A route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub scope_link: bool,
}

/// A neighbour entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub address: IpAddr,
    pub mac: Option<Vec<u8>>,
    pub permanent: bool,
}

/// One netlink connection, in the namespace of the thread that opened it.
#[derive(Debug, Clone)]
pub struct Kernel {
    handle: Handle,
}

/// True when `error` says the object does not exist.
pub fn is_gone(error: &rtnetlink::Error) -> bool {
    errno(error).is_some_and(|code| GONE.contains(&code))
}

/// True when `error` says the object exists already.
pub fn is_exists(error: &rtnetlink::Error) -> bool {
    errno(error) == Some(libc_errno::EEXIST)
}

fn errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => Some(-message.raw_code()),
        _ => None,
    }
}

/// The netlink error as the OS's words ("File exists (os error 17)").
pub fn describe(error: &rtnetlink::Error) -> String {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io().to_string(),
        other => other.to_string(),
    }
}

fn fail(what: impl Into<String>, error: &rtnetlink::Error) -> Error {
    Error::kernel(what, describe(error))
}

impl Kernel {
    /// Opens a netlink socket in the calling thread's network namespace; its connection
    /// task runs on the current (single-threaded) tokio runtime.
    pub fn open() -> Result<Kernel> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| Error::kernel("opening netlink", e))?;
        tokio::spawn(connection);
        Ok(Kernel { handle })
    }

    /// The link named `name`, if any.
    pub async fn link(&self, name: &str) -> Result<Option<Link>> {
        let mut stream = self.handle.link().get().match_name(name).execute();
        match stream.try_next().await {
            Ok(message) => Ok(message.map(link_of)),
            Err(e) if is_gone(&e) => Ok(None),
            Err(e) => Err(fail(format!("reading link {name}"), &e)),
        }
    }

    /// Every link.
    pub async fn links(&self) -> Result<Vec<Link>> {
        let messages: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| fail("listing links", &e))?;
        Ok(messages.into_iter().map(link_of).collect())
    }

    /// Creates the veth pair `host` (here, with `mac`) and `peer` (moved straight into
    /// the namespace `peer_netns`), both with `mtu`.
    pub async fn create_veth(
        &self,
        host: &str,
        mac: [u8; 6],
        peer: &str,
        peer_netns: RawFd,
        mtu: u32,
    ) -> std::result::Result<(), rtnetlink::Error> {
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer)
            .mtu(mtu)
            .setns_by_fd(peer_netns)
            .build();
        let message = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(host)
            .mtu(mtu)
            .address(mac.to_vec())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        self.handle.link().add(message).execute().await
    }

    /// Sets a link up, with `alias` when given.
    pub async fn set_up(&self, link: &Link, alias: Option<&str>) -> Result<()> {
        let mut builder = LinkUnspec::new_with_index(link.index).up();
        if let Some(alias) = alias {
            builder = builder.alias(alias);
        }
        self.handle
            .link()
            .set(builder.build())
            .execute()
            .await
            .map_err(|e| fail(format!("setting {} up", link.name), &e))
    }

    /// Deletes a link; true when it existed.
    pub async fn delete_link(&self, index: u32, name: &str) -> Result<bool> {
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if is_gone(&e) => Ok(false),
            Err(e) => Err(fail(format!("deleting link {name}"), &e)),
        }
    }

    /// Adds `address/prefix_len` to a link (IPv6 without duplicate address detection).
    pub async fn add_address(&self, link: &Link, address: IpAddr, prefix_len: u8) -> Result<()> {
        let mut request = self.handle.address().add(link.index, address, prefix_len);
        if address.is_ipv6() {
            request
                .message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request.execute().await.map_err(|e| {
            fail(
                format!("adding {address}/{prefix_len} to {}", link.name),
                &e,
            )
        })
    }

    /// The addresses of a link.
    pub async fn addresses(&self, link: &Link) -> Result<Vec<IpNet>> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(link.index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| fail(format!("listing the addresses of {}", link.name), &e))?;
        Ok(messages
            .iter()
            .filter(|m| m.header.index == link.index)
            .filter_map(|m| {
                let address = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(a) => Some(*a),
                    _ => None,
                })?;
                IpNet::new(address, m.header.prefix_len).ok()
            })
            .collect())
    }

    /// Adds a route to `destination` out of `link`, through `gateway` or on-link
    /// (`scope link`).
    pub async fn add_route(
        &self,
        destination: IpNet,
        link: &Link,
        gateway: Option<IpAddr>,
    ) -> Result<()> {
        let what = || match gateway {
            Some(gateway) => format!("adding route {destination} via {gateway} dev {}", link.name),
            None => format!("adding route {destination} dev {} scope link", link.name),
        };
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(destination.addr(), destination.prefix_len())
            .map_err(|e| Error::kernel(what(), e))?
            .output_interface(link.index);
        builder = match gateway {
            Some(gateway) => builder
                .gateway(gateway)
                .map_err(|e| Error::kernel(what(), e))?,
            None => builder.scope(RouteScope::Link),
        };
        self.handle
            .route()
            .add(builder.build())
            .execute()
            .await
            .map_err(|e| fail(what(), &e))
    }

    /// The main table's routes of one family.
    pub async fn routes(&self, ipv6: bool) -> Result<Vec<Route>> {
        let query = if ipv6 {
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
        } else {
            RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
        };
        let messages: Vec<RouteMessage> = self
            .handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(|e| fail("listing routes", &e))?;
        Ok(messages.iter().filter_map(route_of).collect())
    }

    /// Adds a permanent neighbour entry `address lladdr mac` on a link.
    pub async fn add_neighbour(&self, link: &Link, address: IpAddr, mac: [u8; 6]) -> Result<()> {
        self.handle
            .neighbours()
            .add(link.index, address)
            .link_layer_address(&mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|e| fail(format!("adding neighbour {address} on {}", link.name), &e))
    }

    /// The neighbour entries of a link.
    pub async fn neighbours(&self, link: &Link) -> Result<Vec<Neighbour>> {
        let messages: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| fail(format!("listing the neighbours of {}", link.name), &e))?;
        Ok(messages
            .iter()
            .filter(|m| m.header.ifindex == link.index)
            .filter_map(|m| {
                let address = m.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                        Some(IpAddr::V4(*a))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                        Some(IpAddr::V6(*a))
                    }
                    _ => None,
                })?;
                let mac = m.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::LinkLayerAddress(mac) => Some(mac.clone()),
                    _ => None,
                });
                Some(Neighbour {
                    address,
                    mac,
                    permanent: m.header.state == NeighbourState::Permanent,
                })
            })
            .collect())
    }
}

fn link_of(message: LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        kind: None,
        mac: Vec::new(),
        mtu: None,
        up: message.header.flags.contains(LinkFlags::Up),
        alias: None,
    };
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Address(mac) => link.mac = mac,
            LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
            LinkAttribute::IfAlias(alias) => link.alias = Some(alias),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn route_of(message: &RouteMessage) -> Option<Route> {
    let header = &message.header;
    let table = message
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || header.kind != RouteType::Unicast {
        return None;
    }
    let address = |a: &RouteAddress| match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    };
    let mut destination = None;
    let mut gateway = None;
    let mut oif = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(a) => destination = address(a),
            RouteAttribute::Gateway(a) => gateway = address(a),
            RouteAttribute::Oif(index) => oif = Some(*index),
            _ => {}
        }
    }
    let destination = match destination {
        Some(a) => a,
        None if header.address_family == AddressFamily::Inet6 => {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        }
        None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    };
    Some(Route {
        destination: IpNet::new(destination, header.destination_prefix_length).ok()?,
        gateway,
        oif,
        scope_link: header.scope == RouteScope::Link,
    })
}
