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

/// Runs of each side of the comparison; the figures are medians.
const RUNS: usize = 3;

fn seconds(d: Duration) -> String {
    format!("{:>8.2} s", d.as_secs_f64())
}

/// One copa-host patch of the fixture; returns its summary and wall time.
fn copa_patch(report: &Path, tag: &str, cache: &Path) -> (serde_json::Value, Duration) {
    let summary_path = cache.join("summary.json");
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
        .env("COPA_HOST_CACHE_DIR", cache)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    let wall = started.elapsed();
    assert!(status.success(), "copa-host patch failed");
    (
        serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap(),
        wall,
    )
}

/// The same change made bare: one container runs the same pins in every environment, then
/// `docker commit`. Returns (run, commit) times.
fn bare_patch(summary: &serde_json::Value, tag: &str) -> (Duration, Duration) {
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
    docker(&["commit", name, tag]);
    let committed = started.elapsed() - ran;
    docker(&["rm", "-f", name]);
    (ran, committed)
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
    let cache = tempfile::tempdir().unwrap();
    let (tag, bare_tag) = ("copa-bench:patched", "copa-bench:bare");

    let mut stages: Vec<(String, Vec<Duration>)> = Vec::new();
    let mut walls = Vec::new();
    let (mut runs, mut commits) = (Vec::new(), Vec::new());
    let mut last_summary = serde_json::Value::Null;
    for _ in 0..RUNS {
        let (summary, wall) = copa_patch(&report, tag, cache.path());
        walls.push(wall);
        for (i, timing) in summary["timings"].as_array().unwrap().iter().enumerate() {
            let took = Duration::from_secs_f64(timing["seconds"].as_f64().unwrap());
            match stages.get_mut(i) {
                Some((_, samples)) => samples.push(took),
                None => stages.push((timing["stage"].as_str().unwrap().to_string(), vec![took])),
            }
        }
        let (ran, committed) = bare_patch(&summary, bare_tag);
        runs.push(ran);
        commits.push(committed);
        last_summary = summary;
    }
    let size = |image: &str| {
        docker(&["history", "--format", "{{.Size}}", image])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    println!(
        "real patch of {FIXTURE}, {} updates in 2 environments (median of {RUNS} runs):",
        last_summary["updates"].as_array().unwrap().len()
    );
    println!("  copa-host (release build), by stage:");
    for (stage, samples) in stages {
        println!("    {stage:<14}{}", seconds(median(samples)));
    }
    println!(
        "    {:<14}{}  (process wall time)",
        "total",
        seconds(median(walls))
    );
    println!("    patch layer: {}", size(tag));
    println!("  bare (docker run ... pip install + docker commit):");
    println!("    {:<14}{}", "run", seconds(median(runs.clone())));
    println!("    {:<14}{}", "commit", seconds(median(commits.clone())));
    let totals: Vec<Duration> = runs.iter().zip(&commits).map(|(r, c)| *r + *c).collect();
    println!("    {:<14}{}", "total", seconds(median(totals)));
    let env = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        bare_tag,
    ]);
    println!(
        "    layer: {}; the run's PIP_CERT left in the image config: {}",
        size(bare_tag),
        env.contains("PIP_CERT")
    );
    docker(&["rmi", "-f", tag, bare_tag]);
}

fn main() {
    // `cargo bench` passes --bench; a plain run of the binary behaves the same.
    plugin_load();
    real_patch();
}
