//! One Secrets Manager call, `GetSecretValue`, over the AWS JSON 1.1 protocol: where to send it,
//! how to sign it, and what its answers and errors mean.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::sigv4::{self, Credentials, Scope};

/// The service name in the signature's scope.
const SERVICE: &str = "secretsmanager";

/// Where the secret is and how to reach it, read once from the environment.
#[derive(Debug, Clone)]
pub struct SecretsManagerConfig {
    /// `DD_API_KEY_SECRET_ARN`: the secret's ARN (or, accepted too, its name).
    pub secret_id: String,
    /// The secret's region: from the ARN, else `AWS_REGION`.
    pub region: String,
    /// Base URL: `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`, else the regional
    /// endpoint of the ARN's partition.
    pub endpoint: String,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; `None` when the
    /// first two are not both set (resolution then fails with a clear error).
    pub credentials: Option<Credentials>,
}

impl SecretsManagerConfig {
    /// `Ok(None)` without `DD_API_KEY_SECRET_ARN`; an error when it names no region.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(secret_id) = get("DD_API_KEY_SECRET_ARN") else {
            return Ok(None);
        };
        let arn = SecretArn::parse(&secret_id);
        let region = match &arn {
            Some(a) => a.region.clone(),
            // A secret name instead of an ARN: GetSecretValue accepts it, in the function's
            // own region.
            None => get("AWS_REGION")
                .or_else(|| get("AWS_DEFAULT_REGION"))
                .ok_or_else(|| {
                    format!(
                        "DD_API_KEY_SECRET_ARN={secret_id:?} is not a Secrets Manager ARN \
                         (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>) and \
                         AWS_REGION is not set"
                    )
                })?,
        };
        let endpoint = get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .or_else(|| get("AWS_ENDPOINT_URL"))
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| {
                let suffix = match arn.as_ref().map(|a| a.partition.as_str()) {
                    Some("aws-cn") => "amazonaws.com.cn",
                    _ => "amazonaws.com",
                };
                format!("https://secretsmanager.{region}.{suffix}")
            });
        let credentials = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
                access_key_id,
                secret_access_key,
                session_token: get("AWS_SESSION_TOKEN"),
            }),
            _ => None,
        };
        Ok(Some(Self {
            secret_id,
            region,
            endpoint,
            credentials,
        }))
    }
}

/// The parts of a Secrets Manager ARN the call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretArn {
    pub partition: String,
    pub region: String,
}

impl SecretArn {
    /// `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`, else `None`.
    pub fn parse(arn: &str) -> Option<Self> {
        let mut parts = arn.splitn(7, ':');
        let (Some("arn"), Some(partition), Some(SERVICE), Some(region), Some(_), Some("secret")) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let name = parts.next()?;
        if partition.is_empty() || region.is_empty() || name.is_empty() {
            return None;
        }
        Some(Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
        })
    }
}

/// Why `GetSecretValue` gave no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error(
        "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set \
         (Lambda sets them from the execution role; set them yourself for a local run)"
    )]
    NoCredentials,
    #[error("{}", aws_error_text(code, message, *status))]
    Aws {
        status: u16,
        /// The AWS error code, e.g. `AccessDeniedException`, `ResourceNotFoundException`.
        code: String,
        message: String,
    },
    #[error("request failed: {0}")]
    Network(String),
    #[error("unreadable answer: {0}")]
    BadResponse(String),
}

fn aws_error_text(code: &str, message: &str, status: u16) -> String {
    let hint = match code {
        "AccessDeniedException" | "AccessDenied" => {
            " (the function's execution role needs secretsmanager:GetSecretValue on this secret, \
             and kms:Decrypt if a customer-managed KMS key encrypts it)"
        }
        "ResourceNotFoundException" => {
            " (check DD_API_KEY_SECRET_ARN: the secret must exist in the region its ARN names)"
        }
        "UnrecognizedClientException" | "InvalidClientTokenId" | "ExpiredTokenException" => {
            " (the AWS credentials in the environment are not valid)"
        }
        "InvalidSignatureException" | "SignatureDoesNotMatch" => {
            " (AWS_SECRET_ACCESS_KEY does not match AWS_ACCESS_KEY_ID)"
        }
        _ => "",
    };
    if message.is_empty() && code.starts_with("HTTP ") {
        format!("{code}{hint}")
    } else if message.is_empty() {
        format!("{code} (HTTP {status}){hint}")
    } else {
        format!("{code}: {message}{hint}")
    }
}

/// What `GetSecretValue` returns; only these fields matter here.
#[derive(Deserialize)]
struct GetSecretValueOutput {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
    #[serde(rename = "SecretBinary")]
    secret_binary: Option<String>,
}

/// The AWS JSON 1.x error body.
#[derive(Deserialize)]
struct AwsJsonError {
    #[serde(rename = "__type")]
    kind: Option<String>,
    #[serde(alias = "message")]
    #[serde(rename = "Message")]
    message: Option<String>,
}

/// Fetches the secret's text with one signed `GetSecretValue` call, giving up after
/// `timeout`.
pub async fn get_secret_value(
    client: &reqwest::Client,
    config: &SecretsManagerConfig,
    now: SystemTime,
    timeout: Duration,
) -> Result<String, FetchError> {
    let credentials = config
        .credentials
        .as_ref()
        .ok_or(FetchError::NoCredentials)?;
    let url = reqwest::Url::parse(&format!("{}/", config.endpoint))
        .map_err(|e| FetchError::Network(format!("endpoint {:?}: {e}", config.endpoint)))?;
    // The signed Host must be what the client sends: host, plus the port when not the
    // scheme's default.
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => {
            return Err(FetchError::Network(format!(
                "endpoint {:?} has no host",
                config.endpoint
            )));
        }
    };
    let body = serde_json::json!({ "SecretId": config.secret_id }).to_string();
    let amz_date = sigv4::amz_date(now);
    let mut headers = vec![
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Host", host.as_str()),
        ("X-Amz-Date", amz_date.as_str()),
        ("X-Amz-Target", "secretsmanager.GetSecretValue"),
    ];
    if let Some(token) = &credentials.session_token {
        headers.push(("X-Amz-Security-Token", token.as_str()));
    }
    let signed = sigv4::sign_post(
        credentials,
        &Scope {
            region: &config.region,
            service: SERVICE,
            amz_date: &amz_date,
        },
        &headers,
        body.as_bytes(),
    );

    let mut request = client
        .post(url.clone())
        .timeout(timeout)
        .header("Authorization", &signed.authorization);
    for (name, value) in headers.iter().filter(|(n, _)| *n != "Host") {
        request = request.header(*name, *value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| FetchError::Network(format!("POST {url}: {}", crate::error_chain(&e))))?;
    let status = response.status();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_owned());
    let text = response
        .text()
        .await
        .map_err(|e| FetchError::Network(format!("POST {url}: {}", crate::error_chain(&e))))?;
    if !status.is_success() {
        return Err(parse_error(status.as_u16(), error_type, &text));
    }
    let output: GetSecretValueOutput = serde_json::from_str(&text)
        .map_err(|e| FetchError::BadResponse(format!("GetSecretValue answer: {e}")))?;
    match (output.secret_string, output.secret_binary) {
        (Some(s), _) => Ok(s),
        (None, Some(b)) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| FetchError::BadResponse(format!("SecretBinary: {e}")))?;
            String::from_utf8(bytes)
                .map_err(|_| FetchError::BadResponse("SecretBinary is not UTF-8 text".to_owned()))
        }
        (None, None) => Err(FetchError::BadResponse(
            "neither SecretString nor SecretBinary in the answer".to_owned(),
        )),
    }
}

/// Reads an AWS error: JSON 1.1 (`__type`, `message`), or the XML some stand-ins send, or
/// just the status.
fn parse_error(status: u16, header_type: Option<String>, body: &str) -> FetchError {
    let (code, message) = match serde_json::from_str::<AwsJsonError>(body) {
        // `__type` may carry a namespace: `com.amazonaws.secretsmanager#AccessDeniedException`.
        Ok(e) => (
            e.kind
                .map(|k| k.rsplit('#').next().unwrap_or(&k).to_owned())
                .or(header_type),
            e.message,
        ),
        Err(_) => {
            let tag = |name: &str| {
                let open = format!("<{name}>");
                let start = body.find(&open)? + open.len();
                let end = body[start..].find(&format!("</{name}>"))? + start;
                Some(body[start..end].trim().to_owned())
            };
            (tag("Code").or(header_type), tag("Message"))
        }
    };
    FetchError::Aws {
        status,
        code: code.unwrap_or_else(|| format!("HTTP {status}")),
        message: message.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-3:123456789012:secret:dd/api-key-AbCdEf";

    fn config(vars: &[(&str, &str)]) -> Result<Option<SecretsManagerConfig>, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SecretsManagerConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn arns_name_their_region_and_partition() {
        assert_eq!(
            SecretArn::parse(ARN),
            Some(SecretArn {
                partition: "aws".into(),
                region: "eu-west-3".into()
            })
        );
        let cn = "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:k";
        assert_eq!(SecretArn::parse(cn).unwrap().partition, "aws-cn");
        for bad in [
            "dd-api-key",
            "arn:aws:ssm:us-east-1:123:parameter/x",
            "arn:aws:secretsmanager::123:secret:x",
            "arn:aws:secretsmanager:us-east-1:123:secret:",
        ] {
            assert_eq!(SecretArn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn region_comes_from_the_arn_not_the_function() {
        // Cross-region secrets: the function runs in us-east-1, the secret lives in eu-west-3.
        let c = config(&[
            ("DD_API_KEY_SECRET_ARN", ARN),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.region, "eu-west-3");
        assert_eq!(c.endpoint, "https://secretsmanager.eu-west-3.amazonaws.com");
        assert_eq!(
            c.credentials.unwrap().session_token.as_deref(),
            Some("token")
        );
        let cn = config(&[(
            "DD_API_KEY_SECRET_ARN",
            "arn:aws-cn:secretsmanager:cn-north-1:1:secret:k",
        )])
        .unwrap()
        .unwrap();
        assert_eq!(
            cn.endpoint,
            "https://secretsmanager.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn endpoint_overrides_and_names() {
        let c = config(&[
            ("DD_API_KEY_SECRET_ARN", ARN),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1/"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:2/"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:2");
        assert!(c.credentials.is_none());
        let c = config(&[
            ("DD_API_KEY_SECRET_ARN", ARN),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1/"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:1");
        // A name instead of an ARN uses the function's region; without one it is an error.
        let c = config(&[
            ("DD_API_KEY_SECRET_ARN", "dd-api-key"),
            ("AWS_REGION", "ap-south-1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.region, "ap-south-1");
        let err = config(&[("DD_API_KEY_SECRET_ARN", "dd-api-key")]).unwrap_err();
        assert!(err.contains("AWS_REGION"), "{err}");
        assert!(config(&[("DD_API_KEY_SECRET_ARN", " ")]).unwrap().is_none());
    }

    #[test]
    fn aws_errors_are_named_with_a_hint() {
        let e = parse_error(
            400,
            None,
            r#"{"__type":"com.amazonaws.secretsmanager#AccessDeniedException","Message":"User: arn:aws:sts::1:assumed-role/fn is not authorized to perform: secretsmanager:GetSecretValue"}"#,
        );
        let text = e.to_string();
        assert!(
            text.starts_with("AccessDeniedException: User: arn:aws:sts::1:assumed-role/fn"),
            "{text}"
        );
        assert!(
            text.contains("needs secretsmanager:GetSecretValue"),
            "{text}"
        );
        let e = parse_error(
            400,
            None,
            r#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
        );
        assert!(matches!(&e, FetchError::Aws { code, .. } if code == "ResourceNotFoundException"));
        assert!(e.to_string().contains("can't find"), "{e}");
        let e = parse_error(
            403,
            None,
            "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>",
        );
        assert!(matches!(&e, FetchError::Aws { code, .. } if code == "SignatureDoesNotMatch"));
        let e = parse_error(
            500,
            Some("InternalServiceError".into()),
            "<html>oops</html>",
        );
        assert_eq!(e.to_string(), "InternalServiceError (HTTP 500)");
        assert_eq!(parse_error(502, None, "").to_string(), "HTTP 502");
    }
}
