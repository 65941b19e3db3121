//! How commands print: a table for people, or (`--json`) the server's answer as JSON for
//! scripts. Commands decide what to print; the tables, charts, previews and progress displays
//! they print are made here, from the formatting helpers of this module.

mod chart;
pub mod logs;
pub mod params;
pub mod progress;
pub mod tables;

use chrono::{DateTime, Utc};
use comfy_table::{presets, ContentArrangement, LineStyle, Table, TableStyle};
use serde::Serialize;

/// Where results go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// JSON instead of tables.
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or the table `table` builds from it.
    pub fn show<T: Serialize>(&self, value: &T, table: impl FnOnce(&T) -> Table) {
        if self.json {
            print_json(value);
        } else {
            println!("{}", table(value).trim_fmt());
        }
    }

    /// Prints `value` as JSON, or the line `text` for people.
    pub fn say<T: Serialize>(&self, value: &T, text: impl FnOnce(&T) -> String) {
        if self.json {
            print_json(value);
        } else {
            println!("{}", text(value));
        }
    }
}

/// Pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // Only non-string map keys fail, and no answer has them.
        Err(e) => eprintln!("InvalidResponseError: {e}"),
    }
}

/// Listings: a line under the header, no other lines (easy to read and to `grep`).
const LISTING: TableStyle =
    TableStyle::new().header_separator(LineStyle::none().fill('─').junction('─'));

/// A table with these column headers.
pub fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(LISTING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().copied());
    table
}

/// A listing: a table with these column headers and a row per item.
pub fn listing<T>(headers: &[&str], items: &[T], row: impl Fn(&T) -> Vec<String>) -> Table {
    let mut table = table(headers);
    for item in items {
        table.add_row(row(item));
    }
    table
}

/// A two-column table of one record's fields.
pub fn record(rows: Vec<(&str, String)>) -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    for (key, value) in rows {
        table.add_row(vec![key.to_owned(), value]);
    }
    table
}

/// A datetime for people: `2026-11-26 17:02:03`.
pub fn when(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An optional datetime, `-` when absent.
pub fn when_opt(time: &Option<DateTime<Utc>>) -> String {
    time.as_ref().map_or_else(|| "-".to_owned(), when)
}

/// A score, `-` when absent.
pub fn score(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |s| format!("{s:.4}"))
}

/// A size in bytes for people.
pub use rafiki_types::units::readable_size as size;

/// Compact JSON of a value, for table cells.
pub fn compact(value: &serde_json::Value) -> String {
    value.to_string()
}
