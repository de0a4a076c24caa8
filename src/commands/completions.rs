//! `cloud completions <shell>`: the completion script, generated from the one clap definition.

use super::{exit, Failure};
use crate::cli;

pub fn run(args: cli::Completions) -> Result<i32, Failure> {
    clap_complete::generate(
        args.shell,
        &mut cli::command(),
        "cloud",
        &mut std::io::stdout(),
    );
    Ok(exit::OK)
}
