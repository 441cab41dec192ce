//! A full disk under the SQLite store: a small tmpfs mounted in the test's scratch
//! directory (unmounted when the test ends, also on failure). SQLite resolves
//! symbolic links in database paths, so a tmpfs in a private mount namespace reached
//! through /proc/PID/root would not do: the store would land outside it. With the
//! disk full, an ADD fails with a one-line CNI error naming the datastore;
//! nothing is lost (every earlier allocation is still there), the failed ADDs left
//! nothing behind, and once there is space again ADDs work and `ipam check` is clean.
//! Needs root (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipam::store::SqliteStore;
use ipam::{Ipam, Pool};
use lab::cni::{CniInvocation, NO_NETNS, plugin_command, wren_ipam_config};
use serde_json::Value;

const PLUGIN: &str = env!("CARGO_BIN_EXE_wren-ipam");
const BEFORE: usize = 20;

/// A tmpfs of `size` mounted at DIR/disk; unmounted (lazily, so an open file
/// cannot keep it) when dropped, also when the test panics.
struct SmallDisk {
    mountpoint: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        let mountpoint = dir.join("disk");
        std::fs::create_dir_all(&mountpoint).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0755"))
            .arg("wren-full")
            .arg(&mountpoint)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs: {status}");
        SmallDisk { mountpoint }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mountpoint.join(name)
    }

    /// Fills the disk with `name`; returns the octets written.
    fn fill(&self, name: &str) -> u64 {
        let mut file = std::fs::File::create(self.path(name)).unwrap();
        let chunk = vec![0xa5u8; 4096];
        let mut written = 0;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(count) => written += count as u64,
                Err(error) if error.raw_os_error() == Some(ENOSPC) => break,
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
        let _ = file.sync_all();
        written
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .status();
    }
}

/// errno ENOSPC (no space left on device) on Linux.
const ENOSPC: i32 = 28;

fn cni(command: &str, container: &str, conf: &str) -> (bool, Value) {
    let output = CniInvocation::new(command, container, NO_NETNS)
        .run(plugin_command(PLUGIN), conf.as_bytes())
        .unwrap();
    assert!(
        !output.stderr.contains("panicked"),
        "wren-ipam panicked: {}",
        output.stderr
    );
    (output.success, output.json().unwrap())
}

fn address(json: &Value) -> String {
    json["ips"][0]["address"].as_str().unwrap().to_owned()
}

#[test]
fn a_full_disk_gives_a_clear_error_and_loses_nothing() {
    let Some(ready) = lab::require!(Root) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let disk = SmallDisk::mount(ready.dir(), "4m");
    let url = format!("sqlite://{}", disk.path("ipam.db").display());
    let conf = wren_ipam_config(&url, "node-d", None);
    {
        let ipam = Ipam::new(runtime.block_on(SqliteStore::open(&url)).unwrap());
        runtime
            .block_on(ipam.add_pool(Pool::new("10.245.0.0/16".parse().unwrap())))
            .unwrap();
    }
    let mut before = Vec::new();
    for pod in 0..BEFORE {
        let (ok, json) = cni("ADD", &format!("pod{pod}"), &conf);
        assert!(ok, "{json}");
        before.push(address(&json));
    }

    // No space left: ADDs fail, each with one clear line naming the datastore.
    let filled = disk.fill("filler");
    assert!(filled > 0);
    let mut errors = Vec::new();
    for pod in BEFORE..BEFORE + 5 {
        let (ok, json) = cni("ADD", &format!("pod{pod}"), &conf);
        if ok {
            // SQLite may still have room in pages it holds: then the address is real
            // and must be checked like the others.
            before.push(address(&json));
            continue;
        }
        let message = json["msg"].as_str().unwrap_or_else(|| panic!("{json}"));
        assert!(json["code"].as_u64().is_some(), "{json}");
        assert!(!message.contains('\n'), "{json}");
        assert!(
            message.contains(&url),
            "the error names the datastore: {json}"
        );
        errors.push(json);
    }
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!("df {0}; ls -la {0}", disk.mountpoint.display()))
        .output()
        .unwrap();
    assert!(
        !errors.is_empty(),
        "no ADD failed on a full disk:\n{}",
        String::from_utf8_lossy(&listing.stdout)
    );
    eprintln!("on a full disk: {}", errors[0]);

    // Space again: nothing was lost, the failed ADDs left nothing, ADDs work again.
    std::fs::remove_file(disk.path("filler")).unwrap();
    let ipam = Ipam::new(runtime.block_on(SqliteStore::open(&url)).unwrap());
    runtime.block_on(async {
        for (pod, expected) in before.iter().enumerate() {
            let held = ipam.addresses_of(&format!("pod{pod}.eth0")).await.unwrap();
            assert_eq!(held.len(), 1, "pod{pod} lost its address: {held:?}");
            assert_eq!(
                held[0].address.to_string(),
                expected.split('/').next().unwrap()
            );
        }
        let report = ipam.check().await.unwrap();
        assert!(report.is_clean(), "{}", report.render());
    });
    let mut all: Vec<String> = before.clone();
    for pod in before.len()..BEFORE + 5 {
        let (ok, json) = cni("ADD", &format!("pod{pod}"), &conf);
        assert!(ok, "{json}");
        all.push(address(&json));
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "an address was handed out twice");
    let report = runtime.block_on(ipam.check()).unwrap();
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.addresses, BEFORE + 5 + 1, "{}", report.render());
}
