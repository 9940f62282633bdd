//! `ddlambda demo` (not built yet).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("ddlambda demo: not built yet");
    ExitCode::FAILURE
}
