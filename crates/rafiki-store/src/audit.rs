//! The `audit_events` table: the audit trail (docs/observability.md, "Audit trail"). Rows are
//! only inserted, never updated; a success is inserted with the executor of its change's
//! transaction, so that a change that rolls back leaves no row claiming it happened.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use rafiki_types::audit::{AuditAction, AuditEvent, TargetKind, OUTCOME_OK};
use rafiki_types::user::UserType;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::{parse_text, StoreResult};

/// The longest `target_id` kept, in characters (the column's check): what a request named
/// (an email tried at login, a path's `{app}/{app_version}`) is cut to this.
pub const MAX_TARGET_CHARS: usize = 256;

/// Who acted, from where, in which request: the part of an event the route knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// The user; `None` when unknown (a login with an email nobody has).
    pub id: Option<Uuid>,
    /// Their type when they acted.
    pub role: Option<UserType>,
    /// The TCP peer's address.
    pub client: Option<IpAddr>,
    /// The request's id (`x-request-id`, already checked sane and bounded).
    pub request_id: Option<String>,
}

impl Actor {
    /// The event of this actor doing `action` to `target`, with `outcome`.
    pub fn event(
        &self,
        action: AuditAction,
        target: Option<(TargetKind, &str)>,
        outcome: &str,
    ) -> NewAuditEvent {
        NewAuditEvent {
            actor: self.clone(),
            action,
            target_kind: target.map(|(kind, _)| kind),
            target_id: target.map(|(_, id)| id.chars().take(MAX_TARGET_CHARS).collect()),
            outcome: outcome.to_owned(),
        }
    }

    /// The event of this actor doing `action` successfully to the `kind` with `id`.
    pub fn did(&self, action: AuditAction, kind: TargetKind, id: Uuid) -> NewAuditEvent {
        self.event(action, Some((kind, &id.to_string())), OUTCOME_OK)
    }
}

/// What an actor did and to which resource (an action the caller describes, written by
/// whoever holds the change's transaction): an event to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// Who, from where.
    pub actor: Actor,
    /// What.
    pub action: AuditAction,
    /// The kind of resource, when there is one.
    pub target_kind: Option<TargetKind>,
    /// Which one, at most [`MAX_TARGET_CHARS`] characters.
    pub target_id: Option<String>,
    /// [`OUTCOME_OK`] or the contract's error name.
    pub outcome: String,
}

/// Inserts an event. Give it the transaction of the change it records.
pub async fn insert(db: impl PgExecutor<'_>, event: &NewAuditEvent) -> StoreResult<()> {
    sqlx::query(
        "insert into audit_events (actor_id, actor_role, action, target_kind, target_id, \
         outcome, client_address, request_id) values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event.actor.id)
    .bind(event.actor.role.map(<&str>::from))
    .bind(<&str>::from(event.action))
    .bind(event.target_kind.map(<&str>::from))
    .bind(event.target_id.as_deref())
    .bind(&event.outcome)
    .bind(event.actor.client.map(|ip| ip.to_string()))
    .bind(event.actor.request_id.as_deref())
    .execute(db)
    .await?;
    Ok(())
}

/// Runs `change` in a transaction of its own and records the event `event` makes of its result
/// in the same transaction, committing both or neither: for changes of one statement, so that
/// no route holds a transaction. `event` answers `None` when there is nothing to record (the
/// change found nothing to do; the caller answers with an error, recorded as a refusal).
pub async fn recorded<T>(
    pool: &PgPool,
    change: impl AsyncFnOnce(&mut PgConnection) -> StoreResult<T>,
    event: impl FnOnce(&T) -> Option<NewAuditEvent>,
) -> StoreResult<T> {
    let mut tx = pool.begin().await?;
    let done = change(&mut tx).await?;
    if let Some(event) = event(&done) {
        insert(&mut *tx, &event).await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// Which events to list; `None` filters nothing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this actor's.
    pub actor: Option<Uuid>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    actor_role: Option<String>,
    action: String,
    target_kind: Option<String>,
    target_id: Option<String>,
    outcome: String,
    client_address: Option<String>,
    request_id: Option<String>,
}

impl Row {
    fn into_event(self) -> StoreResult<AuditEvent> {
        Ok(AuditEvent {
            id: self.id,
            time: self.at,
            actor_id: self.actor_id,
            actor_role: self
                .actor_role
                .map(|role| parse_text("audit_events.actor_role", &role))
                .transpose()?,
            action: parse_text("audit_events.action", &self.action)?,
            target_kind: self
                .target_kind
                .map(|kind| parse_text("audit_events.target_kind", &kind))
                .transpose()?,
            target_id: self.target_id,
            outcome: self.outcome,
            client_address: self.client_address,
            request_id: self.request_id,
        })
    }
}

/// Events matching `filter`, newest first; `limit` of them after the first `offset`.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &Filter,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<AuditEvent>> {
    // One statement for every combination of filters: an absent filter is a null parameter.
    let rows: Vec<Row> = sqlx::query_as(
        "select id, at, actor_id, actor_role, action, target_kind, target_id, outcome, \
         client_address, request_id from audit_events \
         where ($1::uuid is null or actor_id = $1) and ($2::text is null or action = $2) \
         and ($3::timestamptz is null or at >= $3) and ($4::timestamptz is null or at < $4) \
         order by at desc, id desc limit $5 offset $6",
    )
    .bind(filter.actor)
    .bind(filter.action.map(<&str>::from))
    .bind(filter.since)
    .bind(filter.until)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Row::into_event).collect()
}
