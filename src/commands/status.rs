//! `cloud status <ID> -e ENV`: the latest run, folded by the one reducer from its events —
//! read from the DynamoDB table when one is configured, else from the journal. Both sources
//! hold the same events, so the output is the same (only the line naming the source differs).

use std::io::Write;

use super::shared::{self, Outcome};
use crate::cli::{self, Output};
use crate::error::{Error, Kind};
use crate::progress::Model;
use crate::settings::Settings;
use crate::store::audit::{self, Source};
use crate::store::{checkpoint, journal};
use crate::timing;
use crate::view::status::{self, Liveness};

pub fn run(settings: &Settings, args: cli::Status) -> Outcome {
    let registry = shared::registry();
    let manifest = shared::load_header(settings, &registry, &args.id, Some(&args.environment))?;
    let dir = journal::dir(&manifest.dir, &args.environment);
    let rt = shared::runtime()?;
    let source = shared::open_trail(&rt, &args.store, &manifest)?;
    // A finished run's checkpoint, when it provably says what its journal says, spares reading
    // and folding the whole journal; else the events are read back and folded.
    let checkpoint = match &source {
        Source::Journal { .. } => journal::latest_run(&dir)
            .and_then(|path| Some((audit::run_id_of(&path), checkpoint::read(&path)?))),
        Source::DynamoDb { .. } => None,
    };
    let (run_id, model, events, skipped) = match checkpoint {
        Some((run_id, model)) => (run_id, Some(model), Vec::new(), Vec::new()),
        None => match rt.block_on(source.latest_run(&args.environment))? {
            Some((run_id, events, skipped)) => {
                let model = Model::from_events(&events);
                (run_id, model, events, skipped)
            }
            None => {
                return Err(Error::input(format!(
                    "{} has no recorded run in {} ({})",
                    manifest.deployment_id,
                    args.environment,
                    source.describe(),
                ))
                .hint(format!(
                    "deploy it first: cloud deploy {} -e {}",
                    manifest.deployment_id, args.environment
                )));
            }
        },
    };
    let place = match &source {
        Source::Journal { .. } => format!("journal: {}", journal::path(&dir, &run_id).display()),
        Source::DynamoDb { table, .. } => format!("events: DynamoDB table {}", table.name),
    };
    for skipped in &skipped {
        match &source {
            Source::Journal { .. } => {
                eprintln!("warning: skipped a line of the journal: {skipped}")
            }
            Source::DynamoDb { .. } => eprintln!("warning: skipped {skipped}"),
        }
    }
    let Some(model) = model else {
        return Err(Error::failed(format!(
            "run {run_id} holds no event ({place})"
        )));
    };
    // As `cloud history` tells it.
    let liveness = if shared::is_running(&rt, &source, &manifest, &args.environment, &run_id) {
        Liveness::Running
    } else {
        Liveness::Gone
    };
    let mut out = std::io::stdout().lock();
    // Each stack's drift health, as the last checks and deploys left it.
    let health = shared::health(&rt, &source, &manifest, &args.environment)?;
    let written = match args.output {
        Output::Json => {
            let mut json = serde_json::to_value(&model).map_err(std::io::Error::other);
            if let Ok(serde_json::Value::Object(map)) = &mut json {
                map.insert("health".into(), serde_json::json!(health));
                if args.timing {
                    let until = match liveness {
                        Liveness::Gone => model.last_event_time.unwrap_or_else(chrono::Utc::now),
                        Liveness::Running => chrono::Utc::now(),
                    };
                    map.insert("timing".into(), timing::json(&model, until));
                }
            }
            json.and_then(|json| {
                serde_json::to_writer_pretty(&mut out, &json).map_err(std::io::Error::other)
            })
        }
        Output::Text => {
            let now = chrono::Utc::now();
            let mut text = status::text(&model, &place, liveness, now, &health);
            if args.timing {
                // A dead run's clock stopped at its last event (as the lines above tell it).
                let until = match liveness {
                    Liveness::Gone => model.last_event_time.unwrap_or(now),
                    Liveness::Running => now,
                };
                text.push('\n');
                text.push_str(&timing::table(&model, until, status::width()));
            }
            out.write_all(text.as_bytes())
        }
    };
    let _ = written.and_then(|()| writeln!(out));
    // So CI can gate on it: 0 while the run goes on or after it succeeded, 1 when it failed,
    // rolled back, was cancelled or died (the state above already said which).
    let succeeded = match liveness {
        Liveness::Running if !model.is_finished() => true,
        _ => model.succeeded(),
    };
    // The process ends here: a big run's events and model (hundreds of thousands of small
    // allocations) are left to the system rather than freed one by one.
    std::mem::forget((events, model));
    if succeeded {
        Ok(())
    } else {
        Err(Error::shown(Kind::Failed))
    }
}
