//! `bgpctl decode`: BGP messages from hex dumps to JSON.
//!
//! Input is hex as FRR, BIRD and Wireshark print it: plain, or with spaces, tabs or
//! colons between bytes, with or without the 16-octet marker (it is put back when the
//! length field then matches). One message per argument list or per line of a file
//! (`-` is stdin); a line holding several messages back to back yields one object each.
//! Blank lines and lines starting with `#` are skipped.
//!
//! Each message prints as one JSON line: `type`, the decoded fields (see bgp-proto's
//! serde output), `action` (`none`, `attribute-discard`, `treat-as-withdraw`,
//! `afi-safi-disable`, `session-reset`), `notification` (`{code, subcode, ...}` when the
//! session would be reset, else null) and `errors` (one sentence per problem).
//!
//! The session context is what the flags say (eBGP, 4-octet AS, no add-path and no
//! extended message by default); an IPv6 next hop for IPv4 (RFC 8950) is accepted
//! unless `--no-extended-next-hop`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use bgp_proto::{Action, Family, FamilySet, Message, SessionContext, decode_message};
use serde_json::{Map, Value, json};

/// Arguments of `bgpctl decode`.
#[derive(Debug, Clone, clap::Args)]
pub struct DecodeArgs {
    /// The peer is internal (iBGP): LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST are kept.
    #[arg(long)]
    pub ibgp: bool,
    /// The session uses 2-octet AS numbers (no 4-octet AS capability on one side).
    #[arg(long)]
    pub as2: bool,
    /// Families received with add-path path ids, e.g. `ipv4,ipv6`.
    #[arg(long, value_name = "FAMILIES", value_delimiter = ',', value_parser = parse_family)]
    pub add_path: Vec<Family>,
    /// The extended message capability was negotiated (UPDATEs up to 65535 octets).
    #[arg(long)]
    pub extended_message: bool,
    /// Refuse IPv6 next hops for IPv4 NLRI (RFC 8950 not negotiated).
    #[arg(long)]
    pub no_extended_next_hop: bool,
    /// Routes whose AS_PATH does not start with ASN are treat-as-withdraw (an eBGP
    /// neighbor's `enforce_first_as`).
    #[arg(long, value_name = "ASN")]
    pub first_as: Option<u32>,
    /// Read one hex message per line from FILE (`-` for stdin).
    #[arg(long, short, value_name = "FILE", conflicts_with = "hex")]
    pub file: Option<String>,
    /// Print indented JSON.
    #[arg(long)]
    pub pretty: bool,
    /// The message in hex (spaces and colons allowed); `-` reads lines from stdin.
    #[arg(value_name = "HEX")]
    pub hex: Vec<String>,
}

impl DecodeArgs {
    /// The session context the flags describe.
    pub fn context(&self) -> SessionContext {
        let extended_next_hop = if self.no_extended_next_hop {
            FamilySet::EMPTY
        } else {
            [Family::IPV4_UNICAST, Family::IPV4_MULTICAST]
                .into_iter()
                .collect()
        };
        SessionContext {
            four_octet_as: !self.as2,
            ibgp: self.ibgp,
            extended_message: self.extended_message,
            add_path_receive: self.add_path.iter().copied().collect(),
            add_path_send: self.add_path.iter().copied().collect(),
            extended_next_hop,
            first_as: self.first_as,
            ..SessionContext::default()
        }
    }
}

fn parse_family(text: &str) -> Result<Family, String> {
    let family = Family::parse(text).ok_or_else(|| format!("unknown family {text:?}"))?;
    if !family.is_ip() {
        return Err(format!(
            "add-path applies to IP families only, not {family}"
        ));
    }
    Ok(family)
}

/// Why the input cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Not hex.
    #[error("{place}: not hex: {reason}")]
    NotHex {
        /// Where (argument, or file and line).
        place: String,
        /// What is wrong.
        reason: String,
    },
    /// No input given.
    #[error("no input: give HEX, --file FILE, or - for stdin")]
    Empty,
    /// The file cannot be read.
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
}

/// Runs `bgpctl decode`: prints JSON lines to stdout, a one-line error to stderr for
/// unusable input. Exit status 0 (all well-formed), 1 (an action applies), 2 (bad input).
pub fn run(args: &DecodeArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match decode_input(args, &mut out) {
        Ok(true) => ExitCode::from(1),
        Ok(false) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = out.flush();
            let _ = writeln!(std::io::stderr(), "bgpctl decode: {error}");
            ExitCode::from(2)
        }
    }
}

/// Decodes every message of the input, writing one JSON line each; returns whether any
/// message calls for an action.
pub fn decode_input(args: &DecodeArgs, out: &mut impl Write) -> Result<bool, InputError> {
    let ctx = args.context();
    let mut any_action = false;
    let mut emit = |bytes: &[u8]| -> Result<(), InputError> {
        for value in decode_all(bytes, &ctx) {
            any_action |= value.get("action").and_then(Value::as_str) != Some("none");
            let text = if args.pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            };
            // Serializing a Value cannot fail; a closed stdout is not worth a panic.
            let _ = writeln!(out, "{}", text.unwrap_or_default());
        }
        Ok(())
    };
    let stdin_wanted = args.file.as_deref() == Some("-") || args.hex == ["-"];
    if stdin_wanted {
        let stdin = std::io::stdin();
        for_each_line("stdin", stdin.lock(), &mut emit)?;
    } else if let Some(path) = &args.file {
        let file = std::fs::File::open(path).map_err(|e| InputError::Read(path.clone(), e))?;
        for_each_line(path, std::io::BufReader::new(file), &mut emit)?;
    } else if args.hex.is_empty() {
        return Err(InputError::Empty);
    } else {
        let bytes = parse_hex(&args.hex.join(" ")).map_err(|reason| InputError::NotHex {
            place: "argument".to_owned(),
            reason,
        })?;
        emit(&bytes)?;
    }
    Ok(any_action)
}

fn for_each_line(
    name: &str,
    reader: impl BufRead,
    emit: &mut impl FnMut(&[u8]) -> Result<(), InputError>,
) -> Result<(), InputError> {
    for (number, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| InputError::Read(name.to_owned(), e))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bytes = parse_hex(line).map_err(|reason| InputError::NotHex {
            place: format!("{name} line {}", number + 1),
            reason,
        })?;
        emit(&bytes)?;
    }
    Ok(())
}

/// Hex with optional spaces, tabs and colons between bytes (and an optional `0x`).
/// Without the 16-octet marker, the marker is put back when the length field then
/// matches the input.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if digits.is_empty() {
        return Err("empty".to_owned());
    }
    if let Some((at, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!("character {c:?} at position {}", at + 1));
    }
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    let bytes = hex::decode(&digits).map_err(|e| e.to_string())?;
    let without_marker = bytes.len() >= 3
        && bytes.get(..16) != Some(&[0xff; 16][..])
        && usize::from(u16::from_be_bytes([bytes[0], bytes[1]])) == bytes.len() + 16;
    if without_marker {
        let mut full = vec![0xff; 16];
        full.extend_from_slice(&bytes);
        return Ok(full);
    }
    Ok(bytes)
}

/// Decodes the messages in `bytes` (several when they are back to back).
pub fn decode_all(bytes: &[u8], ctx: &SessionContext) -> Vec<Value> {
    let mut values = Vec::new();
    let mut rest = bytes;
    loop {
        let whole = rest.len() >= 19 && rest[..16] == [0xff; 16];
        let length = if whole {
            usize::from(u16::from_be_bytes([rest[16], rest[17]]))
        } else {
            0
        };
        let (frame, tail) = if whole && (19..rest.len()).contains(&length) {
            rest.split_at(length)
        } else {
            (rest, &[][..])
        };
        values.push(decode_one(frame, ctx));
        if tail.is_empty() {
            return values;
        }
        rest = tail;
    }
}

/// One message as a JSON object.
pub fn decode_one(frame: &[u8], ctx: &SessionContext) -> Value {
    match decode_message(frame, ctx) {
        Ok(decoded) => {
            let mut object = match serde_json::to_value(&decoded.message) {
                Ok(Value::Object(object)) => object,
                _ => Map::new(),
            };
            describe(&decoded.message, &mut object);
            object.insert("length".into(), json!(frame.len()));
            object.insert("action".into(), json!(decoded.action.name()));
            object.insert("notification".into(), Value::Null);
            let families: Vec<String> =
                decoded.disabled_families().map(|f| f.to_string()).collect();
            if !families.is_empty() {
                object.insert("disabled_families".into(), json!(families));
            }
            object.insert("errors".into(), errors(&decoded.errors));
            Value::Object(object)
        }
        Err(malformed) => {
            let n = &malformed.notification;
            json!({
                "type": type_name(malformed.message_type),
                "length": frame.len(),
                "action": Action::SessionReset.name(),
                "notification": {
                    "code": n.code,
                    "subcode": n.subcode,
                    "name": format!("{} / {}", n.code_name(), n.subcode_name()),
                    "data": hex::encode(&n.data),
                },
                "errors": errors(&malformed.errors),
            })
        }
    }
}

fn errors(errors: &[bgp_proto::DecodeError]) -> Value {
    Value::Array(
        errors
            .iter()
            .map(|error| Value::String(error.to_string()))
            .collect(),
    )
}

fn type_name(code: u8) -> String {
    match code {
        1 => "open".into(),
        2 => "update".into(),
        3 => "notification".into(),
        4 => "keepalive".into(),
        5 => "route-refresh".into(),
        other => format!("unknown-{other}"),
    }
}

/// Readable extras: names of NOTIFICATION codes, the shutdown communication, End-of-RIB.
fn describe(message: &Message, object: &mut Map<String, Value>) {
    match message {
        Message::Notification(notification) => {
            let name = format!(
                "{} / {}",
                notification.code_name(),
                notification.subcode_name()
            );
            object.insert("name".into(), json!(name));
            // RFC 8538: the NOTIFICATION a Hard Reset stands for.
            if let Some(inner) = notification.hard_reset_inner() {
                object.insert("hard_reset_of".into(), json!(inner.to_string()));
            }
            match notification.shutdown_communication() {
                Some(Ok(text)) => object.insert("shutdown_communication".into(), json!(text)),
                Some(Err(error)) => object.insert(
                    "shutdown_communication_error".into(),
                    json!(error.to_string()),
                ),
                None => None,
            };
        }
        Message::Update(update) => {
            if let Some(family) = update.end_of_rib_family() {
                object.insert("end_of_rib".into(), json!(family.to_string()));
            }
        }
        Message::Open(open) => {
            object.insert("asn".into(), json!(open.asn()));
        }
        Message::Keepalive | Message::RouteRefresh(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms() {
        let keepalive = vec![0xff; 16]
            .into_iter()
            .chain([0, 19, 4])
            .collect::<Vec<_>>();
        assert_eq!(
            parse_hex(&format!("{}001304", "ff".repeat(16))),
            Ok(keepalive.clone())
        );
        assert_eq!(parse_hex("0013 04"), Ok(keepalive.clone()));
        let colons = keepalive
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_hex(&colons), Ok(keepalive));
        assert!(parse_hex("ffzz").is_err());
        assert!(parse_hex("fff").is_err());
        assert!(parse_hex("  ").is_err());
    }
}
