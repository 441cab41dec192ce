//! Writing answers on stdout and failures on stderr, never with `println!` (which
//! panics when stdout is gone or full).

use std::io::Write as _;
use std::process::ExitCode;

/// Why writing an answer stopped.
#[derive(Debug)]
pub enum WriteStop {
    /// The reader went away (`bgpctl show routes | head`): end quietly with 0.
    ReaderGone,
    /// Another error (a full disk): one line and status 1.
    Failed(std::io::Error),
}

/// Writes `text` on stdout and flushes.
pub fn write_out(out: &mut impl std::io::Write, text: &str) -> Result<(), WriteStop> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::BrokenPipe => WriteStop::ReaderGone,
            _ => WriteStop::Failed(error),
        })
}

/// What a stopped write means for the exit status.
pub fn stopped(stop: WriteStop) -> ExitCode {
    match stop {
        WriteStop::ReaderGone => ExitCode::SUCCESS,
        WriteStop::Failed(error) => fail(&format!("cannot write the answer: {error}")),
    }
}

/// Prints a whole answer on stdout. A reader that went away ends bgpctl quietly;
/// another write error is one line on stderr and exit status 1.
pub fn print_answer(text: &str) -> ExitCode {
    match write_out(&mut std::io::stdout().lock(), text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(stop) => stopped(stop),
    }
}

/// One line on stderr (never a panic if stderr is gone) and exit status 1.
pub fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "bgpctl: {message}");
    ExitCode::FAILURE
}

/// Indented JSON.
pub fn pretty<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|error| format!("cannot encode JSON: {error}"))
}

/// The message for an answer of another kind than the request asked for.
pub fn unexpected(answer: &control_proto::Answer) -> String {
    format!("bgpd sent an answer of another kind than asked for: {answer:?}")
}
