//! `[policy]`: prefix lists and filters that neighbors name in `import` / `export`.
//!
//! ```toml
//! [[policy.prefix_list]]
//! name = "pod-blocks"
//! rules = [
//!   { prefix = "10.244.0.0/16", ge = 26, le = 32 },          # action defaults to permit
//!   { prefix = "0.0.0.0/0", le = 32, action = "deny" },
//! ]
//!
//! [[policy.filter]]
//! name = "from-tor"
//! default = "reject"                 # when no rule decides (default: reject)
//! [[policy.filter.rule]]
//! prefix_list = "pod-blocks"         # every match key present must match
//! community = ["65000:100"]          # the route carries any of these
//! source = "ebgp"                    # local | ebgp | ibgp
//! action = "accept"                  # accept | reject | continue
//! set_local_pref = 200
//! set_med = 10
//! add_communities = ["65000:1"]
//! remove_communities = ["65000:100"]
//! prepend = 2                        # prepend our AS this many times (export only)
//! ```
//!
//! A prefix list matches a prefix when the first rule whose `prefix` covers it and
//! whose length range (`ge`..=`le`, default exactly the rule's length) contains its
//! length permits it; no rule matching means deny.

use ipnet::IpNet;
use serde::Deserialize;

use super::types::CommunityValue;

/// The whole `[policy]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default, rename = "prefix_list")]
    pub prefix_lists: Vec<PrefixListConfig>,
    #[serde(default, rename = "filter")]
    pub filters: Vec<FilterConfig>,
}

/// `[[policy.prefix_list]]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixListConfig {
    pub name: String,
    pub rules: Vec<PrefixListRule>,
}

/// One line of a prefix list.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixListRule {
    pub prefix: IpNet,
    #[serde(default)]
    pub ge: Option<u8>,
    #[serde(default)]
    pub le: Option<u8>,
    #[serde(default)]
    pub action: PrefixListAction,
}

/// permit or deny.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefixListAction {
    #[default]
    Permit,
    Deny,
}

/// `[[policy.filter]]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    pub name: String,
    #[serde(default = "default_reject")]
    pub default: FilterAction,
    #[serde(default, rename = "rule")]
    pub rules: Vec<FilterRule>,
}

/// One rule of a filter: match keys, modifications, then an action.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterRule {
    #[serde(default)]
    pub prefix_list: Option<String>,
    #[serde(default)]
    pub community: Vec<CommunityValue>,
    #[serde(default)]
    pub source: Option<RouteSourceMatch>,
    pub action: FilterAction,
    #[serde(default)]
    pub set_local_pref: Option<u32>,
    #[serde(default)]
    pub set_med: Option<u32>,
    #[serde(default)]
    pub add_communities: Vec<CommunityValue>,
    #[serde(default)]
    pub remove_communities: Vec<CommunityValue>,
    #[serde(default)]
    pub prepend: Option<u8>,
}

/// What a rule does with a route it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterAction {
    Accept,
    Reject,
    /// Apply the rule's modifications and go on to the next rule.
    Continue,
}

/// Where a route came from, for `source = ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteSourceMatch {
    Local,
    Ebgp,
    Ibgp,
}

fn default_reject() -> FilterAction {
    FilterAction::Reject
}
