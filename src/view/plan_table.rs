//! The table that ends a plan in the simple and verbose views: every stack and what its plan
//! does, then the totals, in the words of [`crate::words`].

use super::Palette;
use crate::event::StackState;
use crate::progress::Model;
use crate::words::{blocker, plan_counts, plural, provisional, stack_plan, would_skip};

/// The end of a plan: a table of every stack and what its plan does, then the totals.
/// Destructive rows are red (and marked in plain text), provisional ones say why.
pub fn plan_summary(model: &Model, p: Palette) -> Vec<String> {
    let width = (model.stacks.iter())
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0)
        .max("Total".len());
    let mut lines = vec![p.bold(&format!("{:<width$}  Plan", "Stack"))];
    let mut unchanged = 0;
    for stack in &model.stacks {
        let (text, destructive) = match (stack.status, &stack.plan) {
            (StackState::Deployed, Some(plan)) => (stack_plan(plan), plan.destructive()),
            (StackState::Skipped, _) => {
                unchanged += 1;
                (would_skip(stack.skip_reason).to_owned(), false)
            }
            (StackState::Failed, _) => {
                let why = stack.error.as_ref().map_or("", |e| e.message.as_str());
                (format!("✗ failed: {why}"), false)
            }
            (StackState::Blocked, _) => {
                (format!("⊘ not planned: {} failed", blocker(stack)), false)
            }
            _ => ("not planned".to_owned(), false),
        };
        let row = format!("{:<width$}  {text}", stack.name);
        lines.push(match (destructive, stack.status) {
            (true, _) => p.red(&row),
            (_, StackState::Failed | StackState::Blocked) => p.red(&row),
            (_, StackState::Skipped) => p.dim(&row),
            _ => row,
        });
        if let Some(plan) = stack.plan.as_deref().filter(|p| !p.provisional.is_empty()) {
            lines.push(p.yellow(&format!(
                "{:<width$}    {}",
                "",
                provisional(&plan.provisional)
            )));
        }
    }
    let t = &model.plan_totals;
    let mut total = format!("{:<width$}  {}", "Total", plan_counts(&t.counts));
    let mut stacks = vec![format!("{} changing", plural(t.changed_stacks, "stack"))];
    for (n, what) in [
        (unchanged, "unchanged"),
        (t.provisional_stacks, "provisional"),
        (t.no_preview_stacks, "without preview"),
    ] {
        if n > 0 {
            stacks.push(format!("{n} {what}"));
        }
    }
    total.push_str(&format!(" · {}", stacks.join(", ")));
    lines.push(if t.counts.destroy > 0 {
        p.red(&total)
    } else {
        p.bold(&total)
    });
    lines
}
