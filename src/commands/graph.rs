//! `cloud graph <ID>`: the stacks by layer, as text, Graphviz dot or JSON; with `--changed`,
//! those a git change touches (and their dependents).

use super::shared::{self, Outcome};
use crate::cli::{self, GraphFormat};
use crate::plan::NoPastRuns;
use crate::settings::{changed_flag, Settings};

pub fn run(settings: &Settings, args: cli::Graph) -> Outcome {
    let changed = changed_flag(&args.changed)?;
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, None)?;
    let mut plan = shared::plan(&manifest, &NoPastRuns)?;
    if let Some(query) = &changed {
        match crate::changed::select(&manifest, &registry, query)? {
            Some(only) => plan = plan.subset(|name| only.contains(name)),
            None => return Ok(()),
        }
    }
    let text = match args.format {
        GraphFormat::Text => plan.to_text(),
        GraphFormat::Dot => plan.to_dot(),
        GraphFormat::Json => format!("{:#}\n", plan.to_json()),
    };
    print!("{text}");
    Ok(())
}
