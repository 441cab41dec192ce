//! Test tables as text: rows of `key: value` lines, rows separated by blank lines,
//! `#` starting a comment line, an indented line continuing the value above. The
//! format of bgp-proto's `tests/data/rules.txt`, and of the conformance table.

use crate::error::{Error, Result};

/// One row: its first line number and its fields in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub fields: Vec<(String, String)>,
}

impl Row {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an error naming the file and line.
    pub fn require(&self, file: &str, key: &str) -> Result<&str> {
        self.get(key).ok_or_else(|| Error::Table {
            file: file.to_owned(),
            line: self.line,
            detail: format!("row has no `{key}`"),
        })
    }
}

/// Parses `text` (from `file`, for errors) into rows.
pub fn parse(text: &str, file: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut current: Option<Row> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            rows.extend(current.take());
            continue;
        }
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.as_mut().and_then(|row| row.fields.last_mut()) else {
                return Err(Error::Table {
                    file: file.to_owned(),
                    line: number,
                    detail: "an indented line continues nothing".into(),
                });
            };
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(Error::Table {
                file: file.to_owned(),
                line: number,
                detail: format!("expected `key: value`, found {line:?}"),
            });
        };
        current
            .get_or_insert_with(|| Row {
                line: number,
                fields: Vec::new(),
            })
            .fields
            .push((key.trim().to_owned(), value.trim().to_owned()));
    }
    rows.extend(current);
    Ok(rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rows_keys_and_continuations() {
        let text = "# header\n\nrule: a\nhex: ff\n  00\n\n\nrule: b\n# inner comment\nhex: 01\n";
        let rows = parse(text, "t").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 3);
        assert_eq!(rows[0].get("hex"), Some("ff 00"));
        assert_eq!(rows[1].get("rule"), Some("b"));
        assert!(rows[1].require("t", "expect").is_err());
        assert!(parse("  x\n", "t").is_err());
        assert!(parse("novalue\n", "t").is_err());
    }
}
