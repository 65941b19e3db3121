//! Models: access rights and the DTOs of routes 7–11 (`POST /models`, `GET /models/available`,
//! `GET /models/{id}`, `GET /models/{id}/model_file`, `DELETE /models/{id}`). The upload itself
//! is a multipart form (file `model_file_bytes`; text `name`, `task`, `model_class`,
//! `dependencies`, `access_right`, `docker_image`, `dependency_pins`), described in the admin's
//! OpenAPI document.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

wire_enum!(
    /// Who may use a model: its owner only, or everyone.
    #[derive(Default)]
    ModelAccessRight {
        /// Every user may list it and train with it.
        Public,
        /// Only its owner (and admins) see it: the default.
        #[default]
        Private,
    }
);

/// A model's Python dependencies: `{package: version}`, e.g. `{"scikit-learn": "1.5.2"}`.
pub type Dependencies = BTreeMap<String, String>;

wire_enum!(
    /// What a worker does with a pinned dependency (`pkg==1.2`) that has no distribution this
    /// Python can install (e.g. `torch==0.4.1` on CPython 3.11): set per deployment
    /// (`RAFIKI_DEPENDENCY_PINS`) and per model (`dependency_pins`, which wins).
    #[derive(Default)]
    case = "lowercase",
    DependencyPins {
        /// The model fails; the error names the package, the pin and the nearest installable
        /// versions below and above it.
        #[default]
        Strict,
        /// The nearest installable release is installed instead (the lowest above the pin, else
        /// the highest below), with a warning in the trials' logs and the job's `environments`.
        Nearest,
    }
);

/// `POST /models` and `DELETE /models/{id}` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelRef {
    /// The model's id.
    pub id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// Its name, unique per owner.
    pub name: String,
}

/// A model as listed by `GET /models/available`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AvailableModel {
    /// The model's id.
    pub id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its task.
    pub task: String,
    /// When it was uploaded.
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub datetime_created: DateTime<Utc>,
    /// Its Python dependencies, `{package: version}`.
    pub dependencies: Dependencies,
    /// Who may use it.
    pub access_right: ModelAccessRight,
}

/// `GET /models/{id}` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Model {
    /// The model's id.
    pub id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its task.
    pub task: String,
    /// The class in its file that implements the model.
    pub model_class: String,
    /// When it was uploaded.
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub datetime_created: DateTime<Utc>,
    /// The worker image it runs in.
    pub docker_image: Option<String>,
    /// Its Python dependencies, `{package: version}`.
    pub dependencies: Dependencies,
    /// Who may use it.
    pub access_right: ModelAccessRight,
    /// What to do with pins that cannot be installed here; `null`: the deployment's setting.
    #[serde(default)]
    pub dependency_pins: Option<DependencyPins>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn access_rights_read_and_write_their_contract_names() {
        for right in ModelAccessRight::VARIANTS {
            let name: &'static str = right.into();
            assert_eq!(serde_json::to_value(right).unwrap(), name);
            assert_eq!(name.parse::<ModelAccessRight>().unwrap(), *right);
        }
        assert_eq!(ModelAccessRight::default(), ModelAccessRight::Private);
        assert!("public".parse::<ModelAccessRight>().is_err());
    }

    #[test]
    fn pin_policies_read_and_write_lowercase() {
        for pins in DependencyPins::VARIANTS {
            let name: &'static str = pins.into();
            assert_eq!(serde_json::to_value(pins).unwrap(), name);
            assert_eq!(name.parse::<DependencyPins>().unwrap(), *pins);
        }
        assert_eq!(DependencyPins::default(), DependencyPins::Strict);
        assert!("closest".parse::<DependencyPins>().is_err());
    }
}
