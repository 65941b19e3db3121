//! `rafiki audit`: the audit trail (admins): who did what, when, from where.

use clap::Args;
use rafiki_client::types::audit::AuditAction;
use rafiki_client::AuditQuery;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::tables;

/// `rafiki audit`'s filters and page.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events of this user (their id)
    #[arg(long)]
    actor: Option<uuid::Uuid>,
    /// Only events of this action (login, user.create, user.ban, dataset.create,
    /// dataset.delete, model.create, model.delete, train_job.create, train_job.stop,
    /// inference_job.create, inference_job.stop, jobs.stop_all)
    #[arg(long)]
    action: Option<AuditAction>,
    /// Only events at or after this time (RFC 3339, e.g. 2026-11-30T12:00:00Z)
    #[arg(long)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events before this time (RFC 3339)
    #[arg(long)]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// At most this many events [default: the server's largest page]
    #[arg(long)]
    limit: Option<u32>,
    /// Skip this many of the newest events first
    #[arg(long)]
    offset: Option<u64>,
}

/// `rafiki audit`
pub async fn run(ctx: &Context, args: AuditArgs) -> Result<(), Failure> {
    let query = AuditQuery {
        actor: args.actor,
        action: args.action,
        since: args.since,
        until: args.until,
        limit: args.limit,
        offset: args.offset,
    };
    let events = ctx.client()?.get_audit_events(&query).await?;
    ctx.out.show(&events, |events| tables::audit_events(events));
    Ok(())
}
