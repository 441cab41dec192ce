//! bgpd turns IP forwarding on (issue 15) from its dataplane task, in a namespace
//! where it starts off: IPv4 always, IPv6 only with an IPv6 pool; a value set back
//! to 0 is turned on again at the next check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lab::fixture::{Wren, wren_config};
use lab::{Netns, TIMEOUT};

fn sysctl(netns: &Netns, name: &str) -> String {
    netns
        .exec(&["sysctl", "-n", name])
        .unwrap()
        .trim()
        .to_owned()
}

fn start(netns: &Netns, pools: &str) -> Wren {
    let ipam = format!(
        "[ipam]\nnode = \"node-fwd\"\ndatastore = \"sqlite://{}/ipam.db\"\n{pools}",
        netns.dir().display()
    );
    Wren::start(
        netns,
        &wren_config("10.92.0.1", &Wren::socket_path(netns), false, &ipam),
    )
}

const IPV4: &str = "net.ipv4.ip_forward";
const IPV6: &str = "net.ipv6.conf.all.forwarding";

#[test]
fn forwarding_is_turned_on_for_the_pools_families() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let both = Netns::new("wb-fwd").unwrap();
    let only_v4 = Netns::new("wb-fwd4").unwrap();
    for netns in [&both, &only_v4] {
        assert_eq!(sysctl(netns, IPV4), "0");
        assert_eq!(sysctl(netns, IPV6), "0");
    }
    let wren = start(
        &both,
        "[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\n[[ipam.pool]]\ncidr = \"fd00:244::/56\"\n",
    );
    let wren4 = start(&only_v4, "[[ipam.pool]]\ncidr = \"10.244.0.0/16\"\n");
    wren.daemon
        .wait_until(TIMEOUT, "IPv4 and IPv6 forwarding on", || {
            sysctl(&both, IPV4) == "1" && sysctl(&both, IPV6) == "1"
        })
        .unwrap();
    wren4
        .daemon
        .wait_until(TIMEOUT, "IPv4 forwarding on", || {
            sysctl(&only_v4, IPV4) == "1"
        })
        .unwrap();
    wren4
        .daemon
        .wait_log(TIMEOUT, "dataplane: IP forwarding turned on")
        .unwrap();
    assert_eq!(
        sysctl(&only_v4, IPV6),
        "0",
        "no IPv6 pool, no IPv6 forwarding"
    );

    // Turned off behind bgpd's back: on again at the next check.
    both.exec(&["sysctl", "-qw", &format!("{IPV4}=0")]).unwrap();
    wren.daemon
        .wait_until(TIMEOUT, "IPv4 forwarding on again", || {
            sysctl(&both, IPV4) == "1"
        })
        .unwrap();
}
