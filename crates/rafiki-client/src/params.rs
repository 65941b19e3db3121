//! A reader of trial parameters: the binary format of `docs/parameters.md` that
//! `GET /trials/{id}/parameters` serves and Python's `rafiki.params.decode_params` reads.
//!
//! Reading is safe: the bytes are data only, and every length, offset, dtype and field is
//! checked before it is trusted, with the same rules as the Python reader. Values keep their
//! types: `str`, `int`, `float`, `bool` and `bytes` map to Rust values; numpy arrays and
//! scalars become an [`Array`] (dtype, shape and the raw C-ordered element bytes), with
//! helpers to read the elements as numbers or text.

use std::fmt;

use serde_json::{Map, Value};

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
        self.data.chunks_exact(self.dtype.item_size.max(1))
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
        let order = self.dtype.byte_order;
        let convert: fn(&[u8], ByteOrder) -> f64 = match self.dtype.kind {
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
        let order = self.dtype.byte_order;
        match self.dtype.kind {
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
        let order = self.dtype.byte_order;
        match self.dtype.kind {
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

/// Byte order of a dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// `<`
    Little,
    /// `>`
    Big,
    /// `|`: one-byte items, text of bytes.
    NotApplicable,
}

/// Kind of a dtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtypeKind {
    /// `b`: bool.
    Bool,
    /// `i`: signed integer.
    Int,
    /// `u`: unsigned integer.
    UInt,
    /// `f`: IEEE 754 float.
    Float,
    /// `c`: complex, real part first.
    Complex,
    /// `U`: fixed-width UCS-4 text.
    Unicode,
    /// `S`: fixed-width bytes.
    Bytes,
    /// `M`: datetime64 with its unit (e.g. `ns`, `10s`; empty for numpy's generic unit).
    Datetime(String),
    /// `m`: timedelta64 with its unit.
    Timedelta(String),
}

/// A numpy dtype in canonical form (`numpy.dtype.str`), e.g. `<f4`, `|u1`, `<U5`, `<M8[ns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dtype {
    byte_order: ByteOrder,
    kind: DtypeKind,
    item_size: usize,
}

impl Dtype {
    /// Byte order of the elements.
    ///
    /// ```
    /// use rafiki_client::params::{ByteOrder, Dtype, DtypeKind};
    /// assert_eq!(Dtype::parse(">i4").unwrap().byte_order(), ByteOrder::Big);
    /// ```
    pub fn byte_order(&self) -> ByteOrder {
        self.byte_order
    }

    /// Element kind.
    ///
    /// ```
    /// use rafiki_client::params::{ByteOrder, Dtype, DtypeKind};
    /// assert_eq!(Dtype::parse("<M8[ns]").unwrap().kind(), &DtypeKind::Datetime("ns".into()));
    /// ```
    pub fn kind(&self) -> &DtypeKind {
        &self.kind
    }

    /// Bytes per element.
    ///
    /// ```
    /// use rafiki_client::params::{ByteOrder, Dtype, DtypeKind};
    /// assert_eq!(Dtype::parse("<U5").unwrap().item_size(), 20);
    /// ```
    pub fn item_size(&self) -> usize {
        self.item_size
    }

    /// Parses a canonical dtype string; refuses unknown, non-canonical and unportable ones.
    ///
    /// ```
    /// use rafiki_client::params::{ByteOrder, Dtype, DtypeKind};
    /// assert_eq!(Dtype::parse("<f4").unwrap().to_string(), "<f4");
    /// assert!(Dtype::parse("<u1").is_none(), "numpy writes |u1");
    /// assert!(Dtype::parse("|O8").is_none(), "objects are never read");
    /// ```
    pub fn parse(code: &str) -> Option<Dtype> {
        let mut chars = code.chars();
        let byte_order = match chars.next()? {
            '<' => ByteOrder::Little,
            '>' => ByteOrder::Big,
            '|' => ByteOrder::NotApplicable,
            _ => return None,
        };
        let kind_char = chars.next()?;
        let rest = chars.as_str();
        let (number, unit) = match rest.find('[') {
            Some(i) if rest.ends_with(']') => (&rest[..i], Some(&rest[i + 1..rest.len() - 1])),
            Some(_) => return None,
            None => (rest, None),
        };
        let n = canonical_number(number)?;
        let ordered = matches!(byte_order, ByteOrder::Little | ByteOrder::Big);
        let (kind, item_size) = match (kind_char, unit) {
            ('b', None) if n == 1 && !ordered => (DtypeKind::Bool, 1),
            ('i' | 'u', None) if (n == 1 && !ordered) || (ordered && [2, 4, 8].contains(&n)) => {
                let kind = if kind_char == 'i' {
                    DtypeKind::Int
                } else {
                    DtypeKind::UInt
                };
                (kind, n)
            }
            ('f', None) if ordered && [2, 4, 8].contains(&n) => (DtypeKind::Float, n),
            ('c', None) if ordered && [8, 16].contains(&n) => (DtypeKind::Complex, n),
            // numpy never makes arrays of zero-width text, and their elements would cost nothing
            // in the file however many there are: refused.
            ('U', None) if ordered && n > 0 => (DtypeKind::Unicode, n.checked_mul(4)?),
            ('S', None) if !ordered && n > 0 => (DtypeKind::Bytes, n),
            ('M' | 'm', unit) if ordered && n == 8 => {
                let unit = match unit {
                    None => String::new(),
                    Some(unit) => canonical_unit(unit)?.to_owned(),
                };
                let kind = if kind_char == 'M' {
                    DtypeKind::Datetime(unit)
                } else {
                    DtypeKind::Timedelta(unit)
                };
                (kind, 8)
            }
            _ => return None,
        };
        Some(Dtype {
            byte_order,
            kind,
            item_size,
        })
    }
}

/// A decimal number as numpy writes it: digits, no sign, no leading zero.
fn canonical_number(text: &str) -> Option<usize> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical {
        text.parse().ok()
    } else {
        None
    }
}

/// A datetime unit as numpy writes it: an optional multiplier above 1, then the unit.
fn canonical_unit(text: &str) -> Option<&str> {
    const UNITS: [&str; 13] = [
        "Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as",
    ];
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (multiplier, unit) = text.split_at(split);
    let multiplier_ok =
        multiplier.is_empty() || canonical_number(multiplier).is_some_and(|n| n > 1);
    (multiplier_ok && UNITS.contains(&unit)).then_some(text)
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let order = match self.byte_order {
            ByteOrder::Little => '<',
            ByteOrder::Big => '>',
            ByteOrder::NotApplicable => '|',
        };
        match &self.kind {
            DtypeKind::Bool => write!(f, "{order}b1"),
            DtypeKind::Int => write!(f, "{order}i{}", self.item_size),
            DtypeKind::UInt => write!(f, "{order}u{}", self.item_size),
            DtypeKind::Float => write!(f, "{order}f{}", self.item_size),
            DtypeKind::Complex => write!(f, "{order}c{}", self.item_size),
            DtypeKind::Unicode => write!(f, "{order}U{}", self.item_size / 4),
            DtypeKind::Bytes => write!(f, "{order}S{}", self.item_size),
            DtypeKind::Datetime(unit) | DtypeKind::Timedelta(unit) => {
                let letter = if matches!(self.kind, DtypeKind::Datetime(_)) {
                    'M'
                } else {
                    'm'
                };
                if unit.is_empty() {
                    write!(f, "{order}{letter}8")
                } else {
                    write!(f, "{order}{letter}8[{unit}]")
                }
            }
        }
    }
}

fn round_up(n: u64) -> Option<u64> {
    Some(n.checked_add(ALIGN - 1)? / ALIGN * ALIGN)
}

fn non_negative(entry: &Map<String, Value>, name: &str, field: &str) -> Result<u64, ParamsError> {
    match entry.get(field).and_then(Value::as_u64) {
        Some(n) => Ok(n),
        None => fail(format!(
            "entry {name:?}: `{field}` must be a non-negative integer"
        )),
    }
}

fn allowed_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "str" | "int" | "float" | "bool" => &["value"],
        "bytes" => &["nbytes", "offset"],
        "ndarray" => &["dtype", "nbytes", "offset", "shape"],
        "numpy_scalar" => &["dtype", "nbytes", "offset"],
        _ => return None,
    })
}

fn scalar(name: &str, kind: &str, value: &Value) -> Result<ParamValue, ParamsError> {
    Ok(match (kind, value) {
        ("str", Value::String(s)) => ParamValue::Str(s.clone()),
        ("str", _) => return fail(format!("entry {name:?}: str value must be a JSON string")),
        ("int", Value::Number(n)) if n.is_i64() || n.is_u64() => match n.as_i64() {
            Some(i) => ParamValue::Int(i),
            None => {
                return fail(format!(
                    "entry {name:?}: int value is out of the signed 64-bit range"
                ))
            }
        },
        ("int", _) => return fail(format!("entry {name:?}: int value must be a JSON integer")),
        ("float", Value::String(s)) => ParamValue::Float(match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => return fail(format!("entry {name:?}: float value {s:?} is not a number")),
        }),
        ("float", Value::Number(n)) => match n.as_f64() {
            Some(x) => ParamValue::Float(x),
            None => return fail(format!("entry {name:?}: float value must be a number")),
        },
        ("float", _) => return fail(format!("entry {name:?}: float value must be a number")),
        ("bool", Value::Bool(b)) => ParamValue::Bool(*b),
        _ => return fail(format!("entry {name:?}: bool value must be true or false")),
    })
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
    // Both fit in usize: they are at most `data.len()`.
    let header_end_usize = header_end as usize;
    let header: Value = std::str::from_utf8(&data[PREAMBLE_SIZE..header_end_usize])
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(text).map_err(|e| e.to_string()))
        .or_else(|e| fail(format!("the header is not UTF-8 JSON: {e}")))?;
    let Some(header) = header.as_object() else {
        return fail("the header must be a JSON object with an `entries` list");
    };
    let Some(entries) = header.get("entries").and_then(Value::as_array) else {
        return fail("the header must be a JSON object with an `entries` list");
    };
    let mut unknown: Vec<&str> = header
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "entries")
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return fail(format!("unknown header field(s) {}", unknown.join(", ")));
    }
    let data_start = round_up(header_end).unwrap_or(u64::MAX);
    let padding_end = data_start.min(total) as usize;
    if data[header_end_usize..padding_end].iter().any(|b| *b != 0) {
        return fail("padding bytes after the header must be zero");
    }

    let mut params = Parameters::default();
    // A set, so a header of many entries costs linear time.
    let mut names = std::collections::HashSet::new();
    let mut expected_offset = 0u64;
    let mut buffers_end = 0u64;
    for entry in entries {
        let Some(entry) = entry.as_object() else {
            return fail("every entry must be a JSON object");
        };
        let Some(name) = entry.get("name").and_then(Value::as_str) else {
            return fail("every entry needs a string `name`");
        };
        if !names.insert(name) {
            return fail(format!("entry {name:?} appears twice"));
        }
        let kind = entry.get("kind").and_then(Value::as_str).unwrap_or("");
        let Some(allowed) = allowed_fields(kind) else {
            return fail(format!(
                "entry {name:?}: unknown kind {}",
                entry.get("kind").unwrap_or(&Value::Null)
            ));
        };
        let mut fields: Vec<&str> = entry
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "name" && *k != "kind")
            .collect();
        fields.sort_unstable();
        if fields != allowed {
            return fail(format!(
                "entry {name:?} ({kind}): fields must be {allowed:?}, got {fields:?}"
            ));
        }
        if allowed == ["value"] {
            let value = scalar(name, kind, &entry["value"])?;
            params.entries.push((name.to_owned(), value));
            continue;
        }

        let offset = non_negative(entry, name, "offset")?;
        let nbytes = non_negative(entry, name, "nbytes")?;
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
        // Within `data`, so both fit in usize.
        let bytes = &data[(end - nbytes) as usize..end as usize];
        expected_offset = round_up(offset + nbytes).unwrap_or(u64::MAX);
        buffers_end = offset + nbytes;
        if kind == "bytes" {
            params
                .entries
                .push((name.to_owned(), ParamValue::Bytes(bytes.to_vec())));
            continue;
        }

        let dtype = match entry["dtype"].as_str() {
            Some(code) => Dtype::parse(code).ok_or_else(|| {
                ParamsError(format!(
                    "entry {name:?}: dtype {code:?} is unknown, not canonical or not allowed"
                ))
            })?,
            None => return fail(format!("entry {name:?}: `dtype` must be a string")),
        };
        let shape = if kind == "ndarray" {
            let shape = entry["shape"].as_array().and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_u64())
                    .collect::<Option<Vec<u64>>>()
            });
            match shape {
                Some(shape) => shape,
                None => {
                    return fail(format!(
                        "entry {name:?}: `shape` must be a list of non-negative integers"
                    ))
                }
            }
        } else {
            Vec::new()
        };
        let needed = shape
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(*d))
            .and_then(|count| count.checked_mul(dtype.item_size as u64));
        if needed != Some(nbytes) {
            return fail(format!(
                "entry {name:?}: shape {shape:?} of {dtype} needs {} bytes, the entry says \
                 {nbytes}",
                needed.map_or("too many".to_owned(), |n| n.to_string())
            ));
        }
        let array = Array {
            dtype,
            shape,
            data: bytes.to_vec(),
        };
        let value = if kind == "ndarray" {
            ParamValue::Array(array)
        } else {
            ParamValue::Scalar(array)
        };
        params.entries.push((name.to_owned(), value));
    }

    if total != data_start.saturating_add(buffers_end) {
        return fail(format!(
            "the data is {total} bytes long; its entries say {}",
            data_start.saturating_add(buffers_end)
        ));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of docs/parameters.md, read from its hex dump.
    fn doc_example() -> Vec<u8> {
        let doc = include_str!("../../../docs/parameters.md");
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
    const RICH: &str = include_str!("../tests/data/rich_params.hex");

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
    fn canonical_dtypes_read_and_print_back() {
        for code in [
            "|b1", "|i1", "|u1", "<i2", ">i4", "<u8", "<f2", ">f4", "<f8", "<c8", ">c16", "<U5",
            "|S3", "<M8[ns]", ">m8[us]", "<M8", "<M8[10s]", "<M8[D]",
        ] {
            let dtype = Dtype::parse(code).unwrap_or_else(|| panic!("{code} is canonical"));
            assert_eq!(dtype.to_string(), code);
        }
        for code in [
            "<b1", "<u1", "|i2", "i4", "<f16", "<f3", "<c32", "<U05", "|U5", "<S3", "|O8", "<V8",
            "<M8[xs]", "<M8[1s]", "<M4[s]", "<M8[s", "", "<", "<i+4", "<U0", "|S0",
        ] {
            assert_eq!(Dtype::parse(code), None, "{code} is refused");
        }
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
