//! A scenario's chart: grouped bars, one group per charted figure and one bar per subject
//! (the median), with a whisker from min to max. Subjects without a figure get no bar and
//! an "n/a" at the base. Written as SVG with plotters.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::Table;

/// Bar colours by column position (Wren first).
const COLOURS: [RGBColor; 6] = [
    RGBColor(0xd9, 0x5f, 0x02),
    RGBColor(0x1b, 0x9e, 0x77),
    RGBColor(0x75, 0x70, 0xb3),
    RGBColor(0xe7, 0x29, 0x8a),
    RGBColor(0x66, 0xa6, 0x1e),
    RGBColor(0x66, 0x66, 0x66),
];

/// Draws the charted rows of `table` into `dir`, one chart per unit: the first unit's
/// rows to SCENARIO.svg (y axis: the table's `chart_axis`), each other unit's to
/// SCENARIO-UNIT.svg (y axis: the first such row's figure and the unit), so time and
/// memory against N are two charts with the same subjects. Returns the file names drawn.
pub fn draw_by_unit(table: &Table, dir: &Path) -> Result<Vec<String>> {
    let mut units = Vec::new();
    for row in table.rows.iter().filter(|r| r.charted) {
        if !units.contains(&row.unit) {
            units.push(row.unit);
        }
    }
    let mut drawn = Vec::new();
    for (i, unit) in units.into_iter().enumerate() {
        let mut part = table.clone();
        part.rows.retain(|r| r.charted && r.unit == unit);
        let name = if i == 0 {
            format!("{}.svg", table.scenario)
        } else {
            let label = part.rows[0].label.clone();
            let figure = label.split_once(": ").map_or(label.as_str(), |(_, f)| f);
            part.chart_axis = format!("{figure} ({})", unit.symbol());
            format!("{}-{}.svg", table.scenario, unit.symbol().replace(' ', "-"))
        };
        if draw(&part, &dir.join(&name))? {
            drawn.push(name);
        }
    }
    Ok(drawn)
}

/// Draws the charted rows of `table` to `path` (an .svg). A table without charted rows
/// gets no chart (`Ok(false)`).
pub fn draw(table: &Table, path: &Path) -> Result<bool> {
    let rows: Vec<_> = table.rows.iter().filter(|r| r.charted).collect();
    if rows.is_empty() {
        return Ok(false);
    }
    let subjects = &table.subjects;
    let top = rows
        .iter()
        .flat_map(|row| subjects.iter().filter_map(|s| row.summary(s)))
        .map(|s| s.max)
        .fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let width = (220 * rows.len() as u32).clamp(640, 1400);
    let area = SVGBackend::new(path, (width, 480)).into_drawing_area();
    let error = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e:?}", path.display());
    area.fill(&WHITE).map_err(error)?;
    let groups = rows.len();
    let mut chart = ChartBuilder::on(&area)
        .caption(&table.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..groups as f64, 0.0..top)
        .map_err(error)?;
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&|x| {
            let centre = x.fract();
            if (centre - 0.5).abs() < 0.01 {
                labels.get(*x as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(&table.chart_axis)
        .draw()
        .map_err(error)?;

    let n = subjects.len().max(1) as f64;
    let bar = 0.8 / n;
    for (s, subject) in subjects.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        let mut bars = Vec::new();
        let mut whiskers = Vec::new();
        let mut missing = Vec::new();
        for (g, row) in rows.iter().enumerate() {
            let left = g as f64 + 0.1 + s as f64 * bar;
            let right = left + bar * 0.9;
            let middle = (left + right) / 2.0;
            match row.summary(subject) {
                Some(summary) => {
                    bars.push(Rectangle::new(
                        [(left, 0.0), (right, summary.median)],
                        colour.filled(),
                    ));
                    if summary.runs > 1 {
                        whiskers.push(PathElement::new(
                            vec![(middle, summary.min), (middle, summary.max)],
                            BLACK.stroke_width(1),
                        ));
                    }
                }
                None => missing.push(Text::new(
                    "n/a",
                    (left, top * 0.02),
                    ("sans-serif", 11).into_font().color(&colour),
                )),
            }
        }
        chart
            .draw_series(bars)
            .map_err(error)?
            .label(subject.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
        chart.draw_series(whiskers).map_err(error)?;
        chart.draw_series(missing).map_err(error)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(error)?;
    area.present().map_err(error)?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::super::{Collector, Unit};
    use super::*;

    #[test]
    fn draws_an_svg_with_bars_and_missing_subjects() {
        let mut collector = Collector::default();
        for value in [1.0, 1.5, 2.0] {
            collector.add("2 × 100k", Unit::Seconds, "BIRD", value);
        }
        collector.add("2 × 100k", Unit::Seconds, "FRR", 0.8);
        collector.chart("2 × 100k");
        collector.unavailable("Wren", "no binary");
        let subjects: Vec<String> = ["Wren", "BIRD", "FRR"].map(String::from).to_vec();
        let table = Table {
            scenario: "bulk".into(),
            title: "Bulk".into(),
            notes: Vec::new(),
            rows: collector.rows(&subjects, "n/a"),
            subjects,
            ratios: Vec::new(),
            chart_axis: "seconds".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bulk.svg");
        assert!(draw(&table, &path).unwrap());
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("BIRD") && svg.contains("n/a") && svg.contains("2 × 100k"));
    }
}
