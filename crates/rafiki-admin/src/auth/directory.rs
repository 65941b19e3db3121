//! The ban list: ids of banned users, kept in memory so checking a token costs no query.
//!
//! A ban through this admin updates the list at once; a background loop re-reads the table
//! every `ban_refresh_ms`, so a ban made through another admin instance (or by hand in the
//! database) takes effect within that time. Bans are permanent, so the list only grows.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

/// Banned user ids.
#[derive(Default)]
pub struct BanList {
    ids: RwLock<HashSet<Uuid>>,
}

impl BanList {
    /// Whether the user is banned.
    pub fn is_banned(&self, user_id: Uuid) -> bool {
        self.ids
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&user_id)
    }

    /// Records a ban made by this process.
    pub fn insert(&self, user_id: Uuid) {
        self.ids
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(user_id);
    }

    /// Re-reads the banned users from the database: one step of the refresh loop.
    pub async fn run_once(&self, pool: &PgPool) -> rafiki_store::StoreResult<()> {
        let ids = rafiki_store::users::banned_ids(pool).await?;
        *self
            .ids
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = ids.into_iter().collect();
        Ok(())
    }

    /// Runs [`BanList::run_once`] every `period` until the task is dropped.
    pub async fn refresh_forever(&self, pool: PgPool, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = self.run_once(&pool).await {
                tracing::warn!(error = %err, "could not refresh the ban list");
            }
        }
    }
}
