//! bgpd's metrics listener seen from a test: an HTTP/1.1 `GET` from inside a namespace
//! (a plain `TcpStream`, `Connection: close`), `promtool check metrics` on a text
//! scrape, the OpenMetrics answer run through Python `prometheus_client`'s OpenMetrics
//! parser, and the samples of a text scrape by name and labels to compare with what
//! bgpctl says.
//!
//! The checkers are the ones CI installs: Debian's `prometheus` package (`promtool`,
//! [`Prereq::Promtool`](crate::Prereq::Promtool)) and `python3-prometheus-client` run
//! with Debian's `/usr/bin/python3` ([`PYTHON`],
//! [`Prereq::OpenMetricsParser`](crate::Prereq::OpenMetricsParser)).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns::Netns;

pub use crate::prereq::PYTHON;

/// The `Accept` header a Prometheus server sends first.
pub const ACCEPT_OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Longest a request may take (connect, send, answer).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of an answer read at most.
const MAX_ANSWER: u64 = 64 << 20;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Answer {
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get("content-type").map(String::as_str)
    }
}

/// `GET path` from `address` inside `netns`, with `Accept: accept` when given.
pub fn get(netns: &Netns, address: SocketAddr, path: &str, accept: Option<&str>) -> Result<Answer> {
    let what = format!("GET http://{address}{path} in {}", netns.name());
    netns
        .enter(|| request(address, path, accept))?
        .map_err(|detail| Error::invalid(what, detail))
}

/// `GET path` from `address` in this thread's namespace.
pub fn request(
    address: SocketAddr,
    path: &str,
    accept: Option<&str>,
) -> std::result::Result<Answer, String> {
    let mut stream =
        TcpStream::connect_timeout(&address, HTTP_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(HTTP_TIMEOUT)))
        .map_err(|e| format!("socket timeouts: {e}"))?;
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(accept) = accept {
        head.push_str(&format!("Accept: {accept}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading the answer: {e}"))?;
    parse_answer(&raw)
}

/// An HTTP/1.1 answer read to the connection's end (`Content-Length` or chunked).
fn parse_answer(raw: &[u8]) -> std::result::Result<Answer, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of the header in the answer")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "a header is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status in {status_line:?}"))?;
    let mut headers = BTreeMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let rest = &raw[split + 4..];
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else if let Some(length) = headers.get("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("Content-Length {length:?}"))?;
        rest.get(..length)
            .ok_or_else(|| format!("the body is shorter than Content-Length {length}"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    let body = String::from_utf8(body).map_err(|_| "the body is not UTF-8")?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk without its size line")?;
        let size = std::str::from_utf8(&rest[..end]).map_err(|_| "a chunk size is not UTF-8")?;
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| format!("chunk size {size:?}"))?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or("a chunk cut short")?);
        rest = rest.get(size + 2..).ok_or("a chunk without its end")?;
    }
}

/// `promtool check metrics` on a text-format scrape: `Err` with promtool's output
/// when it exits non-zero or prints any problem.
pub fn promtool_check(text: &str) -> Result<()> {
    let (status, output) =
        run_with_input(Command::new("promtool").args(["check", "metrics"]), text)?;
    if status != Some(0) || !output.trim().is_empty() {
        return Err(Error::invalid(
            "promtool check metrics",
            format!("exit status {status:?}: {}", output.trim()),
        ));
    }
    Ok(())
}

/// A text-format scrape of `/metrics` at `address` in `netns`, checked by promtool, as
/// samples; `Err` says which status or what promtool found, with the scrape.
pub fn checked_scrape(netns: &Netns, address: SocketAddr) -> Result<Samples> {
    let answer = get(netns, address, "/metrics", None)?;
    let what = || format!("the scrape of http://{address}/metrics in {}", netns.name());
    if answer.status != 200 {
        return Err(Error::invalid(
            what(),
            format!("status {}: {}", answer.status, answer.body),
        ));
    }
    promtool_check(&answer.body)
        .map_err(|error| Error::invalid(what(), format!("{error}\n{}", answer.body)))?;
    Samples::parse(&answer.body)
}

/// One sample as a parser saw it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ParsedSample {
    /// The family's name (an OpenMetrics counter's without `_total`).
    pub family: String,
    /// The family's type (`counter`, `gauge`, `info`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The sample's name (`..._total` for a counter).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

const PARSE_OPENMETRICS: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        out.append({"family": family.name, "type": family.type, "name": sample.name,
                    "labels": dict(sample.labels), "value": float(sample.value)})
print(json.dumps(out))
"#;

/// The samples of an OpenMetrics text, parsed by Python `prometheus_client`'s
/// OpenMetrics parser (which also refuses a text without its final `# EOF`).
pub fn parse_openmetrics(text: &str) -> Result<Vec<ParsedSample>> {
    let (status, output) =
        run_with_input(Command::new(PYTHON).args(["-c", PARSE_OPENMETRICS]), text)?;
    if status != Some(0) {
        return Err(Error::invalid(
            "the OpenMetrics parser of prometheus_client",
            format!("exit status {status:?}: {}", output.trim()),
        ));
    }
    serde_json::from_str(output.trim())
        .map_err(|e| Error::invalid("the OpenMetrics parser's samples", e.to_string()))
}

/// Runs `command` with `input` on stdin; its exit code and stdout followed by stderr.
fn run_with_input(command: &mut Command, input: &str) -> Result<(Option<i32>, String)> {
    let output = crate::command::output_with_input(command, input.as_bytes())?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((output.status.code(), text))
}

/// The samples of a text-format (0.0.4) scrape: name, labels, value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples(pub Vec<(String, BTreeMap<String, String>, f64)>);

impl Samples {
    /// Parses a text-format scrape (comments skipped).
    pub fn parse(text: &str) -> Result<Samples> {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            samples.push(
                sample_line(line)
                    .ok_or_else(|| Error::invalid("a text-format sample", line.to_owned()))?,
            );
        }
        Ok(Samples(samples))
    }

    /// The value of the one sample `name` whose labels include every pair of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.matching(name, labels);
        let first = found.next()?;
        found.next().is_none().then_some(first.2)
    }

    /// Every sample `name` whose labels include every pair of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a (String, BTreeMap<String, String>, f64)> + 'a {
        self.0.iter().filter(move |(sample, have, _)| {
            sample == name
                && labels
                    .iter()
                    .all(|(key, value)| have.get(*key).is_some_and(|v| v == value))
        })
    }

    /// The sum of the samples `name` whose labels include every pair of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|sample| sample.2).sum()
    }

    /// True when some sample's labels hold `label` = `value`.
    pub fn any_with(&self, label: &str, value: &str) -> bool {
        self.0
            .iter()
            .any(|(_, labels, _)| labels.get(label).is_some_and(|v| v == value))
    }
}

/// `name{a="x",b="y"} value [timestamp]`.
fn sample_line(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        loop {
            let (start, c) = chars.next()?;
            if c == '}' {
                rest = &inner[start + 1..];
                break;
            }
            if c == ',' || c == ' ' {
                continue;
            }
            let eq = inner[start..].find('=')? + start;
            let key = inner[start..eq].trim().to_owned();
            // Skip to the opening quote.
            while chars.next()?.0 < eq + 1 {}
            let mut value = String::new();
            loop {
                let (_, c) = chars.next()?;
                match c {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    other => value.push(other),
                }
            }
            labels.insert(key, value);
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some((name, labels, value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn text_samples_are_read() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{peer=\"10.0.0.1\",type=\"x,\\\"y\"} 3\nb 1.5\nc{} +Inf\n";
        let samples = Samples::parse(text).unwrap();
        assert_eq!(samples.value("a_total", &[("peer", "10.0.0.1")]), Some(3.0));
        assert_eq!(samples.value("a_total", &[("type", "x,\"y")]), Some(3.0));
        assert_eq!(samples.value("b", &[]), Some(1.5));
        assert_eq!(samples.value("c", &[]), Some(f64::INFINITY));
        assert_eq!(samples.value("a_total", &[("peer", "10.0.0.2")]), None);
        assert!(Samples::parse("broken{x=\"1\" 2\n").is_err());
    }

    #[test]
    fn answers_are_read() {
        let plain =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello";
        let answer = parse_answer(plain).unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (200, "hello"));
        assert_eq!(answer.content_type(), Some("text/plain"));
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnot\r\n6\r\n ready\r\n0\r\n\r\n";
        let answer = parse_answer(chunked).unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (503, "not ready"));
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
