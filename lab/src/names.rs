//! Unique names for namespaces and host interfaces, so tests can run in parallel (several
//! test threads and several test binaries at once): prefix + process id + counter.

use std::sync::atomic::{AtomicU32, Ordering};

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique on this machine among names made by this function: `PREFIX-PID-N`.
/// Suitable for namespaces (no length limit that matters).
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A unique interface name of at most 15 characters for the host namespace: the prefix cut
/// to 5 characters, then the process id and a counter in base 36.
pub fn unique_ifname(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix: String = prefix.chars().take(5).collect();
    let name = format!(
        "{prefix}{}x{}",
        base36(u64::from(std::process::id())),
        base36(u64::from(n))
    );
    // pid < 2^22 is at most 5 base-36 digits; the counter stays below 4 digits in any
    // realistic test run, but keep the limit whatever happens.
    let start = name.len().saturating_sub(IFNAME_MAX);
    name[start..].to_owned()
}

/// Checks that `name` is usable as a Linux interface name.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

fn base36(mut value: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn ifnames_are_short_unique_and_valid() {
        let a = unique_ifname("veth-long-prefix");
        let b = unique_ifname("veth-long-prefix");
        assert_ne!(a, b);
        assert!(valid_ifname(&a), "{a}");
        assert!(a.len() <= IFNAME_MAX);
    }

    #[test]
    fn names_carry_prefix_and_pid() {
        let name = unique_name("wl");
        assert!(name.starts_with(&format!("wl-{}-", std::process::id())));
    }

    #[test]
    fn ifname_validity() {
        assert!(valid_ifname("eth1"));
        assert!(!valid_ifname("a-name-longer-than-15"));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname("a b"));
        assert!(!valid_ifname(""));
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}
