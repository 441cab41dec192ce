//! The cluster's IPAM garbage collector (`cluster::collector`), run inside bgpd with
//! `[kubernetes]` and `[ipam]`: every node takes part in the Lease election on
//! `NAMESPACE/wren-ipam-collector`, and the holder makes the passes.
//!
//! The collector works on a datastore connection of its own (the IPAM task's when it
//! has one). When it stops (the Lease manager ended: the API server refused the
//! Lease, the namespace is missing), it is logged with the reason and started again
//! after a backoff: an API server outage must not stop bgpd.

use std::sync::Arc;
use std::time::Duration;

use cluster::collector::{self, Settings};

use crate::ipam_task::IpamHandle;

/// First and longest wait before starting the collector again.
const RESTART: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// Runs the collector until bgpd stops, telling `holder` whether this node holds
/// its Lease; without IPAM, nothing (forever).
pub async fn run(
    client: cluster::client::Client,
    node: String,
    namespace: String,
    pod_grace: Duration,
    api_server: String,
    ipam: Option<IpamHandle>,
    holder: tokio::sync::watch::Sender<bool>,
) {
    let Some(ipam) = ipam else {
        return std::future::pending().await;
    };
    let mut wait = RESTART.0;
    loop {
        let outcome = match ipam.client().await {
            Ok(store) => {
                let mut settings = Settings::new(node.clone());
                settings.namespace = namespace.clone();
                settings.pod_grace = pod_grace;
                settings.api_server.clone_from(&api_server);
                let started = tokio::time::Instant::now();
                let outcome =
                    collector::run_telling(client.clone(), Arc::new(store), settings, &holder)
                        .await;
                if started.elapsed() > RESTART.1 {
                    wait = RESTART.0;
                }
                outcome.map_err(|error| error.to_string())
            }
            Err(error) => Err(format!("IPAM collector: {error}")),
        };
        let reason = match outcome {
            Ok(()) => String::from("IPAM collector: stopped"),
            Err(reason) => reason,
        };
        tracing::warn!("{reason}; starting it again in {wait:?}");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RESTART.1);
    }
}
