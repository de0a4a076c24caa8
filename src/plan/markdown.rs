//! A plan as a pull-request comment (`cloud plan … --markdown FILE`, and `$GITHUB_STEP_SUMMARY`
//! under GitHub Actions): a table of stacks with their counts, destructive ones first, then each
//! stack's resources in a collapsible block, within GitHub's comment limit (what is cut is said).
//! A drift check (`cloud drift … --markdown FILE`) the same way: each stack's health, drifted
//! first, then each drifted stack's resources and attributes.

use std::io::Write;
use std::path::Path;

use crate::error::Error;
use crate::event::{DriftStatus, Operation, PlanCounts, StackState};
use crate::progress::{Model, StackPlan};

/// GitHub's limit on a comment's body, in characters.
pub const LIMIT: usize = 65_536;
/// Kept free for the note that says what was cut.
const NOTE_ROOM: usize = 400;

/// The comment for a finished plan (or a drift check's findings).
pub fn render(model: &Model) -> String {
    if model.operation == Operation::Drift {
        return render_drift(model);
    }
    let planned: Vec<(&str, &StackPlan)> = model
        .stacks
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.plan.as_deref().filter(|p| p.done)?)))
        .collect();
    let title = format!("{} -e {}", model.deployment_id, model.environment);
    render_stacks(&title, &model.plan_totals.counts, planned)
}

/// `planned` in the manifest's order.
fn render_stacks(title: &str, t: &PlanCounts, mut planned: Vec<(&str, &StackPlan)>) -> String {
    // Destructive first, then the manifest's order (a stable sort keeps it).
    planned.sort_by_key(|(_, p)| !p.destructive());
    let mut out = Body::new(LIMIT - NOTE_ROOM);
    out.push(format!(
        "## `cloud plan` {title}\n\n**{} stacks planned**, {} with changes: {}\n\n",
        planned.len(),
        planned.iter().filter(|(_, p)| p.changes).count(),
        crate::words::plan_counts(t)
    ));
    out.push(
        "| Stack | Add | Change | Destroy | Replace | Note |\n|---|--:|--:|--:|--:|---|\n".into(),
    );
    let mut rows_cut = 0;
    for (stack, plan) in &planned {
        let c = &plan.counts;
        let name = match plan.destructive() {
            true => format!("⚠️ **{stack}**"),
            false => format!("`{stack}`"),
        };
        let row = format!(
            "| {name} | {} | {} | {} | {} | {} |\n",
            c.add,
            c.change,
            c.destroy,
            c.replace,
            note(plan).replace('|', "\\|")
        );
        if !out.push(row) {
            rows_cut += 1;
        }
    }
    out.push("\n".into());
    let mut blocks_cut = 0;
    let mut resources_cut = 0;
    for (stack, plan) in planned.iter().filter(|(_, p)| !p.resources.is_empty()) {
        let c = &plan.counts;
        let open = format!(
            "<details><summary>{}{}: +{} ~{} -{} ±{}</summary>\n\n",
            if plan.destructive() { "⚠️ " } else { "" },
            stack,
            c.add,
            c.change,
            c.destroy,
            c.replace
        );
        const CLOSE: &str = "\n</details>\n\n";
        // A block is only started when its end fits too.
        if !out.fits(open.chars().count() + CLOSE.len() + 40) {
            blocks_cut += 1;
            continue;
        }
        out.push(open);
        out.reserve(CLOSE.len() + 40);
        let mut cut_here = 0;
        for r in &plan.resources {
            let mark = if r.action.is_destructive() { "**" } else { "" };
            let drift = if r.drift { " (drift)" } else { "" };
            let line = format!(
                "- {mark}{}{mark} `{}`{drift}\n",
                r.action.as_str(),
                r.label.replace('`', "'")
            );
            if cut_here > 0 || !out.push(line) {
                cut_here += 1;
            }
        }
        out.release(CLOSE.len() + 40);
        if cut_here > 0 {
            out.push(format!("- … {cut_here} more not shown\n"));
            resources_cut += cut_here;
        }
        out.push(CLOSE.into());
    }
    let mut body = out.text;
    if rows_cut + blocks_cut + resources_cut > 0 {
        body.push_str(&format!(
            "> **Cut to stay within GitHub's {LIMIT}-character comment limit:** {rows_cut} table rows, {blocks_cut} stacks' resource lists and {resources_cut} resource lines are not shown; the full plan is in `cloud plan --report FILE` or the run's log.\n"
        ));
    }
    body
}

/// A drift check: a table of stacks with their health, drifted ones first, then each drifted
/// stack's resources and attributes.
fn render_drift(model: &Model) -> String {
    let title = format!("{} -e {}", model.deployment_id, model.environment);
    let t = &model.drift_totals;
    let mut out = Body::new(LIMIT - NOTE_ROOM);
    out.push(format!(
        "## `cloud drift` {title}\n\n**{}**\n\n",
        crate::words::drift_totals(model)
    ));
    if t.drifted > 0 {
        out.push(format!(
            "Bring them back: `cloud deploy {} -e {} --only-drifted`\n\n",
            model.deployment_id, model.environment
        ));
    }
    out.push("| Stack | Health | Drifted resources |\n|---|---|--:|\n".into());
    let mut stacks: Vec<_> = model.stacks.iter().collect();
    let rank = |s: &&crate::progress::StackModel| match (
        s.status,
        s.drift.as_deref().and_then(|d| d.status),
    ) {
        (_, Some(DriftStatus::Drifted)) => 0,
        (StackState::Failed, _) => 1,
        (_, Some(DriftStatus::Unknown)) => 2,
        (_, Some(DriftStatus::InSync)) => 3,
        _ => 4,
    };
    stacks.sort_by_key(rank);
    let mut rows_cut = 0;
    for s in &stacks {
        let health = match (&s.drift, &s.error, s.status) {
            (Some(d), _, _) => crate::words::drift_found(d),
            (None, Some(e), _) => format!("error: {}", e.message),
            (None, None, StackState::Skipped) => crate::words::skip_reason(s.skip_reason).into(),
            (None, None, other) => other.as_str().into(),
        };
        let name = match rank(s) {
            0 => format!("⚠️ **{}**", s.name),
            1 => format!("❌ **{}**", s.name),
            _ => format!("`{}`", s.name),
        };
        let n = s.drift.as_deref().map_or(0, |d| d.resources.len());
        if !out.push(format!(
            "| {name} | {} | {n} |\n",
            health.replace('|', "\\|")
        )) {
            rows_cut += 1;
        }
    }
    for s in stacks.iter().filter(|s| rank(s) == 0) {
        let Some(drift) = &s.drift else { continue };
        let mut block = format!(
            "\n<details><summary>{}: {}</summary>\n\n",
            s.name,
            crate::words::plural(drift.resources.len(), "drifted resource")
        );
        for r in &drift.resources {
            block.push_str(&format!("- {}\n", crate::words::drifted_resource(r)));
        }
        block.push_str("\n</details>\n");
        if !out.push(block) {
            rows_cut += 1;
        }
    }
    let mut body = out.text;
    if rows_cut > 0 {
        body.push_str(&format!(
            "> **Cut to stay within GitHub's {LIMIT}-character limit:** {rows_cut} rows or blocks are not shown; all of it is in `cloud drift --report FILE` or the run's log.\n"
        ));
    }
    body
}

/// What the table says beside the counts.
fn note(plan: &StackPlan) -> String {
    let mut parts = Vec::new();
    if let Some(why) = &plan.no_preview {
        parts.push(format!("no preview: {why}"));
    } else if !plan.changes {
        parts.push("no changes".to_owned());
    }
    if !plan.provisional.is_empty() {
        parts.push(format!("provisional: {}", plan.provisional.join("; ")));
    }
    parts.join("; ")
}

/// Text with a budget of characters: what does not fit is not added.
struct Body {
    text: String,
    used: usize,
    budget: usize,
}

impl Body {
    fn new(budget: usize) -> Self {
        Body {
            text: String::new(),
            used: 0,
            budget,
        }
    }
    fn fits(&self, chars: usize) -> bool {
        self.used + chars <= self.budget
    }
    /// Adds `part` when it fits; says whether it did.
    fn push(&mut self, part: String) -> bool {
        let n = part.chars().count();
        if !self.fits(n) {
            return false;
        }
        self.used += n;
        self.text.push_str(&part);
        true
    }
    fn reserve(&mut self, n: usize) {
        self.budget -= n;
    }
    fn release(&mut self, n: usize) {
        self.budget += n;
    }
}

/// Writes the comment to `file` (`--markdown`) and, under GitHub Actions, appends it to
/// `$GITHUB_STEP_SUMMARY` when that is set.
pub fn write(file: Option<&Path>, step_summary: Option<&Path>, model: &Model) -> Result<(), Error> {
    let body = render(model);
    if let Some(file) = file {
        std::fs::write(file, &body).map_err(|e| {
            Error::failed(format!(
                "cannot write the Markdown to {}: {e}\n  help: give --markdown a file that can be written",
                file.display()
            ))
        })?;
    }
    if let Some(summary) = step_summary {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(summary)
            .and_then(|mut f| f.write_all(format!("{body}\n").as_bytes()));
        if let Err(e) = appended {
            eprintln!(
                "warning: cannot append the plan to $GITHUB_STEP_SUMMARY ({}): {e}",
                summary.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::PlanAction;
    use crate::progress::PlannedResource;

    /// `stacks` plans of `resources` creates each; the last one's first resource is a delete.
    fn render_plans(stacks: usize, resources: usize) -> String {
        let mut plans = Vec::new();
        let mut totals = PlanCounts::default();
        for s in 0..stacks {
            let mut plan = StackPlan {
                done: true,
                changes: true,
                ..StackPlan::default()
            };
            for r in 0..resources {
                let action = if s == stacks - 1 && r == 0 {
                    PlanAction::Delete
                } else {
                    PlanAction::Create
                };
                plan.counts.count(action);
                totals.count(action);
                plan.resources.push(PlannedResource {
                    label: format!("aws_thing.resource_{r}"),
                    action,
                    drift: false,
                });
            }
            plans.push((format!("s{s}"), plan));
        }
        let planned = plans.iter().map(|(n, p)| (n.as_str(), p)).collect();
        render_stacks("D1 -e dev", &totals, planned)
    }

    #[test]
    fn destructive_stacks_come_first_each_with_its_resources_folded() {
        let text = render_plans(3, 2);
        let row_of = |name: &str| text.find(&format!("| {name}")).unwrap();
        assert!(row_of("⚠️ **s2**") < row_of("`s0`"), "{text}");
        assert_eq!(text.matches("<details>").count(), 3, "{text}");
        assert!(
            text.contains("- **delete** `aws_thing.resource_0`"),
            "{text}"
        );
        assert!(!text.contains("Cut to stay"), "{text}");
    }

    #[test]
    fn a_plan_too_big_for_a_comment_is_cut_and_says_so() {
        let text = render_plans(40, 500);
        assert!(text.chars().count() <= LIMIT, "{}", text.chars().count());
        assert!(
            text.contains("Cut to stay within GitHub's 65536-character"),
            "{}",
            &text[text.len() - 400..]
        );
        // Every stack keeps its row; whole blocks stay well-formed.
        assert_eq!(
            text.matches("| `s").count() + text.matches("| ⚠️").count(),
            40
        );
        assert_eq!(
            text.matches("<details>").count(),
            text.matches("</details>").count()
        );
    }
}
