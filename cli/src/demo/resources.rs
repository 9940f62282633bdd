//! The pipeline's queue and stream, created (and deleted afterwards) through the AWS SDK against
//! the stand-ins or `--aws-endpoint`: the same calls either way.

use super::DemoError;

/// SDK clients and what the demo created with them.
pub struct Resources {
    pub sqs: aws_sdk_sqs::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub stream_name: String,
    pub stream_arn: String,
}

/// Where and as whom the clients connect.
pub struct Endpoint {
    pub url: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// HTTPS (rustls with ring, the system's roots) for AWS, plain HTTP for stand-ins and moto.
fn http_client() -> aws_sdk_sqs::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

macro_rules! client {
    ($krate:ident, $e:expr) => {{
        let e: &Endpoint = $e;
        let conf = $krate::Config::builder()
            .behavior_version($krate::config::BehaviorVersion::latest())
            .region($krate::config::Region::new(e.region.clone()))
            .endpoint_url(&e.url)
            .credentials_provider($krate::config::Credentials::new(
                &e.access_key_id,
                &e.secret_access_key,
                e.session_token.clone(),
                None,
                "ddlambda-demo",
            ))
            .http_client(http_client())
            .build();
        $krate::Client::from_conf(conf)
    }};
}

impl Resources {
    /// Creates the queue and the one-shard stream named `queue` and `stream`.
    pub async fn create(endpoint: &Endpoint, queue: &str, stream: &str) -> Result<Self, DemoError> {
        let sqs = client!(aws_sdk_sqs, endpoint);
        let kinesis = client!(aws_sdk_kinesis, endpoint);
        let queue_url = sqs
            .create_queue()
            .queue_name(queue)
            .send()
            .await
            .map_err(|e| DemoError::aws("SQS CreateQueue", e))?
            .queue_url
            .ok_or_else(|| DemoError::missing("SQS CreateQueue", "QueueUrl"))?;
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| DemoError::aws("SQS GetQueueAttributes", e))?
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .ok_or_else(|| DemoError::missing("SQS GetQueueAttributes", "QueueArn"))?;
        kinesis
            .create_stream()
            .stream_name(stream)
            .shard_count(1)
            .send()
            .await
            .map_err(|e| DemoError::aws("Kinesis CreateStream", e))?;
        let stream_arn = Self::wait_active(&kinesis, stream).await?;
        Ok(Self {
            sqs,
            kinesis,
            queue_url,
            queue_arn,
            stream_name: stream.to_owned(),
            stream_arn,
        })
    }

    /// Polls `DescribeStreamSummary` until the stream is ACTIVE (real Kinesis takes seconds);
    /// its ARN.
    async fn wait_active(
        kinesis: &aws_sdk_kinesis::Client,
        stream: &str,
    ) -> Result<String, DemoError> {
        use aws_sdk_kinesis::types::StreamStatus;
        for _ in 0..120 {
            let summary = kinesis
                .describe_stream_summary()
                .stream_name(stream)
                .send()
                .await
                .map_err(|e| DemoError::aws("Kinesis DescribeStreamSummary", e))?
                .stream_description_summary
                .ok_or_else(|| {
                    DemoError::missing("Kinesis DescribeStreamSummary", "StreamDescriptionSummary")
                })?;
            if summary.stream_status == StreamStatus::Active {
                return Ok(summary.stream_arn);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(DemoError::Timeout(format!(
            "stream {stream} to become ACTIVE"
        )))
    }

    /// Deletes the queue and the stream; failures are reported, not fatal.
    pub async fn delete(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self
            .sqs
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await
        {
            problems.push(DemoError::aws("SQS DeleteQueue", e).to_string());
        }
        let deleted = self
            .kinesis
            .delete_stream()
            .stream_name(&self.stream_name)
            .send()
            .await;
        if let Err(e) = deleted {
            problems.push(DemoError::aws("Kinesis DeleteStream", e).to_string());
        }
        problems
    }
}
