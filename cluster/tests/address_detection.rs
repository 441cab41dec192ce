//! Address detection against a real kernel: one network namespace with several
//! interfaces (veth pairs named as on a node: docker0, pods' veths, wren's and VXLAN
//! devices, one interface that is down, two uplinks; each one's other end is named
//! `vethp-*`, which first-found skips) and routes, and each method of
//! `[ipam] address_detection` run inside it.

use std::net::IpAddr;

use cluster::address::Detection;
use lab::netns::Netns;

/// The node as built: (interface, up, addresses), in creation (= index) order.
const INTERFACES: &[(&str, bool, &[&str])] = &[
    ("docker0", true, &["172.17.0.1/16"]),
    ("veth9", true, &["10.99.0.1/24"]),
    ("wren0", true, &["10.98.0.1/24"]),
    ("vxlan0", true, &["10.97.0.1/24"]),
    ("down0", false, &["10.96.0.1/24", "2001:db8:96::1/64"]),
    ("eth0", true, &["10.0.0.5/24", "2001:db8::5/64"]),
    (
        "eth1",
        true,
        &["192.168.7.5/24", "192.168.7.6/24", "2001:db8:7::5/64"],
    ),
];

/// Routes: a default route over eth0, two prefixes over eth1 (one of them with the
/// secondary address as preferred source), and one unreachable prefix.
const ROUTES: &[&[&str]] = &[
    &["route", "add", "default", "via", "10.0.0.1", "dev", "eth0"],
    &[
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        "192.168.7.1",
        "dev",
        "eth1",
    ],
    &[
        "route",
        "add",
        "198.18.0.0/15",
        "dev",
        "eth1",
        "src",
        "192.168.7.6",
    ],
    &["route", "add", "unreachable", "192.0.2.0/24"],
    &[
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8::1",
        "dev",
        "eth0",
    ],
    &[
        "-6",
        "route",
        "add",
        "2001:db8:100::/48",
        "via",
        "2001:db8:7::1",
        "dev",
        "eth1",
    ],
];

fn build() -> Netns {
    let netns = Netns::new("addrdetect").expect("namespace");
    for (name, up, addresses) in INTERFACES {
        let other = format!("vethp-{name}");
        netns
            .ip(&["link", "add", name, "type", "veth", "peer", "name", &other])
            .expect("veth pair");
        netns.ip(&["link", "set", &other, "up"]).expect("link up");
        for address in *addresses {
            let mut args = vec!["address", "add", address, "dev", name];
            if address.contains(':') {
                args.push("nodad");
            }
            netns.ip(&args).expect("address");
        }
        if *up {
            netns.ip(&["link", "set", name, "up"]).expect("link up");
        }
    }
    for route in ROUTES {
        netns.ip(route).expect("route");
    }
    netns
}

#[test]
fn each_method_chooses_in_a_namespace_with_several_interfaces() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let netns = build();
    let cases: &[(&str, &[&str])] = &[
        // Skips docker0, veth9, wren0, vxlan0 (excluded) and down0 (down).
        ("first-found", &["10.0.0.5", "2001:db8::5"]),
        ("interface=eth1", &["192.168.7.5", "2001:db8:7::5"]),
        ("interface=vxlan.*", &["10.97.0.1"]),
        ("skip-interface=eth0", &["192.168.7.5", "2001:db8:7::5"]),
        (
            "cidr=192.168.0.0/16,2001:db8:7::/48",
            &["192.168.7.5", "2001:db8:7::5"],
        ),
        ("cidr=172.16.0.0/12", &["172.17.0.1"]),
        // The kernel's choice: the default route's interface, the first address of
        // eth1 for a route over it, and the route's preferred source when it has one.
        ("can-reach=198.51.100.1", &["10.0.0.5"]),
        ("can-reach=203.0.113.9", &["192.168.7.5"]),
        (
            "can-reach=198.18.0.1,2001:db8:100::1",
            &["192.168.7.6", "2001:db8:7::5"],
        ),
        ("can-reach=2001:db8:200::1", &["2001:db8::5"]),
    ];
    for (method, expected) in cases {
        let detection: Detection = method.parse().expect("method");
        let found = netns
            .enter(|| detection.detect(None))
            .expect("enter namespace")
            .unwrap_or_else(|error| panic!("{method}: {error}"));
        let expected: Vec<IpAddr> = expected
            .iter()
            .map(|a| a.parse().expect("address"))
            .collect();
        assert_eq!(found, expected, "{method}");
    }
    // Nothing to find: one line naming the method.
    for method in [
        "interface=eth7",
        "cidr=100.64.0.0/10",
        "can-reach=192.0.2.1",
        "can-reach=127.0.0.1",
    ] {
        let detection: Detection = method.parse().expect("method");
        let message = netns
            .enter(|| detection.detect(None))
            .expect("enter namespace")
            .expect_err(method)
            .to_string();
        assert!(message.contains(method), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}
