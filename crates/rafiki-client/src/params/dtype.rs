//! numpy dtypes as the parameters format writes them (`docs/parameters.md`): canonical
//! strings such as `<f4`, `|u1`, `<U5` or `<M8[ns]`, parsed and printed back. Only portable,
//! fixed-size kinds are read; objects, structures and platform-sized floats are refused.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
