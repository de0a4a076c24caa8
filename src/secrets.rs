//! The one redactor. Every secret value a run learns — `secret: true` inputs, sensitive outputs
//! (Terraform `sensitive`, Pulumi secrets), Pulumi `config:` secrets, inputs read from any of
//! them, and outputs whose value holds one — is added here, and every event passes through
//! [`Secrets::mask_event`] before the reducer, the bus and so every sink, view, server and
//! notification sees it. Nothing downstream masks on its own: one place, so none can forget.
//!
//! A value is hidden in every form it is likely to be printed in: as it is, each line of a
//! multi-line value (a PEM key echoed line by line), JSON-escaped (`cat "$CLOUD_INPUTS"`) and
//! URL-encoded (a password in a connection string). What a secret looks like when shown is
//! [`SHOWN`]; that text is never used as a value.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use serde_json::Value;

/// What a secret looks like wherever it would have been shown.
pub const SHOWN: &str = "[secret]";

/// Secrets (and lines of a multi-line secret) shorter than this are hidden only where a whole
/// value is the secret: hidden inside any text, a secret like `s` or a line like `}` would
/// garble every name, id and log line of the run (and tells little of itself).
const MIN_LEN: usize = 4;

/// Keys of event data whose values `cloud` writes itself: states, levels and reasons from a fixed
/// set, and stack names from the manifest. Never a place for a secret, and they must keep their
/// exact text to be read back (and to find their stack).
const FIXED_KEYS: &[&str] = &[
    "status",
    "reason",
    "level",
    "operation",
    "stack",
    "stacks",
    "blockedBy",
    "dependencies",
    "currentStack",
    "failedStacks",
    "blockedStacks",
    "rolledBackStacks",
];

/// The run's secret values, shared (cheap to clone) by the orchestrator and the stacks' tasks.
#[derive(Clone, Default)]
pub struct Secrets(Arc<RwLock<Needles>>);

#[derive(Default)]
struct Needles {
    /// Every form of every secret, longest first (a secret holding another is hidden whole).
    forms: Vec<String>,
    /// Secrets too short to look for inside text: hidden where they are a whole value.
    short: HashSet<String>,
    /// How each form (and each short secret, as a whole string) reads inside JSON text.
    in_json: Vec<String>,
    seen: HashSet<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} forms)", self.read().forms.len())
    }
}

impl Secrets {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Needles> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Learns a secret value (a string as it is, anything else as its JSON text).
    pub fn add(&self, value: &Value) {
        match value {
            Value::String(s) => self.add_text(s),
            Value::Null | Value::Bool(_) => {}
            other => self.add_text(&other.to_string()),
        }
    }

    /// Learns a secret text.
    pub fn add_text(&self, secret: &str) {
        if secret.is_empty() || self.read().seen.contains(secret) {
            return;
        }
        let long_enough = |f: &str| f.chars().count() >= MIN_LEN;
        let short = (!long_enough(secret.trim())).then(|| secret.to_owned());
        let mut forms: Vec<String> = short
            .is_none()
            .then(|| secret.to_owned())
            .into_iter()
            .collect();
        if secret.contains('\n') {
            // A short line (`}`) tells nothing of the secret: not worth hiding on its own.
            forms.extend(
                secret
                    .lines()
                    .map(str::trim)
                    .filter(|l| long_enough(l))
                    .map(str::to_owned),
            );
        }
        let mut more = Vec::new();
        for form in &forms {
            more.push(json_escaped(form));
            more.push(url_encoded(form, false));
            more.push(url_encoded(form, true));
        }
        forms.extend(more);
        let mut needles = self.0.write().unwrap_or_else(|e| e.into_inner());
        needles.seen.insert(secret.to_owned());
        for form in forms {
            if !form.is_empty() && !needles.forms.contains(&form) {
                needles.in_json.push(json_escaped(&form));
                needles.forms.push(form);
            }
        }
        if let Some(short) = short {
            needles
                .in_json
                .push(format!("\"{}\"", json_escaped(&short)));
            needles.short.insert(short);
        }
        needles.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    pub fn is_empty(&self) -> bool {
        let needles = self.read();
        needles.forms.is_empty() && needles.short.is_empty()
    }

    /// Whether `text` shows a known secret in any of its forms.
    pub fn found_in(&self, text: &str) -> bool {
        let needles = self.read();
        needles.short.contains(text) || needles.forms.iter().any(|f| text.contains(f.as_str()))
    }

    /// Whether JSON text may show a known secret (each form as it reads inside JSON, a short
    /// secret as a whole string): a cheap look before masking field by field, which most
    /// events of a run never need.
    fn may_be_in_json(&self, json: &str) -> bool {
        self.read()
            .in_json
            .iter()
            .any(|f| json.contains(f.as_str()))
    }

    /// Whether a value shows a known secret anywhere in it.
    pub fn found_in_value(&self, value: &Value) -> bool {
        match value {
            Value::String(s) => self.found_in(s),
            Value::Array(items) => items.iter().any(|v| self.found_in_value(v)),
            Value::Object(map) => map.values().any(|v| self.found_in_value(v)),
            Value::Number(n) => self.found_in(&n.to_string()),
            _ => false,
        }
    }

    /// `text` with every known secret replaced by [`SHOWN`].
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let needles = self.read();
        if needles.short.contains(text) {
            return Cow::Owned(SHOWN.to_owned());
        }
        let mut out = Cow::Borrowed(text);
        for form in &needles.forms {
            if out.contains(form.as_str()) {
                out = Cow::Owned(out.replace(form.as_str(), SHOWN));
            }
        }
        out
    }

    /// Masks a string in place; `true` when it changed.
    pub fn mask_string(&self, text: &mut String) -> bool {
        match self.mask(text) {
            Cow::Borrowed(_) => false,
            Cow::Owned(masked) => {
                *text = masked;
                true
            }
        }
    }

    /// Masks every string of a JSON value (not object keys, not the fixed-vocabulary fields);
    /// `true` when something changed.
    pub fn mask_value(&self, value: &mut Value) -> bool {
        match value {
            Value::String(s) => self.mask_string(s),
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, v| self.mask_value(v) | changed),
            Value::Object(map) => map
                .iter_mut()
                .filter(|(k, _)| !FIXED_KEYS.contains(&k.as_str()))
                .fold(false, |changed, (_, v)| self.mask_value(v) | changed),
            _ => false,
        }
    }

    /// The event with every known secret hidden, whatever field it is in.
    pub fn mask_event(&self, data: crate::event::EventData) -> crate::event::EventData {
        if self.is_empty() || !self.may_be_in_json(&data.body_text()) {
            return data;
        }
        let mut value = data.body_value();
        if !self.mask_value(&mut value) {
            return data;
        }
        crate::event::EventData::from_type_and_value(data.type_name(), value).unwrap_or_else(|e| {
            // Masking only rewrites free text, so this does not happen; if it ever does,
            // the event is not let through with its secret.
            crate::event::EventData::StackLog(crate::event::StackLog {
                stack: data.stack().unwrap_or_default().to_owned(),
                level: crate::event::LogLevel::Warn,
                message: format!(
                    "a `{}` event held a secret and could not be masked ({e}); it was \
                         withheld",
                    data.type_name()
                ),
            })
        })
    }
}

/// The text as it appears inside a JSON string.
fn json_escaped(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

/// The text percent-encoded as in a URL: RFC 3986 (`%20`), or a form (`+` for a space).
fn url_encoded(text: &str, form: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' if form => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::*;

    #[test]
    fn every_form_of_a_secret_is_hidden() {
        let s = Secrets::new();
        s.add_text("p@ss \"word\"/x");
        assert_eq!(s.mask("pw=p@ss \"word\"/x;"), "pw=[secret];");
        assert_eq!(
            s.mask(r#"{"pw":"p@ss \"word\"/x"}"#),
            r#"{"pw":"[secret]"}"#
        );
        assert_eq!(s.mask("u:p%40ss%20%22word%22%2Fx@db"), "u:[secret]@db");
        assert_eq!(s.mask("q=p%40ss+%22word%22%2Fx"), "q=[secret]");
        assert_eq!(s.mask("nothing here"), "nothing here");
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_hidden() {
        let s = Secrets::new();
        s.add_text("-----BEGIN KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0BAQEF\n}\n-----END KEY-----\n");
        assert_eq!(s.mask("  MIIEvQIBADANBgkq"), "  [secret]");
        assert_eq!(s.mask("hkiG9w0BAQEF done"), "[secret] done");
        // Too short to hide on its own.
        assert_eq!(s.mask("{ }"), "{ }");
        assert!(s.found_in("x -----END KEY----- y"));
    }

    /// A log line that prints the secret JSON-escaped (`cat "$CLOUD_INPUTS"`) is masked too,
    /// though in the event's own JSON it is escaped twice.
    #[test]
    fn an_event_showing_a_json_escaped_secret_is_masked() {
        let s = Secrets::new();
        s.add_text(r#"p@ss "w0rd""#);
        let log = EventData::StackLog(StackLog {
            stack: "app".into(),
            level: LogLevel::Info,
            message: r#"{"pw": "p@ss \"w0rd\""}"#.into(),
        });
        let EventData::StackLog(masked) = s.mask_event(log) else {
            panic!("not a log");
        };
        assert_eq!(masked.message, r#"{"pw": "[secret]"}"#);
    }

    /// `s` is hidden where it is a whole value, not in every word with an `s`.
    #[test]
    fn a_short_secret_is_hidden_only_as_a_whole_value() {
        let s = Secrets::new();
        s.add_text("s");
        assert_eq!(s.mask("s"), SHOWN);
        assert_eq!(
            s.mask("terraform_data.slow (deposed)"),
            "terraform_data.slow (deposed)"
        );
        assert!(s.found_in("s") && !s.found_in("slow"));
    }

    #[test]
    fn the_longest_secret_is_hidden_whole() {
        let s = Secrets::new();
        s.add_text("abcd");
        s.add_text("abcdefgh");
        assert_eq!(s.mask("abcdefgh abcd"), "[secret] [secret]");
    }

    /// Even a secret found in every field leaves every kind of event readable (the
    /// fixed-vocabulary fields keep their text).
    #[test]
    fn masked_events_stay_events() {
        let s = Secrets::new();
        s.add_text("eeee");
        let r = ResourceEvent {
            stack: "net".into(),
            resource: ResourceRef {
                urn: "urn:eeee".into(),
                type_: "t:eeee".into(),
                name: "secret-eeee".into(),
                id: Some("eeee".into()),
                address: None,
            },
            duration_seconds: Some(1.0),
            error: Some(ErrorDetail {
                code: "E".into(),
                message: "eeee".into(),
                details: None,
            }),
            action: None,
        };
        let samples = vec![
            EventData::StackLog(StackLog {
                stack: "net".into(),
                level: LogLevel::Error,
                message: "the eeee end".into(),
            }),
            EventData::StackSkipped(StackSkipped {
                stack: "net".into(),
                reason: SkipReason::Unchanged,
                outputs: [("k".to_owned(), Value::String("eeeee".into()))].into(),
            }),
            EventData::ResourceDeleted(r.clone()),
            EventData::ResourceFailed(r),
            EventData::DeploymentComplete(DeploymentComplete {
                status: DeploymentState::Deployed,
                total_stacks: 1,
                deployed_stacks: 1,
                skipped_stacks: 0,
                failed_stacks: 0,
                blocked_stacks: 0,
                not_started_stacks: 0,
                duration_seconds: 1,
                cancelled: false,
            }),
        ];
        for data in samples {
            let name = data.type_name();
            // Only free text is masked: an event without any keeps all it says.
            let free_text = !matches!(data, EventData::DeploymentComplete(_));
            let masked = s.mask_event(data.clone());
            assert_eq!(masked.type_name(), name);
            let text = serde_json::to_string(&masked.body_value()).unwrap();
            assert_eq!(text.contains(SHOWN), free_text, "{text}");
            assert_eq!(masked == data, !free_text);
        }
    }
}
