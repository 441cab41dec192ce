//! bgpctl's side of the control socket: one request, one answer, and errors that
//! say in one line what is wrong (daemon not running, permission denied, the
//! daemon's own refusal).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{Request, Response};

/// Where bgpctl finds the socket when not told: `WREN_CONTROL_SOCKET`, else this.
pub const DEFAULT_SOCKET: &str = "/run/wren/bgpd.sock";
/// The environment variable naming the socket.
pub const SOCKET_ENV: &str = "WREN_CONTROL_SOCKET";
/// Longest bgpctl waits for an answer (a full table of a million routes included).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bgpd is not running: no control socket at {0}")]
    NotRunning(PathBuf),
    #[error("bgpd is not running: nothing listens on {0}")]
    Refused(PathBuf),
    #[error("permission denied on {0}: run as root or as a member of the socket's group")]
    PermissionDenied(PathBuf),
    #[error("control socket {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("{0}")]
    Daemon(String),
    #[error("bgpd sent an answer bgpctl cannot read: {0}")]
    BadAnswer(String),
}

/// The socket path: `explicit`, else `WREN_CONTROL_SOCKET`, else the default.
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(SOCKET_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// Sends `request` and returns the answer's value.
pub fn request(path: &Path, request: &Request) -> Result<serde_json::Value, ClientError> {
    let io_error = |error: io::Error| ClientError::Io {
        path: path.to_path_buf(),
        error,
    };
    let stream = UnixStream::connect(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => ClientError::NotRunning(path.to_path_buf()),
        io::ErrorKind::ConnectionRefused => ClientError::Refused(path.to_path_buf()),
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(path.to_path_buf()),
        _ => io_error(error),
    })?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(io_error)?;
    let mut line =
        serde_json::to_string(request).map_err(|e| ClientError::BadAnswer(e.to_string()))?;
    line.push('\n');
    (&stream).write_all(line.as_bytes()).map_err(io_error)?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(io_error)?;
    if answer.is_empty() {
        return Err(ClientError::BadAnswer(
            "the connection closed without an answer".into(),
        ));
    }
    match serde_json::from_str::<Response>(&answer) {
        Ok(Response::Ok(value)) => Ok(value),
        Ok(Response::Error(message)) => Err(ClientError::Daemon(message)),
        Err(error) => Err(ClientError::BadAnswer(error.to_string())),
    }
}
