//! BIRD 2 as a peer inside a namespace: `bird -f -c DIR/bird.conf -s DIR/bird.ctl -P
//! DIR/bird.pid` (in the foreground, so the [`Daemon`] guard owns it), queried with
//! `birdc -s DIR/bird.ctl`. BIRD has no JSON output; the helpers parse `show protocols` and
//! `show route` text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::wait::TIMEOUT;

/// A running BIRD. Dropping it stops BIRD.
#[derive(Debug)]
pub struct Bird {
    netns: String,
    dir: PathBuf,
    daemon: Daemon,
}

/// One line of `show protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub proto: String,
    pub table: String,
    pub state: String,
    /// The Info column, for BGP the session state (`Established`, `Active`, ...).
    pub info: String,
}

impl Bird {
    /// Starts BIRD in `netns` with `config` (the text of a bird.conf) and waits until
    /// birdc reaches it.
    pub fn start(netns: &Netns, config: &str) -> Result<Bird> {
        let dir = netns.dir().join("bird");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let config_path = dir.join("bird.conf");
        std::fs::write(&config_path, config)
            .map_err(|e| Error::io(format!("writing {}", config_path.display()), e))?;
        let mut command = netns.command("bird");
        command
            .arg("-f")
            .arg("-c")
            .arg(&config_path)
            .arg("-s")
            .arg(dir.join("bird.ctl"))
            .arg("-P")
            .arg(dir.join("bird.pid"));
        let daemon = netns.spawn_command("bird", command)?;
        let bird = Bird {
            netns: netns.name().to_owned(),
            dir,
            daemon,
        };
        bird.daemon
            .wait_for(TIMEOUT, "birdc to reach BIRD", || bird.birdc("show status"))?;
        Ok(bird)
    }

    /// The directory with bird.conf, the control socket and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process guard.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Runs a birdc command (`show route`, `configure`, `disable peer1`) and returns its
    /// output without the `BIRD x.y ready.` banner.
    pub fn birdc(&self, command: &str) -> Result<String> {
        let mut birdc = std::process::Command::new("ip");
        birdc
            .args(["netns", "exec", &self.netns, "birdc", "-s"])
            .arg(self.dir.join("bird.ctl"))
            .args(command.split_whitespace());
        let output = crate::command::run(&mut birdc)?;
        let body: Vec<&str> = output
            .lines()
            .skip_while(|l| l.starts_with("BIRD "))
            .collect();
        if let Some(error) = body
            .iter()
            .find(|l| l.starts_with("syntax error") || l.starts_with("Unknown"))
        {
            return Err(Error::invalid(
                format!("birdc {command} in {}", self.netns),
                *error,
            ));
        }
        Ok(body.join("\n"))
    }

    /// `show protocols`, parsed.
    pub fn protocols(&self) -> Result<Vec<Protocol>> {
        Ok(parse_protocols(&self.birdc("show protocols")?))
    }

    /// Waits until each named BGP protocol is Established.
    pub fn wait_established(&self, timeout: Duration, protocols: &[&str]) -> Result<()> {
        self.daemon.wait_for(
            timeout,
            &format!("BIRD protocols {protocols:?} Established"),
            || {
                let all = self.protocols().map_err(|e| e.to_string())?;
                for name in protocols {
                    match all.iter().find(|p| p.name == *name) {
                        Some(p) if p.info.starts_with("Established") => {}
                        Some(p) => return Err(format!("{name}: {} {}", p.state, p.info)),
                        None => return Err(format!("{name}: no such protocol")),
                    }
                }
                Ok(())
            },
        )
    }

    /// The prefixes of `show route` (every table, or `table NAME` when given).
    pub fn routes(&self, table: Option<&str>) -> Result<Vec<String>> {
        let command = match table {
            Some(table) => format!("show route table {table}"),
            None => "show route".to_owned(),
        };
        Ok(parse_route_prefixes(&self.birdc(&command)?))
    }

    /// Waits until `show route` has `prefix`.
    pub fn wait_route(&self, timeout: Duration, prefix: &str) -> Result<()> {
        self.daemon
            .wait_for(timeout, &format!("BIRD to learn {prefix}"), || {
                let routes = self.routes(None).map_err(|e| e.to_string())?;
                if routes.iter().any(|r| r == prefix) {
                    Ok(())
                } else {
                    Err(format!("routes: {routes:?}"))
                }
            })
    }
}

/// Parses `show protocols` (banner already removed).
pub fn parse_protocols(text: &str) -> Vec<Protocol> {
    text.lines()
        .filter(|line| !line.starts_with("Name ") && !line.trim().is_empty())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?.to_owned();
            let proto = fields.next()?.to_owned();
            let table = fields.next()?.to_owned();
            let state = fields.next()?.to_owned();
            let _since = fields.next();
            let info = fields.collect::<Vec<_>>().join(" ");
            Some(Protocol {
                name,
                proto,
                table,
                state,
                info,
            })
        })
        .collect()
}

/// The prefixes in `show route` output: lines that start with a network.
pub fn parse_route_prefixes(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.starts_with(char::is_whitespace))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|first| {
            first.contains('/')
                && first
                    .split('/')
                    .next()
                    .is_some_and(|a| a.parse::<std::net::IpAddr>().is_ok())
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from BIRD 2.0.12 (Debian 12).
    const PROTOCOLS: &str = "\
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     07:01:02.345
static1    Static     master4    up     07:01:02.345
frr        BGP        ---        start  07:01:02.345  Active        Socket: Connection refused
gobgp      BGP        ---        up     07:01:05.123  Established   ";

    const ROUTES: &str = "\
Table master4:
10.60.0.0/24         unicast [frr 07:01:05.123] * (100) [AS65001i]
\tvia 10.0.0.1 on eth1
10.61.0.0/24         blackhole [static1 07:01:02.345] * (200)

Table master6:
fd00:60::/64         unicast [frr 07:01:05.123] * (100) [AS65001i]
\tvia fd00::1 on eth1";

    #[test]
    fn protocols_are_parsed() {
        let protocols = parse_protocols(PROTOCOLS);
        assert_eq!(protocols.len(), 4);
        assert_eq!(protocols[2].name, "frr");
        assert_eq!(protocols[2].state, "start");
        assert!(protocols[2].info.starts_with("Active"));
        assert_eq!(protocols[3].info, "Established");
    }

    #[test]
    fn route_prefixes_are_parsed() {
        assert_eq!(
            parse_route_prefixes(ROUTES),
            ["10.60.0.0/24", "10.61.0.0/24", "fd00:60::/64"]
        );
    }
}
