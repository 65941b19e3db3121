//! The `users` table: accounts, password hashes and bans.

use chrono::{DateTime, Utc};
use rafiki_types::user::{User, UserType};
use sqlx::{AssertSqlSafe, FromRow, PgExecutor};
use uuid::Uuid;

use crate::{parse_text, StoreResult};

/// Name of the unique index on `lower(email)`.
pub const EMAIL_UNIQUE: &str = "users_email_key";

/// A user row with its password hash, for login.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// The user as the API shows it.
    pub user: User,
    /// The argon2id PHC string.
    pub password_hash: String,
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    email: String,
    user_type: String,
    banned_date: Option<DateTime<Utc>>,
    password_hash: String,
}

impl Row {
    fn into_record(self) -> StoreResult<UserRecord> {
        Ok(UserRecord {
            user: User {
                id: self.id,
                email: self.email,
                user_type: parse_text("users.user_type", &self.user_type)?,
                banned_date: self.banned_date,
            },
            password_hash: self.password_hash,
        })
    }
}

const COLUMNS: &str = "id, email, user_type, banned_date, password_hash";

/// Inserts a user; fails with the [`EMAIL_UNIQUE`] constraint when the email is taken.
pub async fn insert(
    db: impl PgExecutor<'_>,
    email: &str,
    password_hash: &str,
    user_type: UserType,
) -> StoreResult<User> {
    let row: Row = sqlx::query_as(AssertSqlSafe(format!(
        "insert into users (id, email, password_hash, user_type) values ($1, $2, $3, $4) \
         returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(email)
    .bind(password_hash)
    .bind(<&str>::from(user_type))
    .fetch_one(db)
    .await?;
    Ok(row.into_record()?.user)
}

/// Inserts a user unless one with that email exists; returns whether it was inserted.
pub async fn insert_if_absent(
    db: impl PgExecutor<'_>,
    email: &str,
    password_hash: &str,
    user_type: UserType,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "insert into users (id, email, password_hash, user_type) values ($1, $2, $3, $4) \
         on conflict (lower(email)) do nothing",
    )
    .bind(Uuid::new_v4())
    .bind(email)
    .bind(password_hash)
    .bind(<&str>::from(user_type))
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Finds a user by email, case-insensitively.
pub async fn find_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> StoreResult<Option<UserRecord>> {
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "select {COLUMNS} from users where lower(email) = lower($1)"
    )))
    .bind(email)
    .fetch_optional(db)
    .await?;
    row.map(Row::into_record).transpose()
}

/// Every user, oldest first.
pub async fn list(db: impl PgExecutor<'_>) -> StoreResult<Vec<User>> {
    let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "select {COLUMNS} from users order by datetime_created, id"
    )))
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| r.into_record().map(|rec| rec.user))
        .collect()
}

/// Bans a user who is not banned yet; `None` when they already were (bans are permanent and
/// the first ban's date is kept).
pub async fn ban(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<User>> {
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "update users set banned_date = now() where id = $1 and banned_date is null \
         returning {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Row::into_record).transpose()?.map(|rec| rec.user))
}

/// Ids of every banned user: the admin keeps them in memory to refuse their tokens.
pub async fn banned_ids(db: impl PgExecutor<'_>) -> StoreResult<Vec<Uuid>> {
    Ok(
        sqlx::query_scalar("select id from users where banned_date is not null")
            .fetch_all(db)
            .await?,
    )
}

/// Locks the user's row until the transaction ends, so that checks of what the user holds
/// (quotas) and the writes they allow run one at a time per user, across admin instances.
/// `for no key update` leaves rows that merely refer to the user free to be written. Returns
/// whether the user exists.
pub async fn lock(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<bool> {
    Ok(
        sqlx::query_scalar::<_, i32>("select 1 from users where id = $1 for no key update")
            .bind(id)
            .fetch_optional(db)
            .await?
            .is_some(),
    )
}

/// Finds a user by id: the admin's check of a token whose subject its in-memory directory
/// does not know yet (created through another admin instance since its last reading).
pub async fn find_by_id(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<User>> {
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "select {COLUMNS} from users where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Row::into_record).transpose()?.map(|rec| rec.user))
}
