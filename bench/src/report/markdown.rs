//! A [`Table`] as Markdown: one row per figure, one column per subject showing the median
//! over runs with (min–max), then the ratio columns (median over median). Reasons for
//! missing figures and remarks on figures become numbered notes under the table.

use std::fmt::Write;

use super::{Cell, Row, Table};

/// The table's Markdown section (a `##` heading, notes, table, footnotes).
pub fn render(table: &Table) -> String {
    let mut footnotes: Vec<String> = Vec::new();
    let mut note = |text: &str| -> usize {
        match footnotes.iter().position(|n| n == text) {
            Some(index) => index + 1,
            None => {
                footnotes.push(text.to_owned());
                footnotes.len()
            }
        }
    };
    let mut out = format!("## {}\n\n", table.title);
    for paragraph in &table.notes {
        let _ = writeln!(out, "{paragraph}\n");
    }
    out.push_str("| Figure |");
    for subject in &table.subjects {
        let _ = write!(out, " {subject} |");
    }
    for (numerator, denominator) in &table.ratios {
        let _ = write!(out, " {numerator}/{denominator} |");
    }
    out.push_str("\n|---|");
    for _ in 0..table.subjects.len() + table.ratios.len() {
        out.push_str("--:|");
    }
    out.push('\n');
    for row in &table.rows {
        let symbol = row.unit.symbol();
        if symbol.is_empty() {
            let _ = write!(out, "| {} |", row.label);
        } else {
            let _ = write!(out, "| {} ({symbol}) |", row.label);
        }
        for subject in &table.subjects {
            let mut text = cell_text(row, subject, &mut note);
            if let (Some(Cell::Runs(_)), Some(remark)) =
                (row.cells.get(subject), row.remarks.get(subject))
            {
                let _ = write!(text, " ({})", note(remark));
            }
            let _ = write!(out, " {text} |");
        }
        for (numerator, denominator) in &table.ratios {
            let _ = write!(out, " {} |", ratio_text(row, numerator, denominator));
        }
        out.push('\n');
    }
    if !footnotes.is_empty() {
        out.push('\n');
        for (index, text) in footnotes.iter().enumerate() {
            let _ = writeln!(out, "({}) {text}  ", index + 1);
        }
    }
    out.push('\n');
    out
}

fn cell_text(row: &Row, subject: &str, note: &mut impl FnMut(&str) -> usize) -> String {
    match row.cells.get(subject) {
        Some(Cell::Runs(_)) => match row.summary(subject) {
            Some(summary) if summary.runs > 1 => format!(
                "{} ({}–{})",
                row.unit.format(summary.median),
                row.unit.format(summary.min),
                row.unit.format(summary.max)
            ),
            Some(summary) => row.unit.format(summary.median),
            None => "—".to_owned(),
        },
        Some(Cell::Missing(reason)) if reason.contains("not available") => {
            format!("not available ({})", note(reason))
        }
        Some(Cell::Missing(reason)) => format!("n/a ({})", note(reason)),
        None => "—".to_owned(),
    }
}

/// Median over median: two decimals from 0.1 up, two significant digits below (a ratio
/// of 0.0009 is not "0.00×"); "both 0" when both medians are zero, "∞" over a zero.
fn ratio_text(row: &Row, numerator: &str, denominator: &str) -> String {
    match (row.summary(numerator), row.summary(denominator)) {
        (Some(n), Some(d)) if d.median != 0.0 => ratio_format(n.median / d.median),
        (Some(n), Some(_)) if n.median == 0.0 => "both 0".to_owned(),
        (Some(_), Some(_)) => "∞".to_owned(),
        _ => "—".to_owned(),
    }
}

fn ratio_format(ratio: f64) -> String {
    let magnitude = ratio.abs();
    if magnitude == 0.0 || magnitude >= 0.1 {
        format!("{ratio:.2}×")
    } else {
        let decimals = (1 - magnitude.log10().floor() as i32).clamp(2, 9) as usize;
        format!("{ratio:.decimals$}×")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Collector, Unit};
    use super::*;

    #[test]
    fn table_with_runs_ratios_and_notes() {
        let mut collector = Collector::default();
        for value in [1.0, 2.0, 3.0] {
            collector.add("time to FIB", Unit::Seconds, "BIRD", value);
            collector.add("time to FIB", Unit::Seconds, "Wren", value / 2.0);
        }
        collector.add("time to FIB", Unit::Seconds, "GoBGP", 4.0);
        collector.remark("time to FIB", "GoBGP", "GoBGP: RIB, not FIB");
        collector.unavailable("FRR", "not installed");
        let subjects: Vec<String> = ["Wren", "BIRD", "FRR", "GoBGP"].map(String::from).to_vec();
        let table = Table {
            scenario: "bulk".into(),
            title: "Bulk".into(),
            notes: vec!["How.".into()],
            rows: collector.rows(&subjects, "does not apply"),
            subjects,
            ratios: vec![
                ("Wren".into(), "BIRD".into()),
                ("Wren".into(), "FRR".into()),
            ],
            chart_axis: "s".into(),
        };
        let text = render(&table);
        assert!(text.contains("## Bulk\n\nHow.\n"), "{text}");
        assert!(
            text.contains(
                "| time to FIB (s) | 1.00 (0.500–1.50) | 2.00 (1.00–3.00) | not available (1) | 4.00 (2) | 0.50× | — |"
            ),
            "{text}"
        );
        assert!(
            text.contains("(1) FRR not available: not installed"),
            "{text}"
        );
        assert!(text.contains("(2) GoBGP: RIB, not FIB"), "{text}");
    }

    #[test]
    fn ratios_keep_two_significant_digits_and_name_zeros() {
        assert_eq!(ratio_format(0.5), "0.50×");
        assert_eq!(ratio_format(12.345), "12.35×");
        assert_eq!(ratio_format(0.052 / 60.5), "0.00086×");
        assert_eq!(ratio_format(0.02), "0.020×");
        assert_eq!(ratio_format(-0.013 / 0.002), "-6.50×");
        assert_eq!(ratio_format(0.0), "0.00×");
        let mut collector = Collector::default();
        collector.add("idle CPU", Unit::CpuSeconds, "Wren", 0.0);
        collector.add("idle CPU", Unit::CpuSeconds, "BIRD", 0.0);
        collector.add("idle CPU", Unit::CpuSeconds, "FRR", 0.01);
        collector.add("drops", Unit::CpuSeconds, "Wren", 0.01);
        collector.add("drops", Unit::CpuSeconds, "BIRD", 0.0);
        let subjects: Vec<String> = ["Wren", "BIRD", "FRR"].map(String::from).to_vec();
        let rows = collector.rows(&subjects, "does not apply");
        assert_eq!(ratio_text(&rows[0], "Wren", "BIRD"), "both 0");
        assert_eq!(ratio_text(&rows[0], "Wren", "FRR"), "0.00×");
        assert_eq!(ratio_text(&rows[1], "Wren", "BIRD"), "∞");
        assert_eq!(ratio_text(&rows[1], "Wren", "FRR"), "—");
    }
}
