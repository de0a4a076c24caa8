//! placeholder
use super::Failure;
use crate::cli;
use crate::settings::Settings;
pub fn run(_settings: &Settings, _args: cli::Watch) -> Result<i32, Failure> {
    Err(Failure::input("not yet"))
}
