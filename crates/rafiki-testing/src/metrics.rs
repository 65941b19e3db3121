//! The admin's and the predictor's `/metrics`, read as Prometheus reads them: parsed with an
//! OpenMetrics parser (the format `prometheus_client` writes and the servers announce), so a
//! test fails on text Prometheus would refuse, and looked up by family and labels.

use openmetrics_parser::{MetricFamily, MetricsExposition, OpenMetricsType, OpenMetricsValue};

/// One scrape, parsed.
#[derive(Debug)]
pub struct Metrics(MetricsExposition<OpenMetricsType, OpenMetricsValue>);

type Family = MetricFamily<OpenMetricsType, OpenMetricsValue>;

impl Metrics {
    /// Parses a scrape's body; panics, with the text, if it is not valid OpenMetrics.
    pub fn parse(text: &str) -> Metrics {
        match openmetrics_parser::openmetrics::parse_openmetrics(text) {
            Ok(parsed) => Metrics(parsed),
            Err(err) => panic!("/metrics is not valid OpenMetrics ({err:?}):\n{text}"),
        }
    }

    /// The family named `name` (OpenMetrics' name: a counter's without `_total`).
    pub fn family(&self, name: &str) -> &Family {
        self.0
            .families
            .get(name)
            .unwrap_or_else(|| panic!("no metric family {name}"))
    }

    /// How many series the family named `name` has (0 when it is not there).
    pub fn series(&self, name: &str) -> usize {
        self.0
            .families
            .get(name)
            .map_or(0, |family| family.iter_samples().count())
    }

    /// The value of the counter or gauge `name` whose labels include `labels`, summed over the
    /// series that match (0 when none does).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels)
            .map(|value| match value {
                OpenMetricsValue::Counter(counter) => counter.value.as_f64(),
                OpenMetricsValue::Gauge(gauge) | OpenMetricsValue::Unknown(gauge) => gauge.as_f64(),
                other => panic!("{name} is not a counter or a gauge: {other:?}"),
            })
            .sum()
    }

    /// The number of observations of the histogram `name` in the series whose labels include
    /// `labels` (0 when none does).
    pub fn observations(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.matching(name, labels)
            .map(|value| match value {
                OpenMetricsValue::Histogram(histogram) => histogram.count.unwrap_or_default(),
                other => panic!("{name} is not a histogram: {other:?}"),
            })
            .sum()
    }

    /// Every value of the label `label`, in every family.
    pub fn label_values(&self, label: &str) -> Vec<String> {
        let mut values = Vec::new();
        for family in self.0.families.values() {
            for sample in family.iter_samples() {
                if let Some(value) = sample
                    .get_labelset()
                    .ok()
                    .and_then(|set| set.get_label_value(label).map(str::to_owned))
                {
                    values.push(value);
                }
            }
        }
        values
    }

    fn matching<'a>(
        &'a self,
        name: &str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a OpenMetricsValue> + 'a {
        self.family(name).iter_samples().filter_map(move |sample| {
            let set = sample.get_labelset().ok()?;
            labels
                .iter()
                .all(|(key, value)| set.get_label_value(key) == Some(value))
                .then_some(&sample.value)
        })
    }
}
