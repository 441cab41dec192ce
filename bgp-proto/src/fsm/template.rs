//! A [`SessionConfig`] checked once, with the OPEN it sends, for state machines to
//! share: a speaker with thousands of sessions configured alike (a route reflector's
//! clients) holds one copy of both instead of one per session.

use std::sync::Arc;

use crate::fsm::config::{ConfigError, SessionConfig};
use crate::open::Open;

/// A configuration that [`SessionConfig::validate`] accepted and the OPEN it sends.
/// Cloning it shares both; [`Fsm::from_template`](crate::fsm::Fsm::from_template)
/// starts a state machine on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub(super) config: Arc<SessionConfig>,
    pub(super) open: Arc<Open>,
}

impl Template {
    /// Checks `config` and builds its OPEN.
    pub fn new(config: SessionConfig) -> Result<Template, ConfigError> {
        config.validate()?;
        let mut open = config.local_open();
        open.capabilities.shrink_to_fit();
        Ok(Template {
            config: Arc::new(config),
            open: Arc::new(open),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The OPEN we send.
    pub fn open(&self) -> &Open {
        &self.open
    }

    /// True while a state machine (or another clone) holds this template besides
    /// `self`: a cache of templates may drop the ones that are not.
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.config) > 1
    }
}
