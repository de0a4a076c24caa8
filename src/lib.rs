//! `cloud`: deploy infrastructure made of many stacks, in dependency order, with live progress.
//!
//! Where a change goes (the README's "Code map"): a new executor is a file in `executor/`
//! and a line in [`executor::registry`]; a new sink is a file in `sink/` and a line where
//! `commands::deploy` assembles the bus; a new view is a file in `view/`.

pub mod bus;
pub mod cancel;
pub mod changed;
pub mod cli;
pub mod commands;
pub mod complete;
pub mod error;
pub mod eta;
pub mod event;
pub mod executor;
pub mod health;
pub mod help;
pub mod manifest;
pub mod orchestrator;
pub mod parallel;
pub mod plan;
pub mod progress;
pub mod retry;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod sink;
pub mod store;
#[doc(hidden)]
pub mod testing;
pub mod timing;
pub mod view;
pub mod words;
