//! `ddlambda extract` (not built yet).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("ddlambda extract: not built yet");
    ExitCode::FAILURE
}
