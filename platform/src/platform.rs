//! The lifecycle: init, invoke, reset and shutdown, driven by one caller at a time, with the
//! API handlers and child watchers moving the shared sandbox state underneath.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

use crate::api;
use crate::config::{Config, Echo, PlatformBuilder, ShutdownPoint, ShutdownReason, file_name};
use crate::error::PlatformError;
use crate::ids::{epoch_ms, rfc3339_ms, uuid_v4, xray_header};
use crate::process::{self, Pids, signal};
use crate::result::{
    FunctionError, InitReport, InvokeOptions, InvokeResult, Outcome, Report, Status,
};
use crate::sandbox::{Answer, ExitInfo, ExtensionEvent, PendingInvoke, Phase, State};
use crate::telemetry::{Hub, Record, Subscription, ms};
use crate::timeline::{Actor, EventKind, Timeline, TimelineLog};

/// What the runtime is told it is, in `platform.initStart`.
const RUNTIME_VERSION: &str = "provided:al2023";
/// How long an internal extension's runtime gets between SIGTERM and SIGKILL.
const RUNTIME_TERM_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for the OS to report a SIGKILLed child gone.
const REAP_WAIT: Duration = Duration::from_secs(5);
/// How long a reset waits for pending telemetry to be sent before SHUTDOWN goes out.
const TELEMETRY_FLUSH_WAIT: Duration = Duration::from_millis(100);

/// Everything the API handlers, child watchers and the lifecycle share.
pub(crate) struct Shared {
    pub config: Config,
    pub state: State,
    pub timeline: TimelineLog,
    pub pids: Pids,
    hub: Mutex<Hub>,
    api_addr: SocketAddr,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`, one per platform as one per sandbox on Lambda.
    log_stream: String,
}

impl Shared {
    /// Sends a record to the current sandbox's subscribers.
    pub(crate) fn emit(&self, record: Record) {
        self.hub
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .emit(record);
    }

    pub(crate) fn subscribe(&self, sub: Subscription) {
        let faults = self.config.faults.telemetry.clone();
        self.hub
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .subscribe(sub, faults, self.timeline.clone());
    }

    /// A line of the platform's log output.
    pub(crate) fn echo(&self, line: &str) {
        if self.config.echo == Echo::Stderr {
            eprintln!("{line}");
        }
    }

    /// The variables Lambda sets for the runtime and the extensions.
    pub(crate) fn standard_env(&self) -> Vec<(String, String)> {
        let c = &self.config;
        let stream = self.log_stream.clone();
        let task_root = c.task_root.display().to_string();
        [
            ("AWS_LAMBDA_RUNTIME_API", api::runtime_api(self.api_addr)),
            ("AWS_LAMBDA_FUNCTION_NAME", c.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", c.function_version.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", c.memory_mb.to_string()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", c.function_name),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("AWS_REGION", c.region.clone()),
            ("AWS_DEFAULT_REGION", c.region.clone()),
            ("LAMBDA_TASK_ROOT", task_root.clone()),
            ("LAMBDA_RUNTIME_DIR", task_root),
            ("_HANDLER", c.handler.clone()),
            ("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000".into()),
            ("_AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1".into()),
            ("_AWS_XRAY_DAEMON_PORT", "2000".into()),
            ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR".into()),
            ("TZ", ":UTC".into()),
            ("LANG", "en_US.UTF-8".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Kills every child and stops the server when the last [`Platform`] handle goes.
struct Guard {
    pids: Pids,
    server: JoinHandle<()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.pids.kill_all();
        self.server.abort();
    }
}

/// Held by whoever drives the lifecycle.
#[derive(Default)]
struct Lifecycle {
    /// Init duration not yet reported (the next invocation is the cold start).
    unreported_init: Option<Duration>,
    /// `Faults::shutdown_at` fires once.
    shutdown_fault_fired: bool,
}

/// A local Lambda execution environment. Cheap to clone; [`Platform::shutdown`] may be called
/// from another task at any time, even during an invocation.
#[derive(Clone)]
pub struct Platform {
    shared: Arc<Shared>,
    lifecycle: Arc<tokio::sync::Mutex<Lifecycle>>,
    _guard: Arc<Guard>,
}

enum RuntimeEnd {
    Answered(Answer),
    Crashed(ExitInfo, bool),
    ExtensionCrashed(String),
    TimedOut,
    Aborted,
}

impl Platform {
    /// Starts describing a platform.
    pub fn builder() -> PlatformBuilder {
        PlatformBuilder::default()
    }

    pub(crate) async fn from_config(config: Config) -> Result<Self, PlatformError> {
        let listener = api::bind(0).await?;
        let api_addr = listener.local_addr().map_err(PlatformError::Bind)?;
        let log_stream = format!(
            "{}/[{}]{}",
            rfc3339_ms(SystemTime::now())[..10].replace('-', "/"),
            config.function_version,
            uuid_v4().replace('-', "")
        );
        let shared = Arc::new(Shared {
            config,
            state: State::new(),
            timeline: TimelineLog::new(),
            pids: Pids::default(),
            hub: Mutex::new(Hub::default()),
            api_addr,
            log_stream,
        });
        let server = api::serve(listener, shared.clone());
        let guard = Guard {
            pids: shared.pids.clone(),
            server,
        };
        Ok(Self {
            shared,
            lifecycle: Default::default(),
            _guard: Arc::new(guard),
        })
    }

    /// Where the APIs listen (`AWS_LAMBDA_RUNTIME_API`).
    pub fn runtime_api(&self) -> SocketAddr {
        self.shared.api_addr
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Everything recorded so far.
    pub fn timeline(&self) -> Timeline {
        self.shared.timeline.snapshot()
    }

    /// Runs init now (otherwise the first invocation does). A no-op once initialized.
    pub async fn start(&self) -> Result<InitReport, PlatformError> {
        let mut lc = self.lifecycle.lock().await;
        if self.shared.state.read(|s| s.phase == Phase::Ready) {
            return Ok(InitReport {
                duration: lc.unreported_init.unwrap_or_default(),
                error: None,
            });
        }
        self.init(&mut lc).await
    }

    /// Retires the sandbox: SHUTDOWN to the extensions (with `reason`), SIGKILL to whatever is
    /// left when the budget runs out. An invocation in progress ends as a failure. The next
    /// invocation starts a new sandbox.
    pub async fn shutdown(&self, reason: ShutdownReason) {
        self.shared.state.update(|s| s.abort = Some(reason));
        let _lc = self.lifecycle.lock().await;
        self.reset(reason).await;
    }

    async fn init(&self, lc: &mut Lifecycle) -> Result<InitReport, PlatformError> {
        let sh = &self.shared;
        let cfg = &sh.config;
        sh.state.update(|s| {
            s.generation += 1;
            s.phase = Phase::Init;
            s.runtime = Default::default();
            s.extensions.clear();
        });
        let t0 = Instant::now();
        let deadline = t0 + cfg.init_timeout;
        sh.timeline
            .record(Actor::Platform, EventKind::InitStart, None);
        sh.emit(Record::platform(
            "platform.initStart",
            SystemTime::now(),
            json!({
                "initializationType": "on-demand",
                "phase": "init",
                "runtimeVersion": RUNTIME_VERSION,
                "runtimeVersionArn": format!("arn:aws:lambda:{}::runtime:ddlambda-local", cfg.region),
                "functionName": cfg.function_name,
                "functionVersion": cfg.function_version,
            }),
        ));
        sh.echo(&format!("INIT_START Runtime Version: {RUNTIME_VERSION}"));

        // Extensions start first; the runtime starts once every one has registered.
        for path in &cfg.extensions {
            let name = file_name(path);
            // Listed before it runs, so that its registration finds it.
            sh.state.update(|s| {
                s.extensions
                    .push(crate::sandbox::Extension::new(name.clone(), true))
            });
            match process::spawn(sh, Actor::Extension(name), path, &[]) {
                Ok(_) => {}
                Err(e) => {
                    self.reset(ShutdownReason::Failure).await;
                    return Err(e);
                }
            }
        }
        let registered = timeout_at(
            deadline,
            sh.state.wait_for(|s| {
                if let Some(err) = init_failure(s) {
                    return Some(Err(err));
                }
                s.extensions
                    .iter()
                    .all(|e| e.id.is_some())
                    .then_some(Ok(()))
            }),
        )
        .await
        .unwrap_or_else(|_| Err(timeout_error(cfg.init_timeout)));
        if let Err(err) = registered {
            return Ok(self.fail_init(t0, err, false).await);
        }
        if cfg.faults.shutdown_at == Some(ShutdownPoint::Init) && !lc.shutdown_fault_fired {
            lc.shutdown_fault_fired = true;
            let duration = t0.elapsed();
            self.reset(ShutdownReason::Spindown).await;
            return Ok(InitReport {
                duration,
                error: Some(shutdown_error()),
            });
        }

        let pid = process::spawn(sh, Actor::Runtime, &cfg.function, &cfg.function_args);
        let pid = match pid {
            Ok(pid) => pid,
            Err(e) => {
                self.reset(ShutdownReason::Failure).await;
                return Err(e);
            }
        };
        process::watch_memory(sh.clone(), pid);

        let runtime_ready = timeout_at(
            deadline,
            sh.state.wait_for(|s| {
                if let Some(err) = init_failure(s) {
                    return Some(Err(err));
                }
                s.runtime.ready.then_some(Ok(()))
            }),
        )
        .await
        .unwrap_or_else(|_| Err(timeout_error(cfg.init_timeout)));
        if let Err(err) = runtime_ready {
            return Ok(self.fail_init(t0, err, true).await);
        }
        sh.timeline
            .record(Actor::Runtime, EventKind::RuntimeInitDone, None);
        sh.emit(Record::platform(
            "platform.initRuntimeDone",
            SystemTime::now(),
            json!({ "initializationType": "on-demand", "phase": "init", "status": "success" }),
        ));

        let all_ready = timeout_at(
            deadline,
            sh.state.wait_for(|s| {
                if let Some(err) = init_failure(s) {
                    return Some(Err(err));
                }
                s.extensions.iter().all(|e| e.ready).then_some(Ok(()))
            }),
        )
        .await
        .unwrap_or_else(|_| Err(timeout_error(cfg.init_timeout)));
        if let Err(err) = all_ready {
            return Ok(self.fail_init(t0, err, false).await);
        }
        let duration = t0.elapsed();
        sh.state.update(|s| s.phase = Phase::Ready);
        sh.timeline.record(
            Actor::Platform,
            EventKind::InitDone {
                status: "success".into(),
            },
            None,
        );
        sh.emit(Record::platform(
            "platform.initReport",
            SystemTime::now(),
            json!({
                "initializationType": "on-demand",
                "phase": "init",
                "status": "success",
                "metrics": { "durationMs": ms(duration) },
            }),
        ));
        lc.unreported_init = Some(duration);
        Ok(InitReport {
            duration,
            error: None,
        })
    }

    /// Reports a failed init and resets the sandbox.
    async fn fail_init(&self, t0: Instant, err: FunctionError, runtime_part: bool) -> InitReport {
        let sh = &self.shared;
        let duration = t0.elapsed();
        let status = if err.error_type == "Sandbox.Timedout" {
            "timeout"
        } else {
            "error"
        };
        if runtime_part {
            sh.emit(Record::platform(
                "platform.initRuntimeDone",
                SystemTime::now(),
                json!({ "initializationType": "on-demand", "phase": "init", "status": status, "errorType": err.error_type }),
            ));
        }
        sh.emit(Record::platform(
            "platform.initReport",
            SystemTime::now(),
            json!({
                "initializationType": "on-demand",
                "phase": "init",
                "status": status,
                "errorType": err.error_type,
                "metrics": { "durationMs": ms(duration) },
            }),
        ));
        sh.timeline.record(
            Actor::Platform,
            EventKind::InitDone {
                status: status.into(),
            },
            None,
        );
        sh.echo(&format!(
            "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: {status}\tError Type: {}",
            ms(duration),
            err.error_type
        ));
        let reason = if status == "timeout" {
            ShutdownReason::Timeout
        } else {
            ShutdownReason::Failure
        };
        self.reset(reason).await;
        InitReport {
            duration,
            error: Some(err),
        }
    }

    /// Invokes the function with an event (running init first on a cold start). Function
    /// errors, crashes, timeouts and out-of-memory kills are results, not `Err`.
    pub async fn invoke(
        &self,
        event: impl Into<Bytes>,
        opts: InvokeOptions,
    ) -> Result<InvokeResult, PlatformError> {
        let event = event.into();
        let mut lc = self.lifecycle.lock().await;
        let sh = self.shared.clone();
        let cfg = &sh.config;
        let request_id = uuid_v4();
        if sh.state.read(|s| s.phase != Phase::Ready) {
            let init = self.init(&mut lc).await?;
            if let Some(err) = init.error {
                lc.unreported_init = None;
                return Ok(self.init_failed_result(request_id, init.duration, err));
            }
        }
        let init_duration = lc.unreported_init.take();
        let started_at = SystemTime::now();
        let t0 = Instant::now();
        let deadline = t0 + cfg.timeout;
        let deadline_ms = epoch_ms(started_at + cfg.timeout);
        let trace_header = opts.xray_header.unwrap_or_else(|| xray_header(started_at));
        let tracing = json!({ "type": "X-Amzn-Trace-Id", "value": trace_header });
        let invoke_event = json!({
            "eventType": "INVOKE",
            "deadlineMs": deadline_ms,
            "requestId": request_id,
            "invokedFunctionArn": cfg.function_arn(),
            "tracing": tracing,
        });
        sh.timeline
            .record(Actor::Platform, EventKind::InvokeStart, Some(&request_id));
        sh.emit(Record::platform(
            "platform.start",
            started_at,
            json!({ "requestId": request_id, "version": cfg.function_version, "tracing": tracing }),
        ));
        sh.echo(&format!(
            "START RequestId: {request_id} Version: {}",
            cfg.function_version
        ));
        sh.state.update(|s| {
            s.phase = Phase::Invoke;
            s.runtime.answer = None;
            s.runtime.pending = Some(PendingInvoke {
                request_id: request_id.clone(),
                event,
                deadline_ms,
                trace_header: trace_header.clone(),
                client_context: opts.client_context.clone(),
                cognito_identity: opts.cognito_identity.clone(),
            });
            for ext in s
                .extensions
                .iter_mut()
                .filter(|e| e.invoke && e.exited.is_none())
            {
                ext.queue.push_back(ExtensionEvent {
                    request_id: Some(request_id.clone()),
                    body: invoke_event.clone(),
                    shutdown: false,
                });
            }
        });
        if let Some(after) = cfg.faults.kill_function_after {
            self.kill_function_later(&request_id, after);
        }

        // Phase 1: the runtime answers, crashes, or runs out of time.
        let shutdown_mid_invoke =
            cfg.faults.shutdown_at == Some(ShutdownPoint::Invoke) && !lc.shutdown_fault_fired;
        let mut end = if shutdown_mid_invoke {
            lc.shutdown_fault_fired = true;
            let id = request_id.clone();
            let delivered = timeout_at(
                deadline,
                sh.state.wait_for(|s| {
                    let runtime_has_it = s.runtime.current.as_deref() == Some(&id)
                        || s.runtime.answer.is_some()
                        || s.runtime.exited.is_some();
                    let extensions_have_it = s.extensions.iter().all(|e| e.queue.is_empty());
                    (runtime_has_it && extensions_have_it).then_some(())
                }),
            )
            .await;
            if delivered.is_ok() {
                self.reset(ShutdownReason::Spindown).await;
                RuntimeEnd::Aborted
            } else {
                RuntimeEnd::TimedOut
            }
        } else {
            RuntimeEnd::TimedOut
        };
        if !shutdown_mid_invoke {
            let id = request_id.clone();
            end = timeout_at(
                deadline,
                sh.state.wait_for(|s| {
                    if s.abort.is_some() {
                        return Some(RuntimeEnd::Aborted);
                    }
                    if s.runtime.answer.as_ref().is_some_and(|(a, _)| *a == id) {
                        return s
                            .runtime
                            .answer
                            .take()
                            .map(|(_, a)| RuntimeEnd::Answered(a));
                    }
                    if let Some(info) = s.runtime.exited {
                        return Some(RuntimeEnd::Crashed(info, s.runtime.out_of_memory));
                    }
                    s.extensions
                        .iter()
                        .find(|e| e.external && e.exited.is_some())
                        .map(|e| RuntimeEnd::ExtensionCrashed(e.name.clone()))
                }),
            )
            .await
            .unwrap_or(RuntimeEnd::TimedOut);
        }
        let runtime_duration = t0.elapsed();
        let (mut status, mut error_type, mut outcome) = match &end {
            RuntimeEnd::Answered(Answer::Response(body)) => {
                (Status::Success, None, Outcome::Response(body.clone()))
            }
            RuntimeEnd::Answered(Answer::Error { error_type, body }) => (
                Status::Error,
                Some(error_type.clone()),
                Outcome::Error(FunctionError {
                    error_type: error_type.clone(),
                    body: body.clone(),
                }),
            ),
            RuntimeEnd::Crashed(info, oom) => {
                let kind = if *oom {
                    "Runtime.OutOfMemory"
                } else {
                    "Runtime.ExitError"
                };
                let msg =
                    format!("RequestId: {request_id} Error: Runtime exited with error: {info}");
                (
                    Status::Failure,
                    Some(kind.to_string()),
                    Outcome::Error(FunctionError::new(kind, &msg)),
                )
            }
            RuntimeEnd::ExtensionCrashed(name) => {
                let msg = format!(
                    "RequestId: {request_id} Error: extension {name} exited during the invocation"
                );
                (
                    Status::Failure,
                    Some("Extension.Crash".into()),
                    Outcome::Error(FunctionError::new("Extension.Crash", &msg)),
                )
            }
            RuntimeEnd::TimedOut => {
                let msg = format!(
                    "{} {request_id} Task timed out after {:.2} seconds",
                    rfc3339_ms(SystemTime::now()),
                    cfg.timeout.as_secs_f64()
                );
                (
                    Status::Timeout,
                    Some("Sandbox.Timedout".into()),
                    Outcome::Error(FunctionError::new("Sandbox.Timedout", &msg)),
                )
            }
            RuntimeEnd::Aborted => (
                Status::Failure,
                Some("Sandbox.Shutdown".into()),
                Outcome::Error(shutdown_error()),
            ),
        };
        let produced_bytes = match &end {
            RuntimeEnd::Answered(Answer::Response(b) | Answer::Error { body: b, .. }) => b.len(),
            _ => 0,
        };
        sh.timeline.record(
            Actor::Runtime,
            EventKind::RuntimeDone {
                status: status.as_str().into(),
            },
            Some(&request_id),
        );
        let mut runtime_done = json!({
            "requestId": request_id,
            "status": status.as_str(),
            "metrics": { "durationMs": ms(runtime_duration), "producedBytes": produced_bytes },
            "spans": [
                { "name": "responseLatency", "start": rfc3339_ms(started_at), "durationMs": ms(runtime_duration) },
                { "name": "responseDuration", "start": rfc3339_ms(started_at + runtime_duration), "durationMs": 0.0 },
            ],
            "tracing": tracing,
        });
        if let Some(t) = &error_type {
            runtime_done["errorType"] = json!(t);
        }
        sh.emit(Record::platform(
            "platform.runtimeDone",
            SystemTime::now(),
            runtime_done,
        ));

        // Phase 2: every INVOKE extension calls /next again, inside the same deadline.
        if matches!(end, RuntimeEnd::Answered(_)) {
            if cfg.faults.shutdown_at == Some(ShutdownPoint::RuntimeDone)
                && !lc.shutdown_fault_fired
            {
                lc.shutdown_fault_fired = true;
                // Every INVOKE extension holds its event first, as after a real runtimeDone.
                let delivered = |s: &mut crate::sandbox::Sandbox| {
                    s.extensions
                        .iter()
                        .all(|e| e.queue.is_empty())
                        .then_some(())
                };
                let _ = timeout_at(deadline, sh.state.wait_for(delivered)).await;
                self.reset(ShutdownReason::Spindown).await;
                end = RuntimeEnd::Aborted;
            } else {
                let waited = timeout_at(
                    deadline,
                    sh.state.wait_for(|s| {
                        if s.abort.is_some() {
                            return Some(RuntimeEnd::Aborted);
                        }
                        if let Some(e) = s
                            .extensions
                            .iter()
                            .find(|e| e.external && e.exited.is_some())
                        {
                            return Some(RuntimeEnd::ExtensionCrashed(e.name.clone()));
                        }
                        s.extensions
                            .iter()
                            .all(|e| !e.invoke || e.idle())
                            .then_some(RuntimeEnd::Answered(Answer::Response(Bytes::new())))
                    }),
                )
                .await;
                match waited {
                    Ok(RuntimeEnd::Answered(_)) => {}
                    Ok(other) => end = other,
                    Err(_) => end = RuntimeEnd::TimedOut,
                }
            }
            match &end {
                RuntimeEnd::Answered(_) => {}
                RuntimeEnd::TimedOut => {
                    // The caller already has the runtime's answer; the invocation still timed out.
                    status = Status::Timeout;
                    error_type = Some("Sandbox.Timedout".into());
                }
                RuntimeEnd::ExtensionCrashed(name) => {
                    let msg = format!(
                        "RequestId: {request_id} Error: extension {name} exited during the invocation"
                    );
                    status = Status::Failure;
                    error_type = Some("Extension.Crash".into());
                    outcome = Outcome::Error(FunctionError::new("Extension.Crash", &msg));
                }
                _ => {
                    status = Status::Failure;
                    error_type = Some("Sandbox.Shutdown".into());
                    outcome = Outcome::Error(shutdown_error());
                }
            }
        }
        let duration = t0.elapsed();
        sh.timeline.record(
            Actor::Platform,
            EventKind::InvokeEnd {
                status: status.as_str().into(),
            },
            Some(&request_id),
        );
        let (peak_kib, pid) = sh.state.read(|s| (s.runtime.peak_rss_kib, s.runtime.pid));
        let peak_kib = pid
            .and_then(process::memory)
            .map_or(peak_kib, |m| peak_kib.max(m.peak_kib));
        let out_of_memory = matches!(end, RuntimeEnd::Crashed(_, true));
        let max_memory_used_mb = if out_of_memory {
            cfg.memory_mb
        } else {
            (peak_kib.div_ceil(1024) as u32).min(cfg.memory_mb)
        };
        let billed = duration + init_duration.unwrap_or_default();
        let report = Report {
            request_id: request_id.clone(),
            status,
            error_type: error_type.clone(),
            duration_ms: ms(duration),
            billed_duration_ms: billed.as_micros().div_ceil(1000) as u64,
            memory_size_mb: cfg.memory_mb,
            max_memory_used_mb,
            init_duration_ms: init_duration.map(ms),
        };
        self.emit_report(&report, &tracing);
        sh.echo(&format!("END RequestId: {request_id}"));
        sh.echo(&report.to_string());

        match end {
            RuntimeEnd::Answered(_) => sh.state.update(|s| s.phase = Phase::Ready),
            RuntimeEnd::TimedOut => self.reset(ShutdownReason::Timeout).await,
            RuntimeEnd::Crashed(..) | RuntimeEnd::ExtensionCrashed(_) => {
                self.reset(ShutdownReason::Failure).await
            }
            // Reset already, or about to be by the caller of `shutdown`.
            RuntimeEnd::Aborted => {}
        }
        Ok(InvokeResult {
            request_id,
            outcome,
            report,
            cold_start: init_duration.is_some(),
            runtime_duration,
        })
    }

    fn emit_report(&self, r: &Report, tracing: &Value) {
        let mut metrics = json!({
            "durationMs": r.duration_ms,
            "billedDurationMs": r.billed_duration_ms,
            "memorySizeMB": r.memory_size_mb,
            "maxMemoryUsedMB": r.max_memory_used_mb,
        });
        if let Some(init) = r.init_duration_ms {
            metrics["initDurationMs"] = json!(init);
        }
        let mut record = json!({
            "requestId": r.request_id,
            "status": r.status.as_str(),
            "metrics": metrics,
            "tracing": tracing,
        });
        if let Some(t) = &r.error_type {
            record["errorType"] = json!(t);
        }
        self.shared.emit(Record::platform(
            "platform.report",
            SystemTime::now(),
            record,
        ));
    }

    fn init_failed_result(
        &self,
        request_id: String,
        init: Duration,
        err: FunctionError,
    ) -> InvokeResult {
        let cfg = &self.shared.config;
        let report = Report {
            request_id: request_id.clone(),
            status: Status::Failure,
            error_type: Some(err.error_type.clone()),
            duration_ms: 0.0,
            billed_duration_ms: init.as_micros().div_ceil(1000) as u64,
            memory_size_mb: cfg.memory_mb,
            max_memory_used_mb: 0,
            init_duration_ms: Some(ms(init)),
        };
        self.shared.echo(&report.to_string());
        InvokeResult {
            request_id,
            outcome: Outcome::Error(err),
            report,
            cold_start: true,
            runtime_duration: Duration::ZERO,
        }
    }

    fn kill_function_later(&self, request_id: &str, after: Duration) {
        let sh = self.shared.clone();
        let id = request_id.to_string();
        tokio::spawn(async move {
            let (generation, pid) = sh
                .state
                .wait_for(|s| {
                    (s.runtime.current.as_deref() == Some(&id))
                        .then_some((s.generation, s.runtime.pid))
                })
                .await;
            tokio::time::sleep(after).await;
            let still = sh
                .state
                .read(|s| s.generation == generation && s.runtime.exited.is_none());
            if let (true, Some(pid)) = (still, pid) {
                signal(pid, libc::SIGKILL);
                sh.timeline.record(
                    Actor::Runtime,
                    EventKind::Killed {
                        reason: "fault: kill_function_after".into(),
                    },
                    Some(&id),
                );
            }
        });
    }

    /// Ends the sandbox: the runtime is stopped, extensions get SHUTDOWN and the budget to
    /// exit, leftovers are killed, and the next invocation is a cold start.
    async fn reset(&self, reason: ShutdownReason) {
        let sh = &self.shared;
        let (runtime, internal) = sh.state.update(|s| {
            let alive = s.phase != Phase::Down;
            s.phase = Phase::Shutdown;
            let runtime = s.runtime.pid.filter(|_| s.runtime.exited.is_none());
            (
                alive.then_some(runtime),
                s.extensions.iter().any(|e| !e.external && e.id.is_some()),
            )
        });
        let Some(runtime) = runtime else {
            sh.state.update(|s| {
                s.phase = Phase::Down;
                s.abort = None;
            });
            return;
        };
        sh.timeline.record(
            Actor::Platform,
            EventKind::ShutdownStart {
                reason: reason.as_str().into(),
            },
            None,
        );
        // Pending telemetry (the last platform.report) goes out first, briefly awaited, so
        // that a subscriber usually holds it when SHUTDOWN arrives; late batches still flow.
        let flushed = sh
            .hub
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush();
        let _ = tokio::time::timeout(TELEMETRY_FLUSH_WAIT, async {
            for rx in flushed {
                let _ = rx.await;
            }
        })
        .await;
        let budget_end = Instant::now() + sh.config.shutdown_budget;
        let deadline_ms = epoch_ms(SystemTime::now() + sh.config.shutdown_budget);

        // SHUTDOWN next, so extensions start flushing while the runtime is stopped.
        let event = json!({ "eventType": "SHUTDOWN", "shutdownReason": reason.as_str(), "deadlineMs": deadline_ms });
        let unsubscribed: Vec<u32> = sh.state.update(|s| {
            let mut kill = Vec::new();
            for ext in s.extensions.iter_mut().filter(|e| e.exited.is_none()) {
                let Some(pid) = ext.pid else { continue };
                if ext.shutdown && ext.id.is_some() {
                    ext.queue.clear();
                    ext.queue.push_back(ExtensionEvent {
                        request_id: None,
                        body: event.clone(),
                        shutdown: true,
                    });
                } else {
                    kill.push(pid);
                }
            }
            kill
        });
        let flushed = sh
            .hub
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush();
        if let Some(pid) = runtime {
            if internal {
                signal(pid, libc::SIGTERM);
                let grace = (Instant::now() + RUNTIME_TERM_GRACE).min(budget_end);
                let _ =
                    timeout_at(grace, sh.state.wait_for(|s| s.runtime.exited.map(|_| ()))).await;
            }
            if sh.state.read(|s| s.runtime.exited.is_none()) {
                signal(pid, libc::SIGKILL);
                sh.timeline.record(
                    Actor::Runtime,
                    EventKind::Killed {
                        reason: format!("sandbox {}", reason.as_str()),
                    },
                    None,
                );
            }
        }
        for pid in unsubscribed {
            self.kill_extension(pid, "not registered for SHUTDOWN");
        }
        let all_exited = |s: &mut crate::sandbox::Sandbox| {
            s.extensions
                .iter()
                .all(|e| e.pid.is_none() || e.exited.is_some())
                .then_some(())
        };
        let _ = timeout_at(budget_end, sh.state.wait_for(all_exited)).await;
        let late: Vec<u32> = sh.state.read(|s| {
            s.extensions
                .iter()
                .filter(|e| e.exited.is_none())
                .filter_map(|e| e.pid)
                .collect()
        });
        for pid in late {
            self.kill_extension(pid, "still running at the SHUTDOWN deadline");
        }
        let reaped = async {
            let _ = sh.state.wait_for(all_exited).await;
            let _ = sh
                .state
                .wait_for(|s| {
                    s.runtime
                        .pid
                        .is_none_or(|_| s.runtime.exited.is_some())
                        .then_some(())
                })
                .await;
        };
        let _ = tokio::time::timeout(REAP_WAIT, reaped).await;
        // Batches already flushed on their way; whatever a dead subscriber did not take is gone.
        let _ = tokio::time::timeout(Duration::from_millis(100), async {
            for rx in flushed {
                let _ = rx.await;
            }
        })
        .await;
        sh.hub
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reset();
        sh.state.update(|s| {
            s.generation += 1;
            s.phase = Phase::Down;
            s.abort = None;
            s.runtime = Default::default();
            s.extensions.clear();
        });
        sh.timeline
            .record(Actor::Platform, EventKind::ShutdownEnd, None);
    }

    fn kill_extension(&self, pid: u32, reason: &str) {
        let name = self.shared.state.read(|s| {
            s.extensions
                .iter()
                .find(|e| e.pid == Some(pid))
                .map(|e| e.name.clone())
        });
        signal(pid, libc::SIGKILL);
        if let Some(name) = name {
            self.shared.timeline.record(
                Actor::Extension(name),
                EventKind::Killed {
                    reason: reason.into(),
                },
                None,
            );
        }
    }
}

/// Why init cannot complete, if it cannot.
fn init_failure(s: &crate::sandbox::Sandbox) -> Option<FunctionError> {
    if s.abort.is_some() {
        return Some(shutdown_error());
    }
    if let Some((kind, body)) = &s.runtime.init_error {
        return Some(FunctionError {
            error_type: kind.clone(),
            body: body.clone(),
        });
    }
    if let Some(info) = s.runtime.exited {
        let kind = if s.runtime.out_of_memory {
            "Runtime.OutOfMemory"
        } else {
            "Runtime.ExitError"
        };
        return Some(FunctionError::new(
            kind,
            &format!("Runtime exited with error: {info}"),
        ));
    }
    for e in &s.extensions {
        if let Some(kind) = &e.error {
            return Some(FunctionError::new(
                kind,
                &format!("extension {} reported an init error", e.name),
            ));
        }
        if let Some(info) = e.exited {
            return Some(FunctionError::new(
                "Extension.Crash",
                &format!("extension {} exited during init: {info}", e.name),
            ));
        }
    }
    None
}

fn timeout_error(limit: Duration) -> FunctionError {
    FunctionError::new(
        "Sandbox.Timedout",
        &format!("Init timed out after {:.2} seconds", limit.as_secs_f64()),
    )
}

/// Our own error type for an invocation cut short by SHUTDOWN (Lambda never does that).
fn shutdown_error() -> FunctionError {
    FunctionError::new(
        "Sandbox.Shutdown",
        "the sandbox was shut down during the invocation",
    )
}
