//! `ddlambda demo`: a pipeline on the local Lambda platform, the extension attached to every
//! function — a producer sends messages to SQS, a relay consumes them and puts them to Kinesis,
//! a consumer reads the stream. The queue and stream are embedded stand-ins by default
//! ([`standins`]) or real AWS APIs at `--aws-endpoint` (moto in the tests), through the same SDK
//! calls. Prints the connected trace as a waterfall and the pathway map, and writes both as JSON.

mod binaries;
mod collect;
mod event_source;
mod pipeline;
mod progress;
mod render;
mod report;
mod resources;
mod standins;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use binaries::Binaries;
use collect::Collected;
use pipeline::{Pipeline, Shared};
use progress::Progress;
use report::Report;
use resources::{Endpoint, Resources};
use standins::StandIns;

#[derive(clap::Args)]
pub struct Args {
    /// Messages the producer sends.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    messages: u32,
    /// Use the SQS and Kinesis APIs at this URL (e.g. moto's) instead of the embedded stand-ins.
    /// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
    /// (`test` when unset), the region from AWS_REGION (default us-east-1).
    #[arg(long, value_name = "URL")]
    aws_endpoint: Option<String>,
    /// Where to write the trace and pathway map as JSON.
    #[arg(long, value_name = "FILE", default_value = "ddlambda-demo.json")]
    json: PathBuf,
    /// Directory holding `datadog-agent` and the demo functions (default: next to this binary,
    /// built with cargo when missing).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Function timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Show every span in the waterfall, the AWS SDK's own steps too.
    #[arg(long)]
    all_spans: bool,
    /// Show the functions' and extensions' log lines.
    #[arg(long)]
    verbose: bool,
    /// Keep the queue and stream at `--aws-endpoint` (they are deleted by default).
    #[arg(long)]
    keep: bool,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("executables: {0}")]
    Binaries(String),
    #[error("{call}: {message}")]
    Aws { call: String, message: String },
    #[error("{call}: the response has no {member}")]
    Missing { call: String, member: &'static str },
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("platform: {0}")]
    Platform(String),
    #[error("function {function} failed: {message}")]
    Function {
        function: &'static str,
        message: String,
    },
    #[error("{0}")]
    Io(String),
}

impl DemoError {
    /// An SDK error, with its source chain.
    fn aws<E: std::error::Error>(call: &str, e: E) -> Self {
        DemoError::Aws {
            call: call.to_owned(),
            message: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
        }
    }

    fn missing(call: &str, member: &'static str) -> Self {
        DemoError::Missing {
            call: call.to_owned(),
            member,
        }
    }
}

pub fn run(args: Args) -> ExitCode {
    let mut progress = Progress::new();
    let binaries = match Binaries::locate(args.bin_dir.clone(), &mut |m| progress.step(m)) {
        Ok(b) => b,
        Err(e) => {
            progress.finish();
            eprintln!("ddlambda demo: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match crate::runtime("demo") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(demo(&args, &binaries, &mut progress));
    progress.finish();
    match result {
        Ok(report) => {
            print!("{}", render::render(&report, args.all_spans));
            println!("\nWritten to {}", args.json.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ddlambda demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(
    args: &Args,
    binaries: &Binaries,
    progress: &mut Progress,
) -> Result<Report, DemoError> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let region = var("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned());
    // Held for the whole run: dropping it stops the stand-ins.
    let mut standins = None;
    let endpoint = match &args.aws_endpoint {
        Some(url) => Endpoint {
            url: url.clone(),
            region: region.clone(),
            access_key_id: var("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".to_owned()),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "test".to_owned()),
            session_token: var("AWS_SESSION_TOKEN"),
        },
        None => {
            progress.step("starting the embedded SQS and Kinesis stand-ins");
            let s = StandIns::start(&region)
                .await
                .map_err(|e| DemoError::Io(format!("starting the stand-ins: {e}")))?;
            let url = s.endpoint();
            standins = Some(s);
            Endpoint {
                url,
                region: region.clone(),
                access_key_id: "test".to_owned(),
                secret_access_key: "test".to_owned(),
                session_token: None,
            }
        }
    };
    // Real services keep names for a while after deletion; a fresh suffix avoids both reuse
    // and leftovers of an earlier run.
    let suffix = match &args.aws_endpoint {
        Some(_) => format!("-{}-{}", std::process::id(), unix_ms() % 1_000_000),
        None => String::new(),
    };
    progress.step(&format!(
        "creating the queue and the stream at {}",
        endpoint.url
    ));
    let resources = Resources::create(
        &endpoint,
        &format!("ddlambda-demo-orders{suffix}"),
        &format!("ddlambda-demo-events{suffix}"),
    )
    .await?;
    let out_dir = tempdir()?;
    let shared = Shared {
        binaries,
        endpoint: &endpoint,
        resources: &resources,
        out_dir: &out_dir.0,
        timeout: Duration::from_secs(args.timeout.max(1)),
        echo: args.verbose,
    };
    progress.step("starting demo-producer, demo-relay and demo-consumer with the extension");
    let pipeline = Pipeline::start(&shared).await?;
    let ran = pipeline
        .run(&resources, &region, args.messages as usize, progress)
        .await;
    progress.step("shutting the functions down (the extensions flush)");
    pipeline.shutdown().await;
    if args.aws_endpoint.is_some() && !args.keep {
        for problem in resources.delete().await {
            progress.step(&format!("cleanup: {problem}"));
        }
    }
    drop(standins);
    let invocations = ran?;

    progress.step("reading what the extensions flushed");
    let mut collected = Collected::default();
    for path in pipeline.outputs() {
        collected.read(path)?;
    }
    let report = Report::build(
        args.aws_endpoint
            .clone()
            .unwrap_or_else(|| "embedded".to_owned()),
        (&resources.queue_arn, &resources.stream_arn),
        args.messages as usize,
        invocations,
        collected,
    );
    let json = serde_json::to_vec_pretty(&report).map_err(|e| DemoError::Io(e.to_string()))?;
    std::fs::write(&args.json, json)
        .map_err(|e| DemoError::Io(format!("writing {}: {e}", args.json.display())))?;
    progress.step("done");
    Ok(report)
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// A private directory for the extensions' output, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> Result<TempDir, DemoError> {
    let dir = std::env::temp_dir().join(format!(
        "ddlambda-demo-{}-{}",
        std::process::id(),
        unix_ms()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| DemoError::Io(format!("creating {}: {e}", dir.display())))?;
    Ok(TempDir(dir))
}
