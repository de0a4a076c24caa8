//! The manifest's `notifications:` block, read into a checked configuration: which channels
//! get told about which events, and how to reach them.
//!
//! ```yaml
//! notifications:
//!   dashboardUrl: https://cloud.example.com   # links: <dashboardUrl>/deployments/<ID>/<env>
//!   timeout: 10s                              # per delivery attempt (each message gets 3)
//!   email:                                    # one mapping, or a list of them
//!     smtp: "smtp://smtp.example.com:587"     # smtp:// = STARTTLS (plain to a loopback relay), smtps:// = TLS
//!     tls: starttls                           # optional: starttls | tls | none
//!     username: cloud                         # optional, with password
//!     password: "${SMTP_PASSWORD}"
//!     from: cloud@example.com
//!     to: [owner@example.com]
//!     events: [deployment_failed]             # optional; defaults: the seed's trigger table
//!                                             # and drift_detected, drift_resolved
//!   slack: { webhookUrl: "${SLACK_WEBHOOK_URL}" }
//!   pagerduty: { routingKey: "${PAGERDUTY_ROUTING_KEY}", severity: critical }
//!   webhooks: [ { url: "https://hooks.example.com/cloud", secret: "${WEBHOOK_SECRET}" } ]
//! ```
//!
//! Any string value may read environment variables, `${VAR}` (or `${env:VAR}`; `$${` is a
//! literal `${`). They are read when a message is sent, never at validation, and their values
//! are never shown: a [`Setting`] prints as the key it was written under.

use std::fmt;
use std::time::Duration;

use super::error::{did_you_mean, list, Loc, ManifestResult};
use super::inputs::parse_timeout;
use super::reference::{self, Piece};
use super::yaml::Value;

/// The seed's trigger table, by channel: what each is told about unless it lists `events:`.
/// Drift (`cloud drift`) adds `drift_detected` and `drift_resolved` (see [`DRIFT_TRIGGERS`]).
pub const EMAIL_DEFAULT: &[&str] = &[
    "deployment_started",
    "deployment_complete",
    "deployment_failed",
    "stack_failed",
    "drift_detected",
    "drift_resolved",
];
pub const SLACK_DEFAULT: &[&str] = &[
    "deployment_complete",
    "deployment_failed",
    "stack_failed",
    "drift_detected",
    "drift_resolved",
];
pub const PAGERDUTY_DEFAULT: &[&str] = &["deployment_failed", "drift_detected"];
/// Webhooks are not in the seed's table: by default they get the four events email is told
/// of (drift's own events, `resource_drifted` and `stack_drift_checked`, when they list them).
pub const WEBHOOK_DEFAULT: &[&str] = &[
    "deployment_started",
    "deployment_complete",
    "deployment_failed",
    "stack_failed",
];

/// Triggers that are no event of the stream: said at the end of a run, from what it found.
/// `drift_detected`: a drift check found drifted stacks (one message listing them).
/// `drift_resolved`: stacks drifted before the run are in sync after it.
pub const DRIFT_TRIGGERS: &[&str] = &["drift_detected", "drift_resolved"];

/// Events email and Slack have a message for.
pub const MESSAGE_EVENTS: &[&str] = EMAIL_DEFAULT;
/// Events that open (or add to) a PagerDuty incident; a later successful deploy resolves a
/// failure's, a later run after which no stack is drifted resolves drift's.
pub const PAGERDUTY_EVENTS: &[&str] = &["deployment_failed", "stack_failed", "drift_detected"];

/// Where PagerDuty's Events API v2 takes events.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// How long one delivery attempt may take, unless `timeout:` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `timeout:` accepted: an attempt that takes longer is not coming back.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

const TOP_KEYS: &[&str] = &[
    "dashboardUrl",
    "timeout",
    "email",
    "slack",
    "pagerduty",
    "webhooks",
];
const EMAIL_KEYS: &[&str] = &[
    "smtp", "tls", "username", "password", "from", "to", "events",
];
const SLACK_KEYS: &[&str] = &["webhookUrl", "events"];
const PAGERDUTY_KEYS: &[&str] = &["routingKey", "url", "severity", "events"];
const WEBHOOK_KEYS: &[&str] = &["url", "secret", "events"];
const TLS_MODES: &[&str] = &["starttls", "tls", "none"];
const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

/// The checked `notifications:` block.
#[derive(Debug, Clone)]
pub struct Notifications {
    /// The dashboard messages link to.
    pub dashboard_url: Option<Setting>,
    /// How long one delivery attempt may take.
    pub timeout: Duration,
    /// Every configured channel, in the order written (email, slack, pagerduty, webhooks as
    /// they appear).
    pub channels: Vec<ChannelSpec>,
}

/// One place messages go.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    /// How messages name it: `email`, `slack`, `pagerduty`, `webhook`, with ` #2` … when the
    /// manifest lists several of a kind.
    pub label: String,
    /// The event types it is told about.
    pub events: Vec<&'static str>,
    /// Where it is written.
    pub at: Loc,
    pub kind: ChannelKind,
}

impl ChannelSpec {
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.contains(&event_type)
    }
}

#[derive(Debug, Clone)]
pub enum ChannelKind {
    Email(EmailSpec),
    Slack(SlackSpec),
    PagerDuty(PagerDutySpec),
    Webhook(WebhookSpec),
}

#[derive(Debug, Clone)]
pub struct EmailSpec {
    /// `smtp://host[:port]` or `smtps://host[:port]`.
    pub smtp: Setting,
    /// `tls:` as written; otherwise decided by the URL (see [`SmtpTls::for_url`]).
    pub tls: Option<SmtpTls>,
    pub username: Option<Setting>,
    pub password: Option<Setting>,
    pub from: Setting,
    pub to: Vec<Setting>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587 by default).
    StartTls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// No encryption: only for a relay on this machine or a trusted network (port 25).
    None,
}

impl SmtpTls {
    /// `smtps://` is TLS; `smtp://` is STARTTLS, except to a loopback address (a local relay),
    /// where it is plain.
    pub fn for_url(url: &url::Url) -> SmtpTls {
        if url.scheme() == "smtps" {
            return SmtpTls::Tls;
        }
        // smtp:// is not a "special" URL scheme: its host is kept as text, IPs included.
        let host = url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            SmtpTls::None
        } else {
            SmtpTls::StartTls
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SlackSpec {
    /// The incoming webhook's URL (a secret: it is all it takes to post).
    pub webhook_url: Setting,
}

#[derive(Debug, Clone)]
pub struct PagerDutySpec {
    /// The integration's routing key (a secret).
    pub routing_key: Setting,
    /// Where events go; PagerDuty's own endpoint unless `url:` says otherwise.
    pub url: Setting,
    pub severity: Severity,
}

/// PagerDuty's `payload.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebhookSpec {
    pub url: Setting,
    /// Signs each request (HMAC-SHA256) when present.
    pub secret: Option<Setting>,
}

/// A string setting as written: literal text and `${VAR}` parts, read from the environment
/// when it is used. Never shows its value: `{:?}` and messages name the key.
#[derive(Clone, PartialEq)]
pub struct Setting {
    parts: Vec<Part>,
    /// Where the value is written.
    pub at: Loc,
    /// `slack.webhookUrl`: how messages name it.
    pub key: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(String),
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Setting({})", self.key)
    }
}

impl Setting {
    /// A setting with a fixed value (for defaults and tests).
    pub fn literal(key: &str, value: &str) -> Setting {
        Setting {
            parts: vec![Part::Text(value.to_owned())],
            at: Loc::default(),
            key: key.to_owned(),
        }
    }

    /// The environment variables it reads.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The value as written, when it reads no environment variable.
    pub fn as_literal(&self) -> Option<String> {
        self.vars().next().is_none().then(|| self.text(|_| None))
    }

    /// The value, with each `${VAR}` read from the environment now; a variable that is not set
    /// (or is empty) is an error naming it and the key.
    pub fn resolve(&self) -> Result<String, Unset> {
        if let Some(var) = self
            .vars()
            .find(|v| std::env::var(v).map_or(true, |value| value.is_empty()))
        {
            return Err(Unset {
                key: self.key.clone(),
                var: var.to_owned(),
            });
        }
        Ok(self.text(|v| std::env::var(v).ok()))
    }

    fn text(&self, var: impl Fn(&str) -> Option<String>) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Var(v) => var(v).unwrap_or_default(),
            })
            .collect()
    }
}

/// A setting reads a `${VAR}` that is not set (or is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unset {
    /// `slack.webhookUrl`.
    pub key: String,
    pub var: String,
}

impl fmt::Display for Unset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Unset { key, var } = self;
        write!(
            f,
            "`{key}` reads ${{{var}}}, which is not set (set {var} in the environment of `cloud`)"
        )
    }
}

impl std::error::Error for Unset {}

/// What is wrong with a URL or address: never what it is (it may hold a secret). Said after
/// what was checked (`` `smtp` is not a usable SMTP server: it names no host ``).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable(String);

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unusable {}

fn unusable(why: impl Into<String>) -> Unusable {
    Unusable(why.into())
}

/// Checks an `http(s)://` URL.
pub fn check_http_url(text: &str) -> Result<url::Url, Unusable> {
    let url =
        url::Url::parse(text.trim()).map_err(|e| unusable(format!("it is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(unusable(format!(
            "it must start with https:// or http://, not {}://",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(unusable("it names no host"));
    }
    Ok(url)
}

/// Checks an SMTP server URL: `smtp://host[:port]` or `smtps://host[:port]`, no credentials.
pub fn check_smtp_url(text: &str) -> Result<url::Url, Unusable> {
    let url =
        url::Url::parse(text.trim()).map_err(|e| unusable(format!("it is not a URL ({e})")))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err(unusable(format!(
            "it must start with smtp:// or smtps://, not {}://",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(unusable("it names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(unusable(
            "it holds credentials; put them in `username:` and `password:` \
                    (e.g. `password: \"${SMTP_PASSWORD}\"`) so they are never shown",
        ));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(unusable(
            "it has a path or query; write only smtp://host:port (use `tls:` to \
                    choose the encryption)",
        ));
    }
    Ok(url)
}

/// Checks an email address or `Name <address>`.
pub fn check_mailbox(text: &str) -> Result<lettre::message::Mailbox, Unusable> {
    text.trim()
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| unusable(format!("it is not an email address ({e})")))
}

/// Reads `notifications:`; `null` is none.
pub(super) fn parse(value: Value) -> ManifestResult<Option<Notifications>> {
    let example = "notifications: { slack: { webhookUrl: \"${SLACK_WEBHOOK_URL}\" } }";
    if value.is_null() {
        return Ok(None);
    }
    if !value.is_map() {
        return Err(value.wrong_type("`notifications`", "a mapping", example));
    }
    let mut out = Notifications {
        dashboard_url: None,
        timeout: DEFAULT_TIMEOUT,
        channels: Vec::new(),
    };
    for (key, key_at, v) in value.entries("`notifications`", example)? {
        match key.as_str() {
            "dashboardUrl" => {
                out.dashboard_url = Some(url_setting(
                    v,
                    "dashboardUrl",
                    "dashboardUrl: https://cloud.example.com",
                )?)
            }
            "timeout" => {
                let timeout = parse_timeout(v)?;
                if timeout > MAX_TIMEOUT {
                    return Err(v.err(
                        "`timeout` of notifications is the time one delivery attempt may \
                         take; it must be at most 5m",
                        "write a duration like `10s` or `1m`",
                    ));
                }
                out.timeout = timeout;
            }
            "email" | "slack" | "pagerduty" | "webhooks" => {
                let kind = Kind::of(&key);
                let items = channel_items(v, kind)?;
                let many = items.len() > 1;
                for (i, item) in items.into_iter().enumerate() {
                    let label = if many {
                        format!("{} #{}", kind.label(), i + 1)
                    } else {
                        kind.label().to_owned()
                    };
                    out.channels.push(parse_channel(kind, item, label)?);
                }
            }
            _ => {
                return Err(value
                    .doc()
                    .unknown_key(&key, key_at, "`notifications`", TOP_KEYS))
            }
        }
    }
    Ok(Some(out))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Email,
    Slack,
    PagerDuty,
    Webhook,
}

impl Kind {
    fn of(key: &str) -> Kind {
        match key {
            "email" => Kind::Email,
            "slack" => Kind::Slack,
            "pagerduty" => Kind::PagerDuty,
            _ => Kind::Webhook,
        }
    }
    /// The key in the manifest.
    fn key(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Slack => "slack",
            Kind::PagerDuty => "pagerduty",
            Kind::Webhook => "webhooks",
        }
    }
    /// How messages name one channel of the kind.
    fn label(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            other => other.key(),
        }
    }
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Email => EMAIL_KEYS,
            Kind::Slack => SLACK_KEYS,
            Kind::PagerDuty => PAGERDUTY_KEYS,
            Kind::Webhook => WEBHOOK_KEYS,
        }
    }
    fn example(self) -> &'static str {
        match self {
            Kind::Email => {
                "email: { smtp: \"smtp://smtp.example.com:587\", from: cloud@example.com, \
                 to: [owner@example.com] }"
            }
            Kind::Slack => "slack: { webhookUrl: \"${SLACK_WEBHOOK_URL}\" }",
            Kind::PagerDuty => "pagerduty: { routingKey: \"${PAGERDUTY_ROUTING_KEY}\" }",
            Kind::Webhook => {
                "webhooks: [ { url: \"https://hooks.example.com/cloud\", \
                 secret: \"${WEBHOOK_SECRET}\" } ]"
            }
        }
    }
    fn defaults(self) -> &'static [&'static str] {
        match self {
            Kind::Email => EMAIL_DEFAULT,
            Kind::Slack => SLACK_DEFAULT,
            Kind::PagerDuty => PAGERDUTY_DEFAULT,
            Kind::Webhook => WEBHOOK_DEFAULT,
        }
    }
    /// The events a channel of this kind may list.
    fn allowed(self) -> &'static [&'static str] {
        match self {
            Kind::Email | Kind::Slack => MESSAGE_EVENTS,
            Kind::PagerDuty => PAGERDUTY_EVENTS,
            Kind::Webhook => crate::event::EVENT_TYPES,
        }
    }
}

/// One mapping, or a list of mappings.
fn channel_items(v: Value, kind: Kind) -> ManifestResult<Vec<Value>> {
    let what = format!("`{}`", kind.key());
    if v.is_map() {
        return Ok(vec![v]);
    }
    if v.is_list() {
        let items = v.items(&what, "a list of mappings", kind.example())?;
        if items.is_empty() {
            return Err(v.err(
                format!("{what} lists no channel"),
                format!("write it like `{}`, or remove it", kind.example()),
            ));
        }
        for item in &items {
            if !item.is_map() {
                return Err(item.wrong_type(
                    &format!("each entry of {what}"),
                    "a mapping",
                    kind.example(),
                ));
            }
        }
        return Ok(items);
    }
    if v.is_null() {
        return Err(v.err(
            format!("{what} is empty"),
            format!("write it like `{}`, or remove it", kind.example()),
        ));
    }
    Err(v.wrong_type(&what, "a mapping (or a list of them)", kind.example()))
}

fn parse_channel(kind: Kind, v: Value, label: String) -> ManifestResult<ChannelSpec> {
    let what = format!("`{}`", kind.key());
    let mut fields: Vec<(String, Value)> = Vec::new();
    for (key, key_at, value) in v.entries(&what, kind.example())? {
        if !kind.keys().contains(&key.as_str()) {
            return Err(v.doc().unknown_key(&key, key_at, &what, kind.keys()));
        }
        fields.push((key, value));
    }
    let get = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    let required = |key: &str| {
        get(key).ok_or_else(|| {
            v.err(
                format!("{what} has no `{key}`"),
                format!("add it, e.g. `{}`", kind.example()),
            )
        })
    };
    let name = |key: &str| format!("{}.{key}", kind.key());
    let events = match get("events") {
        Some(e) => parse_events(e, kind)?,
        None => kind.defaults().to_vec(),
    };
    let spec =
        match kind {
            Kind::Email => {
                let smtp = required("smtp")?;
                let smtp_setting =
                    setting(smtp, &name("smtp"), "smtp: \"smtp://smtp.example.com:587\"")?;
                if let Some(text) = smtp_setting.as_literal() {
                    check_smtp_url(&text).map_err(|why| {
                        smtp.err(
                            format!("`{}` is not a usable SMTP server: {why}", name("smtp")),
                            "write it like `smtp://smtp.example.com:587` (STARTTLS), \
                         `smtps://smtp.example.com:465` (TLS) or `smtp://127.0.0.1:25` \
                         (a local relay, plain)",
                        )
                    })?;
                }
                let tls = match get("tls") {
                    None => None,
                    Some(t) => Some(parse_tls(t)?),
                };
                let username = get("username")
                    .map(|u| setting(u, &name("username"), "username: cloud"))
                    .transpose()?;
                let password = get("password")
                    .map(|p| setting(p, &name("password"), "password: \"${SMTP_PASSWORD}\""))
                    .transpose()?;
                match (&username, &password) {
                    (Some(_), None) | (None, Some(_)) => return Err(v.err(
                        format!("{what} has one of `username` and `password` without the other"),
                        "give both (e.g. `username: cloud` and `password: \"${SMTP_PASSWORD}\"`), \
                         or neither for a relay without authentication",
                    )),
                    _ => {}
                }
                let from =
                    mailbox_setting(required("from")?, &name("from"), "from: cloud@example.com")?;
                let to_value = required("to")?;
                let to_example = "to: [owner@example.com, oncall@example.com]";
                let to_items = if to_value.is_list() {
                    to_value.items("`email.to`", "a list of addresses", to_example)?
                } else {
                    vec![to_value]
                };
                if to_items.is_empty() {
                    return Err(to_value.err(
                        "`email.to` lists no recipient",
                        format!("list at least one address, e.g. `{to_example}`"),
                    ));
                }
                let to = to_items
                    .into_iter()
                    .map(|t| mailbox_setting(t, &name("to"), to_example))
                    .collect::<ManifestResult<Vec<_>>>()?;
                ChannelKind::Email(EmailSpec {
                    smtp: smtp_setting,
                    tls,
                    username,
                    password,
                    from,
                    to,
                })
            }
            Kind::Slack => ChannelKind::Slack(SlackSpec {
                webhook_url: url_setting(
                    required("webhookUrl")?,
                    &name("webhookUrl"),
                    "webhookUrl: \"${SLACK_WEBHOOK_URL}\"",
                )?,
            }),
            Kind::PagerDuty => ChannelKind::PagerDuty(PagerDutySpec {
                routing_key: setting(
                    required("routingKey")?,
                    &name("routingKey"),
                    "routingKey: \"${PAGERDUTY_ROUTING_KEY}\"",
                )?,
                url: match get("url") {
                    Some(u) => url_setting(u, &name("url"), &format!("url: {PAGERDUTY_URL}"))?,
                    None => Setting::literal(&name("url"), PAGERDUTY_URL),
                },
                severity: match get("severity") {
                    Some(s) => parse_severity(s)?,
                    None => Severity::Error,
                },
            }),
            Kind::Webhook => ChannelKind::Webhook(WebhookSpec {
                url: url_setting(
                    required("url")?,
                    &name("url"),
                    "url: https://hooks.example.com/cloud",
                )?,
                secret: get("secret")
                    .map(|s| setting(s, &name("secret"), "secret: \"${WEBHOOK_SECRET}\""))
                    .transpose()?,
            }),
        };
    Ok(ChannelSpec {
        label,
        events,
        at: v.at(),
        kind: spec,
    })
}

fn parse_events(v: Value, kind: Kind) -> ManifestResult<Vec<&'static str>> {
    let allowed = kind.allowed();
    let example = format!("events: [{}]", kind.defaults().join(", "));
    let help_all = if kind == Kind::Webhook {
        " (or `\"*\"` for every event)"
    } else {
        ""
    };
    let items = v.items("`events`", "a list of event types", &example)?;
    if items.is_empty() {
        return Err(v.err(
            "`events` is empty",
            format!(
                "list the events this channel is told about, e.g. `{example}`, or remove the \
                 channel"
            ),
        ));
    }
    let mut out: Vec<&'static str> = Vec::new();
    for item in items {
        let name = item.nonempty_string("an event type", &example)?;
        if kind == Kind::Webhook && name == "*" {
            out = allowed.to_vec();
            continue;
        }
        let Some(&known) = allowed.iter().find(|a| **a == name) else {
            if kind == Kind::Webhook && DRIFT_TRIGGERS.contains(&name.as_str()) {
                return Err(item.err(
                    format!("webhooks have no message for `{name}`: they get events as they are"),
                    "list `stack_drift_checked` (each stack's health) and `resource_drifted` \
                     (each drifted resource) instead",
                ));
            }
            // An event type this channel has no message for is no typo: no "did you mean".
            let known_type = crate::event::EVENT_TYPES.contains(&name.as_str())
                || DRIFT_TRIGGERS.contains(&name.as_str());
            let (why, guess) = if known_type {
                (
                    format!("{} has no message for `{name}`", kind.label()),
                    String::new(),
                )
            } else {
                (
                    format!("unknown event type `{}`", name.escape_debug()),
                    did_you_mean(&name, allowed),
                )
            };
            let note = if kind == Kind::PagerDuty {
                "; a later successful deploy resolves the incident by itself (a drift \
                 incident: a later run after which no stack is drifted)"
            } else {
                ""
            };
            return Err(item.err(
                why,
                format!(
                    "{guess}{} can be told about: {}{help_all}{note}",
                    kind.label(),
                    list(allowed)
                ),
            ));
        };
        if !out.contains(&known) {
            out.push(known);
        }
    }
    Ok(out)
}

fn parse_tls(v: Value) -> ManifestResult<SmtpTls> {
    let text = v.string("`email.tls`", "tls: starttls")?;
    match text.as_str() {
        "starttls" => Ok(SmtpTls::StartTls),
        "tls" => Ok(SmtpTls::Tls),
        "none" => Ok(SmtpTls::None),
        other => Err(v.err(
            format!("unknown `tls` mode `{}`", other.escape_debug()),
            format!(
                "{}use one of: {} (starttls upgrades a plain connection, tls encrypts from the \
                 start, none is for a local relay)",
                did_you_mean(other, TLS_MODES),
                list(TLS_MODES)
            ),
        )),
    }
}

fn parse_severity(v: Value) -> ManifestResult<Severity> {
    let text = v.string("`pagerduty.severity`", "severity: critical")?;
    match text.as_str() {
        "critical" => Ok(Severity::Critical),
        "error" => Ok(Severity::Error),
        "warning" => Ok(Severity::Warning),
        "info" => Ok(Severity::Info),
        other => Err(v.err(
            format!("unknown PagerDuty severity `{}`", other.escape_debug()),
            format!(
                "{}use one of: {}",
                did_you_mean(other, SEVERITIES),
                list(SEVERITIES)
            ),
        )),
    }
}

/// A string setting, split into text and `${VAR}` parts.
fn setting(v: Value, key: &str, example: &str) -> ManifestResult<Setting> {
    let text = v.nonempty_string(&format!("`{key}`"), example)?;
    let help = "environment variables are written `${VAR}` (letters, digits and `_`); \
                write `$${` for a literal `${`";
    let pieces = reference::split(&text).map_err(|_| {
        v.err(
            format!("`{key}` has a `${{` without its closing `}}`"),
            help,
        )
    })?;
    let mut parts = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => parts.push(Part::Text(text)),
            Piece::Reference(reference) => {
                let var = reference.strip_prefix("env:").unwrap_or(reference);
                let valid = var
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(v.err(
                        format!(
                            "`{key}` reads an invalid environment variable name `{}`",
                            var.escape_debug()
                        ),
                        help,
                    ));
                }
                parts.push(Part::Var(var.to_owned()));
            }
        }
    }
    Ok(Setting {
        parts,
        at: v.at(),
        key: key.to_owned(),
    })
}

/// A URL setting; checked now when it is written out, when it is read otherwise.
fn url_setting(v: Value, key: &str, example: &str) -> ManifestResult<Setting> {
    let s = setting(v, key, example)?;
    if let Some(text) = s.as_literal() {
        check_http_url(&text).map_err(|why| {
            v.err(
                format!("`{key}` is not a usable URL: {why}"),
                format!("write it like `{example}`"),
            )
        })?;
    }
    Ok(s)
}

/// An address setting; checked now when it is written out, when it is read otherwise.
fn mailbox_setting(v: Value, key: &str, example: &str) -> ManifestResult<Setting> {
    let s = setting(v, key, example)?;
    if let Some(text) = s.as_literal() {
        check_mailbox(&text).map_err(|why| {
            v.err(
                format!("`{}` in `{key}`: {why}", text.escape_debug()),
                format!("write an address like `{example}` (or `Name <name@example.com>`)"),
            )
        })?;
    }
    Ok(s)
}
