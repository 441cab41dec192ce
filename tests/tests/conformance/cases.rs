//! The conformance table's rows: cases, the outcomes they expect, the checks on
//! accepted routes, read from `tests/data/conformance.txt` and bgp-proto's rules.

#[allow(clippy::wildcard_imports)]
use super::*;

/// One row of the table.
pub struct Case {
    pub line: usize,
    pub name: String,
    pub bytes: Vec<u8>,
    pub kind: Kind,
    pub on_open: bool,
    pub expect: Expect,
    pub checks: Vec<Check>,
    /// Checks on the accepted route as bgpd sends it on to an eBGP neighbor.
    pub exported: Vec<Check>,
    pub skip: Option<String>,
}

/// The kind of session a case needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ebgp,
    EbgpAs2,
    Ibgp,
    EbgpGr,
    Ebgp4200000001,
    EbgpMax,
    EbgpNoFirstAs,
    EbgpMaxFamily,
    EbgpGrN,
    EbgpMaxGrN,
}

impl Kind {
    pub fn parse(text: &str) -> Kind {
        match text {
            "ebgp" => Kind::Ebgp,
            "ebgp-as2" => Kind::EbgpAs2,
            "ibgp" => Kind::Ibgp,
            "ebgp-gr" => Kind::EbgpGr,
            "ebgp-4200000001" => Kind::Ebgp4200000001,
            "ebgp-max" => Kind::EbgpMax,
            "ebgp-no-first-as" => Kind::EbgpNoFirstAs,
            "ebgp-max-family" => Kind::EbgpMaxFamily,
            "ebgp-gr-n" => Kind::EbgpGrN,
            "ebgp-max-gr-n" => Kind::EbgpMaxGrN,
            other => panic!("unknown session kind {other:?}"),
        }
    }

    /// The listen range (10.66.R.0/24) whose AS and settings fit.
    pub fn range(self) -> u8 {
        match self {
            Kind::Ebgp | Kind::EbgpAs2 | Kind::EbgpGr | Kind::EbgpGrN => 1,
            Kind::Ibgp => 2,
            Kind::Ebgp4200000001 => 3,
            Kind::EbgpMax | Kind::EbgpMaxGrN => 4,
            Kind::EbgpNoFirstAs => 5,
            Kind::EbgpMaxFamily => 6,
        }
    }

    pub fn asn(self) -> u32 {
        match self {
            Kind::Ibgp => 64512,
            Kind::Ebgp4200000001 => 4_200_000_001,
            _ => 65001,
        }
    }

    pub fn open(self, router_id: Ipv4Addr) -> Vec<u8> {
        // Graceful restart, with RFC 8538's N bit (0x4) or without.
        let flags = match self {
            Kind::EbgpGr => Some(0),
            Kind::EbgpGrN | Kind::EbgpMaxGrN => Some(0x4),
            _ => None,
        };
        let graceful_restart = flags
            .map(|flags| {
                wire::capability::graceful_restart(flags, 120, &[(1, 1, 0x80), (2, 1, 0x80)])
            })
            .into_iter()
            .collect::<Vec<_>>();
        wire::open(
            self.asn(),
            90,
            router_id,
            &[(1, 1), (2, 1)],
            self == Kind::EbgpAs2,
            &graceful_restart,
        )
    }

    /// Well-formed attributes for the victims and sentinels.
    pub fn attributes(self, med: Option<u32>) -> Attributes {
        let mut attributes = Attributes::from_as(self.asn());
        attributes.four_octet = self != Kind::EbgpAs2;
        attributes.med = med;
        if self == Kind::Ibgp {
            attributes.as_path.clear();
            attributes.local_pref = Some(100);
        }
        attributes
    }
}

/// An address family of the victims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fam {
    V4,
    V6,
}

impl Fam {
    pub fn parse(text: &str) -> Fam {
        match text {
            "v4" => Fam::V4,
            "v6" => Fam::V6,
            other => panic!("unknown family {other:?}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fam::V4 => "v4",
            Fam::V6 => "v6",
        }
    }

    pub fn other(self) -> Fam {
        match self {
            Fam::V4 => Fam::V6,
            Fam::V6 => Fam::V4,
        }
    }
}

/// An outcome, expected or observed, in the table's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Withdrawn(Vec<Fam>),
    Accepted(Fam, Option<Box<RibRoute>>),
    Disabled(Fam),
    /// `kept`: the victims stayed (stale, graceful restart) instead of going.
    Reset {
        code: u8,
        subcode: u8,
        data: Option<Vec<u8>>,
        kept: bool,
    },
    Closed {
        kept: bool,
    },
    Established,
    Refused {
        code: u8,
        subcode: u8,
        data: Option<Vec<u8>>,
    },
    /// Anything else, described.
    Other(String),
}

pub type Expect = Outcome;

impl Outcome {
    pub fn parse(text: &str) -> Outcome {
        let mut words: Vec<&str> = text.split_whitespace().collect();
        let kept = words.last() == Some(&"kept");
        if kept {
            words.pop();
        }
        let notification = |words: &[&str]| {
            let (code, subcode) = words[1].split_once('/').expect("C/S");
            let data = words
                .get(2)
                .and_then(|w| w.strip_prefix("data="))
                .map(|hex| wire::parse_hex(hex).unwrap());
            (code.parse().unwrap(), subcode.parse().unwrap(), data)
        };
        match words[0] {
            "unchanged" => Outcome::Unchanged,
            "withdrawn" => Outcome::Withdrawn(words[1..].iter().map(|w| Fam::parse(w)).collect()),
            "accepted" => Outcome::Accepted(Fam::parse(words[1]), None),
            "disabled" => Outcome::Disabled(Fam::parse(words[1])),
            "closed" => Outcome::Closed { kept },
            "established" => Outcome::Established,
            "reset" => {
                let (code, subcode, data) = notification(&words);
                Outcome::Reset {
                    code,
                    subcode,
                    data,
                    kept,
                }
            }
            "refused" => {
                let (code, subcode, data) = notification(&words);
                Outcome::Refused {
                    code,
                    subcode,
                    data,
                }
            }
            other => panic!("unknown outcome {other:?}"),
        }
    }

    /// The victims are expected to stay after the session ends.
    pub fn kept(&self) -> bool {
        matches!(
            self,
            Outcome::Reset { kept: true, .. } | Outcome::Closed { kept: true }
        )
    }

    /// Whether `observed` is this expectation: the same words; the NOTIFICATION data
    /// only when the expectation names it; the accepted route's checks elsewhere.
    pub fn matches(&self, observed: &Outcome) -> bool {
        match (self, observed) {
            (Outcome::Accepted(a, _), Outcome::Accepted(b, _)) => a == b,
            (
                Outcome::Reset {
                    code,
                    subcode,
                    data,
                    kept,
                },
                Outcome::Reset {
                    code: c,
                    subcode: s,
                    data: d,
                    kept: k,
                },
            ) => code == c && subcode == s && (data.is_none() || data == d) && kept == k,
            (
                Outcome::Refused {
                    code,
                    subcode,
                    data,
                },
                Outcome::Refused {
                    code: c,
                    subcode: s,
                    data: d,
                },
            ) => code == c && subcode == s && (data.is_none() || data == d),
            (expected, observed) => expected == observed,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let notification =
            |f: &mut std::fmt::Formatter<'_>, word, code, subcode, data: &Option<Vec<u8>>| {
                write!(f, "{word} {code}/{subcode}")?;
                match data {
                    Some(data) if !data.is_empty() => write!(f, " data={}", hex::encode(data)),
                    _ => Ok(()),
                }
            };
        match self {
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Withdrawn(families) => {
                f.write_str("withdrawn")?;
                for family in families {
                    write!(f, " {}", family.name())?;
                }
                Ok(())
            }
            Outcome::Accepted(family, route) => {
                write!(f, "accepted {}", family.name())?;
                if let Some(route) = route {
                    write!(
                        f,
                        " (as_path {:?}, origin {}, local_pref {:?}, med {:?}, communities {:?})",
                        route.as_path, route.origin, route.local_pref, route.med, route.communities
                    )?;
                }
                Ok(())
            }
            Outcome::Disabled(family) => write!(f, "disabled {}", family.name()),
            Outcome::Reset {
                code,
                subcode,
                data,
                kept,
            } => {
                notification(f, "reset", code, subcode, data)?;
                if *kept {
                    f.write_str(" kept")?;
                }
                Ok(())
            }
            Outcome::Closed { kept } => f.write_str(if *kept { "closed kept" } else { "closed" }),
            Outcome::Established => f.write_str("established"),
            Outcome::Refused {
                code,
                subcode,
                data,
            } => notification(f, "refused", code, subcode, data),
            Outcome::Other(text) => f.write_str(text),
        }
    }
}

/// A check on the accepted route: `key=value` or `key!=value`.
pub struct Check {
    pub key: String,
    pub value: String,
    pub equal: bool,
}

impl Check {
    pub fn parse(text: &str) -> Check {
        let (key, value, equal) = match text.split_once("!=") {
            Some((key, value)) => (key, value, false),
            None => {
                let (key, value) = text.split_once('=').expect("key=value");
                (key, value, true)
            }
        };
        Check {
            key: key.to_owned(),
            value: value.to_owned(),
            equal,
        }
    }

    /// The failure, if the attributes bgpd sent do not pass (`as_path`, or
    /// `extended_communities` as 16 hex digits each).
    pub fn exported_failure(&self, sent: &bgp_proto::PathAttributes) -> Option<String> {
        let actual = match self.key.as_str() {
            "as_path" => sent
                .as_path
                .as_ref()
                .map_or(String::new(), |path| path.to_string().replace(' ', ",")),
            "extended_communities" => sent
                .extended_communities
                .iter()
                .map(|community| hex::encode(community.0))
                .collect::<Vec<_>>()
                .join(","),
            other => panic!("unknown exported check {other:?}"),
        };
        self.judge(actual)
    }

    /// The failure, if the route does not pass.
    pub fn failure(&self, route: &RibRoute) -> Option<String> {
        let join = |values: Vec<String>| values.join(",");
        let actual = match self.key.as_str() {
            "local_pref" => route.local_pref.map_or("-".into(), |v| v.to_string()),
            "med" => route.med.map_or("-".into(), |v| v.to_string()),
            "origin" => route.origin.clone(),
            "as_path" => join(route.as_path.iter().map(ToString::to_string).collect()),
            "communities" => join(route.communities.clone()),
            other => panic!("unknown route check {other:?}"),
        };
        self.judge(actual)
    }

    pub fn judge(&self, actual: String) -> Option<String> {
        ((actual == self.value) != self.equal).then(|| {
            format!(
                "{} is {actual}, expected {}{}",
                self.key,
                if self.equal { "" } else { "not " },
                self.value
            )
        })
    }
}

/// Reads the table, takes the bytes of `rule:` rows from bgp-proto's rules.txt and
/// checks that every rules.txt row is in the table.
pub fn load_cases() -> Vec<Case> {
    let rules_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bgp-proto/tests/data/rules.txt"
    );
    let rules_text = std::fs::read_to_string(rules_path).unwrap();
    let rules: BTreeMap<String, Vec<u8>> = table::parse(&rules_text, "rules.txt")
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.require("rules.txt", "rule").unwrap().to_owned(),
                wire::parse_hex(row.require("rules.txt", "hex").unwrap()).unwrap(),
            )
        })
        .collect();
    let file = "conformance.txt";
    let text = include_str!("../../data/conformance.txt");
    let rows = table::parse(text, file).unwrap();
    let mut cases = Vec::new();
    let mut covered = Vec::new();
    for row in &rows {
        let case = case(row, &rules, file);
        if row.get("rule").is_some() {
            covered.push(case.name.clone());
        }
        cases.push(case);
    }
    let missing: Vec<&String> = rules
        .keys()
        .filter(|name| !covered.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "rules.txt rows missing from {file} (add each with an expect or a skip): {missing:?}"
    );
    cases
}

pub fn case(row: &Row, rules: &BTreeMap<String, Vec<u8>>, file: &str) -> Case {
    let at = |detail: &str| format!("{file}:{}: {detail}", row.line);
    let (name, bytes) = if let Some(rule) = row.get("rule") {
        let bytes = rules
            .get(rule)
            .unwrap_or_else(|| panic!("{}", at(&format!("no rules.txt row {rule:?}"))));
        (rule.to_owned(), bytes.clone())
    } else {
        let name = row.require(file, "case").unwrap().to_owned();
        let hex = |key: &str| row.get(key).map(|h| wire::parse_hex(h).unwrap());
        let bytes = if let Some(bytes) = hex("hex") {
            bytes
        } else if let Some(message) = hex("message") {
            let (kind, body) = message.split_first().expect("message: TYPE BODY");
            wire::message(*kind, body)
        } else {
            wire::update(
                &hex("withdrawn").unwrap_or_default(),
                &hex("attributes").unwrap_or_default(),
                &hex("nlri").unwrap_or_default(),
            )
        };
        (name, bytes)
    };
    let skip = row.get("skip").map(str::to_owned);
    let expect = match (&skip, row.get("expect")) {
        (Some(_), _) => Outcome::Other("-".into()),
        (None, Some(expect)) => Outcome::parse(expect),
        (None, None) => panic!("{}", at("no expect")),
    };
    Case {
        line: row.line,
        name,
        bytes,
        kind: Kind::parse(row.get("session").unwrap_or("ebgp")),
        on_open: match row.get("on").unwrap_or("established") {
            "established" => false,
            "open" => true,
            other => panic!("{}", at(&format!("unknown `on: {other}`"))),
        },
        expect,
        checks: row
            .get("route")
            .map(|r| r.split_whitespace().map(Check::parse).collect())
            .unwrap_or_default(),
        exported: row
            .get("exported")
            .map(|r| r.split_whitespace().map(Check::parse).collect())
            .unwrap_or_default(),
        skip,
    }
}
