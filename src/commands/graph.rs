//! `cloud graph <ID>`: the stacks by layer, as text, Graphviz dot or JSON.

use super::shared::{self, Outcome};
use crate::cli::{self, GraphFormat};
use crate::plan::NoPastRuns;
use crate::settings::Settings;

pub fn run(settings: &Settings, args: cli::Graph) -> Outcome {
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, None)?;
    let plan = shared::plan(&manifest, &NoPastRuns)?;
    let text = match args.format {
        GraphFormat::Text => plan.to_text(),
        GraphFormat::Dot => plan.to_dot(),
        GraphFormat::Json => format!("{:#}\n", plan.to_json()),
    };
    print!("{text}");
    Ok(())
}
