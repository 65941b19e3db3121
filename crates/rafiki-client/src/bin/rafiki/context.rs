//! What every command needs: where the admin is, the saved session, and how to print.

use rafiki_client::Client;
use uuid::Uuid;

use crate::credentials::{self, Credentials};
use crate::failure::Failure;
use crate::output::Output;
use crate::Cli;

/// Where the admin is, the saved session and how to print.
pub struct Context {
    pub host: String,
    pub port: u16,
    pub saved: Option<Credentials>,
    pub out: Output,
}

impl Context {
    /// The admin named on the command line, else the one of the saved session, else the
    /// default one.
    pub fn new(cli: &Cli) -> Result<Self, Failure> {
        let saved = credentials::load()?;
        let host = cli
            .host
            .clone()
            .or_else(|| saved.as_ref().map(|c| c.host.clone()))
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let port = cli
            .port
            .or_else(|| saved.as_ref().map(|c| c.port))
            .unwrap_or(3000);
        Ok(Context {
            host,
            port,
            saved,
            out: Output { json: cli.json },
        })
    }

    /// A client without a session.
    pub fn anonymous(&self) -> Client {
        Client::new(self.host.clone(), self.port)
    }

    /// A client with the saved session. A session saved for another admin is not sent here.
    pub fn client(&self) -> Result<Client, Failure> {
        let not_logged_in = |detail: String| {
            Failure::new(
                "NotLoggedInError",
                format!("not logged in to {}:{}{detail}", self.host, self.port),
            )
            .with_hint("Run `rafiki login EMAIL` first.")
        };
        match &self.saved {
            Some(c) if c.host == self.host && c.port == self.port => {
                let mut client = self.anonymous();
                client.set_session(c.session.clone());
                Ok(client)
            }
            Some(c) => Err(not_logged_in(format!(
                " (the saved session is for {}:{})",
                c.host, c.port
            ))),
            None => Err(not_logged_in(String::new())),
        }
    }
}

/// Whose jobs a listing shows (`train list`, `inference list`): an app's, or a user's.
pub enum JobsOf {
    App(String),
    User(Uuid),
}

impl JobsOf {
    /// The app given with `--app`, else the user given with `--user`, else the one `client`
    /// is logged in as.
    pub fn new(app: Option<String>, user: Option<Uuid>, client: &Client) -> Result<Self, Failure> {
        Ok(match (app, user) {
            (Some(app), _) => JobsOf::App(app),
            (None, user) => JobsOf::User(user.unwrap_or(current_user(client)?)),
        })
    }
}

/// The id of the user `client` is logged in as.
fn current_user(client: &Client) -> Result<Uuid, Failure> {
    client
        .get_current_user()
        .map(|u| u.id)
        .ok_or_else(|| Failure::new("NotLoggedInError", "not logged in"))
}
