//! `rafiki params ...`: downloading a trial's saved parameters and listing what they hold.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use uuid::Uuid;

use crate::context::Context;
use crate::failure::Failure;
use crate::files::write_atomically;
use crate::output::{params, size};

/// `rafiki params ...`
#[derive(Debug, Subcommand)]
pub enum ParamsCommand {
    /// Save a trial's parameters file and list what it holds
    Download {
        /// The trial's id
        trial_id: Uuid,
        /// Where to save it [default: <trial id>.params]
        out: Option<PathBuf>,
    },
    /// List what a trial's parameters hold, without saving them
    Show {
        /// The trial's id
        trial_id: Uuid,
    },
}

/// `rafiki params ...`
pub async fn run(ctx: &Context, cmd: ParamsCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    let (trial_id, out) = match cmd {
        ParamsCommand::Download { trial_id, out } => (
            trial_id,
            Some(out.unwrap_or_else(|| PathBuf::from(format!("{trial_id}.params")))),
        ),
        ParamsCommand::Show { trial_id } => (trial_id, None),
    };
    let saved = client.get_trial_parameters(trial_id).await?;
    if let Some(out) = &out {
        write_atomically(out, &saved.bytes)?;
    }
    let (entries, t) = params::params_summary(&saved.params);
    let answer = json!({"path": out, "size_bytes": saved.bytes.len(), "entries": entries});
    ctx.out.say(&answer, |_| match &out {
        Some(path) => format!(
            "Saved {} of parameters to {}.\n{}",
            size(saved.bytes.len() as u64),
            path.display(),
            t.trim_fmt()
        ),
        None => t.trim_fmt(),
    });
    Ok(())
}
