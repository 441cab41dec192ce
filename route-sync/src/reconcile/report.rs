//! How the syncer's state reads to people: why a route is not installed, the
//! kernel's refusals as one line naming the route, and the operations told to an
//! [`Observer`](crate::Observer) (`bgpctl monitor fib`).

use std::fmt::Write as _;

use ipnet::IpNet;

use super::{State, is_v6};
use crate::KernelAction;
use crate::KernelOperation;
use crate::error::{Operation as Verb, RouteError};
use crate::message::{KernelKind, Request};
use crate::observe;
use crate::table::Slot;

impl State {
    /// What is wrong with a route, if anything.
    pub(super) fn problem(&self, prefix: IpNet, slot: &Slot) -> Option<RouteError> {
        if let Some(refused) = self.refused.get(&prefix) {
            let detail = refused
                .detail
                .and_then(|detail| self.details.get(detail))
                .cloned();
            return Some(self.kernel_error(
                prefix,
                refused.request,
                refused.kind,
                refused.errno,
                detail,
            ));
        }
        let resolution = self.resolutions.get(&(slot.desired()?, is_v6(prefix)))?;
        match &resolution.kind {
            Err(failure) => Some(failure.at(prefix)),
            Ok(_) => resolution.warning.as_ref().map(|w| w.at(prefix)),
        }
    }

    pub(super) fn kernel_error(
        &self,
        prefix: IpNet,
        request: Request,
        kind: Option<u32>,
        errno: i32,
        detail: Option<String>,
    ) -> RouteError {
        RouteError::Kernel {
            operation: match request {
                Request::Add => Verb::Add,
                Request::Replace => Verb::Replace,
                Request::Delete => Verb::Delete,
            },
            route: self.describe(prefix, self.kernel_kind(kind)),
            table: self.placement.table,
            metric: self.placement.metric,
            errno,
            detail,
        }
    }

    /// Tells the observer of one operation on `prefix` (kernel form `kind`).
    pub(super) fn tell(
        &self,
        action: KernelAction,
        prefix: IpNet,
        kind: Option<u32>,
        error: Option<String>,
    ) {
        if let Some(observer) = &self.observer {
            let (kind, next_hops) =
                observe::kind_and_hops(self.kernel_kind(kind), |index| self.device_name(index));
            observer.operation(KernelOperation {
                action,
                prefix,
                kind,
                next_hops,
                error,
            });
        }
    }

    pub(super) fn device_name(&self, index: u32) -> String {
        self.resolver
            .link_name(index)
            .map(str::to_string)
            .unwrap_or_else(|| format!("if{index}"))
    }

    /// `10.1.0.0/24 via 10.0.0.2 dev eth0` for error messages.
    fn describe(&self, prefix: IpNet, kind: Option<&KernelKind>) -> String {
        let mut text = prefix.to_string();
        match kind {
            Some(KernelKind::Blackhole) => text.push_str(" blackhole"),
            Some(KernelKind::Unicast(hops)) => {
                for hop in hops {
                    if let Some(gateway) = hop.gateway {
                        let _ = write!(text, " via {gateway}");
                    }
                    let _ = write!(text, " dev {}", self.device_name(hop.ifindex));
                    if hop.onlink {
                        text.push_str(" onlink");
                    }
                }
            }
            Some(KernelKind::Other(kind)) => {
                let _ = write!(text, " type {kind}");
            }
            None => {}
        }
        text
    }
}
