//! Running `nft`: listing `inet wren` and applying a plan as one transaction
//! (`nft -j -f -`). The nftables crate gives the JSON its types; the process is run
//! here, so that nft's error text comes back (its helpers leave stderr to the
//! parent) and a hung nft is given up after [`NFT_TIMEOUT`].

use std::process::Stdio;
use std::time::Duration;

use nftables::schema::{NfListObject, NfObject, Nftables};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::TABLE;
use super::plan::{Desired, Listed, Plan, plan};
use crate::error::Error;

/// The nft program (looked up in PATH).
pub const NFT: &str = "nft";
/// Longest one nft run may take.
pub const NFT_TIMEOUT: Duration = Duration::from_secs(30);

/// The table `inet wren` as it is; `None` when there is none.
pub async fn list() -> Result<Option<Listed>, Error> {
    let tables = parse(
        &run(
            "listing the nftables tables",
            &["-j", "list", "tables", "inet"],
            None,
        )
        .await?,
    )?;
    let present = tables.objects.iter().any(|object| {
        matches!(object, NfObject::ListObject(NfListObject::Table(table)) if table.name == TABLE)
    });
    if !present {
        return Ok(None);
    }
    let text = run(
        "listing the table inet wren",
        &["-j", "list", "table", "inet", TABLE],
        None,
    )
    .await?;
    Listed::from_json(&text)
        .map(Some)
        .map_err(|message| Error::Nft {
            action: "reading the table inet wren as nft lists it",
            message: if serde_json::from_str::<serde_json::Value>(&text).is_err() {
                format!(
                    "{message} (nft printed no whole JSON of it: a table another program made, such as one with flags owner, shows so; see nft list table inet wren)"
                )
            } else {
                message
            },
        })
}

/// Makes the table equal to `desired` (`None`: no table): lists it, plans, and
/// applies the plan as one transaction when it has commands. Returns the plan.
/// Without nft installed there is no table to remove: no table wanted is then no
/// error.
pub async fn sync(desired: Option<&Desired>) -> Result<Plan, Error> {
    let listed = match list().await {
        Err(Error::NftNotFound { .. }) if desired.is_none() => None,
        listed => listed?,
    };
    let plan = plan(desired, listed.as_ref());
    apply(&plan).await?;
    Ok(plan)
}

/// Applies `plan`'s commands as one transaction (nothing when it has none).
pub async fn apply(plan: &Plan) -> Result<(), Error> {
    if plan.commands.is_empty() {
        return Ok(());
    }
    let document = Nftables {
        objects: plan
            .commands
            .iter()
            .cloned()
            .map(NfObject::CmdObject)
            .collect::<Vec<_>>()
            .into(),
    };
    let json = serde_json::to_string(&document).map_err(|error| Error::Nft {
        action: "encoding the table's commands",
        message: error.to_string(),
    })?;
    run(
        "changing the table inet wren",
        &["-j", "-f", "-"],
        Some(json),
    )
    .await?;
    Ok(())
}

fn parse(text: &str) -> Result<Nftables<'static>, Error> {
    serde_json::from_str(text).map_err(|error| Error::Nft {
        action: "reading nft's JSON",
        message: error.to_string(),
    })
}

/// Runs nft with `args` (and `input` on its stdin); its stdout, or its error text
/// in one line.
async fn run(action: &'static str, args: &[&str], input: Option<String>) -> Result<String, Error> {
    let mut command = Command::new(NFT);
    command
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => Error::NftNotFound { action },
        _ => Error::Nft {
            action,
            message: format!("cannot run {NFT}: {error}"),
        },
    })?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|error| Error::Nft {
                action,
                message: format!("writing to {NFT}: {error}"),
            })?;
    }
    let output = tokio::time::timeout(NFT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| Error::Nft {
            action,
            message: format!("{NFT} did not finish within {} s", NFT_TIMEOUT.as_secs()),
        })?
        .map_err(|error| Error::Nft {
            action,
            message: format!("waiting for {NFT}: {error}"),
        })?;
    if !output.status.success() {
        return Err(Error::Nft {
            action,
            message: one_line(&String::from_utf8_lossy(&output.stderr), output.status),
        });
    }
    String::from_utf8(output.stdout).map_err(|error| Error::Nft {
        action,
        message: format!("{NFT} printed something that is not UTF-8: {error}"),
    })
}

/// nft's error text in one line: its "Error:" lines (without the input it echoes
/// and the carets under it), else every line, else the exit status.
fn one_line(stderr: &str, status: std::process::ExitStatus) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| line.starts_with("Error:"))
        .collect();
    let chosen = if errors.is_empty() { lines } else { errors };
    if chosen.is_empty() {
        return format!("{NFT} exited with {status}");
    }
    let mut text = chosen.join("; ");
    if text.len() > 400 {
        let mut end = 400;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}
