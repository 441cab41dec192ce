//! Configuration errors that name the file, the line and the key.
//!
//! A [`ConfigError`] prints as one line: `FILE:LINE:COLUMN: KEY: MESSAGE`, for example
//! `/etc/wren/bgpd.toml:12:13: bgp.neighbor[1].hold_time: hold time must be 0 or
//! between 3 and 65535 seconds`. Keys are written as TOML paths with 0-based indexes
//! into arrays of tables.
//!
//! [`Locator`] maps both directions between the text and its keys, over the spanned
//! document that `toml` parses: from a byte offset (a serde error's span) to the key
//! around it, and from a key (a cross-reference check on the typed config) to its line.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (as given on the command line).
    pub file: String,
    /// 1-based line and column; 0 when the problem has no place in the text (the
    /// file cannot be read).
    pub line: usize,
    pub column: usize,
    /// The TOML key path, e.g. `bgp.neighbor[0].password`; empty for the whole file.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// One line: control characters taken from the text (a key spanning lines in a
    /// broken file, `"a\nb" = 1`) are shown escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        one_line(f, &self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            f.write_str(": ")?;
            one_line(f, &self.key)?;
        }
        f.write_str(": ")?;
        one_line(f, &self.message)
    }
}

/// Writes `text` with its control characters escaped (`\n`, `\u{1b}`).
fn one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            fmt::Write::write_char(f, c)?;
        }
    }
    Ok(())
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration file (at least one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The problems, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    /// One line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A key path, built with [`key_path!`] or by hand.
pub type KeyPath = Vec<Step>;

/// `key_path!["bgp", "neighbor", 3, "password"]`.
macro_rules! key_path {
    ($($step:expr),* $(,)?) => {
        vec![$($crate::config::error::Step::from($step)),*]
    };
}
pub(crate) use key_path;

impl From<&str> for Step {
    fn from(key: &str) -> Step {
        Step::Key(key.to_owned())
    }
}

impl From<usize> for Step {
    fn from(index: usize) -> Step {
        Step::Index(index)
    }
}

/// Writes a key path the way errors show it: `bgp.neighbor[0].password`.
pub fn render_path(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Step::Index(index) => {
                text.push_str(&format!("[{index}]"));
            }
        }
    }
    text
}

/// The spanned document of one configuration text, for placing errors.
pub struct Locator<'i> {
    file: String,
    text: &'i str,
    document: Option<Spanned<DeTable<'i>>>,
    /// The text has TOML syntax errors (the document is a recovered one).
    broken: bool,
}

impl fmt::Debug for Locator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Locator").field("file", &self.file).finish()
    }
}

impl<'i> Locator<'i> {
    /// Parses `text` (the content of `file`) for its spans. A text that is not TOML
    /// gives a locator that places everything by offset only.
    pub fn new(file: &str, text: &'i str) -> Locator<'i> {
        // With recovery, a syntax error still leaves the keys around it.
        let (document, errors) = DeTable::parse_recoverable(text);
        Locator {
            file: file.to_owned(),
            text,
            document: Some(document),
            broken: !errors.is_empty(),
        }
    }

    /// An error about the whole file, with no place in it.
    pub fn file_error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message: message.into(),
        }
    }

    /// An error from the TOML parser or from serde: placed at its span, named by the
    /// key around that span.
    pub fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        let message = error.message().trim().to_owned();
        let Some(span) = error.span() else {
            return self.file_error(message);
        };
        let (line, column) = line_column(self.text, span.start);
        if let Some(header) = self.broken.then(|| self.header_on_line(line)).flatten() {
            // A broken table header: name the table as written.
            return ConfigError {
                file: self.file.clone(),
                line,
                column,
                key: header,
                message,
            };
        }
        let mut path = self.path_at(span.start);
        if path.is_empty() {
            // A syntax error inside a value: the key that starts its line.
            let line_start = self.text[..span.start.min(self.text.len())]
                .rfind('\n')
                .map_or(0, |at| at + 1);
            let indent = self.text[line_start..].len() - self.text[line_start..].trim_start().len();
            path = self.path_at(line_start + indent);
        }
        // A message about a key of the table the span covers names that key.
        let mut place = span.start;
        if let Some(key) = named_key(&message) {
            if let Some(key_span) = self.child_key_span(&path, &key) {
                place = key_span.start;
            }
            if !matches!(path.last(), Some(Step::Key(last)) if *last == key) {
                path.push(Step::Key(key));
            }
        }
        let (line, column) = line_column(self.text, place);
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            key: render_path(&path),
            message,
        }
    }

    /// The table named by a `[table]` or `[[array]]` header on 1-based `line`.
    fn header_on_line(&self, line: usize) -> Option<String> {
        let text = self.text.lines().nth(line.checked_sub(1)?)?.trim();
        if !text.starts_with('[') {
            return None;
        }
        let name = text.trim_start_matches('[');
        let name = name.split(']').next().unwrap_or(name);
        Some(name.split('#').next().unwrap_or(name).trim().to_owned())
    }

    /// An error about the key at `path`, placed at the key (or, when the key is absent
    /// because a default applies, at the nearest table that is present).
    pub fn error_at(&self, path: &[Step], message: impl Into<String>) -> ConfigError {
        let offset = self.offset_of(path).unwrap_or(0);
        let (line, column) = line_column(self.text, offset);
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            key: render_path(path),
            message: message.into(),
        }
    }

    /// True when the text has the key at `path` (not a default).
    pub fn contains(&self, path: &[Step]) -> bool {
        match path.split_last() {
            Some((Step::Key(key), parent)) => self.child_key_span(parent, key).is_some(),
            _ => false,
        }
    }

    /// The offset of the deepest part of `path` present in the document: the key's
    /// own span for table entries, the element's span for array items.
    fn offset_of(&self, path: &[Step]) -> Option<usize> {
        let document = self.document.as_ref()?;
        let mut best = document.span().start;
        let mut table: Option<&DeTable<'_>> = Some(document.get_ref());
        let mut value: Option<&DeValue<'_>> = None;
        for step in path {
            match step {
                Step::Key(key) => {
                    let current = table.or_else(|| value.and_then(DeValue::as_table))?;
                    let Some((found_key, found)) = current.get_key_value(key.as_str()) else {
                        break;
                    };
                    best = found_key.span().start;
                    value = Some(found.get_ref());
                    table = None;
                }
                Step::Index(index) => {
                    let Some(item) = value
                        .and_then(DeValue::as_array)
                        .and_then(|array| array.get(*index))
                    else {
                        break;
                    };
                    best = item.span().start;
                    value = Some(item.get_ref());
                    table = None;
                }
            }
        }
        Some(best)
    }

    /// The key path of the innermost value or key whose span holds `offset`. Spans of
    /// tables written with a header cover only the header, so the whole document is
    /// searched rather than only the tables around the offset.
    fn path_at(&self, offset: usize) -> KeyPath {
        let mut best = Vec::new();
        if let Some(document) = self.document.as_ref() {
            let mut path = Vec::new();
            search_table(document.get_ref(), offset, &mut path, &mut best);
        }
        best
    }

    /// The span of key `key` inside the table at `path`, if present.
    fn child_key_span(&self, path: &[Step], key: &str) -> Option<Range<usize>> {
        let document = self.document.as_ref()?;
        let mut value: Option<&DeValue<'_>> = None;
        let mut table = document.get_ref();
        for step in path {
            match step {
                Step::Key(name) => {
                    let current = match value {
                        None => table,
                        Some(value) => value.as_table()?,
                    };
                    value = Some(current.get(name.as_str())?.get_ref());
                }
                Step::Index(index) => {
                    value = Some(value?.as_array()?.get(*index)?.get_ref());
                }
            }
        }
        if let Some(value) = value {
            table = value.as_table()?;
        }
        table
            .get_key_value(key)
            .map(|(found_key, _)| found_key.span())
    }
}

fn search_table(table: &DeTable<'_>, offset: usize, path: &mut KeyPath, best: &mut KeyPath) {
    for (key, value) in table.iter() {
        path.push(Step::Key(key.get_ref().to_string()));
        if (contains(&key.span(), offset) || contains(&value.span(), offset))
            && path.len() > best.len()
        {
            best.clone_from(path);
        }
        search_value(value.get_ref(), offset, path, best);
        path.pop();
    }
}

fn search_value(value: &DeValue<'_>, offset: usize, path: &mut KeyPath, best: &mut KeyPath) {
    match value {
        DeValue::Table(table) => search_table(table, offset, path, best),
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                path.push(Step::Index(index));
                if contains(&item.span(), offset) && path.len() > best.len() {
                    best.clone_from(path);
                }
                search_value(item.get_ref(), offset, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The key a serde message is about: "unknown field `x`", "missing field `x`",
/// "duplicate key `x`", or a message that starts with "`x`: ".
fn named_key(message: &str) -> Option<String> {
    for prefix in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    let rest = message.strip_prefix('`')?;
    let (key, after) = rest.split_once('`')?;
    after.starts_with(':').then(|| key.to_owned())
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::useless_vec)]
mod tests {
    use super::*;

    const TEXT: &str = "[bgp]\nasn = 1\n\n[[bgp.neighbor]]\naddress = \"10.0.0.2\"\n\n[[bgp.neighbor]]\naddress = \"10.0.0.3\"\nhold_time = 1\n";

    #[test]
    fn keys_are_found_by_offset_and_offsets_by_key() {
        let locator = Locator::new("x.toml", TEXT);
        let offset = TEXT.find("hold_time = 1").unwrap() + "hold_time = ".len();
        assert_eq!(
            render_path(&locator.path_at(offset)),
            "bgp.neighbor[1].hold_time"
        );
        let error = locator.error_at(&key_path!["bgp", "neighbor", 1, "address"], "duplicate");
        assert_eq!(
            error.to_string(),
            "x.toml:8:1: bgp.neighbor[1].address: duplicate"
        );
        // An absent key is placed at the nearest present table.
        let error = locator.error_at(&key_path!["bgp", "neighbor", 0, "password"], "too long");
        assert_eq!(
            (error.line, error.key.as_str()),
            (4, "bgp.neighbor[0].password")
        );
        let error = locator.error_at(&key_path!["control", "socket"], "bad");
        assert_eq!(error.line, 1);
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncdé f", 8), (2, 5));
        assert_eq!(line_column("", 10), (1, 1));
    }

    #[test]
    fn messages_name_their_key() {
        assert_eq!(
            named_key("unknown field `tabel`, expected one of"),
            Some("tabel".into())
        );
        assert_eq!(named_key("missing field `asn`"), Some("asn".into()));
        assert_eq!(named_key("`table`: bad table"), Some("table".into()));
        assert_eq!(named_key("invalid type: string"), None);
    }
}
