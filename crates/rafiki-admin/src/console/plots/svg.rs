//! The drawing kit of the console's charts: scales (linear, log, bands), nice ticks, axes, path
//! data, and the accessible `<figure>` around each `<svg>`.
//!
//! Charts are plain SVG text written on the server: no plotting crate, no script. Colours and
//! line styles live in `console.css` (classes), never in `style` attributes, which the
//! console's Content-Security-Policy forbids. Coordinates are written with one decimal, which is
//! finer than a pixel and keeps a chart of 1,000 trials small.

use std::fmt::Write;

use maud::{html, Markup, Render};

/// A coordinate or length, written with one decimal.
#[derive(Debug, Clone, Copy)]
pub struct C(pub f64);

impl Render for C {
    fn render_to(&self, buf: &mut String) {
        let _ = write!(buf, "{:.1}", self.0);
    }
}

/// SVG path data (`d`), built a segment at a time.
#[derive(Debug, Default)]
pub struct PathData(String);

impl PathData {
    /// Starts a new sub-path at (x, y).
    pub fn move_to(&mut self, x: f64, y: f64) {
        let _ = write!(self.0, "M{x:.1} {y:.1}");
    }

    /// A straight line to (x, y).
    pub fn line_to(&mut self, x: f64, y: f64) {
        let _ = write!(self.0, "L{x:.1} {y:.1}");
    }

    /// A horizontal line to x.
    pub fn horizontal_to(&mut self, x: f64) {
        let _ = write!(self.0, "H{x:.1}");
    }

    /// A vertical line to y.
    pub fn vertical_to(&mut self, y: f64) {
        let _ = write!(self.0, "V{y:.1}");
    }

    /// A dot at (x, y): a zero-length segment, which a round line cap draws as a disc of the
    /// stroke's width. Far smaller than a `<circle>` per point.
    pub fn dot(&mut self, x: f64, y: f64) {
        let _ = write!(self.0, "M{x:.1} {y:.1}h0");
    }

    /// A small × centred on (x, y).
    pub fn cross(&mut self, x: f64, y: f64, half: f64) {
        let _ = write!(
            self.0,
            "M{:.1} {:.1}l{:.1} {:.1}m0 {:.1}l{:.1} {:.1}",
            x - half,
            y - half,
            2.0 * half,
            2.0 * half,
            -2.0 * half,
            -2.0 * half,
            2.0 * half
        );
    }

    /// Whether nothing was drawn.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `d` attribute's value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A map from data values to one pixel axis.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // The variants' docs say what their fields are.
pub enum Scale {
    /// Values `lo..hi` onto pixels `from..to`.
    Linear {
        lo: f64,
        hi: f64,
        from: f64,
        to: f64,
    },
    /// Values `10^lo..10^hi` onto pixels `from..to`, by decades.
    Log {
        lo: f64,
        hi: f64,
        from: f64,
        to: f64,
    },
    /// `count` equal bands over pixels `from..to`; a value is a band's index.
    Bands { count: usize, from: f64, to: f64 },
}

impl Scale {
    /// Where `value` goes (for bands: the centre of band `value`).
    pub fn map(&self, value: f64) -> f64 {
        match *self {
            Scale::Linear { lo, hi, from, to } => from + (value - lo) / (hi - lo) * (to - from),
            Scale::Log { lo, hi, from, to } => {
                from + (value.max(f64::MIN_POSITIVE).log10() - lo) / (hi - lo) * (to - from)
            }
            Scale::Bands { count, from, to } => {
                from + (value + 0.5) * (to - from) / count.max(1) as f64
            }
        }
    }

    /// The width of a band (0 for the other scales).
    pub fn band_width(&self) -> f64 {
        match *self {
            Scale::Bands { count, from, to } => (to - from).abs() / count.max(1) as f64,
            _ => 0.0,
        }
    }
}

/// One tick: where, and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// The pixel position.
    pub at: f64,
    /// What it says.
    pub text: String,
}

/// An axis: its scale, its ticks and its label.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Values to pixels.
    pub scale: Scale,
    /// The ticks, in pixels.
    pub ticks: Vec<Tick>,
    /// What the axis shows.
    pub label: String,
}

impl Axis {
    /// A numeric axis covering `min..=max` over the pixels `from..to`, with about `count`
    /// ticks at nice numbers. On a log scale when `log` and every value is positive.
    pub fn numeric(
        (min, max): (f64, f64),
        log: bool,
        (from, to): (f64, f64),
        label: String,
        count: usize,
    ) -> Axis {
        if log && min > 0.0 && max.is_finite() {
            let values = log_ticks(min, max);
            let lo = values[0].log10();
            let hi = values[values.len() - 1].log10();
            let scale = Scale::Log { lo, hi, from, to };
            let ticks = values
                .iter()
                .map(|&v| Tick {
                    at: scale.map(v),
                    text: tick_label(v, v),
                })
                .collect();
            return Axis {
                scale,
                ticks,
                label,
            };
        }
        Axis::linear(nice_ticks(min, max, count), (from, to), label)
    }

    /// A numeric axis of whole numbers (trial numbers): as [`Axis::numeric`] on a linear
    /// scale, but its ticks never fall between two whole numbers.
    pub fn whole(
        (min, max): (f64, f64),
        (from, to): (f64, f64),
        label: String,
        count: usize,
    ) -> Axis {
        let (values, step) = nice_ticks(min, max, count);
        let ticks = if step < 1.0 {
            let (lo, hi) = (values[0].floor(), values[values.len() - 1].ceil());
            ((lo as i64)..=(hi as i64)).map(|v| v as f64).collect()
        } else {
            values
        };
        Axis::linear((ticks, step.max(1.0)), (from, to), label)
    }

    /// A linear axis over the first and last of `values`, ticked at each.
    fn linear((values, step): (Vec<f64>, f64), (from, to): (f64, f64), label: String) -> Axis {
        let scale = Scale::Linear {
            lo: values[0],
            hi: values[values.len() - 1],
            from,
            to,
        };
        let ticks = values
            .iter()
            .map(|&v| Tick {
                at: scale.map(v),
                text: tick_label(v, step),
            })
            .collect();
        Axis {
            scale,
            ticks,
            label,
        }
    }

    /// A band per name over `from..to`; at most about `max_labels` names are written (every
    /// k-th), each cut to `max_chars`.
    pub fn bands(
        names: &[String],
        (from, to): (f64, f64),
        label: String,
        max_labels: usize,
        max_chars: usize,
    ) -> Axis {
        let scale = Scale::Bands {
            count: names.len(),
            from,
            to,
        };
        let every = names.len().div_ceil(max_labels.max(1)).max(1);
        let ticks = names
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(i, name)| Tick {
                at: scale.map(i as f64),
                text: shorten(name, max_chars),
            })
            .collect();
        Axis {
            scale,
            ticks,
            label,
        }
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// 1, 2 or 5 times a power of ten: the nice step nearest above `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    // A little slack: 0.05 / 0.01 is 5.000000000000001.
    let nice = if fraction <= 1.0 + 1e-9 {
        1.0
    } else if fraction <= 2.0 + 1e-9 {
        2.0
    } else if fraction <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// About `count` ticks at multiples of a nice step, from the multiple at or below `min` to the
/// one at or above `max`, and the step. A single value gets some room around it.
pub fn nice_ticks(min: f64, max: f64, count: usize) -> (Vec<f64>, f64) {
    let (mut min, mut max) = if min.is_finite() && max.is_finite() {
        (min.min(max), min.max(max))
    } else {
        (0.0, 1.0)
    };
    if max - min < f64::EPSILON * min.abs().max(1.0) {
        let pad = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
        min -= pad;
        max += pad;
    }
    let step = nice_step((max - min) / count.max(1) as f64);
    let first = (min / step + 1e-9).floor();
    let last = (max / step - 1e-9).ceil();
    // Multiples computed from integers, so 0.1 * 3 does not drift to 0.30000000000000004.
    let ticks = (0..=(last - first) as i64)
        .map(|i| clean((first + i as f64) * step))
        .collect();
    (ticks, step)
}

/// Powers of ten from the one at or below `min` to the one at or above `max`; with 1, 2 and 5
/// times them when that spans two decades or fewer. `min` must be positive.
pub fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let first = (min.log10() + 1e-9).floor() as i32;
    let mut last = (max.max(min).log10() - 1e-9).ceil() as i32;
    if last == first {
        last += 1;
    }
    let fine = last - first <= 2;
    let mut ticks = Vec::new();
    for power in first..=last {
        let base = 10f64.powi(power);
        ticks.push(clean(base));
        if fine && power < last {
            ticks.extend([clean(2.0 * base), clean(5.0 * base)]);
        }
    }
    ticks
}

/// `value` with float noise in its last digits removed (and no negative zero).
fn clean(value: f64) -> f64 {
    let rounded: f64 = format!("{value:.12e}").parse().unwrap_or(value);
    if rounded == 0.0 {
        0.0
    } else {
        rounded
    }
}

/// A tick's label: as many decimals as the `step` between ticks needs; exponent notation for
/// very large or very small numbers.
pub fn tick_label(value: f64, step: f64) -> String {
    let size = value.abs();
    if size != 0.0 && !(1e-4..1e6).contains(&size) {
        let text = format!("{value:.1e}");
        return text.replace(".0e", "e");
    }
    let decimals = if step >= 1.0 || step <= 0.0 {
        0
    } else {
        ((-step.log10() - 1e-9).ceil() as usize).min(10)
    };
    let text = format!("{value:.decimals$}");
    if text.trim_start_matches(['-', '0', '.']).is_empty() {
        "0".to_owned()
    } else {
        text
    }
}

/// A number as the console shows it in text: four significant digits at most.
pub fn number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let size = value.abs();
    if !(1e-4..1e6).contains(&size) {
        return format!("{value:.3e}");
    }
    let decimals = (3 - size.log10().floor() as i32).clamp(0, 8) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A chart's drawing area: its size and the margins around the plotted region.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Width of the whole SVG.
    pub width: f64,
    /// Height of the whole SVG.
    pub height: f64,
    /// Margin left of the plotted region (for the y axis's labels).
    pub left: f64,
    /// Margin right of it.
    pub right: f64,
    /// Margin above it.
    pub top: f64,
    /// Margin below it (for the x axis's labels).
    pub bottom: f64,
}

impl Frame {
    /// The wide chart of a page (640 × 280).
    pub const WIDE: Frame = Frame {
        width: 640.0,
        height: 280.0,
        left: 64.0,
        right: 16.0,
        top: 12.0,
        bottom: 44.0,
    };

    /// A small multiple (320 × 220).
    pub const SMALL: Frame = Frame {
        width: 320.0,
        height: 220.0,
        left: 56.0,
        right: 12.0,
        top: 10.0,
        bottom: 44.0,
    };

    /// The x pixels of the plotted region, left to right.
    pub fn x_range(&self) -> (f64, f64) {
        (self.left, self.width - self.right)
    }

    /// The y pixels of the plotted region, bottom to top (values grow upwards).
    pub fn y_range(&self) -> (f64, f64) {
        (self.height - self.bottom, self.top)
    }
}

/// The `<svg>` of a chart: its title and description (what a screen reader reads), grid lines,
/// both axes with ticks and labels, then `marks` on top.
pub fn chart(
    id: &str,
    (title, desc): (&str, &str),
    frame: &Frame,
    (x, y): (&Axis, &Axis),
    marks: Markup,
) -> Markup {
    let (left, right) = frame.x_range();
    let (bottom, top) = frame.y_range();
    let mut grid = PathData::default();
    for tick in &y.ticks {
        grid.move_to(left, tick.at);
        grid.horizontal_to(right);
    }
    let mut axes = PathData::default();
    axes.move_to(left, top);
    axes.vertical_to(bottom);
    axes.horizontal_to(right);
    for tick in &x.ticks {
        axes.move_to(tick.at, bottom);
        axes.vertical_to(bottom + 4.0);
    }
    for tick in &y.ticks {
        axes.move_to(left - 4.0, tick.at);
        axes.horizontal_to(left);
    }
    html! {
        svg.chart viewBox={ "0 0 " (frame.width) " " (frame.height) } role="img"
            aria-labelledby={ (id) "-t" } aria-describedby={ (id) "-d" } {
            title #{ (id) "-t" } { (title) }
            desc #{ (id) "-d" } { (desc) }
            path.grid d=(grid.as_str()) {}
            path.axis d=(axes.as_str()) {}
            g.ticks text-anchor="middle" {
                @for tick in &x.ticks {
                    text x=(C(tick.at)) y=(C(bottom + 16.0)) { (tick.text) }
                }
            }
            g.ticks text-anchor="end" {
                @for tick in &y.ticks {
                    text x=(C(left - 7.0)) y=(C(tick.at + 4.0)) { (tick.text) }
                }
            }
            text.axis-label x=(C((left + right) / 2.0)) y=(C(frame.height - 6.0)) text-anchor="middle" {
                (x.label)
            }
            text.axis-label text-anchor="middle"
                transform={ "translate(14 " (C((top + bottom) / 2.0)) ") rotate(-90)" } {
                (y.label)
            }
            (marks)
        }
    }
}

/// A chart in its `<figure>`: the caption (visible), the SVG, and what stands in for the
/// picture (a summary, a small table) for those who cannot see it.
pub fn figure(caption: Markup, svg: Markup, fallback: Markup) -> Markup {
    html! {
        figure.plot {
            figcaption { (caption) }
            (svg)
            (fallback)
        }
    }
}

/// Rows a chart's data table shows at most; the rest is counted.
pub const TABLE_ROWS: usize = 200;

/// A chart's data as a table in a closed `<details>`: the columns' names and the rows (at most
/// [`TABLE_ROWS`] of them are written, of `total`).
pub fn data_table(
    caption: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    total: usize,
) -> Markup {
    html! {
        details.data {
            summary { "Data of this chart" }
            table {
                caption { (caption) }
                thead { tr { @for column in columns { th scope="col" { (column) } } } }
                tbody {
                    @for row in rows.take(TABLE_ROWS) {
                        tr { @for cell in row { td { (cell) } } }
                    }
                }
            }
            @if total > TABLE_ROWS {
                p { "The first " (TABLE_ROWS) " rows of " (total) "." }
            }
        }
    }
}

/// A duration unit for `max_secs`: (seconds per unit, its name).
pub fn time_unit(max_secs: f64) -> (f64, &'static str) {
    if max_secs <= 120.0 {
        (1.0, "s")
    } else if max_secs <= 120.0 * 60.0 {
        (60.0, "min")
    } else {
        (3600.0, "h")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
        assert_eq!(nice_step(140.0), 200.0);
    }

    #[test]
    fn whole_number_axes_tick_no_fractions() {
        let texts = |axis: Axis| axis.ticks.into_iter().map(|t| t.text).collect::<Vec<_>>();
        let axis = Axis::whole((1.0, 3.0), (0.0, 100.0), "n".into(), 8);
        assert_eq!(texts(axis), ["1", "2", "3"]);
        let axis = Axis::whole((1.0, 1.0), (0.0, 100.0), "n".into(), 8);
        assert_eq!(texts(axis), ["0", "1", "2"]);
        let axis = Axis::whole((1.0, 1000.0), (0.0, 100.0), "n".into(), 5);
        assert_eq!(texts(axis), ["0", "200", "400", "600", "800", "1000"]);
    }

    #[test]
    fn nice_ticks_cover_the_values_at_nice_numbers() {
        let (ticks, step) = nice_ticks(0.12, 0.93, 5);
        assert_eq!(step, 0.2);
        assert_eq!(ticks, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        let (ticks, _) = nice_ticks(1.0, 1000.0, 5);
        assert_eq!(ticks, vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        let (ticks, step) = nice_ticks(0.1, 0.3, 4);
        assert_eq!(step, 0.05);
        assert_eq!(ticks, vec![0.1, 0.15, 0.2, 0.25, 0.3], "no float drift");
        // Negative ranges, a single value, zero, nothing finite.
        assert_eq!(nice_ticks(-3.0, -1.0, 2).0, vec![-3.0, -2.0, -1.0]);
        assert_eq!(nice_ticks(5.0, 5.0, 4).0, vec![4.5, 5.0, 5.5]);
        assert_eq!(nice_ticks(0.0, 0.0, 2).0, vec![-1.0, 0.0, 1.0]);
        assert_eq!(nice_ticks(f64::NAN, 1.0, 2).0, vec![0.0, 0.5, 1.0]);
    }

    #[test]
    fn log_ticks_are_decades_with_two_and_five_when_few() {
        assert_eq!(
            log_ticks(0.002, 0.09),
            vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
        );
        assert_eq!(log_ticks(1e-5, 0.5), vec![1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0]);
        assert_eq!(log_ticks(10.0, 10.0), vec![10.0, 20.0, 50.0, 100.0]);
    }

    #[test]
    fn scales_map_values_to_pixels() {
        let linear = Scale::Linear {
            lo: 0.0,
            hi: 10.0,
            from: 100.0,
            to: 0.0,
        };
        assert_eq!(linear.map(0.0), 100.0);
        assert_eq!(linear.map(2.5), 75.0);
        let log = Scale::Log {
            lo: -3.0,
            hi: 0.0,
            from: 0.0,
            to: 300.0,
        };
        assert!((log.map(0.01) - 100.0).abs() < 1e-9);
        assert!((log.map(1.0) - 300.0).abs() < 1e-9);
        let bands = Scale::Bands {
            count: 4,
            from: 0.0,
            to: 200.0,
        };
        assert_eq!(bands.map(0.0), 25.0);
        assert_eq!(bands.map(3.0), 175.0);
        assert_eq!(bands.band_width(), 50.0);
    }

    #[test]
    fn axes_choose_log_only_for_positive_values() {
        let axis = Axis::numeric((0.001, 0.1), true, (0.0, 100.0), "lr".into(), 5);
        assert!(matches!(axis.scale, Scale::Log { .. }));
        assert_eq!(axis.ticks.first().unwrap().text, "0.001");
        assert_eq!(axis.ticks.last().unwrap().text, "0.1");
        let axis = Axis::numeric((0.0, 0.1), true, (0.0, 100.0), "x".into(), 5);
        assert!(matches!(axis.scale, Scale::Linear { .. }), "0 has no log");
        let axis = Axis::numeric((0.0, 1.0), false, (200.0, 0.0), "score".into(), 5);
        assert_eq!(axis.ticks[0].at, 200.0);
        assert_eq!(axis.ticks[0].text, "0");
        assert_eq!(axis.ticks.last().unwrap().at, 0.0);
    }

    #[test]
    fn band_axes_label_every_kth_band_and_cut_long_names() {
        let names: Vec<String> = (0..20).map(|i| format!("category-{i}")).collect();
        let axis = Axis::bands(&names, (0.0, 200.0), "k".into(), 5, 8);
        assert_eq!(axis.ticks.len(), 5);
        assert_eq!(axis.ticks[0].text, "categor…");
        assert_eq!(axis.ticks[1].at, axis.scale.map(4.0));
    }

    #[test]
    fn tick_labels_have_the_decimals_their_step_needs() {
        assert_eq!(tick_label(0.2, 0.2), "0.2");
        assert_eq!(tick_label(0.25, 0.05), "0.25");
        assert_eq!(tick_label(400.0, 200.0), "400");
        assert_eq!(tick_label(-0.0, 0.1), "0");
        assert_eq!(tick_label(1e-5, 1e-5), "1e-5");
        assert_eq!(tick_label(2e7, 1e7), "2e7");
        assert_eq!(number(0.876543), "0.8765");
        assert_eq!(number(1234.4), "1234");
        assert_eq!(number(2.0), "2");
    }

    #[test]
    fn path_data_has_one_decimal() {
        let mut path = PathData::default();
        path.move_to(1.0, 2.04);
        path.line_to(3.12, 4.0);
        path.dot(1.0 / 3.0, 0.0);
        assert_eq!(path.as_str(), "M1.0 2.0L3.1 4.0M0.3 0.0h0");
        assert_eq!(C(2.0 / 3.0).render().into_string(), "0.7");
    }
}
