//! Process metrics from the sandbox's `/proc`, per invocation.
//!
//! At the start and end of an invocation: `/proc/stat` (CPU ticks, total and per core),
//! `/proc/uptime` and `/proc/net/dev`, whose deltas give CPU time and utilisation and network
//! bytes. In between, a sampling task keeps maxima of what it reads from cheap files, every
//! 10 ms for the first 200 ms and then less often, settling at 100 ms ([`period_after`]): short
//! invocations (most of them) are sampled finely, and a long one does not pay 100 wake-ups a
//! second. It reads: per process, `stat()` of `/proc/<pid>/task` (threads) and `/proc/<pid>/fd` (open
//! descriptors) and a read of `/proc/<pid>/statm` (RSS); and `statvfs("/tmp")`. Limits
//! (`Max open files`, `Max processes`) are read once per invocation. Files that vanish or are
//! unreadable are skipped.
//!
//! Which processes: the whole sandbox (every process in `/proc`, re-listed every 100 ms), as in
//! Lambda; on a machine with more than [`SANDBOX_MAX_PROCESSES`] processes (a developer
//! machine, the local platform) only this process's siblings and children, listed once.
//! The cost is measured in `extension/BENCHMARKS.md` (`--bench proc_sampling`).
//!
//! Metric names are bottlecap's where it has one (`cpu_*`, `num_cores`, `tmp_*`, `fd_*`,
//! `threads_*`, `rx_bytes`, `tx_bytes`, `total_network`); `rss_max` (MB, summed over the
//! watched processes) is ours: bottlecap has no RSS metric.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// Sampling period at the start of an invocation.
pub const PERIOD: Duration = Duration::from_millis(10);
/// The period long invocations settle at.
pub const MAX_PERIOD: Duration = Duration::from_millis(100);
/// Samples taken at each period before it doubles: 200 ms at 10 ms, then 20, 40, 80 ms, and
/// 100 ms from about 3 s into an invocation.
pub const SAMPLES_PER_STEP: u32 = 20;

/// The period after `n` samples.
pub fn period_after(n: u32) -> Duration {
    let doublings = (n / SAMPLES_PER_STEP).min(4);
    (PERIOD * (1u32 << doublings)).min(MAX_PERIOD)
}

/// Where to look: the `/proc` root and which processes count.
#[derive(Debug, Clone)]
pub struct ProcScope {
    pub proc_root: PathBuf,
    /// `/tmp`, whose file system is measured.
    pub tmp: PathBuf,
    /// `None`: every process in `proc_root` (the whole sandbox, as in Lambda).
    pub pids: Option<Vec<u32>>,
}

impl Default for ProcScope {
    fn default() -> Self {
        Self {
            proc_root: PathBuf::from("/proc"),
            tmp: PathBuf::from("/tmp"),
            pids: None,
        }
    }
}

/// CPU ticks from one `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTicks {
    pub user: u64,
    pub system: u64,
    pub idle: u64,
    pub total: u64,
}

/// What is read at the start and end of an invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub all: CpuTicks,
    pub cores: Vec<CpuTicks>,
    pub uptime_s: f64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Maxima kept by the sampling task.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Peaks {
    pub fd_use: u64,
    pub threads_use: u64,
    pub rss_bytes: u64,
    pub tmp_used: u64,
    pub tmp_max: u64,
    pub samples: u64,
}

impl Peaks {
    fn raise(&mut self, s: &Sample) {
        self.fd_use = self.fd_use.max(s.fds);
        self.threads_use = self.threads_use.max(s.threads);
        self.rss_bytes = self.rss_bytes.max(s.rss_bytes);
        self.tmp_used = self.tmp_used.max(s.tmp_used);
        self.tmp_max = self.tmp_max.max(s.tmp_size);
        self.samples += 1;
    }
}

/// One 10 ms sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub fds: u64,
    pub threads: u64,
    pub rss_bytes: u64,
    pub tmp_used: u64,
    pub tmp_size: u64,
}

/// Per-process limits (soft), from `/proc/self/limits`: the sandbox's processes share them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub fd_max: Option<u64>,
    pub threads_max: Option<u64>,
}

/// Clock ticks per second for `/proc/stat` (USER_HZ, 100 on Linux).
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).ok().filter(|p| *p > 0).unwrap_or(4096)
}

impl ProcScope {
    /// Reads the start/end snapshot; missing files leave zeros.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        if let Ok(stat) = fs::read_to_string(self.proc_root.join("stat")) {
            for line in stat.lines().take_while(|l| l.starts_with("cpu")) {
                let mut fields = line.split_ascii_whitespace();
                let name = fields.next().unwrap_or_default();
                let t = parse_cpu_fields(fields);
                if name == "cpu" {
                    snap.all = t;
                } else {
                    snap.cores.push(t);
                }
            }
        }
        if let Ok(up) = fs::read_to_string(self.proc_root.join("uptime")) {
            snap.uptime_s = up
                .split_ascii_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
        }
        if let Ok(dev) = fs::read_to_string(self.proc_root.join("net/dev")) {
            for line in dev.lines().skip(2) {
                let Some((iface, rest)) = line.split_once(':') else {
                    continue;
                };
                if iface.trim() == "lo" {
                    continue;
                }
                let f: Vec<u64> = rest
                    .split_ascii_whitespace()
                    .map(|v| v.parse().unwrap_or(0))
                    .collect();
                snap.rx_bytes += f.first().copied().unwrap_or(0);
                snap.tx_bytes += f.get(8).copied().unwrap_or(0);
            }
        }
        snap
    }

    /// Reads the soft limits.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        let Ok(text) = fs::read_to_string(self.proc_root.join("self/limits")) else {
            return limits;
        };
        for line in text.lines() {
            let value = |prefix: &str| {
                line.strip_prefix(prefix)?
                    .split_ascii_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            };
            if let Some(v) = value("Max open files") {
                limits.fd_max = Some(v);
            }
            if let Some(v) = value("Max processes") {
                limits.threads_max = Some(v);
            }
        }
        limits
    }

    /// The processes to watch, into `pids`. `None` in the scope means the whole sandbox: every
    /// process in `/proc` — unless there are more than [`SANDBOX_MAX_PROCESSES`], which means
    /// this is no Lambda sandbox (a developer machine, the local platform) and only this
    /// process's siblings and children are watched. Returns whether the list can change (and
    /// is worth refreshing).
    pub fn resolve(&self, pids: &mut Vec<u32>) -> bool {
        pids.clear();
        if let Some(list) = &self.pids {
            pids.extend_from_slice(list);
            return false;
        }
        if let Ok(dir) = fs::read_dir(&self.proc_root) {
            pids.extend(
                dir.flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())),
            );
        }
        if pids.len() <= SANDBOX_MAX_PROCESSES {
            return true;
        }
        let me = std::process::id();
        let parent = std::os::unix::process::parent_id();
        let mut scratch = Vec::new();
        let mut path = self.proc_root.clone();
        pids.retain(|pid| {
            path.push(pid.to_string());
            path.push("stat");
            let ppid = read_small(&path, &mut scratch)
                .then(|| parse_ppid(&scratch))
                .flatten();
            path.pop();
            path.pop();
            *pid == me || ppid.is_some_and(|pp| pp == parent || pp == me)
        });
        false
    }

    /// One sample over `pids`: threads, RSS and open descriptors, and `/tmp`.
    ///
    /// Per process: `stat` of `/proc/<pid>/task` (its link count is threads + 2) and of
    /// `/proc/<pid>/fd` (its size is the descriptor count on Linux ≥ 6.2; older kernels report
    /// 0 and the directory is counted instead), and `/proc/<pid>/statm` for RSS.
    pub fn sample(&self, pids: &[u32], scratch: &mut Vec<u8>) -> Sample {
        use std::os::unix::fs::MetadataExt;
        let mut s = Sample::default();
        let page = page_size();
        let fd_size_counts = is_procfs(&self.proc_root);
        let mut path = self.proc_root.clone();
        for pid in pids {
            path.push(pid.to_string());
            path.push("task");
            if let Ok(m) = fs::metadata(&path) {
                s.threads += m.nlink().saturating_sub(2);
            }
            path.set_file_name("fd");
            match fs::metadata(&path) {
                Ok(m) if fd_size_counts && m.size() > 0 => s.fds += m.size(),
                Ok(_) => {
                    if let Ok(dir) = fs::read_dir(&path) {
                        s.fds += dir.count() as u64;
                    }
                }
                Err(_) => {}
            }
            path.set_file_name("statm");
            if read_small(&path, scratch)
                && let Some(rss_pages) = parse_statm_rss(scratch)
            {
                s.rss_bytes += rss_pages * page;
            }
            path.pop();
            path.pop();
        }
        if let Some((used, size)) = statvfs_used(&self.tmp) {
            s.tmp_used = used;
            s.tmp_size = size;
        }
        s
    }
}

/// More processes than this in `/proc` is no Lambda sandbox (which runs the runtime, its
/// children and a few extensions).
pub const SANDBOX_MAX_PROCESSES: usize = 64;
/// In a sandbox the process list is re-read this often.
const REFRESH_AFTER: Duration = Duration::from_millis(100);

/// Resident pages, the second field of `/proc/<pid>/statm`.
fn parse_statm_rss(buf: &[u8]) -> Option<u64> {
    std::str::from_utf8(buf)
        .ok()?
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The parent pid (field 4) of `/proc/<pid>/stat`, counted after the command name's last `)`.
fn parse_ppid(buf: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(buf).ok()?;
    text[text.rfind(')')? + 1..]
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn read_small(path: &Path, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    match fs::File::open(path) {
        Ok(mut f) => f.read_to_end(buf).is_ok(),
        Err(_) => false,
    }
}

fn parse_cpu_fields<'a>(fields: impl Iterator<Item = &'a str>) -> CpuTicks {
    let v: Vec<u64> = fields.map(|f| f.parse().unwrap_or(0)).collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let user = get(0) + get(1);
    let system = get(2) + get(5) + get(6);
    let idle = get(3) + get(4);
    CpuTicks {
        user,
        system,
        idle,
        total: user + system + idle + get(7),
    }
}

/// Whether `path` is a procfs mount (whose `fd` directories report their entry count as size).
fn is_procfs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0) && st.f_type as i64 == PROC_SUPER_MAGIC
}

/// Used and total bytes of the file system holding `path`.
fn statvfs_used(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    let size = (st.f_blocks as u64).saturating_mul(frsize);
    let free = (st.f_bfree as u64).saturating_mul(frsize);
    Some((size.saturating_sub(free), size))
}

/// A running sampler for one invocation.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peaks: watch::Receiver<Peaks>,
    start: Snapshot,
    limits: Limits,
    scope: ProcScope,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Takes the start snapshot and starts sampling every [`PERIOD`] on the current runtime.
    pub fn start(scope: ProcScope) -> Self {
        let start = scope.snapshot();
        let limits = scope.limits();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, peaks) = watch::channel(Peaks::default());
        let task = tokio::spawn({
            let scope = scope.clone();
            let stop = stop.clone();
            async move {
                let (mut scratch, mut pids) = (Vec::with_capacity(128), Vec::new());
                let refresh = scope.resolve(&mut pids);
                let mut listed = tokio::time::Instant::now();
                let mut next = listed;
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    next += period_after(n);
                    tokio::time::sleep_until(next).await;
                    n += 1;
                    if refresh && listed.elapsed() >= REFRESH_AFTER {
                        scope.resolve(&mut pids);
                        listed = tokio::time::Instant::now();
                    }
                    let sample = scope.sample(&pids, &mut scratch);
                    tx.send_modify(|p| p.raise(&sample));
                }
            }
        });
        Self {
            stop,
            peaks,
            start,
            limits,
            scope,
            task,
        }
    }

    /// Stops sampling and returns the invocation's process metrics.
    pub fn finish(self) -> Vec<(&'static str, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.abort();
        // One last sample, so even an invocation shorter than a period is measured.
        let mut peaks = *self.peaks.borrow();
        let mut pids = Vec::new();
        self.scope.resolve(&mut pids);
        peaks.raise(&self.scope.sample(&pids, &mut Vec::new()));
        let end = self.scope.snapshot();
        derive(&self.start, &end, &peaks, &self.limits, ticks_per_second())
    }
}

/// The metrics (bottlecap's names, without the `aws.lambda.enhanced.` prefix) from two
/// snapshots, the sampled peaks and the limits. CPU times in ms, utilisation in percent.
pub fn derive(
    start: &Snapshot,
    end: &Snapshot,
    peaks: &Peaks,
    limits: &Limits,
    hz: f64,
) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    let ms = |ticks: u64| ticks as f64 * 1000.0 / hz;
    let user = end.all.user.saturating_sub(start.all.user);
    let system = end.all.system.saturating_sub(start.all.system);
    if end.all.total > 0 {
        out.push(("cpu_user_time", ms(user)));
        out.push(("cpu_system_time", ms(system)));
        out.push(("cpu_total_time", ms(user + system)));
    }
    let cores = end.cores.len();
    let wall_s = end.uptime_s - start.uptime_s;
    if cores > 0 && wall_s > 0.0 {
        let busy_s = (user + system) as f64 / hz;
        let total_pct = (busy_s / (wall_s * cores as f64) * 100.0).clamp(0.0, 100.0);
        out.push(("num_cores", cores as f64));
        out.push(("cpu_total_utilization_pct", total_pct));
        out.push(("cpu_total_utilization", total_pct / 100.0 * cores as f64));
        let per_core: Vec<f64> = end
            .cores
            .iter()
            .zip(&start.cores)
            .map(|(e, s)| {
                let busy = (e.user + e.system).saturating_sub(s.user + s.system) as f64;
                let total = e.total.saturating_sub(s.total) as f64;
                if total > 0.0 {
                    busy / total * 100.0
                } else {
                    0.0
                }
            })
            .collect();
        if let (Some(max), Some(min)) = (
            per_core.iter().copied().reduce(f64::max),
            per_core.iter().copied().reduce(f64::min),
        ) {
            out.push(("cpu_max_utilization", max));
            out.push(("cpu_min_utilization", min));
        }
    }
    let rx = end.rx_bytes.saturating_sub(start.rx_bytes) as f64;
    let tx = end.tx_bytes.saturating_sub(start.tx_bytes) as f64;
    out.push(("rx_bytes", rx));
    out.push(("tx_bytes", tx));
    out.push(("total_network", rx + tx));
    if peaks.samples > 0 {
        if peaks.tmp_max > 0 {
            out.push(("tmp_max", peaks.tmp_max as f64));
            out.push(("tmp_used", peaks.tmp_used as f64));
            out.push((
                "tmp_free",
                peaks.tmp_max.saturating_sub(peaks.tmp_used) as f64,
            ));
        }
        out.push(("fd_use", peaks.fd_use as f64));
        out.push(("threads_use", peaks.threads_use as f64));
        out.push(("rss_max", peaks.rss_bytes as f64 / (1024.0 * 1024.0)));
    }
    if let Some(v) = limits.fd_max {
        out.push(("fd_max", v as f64));
    }
    if let Some(v) = limits.threads_max {
        out.push(("threads_max", v as f64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        fs::write(
            p.join("stat"),
            "cpu  100 0 50 1000 0 0 0 0 0 0\ncpu0 60 0 30 500 0 0 0 0 0 0\ncpu1 40 0 20 500 0 0 0 0 0 0\nintr 1\n",
        )
        .expect("write");
        fs::write(p.join("uptime"), "10.00 19.00\n").expect("write");
        fs::create_dir_all(p.join("net")).expect("mkdir");
        fs::write(
            p.join("net/dev"),
            "Inter-|   Receive\n face |bytes\n    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: 1000 5 0 0 0 0 0 0 2000 5 0 0 0 0 0 0\n",
        )
        .expect("write");
        fs::create_dir_all(p.join("self")).expect("mkdir");
        fs::write(
            p.join("self/limits"),
            "Limit                     Soft Limit           Hard Limit           Units\nMax processes             1024                 1024                 processes\nMax open files            1024                 1024                 files\n",
        )
        .expect("write");
        for (pid, threads, rss, fds) in [(1u32, 3, 256, 4), (7, 5, 512, 2)] {
            let d = p.join(pid.to_string());
            fs::create_dir_all(d.join("fd")).expect("mkdir");
            for i in 0..fds {
                fs::write(d.join("fd").join(i.to_string()), "").expect("write");
            }
            // A directory's link count is 2 + its subdirectories, as procfs's `task` is
            // 2 + threads.
            for t in 0..threads {
                fs::create_dir_all(d.join("task").join(t.to_string())).expect("mkdir");
            }
            fs::write(d.join("statm"), format!("9000 {rss} 100 10 0 500 0\n")).expect("write");
            fs::write(
                d.join("stat"),
                format!(
                    "{pid} (my (odd) name) S 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 {threads} 0"
                ),
            )
            .expect("write");
        }
        dir
    }

    #[test]
    fn samples_threads_rss_and_descriptors_over_every_process() {
        let dir = fake_proc();
        let scope = ProcScope {
            proc_root: dir.path().to_path_buf(),
            tmp: dir.path().to_path_buf(),
            pids: None,
        };
        let mut pids = Vec::new();
        assert!(
            scope.resolve(&mut pids),
            "a small /proc is a sandbox, re-listed"
        );
        pids.sort_unstable();
        assert_eq!(pids, [1, 7]);
        let s = scope.sample(&pids, &mut Vec::new());
        assert_eq!(s.threads, 8);
        assert_eq!(s.fds, 6);
        assert_eq!(s.rss_bytes, 768 * page_size());
        assert!(s.tmp_size > 0);
        assert_eq!(
            scope.limits(),
            Limits {
                fd_max: Some(1024),
                threads_max: Some(1024)
            }
        );
    }

    #[test]
    fn derives_cpu_network_and_peaks() {
        let dir = fake_proc();
        let scope = ProcScope {
            proc_root: dir.path().to_path_buf(),
            tmp: dir.path().to_path_buf(),
            pids: Some(vec![7]),
        };
        let start = scope.snapshot();
        assert_eq!(start.cores.len(), 2);
        assert_eq!((start.rx_bytes, start.tx_bytes), (1000, 2000));
        let mut end = start.clone();
        // 1 s of wall time on 2 cores; core 0 busy 50 ticks of 100, core 1 idle.
        end.uptime_s += 1.0;
        end.all.user += 40;
        end.all.system += 10;
        end.all.idle += 150;
        end.all.total += 200;
        end.cores[0].user += 40;
        end.cores[0].system += 10;
        end.cores[0].idle += 50;
        end.cores[0].total += 100;
        end.cores[1].idle += 100;
        end.cores[1].total += 100;
        end.rx_bytes += 10;
        end.tx_bytes += 5;
        let mut peaks = Peaks::default();
        peaks.raise(&scope.sample(&[7], &mut Vec::new()));
        let m: std::collections::HashMap<_, _> =
            derive(&start, &end, &peaks, &scope.limits(), 100.0)
                .into_iter()
                .collect();
        assert_eq!(m["cpu_user_time"], 400.0);
        assert_eq!(m["cpu_system_time"], 100.0);
        assert_eq!(m["cpu_total_time"], 500.0);
        assert_eq!(m["num_cores"], 2.0);
        assert_eq!(m["cpu_total_utilization_pct"], 25.0);
        assert_eq!(m["cpu_total_utilization"], 0.5);
        assert_eq!(m["cpu_max_utilization"], 50.0);
        assert_eq!(m["cpu_min_utilization"], 0.0);
        assert_eq!(
            (m["rx_bytes"], m["tx_bytes"], m["total_network"]),
            (10.0, 5.0, 15.0)
        );
        assert_eq!((m["fd_use"], m["threads_use"]), (2.0, 5.0));
        assert_eq!((m["fd_max"], m["threads_max"]), (1024.0, 1024.0));
        assert!(m["tmp_max"] >= m["tmp_used"]);
    }

    #[test]
    fn the_period_backs_off_to_a_ceiling() {
        assert_eq!(period_after(0), PERIOD);
        assert_eq!(period_after(19), PERIOD);
        assert_eq!(period_after(20), PERIOD * 2);
        assert_eq!(period_after(60), PERIOD * 8);
        assert_eq!(period_after(80), MAX_PERIOD);
        assert_eq!(period_after(u32::MAX), MAX_PERIOD);
        // 200 ms at 10 ms, 400 at 20, 800 at 40, 1600 at 80: 100 ms from 3 s on.
        let ramp: Duration = (0..80).map(period_after).sum();
        assert_eq!(ramp, Duration::from_millis(3000));
    }

    #[test]
    fn the_real_proc_counts_this_processs_descriptors_and_threads() {
        let scope = ProcScope::default();
        let me = std::process::id();
        let s = scope.sample(&[me], &mut Vec::new());
        let fds = fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0) as u64;
        let threads = fs::read_dir("/proc/self/task")
            .map(|d| d.count())
            .unwrap_or(0) as u64;
        // Other test threads may open or close descriptors and threads meanwhile.
        assert!(s.fds.abs_diff(fds) <= 8, "{s:?} vs {fds}");
        assert!(s.threads.abs_diff(threads) <= 8, "{s:?} vs {threads}");
        assert!(s.rss_bytes > 0);
        // On a machine with many processes only this one's family is watched.
        let mut pids = Vec::new();
        scope.resolve(&mut pids);
        assert!(pids.contains(&me));
        let total = fs::read_dir("/proc")
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                    .count()
            })
            .unwrap_or(0);
        if total > SANDBOX_MAX_PROCESSES {
            assert!(pids.len() < total);
        }
    }

    #[tokio::test]
    async fn a_real_sampler_measures_this_process() {
        let scope = ProcScope {
            pids: Some(vec![std::process::id()]),
            ..ProcScope::default()
        };
        let sampler = Sampler::start(scope);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let m: std::collections::HashMap<_, _> = sampler.finish().into_iter().collect();
        assert!(m["threads_use"] >= 1.0);
        assert!(m["fd_use"] >= 3.0);
        assert!(m["rss_max"] > 0.0);
        assert!(m.contains_key("cpu_total_time"));
    }
}
