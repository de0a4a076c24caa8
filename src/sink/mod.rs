//! Sinks: consumers of the run's events, each started on the bus (see [`crate::bus`]).
//! The views are sinks too (`crate::view`).

pub mod backlog;
pub mod cloudwatch;
pub mod dynamodb;
pub mod filelog;
pub mod history;
pub mod journal;
pub mod notify;
pub mod report;
