//! `wren-lab up|down|exec|status TOPOLOGY.clab.yml`: containerlab topologies built out of
//! network namespaces, without Docker, by the `lab` library (the same code the integration
//! tests use). A lab that is up is recorded under /run/wren-lab/NAME/ (or
//! `WREN_LAB_RUN_DIR`), so the other commands work from any shell; `down` needs only the
//! topology file and removes everything even after a crash. `--prefix P` runs a copy of a
//! topology under other names (namespaces `P-LAB-NODE`, state in /run/wren-lab/P-NAME/).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use lab::topology::{self, State, Topology, node_command, run_dir};

#[derive(Debug, Parser)]
#[command(
    name = "wren-lab",
    version,
    about = "Run containerlab topologies in Linux network namespaces"
)]
struct Cli {
    /// Namespace name prefix instead of the file's (`PREFIX-LAB-NODE`), so two copies of one
    /// topology can run side by side; give the same prefix to every command of that copy.
    #[arg(long, global = true, value_name = "PREFIX")]
    prefix: Option<String>,
    #[command(subcommand)]
    command: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Deploy the topology and leave it running.
    Up { topology: PathBuf },
    /// Remove everything the topology's lab made (namespaces, links, daemons, pods).
    Down { topology: PathBuf },
    /// Run a command inside a node, where vtysh and bgpctl reach the node's own daemons.
    Exec {
        topology: PathBuf,
        node: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Show nodes, namespaces, daemons and links of a running lab; exits 1 if any is gone.
    Status {
        topology: PathBuf,
        /// Print the recorded state as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command, cli.prefix.as_deref()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("wren-lab: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(action: Action, prefix: Option<&str>) -> anyhow::Result<ExitCode> {
    let open = |path: &Path| load(path, prefix);
    match action {
        Action::Up { topology } => up(&topology, open(&topology)?),
        Action::Down { topology } => down(open(&topology)?),
        Action::Exec {
            topology,
            node,
            command,
        } => exec(open(&topology)?, &node, &command),
        Action::Status { topology, json } => status(open(&topology)?, json),
    }
}

/// The topology and its lab directory (`RUN_DIR/NAME`, or `RUN_DIR/PREFIX-NAME` under a
/// `--prefix`).
fn load(path: &Path, prefix: Option<&str>) -> anyhow::Result<(Topology, PathBuf)> {
    let path =
        std::fs::canonicalize(path).with_context(|| format!("topology {}", path.display()))?;
    let mut topology = Topology::load(&path)?;
    let dir = match prefix {
        None => run_dir().join(&topology.name),
        Some(prefix) => {
            let ok = !prefix.is_empty()
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                bail!("--prefix {prefix:?}: use letters, digits, '-' and '_'");
            }
            topology.prefix = Some(prefix.to_owned());
            run_dir().join(format!("{prefix}-{}", topology.name))
        }
    };
    Ok((topology, dir))
}

fn up(path: &Path, (topology, dir): (Topology, PathBuf)) -> anyhow::Result<ExitCode> {
    if State::path(&dir).exists() {
        bail!(
            "lab {} is up already ({}); run `wren-lab down {}` first",
            topology.name,
            State::path(&dir).display(),
            path.display()
        );
    }
    let lab = match topology.deploy_in(&dir) {
        Ok(lab) => lab,
        Err(error) => {
            // The failed deploy removed what it made; remove the directory too.
            let _ = std::fs::remove_dir_all(&dir);
            return Err(error.into());
        }
    };
    let state = lab.persist()?;
    print_status(&state);
    Ok(ExitCode::SUCCESS)
}

fn down((topology, dir): (Topology, PathBuf)) -> anyhow::Result<ExitCode> {
    let removed = topology::teardown(&topology, &dir)?;
    if removed.is_empty() {
        println!("lab {} was not up", topology.name);
    }
    for item in removed {
        println!("removed {item}");
    }
    Ok(ExitCode::SUCCESS)
}

fn exec(
    (topology, dir): (Topology, PathBuf),
    node: &str,
    command: &[String],
) -> anyhow::Result<ExitCode> {
    let spec = topology
        .node(node)
        .with_context(|| format!("lab {} has no node {node:?}", topology.name))?;
    let netns = topology.netns_name(node);
    if !Path::new(lab::netns::NETNS_RUN_DIR).join(&netns).exists() {
        bail!(
            "lab {} is not up: namespace {netns} does not exist",
            topology.name
        );
    }
    let (program, args) = command.split_first().context("no command given")?;
    let status = node_command(&netns, &dir.join("nodes").join(node), &spec.env, program)
        .args(args)
        .status()
        .with_context(|| format!("running {program} in node {node}"))?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn status((topology, dir): (Topology, PathBuf), json: bool) -> anyhow::Result<ExitCode> {
    if !State::path(&dir).exists() {
        println!("lab {} is not up", topology.name);
        return Ok(ExitCode::FAILURE);
    }
    let state = State::read(&dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&state)?);
    }
    let healthy = if json {
        check(&state)
    } else {
        print_status(&state)
    };
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints the lab as tables; returns true when every namespace, daemon and link is there.
fn print_status(state: &State) -> bool {
    println!(
        "lab {} ({}), state in {}",
        state.name,
        state.topology.display(),
        state.dir.display()
    );
    println!();
    println!(
        "{:<12} {:<6} {:<28} {:<8}",
        "NODE", "ROLE", "NAMESPACE", "STATE"
    );
    for node in &state.nodes {
        let present = netns_exists(&node.netns);
        println!(
            "{:<12} {:<6} {:<28} {:<8}",
            node.name,
            node.role,
            node.netns,
            if present { "present" } else { "MISSING" }
        );
        for daemon in &node.daemons {
            println!(
                "  daemon {:<36} pid {:<8} {:<6} log {}",
                daemon.name,
                daemon.pid,
                if daemon.is_alive() { "alive" } else { "DEAD" },
                daemon.log.display()
            );
        }
        for pod in &node.pods {
            println!(
                "  pod    {:<36} {} {}",
                pod.netns,
                pod.addresses.join(","),
                if netns_exists(&pod.netns) {
                    "present"
                } else {
                    "MISSING"
                }
            );
        }
    }
    println!();
    println!("{:<40} {:<40} STATE", "LINK END A", "LINK END B");
    for link in &state.links {
        println!(
            "{:<40} {:<40} {}",
            format!("{}:{}", link.a_netns, link.a_interface),
            format!("{}:{}", link.b_netns, link.b_interface),
            link_state(&link.a_netns, &link.a_interface)
        );
    }
    check(state)
}

fn check(state: &State) -> bool {
    state.nodes.iter().all(|node| {
        netns_exists(&node.netns)
            && node.daemons.iter().all(|d| d.is_alive())
            && node.pods.iter().all(|p| netns_exists(&p.netns))
    }) && state
        .links
        .iter()
        .all(|l| link_state(&l.a_netns, &l.a_interface) == "up")
}

fn netns_exists(name: &str) -> bool {
    Path::new(lab::netns::NETNS_RUN_DIR).join(name).exists()
}

fn link_state(netns: &str, interface: &str) -> String {
    let mut command = std::process::Command::new("ip");
    command.args(["-j", "-n", netns, "link", "show", "dev", interface]);
    match lab::run_command_json(&mut command) {
        Ok(value) => value[0]["operstate"]
            .as_str()
            .unwrap_or("unknown")
            .to_lowercase(),
        Err(_) => "MISSING".to_owned(),
    }
}
