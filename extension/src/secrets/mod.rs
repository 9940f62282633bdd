//! The Datadog API key from AWS Secrets Manager (`DD_API_KEY_SECRET_ARN`).
//!
//! `DD_API_KEY` wins when set; this is for when it is not. The key is fetched lazily, off the
//! init critical path — by [`ApiKeyResolver::prefetch`] once the first `/next` is in flight,
//! or by the first send that needs it — once per sandbox, then cached. The fetch runs as its
//! own task, so a flush that stops waiting for it (its budget ran out) does not cancel it,
//! and concurrent sends share one call.
//!
//! A failed fetch is logged once per distinct cause, as one line naming it (AWS's own error
//! code and message, e.g. `AccessDeniedException: User ... is not authorized to perform:
//! secretsmanager:GetSecretValue ...`); the key itself is never logged. Sends that find no
//! key fail as retryable, so the flusher keeps their data for the next flush (and counts what
//! is still undelivered at SHUTDOWN as lost, like any other failed send). The next fetch
//! waits an exponential backoff (1 s doubling to 30 s by default), so a flush that comes
//! sooner fails fast instead of calling AWS again; [`ApiKeyResolver::retry_now`] ends the
//! wait early.
//!
//! Deviation from bottlecap, which stops sending for the sandbox's life when decryption
//! fails (its issues #594, #936): here a transient failure (throttling, network) costs
//! nothing but a delay.

pub mod secret_value;
pub mod secrets_manager;
pub mod sigv4;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

pub use secrets_manager::{FetchError, SecretsManagerConfig};

/// Cap on one `GetSecretValue` call.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits between failed fetches.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// After the first failure.
    pub first: Duration,
    /// The wait doubles per failure up to this.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait after `failures` consecutive failures (at least one).
    pub fn after(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Why no key is available for a send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyUnavailable {
    /// The display leaves the cause out: the resolver logs it once, and the flusher logs
    /// this for every item it keeps.
    #[error(
        "no Datadog API key: reading DD_API_KEY_SECRET_ARN failed (cause logged once, above); next attempt in {} ms",
        retry_in.as_millis()
    )]
    Failed { cause: String, retry_in: Duration },
    #[error("no Datadog API key yet: still reading DD_API_KEY_SECRET_ARN")]
    StillResolving,
}

#[derive(Debug, Clone)]
enum State {
    Idle,
    Resolving {
        failures: u32,
    },
    Ready(Arc<str>),
    Failed {
        failures: u32,
        cause: Arc<str>,
        retry_at: Instant,
    },
}

/// Resolves the API key from Secrets Manager once per sandbox, retrying failures with backoff.
pub struct ApiKeyResolver {
    config: SecretsManagerConfig,
    backoff: Backoff,
    state: watch::Sender<State>,
    client: OnceLock<Result<reqwest::Client, String>>,
    /// The cause last logged, so a repeated failure is not logged again.
    logged: Mutex<Option<String>>,
}

impl std::fmt::Debug for ApiKeyResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyResolver")
            .field("config", &self.config)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl ApiKeyResolver {
    pub fn new(config: SecretsManagerConfig, backoff: Backoff) -> Arc<Self> {
        Arc::new(Self {
            config,
            backoff,
            state: watch::Sender::new(State::Idle),
            client: OnceLock::new(),
            logged: Mutex::new(None),
        })
    }

    /// The secret this resolver reads.
    pub fn secret_id(&self) -> &str {
        &self.config.secret_id
    }

    /// Starts the fetch in the background if none ran yet (or the backoff is over). Call it
    /// once the first `/next` is in flight (the Datadog sink's `warm_up` does). Outside a
    /// Tokio runtime it does nothing: the first send fetches instead.
    pub fn prefetch(self: &Arc<Self>) {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.start_if_due();
        }
    }

    /// Ends a failure's backoff now, so the next send tries again at once (e.g. before a
    /// SHUTDOWN flush, the last chance to deliver what is held).
    pub fn retry_now(&self) {
        let now = Instant::now();
        self.state.send_if_modified(|s| match s {
            State::Failed { retry_at, .. } if *retry_at > now => {
                *retry_at = now;
                true
            }
            _ => false,
        });
    }

    /// The key, waiting at most `wait` for a fetch in flight (starting one if due).
    pub async fn key(self: &Arc<Self>, wait: Duration) -> Result<Arc<str>, KeyUnavailable> {
        let mut rx = self.state.subscribe();
        if let State::Ready(key) = &*rx.borrow_and_update() {
            return Ok(key.clone());
        }
        self.start_if_due();
        let settled =
            tokio::time::timeout(wait, rx.wait_for(|s| !matches!(s, State::Resolving { .. })))
                .await;
        let Ok(Ok(state)) = settled else {
            return Err(KeyUnavailable::StillResolving);
        };
        match &*state {
            State::Ready(key) => Ok(key.clone()),
            State::Failed {
                cause, retry_at, ..
            } => Err(KeyUnavailable::Failed {
                cause: cause.to_string(),
                retry_in: retry_at.saturating_duration_since(Instant::now()),
            }),
            // `start_if_due` left it Resolving, Ready or Failed.
            State::Idle | State::Resolving { .. } => Err(KeyUnavailable::StillResolving),
        }
    }

    /// Moves Idle (or Failed past its backoff) to Resolving and spawns the fetch.
    fn start_if_due(self: &Arc<Self>) {
        let now = Instant::now();
        let mut failures = 0;
        let start = self.state.send_if_modified(|s| {
            let due = match s {
                State::Idle => true,
                State::Failed {
                    retry_at,
                    failures: f,
                    ..
                } => {
                    failures = *f;
                    now >= *retry_at
                }
                State::Resolving { .. } | State::Ready(_) => false,
            };
            if due {
                *s = State::Resolving { failures };
            }
            due
        });
        if start {
            let me = self.clone();
            tokio::spawn(async move {
                let guard = Settle(&me);
                let result = me.fetch().await;
                guard.settle(result, failures);
            });
        }
    }

    async fn fetch(&self) -> Result<String, String> {
        let client = self
            .client
            .get_or_init(|| crate::http_client(crate::USER_AGENT))
            .as_ref()
            .map_err(|e| format!("HTTP client unavailable: {e}"))?;
        let secret = secrets_manager::get_secret_value(
            client,
            &self.config,
            SystemTime::now(),
            FETCH_TIMEOUT,
        )
        .await
        .map_err(|e| e.to_string())?;
        secret_value::api_key_from_secret(&secret)
    }

    fn record(&self, result: Result<String, String>, failures: u32) {
        match result {
            Ok(key) => {
                if failures > 0 {
                    tracing::info!(
                        "Datadog API key read from Secrets Manager secret {} after {failures} failed attempts; held data goes out now",
                        self.config.secret_id
                    );
                } else {
                    tracing::debug!(
                        "Datadog API key read from Secrets Manager secret {}",
                        self.config.secret_id
                    );
                }
                self.state.send_replace(State::Ready(key.into()));
            }
            Err(cause) => {
                let failures = failures + 1;
                let wait = self.backoff.after(failures);
                let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
                if logged.as_deref() != Some(cause.as_str()) {
                    tracing::error!(
                        "cannot read the Datadog API key from Secrets Manager secret {}: {cause}; data is held and the read retried with backoff",
                        self.config.secret_id
                    );
                    *logged = Some(cause.clone());
                } else {
                    tracing::debug!(
                        failures,
                        "reading the Datadog API key failed again: {cause}"
                    );
                }
                self.state.send_replace(State::Failed {
                    failures,
                    cause: cause.into(),
                    retry_at: Instant::now() + wait,
                });
            }
        }
    }
}

/// Settles the state when the fetch task ends, also if it ends by a panic, so no waiter is
/// left on `Resolving` for good.
struct Settle<'a>(&'a ApiKeyResolver);

impl Settle<'_> {
    fn settle(self, result: Result<String, String>, failures: u32) {
        self.0.record(result, failures);
        std::mem::forget(self);
    }
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        let failures = match &*self.0.state.borrow() {
            State::Resolving { failures } => *failures,
            _ => return,
        };
        self.0.record(
            Err("the Secrets Manager request ended unexpectedly".to_owned()),
            failures,
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    pub(crate) const KEY: &str = "0123456789abcdef0123456789abcdef";

    /// A loopback stand-in answering each `GetSecretValue` with the next scripted reply,
    /// and the headers of every request it got.
    pub(crate) struct FakeAws {
        pub(crate) endpoint: String,
        pub(crate) calls: Arc<AtomicUsize>,
        seen: Arc<Mutex<Vec<http::HeaderMap>>>,
    }

    pub(crate) async fn fake_aws(replies: Vec<(u16, String)>) -> FakeAws {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (c, s) = (calls.clone(), seen.clone());
        let replies = Arc::new(replies);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (c, s, replies) = (c.clone(), s.clone(), replies.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (c, s, replies) = (c.clone(), s.clone(), replies.clone());
                        async move {
                            s.lock().unwrap().push(req.headers().clone());
                            let _ = req.into_body().collect().await;
                            let n = c.fetch_add(1, Ordering::SeqCst);
                            let (status, body) = replies[n.min(replies.len() - 1)].clone();
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(bytes::Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeAws {
            endpoint,
            calls,
            seen,
        }
    }

    pub(crate) fn resolver(endpoint: &str, backoff: Backoff) -> Arc<ApiKeyResolver> {
        ApiKeyResolver::new(
            SecretsManagerConfig {
                secret_id: "arn:aws:secretsmanager:eu-west-1:1:secret:k".into(),
                region: "eu-west-1".into(),
                endpoint: endpoint.into(),
                credentials: Some(sigv4::Credentials {
                    access_key_id: "AKID".into(),
                    secret_access_key: "SECRET".into(),
                    session_token: Some("TOKEN".into()),
                }),
            },
            backoff,
        )
    }

    pub(crate) fn ok(secret: &str) -> (u16, String) {
        (
            200,
            serde_json::json!({ "ARN": "arn", "SecretString": secret }).to_string(),
        )
    }

    const WAIT: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn resolves_once_and_caches() {
        let aws = fake_aws(vec![ok(KEY)]).await;
        let r = resolver(&aws.endpoint, Backoff::default());
        r.prefetch();
        let (a, b) = tokio::join!(r.key(WAIT), r.key(WAIT));
        assert_eq!(&*a.unwrap(), KEY);
        assert_eq!(&*b.unwrap(), KEY);
        assert_eq!(&*r.key(WAIT).await.unwrap(), KEY);
        assert_eq!(aws.calls.load(Ordering::SeqCst), 1, "one call per sandbox");
        let seen = aws.seen.lock().unwrap();
        let h = &seen[0];
        assert_eq!(h["x-amz-target"], "secretsmanager.GetSecretValue");
        assert_eq!(h["content-type"], "application/x-amz-json-1.1");
        assert_eq!(h["x-amz-security-token"], "TOKEN");
        let auth = h["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/")
                && auth.contains("/eu-west-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="),
            "{auth}"
        );
    }

    #[tokio::test]
    async fn a_failure_backs_off_then_recovers() {
        let denied = (
            400,
            r#"{"__type":"AccessDeniedException","Message":"not authorized to perform: secretsmanager:GetSecretValue"}"#.to_owned(),
        );
        let aws = fake_aws(vec![denied, ok(KEY)]).await;
        // Long enough that the test never reaches its end: `retry_now` ends it.
        let backoff = Backoff {
            first: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
        };
        let r = resolver(&aws.endpoint, backoff);
        let err = r.key(WAIT).await.unwrap_err();
        let KeyUnavailable::Failed { cause, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(
            cause.starts_with("AccessDeniedException: not authorized"),
            "{cause}"
        );
        // Inside the backoff: fails fast, no second call.
        assert!(matches!(
            r.key(WAIT).await,
            Err(KeyUnavailable::Failed { .. })
        ));
        assert_eq!(aws.calls.load(Ordering::SeqCst), 1);
        r.retry_now();
        assert_eq!(&*r.key(WAIT).await.unwrap(), KEY);
        assert_eq!(aws.calls.load(Ordering::SeqCst), 2);
    }

    fn cause(r: Result<Arc<str>, KeyUnavailable>) -> String {
        match r {
            Err(KeyUnavailable::Failed { cause, .. }) => cause,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_unusable_secret_and_missing_credentials_are_failures() {
        let aws = fake_aws(vec![ok("{\"a\":\"x\",\"b\":\"y\"}")]).await;
        let r = resolver(&aws.endpoint, Backoff::default());
        let err = cause(r.key(WAIT).await);
        assert!(err.contains("none named api_key"), "{err}");

        let r = ApiKeyResolver::new(
            SecretsManagerConfig {
                secret_id: "k".into(),
                region: "eu-west-1".into(),
                endpoint: aws.endpoint.clone(),
                credentials: None,
            },
            Backoff::default(),
        );
        let err = cause(r.key(WAIT).await);
        assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_a_network_failure() {
        // Bound, then closed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = resolver(&format!("http://127.0.0.1:{port}"), Backoff::default());
        let err = cause(r.key(WAIT).await);
        assert!(err.contains("request failed"), "{err}");
    }

    #[test]
    fn dd_api_key_wins_over_the_secret() {
        use crate::config::Config;
        fn env(pairs: &[(&str, &str)]) -> (Config, Vec<String>) {
            Config::from_lookup(|k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        }
        let arn = "arn:aws:secretsmanager:eu-west-1:1:secret:k";
        let (c, w) = env(&[("DD_API_KEY", "k"), ("DD_API_KEY_SECRET_ARN", arn)]);
        assert!(c.api_key.is_some() && c.api_key_secret.is_none(), "{w:?}");
        let (c, w) = env(&[("DD_API_KEY_SECRET_ARN", arn)]);
        assert_eq!(
            c.api_key_secret.map(|s| s.region).as_deref(),
            Some("eu-west-1")
        );
        assert!(w.is_empty(), "{w:?}");
        // Unusable: one warning, and the local sink.
        let (c, w) = env(&[("DD_API_KEY_SECRET_ARN", "not-an-arn")]);
        assert!(c.api_key_secret.is_none());
        assert!(w.len() == 1 && w[0].contains("AWS_REGION"), "{w:?}");
        // The config's Debug shows neither the AWS secret key nor the token.
        let (c, _) = env(&[
            ("DD_API_KEY_SECRET_ARN", arn),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AWS_SESSION_TOKEN", "token-value"),
        ]);
        let text = format!("{c:?}");
        assert!(text.contains("AKID"), "{text}");
        assert!(
            !text.contains("very-secret") && !text.contains("token-value"),
            "{text}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.after(1), Duration::from_secs(1));
        assert_eq!(b.after(2), Duration::from_secs(2));
        assert_eq!(b.after(5), Duration::from_secs(16));
        assert_eq!(b.after(6), Duration::from_secs(30));
        assert_eq!(b.after(100), Duration::from_secs(30));
    }
}
