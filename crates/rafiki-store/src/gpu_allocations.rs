//! The `gpu_allocations` table: which live service holds which device of which node. Rows are
//! written with their service (`services::insert`), moved with it (`services::move_to_node`)
//! and deleted when it ends (`services::finish`); this module only reads them.

use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use crate::StoreResult;

/// No device is held twice on one node.
pub const ONE_HOLDER_PER_DEVICE: &str = "gpu_allocations_pkey";

/// One held device.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Allocation {
    /// The node's id.
    pub node: String,
    /// The device id on that node.
    pub device: i32,
    /// The service holding it.
    pub service_id: Uuid,
}

/// Every held device, by node and device.
pub async fn list(db: impl PgExecutor<'_>) -> StoreResult<Vec<Allocation>> {
    Ok(
        sqlx::query_as(
            "select node, device, service_id from gpu_allocations order by node, device",
        )
        .fetch_all(db)
        .await?,
    )
}
