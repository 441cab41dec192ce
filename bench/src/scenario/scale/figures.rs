//! The figures of one size (N) of a `scale-*` scenario: each one a row of its table,
//! named with N, with the unit given once where the scenario names it.

use crate::report::{Collector, Unit};

/// One row of a scale scenario's table: the figure's name and its unit.
#[derive(Clone, Debug)]
pub struct Figure {
    name: String,
    unit: Unit,
}

impl Figure {
    /// The row's label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The row's unit.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// Gives this figure a row, even if no subject gets a value.
    fn declare(&self, collector: &mut Collector) {
        collector.declare(&self.name, self.unit);
    }
}

/// The figures of one size, in the order a scenario names them: the time figure first
/// (it leads the table, every size's before the rest), then the others in their table
/// order, among them the one charted on the memory chart.
#[derive(Debug)]
pub struct SizeFigures {
    size: usize,
    time: Option<Figure>,
    memory: Option<Figure>,
    rest: Vec<Figure>,
}

impl SizeFigures {
    /// No figure yet, for N = `size`.
    pub fn new(size: usize) -> SizeFigures {
        SizeFigures {
            size,
            time: None,
            memory: None,
            rest: Vec::new(),
        }
    }

    /// N.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Names the figure charted against N on the time chart (seconds).
    pub fn time(&mut self, name: String) -> Figure {
        let figure = Figure {
            name,
            unit: Unit::Seconds,
        };
        self.time = Some(figure.clone());
        figure
    }

    /// Names the next figure of the table.
    pub fn add(&mut self, name: String, unit: Unit) -> Figure {
        let figure = Figure { name, unit };
        self.rest.push(figure.clone());
        figure
    }

    /// Names the next figure of the table, the one charted against N on the memory chart.
    pub fn memory(&mut self, name: String, unit: Unit) -> Figure {
        let figure = self.add(name, unit);
        self.memory = Some(figure.clone());
        figure
    }

    /// Declares and charts the time figure.
    pub(super) fn declare_time(&self, collector: &mut Collector) {
        if let Some(time) = &self.time {
            collector.chart(&time.name);
            time.declare(collector);
        }
    }

    /// Declares the other figures in order and charts the memory figure.
    pub(super) fn declare_rest(&self, collector: &mut Collector) {
        for figure in &self.rest {
            figure.declare(collector);
        }
        if let Some(memory) = &self.memory {
            collector.chart(&memory.name);
        }
    }
}
