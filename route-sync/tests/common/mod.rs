//! Test harness: each test body runs on its own thread inside a private
//! network namespace (`unshare(CLONE_NEWNET)` on that thread), with its own
//! current-thread tokio runtime. The namespace, its links and routes vanish
//! with the thread, even when the test fails. Needs root; without it tests
//! skip with a reason, unless WREN_REQUIRE_LAB=1 makes that a failure.

#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Runs `body` in a fresh network namespace, or skips without root.
pub fn in_netns<F, Fut>(test: &str, body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<()>>,
{
    if !nix::unistd::geteuid().is_root() {
        let reason =
            format!("{test}: skipped, needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare)");
        if std::env::var("WREN_REQUIRE_LAB").as_deref() == Ok("1") {
            panic!("{reason}; WREN_REQUIRE_LAB=1 makes this a failure");
        }
        eprintln!("{reason}");
        return;
    }
    let outcome = std::thread::spawn(move || -> Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .context("unshare(CLONE_NEWNET)")?;
        ip(&["link", "set", "lo", "up"])?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(body())
    })
    .join();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("{test}: {error:#}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs `ip ARGS` in the current thread's namespace and returns stdout.
pub fn ip(args: &[&str]) -> Result<String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !output.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `ip -j ARGS` parsed.
pub fn ip_json(args: &[&str]) -> Result<Vec<Value>> {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let text = ip(&all)?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(&text).with_context(|| format!("parsing ip -j {}", args.join(" ")))
}

/// The routes with protocol `proto` in the main table for one family.
pub fn routes(family: &str, proto: &str) -> Result<Vec<Value>> {
    ip_json(&[family, "route", "show", "table", "main", "proto", proto])
}

/// The route of protocol 196 for `dst` (as `ip` prints it), if any.
pub fn our_route(dst: &str) -> Result<Option<Value>> {
    let family = if dst.contains(':') { "-6" } else { "-4" };
    Ok(routes(family, "196")?.into_iter().find(|r| r["dst"] == dst))
}

/// Gateways of a route, single path or ECMP, sorted.
pub fn gateways(route: &Value) -> Vec<String> {
    let mut gateways: Vec<String> = match route["nexthops"].as_array() {
        Some(hops) => hops
            .iter()
            .filter_map(|h| h["gateway"].as_str().map(String::from))
            .collect(),
        None => route["gateway"]
            .as_str()
            .map(String::from)
            .into_iter()
            .collect(),
    };
    gateways.sort();
    gateways
}

/// A veth pair `name` <-> `name`p, both up, `addresses` on `name`.
pub fn veth(name: &str, addresses: &[&str]) -> Result<()> {
    let peer = format!("{name}p");
    ip(&["link", "add", name, "type", "veth", "peer", "name", &peer])?;
    for address in addresses {
        if address.contains(':') {
            ip(&["addr", "add", address, "dev", name, "nodad"])?;
        } else {
            ip(&["addr", "add", address, "dev", name])?;
        }
    }
    ip(&["link", "set", &peer, "up"])?;
    ip(&["link", "set", name, "up"])?;
    Ok(())
}

/// Polls `condition` every 50 ms for up to 60 s.
pub async fn wait_for<F>(what: &str, mut condition: F) -> Result<()>
where
    F: AsyncFnMut() -> Result<bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if condition().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after 60 s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `ip -N monitor route` (numeric: `proto 196` even when named) running into a file, with markers that prove it has
/// seen everything up to a point.
pub struct Monitor {
    child: Child,
    file: PathBuf,
    markers: u32,
}

impl Monitor {
    /// Starts the monitor and waits until it demonstrably listens.
    pub async fn start() -> Result<Monitor> {
        let file = std::env::temp_dir().join(format!(
            "route-sync-monitor-{}-{:?}.txt",
            std::process::id(),
            std::thread::current().id()
        ));
        let output = std::fs::File::create(&file)?;
        let child = Command::new("ip")
            .args(["-N", "-ts", "monitor", "route"])
            .stdout(output)
            .stderr(Stdio::null())
            .spawn()
            .context("starting ip monitor route")?;
        let mut monitor = Monitor {
            child,
            file,
            markers: 0,
        };
        monitor.mark().await?;
        Ok(monitor)
    }

    /// Adds a marker route (proto static) and waits until it is printed.
    /// A new marker is added every second until one shows, because the
    /// monitor may not have joined the multicast group when it started.
    pub async fn mark(&mut self) -> Result<()> {
        for _ in 0..60 {
            self.markers += 1;
            let marker = format!("198.18.{}.{}", self.markers / 250, self.markers % 250 + 1);
            ip(&["route", "add", "blackhole", &marker, "proto", "static"])?;
            for _ in 0..20 {
                if std::fs::read_to_string(&self.file)?.contains(&format!("{marker} ")) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        bail!("ip monitor printed none of 60 marker routes in 60 s")
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Result<Vec<String>> {
        Ok(std::fs::read_to_string(&self.file)?
            .lines()
            .map(String::from)
            .collect())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// A restart: the routes of ours are in the kernel (the first syncer shut down
/// keeping them); a second syncer adopts `adopted` of them, is given `changes` again
/// and converges, and sends nothing to the kernel (no batch, no route of ours seen
/// by `ip monitor`, `ip route` as before). Returns the second syncer, its snapshot,
/// and the monitor (for a control change).
pub async fn restart_unchanged(
    changes: Vec<route_sync::Change>,
    adopted: u64,
) -> Result<(route_sync::FibHandle, route_sync::Snapshot, Monitor)> {
    let before = (routes("-4", "196")?, routes("-6", "196")?);
    let mut monitor = Monitor::start().await?;
    let second = route_sync::start(route_sync::Config::default()).await?;
    let snapshot = second.snapshot().await?;
    assert_eq!(snapshot.counters.adopted, adopted);
    assert!(snapshot.installed.iter().all(|r| r.adopted));
    second.apply(changes).await?;
    second.sync().await?;
    assert_eq!(second.end_of_initial_convergence().await?, 0);
    let snapshot = second.snapshot().await?;
    assert!(snapshot.failed.is_empty(), "{:?}", snapshot.failed);
    assert!(snapshot.installed.iter().all(|r| !r.adopted));
    assert_eq!(snapshot.counters.batches, 0, "{:?}", snapshot.counters);
    monitor.mark().await?;
    let ours: Vec<String> = monitor
        .lines()?
        .into_iter()
        .filter(|l| l.contains("proto 196"))
        .collect();
    assert!(
        ours.is_empty(),
        "route-sync changed routes on restart: {ours:?}"
    );
    assert_eq!((routes("-4", "196")?, routes("-6", "196")?), before);
    Ok((second, snapshot, monitor))
}
