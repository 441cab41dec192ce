#![allow(clippy::unwrap_used)]
//! `bgpctl decode` against every row of bgp-proto's rule table
//! (bgp-proto/tests/data/rules.txt): exit status, JSON `action` and `notification`;
//! then the input forms (file, stdin, colons, no marker) and unusable input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const RULES: &str = include_str!("../../bgp-proto/tests/data/rules.txt");
const KEEPALIVE: &str = "ffffffffffffffffffffffffffffffff001304";

fn bgpctl(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bgpctl"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// bgpctl flags for a row's context field.
fn flags(context: &str) -> Vec<String> {
    let mut flags = Vec::new();
    for flag in context.split_whitespace().filter(|flag| *flag != "-") {
        match flag.split_once('=') {
            Some(("add-path", families)) => {
                flags.push("--add-path".to_owned());
                flags.push(families.to_owned());
            }
            _ => flags.push(format!("--{flag}")),
        }
    }
    flags
}

#[test]
fn every_rule_row() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for block in RULES.split("\n\n") {
        let field = |key: &str| {
            block.lines().find_map(|line| {
                line.strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix(": "))
            })
        };
        let Some(rule) = field("rule") else { continue };
        let (context, action, notification, hex) = (
            field("context").unwrap(),
            field("action").unwrap(),
            field("notification").unwrap(),
            field("hex").unwrap(),
        );
        let mut args = vec!["decode".to_owned()];
        args.extend(flags(context));
        args.push(hex.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = bgpctl(&args, None);
        let lines = json_lines(&output);
        let expected_status = if action == "none" { 0 } else { 1 };
        let got_notification = match &lines.first().map(|line| &line["notification"]) {
            Some(Value::Null) => "-".to_owned(),
            Some(n) => format!("{}/{}", n["code"], n["subcode"]),
            None => "missing".to_owned(),
        };
        let got_action = lines
            .first()
            .map(|line| line["action"].as_str().unwrap_or("").to_owned());
        if output.status.code() != Some(expected_status)
            || lines.len() != 1
            || got_action.as_deref() != Some(action)
            || got_notification != notification
        {
            failures.push(format!(
                "{rule}: status {:?} action {got_action:?} notification {got_notification}, expected {expected_status} {action} {notification}; stderr {}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        if action != "none" {
            assert!(
                !lines[0]["errors"].as_array().unwrap().is_empty(),
                "{rule}: no error text"
            );
        }
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} rows");
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn input_forms() {
    // Wireshark-style colons, and the marker left out.
    let colons = "ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:00:13:04";
    for input in [colons, "0013 04", KEEPALIVE] {
        let output = bgpctl(&["decode", input], None);
        assert_eq!(output.status.code(), Some(0), "{input}");
        assert_eq!(json_lines(&output)[0]["type"], "keepalive");
    }
    // Spaces split into several arguments are one message.
    let output = bgpctl(
        &[
            "decode",
            "ffffffffffffffff",
            "ffffffffffffffff",
            "0013",
            "04",
        ],
        None,
    );
    assert_eq!(json_lines(&output)[0]["type"], "keepalive");

    // A file with comments, blank lines and two messages on one line.
    let dir = std::env::temp_dir().join(format!("bgpctl-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("messages.txt");
    let shutdown = "ffffffffffffffffffffffffffffffff 001a 03 0602 04 62796521";
    std::fs::write(
        &file,
        format!("# from a log\n{KEEPALIVE}\n\n{shutdown}{KEEPALIVE}\n"),
    )
    .unwrap();
    let output = bgpctl(&["decode", "--file", file.to_str().unwrap()], None);
    let lines = json_lines(&output);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["shutdown_communication"], "bye!");
    std::fs::remove_dir_all(&dir).unwrap();

    // RFC 8538: a Hard Reset names the NOTIFICATION it stands for.
    let output = bgpctl(
        &[
            "decode",
            "ffffffffffffffffffffffffffffffff 001c 03 0609 0602 04 62796521",
        ],
        None,
    );
    let hard = &json_lines(&output)[0];
    assert_eq!(hard["name"], "Cease / Hard Reset");
    assert_eq!(
        hard["hard_reset_of"],
        "6/2 (Cease / Administrative Shutdown): \"bye!\""
    );

    // Stdin, with one malformed message: exit 1.
    let bad_origin = "ffffffffffffffffffffffffffffffff 002f 02 0000 0014 400101 03 400206 0201 0000fde9 400304 c0000201 18 c63364";
    let output = bgpctl(
        &["decode", "-"],
        Some(&format!("{KEEPALIVE}\n{bad_origin}\n")),
    );
    let lines = json_lines(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(lines[1]["action"], "treat-as-withdraw");
    assert!(lines[1]["errors"][0].as_str().unwrap().contains("ORIGIN"));
}

#[test]
fn unusable_input_exits_2_with_one_line() {
    for args in [
        vec!["decode", "not-hex"],
        vec!["decode", "fff"],
        vec!["decode"],
        vec!["decode", "--file", "/nonexistent/x"],
    ] {
        let output = bgpctl(&args, None);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("bgpctl decode: "), "{stderr}");
    }
    let output = bgpctl(&["decode", "-"], Some(&format!("{KEEPALIVE}\nxyz\n")));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("stdin line 2"));
    assert_eq!(json_lines(&output).len(), 1);
}
