//! The user directory: a snapshot of the `users` table kept in memory, so checking a token's
//! subject (exists, not banned, its stored type) and answering `GET /users` cost no query.
//!
//! Writes through this admin (a new user, a ban) reload the snapshot before they answer, so
//! they are visible at once here; a background loop reloads it every `ban_refresh_ms`, so a
//! change made through another admin instance (or by hand in the database) shows within that
//! time. Reloads are serialised, so an older read never replaces a newer one. The whole table
//! is re-read each time: fine for the thousands of users a Rafiki deployment has; a much larger
//! table would want a change feed instead.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use rafiki_types::user::{User, UserType};
use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::paging::Page;
/// What a token's check needs to know of its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// The user's stored type: the one a request acts with, whatever the token claims.
    pub user_type: UserType,
    /// Whether the user is banned.
    pub banned: bool,
}

impl From<&User> for Account {
    fn from(user: &User) -> Self {
        Account {
            user_type: user.user_type,
            banned: user.banned_date.is_some(),
        }
    }
}

/// One reading of the users table.
#[derive(Default)]
struct Snapshot {
    accounts: HashMap<Uuid, Account>,
    /// Every user, oldest first.
    users: Vec<User>,
    /// `GET /users`' body when one page holds every user, serialised once per reading.
    users_json: Bytes,
}

/// The in-memory users table.
#[derive(Default)]
pub struct UserDirectory {
    snapshot: RwLock<Arc<Snapshot>>,
    reloading: Mutex<()>,
}

impl UserDirectory {
    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The user's account as of the last reading; `None` when they were not in the table then.
    pub fn account(&self, user_id: Uuid) -> Option<Account> {
        self.current().accounts.get(&user_id).copied()
    }

    /// A page of the users, oldest first, as the JSON body of `GET /users`.
    pub fn users_json(&self, page: Page) -> anyhow::Result<Bytes> {
        let snapshot = self.current();
        let users = page.slice(&snapshot.users);
        if users.len() == snapshot.users.len() {
            return Ok(snapshot.users_json.clone());
        }
        Ok(Bytes::from(serde_json::to_vec(users)?))
    }

    /// A page of the users, oldest first.
    pub fn users(&self, page: Page) -> Vec<User> {
        page.slice(&self.current().users).to_vec()
    }

    /// Re-reads the users table: one step of the refresh loop, and the last step of every
    /// write to users through this admin.
    pub async fn run_once(&self, pool: &PgPool) -> anyhow::Result<()> {
        let _one_at_a_time = self.reloading.lock().await;
        let users = rafiki_store::users::list(pool).await?;
        let snapshot = Snapshot {
            accounts: users.iter().map(|u| (u.id, Account::from(u))).collect(),
            users_json: Bytes::from(serde_json::to_vec(&users)?),
            users,
        };
        *self
            .snapshot
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(snapshot);
        Ok(())
    }

    /// Runs [`UserDirectory::run_once`] every `period` until the task is dropped.
    pub async fn refresh_forever(&self, pool: PgPool, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = self.run_once(&pool).await {
                tracing::warn!(error = %err, "could not refresh the user directory");
            }
        }
    }
}
