//! Filters: an ordered list of rules, each with match keys, modifications and an
//! action; the first rule that matches with `accept` or `reject` decides, `continue`
//! applies the rule's modifications and goes on; when no rule decides, the filter's
//! `default` does (`continue` as a default means reject).
//!
//! Evaluation is split in two so that the RIB can cache its results:
//! [`Filter::evaluate`] reads a route (prefix, communities, source) without allocating
//! and answers [`Verdict::Reject`] or [`Verdict::Accept`] with the set of rules whose
//! modifications apply ([`Applied`]); [`Filter::apply`] then changes an attribute set.
//! Two routes with equal attributes and equal `Applied` get equal results, so the
//! RIB applies a filter once per distinct (attribute set, `Applied`) pair, not per
//! prefix.
//!
//! Within one rule, `add_communities` is applied before `remove_communities`; a later
//! rule's community match sees the communities as earlier `continue` rules left them.

use std::collections::HashMap;
use std::sync::Arc;

use bgp_proto::{AsPath, Community, PathAttributes};
use ipnet::IpNet;

use super::prefix_list::PrefixList;
use crate::config::{FilterAction, FilterConfig, RouteSourceMatch};

/// Where a route came from, as filters and export rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteSource {
    /// Originated by this node.
    Local,
    /// Learned from an eBGP neighbor.
    Ebgp,
    /// Learned from an iBGP neighbor.
    Ibgp,
}

/// The facts of a route a filter matches on.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    pub prefix: IpNet,
    pub communities: &'a [Community],
    pub source: RouteSource,
}

/// A filter's answer for one route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Reject,
    /// Accepted, with these rules' modifications to apply (see [`Filter::apply`]).
    Accept(Applied),
}

/// Which direction a filter is applied in: it decides which modifications mean
/// something (LOCAL_PREF never goes to an eBGP peer; prepending is for export only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Import,
    ExportIbgp,
    /// Export to an eBGP neighbor; `prepend` adds `local_asn`.
    ExportEbgp {
        local_asn: u32,
    },
}

/// The set of rules (by position) whose modifications apply, in rule order.
/// Allocation-free for filters of up to 64 rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Applied {
    low: u64,
    high: Vec<u32>,
}

impl Applied {
    /// No modification.
    pub const NONE: Applied = Applied {
        low: 0,
        high: Vec::new(),
    };

    /// True when no modification applies.
    pub fn is_empty(&self) -> bool {
        self.low == 0 && self.high.is_empty()
    }

    fn insert(&mut self, rule: usize) {
        if rule < 64 {
            self.low |= 1 << rule;
        } else if let Ok(rule) = u32::try_from(rule) {
            self.high.push(rule);
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let mut low = self.low;
        let low = std::iter::from_fn(move || {
            (low != 0).then(|| {
                let rule = low.trailing_zeros() as usize;
                low &= low - 1;
                rule
            })
        });
        low.chain(self.high.iter().map(|&rule| rule as usize))
    }
}

/// A filter ready to evaluate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    default_accept: bool,
    rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// `Some(None)`: a prefix list that does not exist (the rule never matches).
    prefix_list: Option<Option<Arc<PrefixList>>>,
    communities: Vec<Community>,
    source: Option<RouteSource>,
    action: FilterAction,
    set_local_pref: Option<u32>,
    set_med: Option<u32>,
    add: Vec<Community>,
    remove: Vec<Community>,
    prepend: u8,
}

impl Rule {
    fn modifies(&self) -> bool {
        self.set_local_pref.is_some()
            || self.set_med.is_some()
            || !self.add.is_empty()
            || !self.remove.is_empty()
            || self.prepend > 0
    }
}

impl Filter {
    /// Compiles a configured filter; `lists` are the compiled prefix lists by name.
    pub fn new(config: &FilterConfig, lists: &HashMap<String, Arc<PrefixList>>) -> Filter {
        let communities = |values: &[crate::config::CommunityValue]| {
            values.iter().map(|c| Community(c.0)).collect()
        };
        let rules = config
            .rules
            .iter()
            .map(|rule| Rule {
                prefix_list: rule
                    .prefix_list
                    .as_ref()
                    .map(|name| lists.get(name).cloned()),
                communities: communities(&rule.community),
                source: rule.source.map(|source| match source {
                    RouteSourceMatch::Local => RouteSource::Local,
                    RouteSourceMatch::Ebgp => RouteSource::Ebgp,
                    RouteSourceMatch::Ibgp => RouteSource::Ibgp,
                }),
                action: rule.action,
                set_local_pref: rule.set_local_pref,
                set_med: rule.set_med,
                add: communities(&rule.add_communities),
                remove: communities(&rule.remove_communities),
                prepend: rule.prepend.unwrap_or(0),
            })
            .collect();
        Filter {
            name: config.name.clone(),
            default_accept: config.default == FilterAction::Accept,
            rules,
        }
    }

    /// True when some rule matches on the prefix (then results depend on the prefix,
    /// not only on the attributes).
    pub fn uses_prefix(&self) -> bool {
        self.rules.iter().any(|rule| rule.prefix_list.is_some())
    }

    /// Decides about one route without allocating (for filters of up to 64 rules).
    pub fn evaluate(&self, route: &Candidate<'_>) -> Verdict {
        let mut applied = Applied::default();
        for (position, rule) in self.rules.iter().enumerate() {
            if !self.matches(rule, route, &applied) {
                continue;
            }
            if rule.action != FilterAction::Reject && rule.modifies() {
                applied.insert(position);
            }
            match rule.action {
                FilterAction::Accept => return Verdict::Accept(applied),
                FilterAction::Reject => return Verdict::Reject,
                FilterAction::Continue => {}
            }
        }
        if self.default_accept {
            Verdict::Accept(applied)
        } else {
            Verdict::Reject
        }
    }

    /// Applies the modifications of `applied` (from [`Filter::evaluate`]) to `attrs`.
    pub fn apply(&self, applied: &Applied, attrs: &mut PathAttributes, direction: Direction) {
        for position in applied.iter() {
            let Some(rule) = self.rules.get(position) else {
                continue;
            };
            if let Some(local_pref) = rule.set_local_pref
                && !matches!(direction, Direction::ExportEbgp { .. })
            {
                attrs.local_pref = Some(local_pref);
            }
            if let Some(med) = rule.set_med {
                attrs.med = Some(med);
            }
            for community in &rule.add {
                if !attrs.communities.contains(community) {
                    attrs.communities.push(*community);
                }
            }
            attrs.communities.retain(|c| !rule.remove.contains(c));
            if let Direction::ExportEbgp { local_asn } = direction {
                let path = attrs.as_path.get_or_insert_with(AsPath::new);
                for _ in 0..rule.prepend {
                    path.prepend(local_asn);
                }
            }
        }
    }

    fn matches(&self, rule: &Rule, route: &Candidate<'_>, applied: &Applied) -> bool {
        if let Some(source) = rule.source
            && source != route.source
        {
            return false;
        }
        match &rule.prefix_list {
            Some(Some(list)) if !list.permits(route.prefix) => return false,
            Some(None) => return false,
            _ => {}
        }
        rule.communities.is_empty()
            || rule
                .communities
                .iter()
                .any(|&wanted| self.carries(route.communities, applied, wanted))
    }

    /// Whether the route carries `community` once the rules in `applied` ran.
    fn carries(&self, original: &[Community], applied: &Applied, community: Community) -> bool {
        let mut present = original.contains(&community);
        for position in applied.iter() {
            if let Some(rule) = self.rules.get(position) {
                if rule.add.contains(&community) {
                    present = true;
                }
                if rule.remove.contains(&community) {
                    present = false;
                }
            }
        }
        present
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::PolicyConfig;
    use crate::policy::Policy;

    fn policy(text: &str) -> Policy {
        let config: PolicyConfig = toml::from_str(text).unwrap();
        Policy::new(&config)
    }

    fn route<'a>(prefix: &str, communities: &'a [Community], source: RouteSource) -> Candidate<'a> {
        Candidate {
            prefix: prefix.parse().unwrap(),
            communities,
            source,
        }
    }

    const POLICY: &str = r#"
        [[prefix_list]]
        name = "pods"
        rules = [{ prefix = "10.244.0.0/16", ge = 26, le = 32 }]

        [[filter]]
        name = "from-tor"
        [[filter.rule]]
        community = ["65000:666"]
        action = "reject"
        [[filter.rule]]
        prefix_list = "pods"
        community = ["65000:100"]
        action = "accept"
        set_local_pref = 200
        add_communities = ["65000:1"]
        remove_communities = ["65000:100"]
        [[filter.rule]]
        prefix_list = "pods"
        action = "accept"

        [[filter]]
        name = "chain"
        default = "accept"
        [[filter.rule]]
        source = "local"
        action = "continue"
        add_communities = ["65000:7"]
        [[filter.rule]]
        community = ["65000:7"]
        action = "accept"
        set_med = 5
        prepend = 2
        [[filter.rule]]
        source = "ibgp"
        action = "reject"

        [[filter]]
        name = "missing-list"
        default = "accept"
        [[filter.rule]]
        prefix_list = "nope"
        action = "reject"
    "#;

    #[test]
    fn community_match_and_set() {
        let policy = policy(POLICY);
        let filter = policy.filter("from-tor").unwrap();
        let marked = [Community::new(65000, 100)];
        let evil = [Community::new(65000, 666), Community::new(65000, 100)];

        // A pod block with the community: accepted with the second rule's changes.
        let Verdict::Accept(applied) =
            filter.evaluate(&route("10.244.1.64/26", &marked, RouteSource::Ebgp))
        else {
            panic!("rejected")
        };
        assert!(!applied.is_empty());
        let mut attrs = PathAttributes {
            communities: marked.to_vec(),
            ..Default::default()
        };
        filter.apply(&applied, &mut attrs, Direction::Import);
        assert_eq!(attrs.local_pref, Some(200));
        assert_eq!(attrs.communities, vec![Community::new(65000, 1)]);

        // Without the community: third rule, no change.
        assert_eq!(
            filter.evaluate(&route("10.244.1.64/26", &[], RouteSource::Ebgp)),
            Verdict::Accept(Applied::NONE)
        );
        // The reject community wins, whatever the prefix.
        assert_eq!(
            filter.evaluate(&route("10.244.1.64/26", &evil, RouteSource::Ebgp)),
            Verdict::Reject
        );
        // Outside the prefix list: no rule decides, the default rejects.
        assert_eq!(
            filter.evaluate(&route("192.168.0.0/24", &marked, RouteSource::Ebgp)),
            Verdict::Reject
        );
    }

    #[test]
    fn continue_rules_feed_later_matches_and_export_prepends() {
        let policy = policy(POLICY);
        let filter = policy.filter("chain").unwrap();
        // Local: the first rule adds 65000:7, which the second rule then matches.
        let Verdict::Accept(applied) =
            filter.evaluate(&route("10.0.0.0/24", &[], RouteSource::Local))
        else {
            panic!("rejected")
        };
        let mut attrs = PathAttributes {
            as_path: Some(AsPath::new()),
            local_pref: Some(100),
            ..Default::default()
        };
        filter.apply(
            &applied,
            &mut attrs,
            Direction::ExportEbgp { local_asn: 64512 },
        );
        assert_eq!(attrs.communities, vec![Community::new(65000, 7)]);
        assert_eq!(attrs.med, Some(5));
        assert_eq!(attrs.as_path.unwrap().to_string(), "64512 64512");

        // The same rules on import never prepend.
        let mut imported = PathAttributes::default();
        filter.apply(&applied, &mut imported, Direction::Import);
        assert!(imported.as_path.is_none());

        // iBGP without the community: the third rule rejects; eBGP: the default accepts.
        assert_eq!(
            filter.evaluate(&route("10.0.0.0/24", &[], RouteSource::Ibgp)),
            Verdict::Reject
        );
        assert_eq!(
            filter.evaluate(&route("10.0.0.0/24", &[], RouteSource::Ebgp)),
            Verdict::Accept(Applied::NONE)
        );
    }

    #[test]
    fn a_rule_naming_a_missing_prefix_list_never_matches() {
        let policy = policy(POLICY);
        let filter = policy.filter("missing-list").unwrap();
        assert_eq!(
            filter.evaluate(&route("10.0.0.0/24", &[], RouteSource::Ebgp)),
            Verdict::Accept(Applied::NONE)
        );
        assert!(filter.uses_prefix());
        assert!(policy.filter("nope").is_none());
    }

    #[test]
    fn applied_sets_beyond_64_rules() {
        let mut applied = Applied::default();
        for rule in [0, 5, 63, 64, 100] {
            applied.insert(rule);
        }
        assert_eq!(applied.iter().collect::<Vec<_>>(), vec![0, 5, 63, 64, 100]);
    }
}
