//! Delegated IPAM (CNI specification, "Delegated plugins"): the plugin named by
//! `ipam.type` is found in `CNI_PATH` and run with this invocation's environment (the
//! verb set to the one asked) and the same network configuration on stdin. Every run
//! is bounded by a timeout; a plugin still running then is killed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rscni_types::types::CNIResult;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::config::{Config, Env};
use crate::error::{Error, Result, code};

/// Longest an IPAM ADD may take (a datastore compare-and-swap with retries).
pub const ADD_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest an IPAM DEL, CHECK, STATUS or GC may take.
pub const OTHER_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest answer read from the plugin.
const MAX_OUTPUT: usize = 1 << 20;

/// The IPAM plugin of `config`, found in `env`'s `CNI_PATH`.
pub fn find(env: &Env, config: &Config) -> Result<PathBuf> {
    let kind = config.ipam_type();
    if kind.is_empty() || kind.contains('/') {
        return Err(Error::Config(format!(
            "ipam type {kind:?} is not a plugin name"
        )));
    }
    env.path
        .iter()
        .map(|dir| dir.join(kind))
        .find(|path| path.is_file())
        .ok_or_else(|| Error::Ipam {
            plugin: kind.to_string(),
            code: code::INVALID_CONFIG,
            message: format!("not found in CNI_PATH {:?}", env.path),
        })
}

/// Runs the IPAM plugin for `verb` (ADD, DEL, CHECK, STATUS, GC) and returns its stdout
/// on success; its error object becomes [`Error::Ipam`] with its code.
pub async fn run(env: &Env, config: &Config, verb: &str) -> Result<String> {
    let kind = config.ipam_type().to_string();
    let plugin = find(env, config)?;
    let timeout = if verb == "ADD" {
        ADD_TIMEOUT
    } else {
        OTHER_TIMEOUT
    };
    let failed = |code: u32, message: String| Error::Ipam {
        plugin: kind.clone(),
        code,
        message,
    };
    let mut child = tokio::process::Command::new(&plugin)
        .env("CNI_COMMAND", verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            failed(
                code::IO_FAILURE,
                format!("starting {}: {e}", plugin.display()),
            )
        })?;
    let mut stdin = child.stdin.take();
    let raw = config.raw.clone();
    let outcome = tokio::time::timeout(timeout, async move {
        if let Some(stdin) = stdin.as_mut() {
            // A plugin that exits without reading is judged by its answer.
            let _ = stdin.write_all(&raw).await;
        }
        drop(stdin);
        child.wait_with_output().await
    })
    .await;
    let output = match outcome {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(failed(code::IO_FAILURE, format!("waiting for it: {e}"))),
        Err(_) => {
            return Err(failed(
                code::TRY_AGAIN_LATER,
                format!(
                    "{verb} did not answer within {} s (killed)",
                    timeout.as_secs()
                ),
            ));
        }
    };
    let stdout = &output.stdout[..output.stdout.len().min(MAX_OUTPUT)];
    let text = String::from_utf8_lossy(stdout).into_owned();
    if output.status.success() {
        return Ok(text);
    }
    match serde_json::from_str::<ErrorAnswer>(&text) {
        Ok(answer) => {
            let message = match answer.details.as_str() {
                "" => answer.msg,
                details => format!("{}; {details}", answer.msg),
            };
            Err(failed(answer.code, message))
        }
        Err(_) => Err(failed(
            code::IO_FAILURE,
            format!(
                "{verb} failed ({}) without an error object: {text:?}",
                output.status
            ),
        )),
    }
}

/// A delegated plugin's error object, read as it is: its `msg` is the plugin's own words
/// (`rscni_types`' error type puts a fixed text in their place for the spec's codes).
#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    code: u32,
    msg: String,
    #[serde(default)]
    details: String,
}

/// IPAM ADD, with its result parsed.
pub async fn add(env: &Env, config: &Config) -> Result<CNIResult> {
    let text = run(env, config, "ADD").await?;
    serde_json::from_str(&text).map_err(|e| Error::Ipam {
        plugin: config.ipam_type().to_string(),
        code: code::DECODE_FAILED,
        message: format!("ADD result is not a CNI result ({e}): {text:?}"),
    })
}
