//! `cloud completions <shell>`: the completion script. It calls `cloud` back for candidates,
//! so it completes flags from the one clap definition and values from the tree under `--root`.

use std::io::Write;

use super::shared::Outcome;
use crate::cli;

pub fn run(args: cli::Completions) -> Outcome {
    // A closed pipe (`cloud completions bash | head`) is not an error worth a message.
    let _ = std::io::stdout().write_all(&cli::completion_script(args.shell));
    Ok(())
}
