//! `cloud affected <ID>`: the stacks a git change touches and their dependents, each with why,
//! as text, JSON, or the matrix a GitHub Actions job fans out over. Runs nothing.

use serde_json::json;

use super::shared::{self, Outcome};
use crate::changed;
use crate::cli::{self, AffectedFormat};
use crate::settings::{since_flags, Settings};

pub fn run(settings: &Settings, args: cli::Affected) -> Outcome {
    let registry = shared::registry();
    let manifest = shared::load(settings, &registry, &args.id, args.environment.as_deref())?;
    let affected = changed::affected(&manifest, &registry, &since_flags(&args.since))?;
    for warning in affected.deleted_warnings() {
        eprintln!("{warning}");
    }
    let stacks = &affected.stacks;
    match args.output {
        AffectedFormat::Text => print!("{}", affected.to_text(&manifest.deployment_id)),
        AffectedFormat::Json => {
            let list: Vec<_> = stacks
                .iter()
                .map(|s| {
                    let reasons: Vec<String> = s.reasons.iter().map(|r| r.to_string()).collect();
                    json!({ "stack": s.name, "reasons": reasons, "layer": s.layer })
                })
                .collect();
            println!("{:#}", serde_json::Value::from(list));
        }
        // One line: what `echo "matrix=$(…)" >> "$GITHUB_OUTPUT"` takes. Already by layer.
        AffectedFormat::GithubMatrix => {
            let include: Vec<_> = stacks
                .iter()
                .map(|s| json!({ "stack": s.name, "layer": s.layer }))
                .collect();
            println!("{}", json!({ "include": include }));
        }
    }
    Ok(())
}
