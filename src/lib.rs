//! `cloud`: deploy infrastructure made of many stacks, in dependency order, with live progress.

pub mod cli;
pub mod commands;
pub mod event;
pub mod executor;
pub mod lock;
pub mod manifest;
pub mod orchestrator;
pub mod plan;
pub mod progress;
pub mod sink;
pub mod view;
