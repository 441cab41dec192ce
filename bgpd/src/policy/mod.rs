//! Route policy: the `[policy]` section of the configuration (see
//! [`crate::config::policy`]) compiled into [`Filter`]s the RIB evaluates on import and
//! export.
//!
//! - [`prefix_list`]: prefix lists with `ge` / `le` length ranges.
//! - [`filter`]: ordered rules matching on prefix list, communities and route source,
//!   setting LOCAL_PREF / MED, adding and removing communities, prepending our AS.
//!
//! The safe defaults for pod networking are the RIB's, not a filter's (see
//! `rib::export`): without an export filter, eBGP neighbors get only locally
//! originated routes, so a node never becomes a transit path.

pub mod filter;
pub mod prefix_list;

use std::collections::HashMap;
use std::sync::Arc;

pub use filter::{Applied, Candidate, Direction, Filter, RouteSource, Verdict};
pub use prefix_list::PrefixList;

use crate::config::PolicyConfig;

/// Every filter of a configuration, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    filters: HashMap<String, Arc<Filter>>,
}

impl Policy {
    /// Compiles `config`. A rule naming a prefix list that does not exist never
    /// matches (the configuration check reports such names before this runs).
    pub fn new(config: &PolicyConfig) -> Policy {
        let lists: HashMap<String, Arc<PrefixList>> = config
            .prefix_lists
            .iter()
            .map(|list| (list.name.clone(), Arc::new(PrefixList::new(list))))
            .collect();
        let filters = config
            .filters
            .iter()
            .map(|filter| (filter.name.clone(), Arc::new(Filter::new(filter, &lists))))
            .collect();
        Policy { filters }
    }

    /// The filter named `name`.
    pub fn filter(&self, name: &str) -> Option<Arc<Filter>> {
        self.filters.get(name).cloned()
    }
}
