//! The layer zips hold what Lambda runs: `extensions/datadog-agent`, executable, for the
//! zip's architecture, dynamically linked against no newer glibc than provided.al2023's
//! (2.34), and stripped.
//!
//! The x86_64 binary, as shipped, also serves an invocation on the local platform (the arm64 one
//! cannot run on this host).
//!
//! Reads `$DDLAMBDA_LAYER_DIST` when set (tests/run builds the layer once, before the
//! parallel test run); otherwise runs layer/build itself, once for both tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use ddlambda_platform::{Actor, EventKind, InvokeOptions, Platform, ShutdownReason, Status};
use ddlambda_tests::command::{output_text, repo_root, run};
use ddlambda_tests::local_output::span_ids;
use ddlambda_tests::{free_port, http, platform::fixture_fn};
use ddlambda_wire::Span;
use serde_json::json;

/// A cold cross-build of both architectures takes minutes on 2 cores; allow for a loaded one.
const BUILD_LIMIT: Duration = Duration::from_secs(60 * 60);
const TOOL_LIMIT: Duration = Duration::from_secs(120);
/// provided.al2023's glibc.
const MAX_GLIBC: (u32, u32) = (2, 34);
const BINARY: &str = "extensions/datadog-agent";

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

fn layer_dist() -> PathBuf {
    if let Some(dist) = std::env::var_os("DDLAMBDA_LAYER_DIST") {
        return PathBuf::from(dist);
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        eprintln!("layer_zip: DDLAMBDA_LAYER_DIST is unset; running layer/build (minutes)");
        let root = repo_root();
        let out = run(
            Command::new(root.join("layer/build")).current_dir(&root),
            BUILD_LIMIT,
        );
        if out.status.success() {
            Ok(root.join("layer/dist"))
        } else {
            Err(format!("layer/build failed:\n{}", output_text(&out)))
        }
    });
    match built {
        Ok(dist) => dist.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// `(mode, name)` of each entry, from zipinfo's listing.
fn entries(zip: &Path) -> Vec<(String, String)> {
    let out = run(Command::new("unzip").arg("-Z").arg(zip), TOOL_LIMIT);
    assert!(
        out.status.success(),
        "unzip -Z {}: {}",
        zip.display(),
        output_text(&out)
    );
    // Entry lines: mode, version, os, size, type, method, date, time, name.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let mode = *fields.first()?;
            let is_mode = mode.len() == 10
                && mode.starts_with(['-', 'd', 'l'])
                && mode[1..].chars().all(|c| "rwxsStT-".contains(c));
            (is_mode && fields.len() >= 9).then(|| (mode.to_owned(), fields[8..].join(" ")))
        })
        .collect()
}

/// The ELF machine of a 64-bit little-endian executable, or a reason it is not one.
fn elf_machine(bytes: &[u8]) -> Result<u16, String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err(format!(
            "ELF class {} / data {}, want 64-bit little-endian",
            bytes[4], bytes[5]
        ));
    }
    let e_type = u16::from_le_bytes([bytes[16], bytes[17]]);
    if !matches!(e_type, 2 | 3) {
        return Err(format!("ELF type {e_type}, want an executable (2 or 3)"));
    }
    Ok(u16::from_le_bytes([bytes[18], bytes[19]]))
}

/// Every `GLIBC_x.y[.z]` version the binary needs, as `(x, y)`.
fn glibc_needs(binary: &Path) -> Vec<(u32, u32)> {
    let out = run(
        Command::new("readelf").args(["-V", "--wide"]).arg(binary),
        TOOL_LIMIT,
    );
    assert!(out.status.success(), "readelf -V: {}", output_text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut needs: Vec<(u32, u32)> = text
        .split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let version: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut parts = version.split('.').map(str::parse::<u32>);
            Some((parts.next()?.ok()?, parts.next()?.ok()?))
        })
        .collect();
    needs.sort_unstable();
    needs.dedup();
    needs
}

fn has_symbol_table(binary: &Path) -> bool {
    let out = run(
        Command::new("readelf").args(["-S", "--wide"]).arg(binary),
        TOOL_LIMIT,
    );
    assert!(out.status.success(), "readelf -S: {}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).contains(" .symtab ")
}

fn check_zip(arch: &str, machine: u16) {
    let zip = layer_dist().join(format!("ddlambda-extension-{arch}.zip"));
    assert!(zip.is_file(), "{} is missing", zip.display());

    let entries = entries(&zip);
    let names: Vec<&str> = entries.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(
        names,
        ["extensions/", BINARY],
        "{}: unexpected entries",
        zip.display()
    );
    let mode = &entries[1].0;
    assert_eq!(
        mode,
        "-rwxr-xr-x",
        "{}: {BINARY} must be a regular file with mode 755",
        zip.display()
    );

    let out = run(
        Command::new("unzip").arg("-p").arg(&zip).arg(BINARY),
        TOOL_LIMIT,
    );
    assert!(out.status.success(), "unzip -p: {}", output_text(&out));
    let bytes = out.stdout;
    assert_eq!(
        elf_machine(&bytes),
        Ok(machine),
        "{}: {BINARY} is not an ELF for {arch}",
        zip.display()
    );

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("layer_zip");
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let binary = dir.join(format!("datadog-agent-{arch}"));
    std::fs::write(&binary, &bytes).expect("write binary");

    let needs = glibc_needs(&binary);
    let newest = needs.last().copied();
    assert!(
        newest.is_some(),
        "{}: {BINARY} needs no glibc version; it should link glibc dynamically",
        zip.display()
    );
    assert!(
        newest <= Some(MAX_GLIBC),
        "{}: {BINARY} needs GLIBC_{}.{} (all: {needs:?}); provided.al2023 has {}.{}",
        zip.display(),
        newest.map_or(0, |v| v.0),
        newest.map_or(0, |v| v.1),
        MAX_GLIBC.0,
        MAX_GLIBC.1
    );
    assert!(
        !has_symbol_table(&binary),
        "{}: {BINARY} still has a symbol table; the release profile strips it",
        zip.display()
    );
}

#[test]
fn x86_64_zip_holds_the_extension_for_x86_64() {
    check_zip("x86_64", EM_X86_64);
}

#[test]
fn arm64_zip_holds_the_extension_for_aarch64() {
    check_zip("arm64", EM_AARCH64);
}

#[test]
fn elf_machine_rejects_what_is_not_a_64_bit_executable() {
    assert!(elf_machine(b"#!/bin/sh\n").is_err());
    let mut header = vec![0u8; 64];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = 1; // 32-bit
    header[5] = 1;
    assert!(elf_machine(&header).is_err());
    header[4] = 2;
    header[16] = 1; // relocatable object
    assert!(elf_machine(&header).is_err());
    header[16] = 3;
    header[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
    assert_eq!(elf_machine(&header), Ok(EM_AARCH64));
}

/// The shipped binary, not the dev build: zig-linked, LTO, stripped, unpacked as Lambda would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x86_64_layer_binary_serves_an_invocation_on_the_local_platform() {
    let zip = layer_dist().join("ddlambda-extension-x86_64.zip");
    let opt = Path::new(env!("CARGO_TARGET_TMPDIR")).join("layer_zip/opt-x86_64");
    let _ = std::fs::remove_dir_all(&opt);
    std::fs::create_dir_all(&opt).expect("create /opt stand-in");
    let out = run(
        Command::new("unzip")
            .arg("-q")
            .arg(&zip)
            .arg("-d")
            .arg(&opt),
        TOOL_LIMIT,
    );
    assert!(out.status.success(), "unzip: {}", output_text(&out));
    let flushed = opt.join("flushed.jsonl");

    let trace_port = free_port();
    let platform = Platform::builder()
        .function(fixture_fn())
        .extension(opt.join(BINARY))
        .timeout(Duration::from_secs(10))
        .env("DD_APM_RECEIVER_PORT", trace_port.to_string())
        .env("DD_DOGSTATSD_PORT", free_port().to_string())
        .env("DDLAMBDA_TELEMETRY_PORT", free_port().to_string())
        .env("DDLAMBDA_LOCAL_OUTPUT", flushed.display().to_string())
        .build()
        .await
        .expect("platform");
    platform
        .start()
        .await
        .expect("init with the layer's extension");
    let agent = Actor::Extension("datadog-agent".into());
    assert!(
        platform
            .timeline()
            .first(&agent, |k| *k == EventKind::Registered)
            .is_some(),
        "the layer's binary registered as datadog-agent"
    );

    let span = Span {
        service: "layer-smoke".into(),
        name: "op".into(),
        resource: "r".into(),
        trace_id: 7,
        span_id: 701,
        start: 1_700_000_000_000_000_000,
        duration: 10,
        ..Span::default()
    };
    let status = http::put_v04_traces(trace_port, vec![vec![span]]).await;
    assert_eq!(status.ok(), Some(200), "the trace agent took the span");

    let result = platform
        .invoke(
            json!({"mode": "echo"}).to_string().into_bytes(),
            InvokeOptions::default(),
        )
        .await
        .expect("invoke");
    assert_eq!(result.report.status, Status::Success, "{result:?}");
    platform.shutdown(ShutdownReason::Spindown).await;
    assert!(
        span_ids(&flushed).contains(&701),
        "the span sent during init was not flushed: {}",
        std::fs::read_to_string(&flushed).unwrap_or_default()
    );
}
