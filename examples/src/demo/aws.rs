//! SDK clients for the demo functions, configured from the environment Lambda (or the local
//! platform) gives them, without `aws-config`: `AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`. Every client carries the
//! data-streams producer hook, [`ddlambda::aws::DataStreams`].

use std::env::var;

use lambda_runtime::Error;

/// A required environment variable, or an error naming it.
pub fn required(name: &str) -> Result<String, Error> {
    var(name).map_err(|_| format!("{name} is not set").into())
}

/// HTTPS (rustls with ring, the system's roots) for AWS, plain HTTP for a loopback endpoint.
fn http_client() -> aws_sdk_sqs::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

macro_rules! client {
    ($krate:ident) => {{
        let region = var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
        let credentials = $krate::config::Credentials::new(
            required("AWS_ACCESS_KEY_ID")?,
            required("AWS_SECRET_ACCESS_KEY")?,
            var("AWS_SESSION_TOKEN").ok(),
            None,
            "environment",
        );
        let mut conf = $krate::Config::builder()
            .behavior_version($krate::config::BehaviorVersion::latest())
            .region($krate::config::Region::new(region))
            .credentials_provider(credentials)
            .http_client(http_client())
            .interceptor(ddlambda::aws::DataStreams);
        if let Ok(url) = var("AWS_ENDPOINT_URL") {
            conf = conf.endpoint_url(url);
        }
        Ok($krate::Client::from_conf(conf.build()))
    }};
}

/// An SQS client with the producer hook.
#[allow(dead_code)] // each demo bin uses one of the two
pub fn sqs() -> Result<aws_sdk_sqs::Client, Error> {
    client!(aws_sdk_sqs)
}

/// A Kinesis client with the producer hook.
#[allow(dead_code)]
pub fn kinesis() -> Result<aws_sdk_kinesis::Client, Error> {
    client!(aws_sdk_kinesis)
}
