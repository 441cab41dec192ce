//! The state machines' [`Template`]s (a checked configuration and the OPEN it sends),
//! one per distinct configuration, shared by every session configured alike: at a
//! route reflector, thousands of clients hold one copy of both between them instead
//! of one each (issue 18's memory per session).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use bgp_proto::fsm::{ConfigError, SessionConfig, Template};

/// Entries before the first sweep of the templates no session holds any more.
const FIRST_SWEEP: usize = 16;

/// The templates by configuration. Nothing but sessions hold a template, so one that
/// only this map holds is unused: those go when the map has doubled since the last
/// sweep, which bounds it by twice the templates in use.
struct Templates {
    by_config: HashMap<SessionConfig, Template>,
    sweep_at: usize,
}

static TEMPLATES: LazyLock<Mutex<Templates>> = LazyLock::new(|| {
    Mutex::new(Templates {
        by_config: HashMap::new(),
        sweep_at: FIRST_SWEEP,
    })
});

/// The template of `config`: the one of the sessions configured alike, else a new
/// one; fails when the state machine refuses `config`.
pub fn template(config: SessionConfig) -> Result<Template, ConfigError> {
    let mut templates = TEMPLATES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(template) = templates.by_config.get(&config) {
        return Ok(template.clone());
    }
    let template = Template::new(config.clone())?;
    if templates.by_config.len() >= templates.sweep_at {
        templates
            .by_config
            .retain(|_, template| template.is_shared());
        templates.sweep_at = (templates.by_config.len() * 2).max(FIRST_SWEEP);
    }
    templates.by_config.insert(config, template.clone());
    Ok(template)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use bgp_proto::fsm::{Fsm, PeerAs};

    use super::*;

    fn config(peer_as: u32) -> SessionConfig {
        SessionConfig::new(
            4_100_000_000,
            Ipv4Addr::new(10, 9, 9, 9),
            PeerAs::Exact(peer_as),
        )
    }

    #[test]
    fn sessions_configured_alike_share_one_template() {
        let first = Fsm::from_template(&template(config(65001)).unwrap());
        let second = Fsm::from_template(&template(config(65001)).unwrap());
        assert!(std::ptr::eq(first.config(), second.config()));
        assert!(std::ptr::eq(first.local_open(), second.local_open()));
        let other = Fsm::from_template(&template(config(65002)).unwrap());
        assert!(!std::ptr::eq(first.config(), other.config()));
        assert_eq!(other.config(), &config(65002));
        let refused = SessionConfig {
            hold_time: 1,
            ..config(65001)
        };
        assert!(template(refused).is_err());
    }

    #[test]
    fn unused_templates_are_swept() {
        let kept = template(config(64000)).unwrap();
        for peer_as in 0..(4 * FIRST_SWEEP as u32) {
            drop(template(config(65100 + peer_as)).unwrap());
        }
        // Without sweeps, the map would hold every one of them.
        let templates = TEMPLATES.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(templates.by_config.len() < 4 * FIRST_SWEEP);
        assert!(templates.by_config.contains_key(kept.config()));
    }
}
