//! The Datadog API key from Secrets Manager (`DD_API_KEY_SECRET_ARN`), against moto with IAM
//! authentication switched on — so moto recomputes every request's SigV4 signature with
//! botocore's signer and refuses a mismatch, and applies the caller's IAM policies.
//!
//! Set-up (boto3, before authentication is switched on): two secrets in eu-west-3 (a plain key
//! and a JSON one) while the "function" runs in us-east-1, IAM users `reader` (may call
//! GetSecretValue), `nobody` (may not), `late` (gets the permission mid-test) and `admin`, and
//! temporary credentials of a role that may read secrets (what Lambda gives an extension).
//! Then: the key resolves for `reader` and for the role (cross-region, signature and session
//! token accepted, a wrong token refused); `nobody` gets
//! AccessDenied, a missing secret ResourceNotFoundException and a wrong secret key
//! SignatureDoesNotMatch, each as one clear error without the key; and through the flusher and
//! the Datadog sink, data flushed while `late` is still denied is carried over, then delivered
//! with the resolved key once the permission is granted — nothing lost. Last, the real
//! `datadog-agent` on the local platform, given only `DD_API_KEY_SECRET_ARN` and the AWS
//! variables Lambda sets, sends an invocation's spans with the key read from the secret.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ddlambda::wire::Span;
use ddlambda_extension::buffer::{Buffer, Scope};
use ddlambda_extension::config::Config;
use ddlambda_extension::event::{Drain, Outgoing, TraceBatch};
use ddlambda_extension::flush::enrich::FunctionTags;
use ddlambda_extension::flush::retry::RetryPolicy;
use ddlambda_extension::flush::stats::Counters;
use ddlambda_extension::flush::{Flusher, Trigger};
use ddlambda_extension::secrets::{ApiKeyResolver, Backoff, KeyUnavailable, SecretsManagerConfig};
use ddlambda_extension::sinks::datadog::{DatadogConfig, DatadogSink};
use ddlambda_platform::{InvokeOptions, Platform, ShutdownReason, Status};
use ddlambda_tests::intake::{self, FakeIntake};
use ddlambda_tests::moto::Moto;
use ddlambda_tests::{bin_path, free_port, wait_until};
use serde_json::Value;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const JSON_KEY: &str = "fedcba9876543210fedcba9876543210";

/// Creates the secrets and users, prints them as JSON, then switches IAM authentication on.
const SETUP: &str = r#"
import boto3, json, sys, urllib.request
url, key, json_key = sys.argv[1:4]
kw = dict(endpoint_url=url, aws_access_key_id="test", aws_secret_access_key="test")
sm = boto3.client("secretsmanager", region_name="eu-west-3", **kw)
iam = boto3.client("iam", region_name="us-east-1", **kw)
plain = sm.create_secret(Name="dd/api-key", SecretString=key)["ARN"]
js = sm.create_secret(Name="dd/api-key-json",
                      SecretString=json.dumps({"site": "datadoghq.com", "api_key": json_key}))["ARN"]
def user(name, actions=None):
    iam.create_user(UserName=name)
    if actions:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return {"id": k["AccessKeyId"], "secret": k["SecretAccessKey"]}
out = {"plain": plain, "json": js,
       "reader": user("reader", "secretsmanager:GetSecretValue"),
       "nobody": user("nobody"), "late": user("late"), "admin": user("admin", "*")}
# What Lambda hands an extension: an execution role's temporary credentials.
role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
     "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
iam.put_role_policy(RoleName="fn-role", PolicyName="p", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
c = boto3.client("sts", region_name="us-east-1", **kw).assume_role(
    RoleArn=role, RoleSessionName="fn")["Credentials"]
out["role"] = {"id": c["AccessKeyId"], "secret": c["SecretAccessKey"], "token": c["SessionToken"]}
# text/plain: with urllib's default form type, Flask consumes the body before moto reads it.
urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset-auth", data=b"0",
                                              headers={"Content-Type": "text/plain"},
                                              method="POST")).read()
print(json.dumps(out))
"#;

/// With authentication on: `admin` lets `late` read secrets.
const GRANT: &str = r#"
import boto3, json, sys
url, key_id, secret = sys.argv[1:4]
iam = boto3.client("iam", region_name="us-east-1", endpoint_url=url,
                   aws_access_key_id=key_id, aws_secret_access_key=secret)
iam.put_user_policy(UserName="late", PolicyName="p", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
"#;

struct Setup {
    plain: String,
    json: String,
    users: Value,
}

impl Setup {
    fn env(&self, user: &str, secret: &str, moto: &Moto) -> Vec<(String, String)> {
        let u = &self.users[user];
        let mut env = vec![
            ("DD_API_KEY_SECRET_ARN".into(), secret.into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), u["id"].as_str().unwrap().into()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                u["secret"].as_str().unwrap().into(),
            ),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), moto.url.clone()),
        ];
        if let Some(token) = u["token"].as_str() {
            env.push(("AWS_SESSION_TOKEN".into(), token.into()));
        }
        env
    }
}

fn resolver(env: &[(String, String)], backoff: Backoff) -> Arc<ApiKeyResolver> {
    let config = SecretsManagerConfig::from_lookup(|k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .expect("a valid secrets config")
    .expect("DD_API_KEY_SECRET_ARN is set");
    ApiKeyResolver::new(config, backoff)
}

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_from_secrets_manager_on_moto() {
    let Some(moto) = tokio::task::spawn_blocking(Moto::start).await.unwrap() else {
        return;
    };
    let moto = Arc::new(moto);
    let setup_out = {
        let moto = moto.clone();
        tokio::task::spawn_blocking(move || moto.python(SETUP, &[KEY, JSON_KEY]))
            .await
            .unwrap()
    };
    let users: Value = serde_json::from_str(setup_out.trim()).expect("setup JSON");
    let setup = Setup {
        plain: users["plain"].as_str().unwrap().to_owned(),
        json: users["json"].as_str().unwrap().to_owned(),
        users,
    };
    assert!(
        setup.plain.starts_with("arn:aws:secretsmanager:eu-west-3:"),
        "{}",
        setup.plain
    );

    // Plain and JSON secrets, in another region than the function's; moto checked the
    // signatures.
    let r = resolver(
        &setup.env("reader", &setup.plain, &moto),
        Backoff::default(),
    );
    assert_eq!(&*r.key(WAIT).await.expect("the plain key"), KEY);
    let r = resolver(&setup.env("reader", &setup.json, &moto), Backoff::default());
    assert_eq!(&*r.key(WAIT).await.expect("the JSON key"), JSON_KEY);

    // An execution role's temporary credentials: moto checks the signed session token too.
    let env = setup.env("role", &setup.plain, &moto);
    assert!(env[2].1.starts_with("ASIA"), "{env:?}");
    let r = resolver(&env, Backoff::default());
    assert_eq!(&*r.key(WAIT).await.expect("the key, as the role"), KEY);
    let mut env = env;
    env[5].1.push('x');
    let err = failure(resolver(&env, Backoff::default()).key(WAIT).await);
    // moto: InvalidClientTokenId; AWS: UnrecognizedClientException. Same message, same hint.
    assert!(err.contains("security token"), "{err}");
    assert!(
        err.contains("credentials in the environment are not valid"),
        "{err}"
    );

    // Negative control: moto really verifies signatures.
    let mut env = setup.env("reader", &setup.plain, &moto);
    env[3].1.push('x');
    let err = failure(resolver(&env, Backoff::default()).key(WAIT).await);
    assert!(err.contains("Signature"), "{err}");

    // Missing permission, missing secret.
    let err = failure(
        resolver(
            &setup.env("nobody", &setup.plain, &moto),
            Backoff::default(),
        )
        .key(WAIT)
        .await,
    );
    // Real Secrets Manager says `AccessDeniedException`; moto's IAM layer `AccessDenied`.
    assert!(err.starts_with("AccessDenied"), "{err}");
    assert!(err.contains("execution role needs"), "{err}");
    assert!(err.contains("secretsmanager:GetSecretValue"), "{err}");
    let missing = setup.plain.replace("dd/api-key", "dd/nothing-here");
    let err = failure(
        resolver(&setup.env("reader", &missing, &moto), Backoff::default())
            .key(WAIT)
            .await,
    );
    assert!(err.starts_with("ResourceNotFoundException"), "{err}");

    carried_until_the_key_resolves(&moto, &setup).await;
    datadog_agent_reads_its_key_from_the_secret(&moto, &setup).await;
}

/// The cause of a failed resolution; it must never contain a key.
fn failure(result: Result<Arc<str>, KeyUnavailable>) -> String {
    match result {
        Err(KeyUnavailable::Failed { cause, .. }) => {
            assert!(!cause.contains(KEY) && !cause.contains(JSON_KEY), "{cause}");
            cause
        }
        other => panic!("expected a failed resolution, got {other:?}"),
    }
}

/// One span batch, handed to the flusher once.
struct OneBatch(Mutex<Option<Outgoing>>);

impl Drain for OneBatch {
    fn drain(&self, _: SystemTime, _: bool) -> Vec<Outgoing> {
        self.0.lock().unwrap().take().into_iter().collect()
    }
}

/// `DD-API-KEY` of every trace request the fake intake received.
fn trace_keys(intake: &FakeIntake) -> Vec<String> {
    intake
        .requests()
        .into_iter()
        .filter(|r| r.path == intake::TRACES)
        .map(|r| r.api_key)
        .collect()
}

async fn carried_until_the_key_resolves(moto: &Arc<Moto>, setup: &Setup) {
    let fake = FakeIntake::start().await;
    let intake = fake.base().to_owned();
    let env: Vec<(&str, String)> = vec![
        ("DD_APM_DD_URL", intake.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", "secrets-e2e".into()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    let (config, _) =
        Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()));
    let backoff = Backoff {
        first: Duration::from_millis(200),
        max: Duration::from_millis(200),
    };
    let resolver = resolver(&setup.env("late", &setup.plain, moto), backoff);
    let sink = DatadogSink::new(DatadogConfig {
        api_key: String::new(),
        trace_base: config.trace_intake_base(),
        telemetry_base: config.telemetry_intake_base(),
        metrics_base: intake.clone(),
        env: String::new(),
    })
    .with_api_key_resolver(resolver.clone());
    let counters = Arc::new(Counters::default());
    let span = Span {
        service: "svc".into(),
        name: "work".into(),
        resource: "work".into(),
        trace_id: 7,
        span_id: 8,
        start: 1,
        duration: 2,
        ..Span::default()
    };
    let batch = Outgoing::Traces(TraceBatch {
        traces: vec![vec![span]],
        ..TraceBatch::default()
    });
    let flusher = Flusher::new(
        Arc::new(Buffer::new(64 << 20, true, counters.clone())),
        sink,
        FunctionTags::new(&config, Some("123456789012")),
        counters.clone(),
        RetryPolicy::default(),
    )
    .with_drain(Arc::new(OneBatch(Mutex::new(Some(batch)))));
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(60);

    // Denied: nothing reaches the intake, the batch waits.
    let report = flusher
        .flush(Trigger::EndOfInvocation, Scope::All, deadline(), false)
        .await;
    assert_eq!(report.sent_requests, 0, "{report:?}");
    assert_eq!(report.carried_requests, 1, "{report:?}");
    assert_eq!(flusher.carried(), 1);
    assert!(trace_keys(&fake).is_empty());

    {
        let moto = moto.clone();
        let admin = setup.users["admin"].clone();
        tokio::task::spawn_blocking(move || {
            moto.python(
                GRANT,
                &[
                    admin["id"].as_str().unwrap(),
                    admin["secret"].as_str().unwrap(),
                ],
            )
        })
        .await
        .unwrap();
    }
    // Past the resolver's backoff, the next flush reads the key and delivers the batch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = flusher
        .flush(Trigger::EndOfInvocation, Scope::All, deadline(), true)
        .await;
    assert_eq!(report.sent_requests, 1, "{report:?}");
    assert_eq!(report.sent_spans, 1, "{report:?}");
    assert_eq!(report.lost_requests, 0, "{report:?}");
    assert_eq!(trace_keys(&fake), vec![KEY.to_owned()]);
    let totals = counters.snapshot();
    assert_eq!(totals.lost_at_shutdown_requests, 0, "{totals:?}");
    assert_eq!(totals.rejected_requests, 0, "{totals:?}");
}

async fn datadog_agent_reads_its_key_from_the_secret(moto: &Arc<Moto>, setup: &Setup) {
    let fake = FakeIntake::start().await;
    let intake = fake.base().to_owned();
    let trace_port = free_port();
    let mut builder = Platform::builder()
        .function(bin_path("fixture-fn"))
        .extension(bin_path("datadog-agent"))
        .inherit_env(false)
        .region("us-east-1")
        .timeout(Duration::from_secs(10))
        .env("DD_APM_RECEIVER_PORT", trace_port.to_string())
        .env("DD_DOGSTATSD_PORT", free_port().to_string())
        .env("DDLAMBDA_TELEMETRY_PORT", free_port().to_string())
        .env("DD_SERVERLESS_FLUSH_STRATEGY", "end")
        .env("DD_APM_DD_URL", intake.clone())
        .env("DD_APM_TELEMETRY_DD_URL", intake.clone())
        .env("DD_DD_URL", intake.clone());
    for (k, v) in setup.env("reader", &setup.plain, moto) {
        if k != "AWS_REGION" {
            builder = builder.env(k, v);
        }
    }
    let platform = builder.build().await.expect("platform");
    platform.start().await.expect("init");

    let span = Span {
        service: "svc".into(),
        name: "op".into(),
        resource: "r".into(),
        trace_id: 9,
        span_id: 901,
        start: 1_700_000_000_000_000_000,
        duration: 10,
        ..Span::default()
    };
    let status = ddlambda_tests::http::put_v04_traces(trace_port, vec![vec![span]])
        .await
        .expect("PUT /v0.4/traces");
    assert_eq!(status, 200);
    let invoked = platform
        .invoke(br#"{"mode":"echo"}"#.to_vec(), InvokeOptions::default())
        .await
        .expect("invoke");
    assert_eq!(invoked.report.status, Status::Success, "{invoked:?}");
    // With the `end` strategy the flush precedes the next `/next`; allow for a slow machine.
    let delivered = wait_until(Duration::from_secs(60), || {
        let keys = trace_keys(&fake);
        (!keys.is_empty()).then_some(keys)
    });
    platform.shutdown(ShutdownReason::Spindown).await;
    let keys = delivered.expect("spans reached the intake");
    assert!(keys.iter().all(|k| k == KEY), "{keys:?}");
}
