//! aws-sdk-sqs: SendMessage and SendMessageBatch get a `String` `_datadog` attribute.

use std::collections::HashMap;

use aws_sdk_sqs::operation::send_message::SendMessageInput;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_smithy_runtime_api::client::interceptors::context::Input;

use super::{DATADOG_KEY, MAX_MESSAGE_ATTRIBUTES, Skip, count, last_segment, produce_carrier};

pub(super) fn send_message(input: &mut Input) -> bool {
    let Some(m) = input.downcast_mut::<SendMessageInput>() else {
        return false;
    };
    let queue = last_segment(m.queue_url.as_deref().unwrap_or(""));
    let body = m.message_body.as_deref().unwrap_or("");
    inject(queue, body, &mut m.message_attributes);
    true
}

pub(super) fn send_message_batch(input: &mut Input) -> bool {
    let Some(b) = input.downcast_mut::<SendMessageBatchInput>() else {
        return false;
    };
    let queue = last_segment(b.queue_url.as_deref().unwrap_or("")).to_owned();
    for entry in b.entries.iter_mut().flatten() {
        inject(&queue, &entry.message_body, &mut entry.message_attributes);
    }
    true
}

fn inject(
    queue: &str,
    body: &str,
    attributes: &mut Option<HashMap<String, MessageAttributeValue>>,
) {
    let size = body.len() as u64 + attributes.as_ref().map_or(0, attributes_len);
    let Some(carrier) = produce_carrier("sqs", queue, size) else {
        return;
    };
    let attributes = attributes.get_or_insert_with(HashMap::new);
    if attributes.len() >= MAX_MESSAGE_ATTRIBUTES && !attributes.contains_key(DATADOG_KEY) {
        count(Err(Skip::AttributeLimit), "sqs");
        return;
    }
    let value = MessageAttributeValue::builder()
        .data_type("String")
        .string_value(serde_json::Value::Object(carrier).to_string())
        .build();
    if let Ok(value) = value {
        attributes.insert(DATADOG_KEY.to_owned(), value);
        count(Ok(()), "sqs");
    }
}

/// Attribute names, types and values, as the tracers count an SQS payload.
fn attributes_len(attributes: &HashMap<String, MessageAttributeValue>) -> u64 {
    attributes
        .iter()
        .map(|(k, v)| {
            k.len()
                + v.data_type.len()
                + v.string_value.as_ref().map_or(0, String::len)
                + v.binary_value.as_ref().map_or(0, |b| b.as_ref().len())
        })
        .sum::<usize>() as u64
}
