//! The syncer's tables and decisions: desired routes next to what the kernel
//! holds of ours, and the request that makes one equal to the other.
//!
//! Calling contract: the syncer task feeds desires, kernel events and dump
//! results in, pulls requests out with `next_operation`, and reports each
//! batch's outcome with `applied` or `refused_all`. Nothing here does I/O.
//! A prefix whose kernel route already equals its resolved desire produces
//! no request at all: that is what makes a restart free of churn.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;

use ipnet::IpNet;

use crate::error::{Operation as Verb, RouteError};
use crate::message::{KernelKind, KernelNextHop, KernelRoute, Placement, Request};
use crate::netlink::Refusal;
use crate::resolve::{HopFailure, Resolver};
use crate::route::{NextHop, Route, Target};
use crate::snapshot::{Counters, FailedRoute, InstalledNextHop, InstalledRoute, Snapshot};

/// One request handed to the kernel.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub prefix: IpNet,
    pub request: Request,
    pub metric: u32,
    pub kind: Option<KernelKind>,
}

#[derive(Debug, Default)]
struct Entry {
    desired: Option<Target>,
    kernel: Option<KernelKind>,
    problem: Option<RouteError>,
    /// Desired at some point since start (so not merely adopted).
    claimed: bool,
    queued: bool,
}

/// Desired and installed routes of one syncer.
#[derive(Debug)]
pub(crate) struct State {
    pub placement: Placement,
    pub resolver: Resolver,
    pub counters: Counters,
    pub converged: bool,
    max_paths: usize,
    entries: HashMap<IpNet, Entry>,
    queue: VecDeque<IpNet>,
    /// Our routes at another metric: removed after convergence.
    stale: Vec<(IpNet, u32)>,
    stale_queued: usize,
    cache: HashMap<NextHop, Result<Vec<KernelNextHop>, HopFailure>>,
    /// Installed next hops per interface index.
    links_used: HashMap<u32, usize>,
    refused: HashSet<IpNet>,
}

impl State {
    pub(crate) fn new(placement: Placement, max_paths: usize, resolver: Resolver) -> State {
        State {
            placement,
            resolver,
            counters: Counters::default(),
            converged: false,
            max_paths,
            entries: HashMap::new(),
            queue: VecDeque::new(),
            stale: Vec::new(),
            stale_queued: 0,
            cache: HashMap::new(),
            links_used: HashMap::new(),
            refused: HashSet::new(),
        }
    }

    /// Wants `route` in the kernel.
    pub(crate) fn desire(&mut self, route: Route) {
        let prefix = route.prefix.trunc();
        let entry = self.entries.entry(prefix).or_default();
        entry.desired = Some(route.target);
        entry.claimed = true;
        enqueue(&mut self.queue, prefix, entry);
    }

    /// No longer wants a route for `prefix`.
    pub(crate) fn withdraw(&mut self, prefix: IpNet) {
        let prefix = prefix.trunc();
        if let Some(entry) = self.entries.get_mut(&prefix) {
            entry.desired = None;
            entry.claimed = true;
            enqueue(&mut self.queue, prefix, entry);
        }
    }

    /// End of initial convergence: adopted routes nobody asked for go.
    pub(crate) fn mark_converged(&mut self) {
        self.converged = true;
        self.stale_queued = self.stale.len();
        for (prefix, entry) in &mut self.entries {
            if entry.desired.is_none() && entry.kernel.is_some() {
                enqueue(&mut self.queue, *prefix, entry);
            }
        }
    }

    /// Shutdown without keeping routes: everything of ours goes.
    pub(crate) fn remove_all(&mut self) {
        self.converged = true;
        self.stale_queued = self.stale.len();
        for (prefix, entry) in &mut self.entries {
            entry.desired = None;
            entry.claimed = true;
            enqueue(&mut self.queue, *prefix, entry);
        }
    }

    /// Tries routes the kernel refused again.
    pub(crate) fn retry_refused(&mut self) {
        for prefix in std::mem::take(&mut self.refused) {
            if let Some(entry) = self.entries.get_mut(&prefix) {
                enqueue(&mut self.queue, prefix, entry);
            }
        }
    }

    pub(crate) fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.stale_queued > 0
    }

    /// The next request to send, if any prefix needs one.
    pub(crate) fn next_operation(&mut self) -> Option<Operation> {
        if self.stale_queued > 0 {
            self.stale_queued -= 1;
            if let Some((prefix, metric)) = self.stale.pop() {
                return Some(Operation {
                    prefix,
                    request: Request::Delete,
                    metric,
                    kind: None,
                });
            }
        }
        while let Some(prefix) = self.queue.pop_front() {
            if let Some(operation) = self.decide(prefix) {
                return Some(operation);
            }
        }
        None
    }

    fn decide(&mut self, prefix: IpNet) -> Option<Operation> {
        let State {
            entries,
            cache,
            resolver,
            max_paths,
            placement,
            converged,
            ..
        } = self;
        let entry = entries.get_mut(&prefix)?;
        entry.queued = false;
        let operation = |request, kind| Operation {
            prefix,
            request,
            metric: placement.metric,
            kind,
        };
        match &entry.desired {
            Some(target) => match resolve_target(cache, resolver, *max_paths, prefix, target) {
                Ok((kind, warning)) => {
                    entry.problem = warning;
                    match &entry.kernel {
                        Some(installed) if *installed == kind => None,
                        Some(_) => Some(operation(Request::Replace, Some(kind))),
                        None => Some(operation(Request::Add, Some(kind))),
                    }
                }
                Err(error) => {
                    entry.problem = Some(error);
                    entry
                        .kernel
                        .is_some()
                        .then(|| operation(Request::Delete, None))
                }
            },
            None if entry.kernel.is_some() => {
                (*converged || entry.claimed).then(|| operation(Request::Delete, None))
            }
            None => {
                entries.remove(&prefix);
                None
            }
        }
    }

    /// Records a batch's outcome; `refusals` come sorted by index.
    pub(crate) fn applied(&mut self, operations: Vec<Operation>, refusals: Vec<Refusal>) {
        let mut refusals = refusals.into_iter().peekable();
        for (index, operation) in operations.into_iter().enumerate() {
            let refusal = refusals.next_if(|r| r.index == index);
            self.settle(operation, refusal);
        }
    }

    /// The whole batch failed with one error (sendmsg refused it).
    pub(crate) fn refused_all(&mut self, operations: Vec<Operation>, errno: i32) {
        for (index, operation) in operations.into_iter().enumerate() {
            let refusal = Refusal {
                index,
                errno,
                detail: None,
            };
            self.settle(operation, Some(refusal));
        }
    }

    fn settle(&mut self, operation: Operation, refusal: Option<Refusal>) {
        let prefix = operation.prefix;
        if operation.metric != self.placement.metric {
            return; // a stale route: gone or not, it is not ours to track
        }
        let gone = matches!(&refusal, Some(r) if r.errno == libc::ESRCH)
            && operation.request == Request::Delete;
        if let Some(refusal) = refusal.filter(|_| !gone) {
            self.counters.refused += 1;
            let route = self.describe(prefix, operation.kind.as_ref());
            let error = RouteError::Kernel {
                operation: match operation.request {
                    Request::Add => Verb::Add,
                    Request::Replace => Verb::Replace,
                    Request::Delete => Verb::Delete,
                },
                route,
                table: self.placement.table,
                metric: self.placement.metric,
                errno: refusal.errno,
                detail: refusal.detail,
            };
            tracing::warn!("route-sync: {error}");
            self.refused.insert(prefix);
            if let Some(entry) = self.entries.get_mut(&prefix) {
                entry.problem = Some(error);
            }
            return;
        }
        let Some(entry) = self.entries.get_mut(&prefix) else {
            return;
        };
        match operation.request {
            Request::Add => self.counters.added += 1,
            Request::Replace => self.counters.replaced += 1,
            Request::Delete => self.counters.deleted += 1,
        }
        let old = std::mem::replace(&mut entry.kernel, operation.kind);
        let new = entry.kernel.clone();
        let remove = entry.desired.is_none() && entry.kernel.is_none();
        if operation.request == Request::Delete && entry.desired.is_none() {
            entry.problem = None;
        }
        if entry
            .problem
            .as_ref()
            .is_some_and(|p| matches!(p, RouteError::Kernel { .. }))
        {
            entry.problem = None;
        }
        if remove {
            self.entries.remove(&prefix);
        }
        self.refused.remove(&prefix);
        self.count_links(old.as_ref(), new.as_ref());
    }

    /// A route change made by someone else or by the kernel. Returns true
    /// when the mirror of foreign routes changed.
    pub(crate) fn route_event(&mut self, deleted: bool, route: KernelRoute) {
        let ours = route.table == self.placement.table && route.protocol == self.placement.protocol;
        if ours && route.metric != self.placement.metric {
            let key = (route.prefix, route.metric);
            self.stale.retain(|s| *s != key);
            if !deleted {
                self.stale.push(key);
                if self.converged {
                    self.stale_queued = self.stale.len();
                }
            }
            return;
        }
        if ours {
            self.counters.external_changes += 1;
            let prefix = route.prefix;
            let kind = (!deleted).then_some(route.kind);
            let entry = self.entries.entry(prefix).or_default();
            let old = std::mem::replace(&mut entry.kernel, kind);
            let new = entry.kernel.clone();
            enqueue(&mut self.queue, prefix, entry);
            self.count_links(old.as_ref(), new.as_ref());
            return;
        }
        let lookup =
            route.table == self.placement.table || route.table == crate::config::TABLE_MAIN;
        if !lookup {
            return;
        }
        if route.table == self.placement.table && route.metric == self.placement.metric && !deleted
        {
            // Another protocol took our slot (NLM_F_REPLACE): ours is gone.
            if let Some(entry) = self.entries.get_mut(&route.prefix) {
                let old = entry.kernel.take();
                enqueue(&mut self.queue, route.prefix, entry);
                self.count_links(old.as_ref(), None);
            }
        }
        if self.resolver.update_route(deleted, route) {
            self.refresh_resolution();
        }
    }

    /// A link change. Returns true when routes of ours use the link and
    /// its state changed, so the kernel must be dumped again.
    pub(crate) fn link_event(&mut self, link: crate::watch::Link) -> bool {
        let index = link.index;
        if !self.resolver.update_link(link) {
            return false;
        }
        self.refresh_resolution();
        self.retry_refused();
        self.links_used.contains_key(&index)
    }

    /// Recomputes cached next hops; re-plans routes whose next hops moved.
    pub(crate) fn refresh_resolution(&mut self) {
        let mut moved = HashSet::new();
        for (hop, result) in &mut self.cache {
            let fresh = self.resolver.resolve(hop);
            if fresh != *result {
                *result = fresh;
                moved.insert(hop.clone());
            }
        }
        if moved.is_empty() {
            return;
        }
        for (prefix, entry) in &mut self.entries {
            if let Some(Target::Unicast(hops)) = &entry.desired {
                if hops.iter().any(|hop| moved.contains(hop)) {
                    enqueue(&mut self.queue, *prefix, entry);
                }
            }
        }
    }

    /// Replaces the view of the kernel with a fresh dump of our routes.
    pub(crate) fn load_dump(
        &mut self,
        mut ours: HashMap<IpNet, KernelKind>,
        stale: Vec<(IpNet, u32)>,
        initial: bool,
    ) {
        self.cache.clear();
        self.links_used.clear();
        self.stale = stale;
        self.stale_queued = if self.converged { self.stale.len() } else { 0 };
        for (prefix, entry) in &mut self.entries {
            entry.kernel = ours.remove(prefix);
            enqueue(&mut self.queue, *prefix, entry);
        }
        if initial {
            self.counters.adopted += ours.len() as u64;
        }
        for (prefix, kind) in ours {
            let entry = self.entries.entry(prefix).or_default();
            entry.kernel = Some(kind);
            enqueue(&mut self.queue, prefix, entry);
        }
        let used: Vec<KernelKind> = self
            .entries
            .values()
            .filter_map(|e| e.kernel.clone())
            .collect();
        for kind in &used {
            self.count_links(None, Some(kind));
        }
    }

    /// The picture for `bgpctl show fib`.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut installed = Vec::new();
        let mut failed = Vec::new();
        for (prefix, entry) in &self.entries {
            if let Some(kind) = &entry.kernel {
                let (kind_name, next_hops) = match kind {
                    KernelKind::Unicast(hops) => (
                        "unicast".to_string(),
                        hops.iter()
                            .map(|hop| InstalledNextHop {
                                gateway: hop.gateway,
                                device: self.device_name(hop.ifindex),
                            })
                            .collect(),
                    ),
                    KernelKind::Blackhole => ("blackhole".to_string(), Vec::new()),
                    KernelKind::Other(kind) => (format!("type {kind}"), Vec::new()),
                };
                installed.push(InstalledRoute {
                    prefix: *prefix,
                    kind: kind_name,
                    next_hops,
                    adopted: !entry.claimed,
                    warning: entry.problem.as_ref().map(ToString::to_string),
                });
            } else if let Some(problem) = &entry.problem {
                failed.push(FailedRoute {
                    prefix: *prefix,
                    reason: problem.to_string(),
                });
            }
        }
        installed.sort_by_key(|r| r.prefix);
        failed.sort_by_key(|r| r.prefix);
        Snapshot {
            table: self.placement.table,
            protocol: self.placement.protocol,
            metric: self.placement.metric,
            converged: self.converged,
            installed,
            failed,
            counters: self.counters.clone(),
        }
    }

    fn device_name(&self, index: u32) -> String {
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
                }
            }
            Some(KernelKind::Other(kind)) => {
                let _ = write!(text, " type {kind}");
            }
            None => {}
        }
        text
    }

    fn count_links(&mut self, old: Option<&KernelKind>, new: Option<&KernelKind>) {
        if let Some(KernelKind::Unicast(hops)) = old {
            for hop in hops {
                if let Some(count) = self.links_used.get_mut(&hop.ifindex) {
                    *count -= 1;
                    if *count == 0 {
                        self.links_used.remove(&hop.ifindex);
                    }
                }
            }
        }
        if let Some(KernelKind::Unicast(hops)) = new {
            for hop in hops {
                *self.links_used.entry(hop.ifindex).or_default() += 1;
            }
        }
    }
}

fn enqueue(queue: &mut VecDeque<IpNet>, prefix: IpNet, entry: &mut Entry) {
    if !entry.queued {
        entry.queued = true;
        queue.push_back(prefix);
    }
}

/// The kernel form of a desired target, with a warning when only some next
/// hops resolved.
fn resolve_target(
    cache: &mut HashMap<NextHop, Result<Vec<KernelNextHop>, HopFailure>>,
    resolver: &Resolver,
    max_paths: usize,
    prefix: IpNet,
    target: &Target,
) -> Result<(KernelKind, Option<RouteError>), RouteError> {
    let hops = match target {
        Target::Blackhole => return Ok((KernelKind::Blackhole, None)),
        Target::Unicast(hops) => hops,
    };
    let mut resolved = Vec::with_capacity(hops.len());
    let mut first_error = None;
    for hop in hops {
        if let NextHop::Gateway { address, .. } = hop {
            if address.is_ipv4() != matches!(prefix, IpNet::V4(_)) {
                first_error.get_or_insert(RouteError::FamilyMismatch {
                    prefix,
                    gateway: *address,
                });
                continue;
            }
        }
        let result = match cache.get(hop) {
            Some(result) => result,
            None => cache
                .entry(hop.clone())
                .or_insert_with(|| resolver.resolve(hop)),
        };
        match result {
            Ok(kernel_hops) => resolved.extend_from_slice(kernel_hops),
            Err(failure) => {
                first_error.get_or_insert_with(|| match failure.clone() {
                    HopFailure::Unresolvable { gateway, why } => RouteError::Unresolvable {
                        prefix,
                        gateway,
                        why,
                    },
                    HopFailure::UnknownDevice(device) => {
                        RouteError::UnknownDevice { prefix, device }
                    }
                });
            }
        }
    }
    resolved.sort();
    resolved.dedup();
    resolved.truncate(max_paths);
    if resolved.is_empty() {
        return Err(first_error.unwrap_or(RouteError::NoNextHop { prefix }));
    }
    Ok((KernelKind::Unicast(resolved), first_error))
}
