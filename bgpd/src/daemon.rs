//! The daemon: starts the tasks drawn in [`crate::tasks`] from the list [`TASKS`],
//! wires their channels, watches them, and handles the signals.
//!
//! Start, in the order of [`TASKS`]: the dataplane task (with `[dataplane]` or
//! `[ipam]`: the pod MTU; an override the underlay cannot carry stops bgpd before
//! anything else starts), route-sync and the fib task (when `[fib] enabled`; routes of ours already
//! in the kernel are adopted, and with graceful restart configured their presence
//! makes this a restart: sessions set the Restart State bit and the Forwarding State
//! flags for `restart_time`), the rib task, the BFD task, the supervisor (listeners
//! and sessions),
//! the IPAM task (with `[ipam]`), the cluster task (with `[kubernetes]`), the CNI
//! token task (with `[kubernetes] cni_kubeconfig`), the control socket, the metrics
//! listener (with `[metrics]`), the allocator's trimmer (`memory`).
//!
//! Signals: SIGHUP reloads the configuration file (like `bgpctl reload`).
//! SIGTERM and SIGINT stop: the rib task goes first (with graceful restart or
//! `keep_on_shutdown` the kernel routes then stay as they are, otherwise route-sync
//! removes them), every peer gets Cease / Administrative Shutdown (6/2), the control
//! socket file is removed.
//!
//! Watch: none of these tasks ends while the daemon runs. If one does (a panic in a
//! build that unwinds, a task that gives up), bgpd exits at once with status 1 and
//! one line naming it, without touching the kernel routes: the next start adopts
//! them (see [`crate::supervision`]). Session tasks are the supervisor's to watch.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::BoxFuture;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::config::{Config, LogFormat};
use crate::control::handler::Handler;
use crate::control::server::ControlSocket;
use crate::events::{Events, Occurrence};
use crate::fib::FibView;
use crate::ipam_task::IpamHandle;
use crate::session::SpeakerSettings;
use crate::supervision::Running;
use crate::supervisor::Supervisor;
use crate::tasks::{FibChange, RibInput};

/// Longest the fib task may take to finish (route-sync's last batch and shutdown).
const FIB_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Libraries that log each failed request themselves (about 90 lines per node for a
/// 6 s API server outage): bgpd reports every failure they return, and an outage
/// once (`ipam::outage`), so their own lines are off unless the filter names them.
const QUIET_LIBRARIES: [&str; 2] = ["kube_client", "kube_lease_manager"];

/// Sets up logging to stderr: text or JSON lines, filtered by `level` (a tracing
/// filter), else `RUST_LOG`, else `info`; with [`QUIET_LIBRARIES`] off unless named.
pub fn init_logging(format: LogFormat, level: Option<&str>) {
    let text = level
        .map(str::to_owned)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .filter(|text| tracing_subscriber::EnvFilter::builder().parse(text).is_ok())
        .unwrap_or_else(|| String::from("info"));
    let filter = tracing_subscriber::EnvFilter::new(quiet_libraries(&text));
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

/// `filter` with each of [`QUIET_LIBRARIES`] it does not name turned off.
fn quiet_libraries(filter: &str) -> String {
    let mut out = filter.to_owned();
    for library in QUIET_LIBRARIES {
        if !filter.contains(library) {
            out.push_str(&format!(",{library}=off"));
        }
    }
    out
}

/// Starts one task from what the tasks before it left in the [`Wiring`]; `None`
/// when its section of the configuration is off.
type Start = for<'a> fn(&'a mut Wiring) -> BoxFuture<'a, anyhow::Result<Option<JoinHandle<()>>>>;

/// The daemon's tasks, in start order. A new task is one line here, a start
/// function below, and its own module; it is watched like the others and aborted at
/// stop (unless `stop` says otherwise).
pub const TASKS: &[(&str, Start)] = &[
    ("dataplane", start_dataplane),
    ("fib", start_fib),
    ("rib", start_rib),
    ("bfd", start_bfd),
    ("supervisor", start_supervisor),
    ("ipam", start_ipam),
    ("cluster", start_cluster),
    ("cni_token", start_cni_token),
    ("control", start_control),
    ("metrics", start_metrics),
    ("memory", start_memory),
];

/// What the tasks hand each other while the daemon starts.
#[derive(Debug)]
pub struct Wiring {
    config_path: PathBuf,
    config: Arc<Config>,
    started: Instant,
    fib: Option<mpsc::Sender<FibChange>>,
    fib_view: Option<FibView>,
    rib: Option<mpsc::Sender<RibInput>>,
    /// The rib task's questions channel (answered before its queued inputs).
    questions: Option<mpsc::Sender<crate::tasks::RibQuery>>,
    supervisor: Option<Supervisor>,
    /// The BFD task's handle, for the supervisor's sessions.
    bfd: Option<crate::bfd_task::BfdHandle>,
    ipam: Option<IpamHandle>,
    /// What the IPAM task publishes for the dataplane task (with both).
    dataplane: Option<crate::dataplane_task::SnapshotSender>,
    /// The overlay's routes, from the dataplane task to the fib task (with `[ipam]`).
    overlay: Option<crate::dataplane_task::OverlayReceiver>,
    /// The dataplane task's status, for the metrics listener (with the task).
    dataplane_status: Option<crate::dataplane_task::StatusReceiver>,
    control: Option<ControlSocket>,
    /// What the control server answers from; the metrics task reads the same.
    handler: Option<Arc<Handler>>,
    events: Events,
    /// A reader of the events subscribed before the rib task starts, for a task
    /// started after it that must see its first events (the cluster task waits for
    /// the first convergence); only with `[kubernetes]`.
    first_events: Option<broadcast::Receiver<Arc<Occurrence>>>,
    /// The Node's InternalIP addresses, read once from the API server when
    /// `[ipam] address_detection = "kubernetes-internal-ip"`.
    internal_ips: Option<Vec<IpAddr>>,
}

/// Runs bgpd with `config` (read from `config_path`, which reloads re-read) until
/// SIGTERM or SIGINT, or until one of its tasks ends unexpectedly (an error naming
/// it).
pub async fn run(config_path: PathBuf, config: Config) -> anyhow::Result<()> {
    crate::fault::arm().map_err(|error| anyhow::anyhow!(error))?;
    let mut wiring = Wiring {
        config_path,
        config: Arc::new(config),
        started: Instant::now(),
        fib: None,
        fib_view: None,
        rib: None,
        questions: None,
        supervisor: None,
        bfd: None,
        ipam: None,
        dataplane: None,
        dataplane_status: None,
        overlay: None,
        control: None,
        handler: None,
        events: Events::new(),
        first_events: None,
        internal_ips: None,
    };
    let mut running = Running::default();
    for (name, start) in TASKS {
        if let Some(task) = start(&mut wiring).await? {
            running.push(name, task);
        }
    }
    // Only the tasks hold the rib's input now: it ends with them.
    wiring.rib = None;
    wiring.first_events = None;
    let config = wiring.config.clone();
    tracing::info!(
        asn = config.bgp.asn.get(),
        router_id = %config.bgp.router_id,
        neighbors = config.bgp.neighbors.len(),
        "bgpd started"
    );
    let Some(supervisor) = wiring.supervisor.clone() else {
        anyhow::bail!("the supervisor task was not started");
    };

    let mut hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    loop {
        tokio::select! {
            _ = hangup.recv() => match supervisor.reload().await {
                Ok(summary) => tracing::info!("SIGHUP: {summary}"),
                Err(error) => tracing::error!("SIGHUP: configuration not reloaded:\n{error}"),
            },
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            ended = running.ended() => {
                // Nothing may clean up after a fault: dropping the wiring could let
                // route-sync shut down and remove the routes the next start adopts.
                std::mem::forget(wiring);
                anyhow::bail!("{ended}; stopping with the kernel routes as they are")
            }
        }
    }
    stop(&mut running, &supervisor, wiring.fib_view.as_ref()).await;
    drop(wiring);
    tracing::info!("stopped");
    Ok(())
}

/// The orderly stop: tasks that would change routes first, then the peers.
async fn stop(running: &mut Running, supervisor: &Supervisor, fib: Option<&FibView>) {
    tracing::info!("stopping");
    if let Some(view) = fib {
        view.stop();
    }
    let fib_task = running.take("fib");
    let control = running.take("control");
    let supervisor_task = running.take("supervisor");
    // The rib (and the IPAM task, and any other) first: from now on nothing changes
    // in the kernel but what route-sync does at its own shutdown (keep or remove
    // every route of ours).
    for (_, task) in running.drain().into_iter().rev() {
        task.abort();
        let _ = task.await;
    }
    let fib_done = async {
        if let Some(task) = fib_task
            && tokio::time::timeout(FIB_STOP_TIMEOUT, task).await.is_err()
        {
            tracing::warn!("route-sync did not finish within {FIB_STOP_TIMEOUT:?}");
        }
    };
    tokio::join!(supervisor.shutdown("bgpd is shutting down"), fib_done);
    if let Some(task) = supervisor_task {
        let _ = task.await;
    }
    if let Some(task) = control {
        task.abort();
    }
}

/// route-sync and the fib task (with `[fib] enabled`). Routes of ours already in the
/// kernel are adopted; with graceful restart their presence makes this a restart.
fn start_fib(wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move {
        let config = &wiring.config;
        if !config.fib.enabled {
            return Ok(None);
        }
        let keep_routes = config.fib.sync.keep_on_shutdown || config.bgp.graceful_restart.enabled;
        let (sender, view, task) = crate::fib::spawn_with_overlay(
            config.fib.sync.clone(),
            keep_routes,
            wiring.events.clone(),
            wiring.overlay.take(),
        )
        .await
        .context("starting route-sync")?;
        wiring.fib = Some(sender);
        wiring.fib_view = Some(view);
        Ok(Some(task))
    })
}

fn start_rib(wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move {
        if wiring.config.kubernetes.is_some() {
            wiring.first_events = Some(wiring.events.subscribe());
        }
        // Only the rib task holds the fib task's input: the fib task ends after it.
        let (rib, questions, task) = crate::rib::spawn(
            wiring.config.clone(),
            wiring.fib.take(),
            wiring.events.clone(),
        );
        wiring.rib = Some(rib);
        wiring.questions = Some(questions);
        Ok(Some(task))
    })
}

/// The BFD task (`bfd_task`): always started, it opens no socket until a session
/// configured with `bfd` subscribes.
fn start_bfd(wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move {
        let (handle, task) = crate::bfd_task::spawn();
        wiring.bfd = Some(handle);
        Ok(Some(task))
    })
}

/// The listeners and sessions; with graceful restart and adopted kernel routes,
/// sessions announce the restart for `restart_time`.
fn start_supervisor(wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move {
        let config = wiring.config.clone();
        let rib = wiring.rib.clone().context("the rib task is not started")?;
        let mut speaker = SpeakerSettings::from_config(&config);
        if config.bgp.graceful_restart.enabled
            && let Some(view) = &wiring.fib_view
        {
            let adopted = view
                .snapshot()
                .await
                .map(|snapshot| snapshot.counters.adopted)
                .unwrap_or(0);
            if adopted > 0 {
                let window =
                    Duration::from_secs(u64::from(config.bgp.graceful_restart.restart_time));
                speaker.restarting_until = Some(wiring.started + window);
                tracing::info!(
                    adopted,
                    "graceful restart: {adopted} kernel routes kept from before; announcing the restart for {}s",
                    window.as_secs()
                );
            }
        }
        let (supervisor, task) = crate::supervisor::spawn(
            Some(wiring.config_path.clone()),
            config,
            Arc::new(speaker),
            rib,
            wiring.events.clone(),
            wiring.bfd.clone(),
        )?;
        wiring.supervisor = Some(supervisor);
        Ok(Some(task))
    })
}

/// The dataplane task (with `[dataplane]` or `[ipam]`); an MTU override that the
/// underlay cannot carry stops bgpd here.
fn start_dataplane(wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move {
        let Some(settings) = crate::dataplane_task::Settings::from_config(&wiring.config)
            .map_err(anyhow::Error::msg)?
        else {
            return Ok(None);
        };
        let (snapshots, overlay) = if wiring.config.ipam.is_some() {
            let (sender, receiver) = tokio::sync::watch::channel(None);
            wiring.dataplane = Some(sender);
            let (overlay, routes) = tokio::sync::watch::channel(None);
            wiring.overlay = Some(routes);
            (Some(receiver), Some(overlay))
        } else {
            (None, None)
        };
        let (status, status_receiver) = tokio::sync::watch::channel(Default::default());
        wiring.dataplane_status = Some(status_receiver);
        let task = crate::dataplane_task::spawn(settings, snapshots, overlay, status).await?;
        Ok(Some(task))
    })
}

/// The IPAM task (with `[ipam]`).
fn start_ipam(wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move {
        read_internal_ips(wiring).await?;
        let Some(settings) =
            crate::ipam_task::Settings::from_config(&wiring.config, wiring.internal_ips.as_deref())
                .map_err(anyhow::Error::msg)?
        else {
            return Ok(None);
        };
        let rib = wiring.rib.clone().context("the rib task is not started")?;
        let supervisor = wiring
            .supervisor
            .clone()
            .context("the supervisor is not started")?;
        let (handle, task) = crate::ipam_task::spawn(
            settings,
            rib,
            supervisor,
            wiring.dataplane.take(),
            wiring.events.clone(),
        );
        wiring.ipam = Some(handle);
        Ok(Some(task))
    })
}

/// How long bgpd waits at start for its Node's InternalIP addresses.
const INTERNAL_IPS_PATIENCE: Duration = Duration::from_secs(60);

/// With `address_detection = "kubernetes-internal-ip"`, reads the Node's InternalIP
/// addresses once (retrying while the API server or the Node's addresses are not
/// there yet, for at most [`INTERNAL_IPS_PATIENCE`]); nothing otherwise.
async fn read_internal_ips(wiring: &mut Wiring) -> anyhow::Result<()> {
    let config = wiring.config.clone();
    let (Some(ipam), Some(kubernetes)) = (&config.ipam, &config.kubernetes) else {
        return Ok(());
    };
    if wiring.internal_ips.is_some()
        || ipam.address_detection != Some(cluster::address::Detection::KubernetesInternalIp)
        || !ipam.node_addresses.is_empty()
    {
        return Ok(());
    }
    let node = ipam.node_name().map_err(anyhow::Error::msg)?;
    let until = Instant::now() + INTERNAL_IPS_PATIENCE;
    let mut wait = Duration::from_millis(250);
    let mut told = String::new();
    loop {
        let outcome = match cluster::client::connect(kubernetes.kubeconfig.as_deref()).await {
            Ok((client, api_server)) => {
                match cluster::client::internal_ips(&client, &api_server, &node).await {
                    Ok(found) if found.is_empty() => Err(format!(
                        "Node {node} on {api_server} has no InternalIP address yet"
                    )),
                    Ok(found) => Ok(found),
                    Err(error) => Err(error.to_string()),
                }
            }
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(found) => {
                tracing::info!(node = %node, addresses = ?found, "ipam.address_detection kubernetes-internal-ip: the Node's InternalIP addresses");
                wiring.internal_ips = Some(found);
                return Ok(());
            }
            Err(error) if Instant::now() + wait < until => {
                if error != told {
                    tracing::warn!(
                        "ipam.address_detection kubernetes-internal-ip: {error}; trying again"
                    );
                    told = error;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(error) => anyhow::bail!(
                "ipam.address_detection kubernetes-internal-ip: {error} (gave up after {INTERNAL_IPS_PATIENCE:?})"
            ),
        }
    }
}

/// The cluster task (with `[kubernetes]`): BGPPeers to the supervisor, the Node's
/// NetworkUnavailable condition after the first convergence, the WrenNode status,
/// and with `[ipam]` the cluster's IPAM collector.
fn start_cluster(wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move {
        read_internal_ips(wiring).await?;
        let Some(settings) = crate::cluster_task::Settings::from_config(
            &wiring.config,
            wiring.internal_ips.as_deref(),
        )
        .map_err(anyhow::Error::msg)?
        else {
            return Ok(None);
        };
        let supervisor = wiring
            .supervisor
            .clone()
            .context("the supervisor is not started")?;
        let events = wiring
            .first_events
            .take()
            .context("no event reader from before the rib task")?;
        let rib = wiring.rib.clone().context("the rib task is not started")?;
        Ok(Some(crate::cluster_task::spawn(
            settings,
            crate::cluster_task::Wiring {
                file: wiring.config.clone(),
                supervisor,
                rib,
                ipam: wiring.ipam.clone(),
                events,
            },
        )))
    })
}

/// The CNI token task (with `[kubernetes] cni_kubeconfig`): the CNI plugins'
/// kubeconfig keeps a live token.
fn start_cni_token(wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move {
        Ok(crate::cni_token_task::Settings::from_config(&wiring.config)
            .map(crate::cni_token_task::spawn))
    })
}

/// The control socket, last: it answers about every other task.
fn start_control(wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move {
        let handler = Arc::new(Handler {
            supervisor: wiring
                .supervisor
                .clone()
                .context("the supervisor is not started")?,
            rib: wiring.rib.clone().context("the rib task is not started")?,
            questions: wiring
                .questions
                .clone()
                .context("the rib task is not started")?,
            fib: wiring.fib_view.clone(),
            ipam: wiring.ipam.clone(),
            bfd: wiring.bfd.clone().context("the BFD task is not started")?,
            events: wiring.events.clone(),
        });
        let (socket, task) =
            crate::control::server::spawn(&wiring.config.control, handler.clone())?;
        wiring.control = Some(socket);
        wiring.handler = Some(handler);
        Ok(Some(task))
    })
}

/// The metrics listener (with `[metrics]`), after the control socket: it answers
/// from the same view of the tasks.
fn start_metrics(wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move {
        let Some(metrics) = &wiring.config.metrics else {
            return Ok(None);
        };
        let handler = wiring
            .handler
            .clone()
            .context("the control server is not started")?;
        let sources = crate::metrics::Sources {
            handler,
            dataplane: wiring.dataplane_status.clone(),
        };
        Ok(Some(
            crate::metrics::http::spawn(metrics.listen, sources).await?,
        ))
    })
}

/// The allocator's trims after bursts (see [`crate::memory`]), last: it only watches
/// the process.
fn start_memory(_wiring: &mut Wiring) -> BoxFuture<'_, anyhow::Result<Option<JoinHandle<()>>>> {
    Box::pin(async move { Ok(crate::memory::spawn()) })
}
