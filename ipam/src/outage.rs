//! One log line per API server outage, whoever notices it: the IPAM store's watches
//! and bgpd's cluster watches (reflectors of Nodes, BGPPeers, ...) all follow the same
//! API server, so each of them reports here ([`failed`], [`working`]) instead of
//! logging, and the process logs:
//! - one warning when the API server starts failing (unreachable, 401, 403, 5xx, a
//!   watch closed with 410 Gone), naming the API server, the reason and the
//!   resources whose watches failed within [`GATHER`] of the first;
//! - one line when it works again, with how long it did not, and every resource
//!   whose watch failed meanwhile.
//!
//! A failure that ends within [`GATHER`] (a watch closed with 410 Gone and re-listed
//! at once) is a debug line only. The state is per process and per API server URL:
//! one bgpd is one node, so each node logs its own outage once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after the first failure the other watches' failures are gathered into
/// the one warning.
pub const GATHER: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Outage {
    /// Counts outages, so a late warning knows whether its outage is still on.
    number: u64,
    since: Instant,
    reason: String,
    /// The resources whose watches failed in this outage.
    resources: BTreeSet<String>,
    /// Whether the warning was logged.
    told: bool,
}

#[derive(Debug, Default)]
struct Servers {
    outages: BTreeMap<String, Outage>,
    count: u64,
}

static SERVERS: Mutex<Servers> = Mutex::new(Servers {
    outages: BTreeMap::new(),
    count: 0,
});

fn servers() -> std::sync::MutexGuard<'static, Servers> {
    // A panic while holding it leaves plain data: go on with it.
    SERVERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The watch of `resource` on `api_server` was closed with `410 Gone` (its version
/// is too old: after the API server restarted, or etcd compacted): the API server
/// answers, the watch re-lists; a debug line, no outage.
pub fn gone(api_server: &str, resource: &str, error: &str) {
    tracing::debug!("API server {api_server}: the watch of {resource} re-lists: {error}");
}

/// The watch of `resource` on `api_server` failed with `error`.
pub fn failed(api_server: &str, resource: &str, error: &str) {
    tracing::debug!("API server {api_server}: the watch of {resource} failed: {error}");
    let mut servers = servers();
    servers.count += 1;
    let number = servers.count;
    let outage = servers
        .outages
        .entry(api_server.to_owned())
        .or_insert_with(|| Outage {
            number,
            since: Instant::now(),
            reason: error.to_owned(),
            resources: BTreeSet::new(),
            told: false,
        });
    outage.resources.insert(resource.to_owned());
    if outage.number != number {
        return;
    }
    drop(servers);
    let api_server = api_server.to_owned();
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                tokio::time::sleep(GATHER).await;
                tell(&api_server, number);
            });
        }
        Err(_) => tell(&api_server, number),
    }
}

/// Logs the warning of outage `number` of `api_server`, if it is still on.
fn tell(api_server: &str, number: u64) {
    let mut servers = servers();
    let Some(outage) = servers
        .outages
        .get_mut(api_server)
        .filter(|outage| outage.number == number)
    else {
        return;
    };
    outage.told = true;
    tracing::warn!(
        "API server {api_server}: {}; watches of {} failing; keeping what is known and advertised, re-listing with backoff",
        outage.reason,
        list(&outage.resources)
    );
}

/// The watch of `resource` on `api_server` works (listed, or watching): the API
/// server answers again.
pub fn working(api_server: &str, resource: &str) {
    let mut servers = servers();
    let Some(outage) = servers.outages.remove(api_server) else {
        return;
    };
    if outage.told {
        tracing::info!(
            "API server {api_server}: reachable again after {:.1} s (the watch of {resource} works; watches of {} had failed)",
            outage.since.elapsed().as_secs_f64(),
            list(&outage.resources)
        );
    } else {
        tracing::debug!("API server {api_server}: the watch of {resource} works again");
    }
}

/// Whether `api_server` is failing now (a watch failed, none has worked since).
pub fn is_failing(api_server: &str) -> bool {
    servers().outages.contains_key(api_server)
}

/// The API servers failing now.
pub fn failing_servers() -> Vec<String> {
    servers().outages.keys().cloned().collect()
}

/// `error` and its sources, each once, joined by ": " (kube's own text stops at
/// "client error (Connect)"; its sources say "Connection refused").
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = current.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

fn list(resources: &BTreeSet<String>) -> String {
    resources.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn one_outage_per_server_until_a_watch_works() {
        let server = "https://192.0.2.1:6443/";
        failed(server, "Node", "connection refused");
        failed(server, "BGPPeer", "connection refused");
        assert!(is_failing(server));
        assert_eq!(failing_servers(), [server]);
        {
            let servers = servers();
            let outage = &servers.outages[server];
            // No runtime here: told at once, with the resources seen so far.
            assert!(outage.told);
            assert_eq!(list(&outage.resources), "BGPPeer, Node");
        }
        working(server, "Node");
        assert!(!is_failing(server));
        working(server, "BGPPeer");
        assert!(failing_servers().is_empty());
    }

    #[test]
    fn errors_are_described_with_their_sources_once() {
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ));
        assert_eq!(
            describe(&error),
            "client error (Connect): Connection refused (os error 111)"
        );
    }
}
