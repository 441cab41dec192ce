//! BFD against BIRD 2's `protocol bfd`, single hop (RFC 5881): bgpd with `bfd = true`
//! and BIRD with `bfd on` in its BGP protocol bring the BFD session Up (`birdc show
//! bfd sessions` says so, with our 300 ms × 3); with all traffic to BIRD dropped both
//! ways by nftables, bgpd closes the BGP session with Cease / BFD Down and BIRD's
//! route leaves its kernel table within 1 s, although the hold time is 90 s; with
//! traffic back, everything returns by itself. Needs root, BIRD and nft.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bfd_support;

use bfd_support::{PREFIX, drop_and_measure, restore_and_wait, wait_wren_bfd_up};
use lab::fixture::{Wren, kernel_route, pair, wren_config};
use lab::{Bird, TIMEOUT};

/// BIRD's BFD session with `address`: the line of `show bfd sessions` that starts with
/// it, split into fields (address, interface, state, since (one or two fields), interval,
/// timeout).
fn bird_bfd_session(bird: &Bird, address: &str) -> Option<Vec<String>> {
    let sessions = bird.birdc("show bfd sessions").ok()?;
    sessions
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|fields| fields.first().is_some_and(|first| first == address))
}

/// Whether BIRD's session with `address` is Up.
fn bird_bfd_up(bird: &Bird, address: &str) -> bool {
    bird_bfd_session(bird, address).is_some_and(|fields| fields.get(2).is_some_and(|s| s == "Up"))
}

#[test]
fn bfd_with_bird_detects_a_dead_link_within_a_second() {
    let Some(_ready) = lab::require!(Root, Bird, Nft) else {
        return;
    };
    let pair = pair("wbfb", "10.96.1", "fd00:96");
    let bird = Bird::start(
        &pair.b,
        &format!(
            "router id 10.96.1.2;
protocol device {{}}
protocol static s4 {{ ipv4; route {PREFIX} blackhole; }}
protocol bfd {{
  interface \"eth1\" {{ min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }};
}}
protocol bgp wren {{
  local 10.96.1.2 as 65001;
  neighbor 10.96.1.1 as 64512;
  connect retry time 1;
  hold time 90;
  error wait time 1, 5;
  bfd on;
  ipv4 {{ import all; export where proto = \"s4\"; }};
}}
"
        ),
    )
    .unwrap();
    let socket = Wren::socket_path(&pair.a);
    let wren = Wren::start(
        &pair.a,
        &wren_config(
            "10.96.1.1",
            &socket,
            true,
            "[[bgp.neighbor]]\naddress = \"10.96.1.2\"\nremote_asn = 65001\nhold_time = 90\nconnect_retry = 1\nbfd = true\n",
        ),
    );
    bird.wait_established(TIMEOUT, &["wren"]).unwrap();
    wren.wait_established(&["10.96.1.2"]);
    let neighbor = wren.bgpctl_json(&["show", "neighbor", "10.96.1.2"]);
    assert_eq!(
        neighbor["detail"]["negotiated"]["hold_time"], 90,
        "{neighbor}"
    );
    lab::wait_until(TIMEOUT, "BIRD's route in bgpd's kernel table", || {
        kernel_route(&pair.a, PREFIX).is_some()
    })
    .unwrap();

    // BIRD's side: Up on eth1, at 300 ms with a 900 ms timeout once the 1 s of slow
    // start is polled away.
    lab::wait_until(TIMEOUT, "BIRD's BFD session up at 300 ms × 3", || {
        bird_bfd_session(&bird, "10.96.1.1").is_some_and(|fields| {
            fields.get(2).is_some_and(|s| s == "Up")
                && fields.iter().rev().nth(1).is_some_and(|i| i == "0.300")
                && fields.last().is_some_and(|t| t == "0.900")
        })
    })
    .unwrap();
    let session = bird_bfd_session(&bird, "10.96.1.1").unwrap();
    assert_eq!(session[1], "eth1", "{session:?}");
    let ours = wait_wren_bfd_up(&wren, "10.96.1.2");
    assert_eq!(ours["interface"], "eth1", "{ours}");

    drop_and_measure(&pair.a, &wren, "10.96.1.2");
    restore_and_wait(&pair.a, &wren, "10.96.1.2", || {
        bird_bfd_up(&bird, "10.96.1.1")
    });
    bird.wait_established(TIMEOUT, &["wren"]).unwrap();
}
