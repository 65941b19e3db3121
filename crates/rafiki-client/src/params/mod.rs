//! A reader of trial parameters: the binary format of `docs/parameters.md` that
//! `GET /trials/{id}/parameters` serves and Python's `rafiki.params.decode_params` reads.
//!
//! Reading is safe: the bytes are data only, and every length, offset, dtype and field is
//! checked before it is trusted, with the same rules as the Python reader. Values keep their
//! types: `str`, `int`, `float`, `bool` and `bytes` map to Rust values; numpy arrays and
//! scalars become an [`Array`] (dtype, shape and the raw C-ordered element bytes), with
//! helpers to read the elements as numbers or text.
//!
//! The JSON header is read by `header`, into serde types, and checked there (its dtypes are
//! parsed by `dtype`); this module reads the preamble before it and the buffers after it.

mod dtype;
mod header;

use std::collections::HashSet;

pub use dtype::{ByteOrder, Dtype, DtypeKind};

const MAGIC: &[u8; 8] = b"RAFKPRMS";
const VERSION: u16 = 1;
const PREAMBLE_SIZE: usize = 16;
const ALIGN: u64 = 64;

/// Bytes that are not a valid parameters file. The message starts with
/// `invalid parameters file:`, as the Python reader's does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid parameters file: {0}")]
pub struct ParamsError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, ParamsError> {
    Err(ParamsError(message.into()))
}

/// Decoded parameters: the dict `dump_parameters()` returned, in its order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parameters {
    entries: Vec<(String, ParamValue)>,
}

impl Parameters {
    /// The value named `name`, if any.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// if let Some(rafiki_client::params::ParamValue::Int(epochs)) = params.get("epochs") {
    ///     println!("trained for {epochs} epochs");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value)
    }

    /// The entries in the dict's order.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// for (name, value) in params.iter() {
    ///     println!("{name}: {}", value.kind());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// How many entries there are.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// println!("{} parameters", params.len());
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// if params.is_empty() {
    ///     println!("the model saved nothing");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in order.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// let owned: std::collections::BTreeMap<_, _> = params.into_entries().into_iter().collect();
    /// # Ok(()) }
    /// ```
    pub fn into_entries(self) -> Vec<(String, ParamValue)> {
        self.entries
    }
}

/// One parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A Python `str`.
    Str(String),
    /// A Python `int` (signed 64-bit).
    Int(i64),
    /// A Python `float`, bits exact (NaN, infinities and -0.0 included).
    Float(f64),
    /// A Python `bool`.
    Bool(bool),
    /// Python `bytes`.
    Bytes(Vec<u8>),
    /// A `numpy.ndarray`.
    Array(Array),
    /// A numpy scalar such as `numpy.float32(0.5)`: a 0-d [`Array`].
    Scalar(Array),
}

impl ParamValue {
    /// The kind's name in the format's header (`str`, `int`, ..., `ndarray`, `numpy_scalar`).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// let kinds: Vec<&str> = params.iter().map(|(_, v)| v.kind()).collect();
    /// # Ok(()) }
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            ParamValue::Str(_) => "str",
            ParamValue::Int(_) => "int",
            ParamValue::Float(_) => "float",
            ParamValue::Bool(_) => "bool",
            ParamValue::Bytes(_) => "bytes",
            ParamValue::Array(_) => "ndarray",
            ParamValue::Scalar(_) => "numpy_scalar",
        }
    }
}

/// A numpy array's elements: C order (last index fastest), in the array's own byte order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    dtype: Dtype,
    shape: Vec<u64>,
    data: Vec<u8>,
}

impl Array {
    /// The element type.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// if let Some(rafiki_client::params::ParamValue::Array(weights)) = params.get("weights") {
    ///     println!("{}", weights.dtype()); // e.g. <f4
    /// }
    /// # Ok(()) }
    /// ```
    pub fn dtype(&self) -> &Dtype {
        &self.dtype
    }

    /// The dimensions; empty for a 0-d array (and a numpy scalar).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// if let Some(rafiki_client::params::ParamValue::Array(weights)) = params.get("weights") {
    ///     println!("{:?}", weights.shape()); // e.g. [1, 2]
    /// }
    /// # Ok(()) }
    /// ```
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The raw element bytes (`len() * dtype().item_size()` of them).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// if let Some(rafiki_client::params::ParamValue::Array(weights)) = params.get("weights") {
    ///     std::fs::write("weights.raw", weights.data()).unwrap();
    /// }
    /// # Ok(()) }
    /// ```
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The number of elements.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// if let Some(rafiki_client::params::ParamValue::Array(weights)) = params.get("weights") {
    ///     println!("{} elements", weights.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.shape.iter().product::<u64>() as usize
    }

    /// Whether it has no elements.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// if let Some(rafiki_client::params::ParamValue::Array(weights)) = params.get("weights") {
    ///     assert_eq!(weights.is_empty(), weights.len() == 0);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn items(&self) -> impl Iterator<Item = &[u8]> {
        // Every readable dtype has items of at least one byte.
        self.data.chunks_exact(self.dtype.item_size().max(1))
    }

    /// The elements as `f64`, for bool, integer and float dtypes (integers beyond 2^53 round);
    /// `None` for complex, text, bytes and datetime dtypes.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// if let Some(rafiki_client::params::ParamValue::Array(weights)) = params.get("weights") {
    ///     let values: Vec<f64> = weights.to_f64_vec().expect("a numeric array");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        let order = self.dtype.byte_order();
        let convert: fn(&[u8], ByteOrder) -> f64 = match self.dtype.kind() {
            DtypeKind::Bool => |b, _| f64::from(b[0]),
            DtypeKind::Int => |b, o| read_int(b, o) as f64,
            DtypeKind::UInt => |b, o| read_uint(b, o) as f64,
            DtypeKind::Float => |b, o| match b.len() {
                2 => f16_to_f64(read_uint(b, o) as u16),
                4 => f64::from(f32::from_bits(read_uint(b, o) as u32)),
                _ => f64::from_bits(read_uint(b, o)),
            },
            _ => return None,
        };
        Some(self.items().map(|b| convert(b, order)).collect())
    }

    /// The elements as `i64`, for bool and integer dtypes (and datetime64/timedelta64 counts of
    /// their unit); `None` for others, or when a `u8` value does not fit.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// if let Some(rafiki_client::params::ParamValue::Array(weights)) = params.get("weights") {
    ///     let counts: Option<Vec<i64>> = weights.to_i64_vec(); // None for floats
    /// }
    /// # Ok(()) }
    /// ```
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        let order = self.dtype.byte_order();
        match self.dtype.kind() {
            DtypeKind::Bool => Some(self.items().map(|b| i64::from(b[0])).collect()),
            DtypeKind::Int | DtypeKind::Datetime(_) | DtypeKind::Timedelta(_) => {
                Some(self.items().map(|b| read_int(b, order)).collect())
            }
            DtypeKind::UInt => self
                .items()
                .map(|b| i64::try_from(read_uint(b, order)).ok())
                .collect(),
            _ => None,
        }
    }

    /// The elements as text, for `U` (fixed-width Unicode) and `S` (fixed-width bytes, read as
    /// UTF-8) dtypes, with numpy's trailing zero padding removed; `None` for others or for
    /// code points that are not valid.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let params = client.get_trial_parameters(trial_id).await?.params;
    /// if let Some(rafiki_client::params::ParamValue::Array(weights)) = params.get("weights") {
    ///     let labels: Option<Vec<String>> = weights.to_string_vec(); // Some for U and S dtypes
    /// }
    /// # Ok(()) }
    /// ```
    pub fn to_string_vec(&self) -> Option<Vec<String>> {
        let order = self.dtype.byte_order();
        match self.dtype.kind() {
            DtypeKind::Unicode => self
                .items()
                .map(|b| {
                    b.chunks_exact(4)
                        .map(|c| read_uint(c, order) as u32)
                        .take_while(|c| *c != 0)
                        .map(char::from_u32)
                        .collect::<Option<String>>()
                })
                .collect(),
            DtypeKind::Bytes => self
                .items()
                .map(|b| {
                    let end = b.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
                    String::from_utf8(b[..end].to_vec()).ok()
                })
                .collect(),
            _ => None,
        }
    }
}

fn read_uint(bytes: &[u8], order: ByteOrder) -> u64 {
    let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
    match order {
        ByteOrder::Big | ByteOrder::NotApplicable => bytes.iter().fold(0, fold),
        ByteOrder::Little => bytes.iter().rev().fold(0, fold),
    }
}

fn read_int(bytes: &[u8], order: ByteOrder) -> i64 {
    let bits = 8 * bytes.len() as u32;
    let raw = read_uint(bytes, order);
    // Sign-extend from the item's width.
    if bits == 64 {
        raw as i64
    } else {
        ((raw << (64 - bits)) as i64) >> (64 - bits)
    }
}

/// IEEE 754 half precision to double.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24),
        0x1f if fraction == 0.0 => sign * f64::INFINITY,
        0x1f => f64::NAN,
        _ => sign * (1.0 + fraction / 1024.0) * 2f64.powi(exponent - 15),
    }
}

fn round_up(n: u64) -> Option<u64> {
    Some(n.checked_add(ALIGN - 1)? / ALIGN * ALIGN)
}

/// Reads parameters from the bytes of a parameters file (what `GET /trials/{id}/parameters`
/// answers).
///
/// ```
/// let params = rafiki_client::params::decode_params(b"RAFKPRMS\x01\x00\x00\x00\x0e\x00\x00\x00{\"entries\":[]}");
/// assert!(params.is_err(), "the data section must start at a multiple of 64");
/// ```
pub fn decode_params(data: &[u8]) -> Result<Parameters, ParamsError> {
    let total = data.len() as u64;
    let header_end = preamble(data)?;
    let entries = header::read(&data[PREAMBLE_SIZE..header_end])?;
    let data_start = round_up(header_end as u64).unwrap_or(u64::MAX);
    let padding_end = data_start.min(total) as usize;
    if data[header_end..padding_end].iter().any(|b| *b != 0) {
        return fail("padding bytes after the header must be zero");
    }

    let mut params = Parameters::default();
    // A set, so a header of many entries costs linear time.
    let mut names = HashSet::new();
    let mut expected_offset = 0u64;
    let mut buffers_end = 0u64;
    for entry in entries {
        let header::Entry { name, content } = header::check(entry, &mut names)?;
        let value = match content {
            header::Content::Inline(value) => value,
            header::Content::Buffer {
                offset,
                nbytes,
                layout,
            } => {
                if offset != expected_offset {
                    return fail(format!(
                        "entry {name:?}: offset {offset} (expected {expected_offset})"
                    ));
                }
                let end = data_start
                    .checked_add(offset)
                    .and_then(|start| start.checked_add(nbytes))
                    .filter(|end| *end <= total);
                let Some(end) = end else {
                    return fail(format!(
                        "entry {name:?}: its {nbytes} bytes run past the end of the data"
                    ));
                };
                expected_offset = round_up(offset + nbytes).unwrap_or(u64::MAX);
                buffers_end = offset + nbytes;
                // Within `data`, so both fit in usize.
                layout.value(&data[(end - nbytes) as usize..end as usize])
            }
        };
        params.entries.push((name, value));
    }

    if total != data_start.saturating_add(buffers_end) {
        return fail(format!(
            "the data is {total} bytes long; its entries say {}",
            data_start.saturating_add(buffers_end)
        ));
    }
    Ok(params)
}

/// Checks the preamble: magic bytes, version and flags; returns where the header ends.
fn preamble(data: &[u8]) -> Result<usize, ParamsError> {
    let total = data.len() as u64;
    if data.len() < PREAMBLE_SIZE {
        return fail(format!(
            "{total} bytes is shorter than the {PREAMBLE_SIZE}-byte preamble"
        ));
    }
    if &data[..8] != MAGIC {
        return fail(format!(
            "bad magic bytes {:?} (expected \"RAFKPRMS\")",
            String::from_utf8_lossy(&data[..8])
        ));
    }
    let version = u16::from_le_bytes([data[8], data[9]]);
    if version != VERSION {
        return fail(format!(
            "format version {version} is not supported (this reader knows {VERSION})"
        ));
    }
    let flags = u16::from_le_bytes([data[10], data[11]]);
    if flags != 0 {
        return fail(format!("unknown flags {flags:#06x}"));
    }
    let header_len = u64::from(u32::from_le_bytes([data[12], data[13], data[14], data[15]]));
    let header_end = PREAMBLE_SIZE as u64 + header_len;
    if header_end > total {
        return fail(format!(
            "the header ({header_len} bytes) runs past the end of the data ({total} bytes)"
        ));
    }
    // At most `data.len()`, so it fits in usize.
    Ok(header_end as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of docs/parameters.md, read from its hex dump.
    fn doc_example() -> Vec<u8> {
        let doc = include_str!("../../../../docs/parameters.md");
        let start = doc
            .find("<!-- example-hex-start -->")
            .expect("start marker");
        let end = doc.find("<!-- example-hex-end -->").expect("end marker");
        doc[start..end]
            .lines()
            .filter_map(|line| line.split_once(": "))
            .flat_map(|(_, rest)| {
                let hex = rest.split(" | ").next().unwrap_or_default();
                hex.split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).expect("a hex byte"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Bytes of a file with this header and data section.
    fn file(header: &str, buffers: &[u8]) -> Vec<u8> {
        let mut out = b"RAFKPRMS\x01\x00\x00\x00".to_vec();
        out.extend((header.len() as u32).to_le_bytes());
        out.extend(header.as_bytes());
        while !out.len().is_multiple_of(64) {
            out.push(0);
        }
        out.extend(buffers);
        out
    }

    #[test]
    fn reads_the_documented_example() {
        let bytes = doc_example();
        assert_eq!(bytes.len(), 264);
        let params = decode_params(&bytes).unwrap();
        let names: Vec<&str> = params.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["weights", "epochs", "name"], "the dict's order");
        let Some(ParamValue::Array(weights)) = params.get("weights") else {
            panic!("weights is an array: {params:?}");
        };
        assert_eq!(weights.dtype().to_string(), "<f4");
        assert_eq!(weights.shape(), [1, 2]);
        assert_eq!(weights.data(), [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
        assert_eq!(weights.to_f64_vec().unwrap(), [1.0, 2.0]);
        assert_eq!(params.get("epochs"), Some(&ParamValue::Int(3)));
        assert_eq!(params.get("name"), Some(&ParamValue::Str("mlp".into())));
        assert_eq!(params.get("missing"), None);
    }

    /// Written by Python's `rafiki.params.encode_params` from
    /// `{"f": -0.0, "nan": nan, "inf": -inf, "b": b"\x00\xff", "t": True, "big": 2**63 - 1,
    ///   "h": numpy.float16(1.5), "be": numpy.array([1, -2], ">i2"),
    ///   "u": numpy.array(["hé", ""], "<U2"), "e": numpy.zeros((0, 3), "<f8"),
    ///   "when": numpy.array(["2026-11-26"], "<M8[D]"), "pi": 3.141592653589793}`.
    const RICH: &str = include_str!("../../tests/data/rich_params.hex");

    #[test]
    fn reads_every_kind_bits_exact() {
        let params = decode_params(&hex(RICH.trim())).unwrap();
        let float = |name| match params.get(name) {
            Some(ParamValue::Float(x)) => *x,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(float("f").to_bits(), (-0.0f64).to_bits());
        assert!(float("nan").is_nan());
        assert_eq!(float("inf"), f64::NEG_INFINITY);
        assert_eq!(float("pi").to_bits(), std::f64::consts::PI.to_bits());
        assert_eq!(params.get("b"), Some(&ParamValue::Bytes(vec![0, 0xff])));
        assert_eq!(params.get("t"), Some(&ParamValue::Bool(true)));
        assert_eq!(params.get("big"), Some(&ParamValue::Int(i64::MAX)));
        let array = |name| match params.get(name) {
            Some(ParamValue::Array(a) | ParamValue::Scalar(a)) => a.clone(),
            other => panic!("{name}: {other:?}"),
        };
        assert!(matches!(params.get("h"), Some(ParamValue::Scalar(_))));
        assert_eq!(array("h").shape(), [] as [u64; 0]);
        assert_eq!(array("h").to_f64_vec().unwrap(), [1.5]);
        let be = array("be");
        assert_eq!(be.dtype().byte_order(), ByteOrder::Big);
        assert_eq!(be.to_i64_vec().unwrap(), [1, -2]);
        assert_eq!(be.to_f64_vec().unwrap(), [1.0, -2.0]);
        assert_eq!(array("u").to_string_vec().unwrap(), ["hé", ""]);
        assert_eq!(array("u").dtype().to_string(), "<U2");
        let empty = array("e");
        assert_eq!(
            (empty.shape(), empty.is_empty()),
            ([0u64, 3].as_slice(), true)
        );
        assert_eq!(empty.to_f64_vec().unwrap(), [] as [f64; 0]);
        let when = array("when");
        assert_eq!(when.dtype().kind(), &DtypeKind::Datetime("D".into()));
        assert_eq!(
            when.to_i64_vec().unwrap(),
            [20_783],
            "days since 1970-01-01"
        );
    }

    #[test]
    fn refuses_what_the_format_refuses() {
        let good = doc_example();
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("shorter than", good[..15].to_vec()),
            ("bad magic", [b"RAFKPRMX".as_slice(), &good[8..]].concat()),
            ("format version 2", {
                let mut b = good.clone();
                b[8] = 2;
                b
            }),
            ("unknown flags", {
                let mut b = good.clone();
                b[10] = 1;
                b
            }),
            ("runs past the end", {
                let mut b = good.clone();
                b[12..16].copy_from_slice(&1000u32.to_le_bytes());
                b
            }),
            ("padding bytes", {
                let mut b = good.clone();
                b[200] = 1;
                b
            }),
            ("the data is 265 bytes", [good.as_slice(), &[0]].concat()),
            ("run past the end of the data", good[..263].to_vec()),
        ];
        let headers: &[(&str, &str, &[u8])] = &[
            ("not UTF-8 JSON", "{\"entries\":", &[]),
            ("`entries` list", "[]", &[]),
            ("`entries` list", "{\"entries\":{}}", &[]),
            ("unknown header field(s) extra", "{\"entries\":[],\"extra\":1}", &[]),
            ("JSON object", "{\"entries\":[1]}", &[]),
            ("string `name`", "{\"entries\":[{\"kind\":\"int\",\"value\":1}]}", &[]),
            (
                "appears twice",
                "{\"entries\":[{\"name\":\"a\",\"kind\":\"int\",\"value\":1},{\"name\":\"a\",\"kind\":\"int\",\"value\":2}]}",
                &[],
            ),
            ("unknown kind", "{\"entries\":[{\"name\":\"a\",\"kind\":\"list\",\"value\":[]}]}", &[]),
            ("fields must be", "{\"entries\":[{\"name\":\"a\",\"kind\":\"int\"}]}", &[]),
            (
                "fields must be",
                "{\"entries\":[{\"name\":\"a\",\"kind\":\"int\",\"value\":1,\"x\":0}]}",
                &[],
            ),
            ("JSON integer", "{\"entries\":[{\"name\":\"a\",\"kind\":\"int\",\"value\":1.0}]}", &[]),
            (
                "signed 64-bit range",
                "{\"entries\":[{\"name\":\"a\",\"kind\":\"int\",\"value\":9223372036854775808}]}",
                &[],
            ),
            ("JSON string", "{\"entries\":[{\"name\":\"a\",\"kind\":\"str\",\"value\":1}]}", &[]),
            ("true or false", "{\"entries\":[{\"name\":\"a\",\"kind\":\"bool\",\"value\":0}]}", &[]),
            ("not a number", "{\"entries\":[{\"name\":\"a\",\"kind\":\"float\",\"value\":\"nan\"}]}", &[]),
            ("must be a number", "{\"entries\":[{\"name\":\"a\",\"kind\":\"float\",\"value\":true}]}", &[]),
            (
                "offset 64 (expected 0)",
                "{\"entries\":[{\"name\":\"a\",\"kind\":\"bytes\",\"offset\":64,\"nbytes\":1}]}",
                &[0; 65],
            ),
            (
                "non-negative integer",
                "{\"entries\":[{\"name\":\"a\",\"kind\":\"bytes\",\"offset\":-1,\"nbytes\":1}]}",
                &[0],
            ),
            (
                "not canonical",
                "{\"entries\":[{\"name\":\"a\",\"kind\":\"ndarray\",\"dtype\":\"|O8\",\"shape\":[1],\"offset\":0,\"nbytes\":8}]}",
                &[0; 8],
            ),
            (
                "needs 8 bytes",
                "{\"entries\":[{\"name\":\"a\",\"kind\":\"ndarray\",\"dtype\":\"<f4\",\"shape\":[2],\"offset\":0,\"nbytes\":4}]}",
                &[0; 4],
            ),
            (
                "list of non-negative integers",
                "{\"entries\":[{\"name\":\"a\",\"kind\":\"ndarray\",\"dtype\":\"<f4\",\"shape\":[-1],\"offset\":0,\"nbytes\":4}]}",
                &[0; 4],
            ),
            (
                "too many",
                "{\"entries\":[{\"name\":\"a\",\"kind\":\"ndarray\",\"dtype\":\"<f8\",\"shape\":[4294967296,4294967296],\"offset\":0,\"nbytes\":0}]}",
                &[],
            ),
        ];
        for (expected, header, buffers) in headers {
            cases.push((expected, file(header, buffers)));
        }
        for (expected, bytes) in cases {
            let err = decode_params(&bytes).expect_err(expected).to_string();
            assert!(
                err.starts_with("invalid parameters file: ") && err.contains(expected),
                "expected {expected:?}, got {err:?}"
            );
        }
    }

    #[test]
    fn buffers_are_aligned_and_nothing_follows_the_last() {
        let header = "{\"entries\":[{\"name\":\"a\",\"kind\":\"bytes\",\"offset\":0,\"nbytes\":3},\
                      {\"name\":\"b\",\"kind\":\"bytes\",\"offset\":64,\"nbytes\":2}]}";
        let mut buffers = vec![1, 2, 3];
        buffers.resize(64, 0);
        buffers.extend([4, 5]);
        let params = decode_params(&file(header, &buffers)).unwrap();
        assert_eq!(params.get("b"), Some(&ParamValue::Bytes(vec![4, 5])));
        assert_eq!(params.len(), 2);
        // An empty file has its data section start right after the padded header.
        let empty = decode_params(&file("{\"entries\":[]}", &[])).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn half_floats_convert_exactly() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(f16_to_f64(0xfc00), f64::NEG_INFINITY);
        assert!(f16_to_f64(0x7e00).is_nan());
    }
}
