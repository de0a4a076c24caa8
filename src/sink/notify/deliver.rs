//! Getting one message through: attempts with a timeout each and a backoff between them, cut
//! short by the end-of-run deadline; and the HTTP POST that Slack, PagerDuty and webhooks
//! share (its errors never show the URL, which may hold a secret).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::watch;

use super::{Expected, SetupError};
use crate::manifest::notifications::{check_http_url, Setting};

/// Attempts per message.
pub const ATTEMPTS: u32 = 3;
/// The wait before the second attempt; it doubles before each next one.
const BACKOFF: Duration = Duration::from_millis(500);
/// How much of an endpoint's answer a warning quotes.
const ANSWER_MAX: usize = 200;

/// Why one attempt did not deliver.
#[derive(Debug, Clone)]
pub struct AttemptError {
    pub message: String,
    /// Worth another attempt (a timeout, a 5xx, a refused connection); a 4xx is not.
    pub retry: bool,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Not delivered after `attempts` (0: the run was over before the first); the last error.
    Failed {
        attempts: u32,
        error: String,
    },
}

impl Outcome {
    /// `not delivered after 3 attempts: HTTP 500 Internal Server Error`.
    pub fn failure(&self) -> Option<String> {
        let Outcome::Failed { attempts, error } = self else {
            return None;
        };
        let tries = match attempts {
            0 => "before any attempt".to_owned(),
            1 => "after 1 attempt".to_owned(),
            n => format!("after {n} attempts"),
        };
        Some(format!("not delivered {tries}: {error}"))
    }
}

/// When the run's end leaves no more time for deliveries: unset while the run goes on.
#[derive(Clone)]
pub struct Deadline(watch::Receiver<Option<Instant>>);

impl Deadline {
    /// A deadline and the handle that sets it.
    pub fn new() -> (watch::Sender<Option<Instant>>, Deadline) {
        let (tx, rx) = watch::channel(None);
        (tx, Deadline(rx))
    }

    /// A deadline that never comes (`cloud notify test`).
    pub fn never() -> Deadline {
        Deadline(watch::channel(None).1)
    }

    pub fn get(&self) -> Option<Instant> {
        *self.0.borrow()
    }

    /// Resolves once the deadline is set and has passed.
    pub async fn passed(mut self) {
        loop {
            if let Some(at) = self.get() {
                tokio::time::sleep_until(at).await;
                return;
            }
            if self.0.changed().await.is_err() {
                // Its sender is gone without setting it: it never comes.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Runs `attempt` up to `attempts` times, each within `timeout` and the deadline, waiting
/// [`BACKOFF`] (doubling) between them; an error that is not worth a retry ends it at once.
pub async fn deliver<F, Fut>(
    attempts: u32,
    timeout: Duration,
    deadline: &Deadline,
    mut attempt: F,
) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), AttemptError>>,
{
    let attempts = attempts.max(1);
    let mut last = String::from("the run was over before it could be sent");
    for n in 1..=attempts {
        let left = deadline
            .get()
            .map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Outcome::Failed {
                attempts: n - 1,
                error: last,
            };
        }
        let limit = left.map_or(timeout, |l| l.min(timeout));
        let result = tokio::select! {
            r = tokio::time::timeout(limit, attempt()) => r.unwrap_or_else(|_| Err(AttemptError {
                message: format!("no answer within {}", seconds(limit)),
                retry: true,
            })),
            () = deadline.clone().passed() => Err(AttemptError {
                message: "the run was over before it was answered".into(),
                retry: false,
            }),
        };
        let error = match result {
            Ok(()) => return Outcome::Delivered,
            Err(e) => e,
        };
        last = error.message;
        if !error.retry || n == attempts {
            return Outcome::Failed {
                attempts: n,
                error: last,
            };
        }
        let wait = BACKOFF * 2u32.pow(n - 1);
        if deadline.get().is_some_and(|d| Instant::now() + wait >= d) {
            return Outcome::Failed {
                attempts: n,
                error: format!("{last} (the run was over: no time left to try again)"),
            };
        }
        tokio::time::sleep(wait).await;
    }
    Outcome::Failed {
        attempts,
        error: last,
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

/// An HTTP endpoint whose URL may be a secret (a Slack webhook's path is its key).
pub struct Endpoint {
    client: reqwest::Client,
    url: url::Url,
    /// `https://hooks.slack.com`: scheme, host and port; what messages show of it.
    pub shown: String,
}

impl Endpoint {
    /// Reads the URL setting (and its `${VAR}`s).
    pub fn new(setting: &Setting, client: &reqwest::Client) -> Result<Endpoint, SetupError> {
        let text = setting.resolve()?;
        let url =
            check_http_url(&text).map_err(SetupError::unusable(&setting.key, Expected::Url))?;
        let host = url.host_str().unwrap_or_default();
        let shown = match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        Ok(Endpoint {
            client: client.clone(),
            url,
            shown,
        })
    }

    /// POSTs a JSON body. 2xx is delivered; a refused connection, a timeout, 408, 429 and 5xx
    /// are worth another attempt, other answers are not.
    pub async fn post(
        &self,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<(), AttemptError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|e| AttemptError {
            message: http_error(&e),
            retry: true,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let answer = response.text().await.unwrap_or_default();
        let answer = answer.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut message = format!("HTTP {status}");
        if !answer.is_empty() {
            message.push_str(": ");
            message.extend(answer.chars().take(ANSWER_MAX));
            if answer.chars().count() > ANSWER_MAX {
                message.push('…');
            }
        }
        if status.is_redirection() {
            message.push_str(" (the endpoint moved: use its new URL)");
        }
        Err(AttemptError {
            message,
            retry: status.is_server_error() || matches!(status.as_u16(), 408 | 429),
        })
    }
}

/// The HTTP client of Slack, PagerDuty and webhooks: rustls on ring, no redirects (a POST
/// that is redirected was not delivered), a timeout per request.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, SetupError> {
    // The process's TLS provider; ring is the only one built in. Already set is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cloud/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SetupError::Transport(format!("cannot set up HTTPS: {}", http_error(&e))))
}

/// A reqwest error with its causes, each said once, without the URL.
fn http_error(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        // reqwest's own words name the URL: "error sending request for url (…)".
        let text = match text.find(" for url (") {
            Some(i) => text[..i].to_owned(),
            None => text,
        };
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// An error with its causes, `a: b: c`, each said once.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn failing(retry: bool, calls: &AtomicU32) -> impl Future<Output = Result<(), AttemptError>> {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Err(AttemptError {
            message: "HTTP 500".into(),
            retry,
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn three_attempts_then_the_last_error() {
        let calls = AtomicU32::new(0);
        let out = deliver(ATTEMPTS, Duration::from_secs(1), &Deadline::never(), || {
            failing(true, &calls)
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            out.failure().unwrap(),
            "not delivered after 3 attempts: HTTP 500"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_not_worth_retrying_stops_at_once() {
        let calls = AtomicU32::new(0);
        let out = deliver(ATTEMPTS, Duration::from_secs(1), &Deadline::never(), || {
            failing(false, &calls)
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(out, Outcome::Failed { attempts: 1, .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_attempt_times_out_and_the_deadline_cuts_the_rest() {
        let (set, deadline) = Deadline::new();
        set.send(Some(Instant::now() + Duration::from_secs(2)))
            .unwrap();
        let calls = AtomicU32::new(0);
        let out = deliver(ATTEMPTS, Duration::from_secs(1), &deadline, || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<(), AttemptError>>()
        })
        .await;
        // 1s timeout, 0.5s backoff, a second attempt cut at the deadline (2s), no time for a third.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(
            matches!(out, Outcome::Failed { attempts: 2, .. }),
            "{out:?}"
        );
    }
}
