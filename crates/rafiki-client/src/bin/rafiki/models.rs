//! `rafiki models ...`: uploading, listing, showing, downloading and deleting models.

use std::path::PathBuf;

use clap::Subcommand;
use rafiki_client::types::model::{Dependencies, DependencyPins, ModelAccessRight};
use serde_json::json;
use uuid::Uuid;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::tables;

/// `rafiki models ...`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Upload a model: a Python file defining a model class
    Upload {
        /// The model's name (unique among yours)
        name: String,
        /// The Python file
        file: PathBuf,
        /// Its task, e.g. TABULAR_CLASSIFICATION
        #[arg(long)]
        task: String,
        /// The model class defined in the file
        #[arg(long = "class")]
        model_class: String,
        /// Its Python dependencies as JSON, e.g. '{"scikit-learn": "1.5.2"}'
        #[arg(long)]
        dependencies: Option<String>,
        /// Let every user train with it (default: private)
        #[arg(long)]
        public: bool,
        /// The worker image to run it in [default: the server's]
        #[arg(long)]
        docker_image: Option<String>,
        /// Pins with no distribution for the workers' Python: `strict` fails the model,
        /// `nearest` installs the nearest release instead [default: the server's]
        #[arg(long)]
        dependency_pins: Option<String>,
    },
    /// List the models you may use (yours and public ones)
    List {
        /// Only models of this task
        #[arg(long)]
        task: Option<String>,
    },
    /// Show one model
    Show {
        /// The model's id
        id: Uuid,
    },
    /// Download a model's file
    Download {
        /// The model's id
        id: Uuid,
        /// Where to save it [default: <model name>.py]
        out: Option<PathBuf>,
    },
    /// Delete a model no train job uses
    Delete {
        /// The model's id
        id: Uuid,
    },
}

/// `rafiki models ...`
pub async fn run(ctx: &Context, cmd: ModelsCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        ModelsCommand::Upload {
            name,
            file,
            task,
            model_class,
            dependencies,
            public,
            docker_image,
            dependency_pins,
        } => {
            let dependency_pins: Option<DependencyPins> = dependency_pins
                .map(|text| text.parse())
                .transpose()
                .map_err(|_| Failure::usage("--dependency-pins must be `strict` or `nearest`"))?;
            let dependencies: Option<Dependencies> = dependencies
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .map_err(|e| {
                    Failure::usage(format!(
                        "--dependencies must be a JSON object of package to version, e.g. \
                         '{{\"scikit-learn\": \"1.5.2\"}}': {e}"
                    ))
                })?;
            let access_right = if public {
                ModelAccessRight::Public
            } else {
                ModelAccessRight::Private
            };
            let model = client
                .create_model_with_pins(
                    &name,
                    &task,
                    &file,
                    &model_class,
                    dependencies.as_ref(),
                    access_right,
                    docker_image.as_deref(),
                    dependency_pins,
                )
                .await?;
            ctx.out.say(&model, |m| {
                format!("Created model {}, id {}.", m.name, m.id)
            });
        }
        ModelsCommand::List { task } => {
            let models = client.get_available_models(task.as_deref()).await?;
            ctx.out.show(&models, |models| tables::models(models));
        }
        ModelsCommand::Show { id } => {
            let model = client.get_model(id).await?;
            ctx.out.show(&model, tables::model);
        }
        ModelsCommand::Download { id, out } => {
            let out = match out {
                Some(out) => out,
                None => PathBuf::from(format!("{}.py", client.get_model(id).await?.name)),
            };
            let model = client.download_model_file(id, &out).await?;
            let answer = json!({ "model": model, "path": out });
            ctx.out.say(&answer, |_| {
                format!(
                    "Saved the file of model {} to {}.",
                    model.name,
                    out.display()
                )
            });
        }
        ModelsCommand::Delete { id } => {
            let model = client.delete_model(id).await?;
            ctx.out.say(&model, |m| {
                format!("Deleted model {}, id {}.", m.name, m.id)
            });
        }
    }
    Ok(())
}
