//! `rafiki login`, `logout` and `whoami`: the saved session, and the password prompt that
//! `users create` shares.

use std::io::IsTerminal;

use serde_json::json;

use crate::context::Context;
use crate::credentials::{self, Credentials};
use crate::failure::Failure;

/// A password from the command line, else prompted at a terminal, else the first line of
/// stdin (so scripts can pipe it in without it showing in the process list).
pub fn password(given: Option<String>, prompt: &str) -> Result<String, Failure> {
    if let Some(password) = given {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt)
            .map_err(|e| Failure::new("IoError", format!("cannot read the password: {e}")));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Failure::new("IoError", format!("cannot read the password: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(Failure::usage(
            "no password: give --password, set RAFIKI_PASSWORD, or pipe it on stdin",
        ));
    }
    Ok(password)
}

/// `rafiki login`
pub async fn login(ctx: &Context, email: &str, given: Option<String>) -> Result<(), Failure> {
    let password = password(given, &format!("Password for {email}: "))?;
    let mut client = ctx.anonymous();
    let user = client.login(email, &password).await?;
    let session = client.session().cloned().ok_or_else(|| {
        Failure::new(
            "InvalidResponseError",
            "the login answered without a session",
        )
    })?;
    let path = credentials::save(&Credentials {
        host: ctx.host.clone(),
        port: ctx.port,
        email: email.to_owned(),
        session,
    })?;
    let answer = json!({
        "user_id": user.id, "user_type": user.user_type, "email": email,
        "host": ctx.host, "port": ctx.port, "credentials": path,
    });
    ctx.out.say(&answer, |_| {
        format!(
            "Logged in to {}:{} as {email} ({}). Session saved in {}.",
            ctx.host,
            ctx.port,
            user.user_type,
            path.display()
        )
    });
    Ok(())
}

/// `rafiki logout`
pub fn logout(ctx: &Context) -> Result<(), Failure> {
    let removed = credentials::remove()?;
    ctx.out.say(&json!({ "logged_out": removed }), |_| {
        if removed {
            "Logged out; the saved session is gone.".to_owned()
        } else {
            "Not logged in.".to_owned()
        }
    });
    Ok(())
}

/// `rafiki whoami`
pub fn whoami(ctx: &Context) -> Result<(), Failure> {
    ctx.client()?;
    let saved = ctx
        .saved
        .as_ref()
        .ok_or_else(|| Failure::usage("not logged in"))?;
    let answer = json!({
        "email": saved.email, "user_id": saved.session.user.id,
        "user_type": saved.session.user.user_type, "host": saved.host, "port": saved.port,
    });
    ctx.out.say(&answer, |_| {
        format!(
            "{} ({}, id {}) at {}:{}",
            saved.email,
            saved.session.user.user_type,
            saved.session.user.id,
            saved.host,
            saved.port
        )
    });
    Ok(())
}
