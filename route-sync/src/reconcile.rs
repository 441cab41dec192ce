//! The syncer's tables and decisions: desired routes next to what the kernel
//! holds of ours, and the request that makes one equal to the other.
//!
//! Calling contract: the syncer task feeds desires, kernel events and dump
//! results in (a dump as `begin_dump`, `dumped` per route, `end_dump`),
//! pulls requests out with `next_operation`, and reports each batch's
//! outcome with `applied` or `refused_all`. Nothing here does I/O. A prefix
//! whose kernel route already equals its resolved desire produces no
//! request at all: that is what makes a restart free of churn.
//!
//! Memory: a route is one packed slot in [`Tables`] (see there); desired
//! targets and kernel forms are interned (a million routes through the same
//! gateway share one of each), and a target's kernel form is resolved once
//! per address family, not per route. Problems are not stored per route:
//! resolution problems are derived from the target when a snapshot is
//! taken, and only refusals by the kernel are kept, in a map of their own.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::error::RouteError;
use crate::intern::Interner;
use crate::message::{KernelKind, KernelNextHop, KernelRoute, Placement, Request};
use crate::netlink::Refusal;
use crate::observe::{self, Observer};
use crate::resolve::{HopFailure, Resolver};
use crate::route::{NextHop, Route, Target};
use crate::summary::{Histogram, RouteCount, Summary};
use crate::table::{CLAIMED, SEEN, Slot, Tables};
use crate::{Counters, FailedRoute, InstalledRoute, KernelAction, Snapshot};

mod report;

/// One request handed to the kernel.
#[derive(Debug)]
pub(crate) struct Operation {
    pub prefix: IpNet,
    pub request: Request,
    pub metric: u32,
    /// The interned kernel form to install: one reference, given back (or
    /// handed on) when the operation is settled.
    pub kind: Option<u32>,
}

/// Desired and installed routes of one syncer.
#[derive(Debug)]
pub(crate) struct State {
    pub placement: Placement,
    pub resolver: Resolver,
    pub counters: Counters,
    pub converged: bool,
    max_paths: usize,
    tables: Tables,
    targets: Interner<Target>,
    kinds: Interner<KernelKind>,
    details: Interner<String>,
    /// Kernel next hops per desired next hop.
    hops: HashMap<NextHop, Result<Vec<KernelNextHop>, HopFailure>>,
    /// Kernel form per desired target and family (IPv6: true).
    resolutions: HashMap<(u32, bool), Resolution>,
    /// Our routes at another metric: removed after convergence.
    stale: Vec<(IpNet, u32)>,
    stale_queued: usize,
    /// Installed next hops per interface index.
    links_used: HashMap<u32, usize>,
    /// Requests the kernel refused, until the prefix is decided again.
    refused: HashMap<IpNet, Refused>,
    /// Told of each operation while `observing` (asked once per batch).
    observer: Option<Arc<dyn Observer>>,
    observing: bool,
}

/// Why a desired target has no (complete) kernel form; the prefix is named
/// when it is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    Hop(HopFailure),
    FamilyMismatch(IpAddr),
    NoNextHop,
}

/// A desired target in the kernel's terms.
#[derive(Debug)]
struct Resolution {
    /// The interned kernel form (one reference held here).
    kind: Result<u32, Failure>,
    /// Set when only some next hops resolved.
    warning: Option<Failure>,
}

/// A request the kernel refused.
#[derive(Debug)]
struct Refused {
    request: Request,
    /// Interned kernel form of the refused request (one reference).
    kind: Option<u32>,
    errno: i32,
    /// Interned extended ack text (one reference).
    detail: Option<u32>,
}

impl State {
    pub(crate) fn new(placement: Placement, max_paths: usize, resolver: Resolver) -> State {
        State {
            placement,
            resolver,
            counters: Counters::default(),
            converged: false,
            max_paths,
            tables: Tables::default(),
            targets: Interner::default(),
            kinds: Interner::default(),
            details: Interner::default(),
            hops: HashMap::new(),
            resolutions: HashMap::new(),
            stale: Vec::new(),
            stale_queued: 0,
            links_used: HashMap::new(),
            refused: HashMap::new(),
            observer: None,
            observing: false,
        }
    }

    /// Tells `observer` of every kernel operation from now on (while it wants them).
    pub(crate) fn set_observer(&mut self, observer: Arc<dyn Observer>) {
        self.observer = Some(observer);
    }

    /// Asks the observer whether it wants the operations of the next batch.
    pub(crate) fn observe(&mut self) {
        self.observing = self.observer.as_ref().is_some_and(|o| o.wanted());
    }

    /// Wants `route` in the kernel.
    pub(crate) fn desire(&mut self, route: Route) {
        let prefix = route.prefix.trunc();
        let target = self.targets.intern(route.target);
        let old = {
            let mut slot = self.tables.queued(prefix);
            slot.set(CLAIMED, true);
            slot.set_desired(Some(target))
        };
        if let Some(old) = old {
            self.release_target(old);
        }
    }

    /// No longer wants a route for `prefix`.
    pub(crate) fn withdraw(&mut self, prefix: IpNet) {
        let prefix = prefix.trunc();
        let old = self.tables.queued_existing(prefix).and_then(|mut slot| {
            slot.set(CLAIMED, true);
            slot.set_desired(None)
        });
        if let Some(old) = old {
            self.release_target(old);
        }
    }

    /// End of initial convergence: adopted routes nobody asked for go.
    pub(crate) fn mark_converged(&mut self) {
        self.converged = true;
        self.stale_queued = self.stale.len();
        self.tables
            .visit(|_, slot| slot.desired().is_none() && slot.kernel().is_some());
    }

    /// Shutdown without keeping routes: everything of ours goes.
    pub(crate) fn remove_all(&mut self) {
        self.converged = true;
        self.stale_queued = self.stale.len();
        let targets = &mut self.targets;
        let mut freed = Vec::new();
        self.tables.visit(|_, slot| {
            slot.set(CLAIMED, true);
            if let Some(old) = slot.set_desired(None) {
                if targets.release(old) {
                    freed.push(old);
                }
            }
            true
        });
        for target in freed {
            self.forget_resolutions(target);
        }
    }

    /// Tries routes the kernel refused again.
    pub(crate) fn retry_refused(&mut self) {
        let prefixes: Vec<IpNet> = self.refused.keys().copied().collect();
        for prefix in prefixes {
            if self.tables.queued_existing(prefix).is_none() {
                if let Some(refused) = self.refused.remove(&prefix) {
                    self.release_refused(refused);
                }
            }
        }
    }

    pub(crate) fn has_work(&self) -> bool {
        self.tables.has_queued() || self.stale_queued > 0
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
        while let Some((prefix, slot)) = self.tables.next_queued() {
            let Some(slot) = slot else {
                continue;
            };
            if let Some(operation) = self.decide(prefix, slot) {
                return Some(operation);
            }
        }
        None
    }

    /// The kernel form an operation carries, for encoding it.
    pub(crate) fn kernel_kind(&self, kind: Option<u32>) -> Option<&KernelKind> {
        kind.and_then(|kind| self.kinds.get(kind))
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

    /// A batch whose outcome is unknown (answers were lost): nothing is
    /// recorded, the caller dumps the kernel again.
    pub(crate) fn abandon(&mut self, operations: Vec<Operation>) {
        for kind in operations.into_iter().filter_map(|o| o.kind) {
            self.kinds.release(kind);
        }
    }

    /// A route change made by someone else or by the kernel.
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
            let kind = (!deleted).then(|| self.kinds.intern(route.kind));
            let old = self.tables.queued(route.prefix).set_kernel(kind);
            self.kernel_changed(old, kind);
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
            let old = self
                .tables
                .queued_existing(route.prefix)
                .and_then(|mut slot| slot.set_kernel(None));
            if old.is_some() {
                self.kernel_changed(old, None);
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
        for (hop, result) in &mut self.hops {
            let fresh = self.resolver.resolve(hop);
            if fresh != *result {
                *result = fresh;
                moved.insert(hop.clone());
            }
        }
        if moved.is_empty() {
            return;
        }
        let affected: HashSet<u32> = self
            .targets
            .iter()
            .filter(|(_, target)| match target {
                Target::Unicast(hops) => hops.iter().any(|hop| moved.contains(hop)),
                Target::Blackhole => false,
            })
            .map(|(id, _)| id)
            .collect();
        for &target in &affected {
            self.forget_resolutions(target);
        }
        self.tables
            .visit(|_, slot| slot.desired().is_some_and(|t| affected.contains(&t)));
    }

    /// Starts loading a dump of the kernel: no route of ours seen yet.
    pub(crate) fn begin_dump(&mut self) {
        self.tables.visit(|_, slot| {
            slot.set(SEEN, false);
            false
        });
        self.stale.clear();
    }

    /// One route of the dump under way (any protocol, from our table or
    /// the main table, which are listed in `tables`).
    pub(crate) fn dumped(&mut self, route: KernelRoute, tables: &[u32]) {
        let placement = self.placement;
        if route.table == placement.table && route.protocol == placement.protocol {
            if route.metric == placement.metric {
                let kind = self.kinds.intern(route.kind);
                let mut slot = self.tables.queued(route.prefix);
                slot.set(SEEN, true);
                if let Some(old) = slot.set_kernel(Some(kind)) {
                    self.kinds.release(old);
                }
            } else {
                self.stale.push((route.prefix, route.metric));
            }
        } else if tables.contains(&route.table) {
            self.resolver.update_route(false, route);
        }
    }

    /// The dump is complete: routes of ours it did not show are gone, and
    /// every prefix is decided again against the fresh picture.
    pub(crate) fn end_dump(&mut self, initial: bool) {
        for (_, resolution) in std::mem::take(&mut self.resolutions) {
            release_resolution(&mut self.kinds, resolution);
        }
        self.hops.clear();
        self.links_used.clear();
        self.stale_queued = if self.converged { self.stale.len() } else { 0 };
        let (kinds, links_used) = (&mut self.kinds, &mut self.links_used);
        let mut seen = 0;
        self.tables.visit(|_, slot| {
            if slot.has(SEEN) {
                slot.set(SEEN, false);
                seen += 1;
            } else if let Some(old) = slot.set_kernel(None) {
                kinds.release(old);
            }
            count_links(kinds, links_used, None, slot.kernel());
            true
        });
        if initial {
            self.counters.adopted += seen;
        }
    }

    /// Gives memory back once many routes are gone.
    pub(crate) fn shrink(&mut self) {
        self.tables.shrink();
        if self.refused.is_empty() {
            self.refused.shrink_to_fit();
        }
    }

    /// The picture for `bgpctl show fib`.
    pub(crate) fn snapshot(&mut self) -> Snapshot {
        // Resolutions of desired targets are normally cached already.
        let missing: HashSet<(u32, bool)> = self
            .tables
            .iter()
            .filter_map(|(prefix, slot)| Some((slot.desired()?, is_v6(prefix))))
            .filter(|key| !self.resolutions.contains_key(key))
            .collect();
        for (target, v6) in missing {
            self.resolve(target, v6);
        }
        let mut installed = Vec::new();
        let mut failed = Vec::new();
        for (prefix, slot) in self.tables.iter() {
            let problem = self.problem(prefix, slot);
            if let Some(kind) = self.kernel_kind(slot.kernel()) {
                let (kind_name, next_hops) =
                    observe::kind_and_hops(Some(kind), |index| self.device_name(index));
                installed.push(InstalledRoute {
                    prefix,
                    kind: kind_name,
                    next_hops,
                    adopted: !slot.has(CLAIMED),
                    warning: problem.as_ref().map(ToString::to_string),
                });
            } else if let Some(problem) = problem {
                failed.push(FailedRoute {
                    prefix,
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

    /// The counts for metrics, from what is kept ([`crate::census`]): the
    /// installed routes per family and kind (a few kinds, however many routes and
    /// kernel forms; each form is named once, at the first summary after it
    /// appears).
    pub(crate) fn summary(&mut self, batch_durations: Histogram) -> Summary {
        let kinds = &self.kinds;
        let name = |form: u32| {
            kinds
                .get(form)
                .map_or_else(|| String::from("unknown"), observe::kind_name)
        };
        let routes: Vec<RouteCount> = self
            .tables
            .census_mut()
            .kinds(name)
            .into_iter()
            .map(|(ipv6, kind, routes)| RouteCount { ipv6, kind, routes })
            .collect();
        Summary {
            converged: self.converged,
            routes,
            failed: self.tables.census().failed(),
            counters: self.counters.clone(),
            batch_durations,
        }
    }

    fn decide(&mut self, prefix: IpNet, slot: Slot) -> Option<Operation> {
        if !self.refused.is_empty() {
            if let Some(refused) = self.refused.remove(&prefix) {
                self.release_refused(refused);
            }
        }
        let metric = self.placement.metric;
        let operation = |request, kind| Operation {
            prefix,
            request,
            metric,
            kind,
        };
        let kernel = slot.kernel();
        match slot.desired() {
            Some(target) => match self.resolve(target, is_v6(prefix)) {
                Some(kind) if kernel == Some(kind) => None,
                Some(kind) => {
                    self.kinds.retain(kind);
                    let request = match kernel {
                        Some(_) => Request::Replace,
                        None => Request::Add,
                    };
                    Some(operation(request, Some(kind)))
                }
                None if kernel.is_some() => Some(operation(Request::Delete, None)),
                None => {
                    if self.observing {
                        let error = self.problem(prefix, &slot).map(|p| p.to_string());
                        self.tell(KernelAction::NotInstalled, prefix, None, error);
                    }
                    None
                }
            },
            None if kernel.is_some() => {
                (self.converged || slot.has(CLAIMED)).then(|| operation(Request::Delete, None))
            }
            None => {
                self.tables.remove(prefix);
                None
            }
        }
    }

    /// The interned kernel form of a target for one family (cached), or
    /// `None` when it cannot be installed.
    fn resolve(&mut self, target: u32, v6: bool) -> Option<u32> {
        if let Some(resolution) = self.resolutions.get(&(target, v6)) {
            return resolution.kind.as_ref().ok().copied();
        }
        let resolution = match self.targets.get(target) {
            Some(desired) => {
                match resolve_target(&mut self.hops, &self.resolver, self.max_paths, v6, desired) {
                    Ok((kind, warning)) => Resolution {
                        kind: Ok(self.kinds.intern(kind)),
                        warning,
                    },
                    Err(failure) => Resolution {
                        kind: Err(failure),
                        warning: None,
                    },
                }
            }
            None => Resolution {
                kind: Err(Failure::NoNextHop),
                warning: None,
            },
        };
        let kind = resolution.kind.as_ref().ok().copied();
        self.resolutions.insert((target, v6), resolution);
        kind
    }

    fn settle(&mut self, operation: Operation, refusal: Option<Refusal>) {
        let prefix = operation.prefix;
        if operation.metric != self.placement.metric {
            // A stale route: gone or not, it is not ours to track.
            if let Some(kind) = operation.kind {
                self.kinds.release(kind);
            }
            return;
        }
        let gone = matches!(&refusal, Some(r) if r.errno == libc::ESRCH)
            && operation.request == Request::Delete;
        if let Some(refusal) = refusal.filter(|_| !gone) {
            self.counters.refused += 1;
            let error = self.kernel_error(
                prefix,
                operation.request,
                operation.kind,
                refusal.errno,
                refusal.detail.clone(),
            );
            tracing::warn!("route-sync: {error}");
            if self.observing {
                let action = observe::action(operation.request);
                self.tell(action, prefix, operation.kind, Some(error.to_string()));
            }
            if self.tables.get(prefix).is_none() {
                if let Some(kind) = operation.kind {
                    self.kinds.release(kind);
                }
                return;
            }
            let refused = Refused {
                request: operation.request,
                kind: operation.kind,
                errno: refusal.errno,
                detail: refusal.detail.map(|detail| self.details.intern(detail)),
            };
            if let Some(old) = self.refused.insert(prefix, refused) {
                self.release_refused(old);
            }
            return;
        }
        let Some(mut slot) = self.tables.get_mut(prefix) else {
            if let Some(kind) = operation.kind {
                self.kinds.release(kind);
            }
            return;
        };
        let old = slot.set_kernel(operation.kind);
        let empty = slot.desired().is_none() && slot.kernel().is_none();
        drop(slot);
        match operation.request {
            Request::Add => self.counters.added += 1,
            Request::Replace => self.counters.replaced += 1,
            Request::Delete => self.counters.deleted += 1,
        }
        if empty {
            self.tables.remove(prefix);
        }
        if self.observing {
            let shown = match operation.request {
                Request::Delete => old,
                Request::Add | Request::Replace => operation.kind,
            };
            self.tell(observe::action(operation.request), prefix, shown, None);
        }
        if !self.refused.is_empty() {
            if let Some(refused) = self.refused.remove(&prefix) {
                self.release_refused(refused);
            }
        }
        self.kernel_changed(old, operation.kind);
    }

    /// Bookkeeping after a slot's kernel form changed from `old` (whose
    /// reference the slot held) to `new` (whose reference it now holds).
    fn kernel_changed(&mut self, old: Option<u32>, new: Option<u32>) {
        count_links(&self.kinds, &mut self.links_used, old, new);
        if let Some(old) = old {
            self.kinds.release(old);
        }
    }

    fn release_target(&mut self, target: u32) {
        if self.targets.release(target) {
            self.forget_resolutions(target);
        }
    }

    fn forget_resolutions(&mut self, target: u32) {
        for v6 in [false, true] {
            if let Some(resolution) = self.resolutions.remove(&(target, v6)) {
                release_resolution(&mut self.kinds, resolution);
            }
        }
    }

    fn release_refused(&mut self, refused: Refused) {
        if let Some(kind) = refused.kind {
            self.kinds.release(kind);
        }
        if let Some(detail) = refused.detail {
            self.details.release(detail);
        }
    }
}

impl Failure {
    fn at(&self, prefix: IpNet) -> RouteError {
        match self.clone() {
            Failure::Hop(HopFailure::Unresolvable { gateway, why }) => RouteError::Unresolvable {
                prefix,
                gateway,
                why,
            },
            Failure::Hop(HopFailure::UnknownDevice(device)) => {
                RouteError::UnknownDevice { prefix, device }
            }
            Failure::FamilyMismatch(gateway) => RouteError::FamilyMismatch { prefix, gateway },
            Failure::NoNextHop => RouteError::NoNextHop { prefix },
        }
    }
}

fn is_v6(prefix: IpNet) -> bool {
    matches!(prefix, IpNet::V6(_))
}

fn release_resolution(kinds: &mut Interner<KernelKind>, resolution: Resolution) {
    if let Ok(kind) = resolution.kind {
        kinds.release(kind);
    }
}

/// Moves the installed next hops of a route from kernel form `old` to `new`.
fn count_links(
    kinds: &Interner<KernelKind>,
    links_used: &mut HashMap<u32, usize>,
    old: Option<u32>,
    new: Option<u32>,
) {
    if old == new {
        return;
    }
    if let Some(KernelKind::Unicast(hops)) = old.and_then(|old| kinds.get(old)) {
        for hop in hops {
            if let Some(count) = links_used.get_mut(&hop.ifindex) {
                *count -= 1;
                if *count == 0 {
                    links_used.remove(&hop.ifindex);
                }
            }
        }
    }
    if let Some(KernelKind::Unicast(hops)) = new.and_then(|new| kinds.get(new)) {
        for hop in hops {
            *links_used.entry(hop.ifindex).or_default() += 1;
        }
    }
}

/// The kernel form of a desired target for one family, with a warning when
/// only some next hops resolved.
fn resolve_target(
    cache: &mut HashMap<NextHop, Result<Vec<KernelNextHop>, HopFailure>>,
    resolver: &Resolver,
    max_paths: usize,
    v6: bool,
    target: &Target,
) -> Result<(KernelKind, Option<Failure>), Failure> {
    let hops = match target {
        Target::Blackhole => return Ok((KernelKind::Blackhole, None)),
        Target::Unicast(hops) => hops,
    };
    let mut resolved = Vec::with_capacity(hops.len());
    let mut first_error = None;
    for hop in hops {
        // An IPv4 route may go through IPv6 gateways (RFC 8950), not the reverse.
        if let NextHop::Gateway {
            address: address @ IpAddr::V4(_),
            ..
        } = hop
            && v6
        {
            first_error.get_or_insert(Failure::FamilyMismatch(*address));
            continue;
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
                first_error.get_or_insert_with(|| Failure::Hop(failure.clone()));
            }
        }
    }
    resolved.sort();
    resolved.dedup();
    resolved.truncate(max_paths);
    if resolved.is_empty() {
        return Err(first_error.unwrap_or(Failure::NoNextHop));
    }
    Ok((KernelKind::Unicast(resolved), first_error))
}
