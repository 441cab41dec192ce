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
