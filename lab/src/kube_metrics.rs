//! The API server's own count of the requests it served (`apiserver_request_total`
//! from `/metrics`, read with the administrator's token), for tests and benchmarks
//! that measure how many requests a client makes: read it before and after, and
//! subtract.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::kube::ControlPlane;

/// One counter's labels: the API group (`""` for the core group), the resource and
/// the verb (`GET`, `LIST`, `WATCH`, `POST`, `PUT`, `PATCH`, `DELETE`, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestKind {
    pub group: String,
    pub resource: String,
    pub verb: String,
}

impl RequestKind {
    /// Whether the request changes something (not a GET, LIST or WATCH).
    pub fn is_write(&self) -> bool {
        !matches!(self.verb.as_str(), "GET" | "LIST" | "WATCH" | "CONNECT")
    }
}

/// Requests served, by kind (summed over response codes and scopes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts(pub BTreeMap<RequestKind, u64>);

impl RequestCounts {
    /// Reads the API server's counters now.
    pub fn read(control_plane: &ControlPlane) -> Result<RequestCounts> {
        let text = control_plane.kubectl(&["get", "--raw", "/metrics"])?;
        RequestCounts::parse(&text)
    }

    /// The counters of a Prometheus text exposition.
    pub fn parse(text: &str) -> Result<RequestCounts> {
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let bad = || Error::invalid("apiserver_request_total", format!("line {line:?}"));
            let (labels, value) = rest.rsplit_once("} ").ok_or_else(bad)?;
            let value: f64 = value.trim().parse().map_err(|_| bad())?;
            let label = |name: &str| {
                labels
                    .split("\",")
                    .find_map(|pair| pair.strip_prefix(name)?.strip_prefix("=\""))
                    .map(|v| v.trim_end_matches('"').to_string())
                    .unwrap_or_default()
            };
            let kind = RequestKind {
                group: label("group"),
                resource: label("resource"),
                verb: label("verb"),
            };
            // Counters are whole numbers, printed as floats.
            *counts.entry(kind).or_insert(0) += value as u64;
        }
        if counts.is_empty() {
            return Err(Error::invalid(
                "kube-apiserver /metrics",
                "no apiserver_request_total counter",
            ));
        }
        Ok(RequestCounts(counts))
    }

    /// What `self` counts beyond `before` (kinds whose count did not grow left out).
    pub fn since(&self, before: &RequestCounts) -> RequestCounts {
        RequestCounts(
            self.0
                .iter()
                .filter_map(|(kind, count)| {
                    let grown = count.saturating_sub(before.0.get(kind).copied().unwrap_or(0));
                    (grown > 0).then(|| (kind.clone(), grown))
                })
                .collect(),
        )
    }

    /// Only the kinds `keep` selects.
    pub fn only(&self, keep: impl Fn(&RequestKind) -> bool) -> RequestCounts {
        RequestCounts(
            self.0
                .iter()
                .filter(|(kind, _)| keep(kind))
                .map(|(kind, count)| (kind.clone(), *count))
                .collect(),
        )
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|(kind, _)| kind.is_write())
            .map(|(_, count)| count)
            .sum()
    }

    /// One line: `VERB resource=N` for each kind, in order.
    pub fn render(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(kind, count)| format!("{} {}={count}", kind.verb, kind.resource))
            .collect();
        parts.join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn parses_and_subtracts() {
        let before = RequestCounts::parse(
            "# HELP apiserver_request_total x\n\
             apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"wren.io\",resource=\"ipamblocks\",scope=\"resource\",subresource=\"\",verb=\"GET\",version=\"v1alpha1\"} 3\n\
             apiserver_request_total{code=\"404\",component=\"apiserver\",dry_run=\"\",group=\"wren.io\",resource=\"ipamblocks\",scope=\"resource\",subresource=\"\",verb=\"GET\",version=\"v1alpha1\"} 1\n",
        )
        .unwrap();
        let after = RequestCounts::parse(
            "apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"wren.io\",resource=\"ipamblocks\",scope=\"resource\",subresource=\"\",verb=\"GET\",version=\"v1alpha1\"} 5\n\
             apiserver_request_total{code=\"404\",component=\"apiserver\",dry_run=\"\",group=\"wren.io\",resource=\"ipamblocks\",scope=\"resource\",subresource=\"\",verb=\"GET\",version=\"v1alpha1\"} 1\n\
             apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"nodes\",scope=\"resource\",subresource=\"\",verb=\"PATCH\",version=\"v1\"} 2\n",
        )
        .unwrap();
        let grown = after.since(&before);
        assert_eq!(grown.total(), 4);
        assert_eq!(grown.writes(), 2);
        assert_eq!(grown.render(), "PATCH nodes=2, GET ipamblocks=2");
        assert_eq!(grown.only(|k| k.group == "wren.io").total(), 2);
        assert!(RequestCounts::parse("up 1\n").is_err());
    }
}
