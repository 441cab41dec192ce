//! Telling a caller what route-sync does to the kernel, route by route
//! (`bgpctl monitor fib`): an [`Observer`] given to [`start_observed`](crate::start_observed)
//! is told of every add, replace and delete the kernel settled (done or refused)
//! and of every desired route that cannot be installed, as a
//! [`KernelOperation`].
//!
//! Cost: the syncer asks [`Observer::wanted`] once per batch of requests; while it
//! says no, no operation is built.

use std::fmt;

use crate::message::{KernelKind, Request};
use crate::{InstalledNextHop, KernelAction, KernelOperation};

/// Who is told of the syncer's kernel operations. Called on the syncer task: it
/// must return at once (hand the operation on, never wait).
pub trait Observer: Send + Sync + fmt::Debug {
    /// Whether anybody wants operations now.
    fn wanted(&self) -> bool;
    /// One operation settled (or one route found impossible to install).
    fn operation(&self, operation: KernelOperation);
}

/// The action of a request.
pub(crate) fn action(request: Request) -> KernelAction {
    match request {
        Request::Add => KernelAction::Add,
        Request::Replace => KernelAction::Replace,
        Request::Delete => KernelAction::Delete,
    }
}

/// A kernel form as `show fib` and `monitor fib` name it: its kind and next hops,
/// with device names from `device_name`.
pub(crate) fn kind_and_hops(
    kind: Option<&KernelKind>,
    device_name: impl Fn(u32) -> String,
) -> (String, Vec<InstalledNextHop>) {
    let Some(kind) = kind else {
        return ("unicast".to_string(), Vec::new());
    };
    let next_hops = match kind {
        KernelKind::Unicast(hops) => hops
            .iter()
            .map(|hop| InstalledNextHop {
                gateway: hop.gateway,
                device: device_name(hop.ifindex),
            })
            .collect(),
        KernelKind::Blackhole | KernelKind::Other(_) => Vec::new(),
    };
    (kind_name(kind), next_hops)
}

/// How `show fib`, `monitor fib` and the metrics name a kernel form.
pub(crate) fn kind_name(kind: &KernelKind) -> String {
    match kind {
        KernelKind::Unicast(_) => String::from("unicast"),
        KernelKind::Blackhole => String::from("blackhole"),
        KernelKind::Other(kind) => format!("type {kind}"),
    }
}
