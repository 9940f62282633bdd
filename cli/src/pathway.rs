//! `ddlambda pathway` (not built yet).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Decode a base64 pathway context.
    Decode { b64: String },
}

pub fn run(_cmd: Command) -> ExitCode {
    eprintln!("ddlambda pathway: not built yet");
    ExitCode::FAILURE
}
