//! Datasets: the DTOs of routes 5 and 6 (`POST /datasets`, `GET /datasets`) and of the
//! additions `GET /datasets/{id}` and `DELETE /datasets/{id}`. The upload itself is a
//! multipart form (text `name`, `task`, optional `dataset_url`; file `dataset`), described in
//! the admin's OpenAPI document.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /datasets` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedDataset {
    /// The new dataset's id.
    pub id: Uuid,
    /// Its name (not unique).
    pub name: String,
    /// Its task.
    pub task: String,
    /// Exact size of the stored file, in bytes.
    pub size_bytes: u64,
}

/// A dataset as listed by `GET /datasets` and returned by `DELETE /datasets/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dataset {
    /// The dataset's id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its task.
    pub task: String,
    /// When it was created.
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub datetime_created: DateTime<Utc>,
    /// Exact size of the stored file, in bytes.
    pub size_bytes: u64,
}

/// `GET /datasets/{id}` response: the listing's fields and where the data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetDetail {
    /// The dataset's id.
    pub id: Uuid,
    /// The user who created it.
    pub owner_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its task.
    pub task: String,
    /// When it was created.
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub datetime_created: DateTime<Utc>,
    /// Exact size of the stored file, in bytes.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the stored file.
    pub sha256: String,
    /// The URL it was downloaded from, or `null` for an uploaded file.
    pub source_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn datasets_carry_exactly_the_contract_fields() {
        let dataset = Dataset {
            id: Uuid::nil(),
            name: "mnist".into(),
            task: "IMAGE_CLASSIFICATION".into(),
            datetime_created: Utc.with_ymd_and_hms(2026, 11, 26, 17, 2, 3).unwrap(),
            size_bytes: 42,
        };
        assert_eq!(
            serde_json::to_value(&dataset).unwrap(),
            serde_json::json!({
                "id": "00000000-0000-0000-0000-000000000000",
                "name": "mnist",
                "task": "IMAGE_CLASSIFICATION",
                "datetime_created": "2026-11-26T17:02:03Z",
                "size_bytes": 42,
            })
        );
    }
}
