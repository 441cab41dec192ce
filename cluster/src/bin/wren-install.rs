//! `wren-install`: the DaemonSet's init container. Copies the CNI plugins from the image
//! into the node's plugin directory, writes the plugins' kubeconfig with a fresh token
//! of `wren-cni` (asked with the pod's own credentials, `wren-node`'s), then the
//! conflist; each file is replaced atomically. bgpd refreshes the token afterwards.
//!
//!   wren-install [--source-dir /usr/lib/cni] [--bin-dir /opt/cni/bin]
//!                [--net-dir /etc/cni/net.d] [--kubeconfig PATH] ...
//!
//! Exit status 0 when everything is in place, 1 with one line naming what failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use cluster::install;
use cluster::token::{self, Account, Refresher};

#[derive(Debug, Parser)]
#[command(
    name = "wren-install",
    about = "Install Wren's CNI plugins, their kubeconfig and the conflist on this node"
)]
struct Args {
    /// Where the image holds the plugins.
    #[arg(long, default_value = "/usr/lib/cni")]
    source_dir: PathBuf,
    /// The node's CNI plugin directory (mounted from the host).
    #[arg(long, default_value = "/opt/cni/bin")]
    bin_dir: PathBuf,
    /// The node's CNI configuration directory (mounted from the host).
    #[arg(long, default_value = "/etc/cni/net.d")]
    net_dir: PathBuf,
    /// A plugin to copy (repeat for several; default: wren and wren-ipam).
    #[arg(long = "plugin")]
    plugins: Vec<String>,
    /// The credentials that reach the API server (default: the pod's in-cluster
    /// configuration, else KUBECONFIG).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The namespace of the plugins' service account.
    #[arg(long, default_value = "wren-system")]
    namespace: String,
    /// The plugins' service account.
    #[arg(long, default_value = "wren-cni")]
    service_account: String,
    /// How long the plugins' token lives (at least 600; bgpd asks for a new one after a
    /// quarter of it).
    #[arg(long, default_value_t = token::DEFAULT_LIFETIME.as_secs())]
    token_lifetime_seconds: u64,
    /// This node's name (default: NODENAME, else the host name).
    #[arg(long)]
    node: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wren-install: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(install(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wren-install: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn install(args: Args) -> anyhow::Result<()> {
    let node = match &args.node {
        Some(node) => {
            cluster::node::validate(node)
                .map_err(|reason| anyhow::anyhow!("--node {node:?} {reason}"))?;
            node.clone()
        }
        None => cluster::node::name()?,
    };
    let plugins = if args.plugins.is_empty() {
        install::PLUGINS.map(String::from).to_vec()
    } else {
        args.plugins.clone()
    };
    for path in install::copy_plugins(&args.source_dir, &args.bin_dir, &plugins)? {
        println!("installed {}", path.display());
    }

    let account = Account {
        namespace: args.namespace.clone(),
        name: args.service_account.clone(),
        lifetime: Duration::from_secs(args.token_lifetime_seconds),
    };
    let kubeconfig = args.net_dir.join(install::KUBECONFIG);
    std::fs::create_dir_all(&args.net_dir)
        .with_context(|| format!("creating {}", args.net_dir.display()))?;
    let token = Refresher::connect(args.kubeconfig.as_deref(), account, kubeconfig.clone())
        .await?
        .refresh()
        .await?;
    let lifetime = token
        .expires
        .duration_since(token.issued)
        .unwrap_or_default();
    println!(
        "wrote {} (token of {}/{} for {} s)",
        kubeconfig.display(),
        args.namespace,
        args.service_account,
        lifetime.as_secs()
    );

    let conflist = install::write_conflist(&args.net_dir, &node, &kubeconfig)?;
    println!("wrote {} for node {node}", conflist.display());
    Ok(())
}
