//! Traffic between pods for the overlay tests: a TCP exchange, a ping of a given size
//! with Don't Fragment, and the VXLAN device's FDB as `bridge -j` shows it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use lab::Netns;
use serde_json::Value;

/// A TCP connection from `client` to `server`'s `address`:7070 carrying five bytes
/// there and back.
pub fn tcp(server: &Netns, address: &str, client: &Netns) -> bool {
    let target = SocketAddr::new(address.parse().unwrap(), 7070);
    let listener = server.enter(|| TcpListener::bind(target)).unwrap().unwrap();
    let accepted = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().ok()?;
        let mut line = [0; 5];
        stream.read_exact(&mut line).ok()?;
        stream.write_all(&line).ok()?;
        Some(())
    });
    let echoed = client
        .enter(|| {
            let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(3)).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
            stream.write_all(b"hello").ok()?;
            let mut back = [0; 5];
            stream.read_exact(&mut back).ok()?;
            Some(back == *b"hello")
        })
        .unwrap();
    echoed == Some(true) && accepted.join().unwrap().is_some()
}

/// `ping -M do -s SIZE` from `from` to `to`: whether it was answered, and what ping
/// said.
pub fn ping_size(from: &Netns, to: &str, size: u32) -> (bool, String) {
    let output = from
        .command("ping")
        .args([
            "-n",
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            &size.to_string(),
            to,
        ])
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// `bridge -j fdb show dev vxlan.wren` in `netns`.
pub fn vxlan_fdb(netns: &Netns) -> Value {
    let output = netns
        .command("bridge")
        .args(["-j", "fdb", "show", "dev", "vxlan.wren"])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap()
}
