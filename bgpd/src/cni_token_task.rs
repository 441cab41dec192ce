//! The CNI token task (`[kubernetes] cni_kubeconfig`, issue 14): keeps the CNI
//! plugins' kubeconfig (the one `wren-install` wrote) holding a live token of the
//! service account `cni_service_account` in `namespace`, through
//! `cluster::token::Refresher`: a new token at start, then one a quarter into each
//! token's lifetime, as Calico's token watcher does. A failure (the API server away,
//! a refused request) is one warning line and a retry, never the end of the task: the
//! plugins keep working on the last token meanwhile.
//!
//! Calling contract: the task never ends by itself; bgpd aborts it at stop.

use std::path::PathBuf;

use cluster::token::{self, Account, Refresher};
use tokio::task::JoinHandle;

use crate::config::Config;

/// What the task works from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// bgpd's own credentials (`[kubernetes] kubeconfig`; none: inferred).
    pub kubeconfig: Option<PathBuf>,
    /// The plugins' kubeconfig, rewritten with each token.
    pub path: PathBuf,
    pub account: Account,
}

impl Settings {
    /// The settings of `config`'s `[kubernetes]`; `None` without one or without
    /// `cni_kubeconfig`.
    pub fn from_config(config: &Config) -> Option<Settings> {
        let section = config.kubernetes.as_ref()?;
        let path = section.cni_kubeconfig.clone()?;
        Some(Settings {
            kubeconfig: section.kubeconfig.clone(),
            path,
            account: Account {
                namespace: section.namespace.clone(),
                name: section.cni_service_account.clone(),
                lifetime: token::DEFAULT_LIFETIME,
            },
        })
    }
}

/// Starts the task.
pub fn spawn(settings: Settings) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failures = 0;
        let refresher = loop {
            match Refresher::connect(
                settings.kubeconfig.as_deref(),
                settings.account.clone(),
                settings.path.clone(),
            )
            .await
            {
                Ok(refresher) => break refresher,
                Err(error) => {
                    failures += 1;
                    let wait = token::retry_after(failures);
                    tracing::warn!("CNI token: {error}; trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
            }
        };
        tracing::info!(
            kubeconfig = %settings.path.display(),
            "CNI token: keeping {}/{}'s token fresh",
            settings.account.namespace,
            settings.account.name
        );
        match refresher.run().await {}
    })
}
