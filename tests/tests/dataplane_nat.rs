//! nat_outgoing end to end (issue 15, part 3): bgpd with `[ipam]` on SQLite in a
//! node namespace, a pool with `nat_outgoing`, two "pods" (veths with pool
//! addresses) and an "internet" namespace that has no route back to the pool.
//!
//! - A pod reaches the internet address, which sees the node's address as the
//!   source; pod-to-pod and pod-to-(other)-node traffic keeps the pod's address.
//! - A restart of bgpd with nothing changed sends nothing to nftables (`nft monitor`
//!   stays silent; the table's and rules' handles are the same).
//! - iptables-nft rules (kube-proxy's kind) present before are the same after.
//! - Deleting the pool and adding it back without nat_outgoing removes the table.
//!
//! Needs root, nft and iptables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use lab::fixture::{Wren, wren_config};
use lab::{Netns, TIMEOUT, Veth, wait_until};
use wren_tests::ipam_node::{forwarding, ipam_section};

const POOL: &str = "10.77.0.0/16";
const NODE: &str = "198.51.100.1";
const INTERNET: &str = "198.51.100.2";
/// Another node's address (registered in the datastore), on the internet side.
const OTHER_NODE: &str = "198.51.100.3";
const POD1: &str = "10.77.1.10";
const POD2: &str = "10.77.2.10";

/// A pod: a namespace whose eth0 has `address`/24, the node's side `.1`.
fn pod(node: &Netns, name: &str, address: &str, side: &str) -> (Netns, Veth) {
    let pod = Netns::new(name).unwrap();
    let veth = Veth::new(node, side, &pod, "eth0").unwrap();
    let gateway = address.rsplit_once('.').unwrap().0.to_owned() + ".1";
    node.ip(&["addr", "add", &format!("{gateway}/24"), "dev", side])
        .unwrap();
    pod.ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"])
        .unwrap();
    pod.ip(&["route", "add", "default", "via", &gateway])
        .unwrap();
    (pod, veth)
}

/// The source address `server` sees when `client` connects to `address`:7777;
/// `None` when the connection fails (no way back).
fn source_seen(server: &Netns, address: &str, client: &Netns) -> Option<IpAddr> {
    let target: SocketAddr = format!("{address}:7777").parse().unwrap();
    let listener = server.enter(|| TcpListener::bind(target)).unwrap().unwrap();
    let stream = client
        .enter(|| TcpStream::connect_timeout(&target, Duration::from_secs(2)))
        .unwrap()
        .ok()?;
    let (_, peer) = listener.accept().unwrap();
    drop(stream);
    Some(peer.ip())
}

fn table(netns: &Netns) -> Option<String> {
    netns
        .exec(&["nft", "-a", "list", "table", "inet", "wren"])
        .ok()
}

#[test]
fn pods_reach_the_internet_masqueraded_and_nothing_else_is() {
    let Some(ready) = lab::require!(Root, Nft, Iptables) else {
        return;
    };
    let node = Netns::new("wt-natn").unwrap();
    let internet = Netns::new("wt-nati").unwrap();
    let _wan = Veth::new(&node, "wan", &internet, "eth0").unwrap();
    node.ip(&["addr", "add", &format!("{NODE}/24"), "dev", "wan"])
        .unwrap();
    for address in [INTERNET, OTHER_NODE] {
        internet
            .ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"])
            .unwrap();
    }
    let (pod1, _veth1) = pod(&node, "wt-natp1", POD1, "pod1");
    let (pod2, _veth2) = pod(&node, "wt-natp2", POD2, "pod2");
    forwarding(&node);

    // kube-proxy's kind of rules, before bgpd.
    lab::netfilter::add_kube_proxy_rules(&node, POOL).unwrap();
    let iptables = lab::netfilter::others_state(&node).unwrap();

    // Another node in the registry.
    let url = format!("sqlite://{}", ready.dir().join("ipam.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ipam = ipam::connect(&url).await.unwrap();
        let other = ipam::Node {
            name: "node-b".into(),
            addresses: vec![OTHER_NODE.parse().unwrap()],
            asn: 64512,
            labels: Default::default(),
            vteps: Default::default(),
        };
        ipam.register_node(&other).await.unwrap();
    });

    // Without a nat_outgoing pool the internet is out of reach.
    assert_eq!(source_seen(&internet, INTERNET, &pod1), None);

    let config = wren_config(
        NODE,
        &Wren::socket_path(&node),
        false,
        &ipam_section(
            "node-a",
            &url,
            &[NODE],
            &format!("[[ipam.pool]]\ncidr = \"{POOL}\"\nnat_outgoing = true\n"),
        ),
    );
    let mut wren = Wren::start(&node, &config);
    wren.daemon
        .wait_log(TIMEOUT, "nftables table inet wren made")
        .unwrap();

    let node_address: IpAddr = NODE.parse().unwrap();
    assert_eq!(source_seen(&internet, INTERNET, &pod1), Some(node_address));
    assert_eq!(
        source_seen(&pod2, POD2, &pod1),
        Some(POD1.parse().unwrap()),
        "pod to pod is never masqueraded"
    );
    // The other node has no route back to the pool: a pod address as the source
    // shows as a connection that never completes, the node's as one that does.
    assert_eq!(
        source_seen(&internet, OTHER_NODE, &pod1),
        None,
        "pod to node is never masqueraded"
    );
    internet.ip(&["route", "add", POOL, "via", NODE]).unwrap();
    assert_eq!(
        source_seen(&internet, OTHER_NODE, &pod1),
        Some(POD1.parse().unwrap())
    );
    assert_eq!(source_seen(&internet, INTERNET, &pod1), Some(node_address));

    // A restart with nothing changed: nothing reaches nftables.
    let before = table(&node).unwrap();
    let monitor = node.spawn("nft-monitor", &["nft", "monitor"]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    wren.daemon.restart().unwrap();
    wren.daemon
        .wait_log(TIMEOUT, "already as wanted; nothing sent")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let log = monitor.log();
    drop(monitor);
    // The log's own header lines start with "===".
    let events: Vec<&str> = log.lines().filter(|l| !l.starts_with("===")).collect();
    assert!(
        events.is_empty(),
        "nft monitor saw changes across the restart:\n{log}"
    );
    assert_eq!(table(&node).unwrap(), before, "handles changed");
    assert_eq!(
        lab::netfilter::others_state(&node).unwrap(),
        iptables,
        "iptables-nft's rules changed"
    );

    // Turning nat_outgoing off: the pool deleted and added back without it.
    wait_until(TIMEOUT, "bgpd's control socket after the restart", || {
        wren.bgpctl(&["show", "neighbors"]).status.success()
    })
    .unwrap();
    wren.bgpctl_ok(&["ipam", "pool", "delete", POOL]);
    wren.bgpctl_ok(&["ipam", "pool", "add", POOL]);
    wren.daemon
        .wait_log(TIMEOUT, "nftables table inet wren removed")
        .unwrap();
    assert_eq!(table(&node), None);
    assert_eq!(
        lab::netfilter::others_state(&node).unwrap(),
        iptables,
        "iptables-nft's rules changed"
    );
    internet.ip(&["route", "del", POOL]).unwrap();
    assert_eq!(source_seen(&internet, INTERNET, &pod1), None);
}
