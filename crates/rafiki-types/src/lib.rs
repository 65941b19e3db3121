//! Domain types shared by every Rafiki-rs crate: the wire DTOs of the contract, the status
//! enums with their transition tables and the other wire enums, and the knob (search space)
//! types. Serde only, no I/O, so the admin, workers, predictor and clients agree on one
//! definition.
//!
//! The `openapi` feature adds `utoipa` schemas for the admin's OpenAPI document.

/// Declares a wire enum: its variants are written the same way (SCREAMING_SNAKE_CASE unless a
/// `case` is given) on the wire, in the database and in `Display`/`FromStr`, so the one name of
/// a variant serves every place it is written. Attributes before the name (a doc comment, an
/// extra `#[derive(Default)]`) go on the enum, those before a variant on the variant.
macro_rules! wire_enum {
    ($(#[$meta:meta])* case = $case:literal, $name:ident {
        $($(#[$vmeta:meta])* $variant:ident),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
            strum::Display, strum::EnumString, strum::IntoStaticStr, strum::VariantArray,
        )]
        #[serde(rename_all = $case)]
        #[strum(serialize_all = $case)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(rename_all = $case))]
        pub enum $name { $($(#[$vmeta])* $variant),+ }
    };
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        wire_enum!($(#[$meta])* case = "SCREAMING_SNAKE_CASE", $name { $($(#[$vmeta])* $variant),+ });
    };
}

pub mod audit;
pub mod dataset;
pub mod error;
pub mod ids;
pub mod inference;
pub mod integer;
pub mod internal;
pub mod knob;
pub mod model;
pub mod proposal;
pub mod pruning;
pub mod status;
pub mod time;
pub mod train;
pub mod units;
pub mod user;
