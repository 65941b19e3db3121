//! `rafiki stop-all`: stopping every train and inference job of every user (superadmin).

use crate::context::Context;
use crate::failure::Failure;

/// `rafiki stop-all`
pub async fn run(ctx: &Context) -> Result<(), Failure> {
    let stopped = ctx.client()?.stop_all_jobs().await?;
    ctx.out.say(&stopped, |s| {
        format!(
            "Stopped {} train job(s) and {} inference job(s).",
            s.train_jobs.len(),
            s.inference_jobs.len()
        )
    });
    Ok(())
}
