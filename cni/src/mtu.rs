//! The pod MTU. bgpd writes it (decimal text and a newline, replaced atomically) to
//! `/var/lib/wren/mtu`, as Calico's node writes `/var/lib/calico/mtu`. The network
//! configuration's `"mtu"` wins; otherwise `"mtu_file"` (default [`DEFAULT_MTU_FILE`]) is
//! read. A file that is absent fails ADD with "try again later" (bgpd has not written
//! it yet: the pod would otherwise get a guessed MTU); one that is malformed fails it as
//! invalid configuration. Either way one line names the file and what is wrong.

use std::path::Path;

use crate::config::PluginConf;
use crate::error::{Error, Result};

/// Where bgpd writes the pod MTU by default.
pub const DEFAULT_MTU_FILE: &str = "/var/lib/wren/mtu";
/// IPv4's minimum (RFC 791) ...
pub const MIN_MTU: u32 = 68;
/// ... and IPv6's (RFC 8200), required when the pod has an IPv6 address.
pub const MIN_MTU_IPV6: u32 = 1280;
/// The largest MTU a veth takes.
pub const MAX_MTU: u32 = 65535;
/// The longest file accepted (a number and a newline).
const MAX_FILE_LEN: u64 = 32;

/// The pod MTU for `conf`.
pub fn resolve(conf: &PluginConf) -> Result<u32> {
    if let Some(mtu) = conf.mtu {
        return check_range(mtu).map_err(|reason| Error::Config(format!("\"mtu\" {reason}")));
    }
    let path = conf
        .mtu_file
        .as_deref()
        .unwrap_or(Path::new(DEFAULT_MTU_FILE));
    read_file(path)
}

/// Reads an MTU file.
pub fn read_file(path: &Path) -> Result<u32> {
    let text = match std::fs::File::open(path) {
        Ok(file) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_FILE_LEN), &mut text)
                .map_err(|e| Error::MtuMalformed(format!("{}: {e}", path.display())))?;
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MtuUnknown(format!(
                "{} does not exist (bgpd writes it when it starts; or set \"mtu\" in the network configuration)",
                path.display()
            )));
        }
        Err(e) => {
            return Err(Error::MtuUnknown(format!("{}: {e}", path.display())));
        }
    };
    let number = text.strip_suffix('\n').unwrap_or(&text);
    let mtu: u32 = number.parse().map_err(|_| {
        Error::MtuMalformed(format!(
            "{} holds {text:?}, not a decimal MTU and a newline",
            path.display()
        ))
    })?;
    check_range(mtu).map_err(|reason| Error::MtuMalformed(format!("{} {reason}", path.display())))
}

fn check_range(mtu: u32) -> Result<u32, String> {
    if (MIN_MTU..=MAX_MTU).contains(&mtu) {
        Ok(mtu)
    } else {
        Err(format!("{mtu} is outside {MIN_MTU}..={MAX_MTU}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str) -> Result<u32> {
        let dir = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
        let path = dir.path().join("mtu");
        std::fs::write(&path, text).map_err(|e| Error::Config(e.to_string()))?;
        resolve(&PluginConf {
            mtu: None,
            mtu_file: Some(path),
        })
    }

    #[test]
    fn the_file_is_read_and_the_config_wins() {
        assert_eq!(with_file("1450\n").ok(), Some(1450));
        assert_eq!(with_file("1450").ok(), Some(1450));
        let explicit = PluginConf {
            mtu: Some(9000),
            mtu_file: Some("/nonexistent/mtu".into()),
        };
        assert_eq!(resolve(&explicit).ok(), Some(9000));
    }

    #[test]
    fn absent_and_malformed_files_are_errors_naming_the_file() {
        let absent = resolve(&PluginConf {
            mtu: None,
            mtu_file: Some("/nonexistent/wren/mtu".into()),
        });
        assert!(
            matches!(&absent, Err(Error::MtuUnknown(m)) if m.starts_with("/nonexistent/wren/mtu does not exist")),
            "{absent:?}"
        );
        for bad in [
            "",
            "1450 \n",
            "fourteen\n",
            "0\n",
            "70000\n",
            "-1\n",
            "1450\n\n",
        ] {
            let outcome = with_file(bad);
            assert!(
                matches!(outcome, Err(Error::MtuMalformed(_))),
                "{bad:?}: {outcome:?}"
            );
        }
        let config = resolve(&PluginConf {
            mtu: Some(20),
            mtu_file: None,
        });
        assert!(matches!(config, Err(Error::Config(m)) if m == "\"mtu\" 20 is outside 68..=65535"));
    }
}
