//! bgpctl's side of the control socket: one request, then one answer line (or, for
//! `show routes` and `monitor`, a stream of lines read one at a time), with errors that say in one
//! line what is wrong (daemon not running, permission denied, the daemon's own
//! refusal).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use control_proto::{Answer, DEFAULT_SOCKET, Request, Response, SOCKET_ENV};

/// Longest bgpctl waits for one line of an answer.
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

/// Options every control command takes.
#[derive(Debug, Args)]
pub struct Connection {
    /// The control socket (default: $WREN_CONTROL_SOCKET, else /run/wren/bgpd.sock).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the answer as JSON (show commands; `show routes`: one object per line).
    #[arg(long, global = true)]
    pub json: bool,
}

/// Sends `request` to the socket the options name.
pub fn ask(connection: &Connection, request: &Request) -> Result<Answer, ClientError> {
    let path = socket_path(connection.socket.as_deref());
    self::request(&path, request)
}

/// The socket path: `explicit`, else `WREN_CONTROL_SOCKET`, else the default.
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(SOCKET_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// Sends `request` and returns the answer.
pub fn request(path: &Path, request: &Request) -> Result<Answer, ClientError> {
    let mut answers = Answers::send(path, request)?;
    match answers.next_line()? {
        Response::Ok(answer) => Ok(answer),
        Response::Error(message) => Err(ClientError::Daemon(message)),
        other => Err(ClientError::BadAnswer(format!(
            "a streamed line where one answer was due: {other:?}"
        ))),
    }
}

/// The lines of an answer, read as they arrive.
#[derive(Debug)]
pub struct Answers {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    line: String,
}

impl Answers {
    /// Connects and sends `request`.
    pub fn send(path: &Path, request: &Request) -> Result<Answers, ClientError> {
        let stream = UnixStream::connect(path).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => ClientError::NotRunning(path.to_path_buf()),
            io::ErrorKind::ConnectionRefused => ClientError::Refused(path.to_path_buf()),
            io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(path.to_path_buf()),
            _ => io_error(path, error),
        })?;
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|error| io_error(path, error))?;
        let mut line =
            serde_json::to_string(request).map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        line.push('\n');
        (&stream)
            .write_all(line.as_bytes())
            .map_err(|error| io_error(path, error))?;
        Ok(Answers {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            line: String::new(),
        })
    }

    /// The next line of the answer.
    pub fn next_line(&mut self) -> Result<Response, ClientError> {
        self.line.clear();
        self.reader
            .read_line(&mut self.line)
            .map_err(|error| io_error(&self.path, error))?;
        if self.line.is_empty() {
            return Err(ClientError::BadAnswer(
                "the connection closed before the answer ended".into(),
            ));
        }
        serde_json::from_str(&self.line).map_err(|error| ClientError::BadAnswer(error.to_string()))
    }
}

fn io_error(path: &Path, error: io::Error) -> ClientError {
    ClientError::Io {
        path: path.to_path_buf(),
        error,
    }
}

impl Answers {
    /// Waits for lines as long as it takes (a monitor may be quiet for hours).
    pub fn wait_forever(&mut self) -> Result<(), ClientError> {
        self.reader
            .get_ref()
            .set_read_timeout(None)
            .map_err(|error| io_error(&self.path, error))
    }

    /// True when more of the answer has already arrived (the next line is read
    /// without waiting).
    pub fn pending(&self) -> bool {
        !self.reader.buffer().is_empty()
    }
}
