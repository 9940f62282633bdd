//! Kinesis over `Kinesis_20131202.*` (JSON 1.1), one shard per stream: CreateStream,
//! DescribeStreamSummary, ListShards, PutRecord, PutRecords, GetShardIterator, GetRecords,
//! DeleteStream. Shard iterators are `<stream>/<position>`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{ACCOUNT, ApiError, ApiResult, epoch_secs, string};

/// The only shard of every stream.
const SHARD: &str = "shardId-000000000000";
/// Kinesis's limits: records per PutRecords, per GetRecords, bytes per record.
const MAX_PUT: usize = 500;
const MAX_GET: usize = 10_000;
const MAX_RECORD_BYTES: usize = 1024 * 1024;

pub struct Kinesis {
    region: String,
    streams: BTreeMap<String, Stream>,
}

struct Stream {
    created: f64,
    records: Vec<Record>,
}

struct Record {
    data: String,
    partition_key: String,
    arrival: f64,
}

impl Kinesis {
    pub fn new(region: &str) -> Self {
        Self {
            region: region.to_owned(),
            streams: BTreeMap::new(),
        }
    }

    pub fn call(&mut self, operation: &str, req: &Value) -> ApiResult {
        match operation {
            "CreateStream" => {
                let name = string(req, "StreamName")?;
                if self.streams.contains_key(name) {
                    return Err(ApiError::new(
                        "ResourceInUseException",
                        format!("Stream {name} already exists"),
                    ));
                }
                let stream = Stream {
                    created: epoch_secs(),
                    records: Vec::new(),
                };
                self.streams.insert(name.to_owned(), stream);
                Ok(json!({}))
            }
            "DescribeStreamSummary" => {
                let name = stream_name(req)?;
                let stream = self.stream(name)?;
                Ok(json!({"StreamDescriptionSummary": {
                    "StreamName": name,
                    "StreamARN": self.arn(name),
                    "StreamStatus": "ACTIVE",
                    "StreamModeDetails": {"StreamMode": "PROVISIONED"},
                    "RetentionPeriodHours": 24,
                    "StreamCreationTimestamp": stream.created,
                    "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
                    "EncryptionType": "NONE",
                    "OpenShardCount": 1,
                    "ConsumerCount": 0,
                }}))
            }
            "ListShards" => {
                self.stream(stream_name(req)?)?;
                Ok(json!({"Shards": [{
                    "ShardId": SHARD,
                    "HashKeyRange": {
                        "StartingHashKey": "0",
                        "EndingHashKey": u128::MAX.to_string(),
                    },
                    "SequenceNumberRange": {"StartingSequenceNumber": sequence_number(0)},
                }]}))
            }
            "PutRecord" => {
                let name = stream_name(req)?.to_owned();
                let seq = self.put(&name, req)?;
                Ok(json!({"ShardId": SHARD, "SequenceNumber": seq}))
            }
            "PutRecords" => {
                let name = stream_name(req)?.to_owned();
                let records = req
                    .get("Records")
                    .and_then(Value::as_array)
                    .filter(|r| !r.is_empty() && r.len() <= MAX_PUT)
                    .ok_or_else(|| ApiError::invalid("Records (1 to 500)"))?;
                // Validate all first: a bad entry refuses the call and appends nothing.
                for r in records {
                    record_data(r)?;
                }
                let mut out = Vec::with_capacity(records.len());
                for r in records {
                    out.push(json!({"ShardId": SHARD, "SequenceNumber": self.put(&name, r)?}));
                }
                Ok(json!({"FailedRecordCount": 0, "Records": out}))
            }
            "GetShardIterator" => {
                let name = stream_name(req)?;
                let len = self.stream(name)?.records.len();
                if string(req, "ShardId")? != SHARD {
                    return Err(not_found(&format!("shard {:?}", req["ShardId"])));
                }
                let at = |member: &str| -> Result<usize, ApiError> {
                    string(req, member)?
                        .parse::<usize>()
                        .map_err(|_| ApiError::invalid(member))
                };
                let position = match string(req, "ShardIteratorType")? {
                    "TRIM_HORIZON" => 0,
                    "LATEST" => len,
                    "AT_SEQUENCE_NUMBER" => at("StartingSequenceNumber")?,
                    "AFTER_SEQUENCE_NUMBER" => at("StartingSequenceNumber")? + 1,
                    _ => return Err(ApiError::invalid("ShardIteratorType")),
                };
                Ok(json!({"ShardIterator": format!("{name}/{}", position.min(len))}))
            }
            "GetRecords" => {
                let iterator = string(req, "ShardIterator")?;
                let (name, position) = iterator
                    .rsplit_once('/')
                    .and_then(|(n, p)| Some((n, p.parse::<usize>().ok()?)))
                    .ok_or_else(|| {
                        ApiError::new("InvalidArgumentException", "bad ShardIterator")
                    })?;
                let limit = req
                    .get("Limit")
                    .and_then(Value::as_u64)
                    .map_or(MAX_GET, |n| (n as usize).clamp(1, MAX_GET));
                let stream = self.stream(name)?;
                let from = position.min(stream.records.len());
                let to = (from + limit).min(stream.records.len());
                let records: Vec<Value> = stream.records[from..to]
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        json!({
                            "SequenceNumber": sequence_number(from + i),
                            "ApproximateArrivalTimestamp": r.arrival,
                            "Data": r.data,
                            "PartitionKey": r.partition_key,
                        })
                    })
                    .collect();
                Ok(json!({
                    "Records": records,
                    "NextShardIterator": format!("{name}/{to}"),
                    "MillisBehindLatest": 0,
                }))
            }
            "DeleteStream" => {
                let name = stream_name(req)?.to_owned();
                self.streams.remove(&name);
                Ok(json!({}))
            }
            other => Err(ApiError::new(
                "UnknownOperationException",
                format!("Kinesis_20131202.{other} is not served by the demo's stand-in"),
            )),
        }
    }

    fn arn(&self, name: &str) -> String {
        format!("arn:aws:kinesis:{}:{ACCOUNT}:stream/{name}", self.region)
    }

    fn stream(&self, name: &str) -> Result<&Stream, ApiError> {
        self.streams
            .get(name)
            .ok_or_else(|| not_found(&format!("Stream {name}")))
    }

    /// Appends one record; its sequence number.
    fn put(&mut self, name: &str, r: &Value) -> Result<String, ApiError> {
        let data = record_data(r)?.to_owned();
        let partition_key = string(r, "PartitionKey")?.to_owned();
        let stream = self
            .streams
            .get_mut(name)
            .ok_or_else(|| not_found(&format!("Stream {name}")))?;
        stream.records.push(Record {
            data,
            partition_key,
            // Kinesis keeps milliseconds.
            arrival: (epoch_secs() * 1e3).round() / 1e3,
        });
        Ok(sequence_number(stream.records.len() - 1))
    }
}

/// A record's base64 `Data`, checked to decode and to fit Kinesis's record size.
fn record_data(r: &Value) -> Result<&str, ApiError> {
    let data = string(r, "Data")?;
    let bytes = STANDARD
        .decode(data)
        .map_err(|_| ApiError::invalid("Data (base64)"))?;
    let key = string(r, "PartitionKey")?;
    if bytes.len() + key.len() > MAX_RECORD_BYTES {
        return Err(ApiError::new(
            "ValidationException",
            "record data and partition key exceed 1 MiB",
        ));
    }
    Ok(data)
}

/// The stream a request names by `StreamName` or `StreamARN`.
fn stream_name(req: &Value) -> Result<&str, ApiError> {
    if let Some(name) = req.get("StreamName").and_then(Value::as_str) {
        return Ok(name);
    }
    let arn = string(req, "StreamARN")?;
    Ok(arn.rsplit('/').next().unwrap_or(arn))
}

/// Sequence numbers are decimal strings; position `i` of the shard.
fn sequence_number(i: usize) -> String {
    format!("{i:021}")
}

fn not_found(what: &str) -> ApiError {
    ApiError::new("ResourceNotFoundException", format!("{what} not found"))
}
