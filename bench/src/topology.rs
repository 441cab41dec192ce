//! The benchmark topology, built with the lab library: one generator namespace, and per
//! daemon under test a "slot" — its own namespace joined to the generator by a veth pair.
//!
//! Slot `k` (1..=250, reused once free) uses 10.k.0.0/16: the daemon is 10.k.0.1 on `d0`; the generator's
//! simulated peers are 10.k.(1 + i/250).(1 + i%250) and the monitor peer 10.k.250.1, all
//! on the generator's `gk`, each with a permanent neighbour entry in the daemon's
//! namespace. Every slot has a [`FibWatch`] on its kernel table from the moment it exists. Several slots can live at once (the mesh scenario keeps idle daemons
//! while the next one converges).

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use lab::{Netns, Veth};

use crate::fibwatch::FibWatch;
use crate::generator::Generator;
use crate::routelog::RouteLog;

/// Peers a slot can hold.
pub const MAX_PEERS: usize = 249 * 250;

/// The generator namespace and its generator.
#[derive(Debug)]
pub struct Bench {
    // Dropped first: sessions close before the namespace goes.
    generator: Generator,
    netns: Netns,
    free: Arc<Mutex<Vec<u8>>>,
}

impl Bench {
    /// Creates the generator namespace and starts the generator in it.
    pub fn new() -> Result<Bench> {
        let netns = Netns::new("wbgen").context("creating the generator namespace")?;
        let generator = Generator::start(&netns)?;
        Ok(Bench {
            generator,
            netns,
            // Handed out lowest first.
            free: Arc::new(Mutex::new((1..=250).rev().collect())),
        })
    }

    /// The generator.
    pub fn generator(&self) -> &Generator {
        &self.generator
    }

    /// The generator's namespace (where `k8s-join` puts its bridge and control plane).
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// A new slot for a daemon with room for `peers` simulated peers and a monitor.
    pub fn slot(&self, name: &str, peers: usize) -> Result<Slot> {
        if peers > MAX_PEERS {
            bail!("{peers} peers do not fit in a slot (at most {MAX_PEERS})");
        }
        let index = self
            .free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
            .ok_or_else(|| anyhow::anyhow!("out of slots (250 at once)"))?;
        let lease = Lease {
            index,
            free: self.free.clone(),
        };
        let netns = Netns::new(&format!("wb{name}"))
            .with_context(|| format!("creating the namespace of {name}"))?;
        let gen_if = format!("g{index}");
        let veth = Veth::new(&self.netns, &gen_if, &netns, "d0")?;
        netns
            .iface("d0")
            .addr(&format!("{}/16", daemon_address(index)))?;
        let mut lines: Vec<String> = (0..peers)
            .map(|i| format!("addr add {}/16 dev {gen_if}", peer_address(index, i)))
            .collect();
        lines.push(format!(
            "addr add {}/16 dev {gen_if}",
            monitor_address(index)
        ));
        crate::system::ip_batch(self.netns.name(), &lines, None, netns.dir())?;
        // Permanent neighbour entries for every peer: the kernel's ARP table is shared by
        // all namespaces and holds at most gc_thresh3 (1024) learned entries, which the
        // mesh scenario's idle daemons would exceed; permanent entries do not count.
        let mac = self.netns.iface(&gen_if).show()?["address"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no MAC address on {gen_if}"))?;
        let neighbours: Vec<String> = (0..peers)
            .map(|i| peer_address(index, i))
            .chain([monitor_address(index)])
            .map(|addr| format!("neigh replace {addr} lladdr {mac} dev d0 nud permanent"))
            .collect();
        crate::system::ip_batch(netns.name(), &neighbours, None, netns.dir())?;
        let fib = FibWatch::start(&netns, name)?;
        Ok(Slot {
            index,
            name: name.to_owned(),
            peers,
            fib,
            _veth: veth,
            netns,
            _lease: lease,
        })
    }
}

/// One daemon's namespace and link. See the module documentation.
#[derive(Debug)]
pub struct Slot {
    index: u8,
    name: String,
    peers: usize,
    fib: FibWatch,
    _veth: Veth,
    netns: Netns,
    // Last: the index is free again once the link and namespace are gone.
    _lease: Lease,
}

/// A slot index, returned to the free list on drop.
#[derive(Debug)]
struct Lease {
    index: u8,
    free: Arc<Mutex<Vec<u8>>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(self.index);
    }
}

impl Slot {
    /// The daemon's address (also its router id).
    pub fn daemon(&self) -> Ipv4Addr {
        daemon_address(self.index)
    }

    /// The address of simulated peer `i` (from 0).
    pub fn peer(&self, i: usize) -> Ipv4Addr {
        peer_address(self.index, i)
    }

    /// The addresses of all peers the slot was made for.
    pub fn peers(&self) -> Vec<Ipv4Addr> {
        (0..self.peers).map(|i| self.peer(i)).collect()
    }

    /// The monitor peer's address.
    pub fn monitor(&self) -> Ipv4Addr {
        monitor_address(self.index)
    }

    /// The daemon's namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The slot's name (for messages and file names).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel route log of the daemon's namespace.
    pub fn kernel(&self) -> &Arc<RouteLog> {
        self.fib.log()
    }
}

fn daemon_address(slot: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, slot, 0, 1)
}

fn peer_address(slot: u8, i: usize) -> Ipv4Addr {
    let i = i.min(MAX_PEERS - 1);
    Ipv4Addr::new(10, slot, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

fn monitor_address(slot: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, slot, 250, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_never_collide() {
        assert_eq!(daemon_address(3).to_string(), "10.3.0.1");
        assert_eq!(peer_address(3, 0).to_string(), "10.3.1.1");
        assert_eq!(peer_address(3, 249).to_string(), "10.3.1.250");
        assert_eq!(peer_address(3, 250).to_string(), "10.3.2.1");
        assert_eq!(peer_address(3, MAX_PEERS - 1).to_string(), "10.3.249.250");
        assert_eq!(monitor_address(3).to_string(), "10.3.250.1");
    }
}
