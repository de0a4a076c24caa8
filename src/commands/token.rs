//! `cloud token [--deployment ID]… [--ttl 1h]`: mints a JWT signed with `CLOUD_JWT_SECRET`,
//! for servers started with the same secret.

use super::shared::Outcome;
use crate::cli;
use crate::error::Error;
use crate::server::auth::{self, Auth};
use crate::store::lock;

pub fn run(args: cli::Token) -> Outcome {
    let Some(auth) = Auth::from_env()? else {
        return Err(Error::input(format!(
            "{} is not set, and a token is only good for a server with the same secret",
            auth::SECRET_ENV
        ))
        .hint(format!(
            "export {}=<a long random string> here and where the server runs \
             (a server without it prints a token of its own)",
            auth::SECRET_ENV
        )));
    };
    let ttl = auth::parse_ttl(&args.ttl).map_err(|e| Error::input(format!("--ttl {e}")))?;
    if let Some(bad) = args.deployment.iter().find(|d| d.trim().is_empty()) {
        return Err(Error::input(format!("--deployment `{bad}` is empty"))
            .hint("e.g. --deployment D1BRV40"));
    }
    let subject = args
        .subject
        .or_else(lock::user)
        .unwrap_or_else(|| "cloud".into());
    let scope = (!args.deployment.is_empty()).then_some(args.deployment);
    println!("{}", auth.mint(&subject, scope, ttl));
    Ok(())
}
