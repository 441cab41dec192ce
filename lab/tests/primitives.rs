//! The lab primitives against the real kernel: namespaces, veth links, daemons, etcd.
//! Needs root (skips otherwise, fails with WREN_REQUIRE_LAB=1).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use lab::{Etcd, Netns, Veth, wait_until};

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn netns_is_created_used_and_removed() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let host_dad_before =
        std::fs::read_to_string("/proc/sys/net/ipv6/conf/default/accept_dad").unwrap();
    let ns = Netns::new("wl-t").unwrap();
    let name = ns.name().to_owned();
    assert!(lab::netns::list().unwrap().contains(&name));
    assert!(
        ns.iface("lo").show().unwrap()["flags"]
            .to_string()
            .contains("UP")
    );
    // Only lo exists inside.
    let links = ns.ip_json(&["link", "show"]).unwrap();
    assert_eq!(links.as_array().unwrap().len(), 1, "{links}");
    assert_eq!(ns.exec(&["echo", "inside"]).unwrap().trim(), "inside");
    // IPv6 addresses are usable at once: no duplicate address detection inside.
    let dad = ns
        .exec(&["cat", "/proc/sys/net/ipv6/conf/default/accept_dad"])
        .unwrap();
    assert_eq!(dad.trim(), "0");
    let host_dad = std::fs::read_to_string("/proc/sys/net/ipv6/conf/default/accept_dad").unwrap();
    assert_eq!(host_dad, host_dad_before, "the host's setting changed");
    // A process left running inside is killed when the namespace goes.
    let mut sleeper = ns.command("sleep").arg("1000").spawn().unwrap();
    wait_until(TIMEOUT, "sleep inside the namespace", || {
        ns.pids().unwrap().contains(&(sleeper.id() as i32))
    })
    .unwrap();
    drop(ns);
    assert!(!sleeper.wait().unwrap().success());
    assert!(!lab::netns::list().unwrap().contains(&name));
}

#[test]
fn failing_command_reports_stderr() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let ns = Netns::new("wl-t").unwrap();
    let error = ns
        .ip(&["link", "set", "nosuchdev", "up"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("nosuchdev"), "{error}");
    assert!(error.contains(ns.name()), "{error}");
}

#[test]
fn veth_carries_traffic_and_obeys_settings() {
    let Some(_ready) = lab::require!(Root, Nft) else {
        return;
    };
    let a = Netns::new("wl-a").unwrap();
    let b = Netns::new("wl-b").unwrap();
    let _link = Veth::new(&a, "eth1", &b, "eth1").unwrap();
    a.iface("eth1")
        .addr("10.99.0.1/24")
        .unwrap()
        .addr("fd99::1/64")
        .unwrap();
    b.iface("eth1")
        .addr("10.99.0.2/24")
        .unwrap()
        .addr("fd99::2/64")
        .unwrap();
    assert_eq!(a.iface("eth1").addrs().unwrap()[0], "10.99.0.1/24");
    wait_until(TIMEOUT, "ping a -> b over v4", || a.ping("10.99.0.2")).unwrap();
    wait_until(TIMEOUT, "ping b -> a over v6", || b.ping("fd99::1")).unwrap();

    a.iface("eth1").mtu(1400).unwrap();
    assert_eq!(a.iface("eth1").get_mtu().unwrap(), 1400);

    a.iface("eth1").loss(100.0).unwrap();
    assert!(!a.ping("10.99.0.2"), "100% loss lets a ping through");
    a.iface("eth1").loss(0.0).unwrap();
    wait_until(TIMEOUT, "ping with 0% loss", || a.ping("10.99.0.2")).unwrap();
    a.iface("eth1").loss(100.0).unwrap();
    assert!(!a.ping("10.99.0.2"), "100% loss lets a ping through");
    a.iface("eth1").clear_loss().unwrap();
    wait_until(TIMEOUT, "ping after clearing the loss", || {
        a.ping("10.99.0.2")
    })
    .unwrap();

    b.iface("eth1").down().unwrap();
    wait_until(TIMEOUT, "a's end goes down with b's", || {
        !a.iface("eth1").is_up().unwrap()
    })
    .unwrap();
    assert!(!a.ping("10.99.0.2"));
    b.iface("eth1").up().unwrap();
    wait_until(TIMEOUT, "ping after link up", || a.ping("10.99.0.2")).unwrap();
}

#[test]
fn veth_to_host_and_drop_removes_it() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let ns = Netns::new("wl-h").unwrap();
    let host_if = lab::unique_ifname("wlh");
    let link = Veth::between((None, &host_if), (Some(&ns), "eth0")).unwrap();
    let shown = lab::run_command_json(
        std::process::Command::new("ip").args(["-j", "link", "show", &host_if]),
    )
    .unwrap();
    assert_eq!(shown[0]["ifname"], host_if.as_str());
    drop(link);
    assert!(
        lab::run_command(std::process::Command::new("ip").args(["link", "show", &host_if]))
            .is_err()
    );
    assert!(ns.ip(&["link", "show", "eth0"]).is_err());
}

#[test]
fn closure_runs_inside_with_its_own_tokio_runtime() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let a = Netns::new("wl-a").unwrap();
    let b = Netns::new("wl-b").unwrap();
    let _link = Veth::new(&a, "eth1", &b, "eth1").unwrap();
    a.iface("eth1").addr("10.98.0.1/24").unwrap();
    b.iface("eth1").addr("10.98.0.2/24").unwrap();

    // The address exists only in b: binding it proves the closure runs in b.
    let listener = b
        .enter(|| TcpListener::bind("10.98.0.2:0"))
        .unwrap()
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(
        TcpListener::bind("10.98.0.2:0").is_err(),
        "the test thread is not in b"
    );

    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).unwrap();
        stream.write_all(&buf).unwrap();
    });
    let echoed = a
        .enter(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut stream = tokio::net::TcpStream::connect(("10.98.0.2", port))
                    .await
                    .unwrap();
                stream.write_all(b"hello").await.unwrap();
                let mut buf = [0u8; 5];
                stream.read_exact(&mut buf).await.unwrap();
                buf
            })
        })
        .unwrap();
    assert_eq!(&echoed, b"hello");
    server.join().unwrap();
    // Back on the test thread: still the host namespace.
    assert!(TcpStream::connect(("10.98.0.2", port)).is_err());
}

#[test]
fn closure_panic_propagates() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let ns = Netns::new("wl-p").unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ns.enter(|| panic!("inside"))
    }));
    assert!(result.is_err());
}

#[test]
fn daemon_in_netns_logs_waits_and_is_killed() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let ns = Netns::new("wl-d").unwrap();
    let mut daemon = ns
        .spawn(
            "talker",
            &["sh", "-c", "echo started; sleep 1000 & sleep 1000"],
        )
        .unwrap();
    daemon.wait_log(TIMEOUT, "started").unwrap();
    assert!(daemon.log_path().starts_with(ns.dir()));
    wait_until(TIMEOUT, "sh and its sleeps in the namespace", || {
        ns.pids().unwrap().len() >= 2
    })
    .unwrap();

    // A timeout names the condition and shows the log.
    let error = daemon
        .wait_until(Duration::from_millis(50), "the impossible", || false)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the impossible") && error.contains("started"),
        "{error}"
    );

    daemon.restart().unwrap();
    daemon
        .wait_until(TIMEOUT, "second start logged", || {
            daemon.log().lines().filter(|l| *l == "started").count() == 2
        })
        .unwrap();
    drop(daemon);
    assert_eq!(ns.pids().unwrap(), Vec::<i32>::new());
}

#[test]
fn etcd_on_host_survives_kill_and_restart() {
    let Some(_ready) = lab::require!(Root, Etcd) else {
        return;
    };
    let mut etcd = Etcd::on_host().unwrap();
    assert!(etcd.endpoint().starts_with("http://127.0.0.1:"));
    etcd.etcdctl(&["put", "wren/key", "value1"]).unwrap();
    etcd.kill().unwrap();
    assert!(!etcd.is_healthy());
    etcd.restart().unwrap();
    let got = etcd
        .etcdctl(&["get", "wren/key", "--print-value-only"])
        .unwrap();
    assert_eq!(got.trim(), "value1");
}

#[test]
fn etcd_in_netns_serves_clients_in_it() {
    let Some(_ready) = lab::require!(Root, Etcd) else {
        return;
    };
    let ns = Netns::new("wl-e").unwrap();
    let etcd = Etcd::in_netns(&ns, "127.0.0.1".parse().unwrap()).unwrap();
    etcd.etcdctl(&["put", "k", "v"]).unwrap();
    // The host's loopback does not have it.
    let port = etcd
        .endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let inside = ns
        .enter(move || TcpStream::connect(("127.0.0.1", port)).is_ok())
        .unwrap();
    assert!(inside);
    drop(etcd);
    assert_eq!(ns.pids().unwrap(), Vec::<i32>::new());
}

#[test]
fn require_with_nothing_runs() {
    let ready = lab::require!().unwrap();
    assert!(ready.dir().is_dir());
}
