//! What a scenario produces: a [`Table`] of figures (rows) per subject (columns: the
//! daemons, plus the kernel floors or the datastores where a scenario has them), each cell
//! the runs of one figure or the reason it has none. `markdown` renders it with the median
//! (min–max) and the Wren ratios, `chart` draws it, `machine` records where it ran.

pub mod chart;
pub mod machine;
pub mod markdown;

use std::collections::BTreeMap;

use crate::stats::Summary;

/// How a figure is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Milliseconds,
    CpuSeconds,
    MiB,
    KiB,
    Bytes,
    Count,
    /// A count averaged over something (per claim, per run), with its decimals.
    Average,
    PerSecond,
}

impl Unit {
    /// The unit's symbol after a number.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Milliseconds => "ms",
            Unit::CpuSeconds => "CPU s",
            Unit::MiB => "MiB",
            Unit::KiB => "KiB",
            Unit::Bytes => "B",
            Unit::Count | Unit::Average => "",
            Unit::PerSecond => "/s",
        }
    }

    /// A value with as many digits as it deserves.
    pub fn format(self, value: f64) -> String {
        let magnitude = value.abs();
        let digits = if self == Unit::Count || magnitude >= 100.0 {
            0
        } else if magnitude >= 10.0 {
            1
        } else if magnitude >= 1.0 {
            2
        } else {
            3
        };
        format!("{value:.digits$}")
    }
}

/// One table cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// The figure of each run.
    Runs(Vec<f64>),
    /// No figure, and why (shown in a footnote).
    Missing(String),
}

/// One figure across subjects.
#[derive(Clone, Debug)]
pub struct Row {
    pub label: String,
    pub unit: Unit,
    pub cells: BTreeMap<String, Cell>,
    /// Per subject, a remark attached to its figure (shown as a footnote).
    pub remarks: BTreeMap<String, String>,
    /// Draw this row in the scenario's chart.
    pub charted: bool,
}

impl Row {
    /// An empty row.
    pub fn new(label: impl Into<String>, unit: Unit) -> Row {
        Row {
            label: label.into(),
            unit,
            cells: BTreeMap::new(),
            remarks: BTreeMap::new(),
            charted: false,
        }
    }

    /// The summary of a subject's runs, if it has any.
    pub fn summary(&self, subject: &str) -> Option<Summary> {
        match self.cells.get(subject) {
            Some(Cell::Runs(values)) => Summary::of(values),
            _ => None,
        }
    }
}

/// A scenario's results.
#[derive(Clone, Debug)]
pub struct Table {
    /// The scenario's command-line name (also the file names).
    pub scenario: String,
    pub title: String,
    /// What was measured and how, one paragraph per entry.
    pub notes: Vec<String>,
    /// Column order.
    pub subjects: Vec<String>,
    /// Ratio columns: (numerator, denominator) subjects.
    pub ratios: Vec<(String, String)>,
    pub rows: Vec<Row>,
    /// The chart's y axis title.
    pub chart_axis: String,
}

/// Samples gathered over runs, keyed by figure and subject, and subjects without figures.
#[derive(Debug, Default)]
pub struct Collector {
    order: Vec<(String, Unit)>,
    samples: BTreeMap<(String, String), Vec<f64>>,
    missing: BTreeMap<String, String>,
    remarks: BTreeMap<(String, String), String>,
    absent: BTreeMap<(String, String), String>,
    charted: Vec<String>,
}

impl Collector {
    /// Records one run's value of `figure` for `subject`.
    pub fn add(&mut self, figure: &str, unit: Unit, subject: &str, value: f64) {
        if !self.order.iter().any(|(f, _)| f == figure) {
            self.order.push((figure.to_owned(), unit));
        }
        self.samples
            .entry((figure.to_owned(), subject.to_owned()))
            .or_default()
            .push(value);
    }

    /// The values recorded so far of `figure` for `subject`, run by run.
    pub fn runs(&self, figure: &str, subject: &str) -> &[f64] {
        self.samples
            .get(&(figure.to_owned(), subject.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    /// Declares a figure (so it gets a row even if no subject has a value).
    pub fn declare(&mut self, figure: &str, unit: Unit) {
        if !self.order.iter().any(|(f, _)| f == figure) {
            self.order.push((figure.to_owned(), unit));
        }
    }

    /// Marks a figure for the chart.
    pub fn chart(&mut self, figure: &str) {
        if !self.charted.iter().any(|f| f == figure) {
            self.charted.push(figure.to_owned());
        }
    }

    /// Attaches a remark to a subject's value of a figure.
    pub fn remark(&mut self, figure: &str, subject: &str, remark: impl Into<String>) {
        self.remarks
            .insert((figure.to_owned(), subject.to_owned()), remark.into());
    }

    /// Records that `figure` does not apply to `subject`, and why.
    pub fn not_applicable(&mut self, figure: &str, subject: &str, reason: impl Into<String>) {
        self.absent
            .insert((figure.to_owned(), subject.to_owned()), reason.into());
    }

    /// Records that `subject` has no figures in this scenario, and why (the first reason
    /// given wins).
    pub fn unavailable(&mut self, subject: &str, reason: impl Into<String>) {
        self.missing
            .entry(subject.to_owned())
            .or_insert_with(|| reason.into());
    }

    /// True when `subject` was marked unavailable.
    pub fn is_unavailable(&self, subject: &str) -> bool {
        self.missing.contains_key(subject)
    }

    /// The rows for `subjects`: unavailable subjects get their reason; a subject with no
    /// value for a figure gets `absent` (the figure does not apply to it).
    pub fn rows(&self, subjects: &[String], absent: &str) -> Vec<Row> {
        self.order
            .iter()
            .map(|(figure, unit)| {
                let mut row = Row::new(figure.clone(), *unit);
                row.charted = self.charted.contains(figure);
                for subject in subjects {
                    let cell = if let Some(reason) = self.missing.get(subject) {
                        Cell::Missing(format!("{subject} not available: {reason}"))
                    } else {
                        let key = (figure.clone(), subject.clone());
                        match (self.samples.get(&key), self.absent.get(&key)) {
                            (Some(values), _) => Cell::Runs(values.clone()),
                            (None, Some(reason)) => Cell::Missing(reason.clone()),
                            (None, None) => Cell::Missing(absent.to_owned()),
                        }
                    };
                    row.cells.insert(subject.clone(), cell);
                    if let Some(remark) = self.remarks.get(&(figure.clone(), subject.clone())) {
                        row.remarks.insert(subject.clone(), remark.clone());
                    }
                }
                row
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn units_keep_significant_digits() {
        assert_eq!(Unit::Seconds.format(1.6234), "1.62");
        assert_eq!(Unit::Seconds.format(12.34), "12.3");
        assert_eq!(Unit::Milliseconds.format(0.4567), "0.457");
        assert_eq!(Unit::Bytes.format(917.4), "917");
        assert_eq!(Unit::Count.format(3.0), "3");
        assert_eq!(Unit::Average.format(7.395), "7.39");
    }

    #[test]
    fn collector_rows_carry_runs_reasons_and_absences() {
        let mut collector = Collector::default();
        collector.add("time", Unit::Seconds, "BIRD", 3.0);
        collector.add("time", Unit::Seconds, "BIRD", 3.2);
        collector.unavailable("Wren", "no bgpd binary");
        collector.unavailable("Wren", "a later reason");
        let subjects: Vec<String> = ["Wren", "BIRD", "FRR"].map(String::from).to_vec();
        let rows = collector.rows(&subjects, "n/a");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cells["BIRD"], Cell::Runs(vec![3.0, 3.2]));
        assert_eq!(
            rows[0].cells["Wren"],
            Cell::Missing("Wren not available: no bgpd binary".into())
        );
        assert_eq!(rows[0].cells["FRR"], Cell::Missing("n/a".into()));
        assert!((rows[0].summary("BIRD").unwrap().median - 3.1).abs() < 1e-9);
    }
}
