//! The one table renderer behind every bgpctl table (neighbors, routes, fib, IPAM),
//! on comfy-table: no wrapping, numbers right-aligned, trailing blanks trimmed. Two
//! looks: [`render`], no borders and one space between columns (FRR- and BIRD-like
//! tables), and [`render_boxed`], ASCII borders with centred headers (the IPAM tables,
//! like calicoctl's).
//!
//! Column widths come from the cells, so a 39-character IPv6 address widens its
//! column instead of shifting the rest of the line. A column can also have a
//! minimum width: `show routes` prints its stream one chunk at a time, each chunk a
//! table of its own, and gives every column but the last a width that fits the
//! widest IPv6 value ([`PREFIX_WIDTH`], [`ADDRESS_WIDTH`]) so chunks line up.

use comfy_table::{
    Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table, Width, presets,
};

/// ASCII borders, a `+---+` rule under the header, no rules between rows.
const BOXED: &str = "||--+-++|    ++++++";

/// `ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128`.
pub const PREFIX_WIDTH: u16 = 43;
/// `ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff`.
pub const ADDRESS_WIDTH: u16 = 39;

/// One column: its header, alignment and minimum width.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub header: &'static str,
    pub right: bool,
    pub min_width: u16,
}

impl Column {
    /// A left-aligned column.
    pub const fn left(header: &'static str) -> Column {
        Column {
            header,
            right: false,
            min_width: 0,
        }
    }

    /// A right-aligned (numeric) column.
    pub const fn right(header: &'static str) -> Column {
        Column {
            header,
            right: true,
            min_width: 0,
        }
    }

    /// At least `width` characters wide.
    pub const fn min(self, width: u16) -> Column {
        Column {
            min_width: width,
            ..self
        }
    }
}

/// Renders `rows` under `columns` without borders (with the header line when
/// `header`); every line ends with a newline.
pub fn render(columns: &[Column], rows: &[Vec<String>], header: bool) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if header {
        table.set_header(columns.iter().map(|column| column.header));
    }
    finish(table, columns, rows, (0, 1))
}

/// Renders `rows` under `columns` in ASCII borders, headers centred.
pub fn render_boxed(columns: &[Column], rows: &[Vec<String>]) -> String {
    let mut table = Table::new();
    table
        .load_preset(BOXED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(
            columns
                .iter()
                .map(|column| Cell::new(column.header).set_alignment(CellAlignment::Center)),
        );
    finish(table, columns, rows, (1, 1))
}

/// Adds the rows, sets each column's alignment, padding and minimum width, and
/// prints the lines.
fn finish(
    mut table: Table,
    columns: &[Column],
    rows: &[Vec<String>],
    padding: (u16, u16),
) -> String {
    for row in rows {
        table.add_row(row);
    }
    for (index, spec) in columns.iter().enumerate() {
        if let Some(column) = table.column_mut(index) {
            column.set_padding(padding);
            if spec.right {
                column.set_cell_alignment(CellAlignment::Right);
            }
            if spec.min_width > 0 {
                // comfy-table's width counts the padding.
                column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(
                    spec.min_width.saturating_add(padding.0 + padding.1),
                )));
            }
        }
    }
    let mut out = String::new();
    for line in table.lines() {
        let line = line.trim_end();
        if !line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "2001:db80:aaaa:bbbb:cccc:dddd:eeee:ffff";

    #[test]
    fn a_full_length_ipv6_address_keeps_the_columns_aligned() {
        assert_eq!(LONG.len(), 39, "a 39-character address");
        let long = LONG.to_owned();
        let columns = [
            Column::left("Neighbor"),
            Column::right("AS"),
            Column::left("State"),
        ];
        let rows = vec![
            vec![
                "10.0.0.2".to_owned(),
                "65001".to_owned(),
                "Established".to_owned(),
            ],
            vec![long.clone(), "4200000000".to_owned(), "Active".to_owned()],
        ];
        let text = render(&columns, &rows, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        // Every column starts at the same offset on every line, the numbers end there.
        let state = lines[0].find("State").unwrap_or(usize::MAX);
        assert_eq!(state, 39 + 1 + 10 + 1, "{text}");
        assert_eq!(lines[1].find("Established"), Some(state), "{text}");
        assert_eq!(lines[2].find("Active"), Some(state), "{text}");
        assert_eq!(
            lines[1].find("65001").map(|at| at + 5),
            Some(state - 1),
            "{text}"
        );
        assert!(lines[2].starts_with(&long), "{text}");
    }

    #[test]
    fn minimum_widths_line_up_tables_printed_separately() {
        let columns = [
            Column::left("Prefix").min(PREFIX_WIDTH),
            Column::left("Via"),
        ];
        let first = render(&columns, &[vec!["10.0.0.0/8".into(), "x".into()]], true);
        let second = render(&columns, &[vec![format!("{LONG}/128"), "y".into()]], false);
        let at = |text: &str, what: &str| text.lines().last().and_then(|line| line.find(what));
        assert_eq!(
            at(&first, "x"),
            Some(usize::from(PREFIX_WIDTH) + 1),
            "{first}"
        );
        assert_eq!(
            at(&second, "y"),
            Some(usize::from(PREFIX_WIDTH) + 1),
            "{second}"
        );
    }
}
