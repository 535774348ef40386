//! `cargo bench -p copa-host`: prints figures, asserts nothing about time.
//!
//! 1. Plugin load: compiling the built-in plugins (cold cache) against loading them precompiled
//!    from the cache.
//! 2. A real patch of the fixture image (tests/setup.sh builds it), stage by stage, next to the
//!    bare way of making the same change: `docker run ... pip install` + `docker commit`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use copa_host::plugin::{Limits, PluginHost};

const FIXTURE: &str = "copa-fixture-python:bookworm";
const CA: &str = "/etc/ssl/certs/ca-certificates.crt";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn plugin_load() {
    let mut cold = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..5 {
        let cache = tempfile::tempdir().unwrap();
        let host = PluginHost::new(Limits::default(), Some(cache.path().to_path_buf())).unwrap();
        let started = Instant::now();
        host.load_all(&[]).unwrap();
        cold.push(started.elapsed());
        for _ in 0..10 {
            let host =
                PluginHost::new(Limits::default(), Some(cache.path().to_path_buf())).unwrap();
            let started = Instant::now();
            host.load_all(&[]).unwrap();
            cached.push(started.elapsed());
        }
    }
    println!("plugin load (built-in pip, includes one info() call):");
    println!(
        "  cold (compile + write cache): median {}",
        ms(median(cold))
    );
    println!(
        "  cached (.cwasm):              median {}",
        ms(median(cached))
    );
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn real_patch() {
    if !Command::new("docker")
        .args(["image", "inspect", FIXTURE])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("real patch: skipped, {FIXTURE} is missing (run `bash tests/setup.sh`)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let report = root.join("tests/data/python-fixture.trivy.json");
    let dir = tempfile::tempdir().unwrap();
    let summary_path = dir.path().join("summary.json");
    let tag = "copa-bench:patched";
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_copa-host"))
        .args([
            "patch",
            "-i",
            FIXTURE,
            "-r",
            report.to_str().unwrap(),
            "--pkg-types",
            "library",
            "-t",
            tag,
            "--ca-cert",
            CA,
        ])
        .arg("--summary")
        .arg(&summary_path)
        .env("COPA_HOST_CACHE_DIR", dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    let total = started.elapsed();
    assert!(status.success(), "copa-host patch failed");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    println!("real patch of {FIXTURE} (copa-host, release build):");
    for timing in summary["timings"].as_array().unwrap() {
        println!(
            "  {:<14} {:>8.2} s",
            timing["stage"].as_str().unwrap(),
            timing["seconds"].as_f64().unwrap()
        );
    }
    println!(
        "  {:<14} {:>8.2} s  (process wall time)",
        "total",
        total.as_secs_f64()
    );
    let size = docker(&["history", "--format", "{{.Size}}", tag])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    println!("  patch layer: {size}");

    // The same change, done bare: one container installs the same pins in both environments.
    let mut by_target: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for update in summary["updates"].as_array().unwrap() {
        by_target
            .entry(update["target"].as_str().unwrap().to_string())
            .or_default()
            .push(format!(
                "{}=={}",
                update["package"].as_str().unwrap(),
                update["to"].as_str().unwrap()
            ));
    }
    let script: Vec<String> = by_target
        .iter()
        .map(|(target, pins)| {
            let (pip, flags) = if target.contains("dist-packages") {
                ("pip".to_string(), "--break-system-packages")
            } else {
                (format!("{target}/bin/pip"), "")
            };
            format!("{pip} install -q --no-cache-dir {flags} {}", pins.join(" "))
        })
        .collect();
    let name = "copa-bench-bare";
    let _ = Command::new("docker").args(["rm", "-f", name]).output();
    let started = Instant::now();
    docker(&[
        "run",
        "--name",
        name,
        "-v",
        &format!("{CA}:/mnt/ca.crt:ro"),
        "-e",
        "PIP_CERT=/mnt/ca.crt",
        "-e",
        "PIP_ROOT_USER_ACTION=ignore",
        "--entrypoint",
        "sh",
        FIXTURE,
        "-c",
        &script.join(" && "),
    ]);
    let ran = started.elapsed();
    docker(&["commit", name, "copa-bench:bare"]);
    let bare_total = started.elapsed();
    docker(&["rm", "-f", name]);
    let bare_size = docker(&["history", "--format", "{{.Size}}", "copa-bench:bare"])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    println!("the same change, bare (docker run ... pip install + docker commit):");
    println!("  {:<14} {:>8.2} s", "run", ran.as_secs_f64());
    println!(
        "  {:<14} {:>8.2} s",
        "commit",
        (bare_total - ran).as_secs_f64()
    );
    println!("  {:<14} {:>8.2} s", "total", bare_total.as_secs_f64());
    let env = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        "copa-bench:bare",
    ]);
    println!(
        "  layer: {bare_size}; the run's PIP_CERT left in the image config: {}",
        env.contains("PIP_CERT")
    );
    docker(&["rmi", "-f", tag, "copa-bench:bare"]);
}

fn main() {
    // `cargo bench` passes --bench; a plain run of the binary behaves the same.
    plugin_load();
    real_patch();
}
