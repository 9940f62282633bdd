//! SQS over `AmazonSQS.*` (JSON 1.0): CreateQueue, GetQueueUrl, GetQueueAttributes,
//! SendMessage, SendMessageBatch, ReceiveMessage, DeleteMessage(Batch), DeleteQueue.

use std::collections::{BTreeMap, VecDeque};

use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

use super::{ACCOUNT, ApiError, ApiResult, epoch_secs, string};

/// SQS's limit on entries per batch and messages per receive.
const MAX_BATCH: usize = 10;

pub struct Sqs {
    endpoint: String,
    region: String,
    queues: BTreeMap<String, VecDeque<Message>>,
    next_id: u64,
}

struct Message {
    id: String,
    body: String,
    attributes: Value,
    sent_ms: u64,
}

impl Sqs {
    pub fn new(endpoint: &str, region: &str) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            region: region.to_owned(),
            queues: BTreeMap::new(),
            next_id: 0,
        }
    }

    pub fn call(&mut self, operation: &str, req: &Value) -> ApiResult {
        match operation {
            "CreateQueue" => {
                let name = string(req, "QueueName")?;
                if name.is_empty() || name.len() > 80 {
                    return Err(ApiError::invalid("QueueName"));
                }
                self.queues.entry(name.to_owned()).or_default();
                Ok(json!({"QueueUrl": self.url(name)}))
            }
            "GetQueueUrl" => {
                let name = string(req, "QueueName")?;
                self.queue(name)?;
                Ok(json!({"QueueUrl": self.url(name)}))
            }
            "GetQueueAttributes" => {
                let name = queue_name(req)?;
                let depth = self.queue(name)?.len();
                Ok(json!({"Attributes": {
                    "QueueArn": format!("arn:aws:sqs:{}:{ACCOUNT}:{name}", self.region),
                    "ApproximateNumberOfMessages": depth.to_string(),
                }}))
            }
            "SendMessage" => {
                let name = queue_name(req)?.to_owned();
                let (id, md5) = self.send(&name, req)?;
                Ok(json!({"MessageId": id, "MD5OfMessageBody": md5}))
            }
            "SendMessageBatch" => {
                let name = queue_name(req)?.to_owned();
                let entries = req
                    .get("Entries")
                    .and_then(Value::as_array)
                    .filter(|e| !e.is_empty() && e.len() <= MAX_BATCH)
                    .ok_or_else(|| ApiError::invalid("Entries (1 to 10)"))?;
                let mut successful = Vec::new();
                for entry in entries {
                    let id = string(entry, "Id")?;
                    let (message_id, md5) = self.send(&name, entry)?;
                    successful
                        .push(json!({"Id": id, "MessageId": message_id, "MD5OfMessageBody": md5}));
                }
                Ok(json!({"Successful": successful, "Failed": []}))
            }
            "ReceiveMessage" => {
                let name = queue_name(req)?.to_owned();
                let max = req
                    .get("MaxNumberOfMessages")
                    .and_then(Value::as_u64)
                    .map_or(1, |n| n.clamp(1, MAX_BATCH as u64) as usize);
                let queue = self.queue_mut(&name)?;
                let n = max.min(queue.len());
                let messages: Vec<Value> = queue.drain(..n).map(|m| m.received()).collect();
                Ok(json!({"Messages": messages}))
            }
            "DeleteMessage" => {
                self.queue(queue_name(req)?)?;
                Ok(json!({}))
            }
            "DeleteMessageBatch" => {
                self.queue(queue_name(req)?)?;
                let successful: Vec<Value> = req
                    .get("Entries")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.get("Id").cloned())
                    .map(|id| json!({"Id": id}))
                    .collect();
                Ok(json!({"Successful": successful, "Failed": []}))
            }
            "DeleteQueue" => {
                let name = queue_name(req)?.to_owned();
                self.queues.remove(&name);
                Ok(json!({}))
            }
            other => Err(ApiError::new(
                "UnsupportedOperation",
                format!("AmazonSQS.{other} is not served by the demo's stand-in"),
            )),
        }
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{ACCOUNT}/{name}", self.endpoint)
    }

    fn queue(&self, name: &str) -> Result<&VecDeque<Message>, ApiError> {
        self.queues.get(name).ok_or_else(|| no_queue(name))
    }

    fn queue_mut(&mut self, name: &str) -> Result<&mut VecDeque<Message>, ApiError> {
        self.queues.get_mut(name).ok_or_else(|| no_queue(name))
    }

    /// Appends one message (a SendMessage body or a batch entry); its id and body MD5.
    fn send(&mut self, queue: &str, m: &Value) -> Result<(String, String), ApiError> {
        let body = string(m, "MessageBody")?.to_owned();
        let attributes = match m.get("MessageAttributes") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(a @ Value::Object(_)) => a.clone(),
            Some(_) => return Err(ApiError::invalid("MessageAttributes")),
        };
        self.next_id += 1;
        let id = format!("00000000-0000-4000-8000-{:012x}", self.next_id);
        let md5 = md5_hex(&body);
        let message = Message {
            id: id.clone(),
            body,
            attributes,
            sent_ms: (epoch_secs() * 1e3) as u64,
        };
        self.queue_mut(queue)?.push_back(message);
        Ok((id, md5))
    }
}

impl Message {
    fn received(self) -> Value {
        let sent = self.sent_ms.to_string();
        json!({
            "MessageId": self.id,
            "ReceiptHandle": format!("receipt-{}", self.id),
            "MD5OfBody": md5_hex(&self.body),
            "Body": self.body,
            "Attributes": {
                "SentTimestamp": sent,
                "ApproximateFirstReceiveTimestamp": ((epoch_secs() * 1e3) as u64).to_string(),
                "ApproximateReceiveCount": "1",
                "SenderId": ACCOUNT,
            },
            "MessageAttributes": self.attributes,
        })
    }
}

/// The queue a request names by `QueueUrl` (its last path segment).
fn queue_name(req: &Value) -> Result<&str, ApiError> {
    let url = string(req, "QueueUrl")?;
    Ok(url.rsplit('/').next().unwrap_or(url))
}

fn no_queue(name: &str) -> ApiError {
    ApiError::new(
        "QueueDoesNotExist",
        format!("The specified queue {name} does not exist."),
    )
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
