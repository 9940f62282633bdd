//! `datadog-agent`: the ddlambda Lambda extension. Wiring only: config → listeners → lifecycle.
//!
//! Start-up order, for a short init: the register call goes out first and everything else
//! (listeners, buffer, sink) is set up during its round trip; the Telemetry subscription and
//! the HTTP client's TLS set-up run after the first `/next` is in flight. If anything in
//! start-up fails, one line says what, and the extension only keeps calling `/next` so the
//! function is never blocked.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use ddlambda_extension::aggregate;
use ddlambda_extension::aggregate::metrics::MetricsAggregator;
use ddlambda_extension::aggregate::streams::{self, StreamsAggregator};
use ddlambda_extension::buffer::Buffer;
use ddlambda_extension::config::Config;
use ddlambda_extension::enhanced::{EnhancedConfig, InvocationTelemetry};
use ddlambda_extension::flush::Flusher;
use ddlambda_extension::flush::enrich::FunctionTags;
use ddlambda_extension::flush::retry::RetryPolicy;
use ddlambda_extension::flush::stats::Counters;
use ddlambda_extension::intake;
use ddlambda_extension::lifecycle::extensions_api::ExtensionsApi;
use ddlambda_extension::lifecycle::{self, Exit, Lifecycle, telemetry};
use ddlambda_extension::secrets::{ApiKeyResolver, Backoff};
use ddlambda_extension::sinks::{self, AnySink, Sink};

fn main() {
    let started = Instant::now();
    let (config, warnings) = Config::from_env();
    init_logging(&config.log_level);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(run(config, started));
    // Exit without waiting for listeners and background tasks: SHUTDOWN's flush is done.
    std::process::exit(code);
}

fn init_logging(level: &str) {
    let level = level
        .parse::<tracing_subscriber::filter::LevelFilter>()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}

/// The name to register under: the executable's file name, as Lambda requires.
fn extension_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "datadog-agent".to_owned())
}

async fn run(config: Config, started: Instant) -> i32 {
    let Some(runtime_api) = config.function.runtime_api.clone() else {
        tracing::error!("AWS_LAMBDA_RUNTIME_API is not set: not running as a Lambda extension");
        return 1;
    };
    let api = ExtensionsApi::new(runtime_api);
    let register = tokio::spawn({
        let api = api.clone();
        async move { api.register(&extension_name()).await }
    });

    let config = Arc::new(config);
    let counters = Arc::new(Counters::default());
    let buffer = Arc::new(Buffer::new(
        config.buffer_max_bytes,
        config.trace_enabled,
        counters.clone(),
    ));
    let listeners = bind_listeners(&config).await;

    let registration = match register.await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return fail(&format!("registering with the Extensions API failed: {e}")),
        Err(e) => return fail(&format!("registering with the Extensions API failed: {e}")),
    };
    let id = registration.extension_id.clone();

    let (listeners, (sink, api_key_resolver)) =
        match listeners.and_then(|l| Ok((l, make_sink(&config)?))) {
            Ok(ok) => ok,
            Err(e) => {
                tracing::error!("start-up failed, running idle so the function is unaffected: {e}");
                return exit_code(lifecycle::idle(&api, &id).await);
            }
        };

    let tags = FunctionTags::new(&config, registration.account_id.as_deref());
    buffer.set_function_tags(tags.clone());
    let policy = RetryPolicy {
        attempt_timeout: config.flush_timeout,
        ..RetryPolicy::default()
    };
    let dsm = Arc::new(StreamsAggregator::new(streams::BUCKET));
    let metrics = Arc::new(MetricsAggregator::new(aggregate::metrics::MAX_CONTEXTS));
    let enhanced = Arc::new(InvocationTelemetry::new(
        EnhancedConfig::from_config(&config, &tags),
        metrics.clone(),
        buffer.clone(),
    ));
    let flusher = Arc::new(
        Flusher::new(buffer.clone(), sink, tags, counters, policy)
            .with_drain(dsm.clone())
            .with_drain(metrics.clone())
            .with_loss_metrics(metrics.clone()),
    );

    let (records_tx, records) = mpsc::unbounded_channel();
    let telemetry_port = listeners.telemetry.local_addr().map(|a| a.port()).ok();
    tokio::spawn(telemetry::serve(listeners.telemetry, records_tx));
    intake::serve(
        listeners.intake,
        intake::Destinations {
            buffer: buffer.clone(),
            streams: dsm,
            metrics,
        },
    );

    let lifecycle = Lifecycle {
        api: api.clone(),
        extension_id: id.clone(),
        config: config.clone(),
        buffer,
        flusher: flusher.clone(),
        records,
        observers: vec![enhanced],
        api_key_resolver,
    };
    tracing::info!(
        "datadog-agent ready in {:.1} ms (flush strategy {}, {} sink)",
        started.elapsed().as_secs_f64() * 1e3,
        config.flush_strategy,
        if config.api_key.is_some() {
            "Datadog"
        } else if config.api_key_secret.is_some() {
            "Datadog (API key from Secrets Manager)"
        } else {
            "local"
        },
    );
    let on_first_next = move || {
        // Off the init path: the subscription round trip and the TLS set-up.
        if let Some(port) = telemetry_port {
            let destination = format!("http://{}:{port}/", config.telemetry_host);
            tokio::spawn(async move {
                if let Err(e) = api.subscribe_telemetry(&id, &destination).await {
                    tracing::warn!(
                        "Telemetry API subscription failed ({e}); invocations end on the wrapper's signal, or their data is flushed at the next INVOKE or at SHUTDOWN"
                    );
                }
            });
        }
        // The sink knows what it has to prepare (nothing, for the local one).
        tokio::task::spawn_blocking(move || flusher.sink().warm_up());
    };
    exit_code(lifecycle.run(on_first_next).await)
}

struct Listeners {
    telemetry: TcpListener,
    intake: intake::Listeners,
}

async fn bind_listeners(config: &Config) -> Result<Listeners, String> {
    let telemetry = telemetry::bind(config.telemetry_port).await.map_err(|e| {
        format!(
            "cannot listen for Telemetry records on 0.0.0.0:{}: {e}",
            config.telemetry_port
        )
    })?;
    let intake = intake::bind(config).await?;
    Ok(Listeners { telemetry, intake })
}

/// The sink, and the Secrets Manager reader of its API key when it has one. With an OTLP
/// endpoint, OTLP gets traces and metrics, beside the Datadog sink (which then gets everything)
/// or the local one (which gets what OTLP cannot carry).
fn make_sink(config: &Config) -> Result<(AnySink, Option<Arc<ApiKeyResolver>>), String> {
    let (sink, resolver) = make_datadog_or_local_sink(config)?;
    let sink = match &config.otlp {
        Ok(Some(otlp)) => {
            let otlp = sinks::otlp::OtlpSink::new(otlp.clone());
            let sink = AnySink::Otlp(sinks::OtlpFanOut::new(otlp, sink));
            tracing::info!("sinks: {}", sink.describe());
            sink
        }
        Ok(None) => sink.into(),
        Err(e) => {
            tracing::error!("{e}");
            sink.into()
        }
    };
    Ok((sink, resolver))
}

fn make_datadog_or_local_sink(
    config: &Config,
) -> Result<(sinks::Beside, Option<Arc<ApiKeyResolver>>), String> {
    let datadog = |api_key: String| {
        sinks::datadog::DatadogSink::new(sinks::datadog::DatadogConfig {
            api_key,
            trace_base: config.trace_intake_base(),
            telemetry_base: config.telemetry_intake_base(),
            metrics_base: config.metrics_intake_base(),
            env: config.env.clone().unwrap_or_default(),
        })
        .with_proxy_intakes(config.proxy_intakes.clone())
    };
    match (&config.api_key, &config.api_key_secret) {
        (Some(key), _) => Ok((sinks::Beside::Datadog(datadog(key.clone())), None)),
        // The key is read from Secrets Manager off the init path: the sink's warm-up (after
        // the first `/next`) starts the read, and sends wait for it.
        (None, Some(secret)) => {
            let resolver = ApiKeyResolver::new(secret.clone(), Backoff::default());
            let sink = datadog(String::new()).with_api_key_resolver(resolver.clone());
            Ok((sinks::Beside::Datadog(sink), Some(resolver)))
        }
        (None, None) => sinks::local::LocalSink::new(config.local_output.as_deref())
            .map(|s| (sinks::Beside::Local(s), None))
            .map_err(|e| {
                format!(
                    "cannot open DDLAMBDA_LOCAL_OUTPUT={:?}: {e}",
                    config.local_output.as_deref().unwrap_or("-")
                )
            }),
    }
}

/// Logs why the extension cannot run at all and returns its exit code.
fn fail(why: &str) -> i32 {
    tracing::error!("{why}");
    1
}

fn exit_code(exit: Exit) -> i32 {
    match exit {
        Exit::Shutdown => 0,
        Exit::ApiError(e) => {
            tracing::error!("the Extensions API failed: {e}");
            1
        }
    }
}
