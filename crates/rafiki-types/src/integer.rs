//! Integers as JSON Schema reads them: a number with no fractional part, whether written `3` or
//! `3.0`. Clients that compute a count in floating point (Python's `2 * 0.5 * n`) send `3.0`,
//! and the OpenAPI document's `integer` admits it, so the request fields that are integers
//! accept both.

use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

/// `value` as an integer, if it is a number with no fractional part within `i64`.
pub fn as_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number_as_integer(number),
        _ => None,
    }
}

fn number_as_integer(number: &Number) -> Option<i64> {
    number.as_i64().or_else(|| {
        let float = number.as_f64()?;
        // i64::MAX as f64 rounds up to 2^63, which is out of range: hence the strict bound.
        let in_range = float >= i64::MIN as f64 && float < i64::MAX as f64;
        (float.fract() == 0.0 && in_range).then_some(float as i64)
    })
}

/// Deserializes an `i32` written as `3` or `3.0` (serde's `deserialize_with`).
pub fn deserialize_i32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    let number = Number::deserialize(deserializer)?;
    number_as_integer(&number)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("expected a 32-bit integer, got {number}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_are_integers_however_written() {
        assert_eq!(as_integer(&json!(3)), Some(3));
        assert_eq!(as_integer(&json!(3.0)), Some(3));
        assert_eq!(as_integer(&json!(-1.0)), Some(-1));
        assert_eq!(as_integer(&json!(3.5)), None);
        assert_eq!(as_integer(&json!(1e300)), None);
        assert_eq!(as_integer(&json!("3")), None);
    }

    #[derive(Deserialize)]
    struct Version {
        #[serde(deserialize_with = "deserialize_i32")]
        v: i32,
    }

    #[test]
    fn an_i32_field_reads_a_whole_float_and_refuses_the_rest() {
        let read = |text: &str| serde_json::from_str::<Version>(text).map(|x| x.v);
        assert_eq!(read(r#"{"v": 7}"#).unwrap(), 7);
        assert_eq!(read(r#"{"v": 7.0}"#).unwrap(), 7);
        assert!(read(r#"{"v": 7.5}"#).is_err());
        assert!(read(r#"{"v": 3000000000}"#).is_err());
        assert!(read(r#"{"v": "7"}"#).is_err());
    }
}
