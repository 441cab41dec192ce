//! Two peers over loopback, one accepting and one connecting: the OPEN exchange,
//! UPDATEs decoded into the advertised routes, a NOTIFICATION and the close, a
//! refused OPEN, and a paused reader whose window closes. No root needed.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bgp_proto::Notification;
use ipnet::IpNet;
use peer::wire::{self, Attributes};
use peer::{ConnectOptions, Handshake, Listener, Peer};

const TIMEOUT: Duration = Duration::from_secs(30);

fn pair() -> (Peer, Peer) {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = listener.local_addr().unwrap();
    let accepting = std::thread::spawn(move || listener.accept(TIMEOUT).unwrap());
    let connecting = Peer::connect(&ConnectOptions::new(address)).unwrap();
    (connecting, accepting.join().unwrap())
}

fn open(asn: u32, id: &str) -> Vec<u8> {
    wire::open(asn, 9, id.parse().unwrap(), &[(1, 1), (2, 1)], false, &[])
}

#[test]
fn sessions_establish_and_exchange_routes_and_notifications() {
    let (a, b) = pair();
    let b_side = std::thread::spawn(move || {
        let handshake = b.establish(&open(65002, "10.0.0.2"), TIMEOUT).unwrap();
        (b, handshake)
    });
    let handshake = a
        .establish(&open(4_200_000_001, "10.0.0.1"), TIMEOUT)
        .unwrap();
    let (b, b_handshake) = b_side.join().unwrap();
    let Handshake::Established(seen_by_a) = handshake else {
        panic!("{handshake:?}")
    };
    assert_eq!(seen_by_a.asn(), 65002);
    let Handshake::Established(seen_by_b) = b_handshake else {
        panic!()
    };
    assert_eq!(seen_by_b.asn(), 4_200_000_001);
    assert!(a.context().four_octet_as && !a.context().ibgp);

    let v4: IpNet = "10.1.0.0/24".parse().unwrap();
    let v6: IpNet = "2001:db8:1::/48".parse().unwrap();
    let attributes = Attributes::from_as(4_200_000_001);
    a.send(&wire::announce_v4(
        &["10.1.0.0/24".parse().unwrap()],
        &attributes,
        "192.0.2.1".parse().unwrap(),
    ))
    .unwrap();
    a.send(&wire::announce_v6(
        &["2001:db8:1::/48".parse().unwrap()],
        &attributes,
        "2001:db8::1".parse().unwrap(),
        None,
    ))
    .unwrap();
    b.wait_for(TIMEOUT, "both routes", |seen| {
        if seen.routes.contains_key(&v4) && seen.routes.contains_key(&v6) {
            Ok(())
        } else {
            Err(format!("{:?}", seen.routes.keys()))
        }
    })
    .unwrap();
    let route = &b.observed().routes[&v6];
    assert_eq!(route.next_hop, Some("2001:db8::1".parse().unwrap()));
    a.send(&wire::withdraw(&[v4, v6])).unwrap();
    b.wait_for(TIMEOUT, "withdrawn", |seen| {
        if seen.routes.is_empty() {
            Ok(())
        } else {
            Err(format!("{:?}", seen.routes.keys()))
        }
    })
    .unwrap();

    a.notify_and_close(6, 2, b"\x03bye");
    let notification = b.wait_closed(TIMEOUT).unwrap();
    assert_eq!(
        notification,
        Some(Notification::new(6, 2, b"\x03bye".to_vec()))
    );
    assert!(b.observed().undecodable.is_empty());
}

#[test]
fn a_refused_open_reports_the_notification() {
    let (a, b) = pair();
    let b_side = std::thread::spawn(move || {
        // b sends its OPEN, then refuses a's: Bad Peer AS.
        b.send(&open(65002, "10.0.0.2")).unwrap();
        b.wait_for(TIMEOUT, "a's OPEN", |seen| {
            seen.daemon_open.clone().ok_or_else(String::new)
        })
        .unwrap();
        b.notify_and_close(2, 2, &[0xfd, 0xe9]);
    });
    let handshake = a.establish(&open(65001, "10.0.0.1"), TIMEOUT).unwrap();
    b_side.join().unwrap();
    let Handshake::Refused { notification, .. } = handshake else {
        panic!("{handshake:?}")
    };
    assert_eq!(
        notification,
        Some(Notification::new(2, 2, vec![0xfd, 0xe9]))
    );
}

#[test]
fn a_paused_reader_stops_taking_bytes_and_resumes() {
    let (a, b) = pair();
    b.pause_reading();
    // Far more than the socket buffers of both ends hold: the writer blocks until
    // the reader resumes.
    let chunk = wire::keepalive().repeat(4096);
    let writer = std::thread::spawn(move || {
        for _ in 0..200 {
            a.send(&chunk).unwrap_or_else(|e| panic!("{e}"));
        }
        a
    });
    // While paused, nothing is read: the count stays at zero.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.observed().received_octets, 0);
    b.resume_reading();
    let a = writer.join().unwrap();
    let expected = (wire::keepalive().len() * 4096 * 200) as u64;
    b.wait_for(TIMEOUT, "every octet", |seen| {
        if seen.keepalives * 19 == expected {
            Ok(())
        } else {
            Err(format!("{} keepalives", seen.keepalives))
        }
    })
    .unwrap();
    drop(a);
}
