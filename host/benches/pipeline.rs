//! `cargo bench -p copa-host`: prints figures, asserts nothing about time.
//!
//! 1. Plugin load: compiling the built-in plugins (cold cache) against loading them precompiled
//!    from the cache.
//! 2. Real patches of the fixture images (tests/setup.sh builds them), stage by stage, next to
//!    the bare way of making the same change (`docker run ... pip install` / `apt-get install`
//!    + `docker commit`): pip packages with a report, and OS packages without one.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use copa_host::plugin::{Limits, PluginHost};

const PYTHON_FIXTURE: &str = "copa-fixture-python:bookworm";
const BASE_FIXTURE: &str = "copa-fixture-base:bookworm";
const DISTROLESS_FIXTURE: &str = "copa-fixture-distroless:bookworm";
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
    println!("plugin load (all built-in plugins, one describe() call each):");
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

/// One copa-host patch (`patch` + `args`); returns its summary and wall time.
fn copa_patch(args: &[&str], cache: &Path) -> (serde_json::Value, Duration) {
    let summary_path = cache.join("summary.json");
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_copa-host"))
        .arg("patch")
        .args(args)
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

/// Adds a run's per-stage times (its summary's `timings`) to `stages`.
fn add_stage_times(stages: &mut Vec<(String, Vec<Duration>)>, summary: &serde_json::Value) {
    for (i, timing) in summary["timings"].as_array().unwrap().iter().enumerate() {
        let took = Duration::from_secs_f64(timing["seconds"].as_f64().unwrap());
        match stages.get_mut(i) {
            Some((_, samples)) => samples.push(took),
            None => stages.push((timing["stage"].as_str().unwrap().to_string(), vec![took])),
        }
    }
}

/// The same change made bare: one `docker run` of `script` (with `docker_args`), then
/// `docker commit`. Returns (run, commit) times.
fn bare_patch(image: &str, docker_args: &[&str], script: &str, tag: &str) -> (Duration, Duration) {
    let name = "copa-bench-bare";
    let _ = Command::new("docker").args(["rm", "-f", name]).output();
    let started = Instant::now();
    let mut args = vec!["run", "--name", name];
    args.extend_from_slice(docker_args);
    args.extend(["--entrypoint", "sh", image, "-c", script]);
    docker(&args);
    let ran = started.elapsed();
    docker(&["commit", name, tag]);
    let committed = started.elapsed() - ran;
    docker(&["rm", "-f", name]);
    (ran, committed)
}

/// The pip pins of a summary, as one shell command per environment.
fn pip_script(summary: &serde_json::Value) -> String {
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
    let commands: Vec<String> = by_target
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
    commands.join(" && ")
}

/// The apt pins of a summary, as apt-get would be run by hand.
fn apt_script(summary: &serde_json::Value) -> String {
    let pins: Vec<String> = summary["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{}={}",
                u["package"].as_str().unwrap(),
                u["to"].as_str().unwrap()
            )
        })
        .collect();
    format!(
        "apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq -y install --only-upgrade {}",
        pins.join(" ")
    )
}

fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Patches `image` with copa-host and `bare_image` with the bare commands, `RUNS` times each, and
/// prints the medians.
#[allow(clippy::too_many_arguments)]
fn compare(
    title: &str,
    image: &str,
    bare_image: &str,
    copa_args: &[&str],
    bare_args: &[&str],
    bare_script: fn(&serde_json::Value) -> String,
    secret_in_config: &str,
) {
    if !image_exists(image) {
        println!("{title}: skipped, {image} is missing (run `bash tests/setup.sh`)");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let (tag, bare_tag) = ("copa-bench:patched", "copa-bench:bare");
    let mut args = vec!["-i", image, "-t", tag];
    args.extend_from_slice(copa_args);

    let mut stages: Vec<(String, Vec<Duration>)> = Vec::new();
    let mut walls = Vec::new();
    let (mut runs, mut commits) = (Vec::new(), Vec::new());
    let mut last_summary = serde_json::Value::Null;
    for _ in 0..RUNS {
        let (summary, wall) = copa_patch(&args, cache.path());
        walls.push(wall);
        add_stage_times(&mut stages, &summary);
        let (ran, committed) = bare_patch(bare_image, bare_args, &bare_script(&summary), bare_tag);
        runs.push(ran);
        commits.push(committed);
        docker(&["rmi", "-f", tag]);
        last_summary = summary;
    }
    // The last copa-host result, for its layer size.
    copa_patch(&args, cache.path());
    let size = |image: &str| {
        docker(&["history", "--format", "{{.Size}}", image])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    println!(
        "{title}: {image}, {} updates (median of {RUNS} runs):",
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
    println!("  bare (docker run + docker commit on {bare_image}):");
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
    let leaked = !secret_in_config.is_empty() && env.contains(secret_in_config);
    println!(
        "    layer: {}; the run's settings left in the image config: {leaked}",
        size(bare_tag)
    );
    docker(&["rmi", "-f", tag, bare_tag]);
}

/// The distroless patch from and to a registry on 127.0.0.1 (Debian's docker-registry): what the
/// pull and the push cost, and how many blobs travel up.
fn registry_round_trip() {
    if !image_exists(DISTROLESS_FIXTURE)
        || Command::new("docker-registry")
            .arg("--version")
            .output()
            .is_err()
    {
        println!("registry round trip: skipped (needs {DISTROLESS_FIXTURE} and docker-registry)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("storage").display()
        ),
    )
    .unwrap();
    let mut registry = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        // Its access log goes to standard output.
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(&host).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let source = format!("docker://{host}/distroless:bookworm");
    let copied = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("docker-daemon:{DISTROLESS_FIXTURE}"))
        .arg(&source)
        .status()
        .unwrap();
    assert!(copied.success());
    let mut stages: Vec<(String, Vec<Duration>)> = Vec::new();
    let mut walls = Vec::new();
    for _ in 0..RUNS {
        let (summary, wall) =
            copa_patch(&["-i", &source, "--insecure-registry", &host], dir.path());
        walls.push(wall);
        add_stage_times(&mut stages, &summary);
    }
    println!(
        "registry round trip: {source} -> :bookworm-patched, no report (median of {RUNS} runs):"
    );
    for (stage, samples) in stages {
        println!("    {stage:<14}{}", seconds(median(samples)));
    }
    println!(
        "    {:<14}{}  (process wall time)",
        "total",
        seconds(median(walls))
    );
    let _ = registry.kill();
    let _ = registry.wait();
}

fn main() {
    // `cargo bench` passes --bench; a plain run of the binary behaves the same. Another argument
    // picks the cases whose name contains it (`cargo bench --bench pipeline -- registry`).
    let only = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    if wanted("plugin load") {
        plugin_load();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let report = root.join("tests/data/python-fixture.trivy.json");
    if wanted("pip patch") {
        compare(
            "pip patch",
            PYTHON_FIXTURE,
            PYTHON_FIXTURE,
            &[
                "-r",
                report.to_str().unwrap(),
                "--pkg-types",
                "library",
                "--ca-cert",
                CA,
            ],
            &[
                "-v",
                &format!("{CA}:/mnt/ca.crt:ro"),
                "-e",
                "PIP_CERT=/mnt/ca.crt",
                "-e",
                "PIP_ROOT_USER_ACTION=ignore",
            ],
            pip_script,
            "PIP_CERT",
        );
    }
    // No report: every package with a newer build in bookworm-security/-updates.
    if wanted("apt patch") {
        compare(
            "apt patch",
            BASE_FIXTURE,
            BASE_FIXTURE,
            &[],
            &[],
            apt_script,
            "",
        );
    }
    if wanted("registry round trip") {
        registry_round_trip();
    }
    // The same packages in a distroless image: no apt, the host unpacks the .debs itself. The
    // bare figure is apt on the base image, which has them (a distroless image cannot run apt).
    if wanted("distroless apt patch") {
        compare(
            "distroless apt patch",
            DISTROLESS_FIXTURE,
            BASE_FIXTURE,
            &[],
            &[],
            apt_script,
            "",
        );
    }
}
