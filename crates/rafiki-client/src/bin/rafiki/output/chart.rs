//! ASCII line charts of trial metrics, for `rafiki trials logs`: one chart per plot the model
//! declared, each metric a line of its own marker, with the y range on the left, the x range
//! below and a legend.

use std::fmt::Write;

/// One line of a chart: `(x, y)` points, drawn in x order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The metric's name, for the legend.
    pub name: String,
    /// The points; non-finite ones are left out.
    pub points: Vec<(f64, f64)>,
}

const MARKERS: [char; 6] = ['*', '+', 'o', 'x', '#', '@'];

/// A number short enough for an axis label or a preview: four decimals at most, exponent
/// notation for the very small and the very large.
pub fn label(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        "0".to_owned()
    } else if !(1e-3..1e6).contains(&magnitude) {
        format!("{value:.2e}")
    } else {
        let text = format!("{value:.4}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        text.to_owned()
    }
}

/// A padded range: a flat one is widened so its points sit in the middle.
fn range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return None;
    }
    if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return Some((lo - pad, hi + pad));
    }
    Some((lo, hi))
}

/// Draws `series` in a plot area of `width` x `height` characters (at least 10 x 3).
pub fn render(
    title: &str,
    x_label: &str,
    series: &[Series],
    width: usize,
    height: usize,
) -> String {
    let width = width.max(10);
    let height = height.max(3);
    let series: Vec<Series> = series
        .iter()
        .map(|s| {
            let mut points: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name: s.name.clone(),
                points,
            }
        })
        .collect();
    let mut out = format!("{title}\n");
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) =
        (range(all().map(|p| p.0)), range(all().map(|p| p.1)))
    else {
        out.push_str("  (no data)\n");
        return out;
    };
    let col = |x: f64| (((x - x_lo) / (x_hi - x_lo)) * (width - 1) as f64).round() as i64;
    let row = |y: f64| (((y_hi - y) / (y_hi - y_lo)) * (height - 1) as f64).round() as i64;
    let mut grid = vec![vec![' '; width]; height];
    for (i, s) in series.iter().enumerate() {
        let marker = MARKERS[i % MARKERS.len()];
        let cells: Vec<(i64, i64)> = s.points.iter().map(|(x, y)| (col(*x), row(*y))).collect();
        let mut plot = |c: i64, r: i64| {
            if let (Ok(c), Ok(r)) = (usize::try_from(c), usize::try_from(r)) {
                if r < height && c < width {
                    grid[r][c] = marker;
                }
            }
        };
        if let [(c, r)] = cells.as_slice() {
            plot(*c, *r);
        }
        // Each segment is walked in as many steps as it spans cells, so the line is unbroken.
        for pair in cells.windows(2) {
            let ((c0, r0), (c1, r1)) = (pair[0], pair[1]);
            let steps = (c1 - c0).abs().max((r1 - r0).abs()).max(1);
            for step in 0..=steps {
                let t = step as f64 / steps as f64;
                let c = c0 as f64 + (c1 - c0) as f64 * t;
                let r = r0 as f64 + (r1 - r0) as f64 * t;
                plot(c.round() as i64, r.round() as i64);
            }
        }
    }
    let (top, bottom) = (label(y_hi), label(y_lo));
    let margin = top.len().max(bottom.len());
    for (r, cells) in grid.iter().enumerate() {
        let axis_label = match r {
            0 => top.as_str(),
            r if r == height - 1 => bottom.as_str(),
            _ => "",
        };
        let line: String = cells.iter().collect();
        let _ = writeln!(out, "{axis_label:>margin$} |{}", line.trim_end());
    }
    let _ = writeln!(out, "{:>margin$} +{}", "", "-".repeat(width));
    let (left, right) = (label(x_lo), label(x_hi));
    let gap = width.saturating_sub(left.len() + right.len()).max(1);
    let _ = writeln!(out, "{:>margin$}  {left}{}{right}", "", " ".repeat(gap));
    let legend: Vec<String> = series
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} {}", MARKERS[i % MARKERS.len()], s.name))
        .collect();
    let _ = writeln!(
        out,
        "{:>margin$}  x: {x_label}   {}",
        "",
        legend.join("   ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, points: &[(f64, f64)]) -> Series {
        Series {
            name: name.into(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn a_rising_line_goes_from_bottom_left_to_top_right() {
        let chart = render(
            "loss",
            "epoch",
            &[series("acc", &[(1.0, 0.5), (2.0, 0.75), (3.0, 1.0)])],
            10,
            3,
        );
        let expected = "\
loss
  1 |        **
    |   *****
0.5 |***
    +----------
     1        3
     x: epoch   * acc
";
        assert_eq!(chart, expected);
    }

    #[test]
    fn lines_have_their_own_markers_and_bad_points_are_left_out() {
        let chart = render(
            "two",
            "time",
            &[
                series("a", &[(0.0, 0.0), (1.0, f64::NAN), (2.0, 1.0)]),
                series("b", &[(0.0, 1.0), (2.0, 0.0)]),
            ],
            20,
            5,
        );
        assert!(chart.contains('*') && chart.contains('+'), "{chart}");
        assert!(chart.contains("* a") && chart.contains("+ b"));
        assert!(!chart.contains("NaN"));
    }

    #[test]
    fn flat_and_empty_data_still_draw() {
        let flat = render(
            "flat",
            "x",
            &[series("c", &[(0.0, 2.0), (1.0, 2.0)])],
            10,
            3,
        );
        assert!(
            flat.lines().nth(2).unwrap().contains("**********"),
            "{flat}"
        );
        let empty = render("none", "x", &[series("c", &[])], 10, 3);
        assert_eq!(empty, "none\n  (no data)\n");
        let one = render("one", "x", &[series("c", &[(5.0, 5.0)])], 10, 3);
        let drawn: usize = one.lines().take(4).map(|l| l.matches('*').count()).sum();
        assert_eq!(drawn, 1, "{one}");
    }

    #[test]
    fn labels_stay_short() {
        assert_eq!(label(0.5), "0.5");
        assert_eq!(label(3.0), "3");
        assert_eq!(label(0.123456), "0.1235");
        assert_eq!(label(1234567.0), "1.23e6");
        assert_eq!(label(0.0), "0");
    }
}
