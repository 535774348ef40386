//! How a run ends when a step does not: a step past `--timeout`, a run interrupted while a step
//! is running, and a step that changes a path it did not declare. The slow step is the `stall`
//! test plugin's, which sleeps for ten minutes in the target image, so the slow case is certain
//! whatever the speed of the network, Docker or this machine; the trespassing one is the
//! `trespass` plugin's. Each test checks that nothing of the run is left in the daemon.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::docker::*;

const FIXTURE: &str = "copa-fixture-base:bookworm";

/// A plugin directory holding only one test plugin, and a report with one finding of its
/// package `NAME` (report type `NAME-pkg`), 1.0 fixed in 2.0.
struct OnePlugin {
    dir: tempfile::TempDir,
}

impl OnePlugin {
    fn stall() -> Self {
        OnePlugin::new("stall", env!("COPA_TEST_PLUGIN_STALL"))
    }

    fn trespass() -> Self {
        OnePlugin::new("trespass", env!("COPA_TEST_PLUGIN_TRESPASS"))
    }

    fn new(name: &str, wasm: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        std::fs::copy(wasm, dir.path().join(format!("plugins/{name}.wasm"))).unwrap();
        let report = serde_json::json!({
            "SchemaVersion": 2,
            "ArtifactName": FIXTURE,
            "ArtifactType": "container_image",
            "Results": [{
                "Target": name, "Class": "lang-pkgs", "Type": format!("{name}-pkg"),
                "Vulnerabilities": [{
                    "VulnerabilityID": "CVE-2000-0001", "PkgName": name,
                    "InstalledVersion": "1.0", "FixedVersion": "2.0", "Status": "fixed",
                    "Severity": "HIGH"
                }]
            }]
        });
        std::fs::write(dir.path().join("report.json"), report.to_string()).unwrap();
        OnePlugin { dir }
    }

    fn args<'a>(&'a self, tag: &'a str, extra: &[&'a str]) -> Vec<String> {
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        let mut args: Vec<String> = [
            "patch",
            "-i",
            FIXTURE,
            "-r",
            &path("report.json"),
            "--pkg-types",
            "library",
            "--plugin-dir",
            &path("plugins"),
            "-t",
            tag,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn cache(&self) -> std::path::PathBuf {
        self.dir.path().join("cache")
    }
}

#[test]
fn a_step_past_its_timeout_fails_the_run_names_the_step_and_leaves_nothing() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let stall = OnePlugin::stall();
    let tag = "copa-e2e-steps:timeout";
    remove_image(tag);
    let dangling_before = dangling_images();
    let args = stall.args(tag, &["--timeout", "1s"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = copa(&args, &stall.cache());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.lines().last().unwrap(),
        "error: plugin stall: sleep for ten minutes: timed out after 1 s (--timeout)",
        "{stderr}"
    );
    assert_nothing_left(tag, dangling_before);
}

/// Starts a run, sends `signal` once its step is running, and checks how it ended: exit 1 with
/// the one line `expected`, nothing written, and nothing left in the daemon or the work dir.
fn interrupt_a_running_step(signal: &str, tag: &str, expected: &str) {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let stall = OnePlugin::stall();
    remove_image(tag);
    let dangling_before = dangling_images();
    let tmp = stall.dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_copa-host"))
        .args(stall.args(tag, &[]))
        .env("COPA_HOST_CACHE_DIR", stall.cache())
        .env("TMPDIR", &tmp)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The step sleeps for ten minutes: once its container exists, the run is certainly inside it
    // when the signal comes. The deadline only turns a run that never gets there into a
    // failure instead of a hang.
    let deadline = Instant::now() + Duration::from_secs(600);
    while leftover_containers().is_empty() {
        assert!(Instant::now() < deadline, "no step container appeared");
        if child.try_wait().unwrap().is_some() {
            panic!(
                "copa-host ended before its step: {}",
                common::read_all(child.stderr.take().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The step's container is confined: no new privileges, fewer capabilities, few processes,
    // bounded memory.
    let container = leftover_containers();
    let id = container.split_whitespace().next().unwrap();
    let confinement = docker_ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.SecurityOpt}} {{.HostConfig.CapDrop}} {{.HostConfig.PidsLimit}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
        id,
    ]);
    assert_eq!(
        confinement.trim(),
        "[no-new-privileges] [NET_RAW MKNOD AUDIT_WRITE NET_BIND_SERVICE SYS_CHROOT] 4096 8589934592 8589934592"
    );
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    let stderr = common::read_all(child.stderr.take().unwrap());
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().last().unwrap(), expected, "{stderr}");
    assert_nothing_left(tag, dangling_before);
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "work files left behind: {left:?}");
}

#[test]
fn ctrl_c_removes_the_runs_containers_and_writes_nothing() {
    interrupt_a_running_step(
        "INT",
        "copa-e2e-steps:interrupted",
        "error: interrupted; removed what this run had created",
    );
}

#[test]
fn sigterm_removes_the_runs_containers_and_writes_nothing() {
    interrupt_a_running_step(
        "TERM",
        "copa-e2e-steps:terminated",
        "error: terminated; removed what this run had created",
    );
}

#[test]
fn sighup_removes_the_runs_containers_and_writes_nothing() {
    interrupt_a_running_step(
        "HUP",
        "copa-e2e-steps:hung-up",
        "error: hung up; removed what this run had created",
    );
}

/// A run killed outright (SIGKILL) cannot clean up: the next run on this machine removes what it
/// left, and leaves alone what runs of other machines sharing the daemon created.
#[test]
fn a_run_removes_what_dead_runs_of_this_machine_left() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let machine = copa_host::exec::this_machine();
    let create = |run: &str| {
        docker_ok(&[
            "create",
            "--label",
            &format!("org.copa-host.run={run}"),
            FIXTURE,
            "true",
        ])
        .trim()
        .to_string()
    };
    let dead = create(&format!("{machine}-{dead_pid}-1"));
    let other_machine = create(&format!("elsewhere-{dead_pid}-1"));
    let stall = OnePlugin::stall();
    let output = Command::new(env!("CARGO_BIN_EXE_copa-host"))
        .args(stall.args("copa-e2e-steps:sweep", &["--dry-run"]))
        .env("COPA_HOST_CACHE_DIR", stall.cache())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let exists = |id: &str| docker(&["container", "inspect", id]).status.success();
    assert!(!exists(&dead), "the dead run's container is still there");
    assert!(
        exists(&other_machine),
        "another machine's container was removed"
    );
    docker_ok(&["rm", "-f", &other_machine]);
}

#[test]
fn a_step_that_changes_a_path_it_did_not_declare_fails_and_writes_nothing() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let trespass = OnePlugin::trespass();
    let tag = "copa-e2e-steps:trespass";
    remove_image(tag);
    let dangling_before = dangling_images();
    let args = trespass.args(tag, &["--plugin-option", "trespass:outside=true"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = copa(&args, &trespass.cache());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.lines().last().unwrap(),
        "error: plugin trespass: write trespass 2.0: changed /etc/trespassed outside the paths it declares (/srv/trespass)",
        "{stderr}"
    );
    assert_nothing_left(tag, dangling_before);
}

#[test]
fn a_step_that_changes_only_what_it_declared_lands_in_the_layer() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let trespass = OnePlugin::trespass();
    let tag = "copa-e2e-steps:declared";
    remove_image(tag);
    let args = trespass.args(tag, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = copa(&args, &trespass.cache());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(run_in(tag, &["cat", "/srv/trespass/version"]).trim(), "2.0");
    assert_eq!(layers(tag).len(), layers(FIXTURE).len() + 1);
    remove_image(tag);
}
