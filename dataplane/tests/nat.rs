//! The `inet wren` table in a namespace, through the library: made for a
//! `nat_outgoing` pool, kept (same handles, no command) when nothing changed,
//! changed element by element when pools and nodes change, rebuilt when its shape
//! is not ours, UDP masquerade leaving out a VXLAN pool's port, removed when no
//! pool needs it; iptables-nft's tables untouched.
//! Needs root, nft and iptables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dataplane::nat::{self, Change, NatSettings};
use dataplane::{Node, Pool, Snapshot};
use lab::Netns;

fn snapshot(pools: &[(&str, bool)], nodes: &[&str]) -> Snapshot {
    Snapshot {
        pools: pools
            .iter()
            .map(|(cidr, nat_outgoing)| Pool {
                cidr: cidr.parse().unwrap(),
                nat_outgoing: *nat_outgoing,
                vxlan_mode: Default::default(),
                vxlan_vni: 4096,
                vxlan_port: 4789,
            })
            .collect(),
        nodes: nodes
            .iter()
            .enumerate()
            .map(|(index, address)| Node {
                name: format!("node-{index}"),
                addresses: vec![address.parse().unwrap()],
                vteps: vec![],
            })
            .collect(),
        blocks: vec![],
        borrowed: vec![],
    }
}

/// One sync of `snapshot` inside `netns`.
fn sync(netns: &Netns, snapshot: &Snapshot) -> Result<Change, dataplane::Error> {
    let desired = nat::desired(snapshot, &NatSettings::default());
    netns
        .enter(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(nat::nft::sync(desired.as_ref()))
        })
        .unwrap()
        .map(|plan| plan.change)
}

/// `nft -a list table inet wren` (handles included), or None.
fn table(netns: &Netns) -> Option<String> {
    netns
        .exec(&["nft", "-a", "list", "table", "inet", "wren"])
        .ok()
}

#[test]
fn the_table_follows_the_pools_and_nodes() {
    let Some(_ready) = lab::require!(Root, Nft, Iptables) else {
        return;
    };
    let netns = Netns::new("wd-nat").unwrap();
    // kube-proxy's kind of rules, in iptables-nft's tables.
    lab::netfilter::add_kube_proxy_rules(&netns, "10.244.0.0/16").unwrap();
    let iptables = lab::netfilter::others_state(&netns).unwrap();

    // No nat_outgoing pool: no table.
    let plain = snapshot(&[("10.244.0.0/16", false)], &["192.0.2.1"]);
    assert_eq!(sync(&netns, &plain).unwrap(), Change::None);
    assert_eq!(table(&netns), None);

    let first = snapshot(
        &[("10.244.0.0/16", true), ("fd00:244::/48", false)],
        &["192.0.2.1", "2001:db8::1"],
    );
    assert_eq!(sync(&netns, &first).unwrap(), Change::Created);
    let made = table(&netns).unwrap();
    assert!(
        made.contains("10.244.0.0/16") && made.contains("fd00:244::/48"),
        "{made}"
    );
    assert!(
        made.contains("masquerade to :4790-65535 fully-random"),
        "{made}"
    );
    assert!(
        made.contains("192.0.2.1") && made.contains("2001:db8::1"),
        "{made}"
    );

    // Nothing moved: no command, the same handles.
    assert_eq!(sync(&netns, &first).unwrap(), Change::None);
    assert_eq!(table(&netns).unwrap(), made);

    // A pool and a node more, one node less: elements only.
    let second = snapshot(
        &[
            ("10.244.0.0/16", true),
            ("10.96.0.0/12", true),
            ("fd00:244::/48", false),
        ],
        &["192.0.2.2", "2001:db8::1"],
    );
    assert_eq!(
        sync(&netns, &second).unwrap(),
        Change::Elements {
            added: 3,
            deleted: 1
        }
    );
    let changed = table(&netns).unwrap();
    assert!(
        changed.contains("10.96.0.0/12") && !changed.contains("192.0.2.1"),
        "{changed}"
    );
    let first_line = |text: &str| text.lines().next().unwrap_or_default().to_owned();
    assert_eq!(first_line(&changed), first_line(&made), "the table stays");

    // A chain that is not ours: the table is rebuilt in one transaction.
    netns
        .exec(&["nft", "add", "chain", "inet", "wren", "stray"])
        .unwrap();
    assert_eq!(sync(&netns, &second).unwrap(), Change::Rebuilt);
    let rebuilt = table(&netns).unwrap();
    assert!(!rebuilt.contains("stray"), "{rebuilt}");
    assert_eq!(sync(&netns, &second).unwrap(), Change::None);

    // A VXLAN pool on port 8472: IPv4's UDP masquerade leaves out 8472 instead.
    let mut vxlan = second.clone();
    vxlan.pools[0].vxlan_mode = dataplane::snapshot::VxlanMode::Always;
    vxlan.pools[0].vxlan_port = 8472;
    assert_eq!(sync(&netns, &vxlan).unwrap(), Change::Rebuilt);
    let ported = table(&netns).unwrap();
    let masquerades: Vec<&str> = ported
        .lines()
        .filter(|line| line.contains("masquerade to"))
        .collect();
    assert_eq!(masquerades.len(), 2, "{ported}");
    assert!(
        masquerades[0].contains("ip saddr") && masquerades[0].contains(":8473-65535"),
        "{ported}"
    );
    assert!(
        masquerades[1].contains("ip6 saddr") && masquerades[1].contains(":4790-65535"),
        "{ported}"
    );
    assert_eq!(sync(&netns, &vxlan).unwrap(), Change::None);

    // No pool needs it any more: removed.
    assert_eq!(sync(&netns, &plain).unwrap(), Change::Removed);
    assert_eq!(table(&netns), None);
    assert_eq!(sync(&netns, &plain).unwrap(), Change::None);

    assert_eq!(
        lab::netfilter::others_state(&netns).unwrap(),
        iptables,
        "iptables-nft's rules changed"
    );
}

/// nftables refusing the table for real: another process holds `inet wren` as its
/// own (`flags owner`, kept by a running `nft -i`), so every change of it is refused
/// ("Operation not permitted"). The sync is one error line naming the table, and
/// changes nothing; once the holder is gone the next sync makes the table.
#[test]
fn a_refused_table_is_one_error_line_and_the_next_sync_makes_it() {
    let Some(_ready) = lab::require!(Root, Nft) else {
        return;
    };
    let netns = Netns::new("wd-nat-owner").unwrap();
    let mut holder = netns
        .command("nft")
        .arg("-i")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = holder.stdin.as_mut().unwrap();
        stdin
            .write_all(b"add table inet wren { flags owner; }\n")
            .unwrap();
        stdin.flush().unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while table(&netns).is_none_or(|t| !t.contains("owner")) {
        assert!(std::time::Instant::now() < deadline, "the owner's table");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let snapshot = snapshot(&[("10.244.0.0/16", true)], &["192.0.2.1"]);
    let error = sync(&netns, &snapshot).unwrap_err().to_string();
    // nft 1.0.6 cannot even print such a table as JSON (it stops at its flags), so
    // the sync stops at reading it; any refusal is one line naming the table.
    assert!(
        error.starts_with("dataplane: nftables: ") && error.contains("inet wren"),
        "{error}"
    );
    println!("{error}");
    assert!(!error.contains('\n'), "{error}");
    let held = table(&netns).unwrap();
    assert!(!held.contains("masquerade"), "{held}");

    // The holder exits (its table goes with it): the next sync makes the table.
    drop(holder.stdin.take());
    holder.wait().unwrap();
    assert_eq!(sync(&netns, &snapshot).unwrap(), Change::Created);
    assert!(table(&netns).unwrap().contains("masquerade"));
}
