//! Manifest errors: one problem, where it is written, and the fix (drawn by `render`, with the
//! offending line and a caret under it); "did you mean" suggestions come from strsim.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A 1-based line and column in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, Clone)]
pub struct ManifestError {
    pub file: PathBuf,
    /// `line == 0` when the problem has no place in the file (e.g. it is missing).
    pub at: Loc,
    /// One line: what is wrong.
    pub message: String,
    /// One line: how to fix it.
    pub help: String,
    /// The manifest's text, for the snippet; read from `file` when absent.
    pub(super) source: Option<Arc<str>>,
}

/// What reading a manifest returns.
pub type ManifestResult<T> = Result<T, ManifestError>;

impl ManifestError {
    pub fn new(file: &Path, at: Loc, message: impl Into<String>, help: impl Into<String>) -> Self {
        ManifestError {
            file: file.to_path_buf(),
            at,
            message: message.into(),
            help: help.into(),
            source: None,
        }
    }

    /// Keeps the manifest's text for the snippet (the file may not exist, as in tests).
    pub fn with_source(mut self, text: &str) -> Self {
        if self.source.is_none() && self.at.line > 0 {
            self.source = Some(Arc::from(text));
        }
        self
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ManifestError {}

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.chars().count() > 200 {
        return None;
    }
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let w = norm(word);
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for &c in candidates {
        let d = if norm(c) == w {
            0
        } else {
            strsim::levenshtein(&lower, &c.to_lowercase())
        };
        let len = word.chars().count().max(c.chars().count());
        let limit = (len / 3).max(1);
        if d <= limit && d < c.chars().count() && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean `x`? ` when a candidate is close, else nothing: the start of a help line.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates) {
        Some(g) => format!("did you mean `{g}`? "),
        None => String::new(),
    }
}

/// `a, b, c` (at most 20 names).
pub fn list(names: &[&str]) -> String {
    const MAX: usize = 20;
    let mut out = names
        .iter()
        .take(MAX)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX {
        out.push_str(&format!(", … ({} more)", names.len() - MAX));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_line_with_a_caret_and_the_help() {
        let text = "environments: [dev]\nstacks:\n  app:\n    dependencies: [netwrk]\n";
        let e = ManifestError::new(
            Path::new("cloud/deploy/D/deployment.yaml"),
            Loc {
                line: 4,
                column: 20,
            },
            "unknown dependency `netwrk` in stack `app`",
            "did you mean `network`?",
        )
        .with_source(text);
        let out = e.render();
        assert!(
            out.starts_with("error: unknown dependency `netwrk`"),
            "{out}"
        );
        assert!(
            out.contains("[cloud/deploy/D/deployment.yaml:4:20]"),
            "{out}"
        );
        assert!(out.contains("    dependencies: [netwrk]"), "{out}");
        // The underline sits under `netwrk`, six wide.
        let underline = out
            .lines()
            .find(|l| l.contains('─') && l.contains('·'))
            .unwrap();
        assert_eq!(underline.matches('─').count(), 6, "{out}");
        assert!(out.ends_with("help: did you mean `network`?"), "{out}");
    }

    #[test]
    fn without_the_text_it_still_says_where() {
        let e = ManifestError::new(
            Path::new("/nowhere/deployment.yaml"),
            Loc { line: 3, column: 5 },
            "bad",
            "fix it",
        );
        let out = e.render();
        assert!(
            out.starts_with("error: bad\n  --> /nowhere/deployment.yaml:3:5"),
            "{out}"
        );
        assert!(out.contains("help: fix it"), "{out}");
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("netwrk", &["network", "dns"]), Some("network"));
        assert_eq!(
            closest("dependancies", &["dependencies", "executor"]),
            Some("dependencies")
        );
        assert_eq!(closest("zzz", &["network"]), None);
        assert_eq!(closest("Data_Base", &["database"]), Some("database"));
    }
}
