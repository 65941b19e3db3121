//! `rafiki params download` and `params show` for people: a line per entry of a trial's
//! parameters, with a short preview of its value.

use rafiki_client::params::{ParamValue, Parameters};
use serde_json::{json, Value};

use super::chart;
use super::{size, table};

/// A value's dtype and shape (empty for plain Python values) and a short preview of it.
fn preview(value: &ParamValue) -> (String, String, String) {
    const MAX: usize = 6;
    let list = |items: Vec<String>, total: usize| {
        let more = if total > MAX { ", ..." } else { "" };
        format!(
            "[{}{more}]",
            items.into_iter().take(MAX).collect::<Vec<_>>().join(", ")
        )
    };
    match value {
        ParamValue::Str(s) => {
            let short: String = s.chars().take(60).collect();
            let more = if short.len() < s.len() { "..." } else { "" };
            (String::new(), String::new(), format!("{short:?}{more}"))
        }
        ParamValue::Int(i) => (String::new(), String::new(), i.to_string()),
        ParamValue::Float(x) => (String::new(), String::new(), x.to_string()),
        ParamValue::Bool(b) => (String::new(), String::new(), b.to_string()),
        ParamValue::Bytes(b) => (String::new(), String::new(), size(b.len() as u64)),
        ParamValue::Array(a) | ParamValue::Scalar(a) => {
            let shape = format!("{:?}", a.shape());
            let values = if let Some(v) = a.to_f64_vec() {
                list(
                    v.iter().take(MAX).map(|x| chart::label(*x)).collect(),
                    v.len(),
                )
            } else if let Some(v) = a.to_string_vec() {
                let n = v.len();
                list(
                    v.into_iter().take(MAX).map(|s| format!("{s:?}")).collect(),
                    n,
                )
            } else if let Some(v) = a.to_i64_vec() {
                list(v.iter().take(MAX).map(i64::to_string).collect(), v.len())
            } else {
                size(a.data().len() as u64)
            };
            (a.dtype().to_string(), shape, values)
        }
    }
}

/// The entries of `params`: as JSON, and as a table.
pub fn params_summary(params: &Parameters) -> (Value, comfy_table::Table) {
    let mut t = table(&["name", "kind", "dtype", "shape", "value"]);
    let mut entries = Vec::new();
    for (name, value) in params.iter() {
        let (dtype, shape, shown) = preview(value);
        entries.push(json!({"name": name, "kind": value.kind(), "dtype": dtype, "shape": shape, "value": shown}));
        t.add_row(vec![
            name.to_owned(),
            value.kind().to_owned(),
            dtype,
            shape,
            shown,
        ]);
    }
    (Value::Array(entries), t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_previews_are_short() {
        let params = rafiki_client::params::decode_params(&include_bytes_hex()).unwrap();
        let (entries, table) = params_summary(&params);
        let text = table.to_string();
        assert!(text.contains("<f4") && text.contains("[1, 2]"), "{text}");
        assert_eq!(entries[1]["value"], "3");
        assert_eq!(entries[2]["value"], "\"mlp\"");
    }

    /// The example of docs/parameters.md.
    fn include_bytes_hex() -> Vec<u8> {
        let doc = include_str!("../../../../../../docs/parameters.md");
        let start = doc.find("<!-- example-hex-start -->").unwrap();
        let end = doc.find("<!-- example-hex-end -->").unwrap();
        doc[start..end]
            .lines()
            .filter_map(|l| l.split_once(": "))
            .flat_map(|(_, rest)| {
                rest.split(" | ")
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
