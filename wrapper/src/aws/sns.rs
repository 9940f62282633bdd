//! aws-sdk-sns: Publish and PublishBatch get a `Binary` `_datadog` attribute (the JSON bytes),
//! as the tracers send it. The topic tag is the full topic ARN, as Python and JS tag it (and as
//! datadog-lambda tags the consume side).

use std::collections::HashMap;

use aws_sdk_sns::operation::publish::PublishInput;
use aws_sdk_sns::operation::publish_batch::PublishBatchInput;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_smithy_runtime_api::client::interceptors::context::Input;
use aws_smithy_types::Blob;

use super::{DATADOG_KEY, MAX_MESSAGE_ATTRIBUTES, Skip, count, produce_carrier};

pub(super) fn publish(input: &mut Input) -> bool {
    let Some(p) = input.downcast_mut::<PublishInput>() else {
        return false;
    };
    let topic = p
        .topic_arn
        .as_deref()
        .or(p.target_arn.as_deref())
        .unwrap_or("")
        .to_owned();
    let message = p.message.as_deref().unwrap_or("");
    inject(&topic, message, &mut p.message_attributes);
    true
}

pub(super) fn publish_batch(input: &mut Input) -> bool {
    let Some(b) = input.downcast_mut::<PublishBatchInput>() else {
        return false;
    };
    let topic = b.topic_arn.clone().unwrap_or_default();
    for entry in b.publish_batch_request_entries.iter_mut().flatten() {
        inject(&topic, &entry.message, &mut entry.message_attributes);
    }
    true
}

fn inject(
    topic: &str,
    message: &str,
    attributes: &mut Option<HashMap<String, MessageAttributeValue>>,
) {
    let size = message.len() as u64 + attributes.as_ref().map_or(0, attributes_len);
    let Some(carrier) = produce_carrier("sns", topic, size) else {
        return;
    };
    let attributes = attributes.get_or_insert_with(HashMap::new);
    if attributes.len() >= MAX_MESSAGE_ATTRIBUTES && !attributes.contains_key(DATADOG_KEY) {
        count(Err(Skip::AttributeLimit), "sns");
        return;
    }
    let json = serde_json::Value::Object(carrier).to_string();
    let value = MessageAttributeValue::builder()
        .data_type("Binary")
        .binary_value(Blob::new(json.into_bytes()))
        .build();
    if let Ok(value) = value {
        attributes.insert(DATADOG_KEY.to_owned(), value);
        count(Ok(()), "sns");
    }
}

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
