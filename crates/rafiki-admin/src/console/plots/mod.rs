//! The console's charts, drawn as SVG on the server: [`tuning`] (a train job's tuning plots,
//! for the job page) and [`trial_charts`] (a trial's declared plots, for the trial page), both
//! drawn with the kit of [`svg`].
//!
//! Colours and dash patterns are classes of `console.css` (the score colour scale `s0`..`s6`,
//! the metric line styles `m0`..`m5`), so a chart never needs a `style` attribute.

pub mod svg;
pub mod trial_charts;
pub mod tuning;

use maud::{html, Markup};

pub use trial_charts::trial_charts;
pub use tuning::tuning;

/// Colour classes of the score scale, `s0` (worst) to `s6` (best).
pub const SCORE_BINS: usize = 7;

/// Line styles of a chart's metrics, `m0`..`m5`: each its own colour and dash pattern, so
/// lines differ by more than colour.
pub const LINE_STYLES: usize = 6;

/// The shape of a legend's key.
#[derive(Debug, Clone, Copy)]
pub enum Key {
    /// A filled dot (in a group of class `class`, as the chart's points are).
    Dot,
    /// A line.
    Line,
    /// A ring.
    Ring,
    /// A small ×.
    Cross,
    /// A bar.
    Bar,
}

/// A legend's key: a small SVG drawn with the same classes as the chart's marks (decorative:
/// the legend's text says what it stands for).
pub fn key(class: &str, shape: Key) -> Markup {
    html! {
        svg.key viewBox="0 0 24 12" width="24" height="12" aria-hidden="true" {
            @match shape {
                Key::Dot => g class=(class) { circle cx="12" cy="6" r="3" {} },
                Key::Line => path class=(class) d="M1 6H23" {},
                Key::Ring => circle class=(class) cx="12" cy="6" r="4.5" {},
                Key::Cross => path class=(class) d="M9 3l6 6m0-6l-6 6" {},
                Key::Bar => path class=(class) d="M12 12V1" stroke-width="6" {},
            }
        }
    }
}
