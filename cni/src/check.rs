//! CHECK: IPAM's CHECK (delegated), then the kernel state compared with `prevResult`,
//! from outside in: the host veth (kind, MAC, up, MTU, alias), its sysctls and
//! `IP/32 dev wrenX scope link` routes, then inside the pod's namespace the interface
//! (up, MTU, MAC), its addresses, the permanent neighbour entries for the gateways, the
//! on-link route to 169.254.1.1 and the default routes. The first difference fails
//! CHECK with a message naming it.

use std::net::IpAddr;

use crate::config::{Config, Env};
use crate::delegate;
use crate::error::{Error, Result};
use crate::kernel::{Kernel, Link};
use crate::netns::Netns;
use crate::pod::{self, HOST_MAC, Plan, mac_text};
use crate::sysctl;

pub async fn check(env: &Env, config: &Config) -> Result<()> {
    let previous = config.net.prev_result.clone().ok_or_else(|| {
        Error::Config(String::from(
            "CHECK needs \"prevResult\" (the result of ADD)",
        ))
    })?;
    delegate::run(env, config, "CHECK").await?;
    let netns = Netns::open(env.netns()?)?;
    let ifname = env.ifname()?.to_string();
    let host_link = env.host_link()?;
    let mtu = previous.interfaces.iter().find_map(|i| i.mtu);
    let plan = Plan {
        host_link,
        ifname,
        attachment: env.attachment()?,
        mtu: mtu.unwrap_or_default(),
        addresses: previous.ips.iter().map(|ip| ip.address.addr()).collect(),
    };
    if plan.addresses.is_empty() {
        return Err(Error::Check(String::from("prevResult has no address")));
    }
    let host = Kernel::open()?;
    let host_mtu = check_host(&host, &plan, mtu).await?;
    let pod_mac = previous
        .interfaces
        .iter()
        .find(|i| i.name == plan.ifname && i.sandbox.is_some())
        .map(|i| i.mac.clone());
    let expected = Expected {
        plan,
        mtu: host_mtu,
        pod_mac,
    };
    netns.run(|kernel| check_pod(kernel, expected))
}

fn differs(what: String) -> Error {
    Error::Check(what)
}

/// The host side; returns the host veth's MTU, which the pod end must share.
async fn check_host(host: &Kernel, plan: &Plan, mtu: Option<u32>) -> Result<u32> {
    let name = &plan.host_link;
    let link = host
        .link(name)
        .await?
        .ok_or_else(|| differs(format!("host link {name} does not exist")))?;
    check_link(&link, "host link", mtu)?;
    if link.kind.as_deref() != Some("veth") {
        return Err(differs(format!(
            "host link {name} is {:?}, not a veth",
            link.kind
        )));
    }
    if link.mac != HOST_MAC {
        return Err(differs(format!(
            "host link {name} has MAC {}, not {}",
            mac_text(&link.mac),
            mac_text(&HOST_MAC)
        )));
    }
    if link.alias.as_deref() != Some(plan.attachment.as_str()) {
        return Err(differs(format!(
            "host link {name} belongs to {:?}, not {}",
            link.alias.as_deref().unwrap_or_default(),
            plan.attachment
        )));
    }
    if let Some(difference) = sysctl::first_difference(&plan.host_sysctls())? {
        return Err(differs(format!("host: {difference}")));
    }
    for ipv6 in [false, true] {
        let routes = host.routes(ipv6).await?;
        for address in plan.addresses.iter().filter(|a| a.is_ipv6() == ipv6) {
            let prefix = pod::host_prefix(*address);
            let found = routes.iter().any(|r| {
                r.destination == prefix
                    && r.oif == Some(link.index)
                    && r.gateway.is_none()
                    && (ipv6 || r.scope_link)
            });
            if !found {
                return Err(differs(format!(
                    "host has no route {prefix} dev {name} scope link"
                )));
            }
        }
    }
    link.mtu
        .ok_or_else(|| differs(format!("host link {name} reports no MTU")))
}

fn check_link(link: &Link, what: &str, mtu: Option<u32>) -> Result<()> {
    if !link.up {
        return Err(differs(format!("{what} {} is down", link.name)));
    }
    if let (Some(expected), Some(now)) = (mtu, link.mtu)
        && expected != now
    {
        return Err(differs(format!(
            "{what} {} has MTU {now}, not {expected}",
            link.name
        )));
    }
    Ok(())
}

/// What the pod side must show.
#[derive(Debug)]
struct Expected {
    plan: Plan,
    mtu: u32,
    pod_mac: Option<String>,
}

/// Inside the pod's namespace.
async fn check_pod(kernel: Kernel, expected: Expected) -> Result<()> {
    let plan = &expected.plan;
    let name = &plan.ifname;
    let link = kernel
        .link(name)
        .await?
        .ok_or_else(|| differs(format!("pod interface {name} does not exist")))?;
    check_link(&link, "pod interface", Some(expected.mtu))?;
    if let Some(mac) = &expected.pod_mac
        && !mac.is_empty()
        && !mac.eq_ignore_ascii_case(&mac_text(&link.mac))
    {
        return Err(differs(format!(
            "pod interface {name} has MAC {}, not {mac} (prevResult)",
            mac_text(&link.mac)
        )));
    }
    let addresses = kernel.addresses(&link).await?;
    for address in &plan.addresses {
        let prefix = pod::host_prefix(*address);
        if !addresses.contains(&prefix) {
            return Err(differs(format!(
                "pod interface {name} has no address {prefix} (has: {})",
                list(&addresses)
            )));
        }
    }
    if let Some(difference) = sysctl::first_difference(&plan.pod_sysctls())? {
        return Err(differs(format!("pod: {difference}")));
    }
    let neighbours = kernel.neighbours(&link).await?;
    for gateway in plan.gateways() {
        let permanent = neighbours.iter().any(|n| {
            n.address == gateway && n.permanent && n.mac.as_deref() == Some(&HOST_MAC[..])
        });
        if !permanent {
            return Err(differs(format!(
                "pod has no permanent neighbour {gateway} lladdr {} dev {name}",
                mac_text(&HOST_MAC)
            )));
        }
        let routes = kernel.routes(gateway.is_ipv6()).await?;
        let route = |destination, via: Option<IpAddr>| {
            routes.iter().any(|r| {
                r.destination == destination && r.gateway == via && r.oif == Some(link.index)
            })
        };
        if gateway.is_ipv4() && !route(pod::host_prefix(gateway), None) {
            return Err(differs(format!(
                "pod has no route {gateway} dev {name} scope link"
            )));
        }
        if !route(pod::default_route(gateway), Some(gateway)) {
            return Err(differs(format!(
                "pod has no route default via {gateway} dev {name}"
            )));
        }
    }
    Ok(())
}

fn list(items: &[ipnet::IpNet]) -> String {
    if items.is_empty() {
        return String::from("none");
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
