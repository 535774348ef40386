//! Registries end to end: Debian's docker-registry on 127.0.0.1, once plain and once behind TLS
//! (a CA made in the test) with basic auth. The image is the distroless Debian fixture, whose
//! patch needs no container, so the registry runs need no daemon work besides the checks. What
//! travelled is read from the registry's own storage and access log, and the result is pulled
//! back with skopeo and run.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::debian::*;
use common::docker::*;
use serde_json::Value;

/// A docker-registry process with its storage and access log; killed when dropped.
struct Registry {
    child: Child,
    host: String,
    storage: PathBuf,
    log: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Tls {
    cert: PathBuf,
    key: PathBuf,
    htpasswd: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_registry(dir: &Path, tls: Option<&Tls>) -> Registry {
    let port = free_port();
    std::fs::create_dir_all(dir).unwrap();
    let storage = dir.join("storage");
    let mut config = format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        storage.display()
    );
    if let Some(tls) = tls {
        config.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: copa-test\n    path: {}\n",
            tls.cert.display(),
            tls.key.display(),
            tls.htpasswd.display()
        ));
    }
    let config_path = dir.join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let log = dir.join("registry.log");
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config_path)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.join("registry.err")).unwrap())
        .spawn()
        .expect("docker-registry (Debian's package) is installed by tests/setup.sh");
    // Ready when it accepts connections, however long it takes to start here; the deadline
    // only turns a registry that never starts into a failure instead of a hang.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none() && std::time::Instant::now() < deadline,
            "docker-registry did not start ({exited:?}): {}",
            std::fs::read_to_string(dir.join("registry.err")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Registry {
        child,
        host: format!("127.0.0.1:{port}"),
        storage,
        log: dir.join("registry.err"),
    }
}

impl Registry {
    /// The digests of every blob the registry stores.
    fn blobs(&self) -> BTreeSet<String> {
        let root = self.storage.join("docker/registry/v2/blobs/sha256");
        let mut blobs = BTreeSet::new();
        for prefix in std::fs::read_dir(&root).into_iter().flatten() {
            for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
                blobs.insert(format!(
                    "sha256:{}",
                    blob.unwrap().file_name().to_string_lossy()
                ));
            }
        }
        blobs
    }

    /// The access log's requests by copa-host (its user agent) as "METHOD path".
    fn requests_by_copa(&self) -> Vec<String> {
        let mut log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.push_str(&std::fs::read_to_string(self.log.with_file_name("registry.log")).unwrap());
        log.lines()
            .filter(|l| l.contains("\"oci-client/"))
            .filter_map(|l| {
                let request = l.split('"').nth(1)?;
                let mut parts = request.split(' ');
                Some(format!("{} {}", parts.next()?, parts.next()?))
            })
            .collect()
    }

    /// copa-host's blob upload sessions (plain and cross-repository mounts).
    fn uploads_by_copa(&self) -> Vec<String> {
        self.requests_by_copa()
            .into_iter()
            .filter(|r| r.starts_with("POST ") && r.contains("/blobs/uploads/"))
            .collect()
    }
}

fn skopeo(args: &[&str]) -> String {
    let output = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "skopeo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn manifest_layers(manifest: &str) -> Vec<String> {
    let manifest: Value = serde_json::from_str(manifest).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn patches_an_image_in_a_registry_and_pushes_only_the_new_blobs() {
    let _daemon = exclusive_daemon();
    require_fixture(BASE);
    require_fixture(DISTROLESS);
    let dir = tempfile::tempdir().unwrap();
    let registry = start_registry(dir.path(), None);
    let source = format!("{}/distroless:bookworm", registry.host);
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("docker-daemon:{DISTROLESS}"),
        &format!("docker://{source}"),
    ]);
    let original = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{source}"),
    ]);
    let (report, _, candidate) = distroless_report(dir.path());
    let before = registry.blobs();
    let patch = |image: &str, more: &[&str]| {
        let mut args = vec![
            "patch",
            "-i",
            image,
            "-r",
            &report,
            "--insecure-registry",
            &registry.host,
        ];
        args.extend(more);
        copa(&args, dir.path())
    };

    let output = patch(
        &format!("docker://{}/distroless:no-such-tag", registry.host),
        &[],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .trim()
            .lines()
            .last()
            .unwrap()
            .contains("does not exist"),
        "{stderr}"
    );

    // No daemon is involved: read from the registry, fetch and write files, push back beside it.
    let vex_path = dir.path().join("vex.json");
    let output = patch(
        &format!("docker://{source}"),
        &["-o", vex_path.to_str().unwrap()],
    );
    assert!(output.status.success());

    // Three new blobs (the patch layer, the config, the manifest), and only two uploads: the
    // original layers were found with HEAD and never sent again.
    let added: Vec<String> = registry.blobs().difference(&before).cloned().collect();
    assert_eq!(added.len(), 3, "{added:?}");
    let uploads = registry.uploads_by_copa();
    assert_eq!(uploads.len(), 2, "{uploads:#?}");

    let patched = format!("{}/distroless:bookworm-patched", registry.host);
    let manifest = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{patched}"),
    ]);
    let (original_layers, patched_layers) =
        (manifest_layers(&original), manifest_layers(&manifest));
    assert_eq!(patched_layers.len(), original_layers.len() + 1);
    assert_eq!(patched_layers[..original_layers.len()], original_layers[..]);
    assert!(added.contains(patched_layers.last().unwrap()));

    // The VEX document names the pushed image by the digest the registry serves it under.
    let digest = format!("sha256:{}", sha256_hex(manifest.as_bytes()));
    let vex: Value = serde_json::from_str(&std::fs::read_to_string(&vex_path).unwrap()).unwrap();
    common::assert_valid_openvex(&vex);
    let product = vex["statements"][0]["products"][0]["@id"].as_str().unwrap();
    assert_eq!(
        product,
        format!(
            "pkg:oci/distroless@{}?repository_url={}/distroless&tag=bookworm-patched",
            digest.replace(':', "%3A"),
            registry.host.replace(':', "%3A")
        )
    );
    assert_eq!(vex["statements"][0]["status"], "fixed");

    // Pulled back by another tool and run.
    let tag = "copa-test-registry:plain";
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{patched}"),
        &format!("docker-daemon:{tag}"),
    ]);
    assert_ncurses_base(tag, &candidate);
    remove_image(tag);

    // Reproducible: a second run gives the same layer, which the registry already has, so only
    // the new config travels.
    let uploads_before = registry.uploads_by_copa().len();
    let output = patch(&format!("docker://{source}"), &["-t", "again"]);
    assert!(output.status.success());
    let again = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/distroless:again", registry.host),
    ]);
    assert_eq!(manifest_layers(&again), patched_layers);
    assert_eq!(registry.uploads_by_copa().len() - uploads_before, 1);

    // A plain reference the daemon does not have is read from its registry, and the result
    // goes back there.
    let output = patch(&source, &["-t", "plain"]);
    assert!(output.status.success());
    let plain = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/distroless:plain", registry.host),
    ]);
    assert_eq!(manifest_layers(&plain), patched_layers);

    // The same image written elsewhere: an OCI layout with a zstd layer, read back by skopeo and
    // patched again from there (copa-host reads the zstd layer it wrote).
    let layout = dir.path().join("layout");
    let output = patch(
        &format!("docker://{source}"),
        &[
            "--compression",
            "zstd",
            "--output-image",
            &format!("oci:{}:zstd", layout.display()),
        ],
    );
    assert!(output.status.success());
    let manifest: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:zstd", layout.display()),
    ]))
    .unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers.last().unwrap()["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let output = copa(
        &[
            "patch",
            "-i",
            &format!("oci:{}:zstd", layout.display()),
            "-r",
            &report,
            "--dry-run",
        ],
        dir.path(),
    );
    assert!(output.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("No updates."),
        "the zstd layer's ncurses-base is read back as patched: {said}"
    );
}

#[test]
fn authenticates_with_the_docker_config_over_tls_with_a_private_ca() {
    let _daemon = exclusive_daemon();
    require_fixture(BASE);
    require_fixture(DISTROLESS);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(status.status.success(), "openssl {args:?}");
    };
    // A test CA and a certificate for 127.0.0.1 signed by it.
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=copa test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(path("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    let htpasswd = Command::new("htpasswd")
        .args(["-Bbc", path("htpasswd").to_str().unwrap(), "copa", "s3cret"])
        .output()
        .unwrap();
    assert!(htpasswd.status.success());
    let registry = start_registry(
        dir.path(),
        Some(&Tls {
            cert: path("server.pem"),
            key: path("server.key"),
            htpasswd: path("htpasswd"),
        }),
    );
    // skopeo trusts the CA through a certs directory.
    let certs = path("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(path("ca.pem"), certs.join("ca.crt")).unwrap();
    let certs = certs.to_str().unwrap();
    let source = format!("{}/team/app:1.0", registry.host);
    skopeo(&[
        "copy",
        "-q",
        "--dest-cert-dir",
        certs,
        "--dest-creds",
        "copa:s3cret",
        &format!("docker-daemon:{DISTROLESS}"),
        &format!("docker://{source}"),
    ]);
    let (report, _, candidate) = distroless_report(dir.path());

    // Credentials come from a credential helper named in the Docker config.
    let config_dir = path("docker-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let bin = path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-copatest");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\necho \"$server\" >> \"$(dirname \"$0\")/asked\"\nprintf '{\"Username\":\"copa\",\"Secret\":\"s3cret\"}'\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&helper)
        .status()
        .unwrap();
    let write_config =
        |config: &str| std::fs::write(config_dir.join("config.json"), config).unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_copa-host"))
            .args(args)
            .env("COPA_HOST_CACHE_DIR", dir.path())
            .env("DOCKER_CONFIG", &config_dir)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .output()
            .unwrap();
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        output
    };
    let target = format!("docker://{}/other/app:fixed", registry.host);
    let ca = path("ca.pem");
    let args = [
        "patch",
        "-i",
        &format!("docker://{source}"),
        "-r",
        &report,
        "--ca-cert",
        ca.to_str().unwrap(),
        "--output-image",
        &target,
    ];

    // Wrong credentials: one clear line, and nothing written.
    write_config(&format!(
        r#"{{"auths": {{"{}": {{"auth": "Y29wYTp3cm9uZw=="}}}}}}"#,
        registry.host
    ));
    let before = registry.blobs();
    let output = run(&args);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.trim().lines().last().unwrap();
    assert!(
        last.contains(&registry.host) && last.contains("authentication failed")
            || last.contains("not authorized"),
        "{last}"
    );
    assert_eq!(registry.blobs(), before);

    write_config(&format!(
        r#"{{"credHelpers": {{"{}": "copatest"}}}}"#,
        registry.host
    ));
    let output = run(&args);
    assert!(output.status.success());
    assert!(
        std::fs::read_to_string(bin.join("asked"))
            .unwrap()
            .contains(&registry.host)
    );
    // Another repository on the same registry: the original layers were mounted, not sent.
    let uploads = registry.uploads_by_copa();
    let mounts = uploads.iter().filter(|r| r.contains("mount=")).count();
    let original_layers = manifest_layers(&skopeo(&[
        "inspect",
        "--raw",
        "--cert-dir",
        certs,
        "--creds",
        "copa:s3cret",
        &format!("docker://{source}"),
    ]));
    assert_eq!(mounts, original_layers.len(), "{uploads:#?}");
    assert_eq!(uploads.len() - mounts, 2, "{uploads:#?}");

    let tag = "copa-test-registry:tls";
    skopeo(&[
        "copy",
        "-q",
        "--src-cert-dir",
        certs,
        "--src-creds",
        "copa:s3cret",
        &target,
        &format!("docker-daemon:{tag}"),
    ]);
    assert_ncurses_base(tag, &candidate);
    remove_image(tag);
}

/// Writes `bytes` as a blob of the OCI layout `dir`; returns its digest.
fn add_blob(dir: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

fn read_blob(dir: &Path, digest: &str) -> Value {
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// An OCI layout holding an index tagged `multi`: the distroless fixture as linux/amd64, and
/// the same layers under a config that says linux/arm64 (the patch only fetches `all` packages
/// and writes files, which works for any platform). Returns the index.
fn multi_platform_layout(dir: &Path) -> Value {
    skopeo(&[
        "copy",
        "-q",
        &format!("docker-daemon:{DISTROLESS}"),
        &format!("oci:{}:amd64", dir.display()),
    ]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let amd64 = index["manifests"][0].clone();
    let manifest = read_blob(dir, amd64["digest"].as_str().unwrap());
    let mut config = read_blob(dir, manifest["config"]["digest"].as_str().unwrap());
    config["architecture"] = "arm64".into();
    config["variant"] = "v8".into();
    let config = serde_json::to_vec(&config).unwrap();
    let mut arm64_manifest = manifest.clone();
    arm64_manifest["config"]["digest"] = add_blob(dir, &config).into();
    arm64_manifest["config"]["size"] = config.len().into();
    let arm64_manifest = serde_json::to_vec(&arm64_manifest).unwrap();
    let image_index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": amd64["mediaType"], "digest": amd64["digest"], "size": amd64["size"],
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": add_blob(dir, &arm64_manifest), "size": arm64_manifest.len(),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
             "annotations": {"org.example.kept": "yes"}},
        ],
        "annotations": {"org.opencontainers.image.source": "https://example.com/app"},
    });
    let bytes = serde_json::to_vec(&image_index).unwrap();
    let digest = add_blob(dir, &bytes);
    let layout_index = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": bytes.len(),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}},
    ]});
    std::fs::write(dir.join("index.json"), layout_index.to_string()).unwrap();
    image_index
}

fn layout_index(dir: &Path, tag: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"));
    read_blob(dir, entry["digest"].as_str().unwrap())
}

#[test]
fn a_multi_platform_image_is_patched_per_platform_and_the_rest_carried_over() {
    let _daemon = exclusive_daemon();
    require_fixture(BASE);
    require_fixture(DISTROLESS);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let original = multi_platform_layout(&layout);
    let (report, _, candidate) = distroless_report(dir.path());
    let image = |tag: &str| format!("oci:{}:{tag}", layout.display());

    // This machine's platform only (the default): the arm64 entry is carried over as it was.
    let output = copa(&["patch", "-i", &image("multi"), "-r", &report], dir.path());
    assert!(output.status.success());
    let patched = layout_index(&layout, "multi-patched");
    assert_eq!(patched["annotations"], original["annotations"]);
    assert_eq!(patched["manifests"][1], original["manifests"][1]);
    assert_ne!(
        patched["manifests"][0]["digest"],
        original["manifests"][0]["digest"]
    );
    assert_eq!(
        patched["manifests"][0]["platform"],
        original["manifests"][0]["platform"]
    );
    let layers = |index: &Value, i: usize| {
        read_blob(&layout, index["manifests"][i]["digest"].as_str().unwrap())["layers"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(layers(&patched, 0), layers(&original, 0) + 1);
    let tag = "copa-test-registry:multi";
    skopeo(&[
        "copy",
        "-q",
        &image("multi-patched"),
        &format!("docker-daemon:{tag}"),
    ]);
    assert_ncurses_base(tag, &candidate);
    remove_image(tag);

    // One platform of the index written elsewhere: that platform's image on its own.
    let tag = "copa-test-registry:one-platform";
    let output = copa(
        &[
            "patch",
            "-i",
            &image("multi"),
            "-r",
            &report,
            "--output-image",
            &format!("docker-daemon:{tag}"),
        ],
        dir.path(),
    );
    assert!(output.status.success());
    assert_ncurses_base(tag, &candidate);
    remove_image(tag);

    // Both platforms: both get the patch layer, each keeps its own config's platform.
    let output = copa(
        &[
            "patch",
            "-i",
            &image("multi"),
            "-r",
            &report,
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "both",
        ],
        dir.path(),
    );
    assert!(output.status.success());
    let both = layout_index(&layout, "both");
    assert_eq!(
        both["manifests"][1]["annotations"],
        original["manifests"][1]["annotations"]
    );
    for i in 0..2 {
        assert_ne!(
            both["manifests"][i]["digest"],
            original["manifests"][i]["digest"]
        );
        assert_eq!(layers(&both, i), layers(&original, i) + 1);
    }
    let arm64 = read_blob(&layout, both["manifests"][1]["digest"].as_str().unwrap());
    let config = read_blob(&layout, arm64["config"]["digest"].as_str().unwrap());
    assert_eq!(
        (config["architecture"].as_str(), config["variant"].as_str()),
        (Some("arm64"), Some("v8"))
    );

    // A report directory, one report per architecture: every platform with a report is patched.
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    for architecture in ["amd64", "arm64"] {
        let mut report: Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        report["Metadata"]["ImageConfig"] = serde_json::json!({"architecture": architecture});
        std::fs::write(
            reports.join(format!("{architecture}.json")),
            report.to_string(),
        )
        .unwrap();
    }
    let output = copa(
        &[
            "patch",
            "-i",
            &image("multi"),
            "-r",
            reports.to_str().unwrap(),
            "-t",
            "fromdir",
        ],
        dir.path(),
    );
    assert!(output.status.success());
    // The same layers as with --platform (the configs differ only in their creation time).
    let fromdir = layout_index(&layout, "fromdir");
    let layer_digests = |index: &Value, i: usize| {
        read_blob(&layout, index["manifests"][i]["digest"].as_str().unwrap())["layers"].clone()
    };
    for i in 0..2 {
        assert_eq!(layer_digests(&fromdir, i), layer_digests(&both, i));
    }

    // A platform the index lacks: one line, nothing written.
    let output = copa(
        &[
            "patch",
            "-i",
            &image("multi"),
            "-r",
            &report,
            "--platform",
            "linux/s390x",
            "-t",
            "none",
        ],
        dir.path(),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .trim()
            .lines()
            .last()
            .unwrap()
            .contains("no linux/s390x image"),
        "{stderr}"
    );

    // The same index in a registry: patched and pushed back beside it, arm64 untouched.
    let registry = start_registry(&dir.path().join("registry"), None);
    let remote = format!("{}/multi:1", registry.host);
    skopeo(&[
        "copy",
        "-q",
        "--all",
        "--dest-tls-verify=false",
        &image("multi"),
        &format!("docker://{remote}"),
    ]);
    let pushed_original: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{remote}"),
    ]))
    .unwrap();
    let output = copa(
        &[
            "patch",
            "-i",
            &format!("docker://{remote}"),
            "-r",
            &report,
            "--insecure-registry",
            &registry.host,
        ],
        dir.path(),
    );
    assert!(output.status.success());
    let pushed: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/multi:1-patched", registry.host),
    ]))
    .unwrap();
    assert_eq!(pushed["manifests"][1], pushed_original["manifests"][1]);
    assert_ne!(
        pushed["manifests"][0]["digest"],
        pushed_original["manifests"][0]["digest"]
    );
    let tag = "copa-test-registry:multi-remote";
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{}/multi:1-patched", registry.host),
        &format!("docker-daemon:{tag}"),
    ]);
    assert_ncurses_base(tag, &candidate);
    remove_image(tag);
}
