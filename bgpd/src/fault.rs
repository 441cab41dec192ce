//! Test-only fault injection: makes one task fail on purpose, so tests can show what
//! the daemon does when a task dies (see `crate::supervision`).
//!
//! Compiled only with the cargo feature `fault-injection` in a debug build; a release
//! build refuses the feature, and without it every hook is an empty function.
//!
//! `WREN_FAULT` holds comma-separated `TASK-panic=PREFIX` entries, TASK being
//! `session` or `rib`: that task panics when it handles the first UPDATE announcing
//! PREFIX (once per entry and process, so a restarted session or the next start get
//! through). Read once by [`arm`], at the daemon's start, which logs what it armed;
//! a malformed entry stops the start with a one-line error.

#[cfg(all(feature = "fault-injection", not(debug_assertions)))]
compile_error!("the fault-injection feature is for test builds only, not release builds");

use bgp_proto::Update;

/// Where a fault can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// A session task, on receiving the UPDATE.
    Session,
    /// The rib task, on handling the UPDATE.
    Rib,
}

#[cfg(feature = "fault-injection")]
mod armed {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    use bgp_proto::{Ipv4Prefix, Ipv6Prefix, Prefix, Update};
    use ipnet::IpNet;

    use super::Site;

    struct Fault {
        site: Site,
        prefix: Prefix,
        fired: AtomicBool,
    }

    static FAULTS: OnceLock<Vec<Fault>> = OnceLock::new();

    pub fn arm() -> Result<(), String> {
        let Ok(spec) = std::env::var("WREN_FAULT") else {
            return Ok(());
        };
        let mut faults = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (site, prefix) = entry
                .split_once('=')
                .ok_or_else(|| format!("WREN_FAULT: {entry:?} is not TASK-panic=PREFIX"))?;
            let site = match site {
                "session-panic" => Site::Session,
                "rib-panic" => Site::Rib,
                other => {
                    return Err(format!(
                        "WREN_FAULT: unknown fault {other:?} (session-panic, rib-panic)"
                    ));
                }
            };
            let prefix: IpNet = prefix
                .parse()
                .map_err(|error| format!("WREN_FAULT: {prefix:?}: {error}"))?;
            let prefix = match prefix {
                IpNet::V4(net) => Prefix::V4(Ipv4Prefix::from(net)),
                IpNet::V6(net) => Prefix::V6(Ipv6Prefix::from(net)),
            };
            tracing::warn!("fault injection armed: {entry}");
            faults.push(Fault {
                site,
                prefix,
                fired: AtomicBool::new(false),
            });
        }
        let _ = FAULTS.set(faults);
        Ok(())
    }

    pub fn on_update(site: Site, update: &Update) {
        let Some(faults) = FAULTS.get() else {
            return;
        };
        for fault in faults.iter().filter(|fault| fault.site == site) {
            if update.announcements().any(|(_, p)| p == fault.prefix)
                && !fault.fired.swap(true, Ordering::SeqCst)
            {
                panic!(
                    "fault injected: {site:?} task, UPDATE announcing {}",
                    fault.prefix
                );
            }
        }
    }
}

/// Reads `WREN_FAULT` (with the `fault-injection` feature; otherwise nothing to do).
pub fn arm() -> Result<(), String> {
    #[cfg(feature = "fault-injection")]
    return armed::arm();
    #[cfg(not(feature = "fault-injection"))]
    Ok(())
}

/// The hook of `site` for one UPDATE: panics when an armed fault matches.
#[inline(always)]
pub fn on_update(site: Site, update: &Update) {
    #[cfg(feature = "fault-injection")]
    armed::on_update(site, update);
    #[cfg(not(feature = "fault-injection"))]
    let _ = (site, update);
}
