//! The benchmark harness: Wren side by side with BIRD, FRR and GoBGP (issue 7), in network
//! namespaces built with the lab library, driven by one load generator written on
//! bgp-proto, timed by netlink route events.
//!
//! `cargo run --release -p bench -- all` (as root) runs every scenario but the `scale`
//! family (issue 18: thousands of simulated nodes, `scale` runs them all); name one or more
//! to run only those; `--quick` runs each once on small sizes (for CI). Results go to
//! bench/results/ (bench/results-quick/ with `--quick`): per scenario a Markdown table,
//! an SVG chart and the raw runs as JSON, and README.md gathering every table with the
//! machine they ran on. Progress lines go to stderr. Any scenario that fails makes the
//! exit status non-zero after the others have run.
//!
//! Modules: `scenario` (the ten scenarios and the `scale` family), `generator` (simulated peers), `dut` (the
//! daemons under test), `topology` (namespaces), `fibwatch` and `routelog` (time stamps),
//! `system` (pinning, /proc), `poller` (the /proc poller of unpinned runs), `scraper` (GETs of Wren's /metrics), `kubernetes` (the control plane and real nodes of `k8s-join`),
//! `report` (tables, charts, machine), `stats`.

mod dut;
mod fibwatch;
mod generator;
mod kubernetes;
mod poller;
mod report;
mod routelog;
mod scenario;
mod scraper;
mod stats;
mod system;
mod topology;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;

use dut::Kind;
use report::Table;
use scenario::{NAMES, Options, SCALE, SCALE_SESSION_SCENARIOS};

/// Benchmarks Wren against BIRD, FRR and GoBGP (run as root).
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
struct Cli {
    /// Scenarios to run: all, or any of propagation, mesh, bulk, bulk-unpinned, churn,
    /// restart, ipam, k8s-join, metrics, bfd; scale (the family), or any of scale-mesh,
    /// scale-reflector, scale-churn, scale-ipam.
    #[arg(required = true)]
    scenarios: Vec<String>,
    /// One run of each scenario on small sizes (a few minutes; what CI runs).
    #[arg(long)]
    quick: bool,
    /// Runs per figure (default 5, or 1 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Daemons to run, comma-separated: wren, bird, frr, gobgp (default all).
    #[arg(long, value_delimiter = ',')]
    daemons: Option<Vec<String>>,
    /// Fail when Wren's bgpd cannot run, instead of reporting it not available.
    #[arg(long)]
    require_wren: bool,
    /// Hold time in seconds of every session of scale-mesh, scale-reflector and
    /// scale-churn (default 9; the issue asks for 9 and 90); results of another than the
    /// default go to SCENARIO-holdSECONDS files.
    #[arg(long, value_parser = clap::value_parser!(u16).range(3..=65535))]
    hold_time: Option<u16>,
    /// Sizes (N simulated nodes) of scale-mesh, scale-reflector and scale-churn,
    /// comma-separated, instead of their own (e.g. 1000,2500); scale-ipam takes one:
    /// the nodes that claim.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(10..=10000))]
    sizes: Option<Vec<u64>>,
    /// Where results go (default bench/results, or bench/results-quick with --quick).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() {
    match run(Cli::parse()) {
        Ok(()) => {}
        Err(error) => {
            eprintln!("bench: {error:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let scenarios = scenario_list(&cli.scenarios)?;
    let daemons = match &cli.daemons {
        None => Kind::ALL.to_vec(),
        Some(names) => names
            .iter()
            .map(|n| {
                Kind::parse(n)
                    .with_context(|| format!("unknown daemon {n:?} (wren, bird, frr, gobgp)"))
            })
            .collect::<Result<_>>()?,
    };
    let runs = cli.runs.unwrap_or(if cli.quick { 1 } else { 5 });
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let scale_options = [
        (
            "--hold-time",
            cli.hold_time.is_some(),
            &SCALE_SESSION_SCENARIOS[..],
        ),
        ("--sizes", cli.sizes.is_some(), &SCALE[..]),
    ];
    for (option, given, applies) in scale_options {
        if let Some(other) = scenarios
            .iter()
            .find(|s| given && !applies.contains(&s.as_str()))
        {
            bail!(
                "{option} applies to {} only, not to {other}",
                applies.join(", ")
            );
        }
    }
    if let Some(sizes) = &cli.sizes
        && sizes.len() > 1
        && scenarios.iter().any(|s| s == "scale-ipam")
    {
        bail!("--sizes: scale-ipam runs one size (the nodes that claim), not {sizes:?}");
    }
    let options = Options {
        quick: cli.quick,
        runs,
        daemons,
        require_wren: cli.require_wren,
        hold_time: cli.hold_time,
        sizes: cli
            .sizes
            .map(|sizes| sizes.into_iter().map(|n| n as usize).collect()),
    };
    let out = cli.out.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(if cli.quick {
            "results-quick"
        } else {
            "results"
        })
    });
    lab::check(lab::Prereq::Root).map_err(|reason| anyhow::anyhow!("{reason}"))?;
    if cli.quick {
        dut::accept_debug_builds();
    }
    let cpus = system::pin_harness()?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let machine = report::machine::describe(cpus);
    let started = Instant::now();
    let bench = topology::Bench::new()?;
    let mut failures = Vec::new();
    for name in &scenarios {
        let scenario_started = Instant::now();
        match scenario::run(name, &options, &bench) {
            Ok(table) => {
                let took = scenario_started.elapsed().as_secs_f64();
                write_scenario(&out, &table, &machine, &options, took)?;
            }
            Err(error) => {
                eprintln!("bench: scenario {name} failed: {error:#}");
                failures.push(name.clone());
            }
        }
    }
    drop(bench);
    write_index(&out, &machine)?;
    eprintln!(
        "bench: {} scenario(s) in {:.0} s; results in {}",
        scenarios.len(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    if !failures.is_empty() {
        bail!("failed scenarios: {}", failures.join(", "));
    }
    Ok(())
}

fn scenario_list(names: &[String]) -> Result<Vec<String>> {
    let mut list = Vec::new();
    for name in names {
        if name == "all" {
            list.extend(NAMES.iter().map(|n| (*n).to_owned()));
        } else if name == "scale" {
            list.extend(SCALE.iter().map(|n| (*n).to_owned()));
        } else if NAMES.contains(&name.as_str()) || SCALE.contains(&name.as_str()) {
            list.push(name.clone());
        } else {
            bail!(
                "unknown scenario {name:?} (all, {}, scale, {})",
                NAMES.join(", "),
                SCALE.join(", ")
            );
        }
    }
    list.dedup();
    Ok(list)
}

/// Writes SCENARIO.md (machine facts, table, chart link), SCENARIO.svg and SCENARIO.json.
fn write_scenario(
    out: &Path,
    table: &Table,
    machine: &[(String, String)],
    options: &Options,
    took: f64,
) -> Result<()> {
    let charts = report::chart::draw_by_unit(table, out)?;
    let mut text = report::markdown::render(table);
    for chart in charts {
        text.push_str(&format!("![{}]({chart})\n\n", table.scenario));
    }
    text.push_str(&format!(
        "<sub>{} run{} per figure{}, {:.0} s, on: {}.</sub>\n",
        options.runs,
        if options.runs == 1 { "" } else { "s" },
        if options.quick {
            " (--quick sizes)"
        } else {
            ""
        },
        took,
        machine
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    let md = out.join(format!("{}.md", table.scenario));
    std::fs::write(&md, text).with_context(|| format!("writing {}", md.display()))?;
    let json = out.join(format!("{}.json", table.scenario));
    std::fs::write(&json, raw_json(table)?)
        .with_context(|| format!("writing {}", json.display()))?;
    Ok(())
}

/// Every run of every figure, for whoever wants to recompute.
fn raw_json(table: &Table) -> Result<String> {
    let rows: Vec<serde_json::Value> = table
        .rows
        .iter()
        .map(|row| {
            let cells: serde_json::Map<String, serde_json::Value> = row
                .cells
                .iter()
                .map(|(subject, cell)| {
                    let value = match cell {
                        report::Cell::Runs(values) => serde_json::json!({ "runs": values }),
                        report::Cell::Missing(reason) => serde_json::json!({ "missing": reason }),
                    };
                    (subject.clone(), value)
                })
                .collect();
            serde_json::json!({
                "figure": row.label,
                "unit": row.unit.symbol(),
                "subjects": cells,
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "scenario": table.scenario,
        "title": table.title,
        "rows": rows,
    }))?)
}

/// README.md of the results directory: how to run, the machine of the latest run, then
/// every scenario file present, in scenario order.
fn write_index(out: &Path, machine: &[(String, String)]) -> Result<()> {
    let mut text = String::from(
        "# Benchmarks: Wren, BIRD, FRR and GoBGP side by side\n\n\
         Produced by `cargo run --release -p bench -- all` (as root; see bench/src/main.rs). \
         Each cell is the median over runs with (min–max); ratio columns divide Wren's median \
         by the other's. Lower is better except for pairs per second.\n\n\
         Machine of the latest run:\n\n",
    );
    for (key, value) in machine {
        text.push_str(&format!("- {key}: {value}\n"));
    }
    text.push('\n');
    for name in NAMES.iter().chain(&SCALE) {
        for path in std::iter::once(out.join(format!("{name}.md"))).chain(other_holds(out, name)?) {
            if let Ok(section) = std::fs::read_to_string(&path) {
                text.push_str(&section);
                text.push('\n');
            }
        }
    }
    let index = out.join("README.md");
    std::fs::write(&index, text).with_context(|| format!("writing {}", index.display()))
}

/// The results of scenario `name` run with another hold time (`NAME-holdSECONDS.md`),
/// in file name order.
fn other_holds(out: &Path, name: &str) -> Result<Vec<PathBuf>> {
    let prefix = format!("{name}-hold");
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(out).with_context(|| format!("listing {}", out.display()))? {
        let entry = entry.with_context(|| format!("listing {}", out.display()))?;
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".md") {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}
