//! Writing one metric family from a snapshot: the few shapes every collector of
//! [`super`] uses (a family of gauges or counters, each series a label set and a
//! value), on prometheus-client's encoder, so each format (OpenMetrics, text 0.0.4)
//! comes out of the same code.
//!
//! Names are given whole, in Prometheus' terms (base units such as `_seconds`), but a
//! counter's without `_total`: the encoder appends it (and OpenMetrics names the
//! family without it).

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// A series' labels: names and values.
pub type Labels = Vec<(&'static str, String)>;

/// A family of `metric_type`: `name` with `help`, one series per item, each value
/// made a metric by `metric` (a const gauge or counter).
fn family<V, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    series: impl IntoIterator<Item = (Labels, V)>,
    metric: impl Fn(V) -> M,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in series {
        metric(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A family of gauges: `name` with `help`, one series per item.
pub fn gauges<V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels, V)>,
) -> fmt::Result
where
    ConstGauge<V>: EncodeMetric,
{
    family(
        encoder,
        name,
        help,
        MetricType::Gauge,
        series,
        ConstGauge::new,
    )
}

/// One gauge without labels.
pub fn gauge<V>(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: V) -> fmt::Result
where
    ConstGauge<V>: EncodeMetric,
{
    gauges(encoder, name, help, [(Labels::new(), value)])
}

/// A family of counters: `name` (without `_total`) with `help`, one series per item.
pub fn counters<V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels, V)>,
) -> fmt::Result
where
    ConstCounter<V>: EncodeMetric,
{
    family(
        encoder,
        name,
        help,
        MetricType::Counter,
        series,
        ConstCounter::new,
    )
}

/// One counter without labels.
pub fn counter<V>(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: V) -> fmt::Result
where
    ConstCounter<V>: EncodeMetric,
{
    counters(encoder, name, help, [(Labels::new(), value)])
}

/// A histogram from its buckets (prometheus-client's encoder writes `_bucket`,
/// `_sum` and `_count`).
struct Buckets<'a> {
    sum: f64,
    count: u64,
    buckets: &'a [(f64, u64)],
}

impl EncodeMetric for Buckets<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// A family of histograms: `name` with `help`, one series per label set, each
/// (sum, count, non-cumulative buckets ending with the infinite one).
pub fn histograms(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels, f64, u64, Vec<(f64, u64)>)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, sum, count, buckets) in series {
        Buckets {
            sum,
            count,
            buckets: &buckets,
        }
        .encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A boolean as a gauge's value.
pub fn flag(value: bool) -> i64 {
    i64::from(value)
}
