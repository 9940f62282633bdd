//! Producer hooks for the AWS SDK (feature `aws-sdk`): one interceptor, [`DataStreams`], for
//! aws-sdk-sqs (SendMessage, SendMessageBatch), aws-sdk-sns (Publish, PublishBatch) and
//! aws-sdk-kinesis (PutRecord, PutRecords). For every message it sets a `direction:out`
//! data-streams checkpoint ([`crate::streams::produce`], parented per [`crate::streams::Parent`])
//! and injects `_datadog` — the trace context of the invocation's span and
//! `dd-pathway-ctx-base64` — the way the tracers do:
//!
//! - SQS: a `String` message attribute holding the JSON; not injected when the message already
//!   has 10 attributes (SQS's limit).
//! - SNS: a `Binary` message attribute (filter policies fail silently on JSON strings); same
//!   10-attribute limit.
//! - Kinesis: a `_datadog` key inside the record's data, only when the data is a JSON object
//!   and the record (data + partition key) stays within 1 MiB.
//!
//! A skipped injection is counted ([`injection_counts`]) and logged at debug, never an error to
//! the caller: the interceptor always lets the request through. The checkpoint is set even when
//! the context cannot travel (the message is produced all the same; its consumer starts a new
//! pathway). Payload sizes are measured before injection (body plus existing attributes).
//!
//! ```ignore
//! let sqs = aws_sdk_sqs::Client::from_conf(
//!     aws_sdk_sqs::config::Builder::from(&sdk_config)
//!         .interceptor(ddlambda::aws::DataStreams)
//!         .build(),
//! );
//! ```

mod kinesis;
mod sns;
mod sqs;

use std::sync::atomic::{AtomicU64, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{Map, Value};

use crate::streams;

/// The carrier key tracers use in message attributes and Kinesis data.
pub const DATADOG_KEY: &str = "_datadog";
/// SQS and SNS accept at most this many message attributes.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// Kinesis record limit (data plus partition key).
pub const MAX_KINESIS_RECORD_BYTES: usize = 1024 * 1024;

/// The interceptor; register it on each SQS, SNS and Kinesis client config.
#[derive(Debug, Clone, Copy, Default)]
pub struct DataStreams;

impl Intercept for DataStreams {
    fn name(&self) -> &'static str {
        "ddlambda::aws::DataStreams"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        // Each hook returns false when the input is not its operation.
        let _ = sqs::send_message(input)
            || sqs::send_message_batch(input)
            || sns::publish(input)
            || sns::publish_batch(input)
            || kinesis::put_record(input)
            || kinesis::put_records(input);
        Ok(())
    }
}

/// What the hooks did since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectionCounts {
    /// Messages that received `_datadog`.
    pub injected: u64,
    /// SQS/SNS messages that already had 10 attributes.
    pub skipped_attribute_limit: u64,
    /// Kinesis records that would have exceeded 1 MiB.
    pub skipped_too_large: u64,
    /// Kinesis records whose data is not a JSON object.
    pub skipped_not_json: u64,
}

static INJECTED: AtomicU64 = AtomicU64::new(0);
static SKIPPED_ATTRIBUTE_LIMIT: AtomicU64 = AtomicU64::new(0);
static SKIPPED_TOO_LARGE: AtomicU64 = AtomicU64::new(0);
static SKIPPED_NOT_JSON: AtomicU64 = AtomicU64::new(0);

/// The counters of [`InjectionCounts`].
pub fn injection_counts() -> InjectionCounts {
    InjectionCounts {
        injected: INJECTED.load(Ordering::Relaxed),
        skipped_attribute_limit: SKIPPED_ATTRIBUTE_LIMIT.load(Ordering::Relaxed),
        skipped_too_large: SKIPPED_TOO_LARGE.load(Ordering::Relaxed),
        skipped_not_json: SKIPPED_NOT_JSON.load(Ordering::Relaxed),
    }
}

fn produce_carrier(kind: &str, topic: &str, payload_size: u64) -> Option<Map<String, Value>> {
    streams::produce_carrier(kind, topic, payload_size)
}

#[derive(Debug, Clone, Copy)]
enum Skip {
    AttributeLimit,
    TooLarge,
    NotJson,
}

fn count(outcome: Result<(), Skip>, what: &str) {
    let counter = match outcome {
        Ok(()) => &INJECTED,
        Err(Skip::AttributeLimit) => &SKIPPED_ATTRIBUTE_LIMIT,
        Err(Skip::TooLarge) => &SKIPPED_TOO_LARGE,
        Err(Skip::NotJson) => &SKIPPED_NOT_JSON,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    if let Err(skip) = outcome {
        tracing::debug!(?skip, "{what}: _datadog not injected");
    }
}

/// The last `/` segment (queue name of a queue URL).
fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}
