//! `wren`: the CNI main plugin. Reads the `CNI_*` environment and the network
//! configuration on stdin, and prints a CNI result (exit 0) or a CNI error object
//! (exit 1) on stdout.

use std::io::{Read, Write};
use std::process::ExitCode;

use cni::Env;
use cni::error::{Error, code};
use rscni_types::types::Cmd;
use rscni_types::version::SpecVersion;

/// The largest configuration read from stdin.
const MAX_STDIN: u64 = 1 << 20;

fn main() -> ExitCode {
    let (text, status) = match invoke() {
        Ok(text) => (text, ExitCode::SUCCESS),
        Err((version, error)) => (cni::error_json(version, &error), ExitCode::FAILURE),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    status
}

fn invoke() -> Result<String, (SpecVersion, Error)> {
    let fallback = SpecVersion::new(1, 1, 0);
    let env = Env::from_process().map_err(|e| (fallback, e))?;
    let mut stdin = Vec::new();
    if env.command != Cmd::Version || !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        std::io::stdin()
            .take(MAX_STDIN)
            .read_to_end(&mut stdin)
            .map_err(|e| {
                (
                    fallback,
                    Error::Protocol {
                        code: code::IO_FAILURE,
                        message: format!("reading stdin: {e}"),
                    },
                )
            })?;
    }
    cni::run(&env, &stdin)
}
