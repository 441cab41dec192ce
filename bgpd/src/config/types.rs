//! Value types of the configuration that carry their own invariants.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, de};

/// An AS number other than 0 (RFC 7607).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Asn(u32);

impl Asn {
    pub fn new(value: u32) -> Option<Asn> {
        (value != 0).then_some(Asn(value))
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Asn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u32::deserialize(deserializer)?;
        Asn::new(value).ok_or_else(|| de::Error::custom("AS number 0 is reserved (RFC 7607)"))
    }
}

/// A BGP hold time in seconds: 0 (no keepalives) or 3 to 65535 (RFC 4271 4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HoldTime(u16);

impl HoldTime {
    pub const DEFAULT: HoldTime = HoldTime(90);
    pub fn new(seconds: u16) -> Option<HoldTime> {
        (seconds == 0 || seconds >= 3).then_some(HoldTime(seconds))
    }
    pub fn seconds(self) -> u16 {
        self.0
    }
}

impl Default for HoldTime {
    fn default() -> Self {
        HoldTime::DEFAULT
    }
}

impl<'de> Deserialize<'de> for HoldTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u16::deserialize(deserializer)?;
        HoldTime::new(value)
            .ok_or_else(|| de::Error::custom("hold time must be 0 or between 3 and 65535 seconds"))
    }
}

/// Equal-cost paths per prefix: 1 to 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaxPaths(u8);

impl MaxPaths {
    pub fn new(paths: u8) -> Option<MaxPaths> {
        (1..=64).contains(&paths).then_some(MaxPaths(paths))
    }
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for MaxPaths {
    fn default() -> Self {
        MaxPaths(1)
    }
}

impl<'de> Deserialize<'de> for MaxPaths {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u8::deserialize(deserializer)?;
        MaxPaths::new(value).ok_or_else(|| de::Error::custom("max_paths must be between 1 and 64"))
    }
}

/// `max_prefixes = 1000` (each family), or a table:
/// `{ limit = 1000, ipv4 = 2000, ipv6 = 500, restart = 60, warning_only = false }`,
/// where `ipv4` / `ipv6` set one family's limit and `limit` every family not named
/// (a family with neither has no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPrefixes {
    /// Most prefixes accepted from the peer per family (IPv4, IPv6 unicast); one
    /// more closes the session (Cease/1). `None`: no limit for that family.
    pub limits: [Option<u32>; 2],
    /// Seconds to stay idle after closing for too many prefixes (default 60).
    pub restart_secs: u32,
    /// Only log, never close.
    pub warning_only: bool,
}

impl MaxPrefixes {
    /// The limit of the family at `index` (0 IPv4, 1 IPv6 unicast).
    pub fn limit(&self, index: usize) -> Option<u32> {
        self.limits.get(index).copied().flatten()
    }
}

impl<'de> Deserialize<'de> for MaxPrefixes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            #[serde(default)]
            limit: Option<u32>,
            #[serde(default)]
            ipv4: Option<u32>,
            #[serde(default)]
            ipv6: Option<u32>,
            #[serde(default = "default_restart")]
            restart: u32,
            #[serde(default)]
            warning_only: bool,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Limit(u32),
            Table(Table),
        }
        fn default_restart() -> u32 {
            60
        }
        let max = match Raw::deserialize(deserializer).map_err(|_| {
            de::Error::custom(
                "max_prefixes must be a number or { limit = N, ipv4 = N, ipv6 = N, restart = SECONDS, warning_only = BOOL }",
            )
        })? {
            Raw::Limit(limit) => MaxPrefixes {
                limits: [Some(limit); 2],
                restart_secs: default_restart(),
                warning_only: false,
            },
            Raw::Table(table) => MaxPrefixes {
                limits: [table.ipv4.or(table.limit), table.ipv6.or(table.limit)],
                restart_secs: table.restart,
                warning_only: table.warning_only,
            },
        };
        if max.limits.iter().all(Option::is_none) {
            return Err(de::Error::custom(
                "max_prefixes needs a limit: limit = N for each family, or ipv4 = N / ipv6 = N",
            ));
        }
        if max.limits.contains(&Some(0)) {
            return Err(de::Error::custom("max_prefixes limit must be at least 1"));
        }
        Ok(max)
    }
}

/// A family a session negotiates: "ipv4" or "ipv6" (unicast).
pub use control_proto::FamilyName;

/// The unicast family a [`FamilyName`] names.
pub fn unicast_family(name: FamilyName) -> bgp_proto::Family {
    match name {
        FamilyName::Ipv4 => bgp_proto::Family::IPV4_UNICAST,
        FamilyName::Ipv6 => bgp_proto::Family::IPV6_UNICAST,
    }
}

/// An RFC 1997 community written "ASN:VALUE" (two 16-bit numbers) or one of the
/// well-known names (no-export, no-advertise, no-export-subconfed, graceful-shutdown,
/// blackhole).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommunityValue(pub u32);

impl FromStr for CommunityValue {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let named = match text {
            "no-export" => Some(0xFFFF_FF01),
            "no-advertise" => Some(0xFFFF_FF02),
            "no-export-subconfed" => Some(0xFFFF_FF03),
            "graceful-shutdown" => Some(0xFFFF_0000),
            "blackhole" => Some(0xFFFF_029A),
            _ => None,
        };
        if let Some(value) = named {
            return Ok(CommunityValue(value));
        }
        let bad = || format!("community {text:?} is not ASN:VALUE with two numbers up to 65535");
        let (high, low) = text.split_once(':').ok_or_else(bad)?;
        let high: u16 = high.parse().map_err(|_| bad())?;
        let low: u16 = low.parse().map_err(|_| bad())?;
        Ok(CommunityValue((u32::from(high) << 16) | u32::from(low)))
    }
}

impl fmt::Display for CommunityValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xFFFF)
    }
}

impl<'de> Deserialize<'de> for CommunityValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Permission bits of a file: `0o660` (a TOML octal integer) or `"0660"` (a string of
/// octal digits). At most 0o777; a decimal integer such as 660 is refused, since it
/// would mean 0o1224.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileMode(u32);

impl FileMode {
    pub const DEFAULT: FileMode = FileMode(0o660);
    pub fn new(bits: u32) -> Option<FileMode> {
        (bits <= 0o777).then_some(FileMode(bits))
    }
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl Default for FileMode {
    fn default() -> Self {
        FileMode::DEFAULT
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0{:o}", self.0)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        let hint = "mode must be permission bits such as 0o660 or \"0660\" (octal, at most 0777)";
        let bits = match Raw::deserialize(deserializer).map_err(|_| de::Error::custom(hint))? {
            Raw::Number(bits) => bits,
            Raw::Text(text) => {
                let digits = text.strip_prefix("0o").unwrap_or(&text);
                u32::from_str_radix(digits, 8).map_err(|_| de::Error::custom(hint))?
            }
        };
        FileMode::new(bits).ok_or_else(|| de::Error::custom(hint))
    }
}

/// A network interface name as the kernel takes it: 1 to 15 octets, without '/',
/// ':', whitespace or NUL (IFNAMSIZ and dev_valid_name in Linux).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceName(String);

impl InterfaceName {
    pub fn new(name: &str) -> Option<InterfaceName> {
        let valid = (1..=15).contains(&name.len())
            && name != "."
            && name != ".."
            && !name
                .chars()
                .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace());
        valid.then(|| InterfaceName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for InterfaceName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        InterfaceName::new(&name).ok_or_else(|| {
            de::Error::custom(format!(
                "{name:?} is not an interface name (1 to 15 characters, no '/', ':' or spaces)"
            ))
        })
    }
}
