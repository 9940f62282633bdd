//! `ddlambda invoke`: runs a function (and extensions) on the local Lambda platform, prints the
//! responses, the REPORT lines and a timeline summary; exits non-zero if any invocation failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ddlambda_platform::{
    Faults, InvokeOptions, InvokeResult, Outcome, Platform, ShutdownPoint, ShutdownReason,
    TelemetryFaults, Timeline,
};

#[derive(clap::Args)]
pub struct Args {
    /// The function executable (Lambda's `bootstrap`).
    #[arg(long)]
    function: PathBuf,
    /// An extension executable (repeatable); it registers under its file name.
    #[arg(long = "extension")]
    extensions: Vec<PathBuf>,
    /// The event JSON file (`-` for stdin).
    #[arg(long)]
    event: PathBuf,
    /// How many times to invoke.
    #[arg(long, default_value_t = 1)]
    times: u32,
    /// Function timeout in ms.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// Memory size in MB (enforced on the function process).
    #[arg(long, default_value_t = 128)]
    memory_mb: u32,
    /// Extra environment for the function and extensions, `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Pass this shell's environment on to the children (Lambda starts from a clean one).
    #[arg(long)]
    inherit_env: bool,
    /// `AWS_LAMBDA_FUNCTION_NAME` (default: the function's file name).
    #[arg(long)]
    name: Option<String>,
    /// The X-Ray header to invoke with (default: a fresh unsampled one per invocation).
    #[arg(long)]
    xray_header: Option<String>,
    /// Force a cold start before every invocation (shut down with `spindown` in between).
    #[arg(long)]
    cold: bool,
    /// Fault: send SHUTDOWN at `init`, `invoke` or `runtime-done`.
    #[arg(long, value_parser = parse_point)]
    shutdown_at: Option<ShutdownPoint>,
    /// Fault: delay every telemetry batch by this many ms.
    #[arg(long)]
    telemetry_delay_ms: Option<u64>,
    /// Fault: drop every n-th telemetry batch.
    #[arg(long)]
    telemetry_drop_every: Option<u32>,
    /// Fault: send every telemetry batch twice.
    #[arg(long)]
    telemetry_duplicate: bool,
    /// Print every timeline event, not only the summary.
    #[arg(long)]
    verbose: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn parse_point(s: &str) -> Result<ShutdownPoint, String> {
    match s {
        "init" => Ok(ShutdownPoint::Init),
        "invoke" => Ok(ShutdownPoint::Invoke),
        "runtime-done" => Ok(ShutdownPoint::RuntimeDone),
        _ => Err(format!("{s:?}: use init, invoke or runtime-done")),
    }
}

pub fn run(args: Args) -> ExitCode {
    let event = if args.event.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
    } else {
        std::fs::read(&args.event)
    };
    let event = match event {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ddlambda invoke: cannot read {}: {e}", args.event.display());
            return ExitCode::from(2);
        }
    };
    // Lambda's Invoke API refuses a payload that is not JSON; so does this.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&event) {
        eprintln!(
            "ddlambda invoke: {} is not JSON ({e}); Lambda would refuse it",
            args.event.display()
        );
        return ExitCode::from(2);
    }
    let rt = match crate::runtime("invoke") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(invoke(args, event))
}

async fn invoke(args: Args, event: Vec<u8>) -> ExitCode {
    let faults = Faults {
        telemetry: TelemetryFaults {
            delay: Duration::from_millis(args.telemetry_delay_ms.unwrap_or(0)),
            drop_every: args.telemetry_drop_every,
            duplicate: args.telemetry_duplicate,
        },
        kill_function_after: None,
        shutdown_at: args.shutdown_at,
    };
    let mut builder = Platform::builder()
        .function(&args.function)
        .timeout(Duration::from_millis(args.timeout_ms))
        .memory_mb(args.memory_mb)
        .inherit_env(args.inherit_env)
        .faults(faults);
    for ext in &args.extensions {
        builder = builder.extension(ext);
    }
    for (k, v) in &args.env {
        builder = builder.env(k, v);
    }
    if let Some(name) = &args.name {
        builder = builder.function_name(name);
    }
    let platform = match builder.build().await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ddlambda invoke: {e}");
            return ExitCode::from(2);
        }
    };
    let mut results = Vec::new();
    for i in 0..args.times {
        if args.cold && i > 0 {
            platform.shutdown(ShutdownReason::Spindown).await;
        }
        let opts = InvokeOptions {
            xray_header: args.xray_header.clone(),
            ..Default::default()
        };
        match platform.invoke(event.clone(), opts).await {
            Ok(result) => {
                print_result(&result);
                results.push(result);
            }
            Err(e) => {
                eprintln!("ddlambda invoke: {e}");
                return ExitCode::from(2);
            }
        }
    }
    platform.shutdown(ShutdownReason::Spindown).await;
    let timeline = platform.timeline();
    print_summary(&timeline, &results);
    if args.verbose {
        println!("\nTimeline:\n{timeline}");
    }
    if results.iter().any(InvokeResult::is_error) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_result(r: &InvokeResult) {
    match &r.outcome {
        Outcome::Response(body) => println!("Response: {}", String::from_utf8_lossy(body)),
        Outcome::Error(e) => println!(
            "Error ({}): {}",
            e.error_type,
            String::from_utf8_lossy(&e.body)
        ),
    }
    println!("{}", r.report);
}

fn print_summary(timeline: &Timeline, results: &[InvokeResult]) {
    println!("\nSummary:");
    for name in timeline.extension_names() {
        let inits: Vec<String> = timeline
            .extension_init_times(&name)
            .iter()
            .map(|d| format!("{:.2} ms", ms(*d)))
            .collect();
        println!(
            "  extension {name}: init (exec → first /next) {}",
            inits.join(", ")
        );
        for r in results {
            if let Some(d) = timeline.post_runtime_duration(&r.request_id, &name) {
                println!(
                    "    {}: post-runtime (runtimeDone → /next) {:.2} ms",
                    r.request_id,
                    ms(d)
                );
            }
        }
    }
    for r in results {
        println!(
            "  {}: {}{} runtime {:.2} ms, total {:.2} ms",
            r.request_id,
            r.report.status.as_str(),
            if r.cold_start { " (cold)" } else { "" },
            ms(r.runtime_duration),
            r.report.duration_ms
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
