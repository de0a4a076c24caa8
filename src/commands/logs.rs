//! `cloud logs <ID> -e ENV`: the newest file log of the environment, filtered by stack and
//! level; `--follow` keeps printing as the run writes, until its end mark (or until its
//! process is gone).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use super::shared::{self, Outcome};
use crate::cli::{self, Level};
use crate::error::Error;
use crate::event::LogLevel;
use crate::settings::Settings;
use crate::store::filelog::{self, Parsed, END_MARK};
use crate::store::{journal, lock};

/// How often `--follow` looks for new lines.
const POLL: Duration = Duration::from_millis(200);

pub fn run(settings: &Settings, args: cli::Logs) -> Outcome {
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, Some(&args.environment))?;
    let Some(path) = filelog::latest(&manifest.dir, &args.environment) else {
        return Err(Error::input(format!(
            "{} has no file log for {} in {}",
            manifest.deployment_id,
            args.environment,
            filelog::dir(&manifest.dir).display(),
        ))
        .hint(format!(
            "deploy it first: cloud deploy {} -e {}",
            manifest.deployment_id, args.environment
        )));
    };
    if let Some(stack) = &args.stack {
        if manifest.stack(stack).is_none() {
            let names: Vec<&str> = manifest.stacks.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::input(format!(
                "deployment {} has no stack `{}` (--stack)",
                manifest.deployment_id,
                stack.escape_debug(),
            ))
            .hint(format!(
                "{}stacks: {}",
                crate::manifest::did_you_mean(stack, &names),
                crate::manifest::list(&names)
            )));
        }
    }
    let unreadable =
        |e: std::io::Error| Error::failed(format!("cannot read {}: {e}", path.display()));
    let file = File::open(&path).map_err(unreadable)?;
    let min = args.level.map(|l| match l {
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    });
    let rank = |l: LogLevel| l as u8;
    let wanted = |level: LogLevel, stack: Option<&str>| {
        min.is_none_or(|m| rank(level) >= rank(m))
            && args.stack.as_deref().is_none_or(|s| stack == Some(s))
    };
    let journal_dir = journal::dir(&manifest.dir, &args.environment);
    let mut reader = BufReader::new(file);
    let mut out = std::io::stdout().lock();
    let mut showing = true;
    let mut line = String::new();
    let mut ended = false;
    // A line is printed only once complete: while following, the writer may be mid-line.
    let mut partial = String::new();
    let mut idle_checks = 0u32;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(unreadable)?;
        if n > 0 && !line.ends_with('\n') {
            partial.push_str(&line);
            if !args.follow {
                line = std::mem::take(&mut partial);
            } else {
                continue;
            }
        } else if n > 0 && !partial.is_empty() {
            partial.push_str(&line);
            line = std::mem::take(&mut partial);
        }
        if n == 0 {
            if !args.follow || ended {
                break;
            }
            // The run is over without an end mark (it was killed): stop once nothing comes.
            if lock::holder(&journal_dir).is_none() {
                idle_checks += 1;
                if idle_checks > 5 {
                    break;
                }
            }
            let _ = out.flush();
            std::thread::sleep(POLL);
            continue;
        }
        idle_checks = 0;
        let text = line.trim_end_matches('\n');
        match filelog::parse(text) {
            Parsed::Note => {
                ended |= text.starts_with(END_MARK);
                if args.stack.is_none() && min.is_none() {
                    let _ = writeln!(out, "{text}");
                }
                continue;
            }
            Parsed::Event { level, stack } => showing = wanted(level, stack),
            Parsed::More => {}
        }
        if showing && writeln!(out, "{text}").is_err() {
            // stdout closed (a pager quit): nothing more to do.
            return Ok(());
        }
    }
    let _ = out.flush();
    Ok(())
}
