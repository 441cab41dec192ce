//! The metrics task: `/metrics` for Prometheus, `/healthz` and `/readyz` for probes,
//! on the HTTP listener of `[metrics] listen` (none without it).
//!
//! Collection happens at scrape time: each scrape builds a fresh registry from what
//! the tasks publish (the process' `/proc` files, and the samples each area's module
//! gathers through the tasks' own snapshots), so a neighbor that goes away leaves no
//! series behind. Nothing here walks the RIB per route or holds a task: every
//! question to a task is one bounded turn of it.
//!
//! Modules: [`http`] (the server and its three paths), [`format`] (OpenMetrics or
//! the text format 0.0.4, by the scraper's `Accept`), [`series`] (writing one family
//! from a sample), [`process`] (build info and the process collector), [`bgp`]
//! (sessions, messages, prefixes per neighbor; the RIB per family), [`fib`]
//! (route-sync's counts), [`ipam`] (the IPAM task's status and the datastore
//! operations), [`bfd`] (the BFD sessions), [`dataplane`] (the dataplane task's
//! status: pod MTU, nat_outgoing, VXLAN).

pub mod bfd;
pub mod bgp;
pub mod dataplane;
pub mod fib;
pub mod format;
pub mod http;
pub mod ipam;
pub mod process;
pub mod series;

use std::sync::Arc;
use std::time::Duration;

use control_proto::health::Health;
use prometheus_client::registry::Registry;

use crate::control::handler::Handler;
use crate::dataplane_task::StatusReceiver;

/// Longest a health check waits for the rib task's answer before saying the daemon
/// is not live.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the metrics come from: the control server's view of the tasks (the
/// supervisor, the rib, the FIB, the IPAM task), shared with the control socket.
#[derive(Clone, Debug)]
pub struct Sources {
    pub handler: Arc<Handler>,
    /// The dataplane task's status (`None` without the task).
    pub dataplane: Option<StatusReceiver>,
}

impl Sources {
    /// A registry holding every collector, with this moment's samples.
    pub async fn registry(&self) -> Registry {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(process::ProcessSample::read()));
        registry.register_collector(Box::new(bgp::BgpSample::gather(&self.handler).await));
        if let Some(view) = &self.handler.fib {
            // What route-sync published after its last batch.
            match view.summary() {
                Ok(summary) => {
                    registry.register_collector(Box::new(fib::FibSample { summary }));
                }
                Err(error) => tracing::debug!("metrics: fib: {error}"),
            }
        }
        // One turn of the BFD task.
        match tokio::time::timeout(HEALTH_TIMEOUT, self.handler.bfd.sessions()).await {
            // Without a session the families are there, without series.
            Ok(Ok(sessions)) => {
                let dropped =
                    match tokio::time::timeout(HEALTH_TIMEOUT, self.handler.bfd.dropped()).await {
                        Ok(Ok(dropped)) => dropped,
                        Ok(Err(error)) => {
                            tracing::debug!("metrics: bfd: {error}");
                            Default::default()
                        }
                        Err(_) => {
                            tracing::debug!("metrics: bfd: no drops within {HEALTH_TIMEOUT:?}");
                            Default::default()
                        }
                    };
                registry.register_collector(Box::new(bfd::BfdSample { sessions, dropped }));
            }
            Ok(Err(error)) => tracing::debug!("metrics: bfd: {error}"),
            Err(_) => tracing::debug!("metrics: bfd: no answer within {HEALTH_TIMEOUT:?}"),
        }
        if let Some(handle) = &self.handler.ipam {
            let status = handle.status().borrow().clone();
            registry.register_collector(Box::new(ipam::IpamSample::read(status)));
        }
        if let Some(status) = &self.dataplane {
            let status = status.borrow().clone();
            registry.register_collector(Box::new(dataplane::DataplaneSample {
                status,
                overlay: self.handler.ipam.is_some(),
            }));
        }
        registry
    }

    /// bgpd's health, or why it cannot be told (the rib task gone or not answering
    /// within [`HEALTH_TIMEOUT`]).
    pub async fn health(&self) -> Result<Health, String> {
        match tokio::time::timeout(HEALTH_TIMEOUT, self.handler.health()).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "the rib task did not answer within {HEALTH_TIMEOUT:?}"
            )),
        }
    }
}
