//! The two text formats of `/metrics` and which one a scraper gets.
//!
//! As client_golang does: OpenMetrics text to a scraper whose `Accept` asks for
//! `application/openmetrics-text` (a Prometheus server asks for it first), the
//! Prometheus text format 0.0.4 to everyone else (curl, `promtool check metrics`,
//! older collectors). Both come from prometheus-client, from one [`Registry`]: its
//! `text` encoder writes OpenMetrics (ending in `# EOF`), its `prometheus_text`
//! encoder 0.0.4.

use prometheus_client::registry::Registry;

/// A format of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
    /// The Prometheus text format 0.0.4.
    Text,
}

/// The `Content-Type` of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// `application/openmetrics-text` with a quality above 0 (and no version other
    /// than 1.0.0 or 0.0.1), else the text format.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            if !media.eq_ignore_ascii_case("application/openmetrics-text") {
                continue;
            }
            let mut acceptable = true;
            for parameter in parts {
                let Some((key, value)) = parameter.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => acceptable &= value.parse::<f32>().is_ok_and(|q| q > 0.0),
                    "version" => acceptable &= matches!(value, "1.0.0" | "0.0.1"),
                    _ => {}
                }
            }
            if acceptable {
                return Format::OpenMetrics;
            }
        }
        Format::Text
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }

    /// `registry` in this format.
    pub fn encode(self, registry: &Registry) -> Result<String, std::fmt::Error> {
        let mut body = String::new();
        match self {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut body, registry)?,
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut body, registry)?;
            }
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        // What Prometheus 2.x and 3.x send, curl's default, none, and refusals.
        let cases = [
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                Format::OpenMetrics,
            ),
            (
                Some(
                    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,*/*;q=0.1",
                ),
                Format::OpenMetrics,
            ),
            (Some("*/*"), Format::Text),
            (None, Format::Text),
            (Some("text/plain;version=0.0.4"), Format::Text),
            (Some("application/openmetrics-text;q=0"), Format::Text),
            (
                Some("application/openmetrics-text; version=2.0.0"),
                Format::Text,
            ),
            (Some("Application/OpenMetrics-Text"), Format::OpenMetrics),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::negotiate(accept), want, "Accept: {accept:?}");
        }
    }
}
