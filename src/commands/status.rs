//! `cloud status <ID> -e ENV`: the latest run, folded from its journal by the one reducer.

use std::io::Write;

use super::{exit, Failure};
use crate::cli::{self, Output};
use crate::progress::Model;
use crate::settings::Settings;
use crate::store::{journal, lock};
use crate::view::status::{self, Liveness};

pub fn run(settings: &Settings, args: cli::Status) -> Result<i32, Failure> {
    let registry = super::registry();
    let manifest = super::load(settings, &registry, &args.id, Some(&args.environment))?;
    let dir = journal::dir(&manifest.dir, &args.environment);
    let Some(path) = journal::latest_run(&dir) else {
        return Err(Failure::input(format!(
            "error: {} has no recorded run in {}\n  help: deploy it first: cloud deploy {} -e {}",
            manifest.deployment_id, args.environment, manifest.deployment_id, args.environment
        )));
    };
    let read = journal::read(&path).map_err(|e| {
        Failure::new(
            exit::FAILED,
            format!("error: cannot read the journal {}: {e}", path.display()),
        )
    })?;
    for skipped in &read.skipped {
        eprintln!("warning: skipped a line of the journal: {skipped}");
    }
    let Some(model) = Model::from_events(&read.events) else {
        return Err(Failure::new(
            exit::FAILED,
            format!("error: the journal {} holds no event", path.display()),
        ));
    };
    let liveness = match lock::holder(&dir) {
        Some(h) if h.run_id == model.run_id => Liveness::Running,
        _ => Liveness::Gone,
    };
    let mut out = std::io::stdout().lock();
    let written = match args.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut out, &model).map_err(std::io::Error::other)
        }
        Output::Text => {
            out.write_all(status::text(&model, &path, liveness, chrono::Utc::now()).as_bytes())
        }
    };
    let _ = written.and_then(|()| writeln!(out));
    Ok(exit::OK)
}
