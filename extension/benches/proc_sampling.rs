//! What the `/proc` sampler costs a function, measured in one run against baselines from the
//! same run:
//!
//! 1. one 10 ms sample (`ProcScope::sample`): a Lambda-like sandbox (this process and three
//!    children), every process of this machine (the worst case), and the default scope, which
//!    on a machine this busy narrows to this process's family;
//! 2. the sampler's own CPU time (process CPU over wall time, the bench thread asleep), over an
//!    invocation's first second and in the steady state, against an empty 10 ms ticker;
//! 3. a CPU-bound "handler" timed with and without the sampler running beside it, alternating
//!    rounds; the ratio is the slowdown the function would see.
//!
//! `cargo bench -p ddlambda-extension --bench proc_sampling`

use std::hint::black_box;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ddlambda_extension::enhanced::process::{ProcScope, Sampler};

/// Kills the child by its PID when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn per_sample(scope: &ProcScope, n: u32) -> (Duration, usize) {
    let (mut scratch, mut pids) = (Vec::new(), Vec::new());
    scope.resolve(&mut pids);
    for _ in 0..20 {
        black_box(scope.sample(&pids, &mut scratch));
    }
    let t = Instant::now();
    for _ in 0..n {
        black_box(scope.sample(&pids, &mut scratch));
    }
    (t.elapsed() / n, pids.len())
}

/// Every process of this machine, as if it all were one sandbox.
fn every_process() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// A fixed CPU-bound workload (~100-200 ms).
fn handler() -> Duration {
    let t = Instant::now();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..60_000_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x);
    t.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let children: Vec<Guard> = (0..3)
        .filter_map(|_| Command::new("sleep").arg("120").spawn().ok().map(Guard))
        .collect();
    let mut pids = vec![std::process::id()];
    pids.extend(children.iter().map(|c| c.0.id()));
    let sandbox = ProcScope {
        pids: Some(pids),
        ..ProcScope::default()
    };
    let machine = ProcScope {
        pids: Some(every_process()),
        ..ProcScope::default()
    };
    let auto = ProcScope::default();

    let (t_sandbox, n_sandbox) = per_sample(&sandbox, 2000);
    let (t_machine, n_machine) = per_sample(&machine, 200);
    let (t_auto, n_auto) = per_sample(&auto, 2000);
    let period = ddlambda_extension::enhanced::process::PERIOD;
    println!(
        "one sample, {n_sandbox} processes (Lambda-like): {:.1} µs ({:.2} % of the 10 ms period)",
        t_sandbox.as_secs_f64() * 1e6,
        t_sandbox.as_secs_f64() / period.as_secs_f64() * 100.0
    );
    println!(
        "one sample, {n_machine} processes (this whole machine): {:.1} µs ({:.2} % of the period)",
        t_machine.as_secs_f64() * 1e6,
        t_machine.as_secs_f64() / period.as_secs_f64() * 100.0
    );

    println!(
        "one sample, default scope on this machine ({n_auto} processes: this one's family): {:.1} µs",
        t_auto.as_secs_f64() * 1e6
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    // 2. The sampler's CPU while the rest of the process sleeps: over an invocation's first
    //    second (10 ms samples, then the back-off) and in its steady state (100 ms), against a
    //    task that only wakes at 10 ms (what a fixed-period sampler pays before reading
    //    anything).
    let cpu_over = |window: Duration| {
        let c0 = cpu_time();
        std::thread::sleep(window);
        (cpu_time() - c0).as_secs_f64() * 1e3 / window.as_secs_f64()
    };
    let ticker_ms_per_s = {
        let _enter = rt.enter();
        let task = tokio::spawn(async move {
            let mut t = tokio::time::interval(period);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                t.tick().await;
            }
        });
        let used = cpu_over(Duration::from_secs(2));
        task.abort();
        used
    };
    let (first_s, steady) = {
        let _enter = rt.enter();
        let sampler = Sampler::start(sandbox.clone());
        let first = cpu_over(Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(2500));
        let steady = cpu_over(Duration::from_secs(3));
        drop(sampler.finish());
        (first, steady)
    };
    println!(
        "sampler CPU: {first_s:.2} ms/s over an invocation's first second ({:.2} % of one core), {steady:.2} ms/s from 3 s on ({:.3} %); an empty 10 ms ticker alone: {ticker_ms_per_s:.2} ms/s",
        first_s / 10.0,
        steady / 10.0,
    );

    // 3. The handler's wall time with and without the sampler, alternating rounds.
    handler();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        without.push(handler().as_secs_f64());
        let _enter = rt.enter();
        let sampler = Sampler::start(sandbox.clone());
        with.push(handler().as_secs_f64());
        drop(sampler.finish());
    }
    let (a, b) = (median(without), median(with));
    println!(
        "handler: {:.1} ms without, {:.1} ms with the sampler: ratio {:.4} (median of 15 alternating rounds)",
        a * 1e3,
        b * 1e3,
        b / a
    );
    drop(children);
}
