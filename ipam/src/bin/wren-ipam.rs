//! `wren-ipam`: the CNI IPAM plugin. Reads the `CNI_*` environment and the network
//! configuration on stdin, talks to the datastore the configuration names, and prints
//! a CNI result (exit 0) or a CNI error object (exit 1) on stdout.

use std::io::{Read, Write};
use std::process::ExitCode;

use ipam::cni::{self, CniEnv, CniError};

fn main() -> ExitCode {
    let outcome = invoke();
    let (text, status) = match outcome {
        Ok(text) => (text, ExitCode::SUCCESS),
        Err(error) => (error.to_json(), ExitCode::FAILURE),
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

fn invoke() -> Result<String, CniError> {
    let env = CniEnv::from_process()?;
    let mut stdin = Vec::new();
    if env.command != cni::Command::Version || !std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        std::io::stdin()
            .take(1 << 20)
            .read_to_end(&mut stdin)
            .map_err(|e| {
                CniError::new(
                    "1.0.0",
                    cni::code::DECODE_FAILED,
                    format!("reading stdin: {e}"),
                )
            })?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CniError::new(
                "1.0.0",
                cni::code::TRY_AGAIN_LATER,
                format!("starting the runtime: {e}"),
            )
        })?;
    runtime.block_on(cni::run(&env, &stdin))
}
