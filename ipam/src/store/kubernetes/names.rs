//! Object names for the IPAM keys: derived from the CIDR, the node or the handle and
//! made safe for Kubernetes (a DNS-1123 subdomain: at most 253 characters of lower-case
//! letters, digits, `-` and `.`, beginning and ending with a letter or digit). A name
//! that had to be changed carries a hash of the original, so two keys never share a
//! name in practice; the store still checks every object's spec against the key it
//! was read for.

use ipnet::IpNet;

use crate::keys;

/// Longest object name.
const MAX_NAME: usize = 253;
/// Longest label value.
const MAX_LABEL: usize = 63;

/// `text` as an object name: itself when it is one already, else lower-cased with
/// every other character replaced by `-`, cut to fit, and followed by `-` and a hash
/// of `text`.
pub fn safe_name(text: &str) -> String {
    fit(text, MAX_NAME, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
    })
}

/// `text` as a label value (at most 63 characters; letters, digits, `-`, `_`, `.`).
pub(crate) fn label_value(text: &str) -> String {
    fit(text, MAX_LABEL, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
    })
}

fn fit(text: &str, max: usize, allowed: impl Fn(char) -> bool) -> String {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !text.is_empty()
        && text.len() <= max
        && text.chars().all(&allowed)
        && edge_ok(text.chars().next())
        && edge_ok(text.chars().last())
    {
        return text.to_string();
    }
    let hash = format!("{:016x}", fnv1a(text));
    let mut kept: String = text
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if allowed(c) { c } else { '-' }
        })
        .take(max - hash.len() - 1)
        .collect();
    kept = kept
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if kept.is_empty() {
        hash
    } else {
        format!("{kept}-{hash}")
    }
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn cidr_name(cidr: &IpNet) -> String {
    safe_name(&cidr.to_string().replace(['/', ':', '.'], "-"))
}

/// The name of the object holding the record at `key` (see [`crate::keys`]), or
/// `None` when the key is not one the Kubernetes store keeps.
pub fn object_name(key: &str) -> Option<String> {
    if key == keys::CONFIG {
        return Some(String::from("default"));
    }
    let cidr = |part: &str| -> Option<IpNet> {
        let (address, length) = part.rsplit_once('-')?;
        format!("{address}/{length}").parse().ok()
    };
    if let Some(part) = key.strip_prefix(keys::POOLS) {
        return cidr(part).map(|c| cidr_name(&c));
    }
    if let Some(part) = key.strip_prefix(keys::BLOCKS) {
        return cidr(part).map(|c| cidr_name(&c));
    }
    if let Some(part) = key.strip_prefix(keys::AFFINITIES) {
        let (node, part) = part.split_once('/')?;
        let cidr = cidr(part)?;
        return Some(safe_name(&format!(
            "{node}-{}",
            cidr.to_string().replace(['/', ':', '.'], "-")
        )));
    }
    if let Some(handle) = key.strip_prefix(keys::HANDLES) {
        return (!handle.is_empty()).then(|| safe_name(handle));
    }
    if let Some(node) = key.strip_prefix(keys::NODES) {
        return (!node.is_empty()).then(|| node.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_distinct() {
        let net = |s: &str| s.parse::<IpNet>().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(
            object_name(&keys::pool(&net("10.244.0.0/16"))).as_deref(),
            Some("10-244-0-0-16")
        );
        assert_eq!(
            object_name(&keys::block(&net("fd00:10:244::/122"))).as_deref(),
            Some("fd00-10-244---122")
        );
        assert_eq!(
            object_name(&keys::affinity("node-a", &net("10.244.3.64/26"))).as_deref(),
            Some("node-a-10-244-3-64-26")
        );
        assert_eq!(object_name(keys::CONFIG).as_deref(), Some("default"));
        let odd = [
            object_name(&keys::handle("Pod_1:eth0")),
            object_name(&keys::handle("pod-1-eth0")),
            object_name(&keys::handle("pod_1:eth0")),
            object_name(&keys::block(&net("::/120"))),
            object_name(&keys::affinity("Node_A", &net("10.0.0.0/26"))),
        ];
        for name in &odd {
            let name = name.as_deref().unwrap_or_default();
            assert!(name.len() <= 253 && !name.is_empty(), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
                "{name}"
            );
            assert!(
                name.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{name}"
            );
            assert!(
                name.ends_with(|c: char| c.is_ascii_alphanumeric()),
                "{name}"
            );
        }
        assert_ne!(odd[0], odd[2]);
        assert_eq!(odd[1].as_deref(), Some("pod-1-eth0"));
        let long = "h".repeat(512);
        assert!(safe_name(&long).len() <= 253);
        assert!(label_value(&long).len() <= 63);
        assert_eq!(object_name("/t/other"), None);
    }
}
