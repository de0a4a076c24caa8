//! What runs leave on disk, read back: journals, the run history, the lock.

pub mod audit;
pub mod dynamodb;
pub mod history;
pub mod journal;
pub mod lock;
pub mod spool;
