//! The overlay's devices and entries in the kernel, over rtnetlink, in the caller's
//! network namespace.
//!
//! [`Kernel::sync`] makes each device of the two names ([`super::DEVICE_IPV4`],
//! [`super::DEVICE_IPV6`]) what the [`Overlay`] asks for, and deletes one the
//! overlay no longer has. Per device: made when missing, made again when its VNI,
//! port, local address, parent or learning differ (what `ip link set` cannot
//! change), its MTU, MAC and up state set when they differ; the tunnel address the
//! only address (besides IPv6 link-local); a permanent neighbour entry per peer and
//! a permanent FDB entry (`self`) per peer, the others on the device deleted.
//! Nothing is sent for what already is as wanted, so a restart with nothing moved
//! changes nothing. Only the two devices are ever changed.

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::{Handle, LinkUnspec, LinkVxlan};

use super::{DEVICE_IPV4, DEVICE_IPV6, Device, InterfaceAddress, Overlay};
use crate::error::Error;
use crate::snapshot::Snapshot;

/// ENODEV: what netlink answers for a link that does not exist.
const ENODEV: i32 = 19;
/// EEXIST: another VXLAN device has the VNI on the port.
const EEXIST: i32 = 17;
/// EADDRINUSE: another socket holds the UDP port.
const EADDRINUSE: i32 = 98;

/// One netlink connection in the namespace of the thread that opened it.
#[derive(Clone, Debug)]
pub struct Kernel {
    handle: Handle,
}

/// A device as it is in the kernel.
#[derive(Debug)]
struct Existing {
    index: u32,
    mtu: u32,
    mac: Vec<u8>,
    up: bool,
    vxlan: Vec<InfoVxlan>,
}

impl Kernel {
    /// Opens a netlink socket in the calling thread's network namespace; its
    /// connection runs as a task of the current tokio runtime.
    pub fn open() -> Result<Kernel, Error> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| Error::io("opening a netlink socket", e))?;
        tokio::spawn(connection);
        Ok(Kernel { handle })
    }

    /// Every address of every interface, with the interface's name and MTU.
    pub async fn interface_addresses(&self) -> Result<Vec<InterfaceAddress>, Error> {
        let failed = |e: rtnetlink::Error| Error::Netlink {
            context: "dumping the interfaces' addresses",
            message: describe(&e),
        };
        let links: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(failed)?;
        let addresses: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(failed)?;
        let mut found = Vec::new();
        for message in addresses {
            let Some(link) = links
                .iter()
                .find(|l| l.header.index == message.header.index)
            else {
                continue;
            };
            let Some(address) = address_of(&message) else {
                continue;
            };
            found.push(InterfaceAddress {
                index: link.header.index,
                name: name_of(link).unwrap_or_default(),
                mtu: mtu_of(link),
                address,
                prefix_len: message.header.prefix_len,
            });
        }
        Ok(found)
    }

    /// Makes both devices and their entries what `overlay` asks for. Returns one
    /// line per change made (empty when everything already was as wanted).
    pub async fn sync(&self, overlay: &Overlay) -> Result<Vec<String>, Error> {
        let mut changes = Vec::new();
        for name in [DEVICE_IPV4, DEVICE_IPV6] {
            match overlay.devices.iter().find(|d| d.name == name) {
                Some(device) => self.sync_device(device, &mut changes).await?,
                None => {
                    if let Some(existing) = self.existing(name).await? {
                        self.delete(name, existing.index).await?;
                        changes.push(format!("{name}: deleted (no VXLAN pool of its family)"));
                    }
                }
            }
        }
        Ok(changes)
    }

    async fn sync_device(&self, device: &Device, changes: &mut Vec<String>) -> Result<(), Error> {
        let name = device.name;
        let mut existing = self.existing(name).await?;
        if let Some(found) = &existing
            && !same_tunnel(&found.vxlan, device)
        {
            self.delete(name, found.index).await?;
            changes.push(format!(
                "{name}: VNI, port, local address or parent changed; made again"
            ));
            existing = None;
        }
        let index = match existing {
            Some(found) => {
                if found.mtu != device.mtu || found.mac != device.mac || !found.up {
                    let message = LinkUnspec::new_with_index(found.index)
                        .mtu(device.mtu)
                        .address(device.mac.to_vec())
                        .up()
                        .build();
                    if let Err(e) = self.handle.link().set(message).execute().await {
                        return Err(self.refused(device, "setting MTU, MAC and up", &e).await);
                    }
                    changes.push(format!("{name}: MTU {}, MAC and up set", device.mtu));
                }
                found.index
            }
            None => {
                self.create(device).await?;
                changes.push(format!(
                    "{name}: made (VNI {}, port {}, local {} on {}, MTU {})",
                    device.vni, device.port, device.local, device.parent.name, device.mtu
                ));
                self.existing(name)
                    .await?
                    .ok_or_else(|| Error::Kernel {
                        device: name,
                        action: "reading the device back".into(),
                        message: "it is gone right after it was made".into(),
                    })?
                    .index
            }
        };
        self.sync_address(device, index, changes).await?;
        self.sync_table(device, index, Table::Neighbours, changes)
            .await?;
        self.sync_table(device, index, Table::Fdb, changes).await
    }

    async fn existing(&self, name: &'static str) -> Result<Option<Existing>, Error> {
        let mut stream = self.handle.link().get().match_name(name).execute();
        let message = match stream.try_next().await {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(None),
            Err(rtnetlink::Error::NetlinkError(e)) if -e.raw_code() == ENODEV => {
                return Ok(None);
            }
            Err(e) => return Err(kernel(name, "reading the device", &e)),
        };
        let mut vxlan = None;
        let mut mac = Vec::new();
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Data(InfoData::Vxlan(data)) = info {
                            vxlan = Some(data.clone());
                        }
                    }
                }
                LinkAttribute::Address(address) => mac.clone_from(address),
                _ => {}
            }
        }
        let Some(vxlan) = vxlan else {
            return Err(Error::Overlay {
                device: name,
                problem: "an interface of that name exists and is not a VXLAN device; remove it"
                    .into(),
            });
        };
        Ok(Some(Existing {
            index: message.header.index,
            mtu: mtu_of(&message),
            mac,
            up: message.header.flags.contains(LinkFlags::Up),
            vxlan,
        }))
    }

    async fn create(&self, device: &Device) -> Result<(), Error> {
        let builder = LinkVxlan::new(device.name, device.vni)
            .dev(device.parent.index)
            .port(device.port)
            .learning(false);
        let builder = match device.local {
            IpAddr::V4(v4) => builder.local(v4),
            IpAddr::V6(v6) => builder.local6(v6),
        };
        let message = builder
            .mtu(device.mtu)
            .address(device.mac.to_vec())
            .up()
            .build();
        match self.handle.link().add(message).execute().await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.refused(device, "making the device", &e).await),
        }
    }

    /// The error of a device the kernel refused to make or bring up: when its UDP
    /// port is taken (by another VXLAN device with the VNI, or by another socket),
    /// one line naming the port and what holds it, found among the VXLAN devices
    /// (the kernel makes no device it cannot bring up, so nothing is left half-made).
    async fn refused(&self, device: &Device, action: &str, error: &rtnetlink::Error) -> Error {
        let rtnetlink::Error::NetlinkError(message) = error else {
            return kernel(device.name, action, error);
        };
        let code = -message.raw_code();
        if code != EADDRINUSE && code != EEXIST {
            return kernel(device.name, action, error);
        }
        let holder = match self.vxlan_on_port(device).await {
            Ok(Some(other)) => format!("the VXLAN device {other}"),
            Ok(None) => String::from("another socket (ss -ulpn)"),
            Err(_) => String::from("another socket or device"),
        };
        Error::Overlay {
            device: device.name,
            problem: format!(
                "UDP port {} is already in use by {holder}, so the device cannot be brought up (the kernel said {}); free the port or give the VXLAN pools another vxlan_port",
                device.port,
                describe(error)
            ),
        }
    }

    /// Another VXLAN device on `device`'s UDP port.
    async fn vxlan_on_port(&self, device: &Device) -> Result<Option<String>, rtnetlink::Error> {
        let mut links = self.handle.link().get().execute();
        while let Some(link) = links.try_next().await? {
            let name = name_of(&link).unwrap_or_default();
            if name == device.name {
                continue;
            }
            let on_port = link.attributes.iter().any(|attribute| match attribute {
                LinkAttribute::LinkInfo(infos) => infos.iter().any(|info| {
                    matches!(info, LinkInfo::Data(InfoData::Vxlan(data))
                        if data.contains(&InfoVxlan::Port(device.port)))
                }),
                _ => false,
            });
            if on_port {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    async fn delete(&self, name: &'static str, index: u32) -> Result<(), Error> {
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|e| kernel(name, "deleting the device", &e))
    }

    async fn sync_address(
        &self,
        device: &Device,
        index: u32,
        changes: &mut Vec<String>,
    ) -> Result<(), Error> {
        let name = device.name;
        let prefix_len = if device.tunnel_address.is_ipv4() {
            32
        } else {
            128
        };
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| kernel(name, "listing its addresses", &e))?;
        let mut present = false;
        for message in messages {
            let Some(address) = address_of(&message) else {
                continue;
            };
            if address == device.tunnel_address && message.header.prefix_len == prefix_len {
                present = true;
                continue;
            }
            if let IpAddr::V6(v6) = address
                && v6.is_unicast_link_local()
            {
                continue;
            }
            self.handle
                .address()
                .del(message)
                .execute()
                .await
                .map_err(|e| kernel(name, format!("deleting the old address {address}"), &e))?;
            changes.push(format!("{name}: old address {address} deleted"));
        }
        if !present {
            self.handle
                .address()
                .add(index, device.tunnel_address, prefix_len)
                .execute()
                .await
                .map_err(|e| {
                    kernel(
                        name,
                        format!("adding the tunnel address {}", device.tunnel_address),
                        &e,
                    )
                })?;
            changes.push(format!(
                "{name}: tunnel address {}/{prefix_len} added",
                device.tunnel_address
            ));
        }
        Ok(())
    }

    /// A permanent neighbour entry (tunnel address -> VTEP MAC) or FDB entry
    /// (`self`, VTEP MAC -> underlay address) per peer; the device's other entries
    /// of the table deleted.
    async fn sync_table(
        &self,
        device: &Device,
        index: u32,
        table: Table,
        changes: &mut Vec<String>,
    ) -> Result<(), Error> {
        let name = device.name;
        let what = table.what();
        let listed: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .set_address_family(table.family(device.local))
            .execute()
            .try_collect()
            .await
            .map_err(|e| kernel(name, format!("listing its {what} entries"), &e))?;
        let wanted: Vec<(IpAddr, [u8; 6])> = device
            .peers
            .iter()
            .map(|peer| match table {
                Table::Neighbours => (peer.tunnel_address, peer.mac),
                Table::Fdb => (peer.underlay, peer.mac),
            })
            .collect();
        let mut right = Vec::new();
        for message in listed {
            if message.header.ifindex != index {
                continue;
            }
            let address = destination_of(&message);
            let mac = lladdr_of(&message).and_then(|m| <[u8; 6]>::try_from(m).ok());
            let entry = address.zip(mac);
            if message.header.state == NeighbourState::Permanent
                && let Some(entry) = entry.filter(|e| wanted.contains(e))
            {
                right.push(entry);
                continue;
            }
            let (key, known) = match table {
                Table::Neighbours => (
                    address.map(|a| a.to_string()),
                    wanted.iter().any(|(a, _)| Some(*a) == address),
                ),
                Table::Fdb => (
                    mac.as_ref().map(mac_text),
                    wanted.iter().any(|(_, m)| Some(*m) == mac),
                ),
            };
            let Some(key) = key else {
                continue;
            };
            if known {
                // Replaced below.
                continue;
            }
            self.handle
                .neighbours()
                .del(message)
                .execute()
                .await
                .map_err(|e| kernel(name, format!("deleting {what} {key}"), &e))?;
            changes.push(format!("{name}: {what} {key} deleted"));
        }
        for (address, mac) in wanted {
            if right.contains(&(address, mac)) {
                continue;
            }
            let text = mac_text(&mac);
            let (request, line) = match table {
                Table::Neighbours => (
                    self.handle
                        .neighbours()
                        .add(index, address)
                        .link_layer_address(&mac),
                    format!("{what} {address} lladdr {text}"),
                ),
                Table::Fdb => (
                    self.handle
                        .neighbours()
                        .add_bridge(index, &mac)
                        .destination(address)
                        .flags(NeighbourFlags::Own),
                    format!("{what} {text} dst {address}"),
                ),
            };
            request
                .state(NeighbourState::Permanent)
                .replace()
                .execute()
                .await
                .map_err(|e| kernel(name, format!("adding {line}"), &e))?;
            changes.push(format!("{name}: {line}"));
        }
        Ok(())
    }
}

/// The two tables of per-peer entries on a device.
#[derive(Clone, Copy, Debug)]
enum Table {
    /// Tunnel address -> VTEP MAC (the IP family's neighbour table).
    Neighbours,
    /// VTEP MAC -> underlay address (the device's forwarding database).
    Fdb,
}

impl Table {
    fn what(self) -> &'static str {
        match self {
            Table::Neighbours => "neighbour",
            Table::Fdb => "FDB entry",
        }
    }

    fn family(self, local: IpAddr) -> AddressFamily {
        match (self, local) {
            (Table::Fdb, _) => AddressFamily::Bridge,
            (Table::Neighbours, IpAddr::V4(_)) => AddressFamily::Inet,
            (Table::Neighbours, IpAddr::V6(_)) => AddressFamily::Inet6,
        }
    }
}

/// One sync of what `snapshot` asks of `node`, from a thread that is not inside a
/// tokio runtime (a test, a benchmark, a one-shot tool): the interfaces read, the
/// overlay computed and programmed on a netlink connection of its own, in the
/// calling thread's network namespace. Returns the overlay and the changes made.
pub fn sync_once(snapshot: &Snapshot, node: &str) -> Result<(Overlay, Vec<String>), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting a runtime for one overlay sync", e))?;
    runtime.block_on(async {
        let kernel = Kernel::open()?;
        let interfaces = kernel.interface_addresses().await?;
        let overlay = super::desired(snapshot, node, &interfaces)?;
        let changes = kernel.sync(&overlay).await?;
        Ok((overlay, changes))
    })
}

/// Whether the device's tunnel settings (what needs a new device to change) are
/// the wanted ones, learning off included.
fn same_tunnel(found: &[InfoVxlan], device: &Device) -> bool {
    let mut id = None;
    let mut port = None;
    let mut local = None;
    let mut parent = None;
    let mut learning = true;
    let mut kind_ok = true;
    for info in found {
        match info {
            InfoVxlan::Id(v) => id = Some(*v),
            InfoVxlan::Port(v) => port = Some(*v),
            InfoVxlan::Local(v) => local = Some(IpAddr::V4(*v)),
            InfoVxlan::Local6(v) => local = Some(IpAddr::V6(*v)),
            InfoVxlan::Link(v) => parent = Some(*v),
            InfoVxlan::Learning(v) => learning = *v,
            InfoVxlan::CollectMetadata(true) => kind_ok = false,
            _ => {}
        }
    }
    kind_ok
        && id == Some(device.vni)
        && port == Some(device.port)
        && local == Some(device.local)
        && parent == Some(device.parent.index)
        && !learning
}

fn kernel(device: &'static str, action: impl Into<String>, error: &rtnetlink::Error) -> Error {
    Error::Kernel {
        device,
        action: action.into(),
        message: describe(error),
    }
}

fn describe(error: &rtnetlink::Error) -> String {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io().to_string(),
        other => other.to_string(),
    }
}

fn name_of(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

fn mtu_of(link: &LinkMessage) -> u32 {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(mtu) => Some(*mtu),
            _ => None,
        })
        .unwrap_or(0)
}

/// The interface address of an address message (IFA_LOCAL, else IFA_ADDRESS).
fn address_of(message: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(local) => return Some(*local),
            AddressAttribute::Address(a) => address = Some(*a),
            _ => {}
        }
    }
    address
}

/// NDA_DST: an IP address (an FDB entry's, of the bridge family, comes as bytes).
fn destination_of(message: &NeighbourMessage) -> Option<IpAddr> {
    message.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => match bytes.len() {
            4 => <[u8; 4]>::try_from(bytes.as_slice()).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(bytes.as_slice())
                .ok()
                .map(IpAddr::from),
            _ => None,
        },
        _ => None,
    })
}

fn lladdr_of(message: &NeighbourMessage) -> Option<&[u8]> {
    message.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(mac) => Some(mac.as_slice()),
        _ => None,
    })
}

fn mac_text(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}
