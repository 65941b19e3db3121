//! [`JsonText`]: JSON bound as Postgres `json`, for the columns whose key order matters.
//!
//! sqlx binds its `Json` wrapper as `jsonb`, and `jsonb` keeps objects with their keys sorted
//! (and duplicates dropped), even when the value is then stored in a `json` column. The columns
//! that hold what models are given (a train job's `train_args`, a sub-job's `knob_config`, a
//! trial's `proposal` and the trial logs a model wrote) are `json` so that a model sees its keys
//! in the order they were written (`migrations/20261213000001_json_key_order.sql`); they are
//! written through this wrapper. Reading them back with sqlx's `Json` keeps the order, since a
//! `json` value is its text.

use serde::Serialize;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo};
use sqlx::{Encode, Postgres, Type};

/// Postgres' built-in `json` type and its array type (`pg_type.oid`, fixed for built-ins).
const JSON_OID: Oid = Oid(114);
const JSON_ARRAY_OID: Oid = Oid(199);

/// A value serialised as JSON text and bound as `json`.
#[derive(Debug, Clone, Copy)]
pub struct JsonText<T>(pub T);

impl<T> Type<Postgres> for JsonText<T> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSON_OID)
    }
}

impl<T> PgHasArrayType for JsonText<T> {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSON_ARRAY_OID)
    }
}

impl<T: Serialize> Encode<'_, Postgres> for JsonText<T> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // `json`'s binary form is its text, unlike `jsonb`'s (a version byte first).
        serde_json::to_writer(&mut **buf, &self.0)?;
        Ok(IsNull::No)
    }
}
