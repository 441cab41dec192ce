//! The pod MTU (issue 15, part 4): detected from the interfaces that carry the
//! underlay, less the encapsulation's overhead, or set by `[dataplane] mtu`; written
//! for the CNI plugin to `STATE_DIR/mtu` (decimal text and a newline, replaced
//! atomically), as Calico writes `/var/lib/calico/mtu`.
//!
//! - Host MTU: the smallest MTU of the up interfaces whose name matches the pattern
//!   (default [`DEFAULT_INTERFACE_PATTERN`], Calico's), else [`FALLBACK_HOST_MTU`].
//! - Pod MTU: the host MTU less 50 (VXLAN over IPv4) or 70 (over IPv6), or the host
//!   MTU without encapsulation.
//! - An override larger than what the smallest underlay interface leaves for pods
//!   is refused ([`Error::MtuTooLarge`]); with no underlay interface found it is used
//!   as given.

use std::io::Write;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::error::Error;
use crate::link::Link;

/// Calico's default `mtuIfacePattern`: the usual names of physical interfaces
/// (systemd's predictable names, and the classic eth/wlan/wwan).
pub const DEFAULT_INTERFACE_PATTERN: &str = "^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)";
/// The host MTU assumed when no up interface matches the pattern (GCE's, as
/// Calico's fallback).
pub const FALLBACK_HOST_MTU: u32 = 1460;
/// The file name of the pod MTU in the state directory.
pub const MTU_FILE: &str = "mtu";
/// Bytes a VXLAN header costs over IPv4 (outer IPv4 20 + UDP 8 + VXLAN 8 + inner
/// Ethernet 14).
pub const VXLAN_IPV4_OVERHEAD: u32 = 50;
/// Bytes a VXLAN header costs over IPv6 (outer IPv6 40 + 8 + 8 + 14).
pub const VXLAN_IPV6_OVERHEAD: u32 = 70;

/// How pod traffic leaves the node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encapsulation {
    /// Routed as is (BGP): the pod MTU is the host MTU.
    #[default]
    None,
    /// VXLAN over an IPv4 underlay.
    VxlanIpv4,
    /// VXLAN over an IPv6 underlay (or over both families: the larger overhead).
    VxlanIpv6,
}

impl Encapsulation {
    /// Bytes the encapsulation adds to every packet.
    pub fn overhead(self) -> u32 {
        match self {
            Encapsulation::None => 0,
            Encapsulation::VxlanIpv4 => VXLAN_IPV4_OVERHEAD,
            Encapsulation::VxlanIpv6 => VXLAN_IPV6_OVERHEAD,
        }
    }

    fn describe(self) -> String {
        match self {
            Encapsulation::None => String::new(),
            other => format!(" after the VXLAN header ({} bytes)", other.overhead()),
        }
    }
}

/// What decides the pod MTU.
#[derive(Clone, Debug)]
pub struct MtuSettings {
    /// The interfaces that carry the underlay.
    pub interface_pattern: Regex,
    /// `[dataplane] mtu`: the pod MTU, instead of the detected one.
    pub mtu: Option<u32>,
    /// Where the pod MTU is written ([`MTU_FILE`] inside it).
    pub state_dir: PathBuf,
}

/// The underlay interface with the smallest MTU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostMtu {
    pub interface: String,
    pub mtu: u32,
}

/// The pod MTU and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodMtu {
    pub mtu: u32,
    /// The detected underlay; `None` when no up interface matched.
    pub host: Option<HostMtu>,
    /// From `[dataplane] mtu`.
    pub overridden: bool,
}

/// The up interface matching `pattern` with the smallest MTU (ties: the first
/// listed).
pub fn host_mtu(links: &[Link], pattern: &Regex) -> Option<HostMtu> {
    links
        .iter()
        .filter(|link| link.up && link.mtu > 0 && pattern.is_match(&link.name))
        .min_by_key(|link| link.mtu)
        .map(|link| HostMtu {
            interface: link.name.clone(),
            mtu: link.mtu,
        })
}

/// The MTU pods get over a host MTU of `host` with `encapsulation`.
pub fn pod_mtu(host: u32, encapsulation: Encapsulation) -> u32 {
    host.saturating_sub(encapsulation.overhead())
}

/// The pod MTU for `links`: the override when it fits the underlay, else the
/// detected one.
pub fn resolve(
    settings: &MtuSettings,
    links: &[Link],
    encapsulation: Encapsulation,
) -> Result<PodMtu, Error> {
    let host = host_mtu(links, &settings.interface_pattern);
    let allowed = pod_mtu(
        host.as_ref().map_or(FALLBACK_HOST_MTU, |h| h.mtu),
        encapsulation,
    );
    match (settings.mtu, &host) {
        (Some(wanted), Some(underlay)) if wanted > allowed => Err(Error::MtuTooLarge {
            wanted,
            interface: underlay.interface.clone(),
            host: underlay.mtu,
            allowed,
            overhead: encapsulation.describe(),
        }),
        (Some(wanted), _) => Ok(PodMtu {
            mtu: wanted,
            host,
            overridden: true,
        }),
        (None, _) => Ok(PodMtu {
            mtu: allowed,
            host,
            overridden: false,
        }),
    }
}

/// The path of the pod MTU file in `state_dir`.
pub fn mtu_path(state_dir: &Path) -> PathBuf {
    state_dir.join(MTU_FILE)
}

/// The pod MTU the file in `state_dir` holds, if it holds one.
pub fn read_mtu_file(state_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(mtu_path(state_dir)).ok()?;
    text.trim_end_matches('\n').parse().ok()
}

/// Writes `mtu` to the file in `state_dir` (creating the directory) unless it holds
/// it already: a temporary file beside it, then a rename, so a reader sees the old
/// value or the new one. Returns whether it wrote.
pub fn write_mtu_file(state_dir: &Path, mtu: u32) -> Result<bool, Error> {
    let path = mtu_path(state_dir);
    if read_mtu_file(state_dir) == Some(mtu) {
        return Ok(false);
    }
    let failed = |source| Error::MtuFile {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(failed)?;
    let temporary = state_dir.join(format!(".{MTU_FILE}.{}", std::process::id()));
    let written = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(format!("{mtu}\n").as_bytes())?;
        file.sync_all()
    });
    if let Err(error) = written.and_then(|()| std::fs::rename(&temporary, &path)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(failed(error));
    }
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn link(name: &str, mtu: u32, up: bool) -> Link {
        Link {
            index: 0,
            name: name.into(),
            mtu,
            up,
        }
    }

    fn settings(mtu: Option<u32>) -> MtuSettings {
        MtuSettings {
            interface_pattern: Regex::new(DEFAULT_INTERFACE_PATTERN).unwrap(),
            mtu,
            state_dir: PathBuf::new(),
        }
    }

    #[test]
    fn smallest_up_underlay_interface() {
        let links = [
            link("lo", 65536, true),
            link("eth0", 9000, true),
            link("enp3s0", 1500, true),
            link("eth1", 1400, false),
            link("wren.vxlan", 1200, true),
            link("cali1234", 1000, true),
        ];
        let pattern = Regex::new(DEFAULT_INTERFACE_PATTERN).unwrap();
        assert_eq!(
            host_mtu(&links, &pattern),
            Some(HostMtu {
                interface: "enp3s0".into(),
                mtu: 1500
            })
        );
        assert_eq!(host_mtu(&links[..1], &pattern), None);
        let only_lo = resolve(&settings(None), &links[..1], Encapsulation::None).unwrap();
        assert_eq!(only_lo.mtu, FALLBACK_HOST_MTU);
        assert_eq!(only_lo.host, None);
    }

    #[test]
    fn encapsulation_overhead() {
        assert_eq!(pod_mtu(1500, Encapsulation::None), 1500);
        assert_eq!(pod_mtu(1500, Encapsulation::VxlanIpv4), 1450);
        assert_eq!(pod_mtu(1500, Encapsulation::VxlanIpv6), 1430);
        assert_eq!(pod_mtu(9001, Encapsulation::VxlanIpv4), 8951);
    }

    #[test]
    fn override_is_refused_above_the_underlay() {
        let links = [link("eth0", 1500, true)];
        let fits = resolve(&settings(Some(1450)), &links, Encapsulation::VxlanIpv4).unwrap();
        assert_eq!((fits.mtu, fits.overridden), (1450, true));
        let error = resolve(&settings(Some(1451)), &links, Encapsulation::VxlanIpv4)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("mtu = 1451") && error.contains("eth0 has MTU 1500"),
            "{error}"
        );
        assert!(error.contains("leaves 1450"), "{error}");
        // No underlay found: nothing to compare with; the override stands.
        let alone = resolve(&settings(Some(9000)), &[], Encapsulation::None).unwrap();
        assert_eq!(alone.mtu, 9000);
    }

    #[test]
    fn the_file_is_written_once_per_value() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(read_mtu_file(&state), None);
        assert!(write_mtu_file(&state, 1450).unwrap());
        assert_eq!(std::fs::read_to_string(mtu_path(&state)).unwrap(), "1450\n");
        assert!(!write_mtu_file(&state, 1450).unwrap());
        assert!(write_mtu_file(&state, 1400).unwrap());
        assert_eq!(read_mtu_file(&state), Some(1400));
        // Only the file itself is left behind.
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1);
    }
}
