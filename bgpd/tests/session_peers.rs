//! bgpd against BIRD 2 and GoBGP 3 in network namespaces: sessions establish (seen
//! from the peer's side: birdc, gobgp -j), routes flow both ways over IPv4 and IPv6,
//! and a withdrawal reaches bgpd. Needs root, BIRD and GoBGP (skips otherwise; fails
//! with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lab::TIMEOUT;
use lab::fixture::{Wren, gobgp_config, pair, wren_config};
use lab::{Bird, Gobgp};

#[test]
fn bird_ipv4_and_ipv6() {
    let Some(_ready) = lab::require!(Root, Bird) else {
        return;
    };
    let net = pair("wb-bi", "10.41.0", "fd00:41");
    let bird = Bird::start(
        &net.a,
        "router id 10.41.0.1;
protocol device {}
protocol static s4 { ipv4; route 10.110.1.0/24 blackhole; }
protocol static s6 { ipv6; route fd00:110:1::/64 blackhole; }
protocol bgp wren4 {
  local 10.41.0.1 as 65001;
  neighbor 10.41.0.2 as 64512;
  connect retry time 1;
  hold time 9;
  ipv4 { import all; export where proto = \"s4\"; };
}
protocol bgp wren6 {
  local fd00:41::1 as 65001;
  neighbor fd00:41::2 as 64512;
  connect retry time 1;
  hold time 9;
  ipv6 { import all; export where proto = \"s6\"; };
}
",
    )
    .unwrap();
    let socket = Wren::socket_path(&net.b);
    let wren = Wren::start(
        &net.b,
        &wren_config(
            "10.41.0.2",
            &socket,
            false,
            "[[bgp.neighbor]]
address = \"10.41.0.1\"
remote_asn = 65001
hold_time = 9
connect_retry = 1

[[bgp.neighbor]]
address = \"fd00:41::1\"
remote_asn = 65001
hold_time = 9
connect_retry = 1

[[bgp.network]]
prefix = \"10.110.2.0/24\"

[[bgp.network]]
prefix = \"fd00:110:2::/64\"
",
        ),
    );
    bird.wait_established(TIMEOUT, &["wren4", "wren6"]).unwrap();
    wren.wait_established(&["10.41.0.1", "fd00:41::1"]);
    let paths = wren.wait_route("10.110.1.0/24");
    assert_eq!(paths[0]["as_path"], serde_json::json!([65001]));
    assert_eq!(paths[0]["source"], "10.41.0.1");
    let paths = wren.wait_route("fd00:110:1::/64");
    assert_eq!(paths[0]["source"], "fd00:41::1");
    bird.wait_route(TIMEOUT, "10.110.2.0/24").unwrap();
    bird.wait_route(TIMEOUT, "fd00:110:2::/64").unwrap();
    let detail = bird.birdc("show route 10.110.2.0/24 all").unwrap();
    assert!(detail.contains("BGP.as_path: 64512"), "{detail}");

    // BIRD stops announcing: bgpd withdraws.
    bird.birdc("disable s4").unwrap();
    wren.wait_no_route("10.110.1.0/24");
    // BIRD shuts the IPv6 session: its routes go, the IPv4 session stays.
    bird.birdc("disable wren6").unwrap();
    wren.wait_no_route("fd00:110:1::/64");
    assert_eq!(wren.neighbor("10.41.0.1").unwrap()["state"], "Established");
}

#[test]
fn gobgp_ipv4() {
    let Some(_ready) = lab::require!(Root, Gobgp) else {
        return;
    };
    let net = pair("wb-go", "10.42.0", "fd00:42");
    let gobgp = Gobgp::start(
        &net.a,
        &gobgp_config(65001, "10.42.0.1", "10.42.0.2", 64512),
    )
    .unwrap();
    gobgp.announce("10.120.1.0/24", "10.42.0.1").unwrap();
    let socket = Wren::socket_path(&net.b);
    let wren = Wren::start(
        &net.b,
        &wren_config(
            "10.42.0.2",
            &socket,
            false,
            "[[bgp.neighbor]]
address = \"10.42.0.1\"
remote_asn = 65001
hold_time = 9
connect_retry = 1

[[bgp.network]]
prefix = \"10.120.2.0/24\"
",
        ),
    );
    gobgp.wait_established(TIMEOUT, &["10.42.0.2"]).unwrap();
    wren.wait_established(&["10.42.0.1"]);
    let paths = wren.wait_route("10.120.1.0/24");
    assert_eq!(paths[0]["as_path"], serde_json::json!([65001]));
    let learned = gobgp.wait_route(TIMEOUT, "10.120.2.0/24").unwrap();
    let text = serde_json::to_string(&learned).unwrap();
    assert!(text.contains("64512"), "{text}");
    gobgp.withdraw("10.120.1.0/24").unwrap();
    wren.wait_no_route("10.120.1.0/24");
}
