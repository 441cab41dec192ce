//! bgpd and its limit of open files (issue 18): started with a soft `RLIMIT_NOFILE`
//! of 64, as a service or container may start it with too few, bgpd raises the soft
//! limit to the hard one and accepts 200 sessions from a listen range; when the hard
//! limit is 64 too, one line at start names the limit and the sessions the
//! configuration allows. The limits are set with util-linux's `prlimit`, which then
//! runs bgpd. Needs root (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use peer::probe::poll;
use peer::{Handshake, Peer, wire};
use wren_tests::peer_bench::{Bench, TIMEOUT, config, listen_range};

const SESSIONS: usize = 200;

/// `Max open files` of `pid`: (soft, hard), from /proc.
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no 'Max open files' in /proc/{pid}/limits:\n{limits}"));
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().unwrap().to_owned(),
        fields.next().unwrap().to_owned(),
    )
}

/// Room in this test process for the peers' sockets (each peer: a socket and its
/// own runtime's descriptors): its soft limit raised to its hard limit, which it
/// returns (root may lack CAP_SYS_RESOURCE in a container, so the hard limit stays).
fn room_for_peers() -> String {
    let (_, hard) = open_files_limit(std::process::id());
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={hard}:{hard}"),
        ])
        .status()
        .unwrap();
    assert!(status.success(), "prlimit on the test process: {status}");
    hard
}

#[test]
fn a_soft_limit_of_64_is_raised_and_200_sessions_are_accepted() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let hard = room_for_peers();
    assert!(
        hard == "unlimited" || hard.parse::<u64>().unwrap() > 1024,
        "the hard limit of open files here is {hard}: too few for this test"
    );
    let limit = format!("--nofile=64:{hard}");
    let bench = Bench::start_wrapped("wof", &["prlimit", &limit, "--"], |socket| {
        config(
            socket,
            false,
            &listen_range(7, 65001, "max_neighbors = 250"),
        )
    });
    assert_eq!(
        open_files_limit(bench.bgpd.pid()),
        (hard.clone(), hard.clone()),
        "bgpd's limit after its start"
    );
    let log = bench.bgpd.log();
    assert!(
        log.contains("soft limit (RLIMIT_NOFILE) raised from 64 to the hard limit"),
        "{log}"
    );
    assert!(!log.contains("open files: the limit"), "{log}");

    let mut peers: Vec<Peer> = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        let source = bench.fresh_address(7);
        let peer = bench.connect(source);
        let open = wire::open(65001, 90, source, &[(1, 1)], false, &[]);
        match peer.establish(&open, TIMEOUT).unwrap() {
            Handshake::Established(_) => peers.push(peer),
            refused => panic!(
                "session {} from {source} refused: {refused:?}; bgpd's log:\n{}",
                peers.len() + 1,
                bench.bgpd.log_tail(30)
            ),
        }
    }
    poll(TIMEOUT, "200 sessions Established in bgpctl", || {
        let neighbors = bench.observer.neighbors()?;
        let established = neighbors
            .iter()
            .filter(|n| n["state"] == "Established")
            .count();
        Ok(if established == SESSIONS {
            Ok(())
        } else {
            Err(format!("{established} of {SESSIONS} Established"))
        })
    })
    .unwrap();
    bench.assert_alive();
    // bgpd holds a socket per session: more than the 64 it started with.
    let open = std::fs::read_dir(format!("/proc/{}/fd", bench.bgpd.pid()))
        .unwrap()
        .count();
    assert!(open > SESSIONS, "bgpd has {open} files open");
    for peer in peers {
        peer.close();
    }
}

#[test]
fn a_hard_limit_too_small_for_the_configuration_is_named() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let bench = Bench::start_wrapped("wog", &["prlimit", "--nofile=64:64", "--"], |socket| {
        config(
            socket,
            false,
            &listen_range(7, 65001, "max_neighbors = 200"),
        )
    });
    let wanted = "open files: the limit (RLIMIT_NOFILE) is 64, but the configuration allows 200 BGP sessions";
    let log = poll(
        Duration::from_secs(10),
        "the open files line in bgpd's log",
        || {
            let log = bench.bgpd.log();
            Ok(if log.contains(wanted) {
                Ok(log)
            } else {
                Err(log)
            })
        },
    )
    .unwrap();
    let lines = log
        .lines()
        .filter(|line| line.contains("open files:"))
        .count();
    assert_eq!(lines, 1, "one line about open files:\n{log}");
    // The soft limit was already the hard one: nothing raised, and bgpd runs.
    assert!(!log.contains("raised from"), "{log}");
    assert_eq!(
        open_files_limit(bench.bgpd.pid()),
        ("64".to_owned(), "64".to_owned())
    );
    bench.assert_alive();
    assert!(bench.observer.neighbors().unwrap().is_empty());
}
