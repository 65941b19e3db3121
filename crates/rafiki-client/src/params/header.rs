//! The header of a parameters file: the JSON object that lists each entry with its kind and
//! either its value or the place and layout of its buffer (`docs/parameters.md`).
//!
//! serde reads the header into the types below, then [`check`] refuses what the format
//! refuses, in the Python reader's words. Each field of an entry is read as a [`Field`], which
//! keeps a value of the wrong JSON type instead of failing the parse: a refusal names its
//! entry, and the entry's `name` may come after the field that is wrong.

use std::collections::{BTreeMap, HashSet};

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::{fail, Array, Dtype, ParamValue, ParamsError};

/// The header as written.
#[derive(Deserialize)]
struct Header {
    entries: Vec<Field<RawEntry>>,
    /// Fields the format does not know; refused by name.
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// A field as written: absent, of the JSON type the format wants, or of another one.
#[derive(Default, Deserialize)]
#[serde(untagged)]
pub(super) enum Field<T> {
    #[default]
    #[serde(skip)]
    Absent,
    Right(T),
    Wrong(Value),
}

impl<T> Field<T> {
    fn is_present(&self) -> bool {
        !matches!(self, Field::Absent)
    }
}

/// An entry as written, before any check.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawEntry {
    name: Field<String>,
    kind: Field<Kind>,
    value: Field<Inline>,
    offset: Field<u64>,
    nbytes: Field<u64>,
    dtype: Field<String>,
    shape: Field<Vec<u64>>,
    /// Fields no kind has; refused with the others that do not belong.
    #[serde(flatten)]
    other: BTreeMap<String, IgnoredAny>,
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
enum Kind {
    Str,
    Int,
    Float,
    Bool,
    Bytes,
    Ndarray,
    NumpyScalar,
}

impl Kind {
    /// The fields an entry of this kind has besides `name` and `kind`, sorted.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Str | Kind::Int | Kind::Float | Kind::Bool => &["value"],
            Kind::Bytes => &["nbytes", "offset"],
            Kind::Ndarray => &["dtype", "nbytes", "offset", "shape"],
            Kind::NumpyScalar => &["dtype", "nbytes", "offset"],
        }
    }
}

/// The JSON types an inline `value` may have; which one a kind wants is checked later.
/// `BigInt` holds the integers above `i64::MAX`, refused for `int` but read by `float`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Inline {
    Bool(bool),
    Int(i64),
    BigInt(u64),
    Float(f64),
    Str(String),
}

/// A checked entry: its name and where its value is.
pub(super) struct Entry {
    pub name: String,
    pub content: Content,
}

/// Where an entry's value is.
pub(super) enum Content {
    /// In the header (`str`, `int`, `float`, `bool`).
    Inline(ParamValue),
    /// In a buffer of the data section, at `offset` from its start.
    Buffer {
        offset: u64,
        nbytes: u64,
        layout: Layout,
    },
}

/// How a buffer's bytes are read.
pub(super) enum Layout {
    Bytes,
    Array { dtype: Dtype, shape: Vec<u64> },
    Scalar { dtype: Dtype },
}

impl Layout {
    /// The value these bytes hold; their length was checked against the shape.
    pub fn value(self, bytes: &[u8]) -> ParamValue {
        let data = bytes.to_vec();
        match self {
            Layout::Bytes => ParamValue::Bytes(data),
            Layout::Array { dtype, shape } => ParamValue::Array(Array { dtype, shape, data }),
            Layout::Scalar { dtype } => ParamValue::Scalar(Array {
                dtype,
                shape: Vec::new(),
                data,
            }),
        }
    }
}

/// Reads a header's bytes into its entries, each still to be [`check`]ed.
pub(super) fn read(bytes: &[u8]) -> Result<Vec<Field<RawEntry>>, ParamsError> {
    let not_json = |e: &dyn std::fmt::Display| format!("the header is not UTF-8 JSON: {e}");
    let text = std::str::from_utf8(bytes).or_else(|e| fail(not_json(&e)))?;
    let header: Header = serde_json::from_str(text).or_else(|e| {
        // Entries and their fields never fail to deserialize, so a data error is the header's.
        if e.is_data() {
            fail("the header must be a JSON object with an `entries` list")
        } else {
            fail(not_json(&e))
        }
    })?;
    if !header.unknown.is_empty() {
        let names: Vec<&str> = header.unknown.keys().map(String::as_str).collect();
        return fail(format!("unknown header field(s) {}", names.join(", ")));
    }
    Ok(header.entries)
}

/// Checks an entry against the format; `names` are those of the entries before it.
pub(super) fn check(
    entry: Field<RawEntry>,
    names: &mut HashSet<String>,
) -> Result<Entry, ParamsError> {
    let entry = match entry {
        Field::Right(entry) => entry,
        // A field given twice is the only way an object fails to be a `RawEntry`.
        Field::Wrong(Value::Object(_)) => return fail("an entry gives a field twice"),
        _ => return fail("every entry must be a JSON object"),
    };
    let Field::Right(name) = entry.name else {
        return fail("every entry needs a string `name`");
    };
    if !names.insert(name.clone()) {
        return fail(format!("entry {name:?} appears twice"));
    }
    let kind = match entry.kind {
        Field::Right(kind) => kind,
        Field::Absent => return fail(format!("entry {name:?}: unknown kind null")),
        Field::Wrong(kind) => return fail(format!("entry {name:?}: unknown kind {kind}")),
    };
    let mut fields: Vec<&str> = [
        ("dtype", entry.dtype.is_present()),
        ("nbytes", entry.nbytes.is_present()),
        ("offset", entry.offset.is_present()),
        ("shape", entry.shape.is_present()),
        ("value", entry.value.is_present()),
    ]
    .into_iter()
    .filter_map(|(field, present)| present.then_some(field))
    .chain(entry.other.keys().map(String::as_str))
    .collect();
    fields.sort_unstable();
    let allowed = kind.fields();
    if fields != allowed {
        let kind: &str = kind.into();
        return fail(format!(
            "entry {name:?} ({kind}): fields must be {allowed:?}, got {fields:?}"
        ));
    }
    let content = match kind {
        Kind::Str | Kind::Int | Kind::Float | Kind::Bool => inline(kind, entry.value),
        Kind::Bytes | Kind::Ndarray | Kind::NumpyScalar => {
            buffer(kind, entry.offset, entry.nbytes, entry.dtype, entry.shape)
        }
    }
    .or_else(|message| fail(format!("entry {name:?}: {message}")))?;
    Ok(Entry { name, content })
}

/// The value of an inline entry, or why it is refused.
fn inline(kind: Kind, value: Field<Inline>) -> Result<Content, String> {
    let value = match (kind, value) {
        (Kind::Str, Field::Right(Inline::Str(s))) => ParamValue::Str(s),
        (Kind::Str, _) => return Err("str value must be a JSON string".into()),
        (Kind::Int, Field::Right(Inline::Int(i))) => ParamValue::Int(i),
        (Kind::Int, Field::Right(Inline::BigInt(_))) => {
            return Err("int value is out of the signed 64-bit range".into())
        }
        (Kind::Int, _) => return Err("int value must be a JSON integer".into()),
        (Kind::Float, Field::Right(Inline::Str(s))) => ParamValue::Float(match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => return Err(format!("float value {s:?} is not a number")),
        }),
        (Kind::Float, Field::Right(Inline::Int(i))) => ParamValue::Float(i as f64),
        (Kind::Float, Field::Right(Inline::BigInt(u))) => ParamValue::Float(u as f64),
        (Kind::Float, Field::Right(Inline::Float(x))) => ParamValue::Float(x),
        (Kind::Float, _) => return Err("float value must be a number".into()),
        (Kind::Bool, Field::Right(Inline::Bool(b))) => ParamValue::Bool(b),
        _ => return Err("bool value must be true or false".into()),
    };
    Ok(Content::Inline(value))
}

/// Where a buffer entry's bytes are and how to read them, or why it is refused.
fn buffer(
    kind: Kind,
    offset: Field<u64>,
    nbytes: Field<u64>,
    dtype: Field<String>,
    shape: Field<Vec<u64>>,
) -> Result<Content, String> {
    let non_negative = |value: Field<u64>, field: &str| match value {
        Field::Right(n) => Ok(n),
        _ => Err(format!("`{field}` must be a non-negative integer")),
    };
    let offset = non_negative(offset, "offset")?;
    let nbytes = non_negative(nbytes, "nbytes")?;
    if kind == Kind::Bytes {
        let layout = Layout::Bytes;
        return Ok(Content::Buffer {
            offset,
            nbytes,
            layout,
        });
    }
    let dtype = match dtype {
        Field::Right(code) => Dtype::parse(&code)
            .ok_or_else(|| format!("dtype {code:?} is unknown, not canonical or not allowed"))?,
        _ => return Err("`dtype` must be a string".into()),
    };
    let shape = match (kind, shape) {
        (Kind::Ndarray, Field::Right(shape)) => shape,
        (Kind::Ndarray, _) => return Err("`shape` must be a list of non-negative integers".into()),
        _ => Vec::new(),
    };
    let needed = shape
        .iter()
        .try_fold(1u64, |acc, d| acc.checked_mul(*d))
        .and_then(|count| count.checked_mul(dtype.item_size() as u64));
    if needed != Some(nbytes) {
        return Err(format!(
            "shape {shape:?} of {dtype} needs {} bytes, the entry says {nbytes}",
            needed.map_or("too many".to_owned(), |n| n.to_string())
        ));
    }
    let layout = match kind {
        Kind::Ndarray => Layout::Array { dtype, shape },
        _ => Layout::Scalar { dtype },
    };
    Ok(Content::Buffer {
        offset,
        nbytes,
        layout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_that_gives_a_field_twice_is_refused() {
        let header = br#"{"entries":[{"name":"a","kind":"int","value":1,"value":2}]}"#;
        let entry = read(header).unwrap().into_iter().next().unwrap();
        let err = check(entry, &mut HashSet::new()).err().unwrap();
        assert!(err.to_string().contains("gives a field twice"), "{err}");
    }

    #[test]
    fn null_is_a_value_of_the_wrong_type_not_an_absent_field() {
        let header = br#"{"entries":[{"name":"a","kind":"int","value":null}]}"#;
        let entry = read(header).unwrap().into_iter().next().unwrap();
        let err = check(entry, &mut HashSet::new()).err().unwrap();
        assert!(err.to_string().contains("JSON integer"), "{err}");
    }
}
