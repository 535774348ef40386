//! Helpers of the end-to-end tests: the docker CLI, the copa-host binary, and what a run may
//! leave behind in the daemon.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

pub fn docker_ok(args: &[&str]) -> String {
    let output = docker(args);
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The tests count containers and dangling images in the one daemon they share: one at a time.
pub static DAEMON: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn exclusive_daemon() -> std::sync::MutexGuard<'static, ()> {
    DAEMON
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn require_fixture(image: &str) {
    let output = docker(&["image", "inspect", image]);
    assert!(
        output.status.success(),
        "fixture image {image} is missing: run `bash tests/setup.sh` first ({})",
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// The CA bundle of this machine: outbound HTTPS here may go through an intercepting CA that a
/// fresh container does not trust, exactly the corporate setup --ca-cert exists for.
pub fn host_ca() -> &'static str {
    "/etc/ssl/certs/ca-certificates.crt"
}

pub fn copa(args: &[&str], cache: &Path) -> Output {
    copa_with_env(args, cache, &[])
}

/// [`copa`] with more environment variables (`TMPDIR`, to see what a run leaves there).
pub fn copa_with_env(args: &[&str], cache: &Path, env: &[(&str, &Path)]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_copa-host"))
        .args(args)
        .env("COPA_HOST_CACHE_DIR", cache)
        .env_remove("PIP_INDEX_URL")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    eprintln!(
        "copa-host {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn layers(image: &str) -> Vec<String> {
    let json = docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        image,
    ]);
    serde_json::from_str(&json).unwrap()
}

pub fn run_in(image: &str, argv: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "--entrypoint", argv[0], image];
    args.extend(&argv[1..]);
    docker_ok(&args)
}

/// Entries (name, mtime) of the image's top layer, read from `docker save` output.
pub fn last_layer_entries(image: &str, dir: &Path) -> Vec<(String, u64)> {
    let archive = dir.join("saved.tar");
    docker_ok(&["save", "-o", archive.to_str().unwrap(), image]);
    let member = |wanted: &str| -> Vec<u8> {
        let mut tar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
        let mut entry = tar
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|e| e.path().unwrap().to_string_lossy() == wanted)
            .unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        bytes
    };
    let manifest: serde_json::Value = serde_json::from_slice(&member("manifest.json")).unwrap();
    let top = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let mut layer = member(&top);
    if layer.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&layer[..]), &mut plain)
            .unwrap();
        layer = plain;
    }
    let mut tar = tar::Archive::new(&layer[..]);
    tar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string(),
                e.header().mtime().unwrap(),
            )
        })
        .collect()
}

/// A run that failed or was stopped left no image, no containers, no intermediate images.
pub fn assert_nothing_left(tag: &str, dangling_before: usize) {
    assert!(
        !docker(&["image", "inspect", tag]).status.success(),
        "{tag} was written"
    );
    assert_eq!(leftover_containers(), "", "containers left behind");
    assert_eq!(
        dangling_images(),
        dangling_before,
        "intermediate images left behind"
    );
}

pub fn leftover_containers() -> String {
    docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "label=org.copa-host.run",
        "--format",
        "{{.ID}} {{.Image}} {{.Status}}",
    ])
}

pub fn dangling_images() -> usize {
    docker_ok(&["images", "-q", "--filter", "dangling=true"])
        .lines()
        .count()
}

pub fn remove_image(tag: &str) {
    let _ = docker(&["rmi", "-f", tag]);
}
