//! etcd killed with SIGKILL and restarted while 200 CNI ADDs (separate `wren-ipam`
//! processes, ten at a time, each retried as a runtime retries a failed ADD) are under
//! way: an ADD while etcd is down fails with a one-line CNI error naming the
//! datastore; in the end every pod has exactly one address, no address is handed out
//! twice, and `ipam check` finds nothing wrong. Needs etcd (skips otherwise; fails
//! with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipam::{Ipam, Pool};
use lab::cni::{CniInvocation, NO_NETNS, plugin_command, wren_ipam_config};
use serde_json::Value;

const PLUGIN: &str = env!("CARGO_BIN_EXE_wren-ipam");
const PODS: usize = 200;
const WORKERS: usize = 10;
/// How long one pod's ADD may keep failing (etcd down, then recovering).
const RETRY_FOR: Duration = Duration::from_secs(120);

/// One ADD: (success, stdout as JSON).
fn add(container: &str, conf: &str) -> (bool, Value) {
    let output = CniInvocation::new("ADD", container, NO_NETNS)
        .run(plugin_command(PLUGIN), conf.as_bytes())
        .unwrap();
    let json = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", output.stdout));
    (output.success, json)
}

/// A failed ADD must be a CNI error object with a code and a one-line message.
fn assert_clear_error(json: &Value) {
    assert!(json["code"].as_u64().is_some(), "{json}");
    let message = json["msg"].as_str().unwrap_or_else(|| panic!("{json}"));
    assert!(!message.is_empty() && !message.contains('\n'), "{json}");
}

#[test]
fn etcd_killed_and_restarted_during_two_hundred_adds() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some((store, mut guard)) = runtime.block_on(support::etcd()) else {
        return;
    };
    let ipam = Ipam::new(store);
    runtime
        .block_on(ipam.add_pool(Pool::new("10.244.0.0/16".parse().unwrap())))
        .unwrap();
    let conf = wren_ipam_config(&guard.url, "node-f", None);

    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let addresses = Mutex::new(vec![String::new(); PODS]);
    let failures = Mutex::new(Vec::<Value>::new());
    let worker = || {
        loop {
            let pod = next.fetch_add(1, Ordering::SeqCst);
            if pod >= PODS {
                return;
            }
            let container = format!("pod{pod}");
            let deadline = Instant::now() + RETRY_FOR;
            let address = loop {
                let (ok, json) = add(&container, &conf);
                if ok {
                    break json["ips"][0]["address"].as_str().unwrap().to_owned();
                }
                assert_clear_error(&json);
                failures.lock().unwrap().push(json);
                assert!(Instant::now() < deadline, "{container}: ADD kept failing");
                std::thread::sleep(Duration::from_millis(100));
            };
            addresses.lock().unwrap()[pod] = address;
            done.fetch_add(1, Ordering::SeqCst);
        }
    };

    let downtime_error = std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(worker);
        }
        // A quarter of the way in, etcd dies.
        lab::wait_until(lab::TIMEOUT, "50 ADDs done", || {
            done.load(Ordering::SeqCst) >= PODS / 4
        })
        .unwrap();
        let etcd = guard.etcd_mut().unwrap();
        etcd.kill().unwrap();
        // While it is down an ADD fails, clearly.
        let (ok, json) = add("while-down", &conf);
        assert!(!ok, "an ADD succeeded with etcd down: {json}");
        assert_clear_error(&json);
        etcd.restart().unwrap();
        json
    });

    let addresses = addresses.into_inner().unwrap();
    let failures = failures.into_inner().unwrap();
    let message = downtime_error["msg"].as_str().unwrap();
    assert!(
        message.contains(&guard.url),
        "the error names the datastore: {downtime_error}"
    );
    eprintln!(
        "while etcd was down: {downtime_error}\n{} failed attempts retried by the pods",
        failures.len()
    );

    // Every pod has one address, none twice, and the store is consistent.
    let distinct: HashSet<&String> = addresses.iter().collect();
    assert_eq!(distinct.len(), PODS, "an address was handed out twice");
    runtime.block_on(async {
        for pod in 0..PODS {
            let held = ipam.addresses_of(&format!("pod{pod}.eth0")).await.unwrap();
            assert_eq!(held.len(), 1, "pod{pod}: {held:?}");
        }
        // The ADD that failed while etcd was down left nothing behind.
        assert!(
            ipam.addresses_of("while-down.eth0")
                .await
                .unwrap()
                .is_empty()
        );
        let report = ipam.check().await.unwrap();
        assert!(report.is_clean(), "{}", report.render());
        // The pods and the node's gateway address.
        assert_eq!(report.addresses, PODS + 1, "{}", report.render());
    });
}
