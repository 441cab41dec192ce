//! Where one kind's measurement at one size of a `scale-*` scenario goes: that size's
//! figures in the scenario's collector, under the kind's column.

use super::Figure;
use crate::dut::Kind;
use crate::report::Collector;
use crate::scenario::Context;

/// Records one kind's measurement at one size.
pub struct Recorder<'a> {
    context: &'a Context<'a>,
    collector: &'a mut Collector,
    size: usize,
    subject: &'static str,
}

impl<'a> Recorder<'a> {
    pub(super) fn new(
        context: &'a Context<'a>,
        collector: &'a mut Collector,
        size: usize,
        kind: Kind,
    ) -> Recorder<'a> {
        Recorder {
            context,
            collector,
            size,
            subject: kind.name(),
        }
    }

    /// N.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Records one run's value of `figure`.
    pub fn add(&mut self, figure: &Figure, value: f64) {
        self.collector
            .add(figure.name(), figure.unit(), self.subject, value);
    }

    /// Attaches a remark to this run's value of `figure`.
    pub fn remark(&mut self, figure: &Figure, remark: String) {
        self.collector.remark(figure.name(), self.subject, remark);
    }

    /// Records that the kind fell short on `figure` (a count instead of a time): progress
    /// line, remark, and the cell's reason.
    pub fn short(&mut self, figure: &Figure, what: String) {
        let name = figure.name();
        self.progress(format!("{name}: {what}"));
        self.collector
            .not_applicable(name, self.subject, what.clone());
        self.collector.remark(name, self.subject, what);
    }

    /// A progress line about the kind.
    pub fn progress(&self, what: impl std::fmt::Display) {
        self.context.progress(format!("{}: {what}", self.subject));
    }
}
