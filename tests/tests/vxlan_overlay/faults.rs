//! Faults of the underlay under the overlay: the parent device going down and
//! coming back.

use super::*;

/// Node A's parent device (`eth1`) goes down for 2 s and comes back (the test puts
/// its default route back, as the host's network configuration would): the kernel
/// flushed the routes through `eth1` (`cross_subnet`: node B's block straight via
/// B's underlay address), and bgpd puts them back (protocol 196), keeps
/// `vxlan.wren` (same index, same entries) and its pods reach B's and C's again.
#[test]
fn the_overlay_comes_back_after_the_parent_goes_down_and_up() {
    let Some(ready) = lab::require!(Root, Cni, Nft) else {
        return;
    };
    wren_binary("wren");
    wren_binary("wren-ipam");
    let (_router, a, b, c) = underlay("10.86", "p");
    let url = format!("sqlite://{}", ready.dir().join("ipam.db").display());
    let wrens: Vec<Wren> = [&a, &b, &c]
        .iter()
        .map(|n| Wren::start(&n.netns, &config(n, &url, "cross_subnet")))
        .collect();
    let pods: Vec<Pod> = [&a, &b, &c].iter().map(|n| pod(n, &url)).collect();
    let block_b = blocks_of(&url, &b.name).pop().unwrap();
    let block_c = blocks_of(&url, &c.name).pop().unwrap();
    let routes_of_a = || {
        let direct = kernel_route(&a.netns, &block_b)?;
        let tunnel = kernel_route(&a.netns, &block_c)?;
        (direct["dev"] == "eth1"
            && direct["gateway"] == b.address.as_str()
            && tunnel["dev"] == "vxlan.wren")
            .then_some(())
    };
    let reach = |what: &str| {
        for to in &pods[1..] {
            let address = to.address().unwrap();
            wrens[0]
                .daemon
                .wait_until(TIMEOUT, &format!("ping {address} {what}"), || {
                    pods[0].netns().ping(&address)
                })
                .unwrap();
            assert!(
                tcp(to.netns(), &address, pods[0].netns()),
                "TCP to {address}"
            );
        }
    };
    wrens[0]
        .daemon
        .wait_for(TIMEOUT, "node-a's routes", || {
            routes_of_a().ok_or("not yet")
        })
        .unwrap();
    reach("before");
    let device = || {
        a.netns
            .ip_json(&["-d", "link", "show", "dev", "vxlan.wren"])
            .unwrap()[0]
            .clone()
    };
    let before = device();

    a.netns.iface("eth1").down().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(kernel_route(&a.netns, &block_b), None, "flushed with eth1");
    a.netns.iface("eth1").up().unwrap();
    a.netns
        .ip(&["route", "replace", "default", "via", "10.86.1.254"])
        .unwrap();

    wrens[0]
        .daemon
        .wait_for(TIMEOUT, "node-a's routes again", || {
            routes_of_a().ok_or("not yet")
        })
        .unwrap();
    reach("after");
    let after = device();
    assert_eq!(after["ifindex"], before["ifindex"], "{after}");
    assert_eq!(vxlan_fdb(&a.netns).as_array().map(Vec::len), Some(2));
    drop(pods);
    drop(wrens);
}

/// Node A finds its address by `address_detection = "interface=eth1"`; its parent
/// device's address changes (10.87.1.1 -> 10.87.1.5, the default route put back):
/// within a resync bgpd registers the new address, `vxlan.wren` is made again with
/// it as local address, node C's FDB entry for A's VTEP points at it, and the pods
/// reach each other again.
#[test]
fn the_overlay_follows_a_new_underlay_address() {
    let Some(ready) = lab::require!(Root, Cni) else {
        return;
    };
    wren_binary("wren");
    wren_binary("wren-ipam");
    let (_router, a, _b, c) = underlay("10.87", "d");
    let url = format!("sqlite://{}", ready.dir().join("ipam.db").display());
    let pools = "[[ipam.pool]]\ncidr = \"10.251.0.0/16\"\nvxlan_mode = \"always\"\n";
    let detected = format!("address_detection = \"interface=eth1\"\nresync_interval = 1\n{pools}");
    let wrens = [
        Wren::start(&a.netns, &config_with(&a, &url, &[], &detected)),
        Wren::start(&c.netns, &config_with(&c, &url, &[&c.address], pools)),
    ];
    let pods: Vec<Pod> = [&a, &c].iter().map(|n| pod(n, &url)).collect();
    let near = pods[0].address().unwrap();
    let far = pods[1].address().unwrap();
    let reach = |what: &str| {
        wrens[0]
            .daemon
            .wait_until(TIMEOUT, &format!("ping {far} {what}"), || {
                pods[0].netns().ping(&far)
            })
            .unwrap();
        assert!(pods[1].netns().ping(&near), "ping {near} {what}");
        assert!(tcp(pods[1].netns(), &far, pods[0].netns()), "TCP {what}");
    };
    reach("before");

    a.netns
        .ip(&["addr", "del", "10.87.1.1/24", "dev", "eth1"])
        .unwrap();
    a.netns
        .ip(&["addr", "add", "10.87.1.5/24", "dev", "eth1"])
        .unwrap();
    a.netns
        .ip(&["route", "replace", "default", "via", "10.87.1.254"])
        .unwrap();
    let new: std::net::IpAddr = "10.87.1.5".parse().unwrap();
    wrens[0]
        .daemon
        .wait_until(TIMEOUT, "node-ad's new address registered", || {
            registration(&url, &a.name).is_some_and(|n| n.addresses == [new])
        })
        .unwrap();
    wrens[0]
        .daemon
        .wait_until(TIMEOUT, "vxlan.wren's new local address", || {
            a.netns
                .ip_json(&["-d", "link", "show", "dev", "vxlan.wren"])
                .is_ok_and(|l| l[0]["linkinfo"]["info_data"]["local"] == "10.87.1.5")
        })
        .unwrap();
    let mac = registered(&url, &a.name).vteps[0].mac.to_string();
    wrens[1]
        .daemon
        .wait_until(
            TIMEOUT,
            "node C's FDB entry for A at its new address",
            || {
                vxlan_fdb(&c.netns).as_array().is_some_and(|entries| {
                    entries
                        .iter()
                        .any(|e| e["mac"] == mac.as_str() && e["dst"] == "10.87.1.5")
                })
            },
        )
        .unwrap();
    reach("after");
    let log = wrens[0].daemon.log();
    assert_eq!(
        log.matches("the node's addresses changed").count(),
        1,
        "{log}"
    );
    drop(pods);
    drop(wrens);
}

/// The VXLAN port already held by another socket when bgpd starts: one error line
/// naming the port and the device (said once, though the overlay is retried every
/// 5 s), bgpd keeps running and routes the rest (its blocks, of the VXLAN pool and
/// of a `never` pool, blackholed in the kernel, protocol 196; bgpctl health ready);
/// once the port is free, `vxlan.wren` is made.
#[test]
fn a_vxlan_port_in_use_leaves_bgpd_running_and_the_rest_routed() {
    let Some(ready) = lab::require!(Root, Cni) else {
        return;
    };
    let (_router, a, _b, _c) = underlay("10.89", "u");
    let url = format!("sqlite://{}", ready.dir().join("ipam.db").display());
    let socket = a
        .netns
        .enter(|| std::net::UdpSocket::bind("0.0.0.0:4789"))
        .unwrap()
        .unwrap();
    let pools = "[[ipam.pool]]\ncidr = \"10.254.0.0/16\"\nvxlan_mode = \"always\"\n\
                 [[ipam.pool]]\ncidr = \"10.253.0.0/16\"\n";
    let wren = Wren::start(&a.netns, &config_with(&a, &url, &[&a.address], pools));
    let line = "UDP port 4789 is already in use by another socket";
    wren.daemon
        .wait_until(TIMEOUT, "the port's error line", || {
            wren.daemon.log().contains(line)
        })
        .unwrap();
    // Two more overlay attempts (every 5 s): still one line, bgpd up and routing.
    std::thread::sleep(Duration::from_secs(11));
    assert!(wren.daemon.is_alive(), "{}", wren.daemon.log());
    let log = wren.daemon.log();
    assert_eq!(log.matches(line).count(), 1, "{log}");
    let error = log.lines().find(|l| l.contains(line)).unwrap();
    assert!(error.contains("vxlan.wren"), "{error}");
    assert!(wren.bgpctl(&["health"]).status.success(), "{log}");
    let blocks = blocks_of(&url, &a.name);
    assert!(
        blocks.iter().any(|b| b.starts_with("10.253.")),
        "{blocks:?}"
    );
    for block in &blocks {
        let route = kernel_route(&a.netns, block).unwrap();
        assert_eq!(route["type"], "blackhole", "{route}");
    }
    assert!(
        a.netns
            .ip_json(&["link", "show", "dev", "vxlan.wren"])
            .is_err()
    );

    drop(socket);
    wren.daemon
        .wait_until(TIMEOUT, "vxlan.wren made once the port is free", || {
            a.netns
                .ip_json(&["link", "show", "dev", "vxlan.wren"])
                .is_ok()
        })
        .unwrap();
    drop(wren);
}
