//! Running external commands (ip, tc, vtysh, birdc, gobgp, etcdctl) and turning failures
//! into errors that show the command line and its stderr.

use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};

/// Runs `command` to completion; returns its stdout, or an error carrying the command line,
/// exit status and stderr when it fails.
pub fn run(command: &mut Command) -> Result<String> {
    let output = output(command)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(failed(command, &output))
    }
}

/// Runs `command` with `input` on its stdin; returns stdout like [`run`].
pub fn run_input(command: &mut Command, input: &[u8]) -> Result<String> {
    let output = output_with_input(command, input)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(failed(command, &output))
    }
}

/// Runs `command` with `input` on its stdin to completion and returns its raw output
/// whatever the exit status. The input is written from a thread, so a large one never
/// waits for the child's output; a child that exits without reading it is judged by
/// its exit status.
pub fn output_with_input(command: &mut Command, input: &[u8]) -> Result<Output> {
    use std::io::Write;
    let line = display(command);
    let what = || format!("running `{line}`");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(what(), e))?;
    let writer = child.stdin.take().map(|mut stdin| {
        let input = input.to_owned();
        std::thread::spawn(move || stdin.write_all(&input))
    });
    let output = child.wait_with_output().map_err(|e| Error::io(what(), e))?;
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Ok(output)
}

/// Runs `command` and parses its stdout as JSON.
pub fn run_json(command: &mut Command) -> Result<serde_json::Value> {
    let stdout = run(command)?;
    parse_json(&display(command), &stdout)
}

/// Runs `command` to completion and returns its raw output whatever the exit status.
pub fn output(command: &mut Command) -> Result<Output> {
    command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::io(format!("running `{}`", display(command)), source))
}

/// Parses `text` (the output of `what`) as JSON.
pub fn parse_json(what: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|error| {
        let excerpt: String = text.chars().take(300).collect();
        Error::invalid(
            format!("JSON from `{what}`"),
            format!("{error}; output began: {excerpt:?}"),
        )
    })
}

/// The command line of `command`, for messages.
pub fn display(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

fn failed(command: &Command, output: &Output) -> Error {
    let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if stderr.is_empty() {
        stderr = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    Error::Command {
        command: display(command),
        status: output.status.to_string(),
        stderr,
    }
}
