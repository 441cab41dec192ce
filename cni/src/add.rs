//! ADD: IPAM first (delegated), then the veth pair (the host end named after the pod,
//! the pod end created straight inside the pod's namespace), the host side (sysctls,
//! alias, up, `IP/32 dev wrenX scope link`), then the pod side on a thread inside its
//! namespace (sysctls, up, `IP/32`, `169.254.1.1 dev eth0 scope link`, the permanent
//! neighbour entry, the default routes). A failure after IPAM deletes the host link
//! (which takes the pod end and the host routes with it) and releases the addresses.

use crate::config::{Config, Env};
use crate::delegate;
use crate::error::{Error, Result};
use crate::kernel::{self, Kernel, Link};
use crate::mtu;
use crate::netns::Netns;
use crate::pod::{self, HOST_MAC, Plan};
use crate::sysctl;

pub async fn add(env: &Env, config: &Config) -> Result<String> {
    let netns = Netns::open(env.netns()?)?;
    let ifname = env.ifname()?.to_string();
    let host_link = env.host_link()?;
    let attachment = env.attachment()?;
    let mtu = mtu::resolve(&config.plugin)?;
    let host = Kernel::open()?;
    let ipam = delegate::add(env, config).await?;
    let plan = Plan {
        host_link,
        ifname,
        attachment,
        mtu,
        addresses: ipam.ips.iter().map(|ip| ip.address.addr()).collect(),
    };
    let mut created = false;
    let made = make(&host, &netns, &plan, &mut created).await;
    match made {
        Ok(pod_mac) => {
            let result = plan.result(&pod_mac, &netns.path().to_string_lossy(), ipam.dns);
            Ok(pod::result_json(config.version, result))
        }
        Err(error) => {
            if created {
                undo(&host, &plan).await;
            }
            // The addresses go back; a failure here leaves them to the runtime's DEL or GC.
            let _ = delegate::run(env, config, "DEL").await;
            Err(error)
        }
    }
}

/// Makes the attachment; returns the pod interface's MAC. `created` tells whether the
/// veth pair was made (and so is this ADD's to delete on failure).
async fn make(host: &Kernel, netns: &Netns, plan: &Plan, created: &mut bool) -> Result<Vec<u8>> {
    if plan.addresses.is_empty() {
        return Err(Error::Config(String::from(
            "the IPAM plugin returned no address",
        )));
    }
    if plan.has_ipv6() && plan.mtu < mtu::MIN_MTU_IPV6 {
        return Err(Error::Config(format!(
            "MTU {} is below IPv6's minimum {} and the pod has an IPv6 address",
            plan.mtu,
            mtu::MIN_MTU_IPV6
        )));
    }
    if host.link(&plan.host_link).await?.is_some() {
        return Err(Error::LinkExists(format!(
            "host link {} exists already (the pod has an attachment on this node, or one was left behind: CNI GC removes it)",
            plan.host_link
        )));
    }
    if let Err(e) = host
        .create_veth(
            &plan.host_link,
            HOST_MAC,
            &plan.ifname,
            netns.raw_fd(),
            plan.mtu,
        )
        .await
    {
        return Err(
            if kernel::is_exists(&e) && host.link(&plan.host_link).await?.is_none() {
                Error::LinkExists(format!(
                    "{} exists already in pod network namespace {}",
                    plan.ifname,
                    netns.path().display()
                ))
            } else {
                Error::kernel(
                    format!("creating veth {} / {}", plan.host_link, plan.ifname),
                    kernel::describe(&e),
                )
            },
        );
    }
    *created = true;
    let link = host.link(&plan.host_link).await?.ok_or_else(|| {
        Error::kernel(
            format!("host link {}", plan.host_link),
            "vanished right after it was made",
        )
    })?;
    host_side(host, &link, plan).await?;
    let pod_mac = netns.run(|kernel| pod_side(kernel, plan.clone()))?;
    if !netns.still_there() {
        return Err(Error::Netns {
            path: netns.path().to_owned(),
            reason: String::from("was deleted during ADD"),
        });
    }
    Ok(pod_mac)
}

async fn host_side(host: &Kernel, link: &Link, plan: &Plan) -> Result<()> {
    sysctl::apply_all(&plan.host_sysctls())?;
    host.set_up(link, Some(&plan.attachment)).await?;
    for address in &plan.addresses {
        host.add_route(pod::host_prefix(*address), link, None)
            .await?;
    }
    Ok(())
}

/// Inside the pod's namespace.
async fn pod_side(kernel: Kernel, plan: Plan) -> Result<Vec<u8>> {
    let link = kernel.link(&plan.ifname).await?.ok_or_else(|| {
        Error::kernel(
            format!("pod interface {}", plan.ifname),
            "is not in the pod's namespace after the veth was made",
        )
    })?;
    sysctl::apply_all(&plan.pod_sysctls())?;
    kernel.set_up(&link, None).await?;
    for address in &plan.addresses {
        let prefix = pod::host_prefix(*address);
        kernel
            .add_address(&link, *address, prefix.prefix_len())
            .await?;
    }
    for gateway in plan.gateways() {
        kernel.add_neighbour(&link, gateway, HOST_MAC).await?;
        if gateway.is_ipv4() {
            // 169.254.1.1 on-link, so the default route can use it.
            kernel
                .add_route(pod::host_prefix(gateway), &link, None)
                .await?;
        }
        kernel
            .add_route(pod::default_route(gateway), &link, Some(gateway))
            .await?;
    }
    Ok(link.mac)
}

/// Deletes what ADD made on the host (the pod end and the routes go with the link).
async fn undo(host: &Kernel, plan: &Plan) {
    if let Ok(Some(link)) = host.link(&plan.host_link).await {
        let _ = host.delete_link(link.index, &plan.host_link).await;
    }
}
