//! The daemon: starts the tasks drawn in [`crate::tasks`], wires their channels,
//! and handles the signals.
//!
//! Start: route-sync and the fib task (when `[fib] enabled`; routes of ours already
//! in the kernel are adopted, and with graceful restart configured their presence
//! makes this a restart: sessions set the Restart State bit and the Forwarding State
//! flags for `restart_time`), the rib task, the supervisor (listeners and sessions),
//! the IPAM task (with `[ipam]`), the control socket.
//!
//! Signals: SIGHUP reloads the configuration file (like `bgpctl reload`).
//! SIGTERM and SIGINT stop: the rib task goes first (with graceful restart or
//! `keep_on_shutdown` the kernel routes then stay as they are, otherwise route-sync
//! removes them), every peer gets Cease / Administrative Shutdown (6/2), the control
//! socket file is removed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{Config, LogFormat};
use crate::control::handler::Handler;
use crate::session::SpeakerSettings;

/// Longest the fib task may take to finish (route-sync's last batch and shutdown).
const FIB_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Sets up logging to stderr: text or JSON lines, filtered by `level` (a tracing
/// filter), else `RUST_LOG`, else `info`.
pub fn init_logging(format: LogFormat, level: Option<&str>) {
    let filter = level
        .map(tracing_subscriber::EnvFilter::new)
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A failed write (a full disk under a redirected stderr) loses that line only;
        // reporting it on stderr as well would panic.
        .log_internal_errors(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs bgpd with `config` (read from `config_path`, which reloads re-read) until
/// SIGTERM or SIGINT.
pub async fn run(config_path: PathBuf, config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let started = Instant::now();

    let keep_routes = config.fib.sync.keep_on_shutdown || config.bgp.graceful_restart.enabled;
    let (fib_sender, fib_view, fib_task) = if config.fib.enabled {
        let (sender, view, task) = crate::fib::spawn(config.fib.sync.clone(), keep_routes)
            .await
            .context("starting route-sync")?;
        (Some(sender), Some(view), Some(task))
    } else {
        (None, None, None)
    };

    let mut speaker = SpeakerSettings::from_config(&config);
    if config.bgp.graceful_restart.enabled
        && let Some(view) = &fib_view
    {
        let adopted = view
            .snapshot()
            .await
            .map(|snapshot| snapshot.counters.adopted)
            .unwrap_or(0);
        if adopted > 0 {
            let window = Duration::from_secs(u64::from(config.bgp.graceful_restart.restart_time));
            speaker.restarting_until = Some(started + window);
            tracing::info!(
                adopted,
                "graceful restart: {adopted} kernel routes kept from before; announcing the restart for {}s",
                window.as_secs()
            );
        }
    }

    let (rib, rib_task) = crate::rib::spawn(config.clone(), fib_sender);
    let (supervisor, supervisor_task) = crate::supervisor::spawn(
        Some(config_path),
        config.clone(),
        Arc::new(speaker),
        rib.clone(),
    )?;
    let ipam = match crate::ipam::Settings::from_config(&config) {
        Ok(Some(settings)) => Some(crate::ipam::spawn(
            settings,
            rib.clone(),
            supervisor.clone(),
        )),
        Ok(None) => None,
        Err(error) => anyhow::bail!("{error}"),
    };
    let handler = Arc::new(Handler {
        supervisor: supervisor.clone(),
        rib: rib.clone(),
        fib: fib_view,
        ipam: ipam.as_ref().map(|(handle, _)| handle.clone()),
    });
    let control = crate::control::server::spawn(&config.control, handler)?;
    drop(rib);
    tracing::info!(
        asn = config.bgp.asn.get(),
        router_id = %config.bgp.router_id,
        neighbors = config.bgp.neighbors.len(),
        "bgpd started"
    );

    let mut hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    loop {
        tokio::select! {
            _ = hangup.recv() => match supervisor.reload().await {
                Ok(summary) => tracing::info!("SIGHUP: {}", crate::control::render::reload(&summary)),
                Err(error) => tracing::error!("SIGHUP: configuration not reloaded:\n{error}"),
            },
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }

    tracing::info!("stopping");
    if let Some((_, task)) = ipam {
        task.abort();
        let _ = task.await;
    }
    // The rib first: from now on nothing changes in the kernel but what route-sync
    // does at its own shutdown (keep or remove every route of ours).
    rib_task.abort();
    let _ = rib_task.await;
    let fib_done = async {
        if let Some(task) = fib_task
            && tokio::time::timeout(FIB_STOP_TIMEOUT, task).await.is_err()
        {
            tracing::warn!("route-sync did not finish within {FIB_STOP_TIMEOUT:?}");
        }
    };
    tokio::join!(supervisor.shutdown("bgpd is shutting down"), fib_done);
    let _ = supervisor_task.await;
    drop(control);
    tracing::info!("stopped");
    Ok(())
}
