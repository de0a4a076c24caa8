//! Email over SMTP (lettre): STARTTLS, TLS, or plain to a local relay; optional login. The
//! words are the seed's "Email (Deployment Complete)" example, and the same shape for the
//! other triggers.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::deliver::{error_chain, AttemptError};
use super::notice::{Notice, What};
use super::{Expected, SetupError};
use crate::manifest::notifications::{check_mailbox, check_smtp_url, EmailSpec, SmtpTls};

/// Lines of an error's details (a tool's stderr tail) a mail carries.
const DETAIL_LINES: usize = 30;
/// Stack names listed before "and N more".
const MAX_NAMES: usize = 20;
/// A drifted stack's resources listed before "and N more".
const MAX_RESOURCES: usize = 20;

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// `smtp://smtp.example.com:587 (starttls)`: the server, never the credentials.
    server: String,
}

impl Email {
    /// Reads the settings (and their `${VAR}`s) and prepares the transport.
    pub fn new(spec: &EmailSpec, timeout: Duration) -> Result<Email, SetupError> {
        let smtp = spec.smtp.resolve()?;
        let url = check_smtp_url(&smtp)
            .map_err(SetupError::unusable(&spec.smtp.key, Expected::SmtpServer))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let tls = spec.tls.unwrap_or_else(|| SmtpTls::for_url(&url));
        let port = url.port().unwrap_or(match tls {
            SmtpTls::Tls => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        });
        let params = || {
            TlsParameters::new(host.clone()).map_err(|e| {
                SetupError::Transport(format!("cannot set up TLS for {host}: {}", error_chain(&e)))
            })
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .timeout(Some(timeout))
            .tls(match tls {
                SmtpTls::Tls => Tls::Wrapper(params()?),
                SmtpTls::StartTls => Tls::Required(params()?),
                SmtpTls::None => Tls::None,
            });
        if let (Some(user), Some(password)) = (&spec.username, &spec.password) {
            builder = builder.credentials(Credentials::new(user.resolve()?, password.resolve()?));
        }
        let mailbox = |setting: &crate::manifest::notifications::Setting| {
            let text = setting.resolve()?;
            check_mailbox(&text).map_err(SetupError::unusable(&setting.key, Expected::Mailbox))
        };
        Ok(Email {
            transport: builder.build(),
            from: mailbox(&spec.from)?,
            to: spec.to.iter().map(mailbox).collect::<Result<_, _>>()?,
            server: format!("{}://{host}:{port} ({})", url.scheme(), tls.as_str()),
        })
    }

    /// `owner@example.com via smtp://127.0.0.1:2525 (none)`.
    pub fn describe(&self) -> String {
        let to: Vec<String> = self.to.iter().map(|m| m.email.to_string()).collect();
        format!("{} via {}", to.join(", "), self.server)
    }

    pub fn compose(&self, notice: &Notice) -> Result<Message, lettre::error::Error> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject(notice))
            .header(ContentType::TEXT_PLAIN)
            .message_id(None);
        for to in &self.to {
            message = message.to(to.clone());
        }
        message.body(body(notice))
    }

    pub async fn send(&self, message: &Message) -> Result<(), AttemptError> {
        match self.transport.send(message.clone()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(AttemptError {
                // A 5xx reply (unknown recipient, refused login) or a client error (the
                // server lacks STARTTLS or the login mechanism) will not change by retrying.
                retry: !(e.is_permanent() || e.is_client()),
                message: error_chain(&e),
            }),
        }
    }
}

/// `✓ Deployment Complete: D1BRV40-dev`.
pub fn subject(notice: &Notice) -> String {
    let mark = match notice.what {
        What::Started => "→ ",
        What::Complete => "✓ ",
        What::Failed | What::StackFailed => "✗ ",
        What::DriftDetected => "⚠ ",
        What::DriftResolved => "✓ ",
        What::Test => "",
    };
    format!("{mark}{}", notice.title())
}

/// The seed's mail: a headline, the facts, the summary and the links.
pub fn body(notice: &Notice) -> String {
    let mut out = vec![notice.headline(), String::new()];
    let c = &notice.counts;
    match notice.what {
        What::Started => {
            out.push(format!(
                "- Stacks: {} in {} {}",
                c.total,
                notice.total_layers,
                if notice.total_layers == 1 {
                    "layer"
                } else {
                    "layers"
                }
            ));
            if let Some(eta) = notice.estimated_seconds.filter(|s| *s > 0) {
                out.push(format!(
                    "- Estimated duration: {}",
                    crate::words::format_eta(eta)
                ));
            }
            if let Some(user) = &notice.user {
                out.push(format!("- Started by: {user}"));
            }
        }
        What::Complete => {
            out.push("Summary:".into());
            out.push(format!("- Total Stacks: {}", c.total));
            out.push(format!("- Deployed: {}", c.deployed));
            out.push(format!("- Skipped: {}", c.skipped));
            out.push(format!("- Duration: {}", notice.duration()));
        }
        What::Failed => {
            failure_lines(notice, &mut out);
            out.push(String::new());
            out.push("Summary:".into());
            out.push(format!("- Total Stacks: {}", c.total));
            out.push(format!("- Deployed: {}", c.deployed));
            out.push(format!("- Skipped: {}", c.skipped));
            out.push(format!("- Failed: {}", c.failed));
            out.push(format!("- Blocked: {}", c.blocked));
            if c.not_started > 0 {
                out.push(format!("- Not started: {}", c.not_started));
            }
            out.push(format!("- Duration: {}", notice.duration()));
            details_lines(notice, &mut out);
        }
        What::StackFailed => {
            failure_lines(notice, &mut out);
            out.push(format!("Duration: {}", notice.duration()));
            details_lines(notice, &mut out);
        }
        What::DriftDetected | What::DriftResolved => drift_lines(notice, &mut out),
        What::Test => {}
    }
    let links = &notice.links;
    let mut link_lines = Vec::new();
    if matches!(notice.what, What::Failed | What::StackFailed) {
        if let Some(logs) = &links.logs {
            link_lines.push(format!("View logs: {logs}"));
        }
    }
    if let Some(details) = &links.details {
        link_lines.push(format!("View details: {details}"));
    }
    if notice.what == What::Failed && !notice.cancelled() {
        link_lines.push(format!("Run it again: {}", notice.retry_command()));
    }
    if notice.what == What::DriftDetected {
        link_lines.insert(0, format!("Heal it: {}", notice.heal_command()));
    }
    if !link_lines.is_empty() {
        if out.last().is_some_and(|l| !l.is_empty()) {
            out.push(String::new());
        }
        out.extend(link_lines);
    }
    if !notice.run_id.is_empty() {
        out.push(String::new());
        out.push(format!("-- \ncloud, run {}", notice.run_id));
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// `Stack:`, `Error:`, `Code:`, `Failed at:` and the other failed and blocked stacks.
fn failure_lines(notice: &Notice, out: &mut Vec<String>) {
    let Some(f) = &notice.failure else { return };
    if let Some(stack) = &f.stack {
        out.push(format!("Stack: {stack}"));
    }
    out.push(format!("Error: {}", one_line(&f.error.message)));
    if !f.error.code.as_str().is_empty() {
        out.push(format!("Code: {}", f.error.code));
    }
    match (notice.what, notice.failed_at(), notice.layer()) {
        (What::Failed, Some(at), _) => out.push(format!("Failed at: {at}")),
        (_, _, Some(layer)) => out.push(format!("Layer: {layer}")),
        _ => {}
    }
    if notice.what == What::Failed {
        let others: Vec<&str> = f
            .failed_stacks
            .iter()
            .map(String::as_str)
            .filter(|s| Some(*s) != f.stack.as_deref())
            .collect();
        if !others.is_empty() {
            out.push(format!("Also failed: {}", names(&others)));
        }
        if !f.blocked_stacks.is_empty() {
            let blocked: Vec<&str> = f.blocked_stacks.iter().map(String::as_str).collect();
            out.push(format!("Blocked: {}", names(&blocked)));
        }
    }
}

/// Each drifted stack (since when) and its resources; for a drift check, its totals.
fn drift_lines(notice: &Notice, out: &mut Vec<String>) {
    let stacks = notice.drift_stacks();
    for s in stacks.iter().take(MAX_NAMES) {
        let state = match notice.what {
            What::DriftResolved => format!("in sync again; {}", s.since_words()),
            _ => s.since_words(),
        };
        out.push(format!("Stack: {} ({state})", s.stack));
        let shown = s.resources.len().min(MAX_RESOURCES);
        out.extend(
            s.resources[..shown]
                .iter()
                .map(|r| format!("- {}", one_line(r))),
        );
        if s.resources.len() > shown {
            out.push(format!("- … and {} more", s.resources.len() - shown));
        }
        out.push(String::new());
    }
    if stacks.len() > MAX_NAMES {
        out.push(format!("… and {} more stacks", stacks.len() - MAX_NAMES));
        out.push(String::new());
    }
    if notice.operation == crate::event::Operation::Drift {
        let t = notice.drift.as_ref().map(|d| d.totals).unwrap_or_default();
        out.push("Summary:".into());
        out.push(format!("- Drifted: {}", t.drifted));
        out.push(format!("- In sync: {}", t.in_sync));
        if t.unknown > 0 {
            out.push(format!("- Unknown: {}", t.unknown));
        }
        out.push(format!("- Duration: {}", notice.duration()));
    }
}

/// The error's details (a stderr tail), indented, bounded.
fn details_lines(notice: &Notice, out: &mut Vec<String>) {
    let Some(details) = notice
        .failure
        .as_ref()
        .and_then(|f| f.error.details.as_deref())
        .filter(|d| !d.trim().is_empty())
    else {
        return;
    };
    out.push(String::new());
    out.push("Details:".into());
    let lines: Vec<&str> = details.lines().collect();
    let skip = lines.len().saturating_sub(DETAIL_LINES);
    if skip > 0 {
        out.push(format!("  … ({skip} earlier lines)"));
    }
    out.extend(lines[skip..].iter().map(|l| format!("  {l}")));
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `a, b, c and 4 more`.
fn names(list: &[&str]) -> String {
    let mut text = list
        .iter()
        .take(MAX_NAMES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > MAX_NAMES {
        text.push_str(&format!(" and {} more", list.len() - MAX_NAMES));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ErrorCode, ErrorDetail};
    use crate::sink::notify::notice::{Counts, Links, WhatFailed};

    fn seed_notice(what: What) -> Notice {
        let mut n = Notice::test("D1BRV40", "dev", Some("https://cloud.example.com/"));
        n.what = what;
        n.run_id = String::new();
        n.counts = Counts {
            total: 12,
            deployed: 11,
            skipped: 1,
            ..Default::default()
        };
        n.duration_seconds = 20 * 60 + 15;
        n.total_layers = 5;
        n
    }

    #[test]
    fn the_complete_mail_is_the_seeds() {
        let n = seed_notice(What::Complete);
        assert_eq!(subject(&n), "✓ Deployment Complete: D1BRV40-dev");
        assert_eq!(
            body(&n),
            "Deployment D1BRV40 to dev environment completed successfully.\n\
             \n\
             Summary:\n\
             - Total Stacks: 12\n\
             - Deployed: 11\n\
             - Skipped: 1\n\
             - Duration: 20m 15s\n\
             \n\
             View details: https://cloud.example.com/deployments/D1BRV40/dev\n"
        );
    }

    #[test]
    fn a_failure_mail_names_the_stack_error_and_layer() {
        let mut n = seed_notice(What::Failed);
        n.counts = Counts {
            total: 12,
            deployed: 2,
            failed: 1,
            blocked: 3,
            ..Default::default()
        };
        n.duration_seconds = 330;
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
                details: Some("line 1\nline 2".into()),
            },
            failed_stacks: vec!["database-rds".into()],
            blocked_stacks: vec!["api".into(), "web".into(), "dns".into()],
        });
        assert_eq!(subject(&n), "✗ Deployment Failed: D1BRV40-dev");
        let text = body(&n);
        for line in [
            "Deployment D1BRV40 to dev environment failed.",
            "Stack: database-rds",
            "Error: Insufficient IAM permissions",
            "Failed at: Layer 3/5",
            "Blocked: api, web, dns",
            "- Failed: 1",
            "- Duration: 5m 30s",
            "  line 2",
            "View logs: https://cloud.example.com/deployments/D1BRV40/dev/logs?stack=database-rds",
            "Run it again: cloud deploy D1BRV40 -e dev",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }
}
