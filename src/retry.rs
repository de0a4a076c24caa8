//! Retries of transient errors: which failures go away when run again (throttling, a
//! connection reset while downloading a provider, eventual consistency right after a create),
//! how many attempts a stack gets, and how long to wait between them.
//!
//! A [`Policy`] is made once per stack from the manifest's `retry:` (under `defaults:` and on
//! the stack) and the executor's built-in patterns; the orchestrator asks it, after a failed
//! attempt, whether to try again ([`Policy::transient`]) and how long to wait first
//! ([`backoff`], [`wait`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use regex_lite::Regex;

use crate::cancel::Cancel;
use crate::event::{ErrorCode, ErrorDetail};

/// Attempts in all (the first included) when a transient pattern matched.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// The first backoff's ceiling; each later one doubles, up to [`DEFAULT_CAP`].
pub const DEFAULT_FIRST: Duration = Duration::from_secs(5);
pub const DEFAULT_CAP: Duration = Duration::from_secs(60);
/// The most attempts a manifest may ask for.
pub const MAX_ATTEMPTS: u32 = 20;

/// A pattern that marks an error as transient: its name as people read it, and the regex.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// `ThrottlingException`, or the regex as written in `errors:`.
    pub name: String,
    pub regex: Regex,
}

impl Pattern {
    /// Compiles `regex`; the error says why it is not one.
    pub fn new(name: impl Into<String>, regex: &str) -> Result<Self, String> {
        Ok(Pattern {
            name: name.into(),
            regex: Regex::new(regex).map_err(|e| e.to_string())?,
        })
    }
}

/// `(name, regex)`: throttling and transient service errors any AWS-backed tool reports.
/// The codes are those the AWS SDKs retry as throttling or transient: aws-sdk-go
/// `aws/request/retryer.go` (`throttleCodes`) and botocore `data/_retry.json` (`throttling`,
/// `general_server_error`, `service_unavailable`), plus HTTP 429/502/503/504.
const AWS: &[(&str, &str)] = &[
    (
        "ThrottlingException",
        r"\b(ThrottlingException|Throttling|ThrottledException|RequestThrottledException|EC2ThrottledException|RequestThrottled)\b",
    ),
    ("TooManyRequestsException", r"\bTooManyRequestsException\b"),
    (
        "ProvisionedThroughputExceededException",
        r"\bProvisionedThroughputExceededException\b",
    ),
    ("RequestLimitExceeded", r"\bRequestLimitExceeded\b"),
    ("BandwidthLimitExceeded", r"\bBandwidthLimitExceeded\b"),
    ("SlowDown", r"\bSlowDown\b"),
    ("PriorRequestNotComplete", r"\bPriorRequestNotComplete\b"),
    (
        "TransactionInProgressException",
        r"\bTransactionInProgressException\b",
    ),
    ("Rate exceeded", r"(?i)\brate exceeded\b"),
    (
        "RequestTimeout",
        r"\b(RequestTimeout|RequestTimeoutException)\b",
    ),
    (
        "ServiceUnavailable",
        r"\b(ServiceUnavailable|ServiceUnavailableException|InternalFailure)\b",
    ),
    (
        "HTTP 429",
        r"(?i)\b(429 Too Many Requests|status code:? 429)\b",
    ),
    (
        "HTTP 5xx",
        r"(?i)\b(502 Bad Gateway|503 Service Unavailable|504 Gateway Time-?out|status code:? 50[234])\b",
    ),
    // Terragrunt's defaults (`NoSuchBucket` right after the bucket is created; SSM's
    // `TooManyUpdates`), and the IAM eventual consistency users report after creating a role
    // ("... cannot be assumed by ..." from Lambda, ECS, CodeBuild).
    (
        "NoSuchBucket",
        r"NoSuchBucket: The specified bucket does not exist",
    ),
    ("TooManyUpdates", r"\bTooManyUpdates\b"),
    ("role cannot be assumed", r"(?i)cannot be assumed"),
];

/// Network failures any tool reports the same way (Go's net/http and TLS errors, which
/// Terraform, OpenTofu, Pulumi and the AWS CLI print as is). From Terragrunt's default
/// retryable errors (`DefaultRetryableErrors` in its `options` package): connection resets,
/// TLS handshake and i/o timeouts, `Client.Timeout exceeded`, `context deadline exceeded`.
const NETWORK: &[(&str, &str)] = &[
    ("connection reset", r"(?i)connection reset by peer"),
    ("TLS handshake timeout", r"(?i)TLS handshake timeout"),
    ("i/o timeout", r"(?i)\bi/o timeout\b"),
    (
        "Client.Timeout exceeded",
        r"Client\.Timeout exceeded while awaiting headers",
    ),
    ("context deadline exceeded", r"context deadline exceeded"),
    ("operation timed out", r"(?i)operation timed out"),
    ("connection refused", r"(?i)\bconnection refused\b"),
    ("unexpected EOF", r"\bunexpected EOF\b"),
];

/// Terraform and OpenTofu, from Terragrunt's default retryable errors: a provider or module
/// download, the backend's state, or a plugin that did not start in time.
const TERRAFORM: &[(&str, &str)] = &[
    (
        "failed to install provider",
        r"(?is)(Failed to install provider|Error installing provider|Failed to query available provider packages).*(timeout|connection reset|429|EOF)",
    ),
    (
        "failed to load state",
        r"(?is)(Failed to load state|Error loading state|Failed to persist state|Error configuring the backend|Failed to save state).*(timeout|connection reset|Throttling|SlowDown|503)",
    ),
    (
        "could not download module",
        r"(?is)Could not download module.*(429|timeout|connection reset)",
    ),
    (
        "plugin did not start",
        r"(?i)(timeout while waiting for plugin to start|timed out waiting for server handshake)",
    ),
    (
        "registry unavailable",
        r"(?is)(registry\.terraform\.io|registry\.opentofu\.org|app\.terraform\.io).*(429|context deadline exceeded|timeout)",
    ),
];

/// Pulumi: what users report as going away on a second run (pulumi/pulumi#7932 asks for
/// retries of exactly these): the service's 429/5xx, plugin downloads, a concurrent update's
/// conflict on a resource the cloud still settles.
const PULUMI: &[(&str, &str)] = &[
    (
        "pulumi service unavailable",
        r"(?i)\[(429|502|503|504)\]|api\.pulumi\.com.*(429|502|503|504|timeout)",
    ),
    (
        "plugin download failed",
        r"(?is)(failed to download plugin|error downloading plugin|could not get plugin).*(timeout|reset|429|EOF)",
    ),
    (
        "conflicting operation",
        r"(?i)ConflictingOperationInProgress|OperationAborted",
    ),
];

/// Errors that are never transient whatever `errors:` says: the code is wrong, not the weather.
/// Terraform's and Pulumi's validation and plan diagnostics.
const NEVER: &[&str] = &[
    r"(?i)\bInvalid reference\b",
    r"(?i)\bReference to undeclared\b",
    r"(?i)\bUnsupported (argument|attribute|block type)\b",
    r"(?i)\bMissing required argument\b",
    r"(?i)\bInvalid (value for|function argument|expression)\b",
    r"(?i)\bconfiguration is invalid\b",
    r"(?i)\bpreview failed\b",
    r"(?i)\berror: .*: (TypeError|SyntaxError|ReferenceError)\b",
];

/// Failures of `cloud`'s own making, or a stop: never retried.
fn never_code(code: &ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Cancelled
            | ErrorCode::Timeout
            | ErrorCode::CommandNotStarted
            | ErrorCode::NoDestroyCommand
            | ErrorCode::OutputsInvalid
            | ErrorCode::NoRollback
            | ErrorCode::TerraformNotFound
            | ErrorCode::TerraformNotStarted
            | ErrorCode::PulumiNotFound
            | ErrorCode::PulumiNotStarted
            | ErrorCode::MissingConfig
            | ErrorCode::InsufficientPermissions
            | ErrorCode::ExecutorPanicked
            | ErrorCode::MissingInput
            | ErrorCode::SecretUnavailable
            | ErrorCode::LockLost
            | ErrorCode::PlanChanged
    )
}

/// The built-in patterns for stacks of executor `executor` (AWS and network for all).
pub fn builtin(executor: &str) -> Vec<Pattern> {
    let own: &[(&str, &str)] = match executor {
        "terraform" | "tofu" => TERRAFORM,
        "pulumi" => PULUMI,
        _ => &[],
    };
    own.iter()
        .chain(AWS)
        .chain(NETWORK)
        .map(|(name, regex)| Pattern::new(*name, regex).expect("built-in patterns compile"))
        .collect()
}

/// [`builtin`], compiled once per executor kind for the whole process.
fn shared_builtin(executor: &str) -> Arc<[Pattern]> {
    static TERRAFORM_LIST: OnceLock<Arc<[Pattern]>> = OnceLock::new();
    static PULUMI_LIST: OnceLock<Arc<[Pattern]>> = OnceLock::new();
    static OTHER_LIST: OnceLock<Arc<[Pattern]>> = OnceLock::new();
    let (cell, kind) = match executor {
        "terraform" | "tofu" => (&TERRAFORM_LIST, "terraform"),
        "pulumi" => (&PULUMI_LIST, "pulumi"),
        _ => (&OTHER_LIST, ""),
    };
    Arc::clone(cell.get_or_init(|| Arc::from(builtin(kind))))
}

/// How one stack's failures are retried.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Attempts in all, the first included; 1: never retried.
    pub attempts: u32,
    /// The first delay's ceiling, and the most any delay may be.
    pub first: Duration,
    pub cap: Duration,
    /// The built-in list is compiled once per executor and shared by every stack (10,000
    /// stacks must not compile 340,000 regexes).
    pub patterns: Arc<[Pattern]>,
}

impl Default for Policy {
    /// No retries.
    fn default() -> Self {
        Policy {
            attempts: 1,
            first: DEFAULT_FIRST,
            cap: DEFAULT_CAP,
            patterns: Arc::from(Vec::new()),
        }
    }
}

/// `retry:` as written in one place of the manifest (under `defaults:` or on a stack): what
/// it sets, the rest from the other place or the defaults.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub attempts: Option<u32>,
    pub first: Option<Duration>,
    pub cap: Option<Duration>,
    /// Regexes added to the built-in list.
    pub errors: Vec<Pattern>,
    /// Regexes in place of the built-in list (and of `errors:`).
    pub only: Option<Vec<Pattern>>,
}

impl Policy {
    /// The policy of a stack of executor `executor`, from `defaults: retry:` and its own
    /// `retry:` (whose keys win). A command stack is retried only when it has `retry:` itself:
    /// a script may not be safe to run twice; Terraform and Pulumi are (their state says
    /// what is done).
    pub fn new(executor: &str, defaults: Option<&Settings>, own: Option<&Settings>) -> Policy {
        if executor == "command" && own.is_none() {
            return Policy::default();
        }
        let layers: Vec<&Settings> = defaults.into_iter().chain(own).collect();
        let pick = |f: fn(&Settings) -> Option<Duration>, default| {
            layers.iter().rev().find_map(|s| f(s)).unwrap_or(default)
        };
        let added = layers.iter().any(|s| !s.errors.is_empty());
        let patterns: Arc<[Pattern]> = match layers.iter().rev().find_map(|s| s.only.as_ref()) {
            Some(only) => Arc::from(only.clone()),
            None if !added => shared_builtin(executor),
            None => {
                let mut all = shared_builtin(executor).to_vec();
                for s in &layers {
                    all.extend(s.errors.iter().cloned());
                }
                Arc::from(all)
            }
        };
        let first = pick(|s| s.first, DEFAULT_FIRST);
        Policy {
            attempts: layers
                .iter()
                .rev()
                .find_map(|s| s.attempts)
                .unwrap_or(DEFAULT_ATTEMPTS),
            first,
            cap: pick(|s| s.cap, DEFAULT_CAP).max(first),
            patterns,
        }
    }

    /// The pattern that makes `error` transient, when one does and it may be retried: matched
    /// against its message, its details (diagnostics, stderr tail) and `lines` (what the stack
    /// printed on stderr during the attempt). `None` for a stop, a problem of `cloud`'s own
    /// making and a validation or plan error.
    pub fn transient(&self, error: &ErrorDetail, lines: &[String]) -> Option<&Pattern> {
        if self.attempts <= 1 || never_code(&error.code) {
            return None;
        }
        let mut text = error.message.clone();
        for part in error.details.iter().chain(lines) {
            text.push('\n');
            text.push_str(part);
        }
        if never().iter().any(|r| r.is_match(&text)) {
            return None;
        }
        self.patterns.iter().find(|p| p.regex.is_match(&text))
    }
}

fn never() -> &'static [Regex] {
    static NEVER_RE: std::sync::OnceLock<Vec<Regex>> = std::sync::OnceLock::new();
    NEVER_RE.get_or_init(|| {
        NEVER
            .iter()
            .map(|r| Regex::new(r).expect("built-in patterns compile"))
            .collect()
    })
}

/// The wait before attempt `attempt + 1` (after `attempt` failed, from 1): exponential with
/// full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): a uniform share
/// `random` (in [0, 1)) of `min(cap, first · 2^(attempt-1))`, so that many stacks throttled at
/// once do not come back at once.
pub fn backoff(attempt: u32, first: Duration, cap: Duration, random: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    let ceiling = first
        .checked_mul(1u32 << doublings.min(31))
        .unwrap_or(cap)
        .min(cap);
    ceiling.mul_f64(random.clamp(0.0, 1.0))
}

/// A random share in [0, 1) for [`backoff`].
pub fn jitter() -> f64 {
    fastrand::f64()
}

/// Waits `delay`, or until the run is stopped: `false` when it was (Ctrl-C during a backoff
/// stops at once, never after the wait).
pub async fn wait(delay: Duration, cancel: &Cancel) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = cancel.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: ErrorCode, message: &str) -> ErrorDetail {
        ErrorDetail {
            code,
            message: message.into(),
            details: None,
        }
    }

    fn policy(executor: &str) -> Policy {
        Policy::new(executor, None, Some(&Settings::default()))
    }

    #[test]
    fn throttling_is_transient_and_an_invalid_reference_is_not() {
        let p = policy("terraform");
        let throttled = error(
            ErrorCode::TerraformError,
            "creating SQS Queue: ThrottlingException: Rate exceeded",
        );
        assert_eq!(
            p.transient(&throttled, &[]).map(|p| p.name.as_str()),
            Some("ThrottlingException")
        );
        let invalid = error(ErrorCode::TerraformError, "Error: Invalid reference");
        assert!(p.transient(&invalid, &[]).is_none());
        // Not even when the stderr also says something transient.
        let lines = ["Error: Invalid reference".to_owned()];
        let mixed = error(ErrorCode::TerraformError, "connection reset by peer");
        assert!(p.transient(&mixed, &lines).is_none());
    }

    #[test]
    fn stderr_lines_and_details_are_read_too() {
        let p = policy("command");
        let e = error(ErrorCode::CommandFailed, "deploy.sh exited with 1");
        assert!(p.transient(&e, &[]).is_none());
        let lines = ["upload: read tcp 10.0.0.1:443: i/o timeout".to_owned()];
        assert_eq!(p.transient(&e, &lines).unwrap().name, "i/o timeout");
        let mut e = e;
        e.details = Some("An error occurred (SlowDown) when calling PutObject".into());
        assert_eq!(p.transient(&e, &[]).unwrap().name, "SlowDown");
    }

    #[test]
    fn each_executor_has_its_own_patterns() {
        let provider = "Error: Failed to install provider\n\nError while installing \
                        hashicorp/aws: net/http: TLS handshake timeout";
        let e = error(ErrorCode::TerraformError, provider);
        assert_eq!(
            policy("terraform").transient(&e, &[]).unwrap().name,
            "failed to install provider"
        );
        let e = error(
            ErrorCode::PulumiError,
            "error: [503] Service Unavailable from api.pulumi.com",
        );
        assert_eq!(
            policy("pulumi").transient(&e, &[]).unwrap().name,
            "pulumi service unavailable"
        );
    }

    #[test]
    fn a_stop_and_cloud_s_own_errors_are_never_retried() {
        let p = policy("terraform");
        for code in [
            ErrorCode::Cancelled,
            ErrorCode::Timeout,
            ErrorCode::MissingInput,
        ] {
            assert!(p.transient(&error(code, "Rate exceeded"), &[]).is_none());
        }
    }

    #[test]
    fn a_command_stack_is_retried_only_with_its_own_retry() {
        let defaults = Settings {
            attempts: Some(5),
            ..Settings::default()
        };
        assert_eq!(Policy::new("command", Some(&defaults), None).attempts, 1);
        assert_eq!(Policy::new("terraform", Some(&defaults), None).attempts, 5);
        assert_eq!(Policy::new("pulumi", None, None).attempts, DEFAULT_ATTEMPTS);
        let own = Settings {
            first: Some(Duration::from_secs(1)),
            ..Settings::default()
        };
        let p = Policy::new("command", Some(&defaults), Some(&own));
        assert_eq!(
            (p.attempts, p.first, p.cap),
            (5, own.first.unwrap(), DEFAULT_CAP)
        );
    }

    #[test]
    fn errors_add_to_the_list_and_only_replaces_it() {
        let mine = Pattern::new("QueueDeletedRecently", "QueueDeletedRecently").unwrap();
        let add = Settings {
            errors: vec![mine.clone()],
            ..Settings::default()
        };
        let p = Policy::new("terraform", None, Some(&add));
        let e = error(ErrorCode::TerraformError, "QueueDeletedRecently: wait 60s");
        assert!(p.transient(&e, &[]).is_some());
        assert!(p
            .transient(&error(ErrorCode::TerraformError, "Rate exceeded"), &[])
            .is_some());
        let only = Settings {
            only: Some(vec![mine]),
            ..Settings::default()
        };
        let p = Policy::new("terraform", None, Some(&only));
        assert!(p.transient(&e, &[]).is_some());
        assert!(p
            .transient(&error(ErrorCode::TerraformError, "Rate exceeded"), &[])
            .is_none());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let (first, cap) = (Duration::from_secs(5), Duration::from_secs(60));
        let ceiling = |attempt| backoff(attempt, first, cap, 1.0);
        assert_eq!(ceiling(1), Duration::from_secs(5));
        assert_eq!(ceiling(2), Duration::from_secs(10));
        assert_eq!(ceiling(3), Duration::from_secs(20));
        assert_eq!(ceiling(5), Duration::from_secs(60));
        assert_eq!(ceiling(1000), Duration::from_secs(60));
        assert_eq!(backoff(3, first, cap, 0.0), Duration::ZERO);
        assert_eq!(backoff(3, first, cap, 0.5), Duration::from_secs(10));
        for _ in 0..1000 {
            let d = backoff(2, first, cap, jitter());
            assert!(d < Duration::from_secs(10), "{d:?}");
        }
    }

    /// The wait lasts the backoff, in paused time: not a moment less, and stops at once on a
    /// cancel.
    #[tokio::test(start_paused = true)]
    async fn the_wait_lasts_the_backoff_and_a_cancel_ends_it() {
        let cancel = Cancel::new();
        let delay = backoff(2, DEFAULT_FIRST, DEFAULT_CAP, 0.75);
        assert_eq!(delay, Duration::from_millis(7500));
        let start = tokio::time::Instant::now();
        assert!(wait(delay, &cancel).await);
        assert_eq!(start.elapsed(), delay);

        let waiting = tokio::spawn({
            let cancel = cancel.clone();
            async move { wait(Duration::from_secs(3600), &cancel).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = tokio::time::Instant::now();
        cancel.cancel();
        assert!(!waiting.await.unwrap());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
