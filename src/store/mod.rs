//! What runs leave on disk (and in the DynamoDB table), read back: journals, file logs, the
//! run history, the audit trail, the locks.

pub mod audit;
pub mod checkpoint;
pub mod dynamodb;
pub mod filelog;
pub mod groups;
pub mod history;
pub mod journal;
pub mod lock;
pub mod spool;
pub mod table_lock;
