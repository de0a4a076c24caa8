//! `cloud`: deploy infrastructure made of many stacks, in dependency order, with live progress.

pub mod event;
pub mod manifest;
pub mod orchestrator;
pub mod progress;
pub mod view;
