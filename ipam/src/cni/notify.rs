//! Telling bgpd that IPAM changed, so it advertises a new block or a borrowed address
//! at once instead of when its datastore watch or poll notices.
//!
//! Best effort by contract: the plugin's result never depends on it. A bgpd that is
//! down, slow, or refusing is ignored (bgpd's watch and periodic resynchronisation
//! catch up). The message is one line of bgpd's control protocol (`control-proto`),
//! `{"command":"ipam-changed"}`; the answer is read for at most [`ANSWER_TIMEOUT`].

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use control_proto::{Answer, Request, Response};

/// bgpd's control socket when the network configuration names none.
pub const DEFAULT_CONTROL_SOCKET: &str = control_proto::DEFAULT_SOCKET;
/// Longest the plugin waits for bgpd's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_millis(300);

/// Sends the notification to the control socket at `path`; true when bgpd answered
/// with success. Never fails the caller.
pub fn ipam_changed(path: &Path) -> bool {
    let Ok(stream) = UnixStream::connect(path) else {
        return false;
    };
    if stream.set_read_timeout(Some(ANSWER_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(ANSWER_TIMEOUT)).is_err()
        || (&stream).write_all(request_line().as_bytes()).is_err()
    {
        return false;
    }
    let mut answer = String::new();
    BufReader::new(Read::take(&stream, 4096))
        .read_line(&mut answer)
        .is_ok_and(|_| {
            serde_json::from_str::<Response>(&answer)
                .is_ok_and(|response| response == Response::Ok(Answer::Notified))
        })
}

/// The request line.
fn request_line() -> String {
    // A unit variant always encodes.
    let mut line = serde_json::to_string(&Request::IpamChanged).unwrap_or_default();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn nobody_listening_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(!ipam_changed(&dir.path().join("absent.sock")));
    }

    #[test]
    fn the_request_line_reaches_the_socket() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("bgpd.sock");
        let listener = UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap_or_else(|e| panic!("{e}"));
            let mut line = String::new();
            BufReader::new(&stream)
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("{e}"));
            (&stream)
                .write_all(b"{\"ok\":\"notified\"}\n")
                .unwrap_or_else(|e| panic!("{e}"));
            line
        });
        assert!(ipam_changed(&path));
        assert_eq!(
            server.join().unwrap_or_default(),
            "{\"command\":\"ipam-changed\"}\n"
        );
    }

    #[test]
    fn a_silent_server_costs_at_most_the_timeout() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("bgpd.sock");
        let _listener = UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        // Connected (backlog) but never answered.
        assert!(!ipam_changed(&path));
    }
}
