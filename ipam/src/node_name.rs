//! The node's name, one rule for bgpd (`cluster::node`), `wren-install` and the CNI
//! plugin `wren-ipam`: `NODENAME` (the downward API's `spec.nodeName` in the
//! DaemonSet), else the host name, checked as Kubernetes checks a Node's name (an RFC 1123
//! subdomain: at most 253 characters of lowercase letters, digits, `-` and `.`, each
//! dot-separated label starting and ending with a letter or digit).

/// The node's name cannot be found or is not a Kubernetes name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node name from {origin}: {reason}")]
pub struct NodeNameError {
    /// Where the name came from: `NODENAME` or the host name file.
    pub origin: String,
    pub reason: String,
}

/// The environment variable the DaemonSet fills from `spec.nodeName`.
pub const NODENAME_ENV: &str = "NODENAME";

/// Where the kernel keeps the host name.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// The node's name: `NODENAME` when set and not empty, else the host name.
pub fn name() -> Result<String, NodeNameError> {
    let from_env = std::env::var(NODENAME_ENV).ok();
    resolve(from_env.as_deref(), host_name)
}

/// The host name, as the kernel has it.
pub fn host_name() -> Result<String, NodeNameError> {
    std::fs::read_to_string(HOSTNAME_FILE)
        .map(|text| text.trim().to_owned())
        .map_err(|error| NodeNameError {
            origin: HOSTNAME_FILE.to_owned(),
            reason: format!("cannot be read: {error}"),
        })
}

/// [`name`] with its inputs passed in: the value of `NODENAME`, and how to read the
/// host name (only called when `NODENAME` is unset or empty).
pub fn resolve(
    nodename: Option<&str>,
    host: impl FnOnce() -> Result<String, NodeNameError>,
) -> Result<String, NodeNameError> {
    let (source, name) = match nodename.map(str::trim).filter(|name| !name.is_empty()) {
        Some(name) => (NODENAME_ENV.to_owned(), name.to_owned()),
        None => (format!("the host name ({HOSTNAME_FILE})"), host()?),
    };
    validate(&name).map_err(|reason| NodeNameError {
        origin: source,
        reason: format!("{name:?} {reason}"),
    })?;
    Ok(name)
}

/// Checks `name` as a Kubernetes object name (RFC 1123 subdomain).
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "is {} characters long (at most 253)",
            name.chars().count()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.')))
    {
        return Err(format!(
            "holds {bad:?}: a Kubernetes node name has lowercase letters, digits, '-' and '.' only"
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name
        .split('.')
        .any(|label| !edge(label.chars().next()) || !edge(label.chars().last()))
    {
        return Err(
            "is not an RFC 1123 subdomain (each dot-separated part starts and ends with a lowercase letter or digit)"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn host(name: &'static str) -> impl FnOnce() -> Result<String, NodeNameError> {
        move || Ok(name.to_owned())
    }

    #[test]
    fn nodename_wins_over_the_host_name() {
        assert_eq!(resolve(Some("node-a"), host("box")).unwrap(), "node-a");
        assert_eq!(resolve(Some(" node-a\n"), host("box")).unwrap(), "node-a");
        // Unset or empty: the host name, never called otherwise.
        assert_eq!(resolve(None, host("box")).unwrap(), "box");
        assert_eq!(resolve(Some(""), host("box")).unwrap(), "box");
        let never = || -> Result<String, NodeNameError> { panic!("host name read") };
        assert_eq!(resolve(Some("n1"), never).unwrap(), "n1");
    }

    #[test]
    fn bad_names_name_their_source() {
        let cases = [
            (Some("Node_A"), "NODENAME", "'N'"),
            (Some("-a"), "NODENAME", "RFC 1123"),
            (Some("a..b"), "NODENAME", "RFC 1123"),
            (None, "host name", "'_'"),
        ];
        for (nodename, source, words) in cases {
            let message = resolve(nodename, host("bad_host")).unwrap_err().to_string();
            assert!(
                message.contains(source) && message.contains(words),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
        assert!(validate(&"a".repeat(254)).is_err());
        assert!(validate(&format!("{}.b", "a".repeat(63))).is_ok());
        assert!(validate("worker-1.example.com").is_ok());
    }
}
