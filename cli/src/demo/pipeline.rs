//! The three functions on the local platform, each with the extension attached and its own
//! ports and sink file, and the run through them: producer → SQS → relay → Kinesis → consumer,
//! with [`event_source`] playing Lambda's event source mappings in between.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ddlambda_platform::{Echo, InvokeOptions, InvokeResult, Outcome, Platform, ShutdownReason};
use serde_json::{Value, json};

use super::DemoError;
use super::binaries::{self, Binaries};
use super::event_source::{self, KINESIS_BATCH, SQS_BATCH};
use super::progress::Progress;
use super::report::Invocation;
use super::resources::{Endpoint, Resources};

/// How long the queue or stream may take to show what was sent.
const DELIVERY_LIMIT: Duration = Duration::from_secs(60);

/// One function on its platform. The three run side by side, as in one account, so each
/// extension gets its own free loopback ports (a Lambda sandbox has them all to itself).
pub struct Function {
    pub name: &'static str,
    platform: Platform,
    /// The extension's `DDLAMBDA_LOCAL_OUTPUT`.
    pub output: PathBuf,
}

/// What every function gets, besides its own ports and sink file.
pub struct Shared<'a> {
    pub binaries: &'a Binaries,
    pub endpoint: &'a Endpoint,
    pub resources: &'a Resources,
    pub out_dir: &'a Path,
    pub timeout: Duration,
    pub echo: bool,
}

impl Function {
    /// Starts `binary` as `name` with the extension attached, and runs its init.
    pub async fn start(
        shared: &Shared<'_>,
        name: &'static str,
        binary: &str,
    ) -> Result<Self, DemoError> {
        let output = shared.out_dir.join(format!("{name}.jsonl"));
        let trace_port = free_tcp_port()?.to_string();
        let statsd_port = free_udp_port()?.to_string();
        let telemetry_port = free_tcp_port()?.to_string();
        let e = shared.endpoint;
        let mut builder = Platform::builder()
            .function(shared.binaries.path(binary))
            .extension(shared.binaries.path(binaries::EXTENSION))
            .function_name(name)
            .region(&e.region)
            .timeout(shared.timeout)
            .echo(if shared.echo { Echo::Stderr } else { Echo::Off })
            .env("AWS_ENDPOINT_URL", &e.url)
            .env("AWS_ACCESS_KEY_ID", &e.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &e.secret_access_key)
            .env("DEMO_QUEUE_URL", &shared.resources.queue_url)
            .env("DEMO_STREAM_NAME", &shared.resources.stream_name)
            .env("DD_DATA_STREAMS_ENABLED", "true")
            .env("DD_ENV", "demo")
            .env("DD_APM_RECEIVER_PORT", &trace_port)
            .env("DD_TRACE_AGENT_PORT", &trace_port)
            .env("DD_DOGSTATSD_PORT", &statsd_port)
            .env("DDLAMBDA_TELEMETRY_PORT", &telemetry_port)
            .env("DDLAMBDA_LOCAL_OUTPUT", output.to_string_lossy());
        if let Some(token) = &e.session_token {
            builder = builder.env("AWS_SESSION_TOKEN", token);
        }
        let platform = builder
            .build()
            .await
            .map_err(|e| DemoError::Platform(format!("{name}: {e}")))?;
        platform
            .start()
            .await
            .map_err(|e| DemoError::Platform(format!("{name} init: {e}")))?;
        Ok(Function {
            name,
            platform,
            output,
        })
    }

    /// Invokes with `event`; an error response or failed invocation is an error.
    async fn invoke(&self, event: &Value, records: usize) -> Result<Invocation, DemoError> {
        let bytes = serde_json::to_vec(event).map_err(|e| DemoError::Io(e.to_string()))?;
        let r: InvokeResult = self
            .platform
            .invoke(bytes, InvokeOptions::default())
            .await
            .map_err(|e| DemoError::Platform(format!("{}: {e}", self.name)))?;
        if let Outcome::Error(err) = &r.outcome {
            return Err(DemoError::Function {
                function: self.name,
                message: format!("{}: {}", err.error_type, String::from_utf8_lossy(&err.body)),
            });
        }
        if r.is_error() {
            return Err(DemoError::Function {
                function: self.name,
                message: r.report.status.as_str().to_owned(),
            });
        }
        Ok(Invocation {
            function: self.name.to_owned(),
            request_id: r.request_id,
            status: r.report.status.as_str().to_owned(),
            cold_start: r.cold_start,
            duration_ms: r.report.duration_ms,
            records,
        })
    }

    /// SHUTDOWN: the extension flushes everything it still holds.
    pub async fn shutdown(&self) {
        self.platform.shutdown(ShutdownReason::Spindown).await;
    }
}

/// The three functions.
pub struct Pipeline {
    pub producer: Function,
    pub relay: Function,
    pub consumer: Function,
}

impl Pipeline {
    pub async fn start(shared: &Shared<'_>) -> Result<Self, DemoError> {
        let (producer, relay, consumer) = tokio::try_join!(
            Function::start(shared, "demo-producer", binaries::PRODUCER),
            Function::start(shared, "demo-relay", binaries::RELAY),
            Function::start(shared, "demo-consumer", binaries::CONSUMER),
        )?;
        Ok(Pipeline {
            producer,
            relay,
            consumer,
        })
    }

    /// Sends `messages` through; the invocations in order.
    pub async fn run(
        &self,
        resources: &Resources,
        region: &str,
        messages: usize,
        progress: &mut Progress,
    ) -> Result<Vec<Invocation>, DemoError> {
        let mut invocations = Vec::new();
        progress.step(&format!(
            "invoking {} to send {messages} messages",
            self.producer.name
        ));
        invocations.push(
            self.producer
                .invoke(&json!({ "count": messages }), messages)
                .await?,
        );

        progress.step("SQS → demo-relay: receiving the messages");
        let records =
            event_source::receive_sqs(resources, region, messages, DELIVERY_LIMIT).await?;
        let events = event_source::batches(&records, SQS_BATCH);
        for (i, event) in events.iter().enumerate() {
            progress.step(&format!(
                "invoking {} with SQS batch {}/{}",
                self.relay.name,
                i + 1,
                events.len()
            ));
            let n = event["Records"].as_array().map_or(0, Vec::len);
            invocations.push(self.relay.invoke(event, n).await?);
        }

        progress.step("Kinesis → demo-consumer: reading the stream");
        let records =
            event_source::read_kinesis(resources, region, messages, DELIVERY_LIMIT).await?;
        let events = event_source::batches(&records, KINESIS_BATCH);
        for (i, event) in events.iter().enumerate() {
            progress.step(&format!(
                "invoking {} with Kinesis batch {}/{}",
                self.consumer.name,
                i + 1,
                events.len()
            ));
            let n = event["Records"].as_array().map_or(0, Vec::len);
            invocations.push(self.consumer.invoke(event, n).await?);
        }
        Ok(invocations)
    }

    /// Shuts every function down, together.
    pub async fn shutdown(&self) {
        tokio::join!(
            self.producer.shutdown(),
            self.relay.shutdown(),
            self.consumer.shutdown()
        );
    }

    pub fn outputs(&self) -> [&Path; 3] {
        [
            &self.producer.output,
            &self.relay.output,
            &self.consumer.output,
        ]
    }
}

fn free_tcp_port() -> Result<u16, DemoError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DemoError::Io(format!("no free TCP port on 127.0.0.1: {e}")))
}

fn free_udp_port() -> Result<u16, DemoError> {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| DemoError::Io(format!("no free UDP port on 127.0.0.1: {e}")))
}
