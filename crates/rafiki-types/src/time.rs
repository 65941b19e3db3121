//! Datetimes on the wire: RFC 3339 UTC strings with whole seconds (`2026-11-26T17:02:03Z`),
//! `null` when absent. Use with `#[serde(with = "rafiki_types::time::rfc3339")]` or
//! `rafiki_types::time::rfc3339_option`.

use chrono::{DateTime, SecondsFormat, Utc};

/// The wire form of a datetime: `2026-11-26T17:02:03Z`.
pub fn to_wire(value: &DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A required datetime.
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `2026-11-26T17:02:03Z`.
    pub fn serialize<S: Serializer>(value: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_wire(value))
    }

    /// Reads any RFC 3339 datetime, converted to UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// An optional datetime: `null` when absent.
pub mod rfc3339_option {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the datetime as [`super::rfc3339`] does, or `null`.
    pub fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    /// Reads an RFC 3339 datetime or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::rfc3339")] DateTime<Utc>);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(t)| t))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Stamp {
        #[serde(with = "super::rfc3339")]
        at: DateTime<Utc>,
        #[serde(with = "super::rfc3339_option")]
        until: Option<DateTime<Utc>>,
    }

    #[test]
    fn writes_whole_seconds_in_utc_and_null_when_absent() {
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 17, 2, 3).unwrap();
        let json = serde_json::to_string(&Stamp { at, until: None }).unwrap();
        assert_eq!(json, r#"{"at":"2026-11-26T17:02:03Z","until":null}"#);
        let back: Stamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back.at, at);
    }
}
