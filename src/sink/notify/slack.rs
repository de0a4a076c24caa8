//! Slack: a Block Kit message posted to an incoming webhook. The failure message is the seed's
//! "Slack (Deployment Failed)" example — title, stack, error, duration, `Failed at: Layer 3/5`
//! and the buttons View Logs / Retry / Rollback, which link to the dashboard.

use serde_json::{json, Value};

use super::deliver::{AttemptError, Endpoint};
use super::notice::{Notice, What};
use crate::manifest::notifications::SlackSpec;

/// Slack's limits: a header's text, a section's text.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
/// Drifted stacks given a section each (Slack takes 50 blocks a message).
const MAX_STACKS: usize = 20;

pub struct Slack {
    endpoint: Endpoint,
}

impl Slack {
    pub fn new(spec: &SlackSpec, client: &reqwest::Client) -> Result<Slack, super::SetupError> {
        Ok(Slack {
            endpoint: Endpoint::new(&spec.webhook_url, client)?,
        })
    }

    /// The webhook's host (its path is the secret).
    pub fn describe(&self) -> String {
        self.endpoint.shown.clone()
    }

    pub async fn send(&self, message: &Value) -> Result<(), AttemptError> {
        let body = serde_json::to_vec(message).unwrap_or_default();
        self.endpoint.post(body, &[]).await
    }
}

/// The Block Kit message for a notice.
pub fn message(notice: &Notice) -> Value {
    let title = format!("{} {}", emoji(notice), notice.title());
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": cut(&title, HEADER_MAX), "emoji": true },
    })];
    let c = &notice.counts;
    match notice.what {
        What::Failed | What::StackFailed => {
            let f = notice.failure.as_ref();
            let mut lines = Vec::new();
            if let Some(stack) = f.and_then(|f| f.stack.as_deref()) {
                lines.push(format!("*Stack:* {}", escape(stack)));
            }
            if let Some(f) = f {
                lines.push(format!("*Error:* {}", escape(&f.error.message)));
            }
            blocks.push(section(&lines.join("\n")));
            let mut lines = vec![format!("*Duration:* {}", notice.duration())];
            match (notice.what, notice.failed_at(), notice.layer()) {
                (What::Failed, Some(at), _) => lines.push(format!("*Failed at:* {at}")),
                (_, _, Some(layer)) => lines.push(format!("*Layer:* {layer}")),
                _ => {}
            }
            blocks.push(section(&lines.join("\n")));
            if notice.what == What::Failed {
                let mut more = Vec::new();
                if c.failed > 1 {
                    more.push(format!("{} stacks failed", c.failed));
                }
                if c.blocked > 0 {
                    more.push(format!("{} blocked", c.blocked));
                }
                if c.not_started > 0 {
                    more.push(format!("{} not started", c.not_started));
                }
                if !more.is_empty() {
                    blocks.push(context(&format!(
                        "{} of {} stacks · {}",
                        c.deployed + c.skipped,
                        c.total,
                        more.join(" · ")
                    )));
                }
            }
        }
        What::Complete => {
            blocks.push(section(&escape(&notice.headline())));
            blocks.push(json!({
                "type": "section",
                "fields": [
                    field("Total Stacks", &c.total.to_string()),
                    field("Deployed", &c.deployed.to_string()),
                    field("Skipped", &c.skipped.to_string()),
                    field("Duration", &notice.duration()),
                ],
            }));
        }
        What::Started => {
            blocks.push(section(&escape(&notice.headline())));
            let mut fields = vec![field(
                "Stacks",
                &format!("{} in {} layers", c.total, notice.total_layers),
            )];
            if let Some(eta) = notice.estimated_seconds.filter(|s| *s > 0) {
                fields.push(field("Estimated duration", &crate::words::format_eta(eta)));
            }
            if let Some(user) = &notice.user {
                fields.push(field("Started by", user));
            }
            blocks.push(json!({ "type": "section", "fields": fields }));
        }
        What::DriftDetected | What::DriftResolved => drift_blocks(notice, &mut blocks),
        What::Test => blocks.push(section(&escape(&notice.headline()))),
    }
    let links = &notice.links;
    let mut buttons = Vec::new();
    match notice.what {
        What::Failed => {
            buttons.extend(button("View Logs", links.logs.as_deref(), None));
            buttons.extend(button("Retry", links.retry.as_deref(), Some("primary")));
            buttons.extend(button(
                "Rollback",
                links.rollback.as_deref(),
                Some("danger"),
            ));
        }
        What::StackFailed => buttons.extend(button("View Logs", links.logs.as_deref(), None)),
        _ => buttons.extend(button("View Details", links.details.as_deref(), None)),
    }
    if buttons.is_empty() {
        if notice.what == What::Failed && !notice.cancelled() {
            blocks.push(context(&format!(
                "Run it again: `{}`",
                escape(&notice.retry_command())
            )));
        }
    } else {
        blocks.push(json!({ "type": "actions", "elements": buttons }));
    }
    json!({ "text": title, "blocks": blocks })
}

fn emoji(notice: &Notice) -> &'static str {
    match notice.what {
        What::Started => "🚀",
        What::Complete => "✅",
        What::Failed if notice.cancelled() => "⚠️",
        What::Failed => "🚨",
        What::StackFailed => "❌",
        What::DriftDetected => "🌀",
        What::DriftResolved => "✅",
        What::Test => "🔔",
    }
}

/// The headline, a section per stack (since when, its resources), the totals of a drift check
/// and, for drift found, how to heal it.
fn drift_blocks(notice: &Notice, blocks: &mut Vec<Value>) {
    blocks.push(section(&escape(&notice.headline())));
    let stacks = notice.drift_stacks();
    for s in stacks.iter().take(MAX_STACKS) {
        let state = match notice.what {
            What::DriftResolved => format!("in sync again ({})", s.since_words()),
            _ => s.since_words(),
        };
        let mut lines = vec![format!("*{}* · {state}", escape(&s.stack))];
        lines.extend(s.resources.iter().map(|r| format!("• {}", escape(r))));
        blocks.push(section(&lines.join("\n")));
    }
    if stacks.len() > MAX_STACKS {
        blocks.push(context(&format!(
            "… and {} more stacks",
            stacks.len() - MAX_STACKS
        )));
    }
    let mut facts = Vec::new();
    if notice.operation == crate::event::Operation::Drift {
        let t = notice.drift.as_ref().map(|d| d.totals).unwrap_or_default();
        facts.push(format!("{} drifted · {} in sync", t.drifted, t.in_sync));
        if t.unknown > 0 {
            facts.push(format!("{} unknown", t.unknown));
        }
        facts.push(notice.duration());
    }
    if notice.what == What::DriftDetected {
        facts.push(format!("Heal it: `{}`", escape(&notice.heal_command())));
    }
    if !facts.is_empty() {
        blocks.push(context(&facts.join(" · ")));
    }
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": cut(text, SECTION_MAX) } })
}

fn context(text: &str) -> Value {
    json!({ "type": "context", "elements": [ { "type": "mrkdwn", "text": cut(text, SECTION_MAX) } ] })
}

fn field(label: &str, value: &str) -> Value {
    json!({ "type": "mrkdwn", "text": format!("*{label}:*\n{}", escape(value)) })
}

fn button(text: &str, url: Option<&str>, style: Option<&str>) -> Option<Value> {
    let mut b = json!({
        "type": "button",
        "text": { "type": "plain_text", "text": text },
        "url": url?,
    });
    if let Some(style) = style {
        b["style"] = json!(style);
    }
    Some(b)
}

/// Slack's mrkdwn reads `&`, `<` and `>` as markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ErrorCode, ErrorDetail};
    use crate::sink::notify::notice::{Links, WhatFailed};

    #[test]
    fn the_failure_message_is_the_seeds() {
        let mut n = Notice::test("D1BRV40", "dev", None);
        n.what = What::Failed;
        n.duration_seconds = 330;
        n.total_layers = 5;
        n.links = Links::new(
            Some("https://cloud.example.com"),
            "D1BRV40",
            "dev",
            Some("database-rds"),
        );
        n.failure = Some(WhatFailed {
            stack: Some("database-rds".into()),
            layer: Some(3),
            error: ErrorDetail {
                code: ErrorCode::InsufficientPermissions,
                message: "Insufficient IAM permissions".into(),
                details: None,
            },
            failed_stacks: vec!["database-rds".into()],
            blocked_stacks: vec![],
        });
        let m = message(&n);
        assert_eq!(m["text"], "🚨 Deployment Failed: D1BRV40-dev");
        let b = &m["blocks"];
        assert_eq!(b[0]["text"]["text"], "🚨 Deployment Failed: D1BRV40-dev");
        assert_eq!(
            b[1]["text"]["text"],
            "*Stack:* database-rds\n*Error:* Insufficient IAM permissions"
        );
        assert_eq!(
            b[2]["text"]["text"],
            "*Duration:* 5m 30s\n*Failed at:* Layer 3/5"
        );
        let buttons: Vec<&str> = b[3]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["text"]["text"].as_str().unwrap())
            .collect();
        assert_eq!(buttons, ["View Logs", "Retry", "Rollback"]);
        assert_eq!(
            b[3]["elements"][2]["url"],
            "https://cloud.example.com/deployments/D1BRV40/dev/rollback"
        );
    }

    #[test]
    fn markup_in_errors_is_escaped() {
        assert_eq!(escape("a <b> & c"), "a &lt;b&gt; &amp; c");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
