//! `rafiki datasets ...`: uploading datasets (a file with a progress bar, or a URL the server
//! downloads) and listing them.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use crate::context::Context;
use crate::failure::Failure;
use crate::files;
use crate::output::{progress, size, tables};

/// `rafiki datasets ...`
#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// Upload a dataset file (with a progress bar), or have the server download a URL
    Upload {
        /// The dataset's name
        name: String,
        /// The file to upload
        #[arg(required_unless_present = "url")]
        file: Option<PathBuf>,
        /// Its task, e.g. IMAGE_CLASSIFICATION
        #[arg(long)]
        task: String,
        /// A http(s) URL the server downloads instead of a file
        #[arg(long, conflicts_with = "file")]
        url: Option<String>,
    },
    /// List your datasets
    List {
        /// Only datasets of this task
        #[arg(long)]
        task: Option<String>,
    },
}

/// `rafiki datasets ...`
pub async fn run(ctx: &Context, cmd: DatasetsCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        DatasetsCommand::Upload {
            name,
            file,
            task,
            url,
        } => {
            let created = match (file, url) {
                (Some(file), None) => {
                    let bar = progress::upload_bar(ctx.out, files::size(&file)?);
                    let shown = bar.clone();
                    let progress = Arc::new(move |sent: u64, _total: u64| shown.set_position(sent));
                    let created = client
                        .create_dataset_with_progress(&name, &task, &file, progress)
                        .await;
                    bar.finish_and_clear();
                    created?
                }
                (None, url) => {
                    client
                        .create_dataset(&name, &task, None, url.as_deref())
                        .await?
                }
                (Some(_), Some(_)) => {
                    return Err(Failure::usage("give a file or --url, not both"));
                }
            };
            ctx.out.say(&created, |d| {
                format!(
                    "Created dataset {} ({}, {}), id {}.",
                    d.name,
                    d.task,
                    size(d.size_bytes),
                    d.id
                )
            });
        }
        DatasetsCommand::List { task } => {
            let datasets = client.get_datasets(task.as_deref()).await?;
            ctx.out
                .show(&datasets, |datasets| tables::datasets(datasets));
        }
    }
    Ok(())
}
