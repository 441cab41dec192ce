//! bgpd with its output on a full disk (stdout or stderr on /dev/full, which fails
//! every write with ENOSPC): no panic (exit status 101), the exit status alone still
//! tells what happened, and a running daemon keeps serving. bgpctl likewise, and it
//! ends quietly when its reader goes away (`bgpctl show routes | head`). No root needed: the
//! daemon listens nowhere and installs nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab::fixture::{bgpctl, bgpctl_command};

#[test]
fn check_config_answers_by_exit_status_when_output_fails() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.toml");
    std::fs::write(
        &valid,
        "[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\nlisten = []\n",
    )
    .unwrap();
    let invalid = dir.path().join("invalid.toml");
    std::fs::write(&invalid, "[bgp]\nasn = 0\n").unwrap();

    let status = Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .arg("--check-config")
        .arg(&valid)
        .stdout(full())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "valid config, stdout full");

    let status = Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .arg("--check-config")
        .arg(&invalid)
        .stderr(full())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "invalid config, stderr full");

    let status = Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .arg("--config")
        .arg(&invalid)
        .stderr(full())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "daemon, invalid config, stderr full"
    );
}

#[test]
fn a_daemon_logging_to_a_full_disk_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bgpd.sock");
    let config = dir.path().join("bgpd.toml");
    std::fs::write(
        &config,
        format!(
            "[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\nlisten = []\n\n\
             [[bgp.neighbor]]\naddress = \"192.0.2.1\"\nremote_asn = 65001\nconnect_retry = 1\n\n\
             [[bgp.network]]\nprefix = \"10.244.1.0/26\"\n\n\
             [fib]\nenabled = false\n\n[control]\nsocket = {socket:?}\n\n[log]\nlevel = \"debug\"\n"
        ),
    )
    .unwrap();
    let mut bgpd = Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(full())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(bgpd.id());

    // Debug logging (connection attempts every second) fails on every line meanwhile.
    let deadline = Instant::now() + Duration::from_secs(60);
    let routes = loop {
        if let Some(status) = bgpd.try_wait().unwrap() {
            panic!("bgpd exited with {status}");
        }
        let output = bgpctl(&socket, &["--json", "show", "routes"]);
        if output.status.success() {
            break String::from_utf8(output.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "no control socket after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(routes.contains("10.244.1.0/26"), "{routes}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(bgpd.try_wait().unwrap().is_none(), "bgpd exited");

    // bgpctl's own answers: a full stdout is one error line and status 1; a reader
    // that went away (`bgpctl show routes | head`) ends it quietly with status 0.
    let full_stdout = bgpctl_command(&socket)
        .args(["show", "routes"])
        .stdout(full())
        .output()
        .unwrap();
    assert_eq!(full_stdout.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&full_stdout.stderr);
    assert!(
        stderr.starts_with("bgpctl: cannot write the answer") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let mut closed = bgpctl_command(&socket)
        .args(["--json", "show", "routes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(closed.stdout.take());
    let closed = closed.wait_with_output().unwrap();
    assert_eq!(closed.status.code(), Some(0), "{closed:?}");
    assert!(closed.stderr.is_empty(), "{closed:?}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bgpd.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = bgpd.wait().unwrap();
    std::mem::forget(guard);
    assert_eq!(status.code(), Some(0), "stopped by SIGTERM");
}

fn full() -> File {
    File::options().write(true).open("/dev/full").unwrap()
}

/// Kills the daemon if the test fails before stopping it.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0 as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
