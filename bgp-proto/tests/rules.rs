#![allow(clippy::unwrap_used)]
//! The RFC 7606 / RFC 4271 rule table (data/rules.txt, shared with bgpctl's test):
//! every row's message decodes to the expected action and NOTIFICATION.

use bgp_proto::*;

const RULES: &str = include_str!("data/rules.txt");

struct Row {
    rule: String,
    context: String,
    action: String,
    notification: String,
    hex: String,
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for block in RULES.split("\n\n") {
        let field = |key: &str| {
            block
                .lines()
                .find_map(|line| {
                    line.strip_prefix(key)
                        .and_then(|rest| rest.strip_prefix(": "))
                })
                .map(str::to_owned)
        };
        let Some(rule) = field("rule") else { continue };
        rows.push(Row {
            rule,
            context: field("context").unwrap(),
            action: field("action").unwrap(),
            notification: field("notification").unwrap(),
            hex: field("hex").unwrap(),
        });
    }
    rows
}

/// The row's context, with bgpctl's defaults (extended next hop accepted for IPv4).
fn context(flags: &str) -> SessionContext {
    let mut ctx = SessionContext {
        extended_next_hop: [Family::IPV4_UNICAST].into_iter().collect(),
        ..SessionContext::default()
    };
    for flag in flags.split_whitespace().filter(|flag| *flag != "-") {
        match flag.split_once('=') {
            Some(("add-path", families)) => {
                for family in families.split(',') {
                    ctx.add_path_receive.insert(Family::parse(family).unwrap());
                }
            }
            Some(("first-as", asn)) => ctx.first_as = Some(asn.parse().unwrap()),
            _ => match flag {
                "ibgp" => ctx.ibgp = true,
                "as2" => ctx.four_octet_as = false,
                "extended-message" => ctx.extended_message = true,
                "no-extended-next-hop" => ctx.extended_next_hop = FamilySet::EMPTY,
                other => panic!("unknown context flag {other}"),
            },
        }
    }
    ctx
}

#[test]
fn every_rule_row_gets_its_action_and_notification() {
    let rows = rows();
    assert!(rows.len() >= 80, "only {} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let bytes = hex::decode(row.hex.replace(' ', "")).unwrap();
        let (action, notification, errors) = match decode_message(&bytes, &context(&row.context)) {
            Ok(decoded) => (decoded.action, "-".to_owned(), decoded.errors),
            Err(malformed) => {
                let n = &malformed.notification;
                (
                    Action::SessionReset,
                    format!("{}/{}", n.code, n.subcode),
                    malformed.errors,
                )
            }
        };
        if action.name() != row.action || notification != row.notification {
            failures.push(format!(
                "{}: got {} {}, expected {} {}; errors: {}",
                row.rule,
                action,
                notification,
                row.action,
                row.notification,
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        // Every problem has a readable reason, and only well-formed rows have none.
        assert_eq!(
            errors.is_empty(),
            row.action == "none",
            "{}: {errors:?}",
            row.rule
        );
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
