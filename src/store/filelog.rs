//! File logs read back (written by [`crate::sink::filelog`]): where they are, how they are
//! named and ordered, and what a line of one says. One file per run in
//! `cloud/deploy/<ID>/logs/deploy-<env>-YYYY-MM-DD-HH-MM.log` (UTC, the run's start; a second
//! run in the same minute gets `…-HH-MM-2.log`, then `-3`…). Lines read
//! `2025-10-09T14:30:05.120Z INFO  [network] Deployed in 2m (8 resources)`; text of several
//! lines continues on lines indented by four spaces; `# …` lines are the header and the end mark.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::event::LogLevel;

/// The last line of a file whose run ended.
pub const END_MARK: &str = "# end of run";

/// Where the file logs of a deployment live.
pub fn dir(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join("logs")
}

/// `deploy-dev-2025-10-09-14-30.log`, or with `-N` before `.log` for the N-th run of that
/// minute.
pub fn file_name(kind: &str, environment: &str, start: DateTime<Utc>, n: u32) -> String {
    let minute = start.format("%Y-%m-%d-%H-%M");
    if n <= 1 {
        format!("{kind}-{environment}-{minute}.log")
    } else {
        format!("{kind}-{environment}-{minute}-{n}.log")
    }
}

/// The order of a file log of `environment` among the others (start minute, then N), or
/// `None` when `name` is not one.
pub fn sort_key(name: &str, environment: &str) -> Option<(String, u32)> {
    let rest = ["deploy", "destroy", "rollback"]
        .iter()
        .find_map(|kind| name.strip_prefix(&format!("{kind}-{environment}-")))?;
    let rest = rest.strip_suffix(".log")?;
    let (minute, n) = match rest.get(16..) {
        Some("") => (rest, 1),
        Some(tail) => (&rest[..16], tail.strip_prefix('-')?.parse().ok()?),
        None => return None,
    };
    chrono::NaiveDateTime::parse_from_str(minute, "%Y-%m-%d-%H-%M").ok()?;
    Some((minute.to_owned(), n))
}

/// The newest file log of `environment`.
pub fn latest(manifest_dir: &Path, environment: &str) -> Option<PathBuf> {
    fs::read_dir(dir(manifest_dir))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            sort_key(&name, environment).map(|k| (k, e.path()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, p)| p)
}

const LEVELS: [LogLevel; 4] = [
    LogLevel::Debug,
    LogLevel::Info,
    LogLevel::Warn,
    LogLevel::Error,
];

/// `DEBUG`, `INFO`, `WARN`, `ERROR`: a level as a file log line (and CloudWatch) says it.
pub fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
    }
}

/// The level `name` ([`level_name`]) says.
pub fn level_named(name: &str) -> Option<LogLevel> {
    LEVELS.into_iter().find(|&l| level_name(l) == name)
}

/// A line of a file log read back: its level and stack, when it is an event's first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// `# …`: the header or the end mark.
    Note,
    Event {
        level: LogLevel,
        stack: Option<&'a str>,
    },
    /// An indented line continuing the one before.
    More,
}

pub fn parse(line: &str) -> Parsed<'_> {
    if line.starts_with('#') {
        return Parsed::Note;
    }
    let mut parts = line.splitn(3, ' ');
    let (Some(_time), Some(level)) = (parts.next(), parts.next()) else {
        return Parsed::More;
    };
    let Some(level) = level_named(level) else {
        return Parsed::More;
    };
    let rest = parts.next().unwrap_or_default().trim_start();
    let stack = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once("] "))
        .map(|(s, _)| s);
    Parsed::Event { level, stack }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_minute_then_number() {
        let t: DateTime<Utc> = "2025-10-09T14:30:59Z".parse().unwrap();
        assert_eq!(
            file_name("deploy", "dev", t, 1),
            "deploy-dev-2025-10-09-14-30.log"
        );
        let a = sort_key(&file_name("deploy", "dev", t, 1), "dev").unwrap();
        let b = sort_key(&file_name("deploy", "dev", t, 2), "dev").unwrap();
        let c = sort_key(&file_name("deploy", "dev", t, 10), "dev").unwrap();
        assert!(a < b && b < c);
        assert_eq!(sort_key("deploy-dev-eu-2025-10-09-14-30.log", "dev"), None);
        assert!(sort_key("deploy-dev-eu-2025-10-09-14-30.log", "dev-eu").is_some());
    }

    #[test]
    fn lines_parse_back() {
        assert_eq!(parse("# end of run"), Parsed::Note);
        assert_eq!(
            parse("2025-10-09T14:30:05.120Z ERROR [db] Failed after 3s: COMMAND_FAILED: x"),
            Parsed::Event {
                level: LogLevel::Error,
                stack: Some("db")
            }
        );
        assert_eq!(
            parse("2025-10-09T14:30:05.120Z INFO  Layer 1/2 started: db"),
            Parsed::Event {
                level: LogLevel::Info,
                stack: None
            }
        );
        assert_eq!(parse("    exit status 1"), Parsed::More);
    }
}
