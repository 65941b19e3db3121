//! `rafiki users ...`: creating, listing and banning users (admins).

use clap::Subcommand;
use rafiki_client::types::user::UserType;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::tables;
use crate::session::password;

/// `rafiki users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user
    Create {
        /// The new user's email
        email: String,
        /// SUPERADMIN, ADMIN, MODEL_DEVELOPER or APP_DEVELOPER
        #[arg(long = "type", value_parser = parse_user_type)]
        user_type: UserType,
        /// Their password [default: prompted, or read from stdin]
        #[arg(long)]
        password: Option<String>,
    },
    /// List every user
    List,
    /// Ban a user for good
    Ban {
        /// The user's email
        email: String,
    },
}

fn parse_user_type(text: &str) -> Result<UserType, String> {
    text.trim()
        .to_ascii_uppercase()
        .replace('-', "_")
        .parse()
        .map_err(|_| "expected SUPERADMIN, ADMIN, MODEL_DEVELOPER or APP_DEVELOPER".to_owned())
}

/// `rafiki users ...`
pub async fn run(ctx: &Context, cmd: UsersCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        UsersCommand::Create {
            email,
            user_type,
            password: given,
        } => {
            let password = password(given, &format!("Password for {email}: "))?;
            let user = client.create_user(&email, &password, user_type).await?;
            ctx.out.say(&user, |u| {
                format!("Created {} ({}), id {}.", u.email, u.user_type, u.id)
            });
        }
        UsersCommand::List => {
            let users = client.get_users().await?;
            ctx.out.show(&users, |users| tables::users(users));
        }
        UsersCommand::Ban { email } => {
            let user = client.ban_user(&email).await?;
            ctx.out
                .say(&user, |u| format!("Banned {} for good.", u.email));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_types_are_read_leniently() {
        assert_eq!(
            parse_user_type("model-developer").unwrap(),
            UserType::ModelDeveloper
        );
        assert_eq!(parse_user_type("ADMIN").unwrap(), UserType::Admin);
        assert!(parse_user_type("owner").is_err());
    }
}
