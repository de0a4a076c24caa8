//! `retry:` under `defaults:` and on a stack: how a failed stack operation is tried again
//! when its error is transient (see [`crate::retry`]).
//!
//! ```yaml
//! retry:
//!   attempts: 3                      # in all, the first included; 1: no retries
//!   backoff: { first: 5s, cap: 60s } # exponential, full jitter
//!   errors: ['QueueDeletedRecently'] # regexes added to the built-in list
//!   only: ['ThrottlingException']    # regexes in place of it
//! ```

use crate::retry::{Pattern, Settings, MAX_ATTEMPTS};

use super::error::ManifestResult;
use super::inputs::duration_seconds;
use super::yaml::Value;

const KEYS: &[&str] = &["attempts", "backoff", "errors", "only"];
const BACKOFF_KEYS: &[&str] = &["first", "cap"];
const EXAMPLE: &str = "retry: { attempts: 3, backoff: { first: 5s, cap: 60s } }";

/// Reads one `retry:` (`where_`: `defaults` or the stack, for messages).
pub(super) fn parse(v: Value, where_: &str) -> ManifestResult<Settings> {
    let what = format!("`retry` of {where_}");
    let mut settings = Settings::default();
    if v.is_null() {
        return Ok(settings);
    }
    for (key, key_at, value) in v.entries(&what, EXAMPLE)? {
        match key.as_str() {
            "attempts" => settings.attempts = Some(attempts(value)?),
            "backoff" => {
                for (k, k_at, d) in value.entries(
                    &format!("`retry.backoff` of {where_}"),
                    "backoff: { first: 5s, cap: 60s }",
                )? {
                    match k.as_str() {
                        "first" => settings.first = Some(duration(d, "backoff.first")?),
                        "cap" => settings.cap = Some(duration(d, "backoff.cap")?),
                        _ => {
                            return Err(v.doc().unknown_key(
                                &k,
                                k_at,
                                &format!("`retry.backoff` of {where_}"),
                                BACKOFF_KEYS,
                            ))
                        }
                    }
                }
                if let (Some(first), Some(cap)) = (settings.first, settings.cap) {
                    if cap < first {
                        return Err(value.err(
                            format!(
                                "`retry.backoff.cap` ({}s) is shorter than `first` ({}s)",
                                cap.as_secs_f64(),
                                first.as_secs_f64()
                            ),
                            "the cap is the longest wait: make it at least `first`, e.g. \
                             `backoff: { first: 5s, cap: 60s }`",
                        ));
                    }
                }
            }
            "errors" => settings.errors = patterns(value, "errors")?,
            "only" => settings.only = Some(patterns(value, "only")?),
            _ => return Err(v.doc().unknown_key(&key, key_at, &what, KEYS)),
        }
    }
    Ok(settings)
}

fn attempts(v: Value) -> ManifestResult<u32> {
    match v.integer() {
        Some(n) if (1..=i64::from(MAX_ATTEMPTS)).contains(&n) => Ok(n as u32),
        _ => Err(v.err(
            format!(
                "`retry.attempts` must be a whole number from 1 to {MAX_ATTEMPTS}, found `{}`",
                v.scalar_text().unwrap_or_else(|| v.kind().to_owned())
            ),
            "it counts every attempt, the first included: `attempts: 3` tries twice more; \
             `attempts: 1` turns retries off",
        )),
    }
}

fn duration(v: Value, key: &str) -> ManifestResult<std::time::Duration> {
    let seconds = match v.number() {
        Some(n) => Some(n),
        None => v.scalar_text().and_then(|t| duration_seconds(&t)),
    };
    match seconds {
        Some(s) if (0.0..=86_400.0).contains(&s) => Ok(std::time::Duration::from_secs_f64(s)),
        _ => Err(v.err(
            format!(
                "`retry.{key}` must be a duration from 0s to a day, found `{}`",
                v.scalar_text().unwrap_or_else(|| v.kind().to_owned())
            ),
            "write a duration like `5s`, `0.5s` or `2m`",
        )),
    }
}

fn patterns(v: Value, key: &str) -> ManifestResult<Vec<Pattern>> {
    let example = format!("{key}: ['QueueDeletedRecently', '(?i)rate exceeded']");
    let items = v.items(
        &format!("`retry.{key}`"),
        "a list of regular expressions",
        &example,
    )?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let regex = item.nonempty_string("a pattern", &example)?;
        let pattern = Pattern::new(regex.clone(), &regex).map_err(|why| {
            // regex-lite's message spans lines (the pattern, a caret, the reason): one line.
            let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
            item.err(
                format!(
                    "`retry.{key}`: `{}` is not a valid regular expression: {why}",
                    regex.escape_debug()
                ),
                "fix the pattern (escape `(`, `[`, `.` with `\\` to match them as text), \
                 e.g. `'Rate exceeded'` or `'\\(429\\)'`",
            )
        })?;
        out.push(pattern);
    }
    Ok(out)
}
