//! Children of the platform: started in their own process group with Lambda's environment,
//! their output turned into log lines, their exit recorded, their memory watched.

use std::collections::HashSet;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::error::PlatformError;
use crate::platform::Shared;
use crate::sandbox::ExitInfo;
use crate::telemetry::Record;
use crate::timeline::{Actor, EventKind};

/// How often the function's resident set size is sampled. /proc reads cost microseconds; 5 ms
/// catches a runaway allocation long before it takes the machine down.
const MEMORY_POLL: Duration = Duration::from_millis(5);

/// PIDs (= process group ids) of every live child, killed when the platform is dropped.
#[derive(Clone, Default)]
pub(crate) struct Pids(Arc<Mutex<HashSet<u32>>>);

impl Pids {
    fn insert(&self, pid: u32) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pid);
    }

    fn remove(&self, pid: u32) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&pid);
    }

    /// SIGKILLs every live child's process group.
    pub(crate) fn kill_all(&self) {
        for pid in self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
        {
            signal(pid, libc::SIGKILL);
        }
    }
}

/// Sends a signal to a child's process group (and to the child itself, should it have left
/// the group).
pub(crate) fn signal(pid: u32, sig: i32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) has no memory-safety preconditions; a stale pid is reported as ESRCH.
    unsafe {
        libc::kill(-pid, sig);
        libc::kill(pid, sig);
    }
}

/// Starts an executable with Lambda's environment. Returns its PID.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    actor: Actor,
    path: &Path,
    args: &[String],
) -> Result<u32, PlatformError> {
    let cfg = &shared.config;
    let mut cmd = Command::new(path);
    cmd.args(args)
        .current_dir(&cfg.task_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if !cfg.inherit_env {
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
    }
    cmd.envs(shared.standard_env())
        .envs(cfg.env.iter().map(|(k, v)| (k, v)));
    // Spawned under the state lock: the child's first API call (which takes the same lock)
    // then always finds its process and follows its `Spawned` event in the timeline.
    let spawned = shared.state.update(|s| {
        let child = cmd.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("exited before it could be tracked"))?;
        shared.pids.insert(pid);
        shared
            .timeline
            .record(actor.clone(), EventKind::Spawned { pid }, None);
        match &actor {
            Actor::Extension(name) => {
                for ext in s
                    .extensions
                    .iter_mut()
                    .filter(|e| e.external && e.name == *name)
                {
                    ext.pid = Some(pid);
                }
            }
            _ => s.runtime.pid = Some(pid),
        }
        Ok::<_, std::io::Error>((child, pid))
    });
    let (mut child, pid) = spawned.map_err(|source| PlatformError::Spawn {
        path: path.display().to_string(),
        source,
    })?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_lines(shared.clone(), actor.clone(), out));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_lines(shared.clone(), actor.clone(), err));
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let status = child.wait().await;
        shared.pids.remove(pid);
        let info = status.map_or(
            ExitInfo {
                code: None,
                signal: None,
            },
            exit_info,
        );
        shared.timeline.record(
            actor,
            EventKind::Exited {
                code: info.code,
                signal: info.signal,
            },
            None,
        );
        shared.state.update(|s| {
            if s.runtime.pid == Some(pid) {
                s.runtime.exited = Some(info);
            }
            for ext in s.extensions.iter_mut().filter(|e| e.pid == Some(pid)) {
                ext.exited = Some(info);
            }
        });
    });
    Ok(pid)
}

fn exit_info(status: ExitStatus) -> ExitInfo {
    use std::os::unix::process::ExitStatusExt;
    ExitInfo {
        code: status.code(),
        signal: status.signal(),
    }
}

/// Each output line becomes a `function` or `extension` record and is echoed.
async fn forward_lines(shared: Arc<Shared>, actor: Actor, stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let now = SystemTime::now();
        match &actor {
            Actor::Extension(name) => {
                shared.echo(&format!("[{name}] {line}"));
                shared.emit(Record::extension(now, &line));
            }
            _ => {
                shared.echo(&line);
                shared.emit(Record::function(now, &line));
            }
        }
    }
}

/// Memory figures of a live process, KiB.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

/// Reads VmRSS and VmHWM from /proc/<pid>/status; `None` once the process is gone.
pub(crate) fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:").unwrap_or(0),
    })
}

/// Samples the function's memory until it exits: keeps the peak for reports and SIGKILLs the
/// function once its resident set exceeds the memory size, as Lambda's cgroup limit would.
pub(crate) fn watch_memory(shared: Arc<Shared>, pid: u32) {
    let limit_kib = u64::from(shared.config.memory_mb) * 1024;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(MEMORY_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_peak = 0;
        loop {
            tick.tick().await;
            let Some(mem) = memory(pid) else { return };
            let peak = mem.peak_kib.max(mem.rss_kib);
            let over = mem.rss_kib > limit_kib;
            // Only a new peak or the limit is news: waking every waiter each tick would be waste.
            if peak > last_peak || over {
                last_peak = peak;
                let current = shared.state.update(|s| {
                    if s.runtime.pid != Some(pid) || s.runtime.exited.is_some() {
                        return false;
                    }
                    s.runtime.peak_rss_kib = s.runtime.peak_rss_kib.max(peak);
                    s.runtime.out_of_memory |= over;
                    true
                });
                if !current {
                    return;
                }
            }
            if over {
                shared.timeline.record(
                    Actor::Runtime,
                    EventKind::OutOfMemory {
                        rss_kib: mem.rss_kib,
                    },
                    None,
                );
                signal(pid, libc::SIGKILL);
                shared.timeline.record(
                    Actor::Runtime,
                    EventKind::Killed {
                        reason: format!("memory {} KiB over {limit_kib} KiB", mem.rss_kib),
                    },
                    None,
                );
                return;
            }
        }
    });
}
