//! Lifecycle figures, each printed against a baseline measured in the same run:
//! warm invoke latency without and with extensions, cold-start init, extension init time
//! (exec → first `/next`) and post-runtime duration (runtimeDone → the extension's `/next`).
//!
//! Needs the fixture binaries (`cargo build -p ddlambda-tests --bins`); measures
//! `datadog-agent` too when `target/debug/datadog-agent` exists.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ddlambda_platform::{Echo, InvokeOptions, Platform, ShutdownReason};

const WARM: usize = 200;
const COLD: usize = 10;

fn target_debug() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Figures {
    invoke: Duration,
    init: Duration,
    ext_init: Option<Duration>,
    post_runtime: Option<Duration>,
}

async fn measure(function: &Path, extension: Option<&Path>, env: &[(&str, &str)]) -> Figures {
    let mut b = Platform::builder()
        .function(function)
        .echo(Echo::Off)
        .timeout(Duration::from_secs(30));
    if let Some(ext) = extension {
        b = b.extension(ext);
    }
    for (k, v) in env {
        b = b.env(*k, *v);
    }
    let platform = b.build().await.expect("platform");
    let name = extension
        .and_then(|e| e.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let mut inits = Vec::new();
    for _ in 0..COLD {
        let r = platform
            .invoke(&b"{}"[..], InvokeOptions::default())
            .await
            .expect("invoke");
        assert!(!r.is_error(), "{r:?}");
        inits.push(Duration::from_secs_f64(
            r.report.init_duration_ms.unwrap_or(0.0) / 1e3,
        ));
        platform.shutdown(ShutdownReason::Spindown).await;
    }
    let mut invokes = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..WARM {
        let r = platform
            .invoke(&b"{}"[..], InvokeOptions::default())
            .await
            .expect("invoke");
        assert!(!r.is_error(), "{r:?}");
        invokes.push(Duration::from_secs_f64(r.report.duration_ms / 1e3));
        ids.push(r.request_id);
    }
    platform.shutdown(ShutdownReason::Spindown).await;
    let t = platform.timeline();
    let (ext_init, post_runtime) = match &name {
        Some(n) => (
            Some(median(t.extension_init_times(n))),
            Some(median(
                ids.iter()
                    .filter_map(|id| t.post_runtime_duration(id, n))
                    .collect(),
            )),
        ),
        None => (None, None),
    };
    Figures {
        invoke: median(invokes[1..].to_vec()),
        init: median(inits),
        ext_init,
        post_runtime,
    }
}

fn row(label: &str, f: &Figures, base: &Figures) {
    print!(
        "{label:<28} invoke {:>7.3} ms (x{:>5.2})  init {:>7.3} ms (x{:>5.2})",
        ms(f.invoke),
        ms(f.invoke) / ms(base.invoke),
        ms(f.init),
        ms(f.init) / ms(base.init)
    );
    if let (Some(i), Some(p)) = (f.ext_init, f.post_runtime) {
        print!(
            "  ext init {:>7.3} ms  post-runtime {:>7.3} ms",
            ms(i),
            ms(p)
        );
    }
    println!();
}

fn main() {
    let dir = target_debug();
    let function = dir.join("fixture-fn");
    let fixture_ext = dir.join("fixture-ext");
    if !function.is_file() || !fixture_ext.is_file() {
        eprintln!("build the fixtures first: cargo build -p ddlambda-tests --bins");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("median of {WARM} warm invocations and {COLD} cold starts each");
        let base = measure(&function, None, &[]).await;
        row("function alone (baseline)", &base, &base);
        let fixture = measure(&function, Some(&fixture_ext), &[]).await;
        row("+ fixture-ext", &fixture, &base);
        let agent = dir.join("datadog-agent");
        if agent.is_file() {
            let env = [
                ("DD_API_KEY", "00000000000000000000000000000000"),
                ("DD_SITE", "127.0.0.1:9"),
            ];
            let dd = measure(&function, Some(&agent), &env).await;
            row("+ datadog-agent (debug)", &dd, &base);
            if let (Some(a), Some(b)) = (dd.ext_init, fixture.ext_init) {
                println!(
                    "datadog-agent init vs fixture-ext init: x{:.2}",
                    ms(a) / ms(b)
                );
            }
        }
    });
}
