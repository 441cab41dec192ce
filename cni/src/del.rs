//! DEL and GC.
//!
//! DEL is idempotent: a namespace or link that is gone already is success. It deletes
//! the host link when its alias names this attachment (a link of the same name made for
//! a newer container of the same pod is left alone), which takes the pod end and the
//! host routes with it; when there is no such host link it deletes the pod's interface
//! inside the namespace, if both are still there. Then IPAM releases the addresses
//! (delegated, with a timeout).
//!
//! GC deletes every host link this plugin made (`wren` + 11 hex characters, a veth)
//! whose alias is not one of the runtime's `cni.dev/valid-attachments`, with its routes,
//! then delegates GC to IPAM, which releases every address not held by a valid
//! attachment.

use std::collections::HashSet;

use crate::config::{self, Config, Env};
use crate::delegate;
use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::netns::Netns;

pub async fn del(env: &Env, config: &Config) -> Result<()> {
    let host = Kernel::open()?;
    let name = env.host_link()?;
    let attachment = env.attachment()?;
    let mut deleted = false;
    if let Some(link) = host.link(&name).await?
        && link.alias.as_deref() == Some(attachment.as_str())
    {
        deleted = host.delete_link(link.index, &name).await?;
    }
    if !deleted
        && let Some(path) = env.netns.as_deref()
        && let Some(netns) = Netns::open_if_present(path)?
    {
        let ifname = env.ifname()?.to_string();
        netns.run(|kernel| async move {
            if let Some(link) = kernel.link(&ifname).await?
                && link.kind.as_deref() == Some("veth")
            {
                kernel.delete_link(link.index, &ifname).await?;
            }
            Ok(())
        })?;
    }
    delegate::run(env, config, "DEL").await?;
    Ok(())
}

pub async fn gc(env: &Env, config: &Config) -> Result<()> {
    let valid: HashSet<String> = config
        .net
        .valid_attachments
        .as_ref()
        .ok_or_else(|| {
            Error::Config(String::from(
                "GC needs \"cni.dev/valid-attachments\" (an empty list releases everything)",
            ))
        })?
        .iter()
        .map(|a| config::attachment(&a.container_id, &a.ifname))
        .collect();
    let host = Kernel::open()?;
    for link in host.links().await? {
        let ours = config::is_host_link(&link.name) && link.kind.as_deref() == Some("veth");
        let valid = link
            .alias
            .as_ref()
            .is_some_and(|alias| valid.contains(alias));
        if ours && !valid {
            host.delete_link(link.index, &link.name).await?;
        }
    }
    delegate::run(env, config, "GC").await?;
    Ok(())
}
