//! `ddlambda`: run functions on the local Lambda platform, debug trace extraction and
//! pathways, and run the demo pipeline. Wiring only: each subcommand lives in its own file.

mod demo;
mod extract;
mod invoke;
mod pathway;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ddlambda", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a function (and extensions) on the local Lambda platform.
    Invoke(invoke::Args),
    /// Print the trace context a function would extract from an event.
    Extract(extract::Args),
    /// Decode pathway contexts and compute data-streams checkpoints.
    #[command(subcommand)]
    Pathway(pathway::Command),
    /// Run the demo pipeline: producer → SQS → consumer → Kinesis → consumer.
    Demo(demo::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Invoke(args) => invoke::run(args),
        Command::Extract(args) => extract::run(args),
        Command::Pathway(cmd) => pathway::run(cmd),
        Command::Demo(args) => demo::run(args),
    }
}

/// A multi-threaded async runtime for `command`, or the exit code after saying why there is
/// none.
fn runtime(command: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("ddlambda {command}: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}
