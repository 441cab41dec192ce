//! Time stamps of kernel route changes: a thread inside the daemon's namespace subscribed to
//! the IPv4 route multicast group of rtnetlink records the arrival time of every
//! RTM_NEWROUTE and RTM_DELROUTE of the main table into a [`RouteLog`]. Connected routes
//! (protocol `kernel`) and other tables are left out, so the log holds exactly what routing
//! daemons (or the kernel floors) install.
//!
//! The socket's receive buffer is raised with SO_RCVBUFFORCE so that a million routes
//! arriving at once are not lost; a loss (ENOBUFS) is recorded and voids the measurement.
//! The thread runs on the generator CPU and wakes waiters at most once a millisecond
//! during a burst, immediately when the burst ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use netlink_packet_core::{NetlinkBuffer, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use crate::routelog::{Key, RouteLog};
use crate::system;

/// rtnetlink multicast group of IPv4 route changes (RTMGRP_IPV4_ROUTE).
const IPV4_ROUTE_GROUP: u32 = 0x40;
/// The main routing table.
const MAIN_TABLE: u32 = 254;
/// Receive buffer asked for: events queue here while the thread catches up.
const RECEIVE_BUFFER: usize = 1 << 30;
/// How long a blocking receive waits before looking at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);
/// Waiters are woken at most this often during a burst.
const NOTIFY_EVERY: Duration = Duration::from_millis(1);

/// A running watcher; dropping it stops the thread.
#[derive(Debug)]
pub struct FibWatch {
    log: Arc<RouteLog>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FibWatch {
    /// Starts watching the kernel table of `netns`; returns once subscribed, so no change
    /// made after this returns is missed.
    pub fn start(netns: &lab::Netns, name: &str) -> Result<FibWatch> {
        let log = Arc::new(RouteLog::new(format!("kernel table of {name}")));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, subscribed) = std::sync::mpsc::channel();
        let thread = {
            let log = log.clone();
            let stop = stop.clone();
            let thread_name = format!("fibwatch {name}");
            netns.enter(move || {
                std::thread::Builder::new()
                    .name(thread_name)
                    .spawn(move || run(&log, &stop, &ready))
            })??
        };
        let watch = FibWatch {
            log,
            stop,
            thread: Some(thread),
        };
        subscribed
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow!("the route watcher in {} did not start", netns.name()))??;
        Ok(watch)
    }

    /// The log of kernel route events.
    pub fn log(&self) -> &Arc<RouteLog> {
        &self.log
    }
}

impl Drop for FibWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(log: &RouteLog, stop: &AtomicBool, ready: &std::sync::mpsc::Sender<Result<()>>) {
    let socket = match subscribe() {
        Ok(socket) => {
            let _ = ready.send(Ok(()));
            socket
        }
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let mut buffer: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut changes: Vec<(Key, bool)> = Vec::new();
    let mut pending = false;
    let mut last_notify = Instant::now();
    let mut blocking = false;
    while !stop.load(Ordering::Relaxed) {
        buffer.clear();
        let flags = if blocking { 0 } else { libc::MSG_DONTWAIT };
        match socket.recv(&mut buffer, flags) {
            Ok(_) => {
                let at = Instant::now();
                changes.clear();
                parse(&buffer, &mut changes);
                if !changes.is_empty() {
                    log.record_quietly(at, changes.drain(..));
                    pending = true;
                }
                if pending && at.duration_since(last_notify) >= NOTIFY_EVERY {
                    log.notify();
                    pending = false;
                    last_notify = at;
                }
                blocking = false;
            }
            Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => log.record_overrun(),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                // Drained (or the blocking wait timed out): wake waiters, then block.
                if pending {
                    log.notify();
                    pending = false;
                    last_notify = Instant::now();
                }
                blocking = true;
            }
            Err(error) => {
                log.record_failure(format!("receiving route events: {error}"));
                return;
            }
        }
    }
}

fn subscribe() -> Result<Socket> {
    system::pin_current_thread(system::cpus().generator)?;
    let mut socket = Socket::new(NETLINK_ROUTE).context("opening a NETLINK_ROUTE socket")?;
    socket
        .bind(&SocketAddr::new(0, IPV4_ROUTE_GROUP))
        .context("subscribing to IPv4 route changes")?;
    if setsockopt(&socket, sockopt::RcvBufForce, &RECEIVE_BUFFER).is_err() {
        // Without CAP_NET_ADMIN: as much as rmem_max allows.
        socket
            .set_rx_buf_sz(RECEIVE_BUFFER)
            .context("raising the netlink receive buffer")?;
    }
    let timeout = TimeVal::new(0, STOP_CHECK.as_micros() as libc::suseconds_t);
    setsockopt(&socket, sockopt::ReceiveTimeout, &timeout)
        .context("setting the netlink receive timeout")?;
    Ok(socket)
}

/// The route changes of interest in one datagram, appended to `out`.
pub fn parse(datagram: &[u8], out: &mut Vec<(Key, bool)>) {
    let mut rest = datagram;
    while let Ok(buffer) = NetlinkBuffer::new_checked(rest) {
        let length = buffer.length() as usize;
        let Some(message) = rest.get(..length) else {
            break;
        };
        if let Ok(NetlinkMessage {
            payload: NetlinkPayload::InnerMessage(inner),
            ..
        }) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(message)
        {
            match inner {
                RouteNetlinkMessage::NewRoute(route) => out.extend(change(&route, true)),
                RouteNetlinkMessage::DelRoute(route) => out.extend(change(&route, false)),
                _ => {}
            }
        }
        // Messages are aligned to 4 octets.
        let next = (length + 3) & !3;
        if next == 0 || next >= rest.len() {
            break;
        }
        rest = &rest[next..];
    }
}

/// The key of a unicast IPv4 route of the main table not made by the kernel itself.
fn change(route: &RouteMessage, added: bool) -> Option<(Key, bool)> {
    let header = &route.header;
    if header.kind != RouteType::Unicast || header.protocol == RouteProtocol::Kernel {
        return None;
    }
    let mut table = u32::from(header.table);
    let mut destination = None;
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(address)) => {
                destination = Some(*address)
            }
            _ => {}
        }
    }
    if table != MAIN_TABLE {
        return None;
    }
    let destination = destination.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    Some((
        Key::new(destination, header.destination_prefix_length),
        added,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    /// RTM_NEWROUTE for 32.0.0.64/26 via 10.1.1.1 dev 2, table main, proto bird (12):
    /// assembled field by field from linux/rtnetlink.h (struct nlmsghdr, struct rtmsg,
    /// then the attributes in the order Linux 6.x writes them). `kernel_route_events`
    /// below checks the same parser against the real kernel.
    const NEW_ROUTE: &str = concat!(
        "44000000", "18000000", "00000000", "00000000", // nlmsghdr: len 68, RTM_NEWROUTE
        "02", "1a", "00", "00", "fe", "0c", "00", "01",
        "00000000", // rtmsg: inet /26 main bird unicast
        "08000f00", "fe000000", // RTA_TABLE 254
        "08000100", "20000040", // RTA_DST 32.0.0.64
        "08000600", "20000000", // RTA_PRIORITY 32
        "08000500", "0a010101", // RTA_GATEWAY 10.1.1.1
        "08000400", "02000000", // RTA_OIF 2
    );

    fn bytes(hex_text: &str) -> Vec<u8> {
        (0..hex_text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex_text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn new_route_of_the_main_table() {
        let mut out = Vec::new();
        parse(&bytes(NEW_ROUTE), &mut out);
        assert_eq!(out, [(Key::of("32.0.0.64/26".parse().unwrap()), true)]);
    }

    #[test]
    fn deletion_other_tables_and_kernel_routes() {
        let mut deleted = bytes(NEW_ROUTE);
        deleted[4] = 25; // RTM_DELROUTE
        let mut out = Vec::new();
        parse(&deleted, &mut out);
        assert_eq!(out, [(Key::of("32.0.0.64/26".parse().unwrap()), false)]);

        let mut local = bytes(NEW_ROUTE);
        local[20] = 255; // rtm_table
        local[32..36].copy_from_slice(&[255, 0, 0, 0]); // RTA_TABLE value
        out.clear();
        parse(&local, &mut out);
        assert!(out.is_empty());

        let mut connected = bytes(NEW_ROUTE);
        connected[21] = 2; // RTPROT_KERNEL
        parse(&connected, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn several_messages_in_one_datagram_and_garbage() {
        let mut two = bytes(NEW_ROUTE);
        two.extend(bytes(NEW_ROUTE));
        let mut out = Vec::new();
        parse(&two, &mut out);
        assert_eq!(out.len(), 2);
        out.clear();
        parse(&two[..30], &mut out);
        parse(&[0xff; 7], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn kernel_route_events() {
        let Some(_ready) = lab::require!(Root) else {
            return;
        };
        let netns = lab::Netns::new("wbfib").unwrap();
        // A veth pair inside the namespace (kernels without the dummy module have veth).
        let _link = lab::Veth::new(&netns, "d0", &netns, "d1").unwrap();
        netns.iface("d0").addr("10.9.0.1/24").unwrap();
        let watch = FibWatch::start(&netns, "test").unwrap();
        let log = watch.log().clone();
        let key = Key::of("32.0.0.64/26".parse().unwrap());
        let mark = log.mark();
        netns
            .ip(&[
                "route",
                "add",
                "32.0.0.64/26",
                "via",
                "10.9.0.2",
                "proto",
                "bird",
            ])
            .unwrap();
        // Neither another table nor a connected route is watched.
        netns
            .ip(&[
                "route",
                "add",
                "32.0.1.0/26",
                "via",
                "10.9.0.2",
                "table",
                "100",
            ])
            .unwrap();
        netns.iface("d0").addr("10.9.1.1/24").unwrap();
        log.wait_all_present(Duration::from_secs(30), &[key])
            .unwrap();
        netns.ip(&["route", "del", "32.0.0.64/26"]).unwrap();
        log.wait_none_present(Duration::from_secs(30), &[key])
            .unwrap();
        // The two events, and only them, arrived: wait for a marker after the noise.
        let marker = Key::of("32.0.2.0/26".parse().unwrap());
        netns
            .ip(&["route", "add", "32.0.2.0/26", "via", "10.9.0.2"])
            .unwrap();
        log.wait_all_present(Duration::from_secs(30), &[marker])
            .unwrap();
        assert_eq!(log.count_since(mark, |e| e.key == key && e.added), 1);
        assert_eq!(log.count_since(mark, |e| e.key == key && !e.added), 1);
        assert_eq!(
            log.count_since(mark, |e| e.key != key && e.key != marker),
            0
        );
        log.check_complete().unwrap();
    }
}
