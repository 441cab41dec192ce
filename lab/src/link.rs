//! Links between namespaces (veth pairs) and interface settings: addresses, up/down, MTU,
//! and netem faults (`tc qdisc ... netem loss N%`).
//!
//! A veth pair is created directly with its two ends in their namespaces, so its names never
//! collide with the host's interfaces. Dropping the [`Veth`] guard deletes the pair (deleting
//! either namespace does too).

use std::process::Command;

use crate::command;
use crate::error::{Error, Result};
use crate::names::valid_ifname;
use crate::netns::Netns;

/// One end of a link: a namespace (or the host, `None`) and an interface name.
pub type End<'a> = (Option<&'a Netns>, &'a str);

/// A veth pair guard.
#[derive(Debug)]
pub struct Veth {
    a_netns: Option<String>,
    a_name: String,
    b_netns: Option<String>,
    b_name: String,
    owned: bool,
}

impl Veth {
    /// Creates a veth pair with end `a_name` in `a` and `b_name` in `b`, both brought up.
    pub fn new(a: &Netns, a_name: &str, b: &Netns, b_name: &str) -> Result<Veth> {
        Veth::between((Some(a), a_name), (Some(b), b_name))
    }

    /// Creates a veth pair between two ends, each in a namespace or in the host (`None`),
    /// both brought up. Host interface names must be unique on the machine: see
    /// [`crate::unique_ifname`].
    pub fn between(a: End<'_>, b: End<'_>) -> Result<Veth> {
        for (_, name) in [a, b] {
            if !valid_ifname(name) {
                return Err(Error::invalid(
                    format!("interface name {name:?}"),
                    "must be 1-15 characters without '/', ':' or spaces",
                ));
            }
        }
        let mut args: Vec<&str> = vec!["link", "add", a.1];
        if let Some(ns) = a.0 {
            args.extend(["netns", ns.name()]);
        }
        args.extend(["type", "veth", "peer", "name", b.1]);
        if let Some(ns) = b.0 {
            args.extend(["netns", ns.name()]);
        }
        command::run(Command::new("ip").args(&args))?;
        let veth = Veth {
            a_netns: a.0.map(|ns| ns.name().to_owned()),
            a_name: a.1.to_owned(),
            b_netns: b.0.map(|ns| ns.name().to_owned()),
            b_name: b.1.to_owned(),
            owned: true,
        };
        ip(veth.a_netns.as_deref(), &["link", "set", a.1, "up"])?;
        ip(veth.b_netns.as_deref(), &["link", "set", b.1, "up"])?;
        Ok(veth)
    }

    /// The name of end a.
    pub fn a_name(&self) -> &str {
        &self.a_name
    }

    /// The name of end b.
    pub fn b_name(&self) -> &str {
        &self.b_name
    }

    /// Leaves the pair in place after the guard is gone (for `wren-lab up`).
    pub fn persist(mut self) {
        self.owned = false;
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        if self.owned {
            // The pair may be gone already with its namespace; that is fine.
            let _ = ip(self.a_netns.as_deref(), &["link", "del", &self.a_name]);
        }
    }
}

/// An interface inside a namespace, for configuring it: `ns.iface("eth1").addr("10.0.0.1/24")`.
#[derive(Debug, Clone, Copy)]
pub struct Iface<'a> {
    netns: &'a Netns,
    name: &'a str,
}

impl Netns {
    /// A handle on interface `name` of this namespace.
    pub fn iface<'a>(&'a self, name: &'a str) -> Iface<'a> {
        Iface { netns: self, name }
    }
}

impl Iface<'_> {
    /// Adds an address with prefix length, IPv4 or IPv6 (`"10.0.0.1/24"`, `"fd00::1/64"`).
    /// IPv6 addresses skip duplicate address detection so they are usable at once.
    pub fn addr(self, cidr: &str) -> Result<Self> {
        let mut args = vec!["addr", "add", cidr, "dev", self.name];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.netns.ip(&args)?;
        Ok(self)
    }

    /// Removes an address.
    pub fn del_addr(self, cidr: &str) -> Result<Self> {
        self.netns.ip(&["addr", "del", cidr, "dev", self.name])?;
        Ok(self)
    }

    /// Sets the link up.
    pub fn up(self) -> Result<Self> {
        self.netns.ip(&["link", "set", self.name, "up"])?;
        Ok(self)
    }

    /// Sets the link down.
    pub fn down(self) -> Result<Self> {
        self.netns.ip(&["link", "set", self.name, "down"])?;
        Ok(self)
    }

    /// Sets the MTU.
    pub fn mtu(self, mtu: u32) -> Result<Self> {
        self.netns
            .ip(&["link", "set", self.name, "mtu", &mtu.to_string()])?;
        Ok(self)
    }

    /// Installs (or replaces) a netem root qdisc with `spec`, for example `"delay 50ms 10ms"`.
    /// Needs a kernel with `sch_netem` (this project's CI kernel has none: the error then says
    /// "Specified qdisc kind is unknown"); for packet loss use [`Iface::loss`].
    pub fn netem(self, spec: &str) -> Result<Self> {
        let mut command = Command::new("tc");
        command
            .args([
                "-n",
                self.netns.name(),
                "qdisc",
                "replace",
                "dev",
                self.name,
                "root",
                "netem",
            ])
            .args(spec.split_whitespace());
        command::run(&mut command)?;
        Ok(self)
    }

    /// Drops `percent` percent (0-100, two decimals) of the packets leaving through this
    /// interface, at random. Uses an nftables rule (`numgen random`) rather than netem,
    /// because kernels built without `sch_netem` (like this project's CI machines) still
    /// have nftables. Replaces an earlier loss setting; needs `nft` ([`crate::Prereq::Nft`]).
    pub fn loss(self, percent: f64) -> Result<Self> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(Error::invalid(
                format!("packet loss on {}", self.name),
                format!("{percent} is not 0-100"),
            ));
        }
        let chain = self.loss_chain();
        let _ = self.clear_loss();
        let ns = self.netns;
        ns.exec(&["nft", "add", "table", "inet", LOSS_TABLE])?;
        ns.exec(&[
            "nft",
            &format!("add chain inet {LOSS_TABLE} {chain} {{ type filter hook postrouting priority 0 ; policy accept ; }}"),
        ])?;
        // Out of 10000 so that fractional percentages work; 100% needs no random number.
        let threshold = (percent * 100.0).round() as u32;
        let random = if threshold >= 10_000 {
            String::new()
        } else {
            format!("numgen random mod 10000 < {threshold} ")
        };
        ns.exec(&[
            "nft",
            &format!(
                "add rule inet {LOSS_TABLE} {chain} oifname \"{}\" {random}counter drop",
                self.name
            ),
        ])?;
        Ok(self)
    }

    /// Removes the loss set by [`Iface::loss`].
    pub fn clear_loss(self) -> Result<Self> {
        let chain = self.loss_chain();
        self.netns
            .exec(&["nft", "delete", "chain", "inet", LOSS_TABLE, &chain])?;
        Ok(self)
    }

    fn loss_chain(self) -> String {
        let name: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("loss_{name}")
    }

    /// Removes the root qdisc set by [`Iface::netem`] (back to the default).
    pub fn clear_netem(self) -> Result<Self> {
        let mut command = Command::new("tc");
        command.args([
            "-n",
            self.netns.name(),
            "qdisc",
            "del",
            "dev",
            self.name,
            "root",
        ]);
        command::run(&mut command)?;
        Ok(self)
    }

    /// The interface's `ip -j link show` entry.
    pub fn show(self) -> Result<serde_json::Value> {
        let value = self.netns.ip_json(&["link", "show", "dev", self.name])?;
        first(
            value,
            &format!("link {} in {}", self.name, self.netns.name()),
        )
    }

    /// The interface's addresses (`ADDR/LEN` strings) from `ip -j addr show`.
    pub fn addrs(self) -> Result<Vec<String>> {
        let value = self.netns.ip_json(&["addr", "show", "dev", self.name])?;
        let entry = first(
            value,
            &format!("addresses of {} in {}", self.name, self.netns.name()),
        )?;
        Ok(entry["addr_info"]
            .as_array()
            .map(|infos| {
                infos
                    .iter()
                    .filter_map(|info| {
                        Some(format!(
                            "{}/{}",
                            info["local"].as_str()?,
                            info["prefixlen"].as_u64()?
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The interface's MTU.
    pub fn get_mtu(self) -> Result<u32> {
        let entry = self.show()?;
        entry["mtu"]
            .as_u64()
            .and_then(|mtu| u32::try_from(mtu).ok())
            .ok_or_else(|| {
                Error::invalid(
                    format!("link {} in {}", self.name, self.netns.name()),
                    "no mtu",
                )
            })
    }

    /// True when the interface's operational state is UP (for a veth: both ends up).
    pub fn is_up(self) -> Result<bool> {
        Ok(self.show()?["operstate"].as_str() == Some("UP"))
    }
}

/// The nftables table that holds the loss chains.
const LOSS_TABLE: &str = "wren_lab";

fn ip(netns: Option<&str>, args: &[&str]) -> Result<String> {
    let mut command = Command::new("ip");
    if let Some(netns) = netns {
        command.args(["-n", netns]);
    }
    command::run(command.args(args))
}

fn first(value: serde_json::Value, what: &str) -> Result<serde_json::Value> {
    match value {
        serde_json::Value::Array(mut entries) if !entries.is_empty() => Ok(entries.swap_remove(0)),
        _ => Err(Error::invalid(what, "not found")),
    }
}
