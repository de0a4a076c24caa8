//! The one error a command ends with: its [`Kind`] (which decides the exit code, README's
//! "Exit codes" table), what went wrong, and how to fix it. Commands return it, lower layers'
//! errors convert into it (`?`), and [`Error::report`] is the one place that prints it.
//!
//! Printed as
//! ```text
//! error: <message>
//!   help: <hint>
//! ```
//! (a message may hold more lines, e.g. `  --> file`; a manifest error renders its snippet).

use std::fmt;

use crate::manifest::ManifestError;
use crate::store::audit::ReadError;
use crate::store::dynamodb::TableError;
use crate::store::lock::LockError;
use crate::store::table_lock::{BadLease, Refused, TableLockError};

/// What kind of failure, and so which exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input or usage: the manifest, a flag, a missing tool; nothing ran. Exit 2.
    BadInput,
    /// A stack failed, or a needed service could not be asked. Exit 1.
    Failed,
    /// Another run holds the deployment and environment. Exit 3.
    Locked,
    /// Ctrl-C, SIGTERM, SIGHUP. Exit 130.
    Interrupted,
    /// This machine could not give what any run needs (a runtime, a thread). Exit 1.
    Internal,
    /// `cloud plan --detailed-exitcode` found changes, or `cloud drift` found drift (no
    /// error). Exit 2.
    Changes,
}

impl Kind {
    /// The process's exit code for this kind (README, "Exit codes").
    pub const fn exit_code(self) -> i32 {
        match self {
            Kind::BadInput | Kind::Changes => 2,
            Kind::Failed | Kind::Internal => 1,
            Kind::Locked => 3,
            Kind::Interrupted => 130,
        }
    }
}

/// Why a command stopped.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// Already shown (a view told how the run ended): only the exit code is left to give.
    Shown,
    Said {
        message: String,
        hints: Vec<String>,
    },
    /// Rendered with its snippet when printed, in colour when stderr takes it.
    Manifest(Box<ManifestError>),
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            body: Body::Said {
                message: message.into(),
                hints: Vec::new(),
            },
        }
    }

    /// Bad input: exit 2.
    pub fn input(message: impl Into<String>) -> Self {
        Error::new(Kind::BadInput, message)
    }

    /// Failed: exit 1.
    pub fn failed(message: impl Into<String>) -> Self {
        Error::new(Kind::Failed, message)
    }

    /// Locked: exit 3.
    pub fn locked(message: impl Into<String>) -> Self {
        Error::new(Kind::Locked, message)
    }

    /// The machine failed us (exit 1).
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(Kind::Internal, message)
    }

    /// An outcome the user has already seen (a failed or interrupted run): nothing to print.
    pub fn shown(kind: Kind) -> Self {
        Error {
            kind,
            body: Body::Shown,
        }
    }

    /// Under `--detailed-exitcode`, where 2 means "changes": bad input is a failure (exit 1).
    pub fn input_as_failure(mut self) -> Self {
        if self.kind == Kind::BadInput {
            self.kind = Kind::Failed;
        }
        self
    }

    /// Adds a `help:` line: how to fix it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        if let Body::Said { hints, .. } = &mut self.body {
            hints.push(hint.into());
        }
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// The text for stderr (none when already shown), in colour when `color`.
    pub fn render(&self, color: bool) -> Option<String> {
        match &self.body {
            Body::Shown => None,
            Body::Manifest(e) => Some(e.render_styled(color)),
            Body::Said { message, hints } => {
                // A tool's own words may say `error:` already: said once.
                let message = ["error: ", "Error: "]
                    .iter()
                    .find_map(|word| message.strip_prefix(word))
                    .unwrap_or(message);
                let mut text = format!("error: {message}");
                for hint in hints {
                    text.push_str("\n  help: ");
                    text.push_str(hint);
                }
                Some(text)
            }
        }
    }

    /// Prints it on stderr and gives the exit code: the one place a command's failure is told.
    pub fn report(&self, color: bool) -> i32 {
        if let Some(text) = self.render(color) {
            eprintln!("{text}");
        }
        self.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render(false).as_deref().unwrap_or("(already shown)"))
    }
}

impl std::error::Error for Error {}

impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Self {
        Error {
            kind: Kind::BadInput,
            body: Body::Manifest(Box::new(e)),
        }
    }
}

impl From<LockError> for Error {
    fn from(e: LockError) -> Self {
        let kind = match e {
            LockError::Held { .. } => Kind::Locked,
            LockError::Io { .. } => Kind::Failed,
        };
        Error::new(kind, e.to_string())
    }
}

impl From<TableLockError> for Error {
    fn from(e: TableLockError) -> Self {
        let kind = match e.why {
            Refused::Held(_) => Kind::Locked,
            // Without the table two machines could deploy at once: nothing starts.
            Refused::Table(_) => Kind::Failed,
        };
        Error::new(kind, e.to_string())
    }
}

impl From<TableError> for Error {
    /// A command that needs the table cannot do without it.
    fn from(e: TableError) -> Self {
        Error::failed(e.to_string())
    }
}

impl From<ReadError> for Error {
    /// The trail is there but cannot be read: not the user's input.
    fn from(e: ReadError) -> Self {
        Error::failed(e.to_string())
    }
}

impl From<BadLease> for Error {
    fn from(e: BadLease) -> Self {
        Error::input(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_follow_the_message_and_kinds_give_the_readme_codes() {
        let e = Error::input("`x` is not a stack\n  --> deployment.yaml")
            .hint("did you mean `y`?")
            .hint("stacks: y, z");
        assert_eq!(
            e.render(false).unwrap(),
            "error: `x` is not a stack\n  --> deployment.yaml\n  help: did you mean `y`?\n  help: stacks: y, z"
        );
        assert_eq!(e.exit_code(), 2);
        assert_eq!(Error::failed("x").exit_code(), 1);
        assert_eq!(Error::locked("x").exit_code(), 3);
        assert_eq!(Error::internal("x").exit_code(), 1);
        assert_eq!(Error::shown(Kind::Interrupted).exit_code(), 130);
        assert_eq!(Error::shown(Kind::Failed).render(false), None);
        assert_eq!(
            Error::failed("Error: state lock held").to_string(),
            "error: state lock held"
        );
    }

    #[test]
    fn lower_errors_convert_with_their_kind_and_words() {
        let table = TableError("DynamoDB cannot be reached (no answer)".into());
        let e = Error::from(table.clone());
        assert_eq!(
            (e.kind(), e.to_string()),
            (Kind::Failed, format!("error: {table}"))
        );
        let e = Error::from(ReadError::Table(table));
        assert_eq!(e.kind(), Kind::Failed);
        let e = Error::from(BadLease("2".into()));
        assert_eq!(e.kind(), Kind::BadInput);
        assert_eq!(
            e.to_string(),
            "error: CLOUD_LOCK_LEASE_SECONDS must be a whole number of seconds from 3 to 3600, found `2`"
        );
    }
}
