//! Prefix lists: the first rule whose prefix covers a route's prefix and whose length
//! range holds the route's length decides (permit or deny); no rule deciding means
//! deny.
//!
//! A rule's length range is `ge..=le`; without `ge` it starts at the rule's own length,
//! without `le` it ends at the family's maximum (32 or 128) when `ge` is given and at
//! the rule's own length otherwise, so a bare rule matches exactly its prefix (FRR and
//! BIRD read `ge` / `le` the same way).

use ipnet::IpNet;

use crate::config::PrefixListConfig;
use crate::config::policy::PrefixListAction;

/// A prefix list ready to match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixList {
    pub name: String,
    rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    prefix: IpNet,
    min_len: u8,
    max_len: u8,
    permit: bool,
}

impl PrefixList {
    /// Compiles a configured list (lengths out of range are clamped to the family's).
    pub fn new(config: &PrefixListConfig) -> PrefixList {
        let rules = config
            .rules
            .iter()
            .map(|rule| {
                let prefix = rule.prefix.trunc();
                let own = prefix.prefix_len();
                let max = prefix.max_prefix_len();
                let (min_len, max_len) = match (rule.ge, rule.le) {
                    (None, None) => (own, own),
                    (Some(ge), None) => (ge, max),
                    (None, Some(le)) => (own, le),
                    (Some(ge), Some(le)) => (ge, le),
                };
                Rule {
                    prefix,
                    min_len: min_len.max(own),
                    max_len: max_len.min(max),
                    permit: rule.action == PrefixListAction::Permit,
                }
            })
            .collect();
        PrefixList {
            name: config.name.clone(),
            rules,
        }
    }

    /// True when the list permits `prefix`.
    pub fn permits(&self, prefix: IpNet) -> bool {
        let len = prefix.prefix_len();
        self.rules
            .iter()
            .find(|rule| {
                (rule.min_len..=rule.max_len).contains(&len) && covers(rule.prefix, prefix)
            })
            .is_some_and(|rule| rule.permit)
    }
}

/// True when `outer` contains `inner` (same family, at least as long).
fn covers(outer: IpNet, inner: IpNet) -> bool {
    match (outer, inner) {
        (IpNet::V4(outer), IpNet::V4(inner)) => {
            inner.prefix_len() >= outer.prefix_len() && outer.contains(&inner.network())
        }
        (IpNet::V6(outer), IpNet::V6(inner)) => {
            inner.prefix_len() >= outer.prefix_len() && outer.contains(&inner.network())
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::policy::PrefixListRule;

    fn list(rules: &[(&str, Option<u8>, Option<u8>, bool)]) -> PrefixList {
        PrefixList::new(&PrefixListConfig {
            name: "test".into(),
            rules: rules
                .iter()
                .map(|(prefix, ge, le, permit)| PrefixListRule {
                    prefix: prefix.parse().unwrap(),
                    ge: *ge,
                    le: *le,
                    action: if *permit {
                        PrefixListAction::Permit
                    } else {
                        PrefixListAction::Deny
                    },
                })
                .collect(),
        })
    }

    /// (rule prefix, ge, le, route prefix, permitted)
    type Row = (&'static str, Option<u8>, Option<u8>, &'static str, bool);
    const TABLE: &[Row] = &[
        // A bare rule matches exactly its prefix.
        ("10.0.0.0/8", None, None, "10.0.0.0/8", true),
        ("10.0.0.0/8", None, None, "10.1.0.0/16", false),
        ("10.0.0.0/8", None, None, "11.0.0.0/8", false),
        // ge alone: from ge up to 32.
        ("10.0.0.0/8", Some(24), None, "10.1.2.0/24", true),
        ("10.0.0.0/8", Some(24), None, "10.1.2.3/32", true),
        ("10.0.0.0/8", Some(24), None, "10.1.0.0/16", false),
        ("10.0.0.0/8", Some(24), None, "11.1.2.0/24", false),
        // le alone: from the rule's length up to le.
        ("10.0.0.0/8", None, Some(16), "10.0.0.0/8", true),
        ("10.0.0.0/8", None, Some(16), "10.1.0.0/16", true),
        ("10.0.0.0/8", None, Some(16), "10.1.2.0/24", false),
        // both.
        ("10.244.0.0/16", Some(26), Some(28), "10.244.1.64/26", true),
        ("10.244.0.0/16", Some(26), Some(28), "10.244.1.64/28", true),
        ("10.244.0.0/16", Some(26), Some(28), "10.244.1.0/24", false),
        ("10.244.0.0/16", Some(26), Some(28), "10.244.1.1/32", false),
        ("10.244.0.0/16", Some(26), Some(28), "10.245.1.64/26", false),
        // ge below the rule's own length is clamped to it: a shorter prefix never matches.
        ("10.244.0.0/16", Some(8), Some(32), "10.0.0.0/8", false),
        ("10.244.0.0/16", Some(8), Some(32), "10.244.0.0/16", true),
        // IPv6, and families never mix.
        ("fd00::/48", Some(64), Some(64), "fd00:0:0:1::/64", true),
        ("fd00::/48", Some(64), Some(64), "fd00:0:0:1::/80", false),
        ("fd00::/48", Some(64), Some(64), "fd01::/64", false),
        ("0.0.0.0/0", None, Some(32), "fd00::/64", false),
        ("::/0", None, Some(128), "10.0.0.0/8", false),
        // the default route and "everything".
        ("0.0.0.0/0", None, None, "0.0.0.0/0", true),
        ("0.0.0.0/0", None, None, "10.0.0.0/8", false),
        ("0.0.0.0/0", None, Some(32), "10.0.0.0/8", true),
    ];

    #[test]
    fn ge_le_table() {
        for (rule, ge, le, route, expected) in TABLE {
            let list = list(&[(rule, *ge, *le, true)]);
            assert_eq!(
                list.permits(route.parse().unwrap()),
                *expected,
                "rule {rule} ge {ge:?} le {le:?}, route {route}"
            );
        }
    }

    #[test]
    fn first_matching_rule_decides_and_no_match_denies() {
        let list = list(&[
            ("10.244.1.0/24", None, Some(32), false),
            ("10.244.0.0/16", None, Some(32), true),
        ]);
        assert!(!list.permits("10.244.1.64/26".parse().unwrap()));
        assert!(list.permits("10.244.2.64/26".parse().unwrap()));
        assert!(!list.permits("192.168.0.0/24".parse().unwrap()));
        assert!(
            !PrefixList::new(&PrefixListConfig {
                name: "empty".into(),
                rules: vec![]
            })
            .permits("10.0.0.0/8".parse().unwrap())
        );
    }
}
