//! End to end on a real Docker engine: the fixture image built by tests/fixtures/build.sh is
//! patched by the real binary, then checked by running the patched image and reading its
//! manifest, never by trusting copa-host's own output.

mod common;

use std::path::Path;
use std::process::Command;

use common::docker::*;
use common::{serve_index_requiring, serve_index_with_files, trivy_report, wheels};
use copa_plugin_sdk::pep440::Pep440Version;

const FIXTURE: &str = "copa-fixture-python:bookworm";
const SYSTEM: &str = "/usr/local/lib/python3.11/dist-packages";

fn pip_show_version(image: &str, pip: &str, package: &str) -> String {
    let text = run_in(image, &[pip, "show", package]);
    text.lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap_or_else(|| panic!("no version in: {text}"))
        .to_string()
}

/// `patch -i IMAGE -r REPORT --pkg-types library -t TAG` and then `extra`.
fn patch_args<'a>(
    image: &'a str,
    report: &'a str,
    tag: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "patch",
        "-i",
        image,
        "-r",
        report,
        "--pkg-types",
        "library",
        "-t",
        tag,
    ];
    args.extend_from_slice(extra);
    args
}

/// The VEX document of the run: valid OpenVEX about the patched image (its image ID), `fixed`
/// exactly for what the versions now installed fix, `affected` with the reason for the rest.
fn check_vex(path: &Path, patched: &str) {
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    common::assert_valid_openvex(&document);
    assert_eq!(document["author"], "E2E <e2e@example.com>");
    let id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", patched]);
    let product = format!(
        "pkg:oci/copa-e2e-pip@{}?tag=patched",
        id.trim().replace(':', "%3A")
    );
    let statements = document["statements"].as_array().unwrap();
    let statement = |vulnerability: &str| {
        let found: Vec<&serde_json::Value> = statements
            .iter()
            .filter(|s| s["vulnerability"]["name"] == vulnerability)
            .collect();
        assert_eq!(found.len(), 1, "{vulnerability}: {found:#?}");
        assert_eq!(found[0]["products"][0]["@id"], product);
        found[0]
    };
    let subcomponents = |s: &serde_json::Value| s["products"][0]["subcomponents"].clone();
    // Both environments went to 1.26.19, which fixes the first four; 2.5.0 is a major away.
    for fixed in [
        "CVE-2021-33503",
        "CVE-2023-43804",
        "CVE-2023-45803",
        "CVE-2024-37891",
    ] {
        let s = statement(fixed);
        assert_eq!(s["status"], "fixed", "{fixed}");
        assert_eq!(
            subcomponents(s),
            serde_json::json!([{"@id": "pkg:pypi/urllib3@1.26.19"}])
        );
    }
    let open = statement("CVE-2025-50181");
    assert_eq!(open["status"], "affected");
    assert_eq!(
        subcomponents(open),
        serde_json::json!([{"@id": "pkg:pypi/urllib3@1.26.19"}])
    );
    assert!(
        open["action_statement"]
            .as_str()
            .unwrap()
            .contains("does not fix it"),
        "{open:#}"
    );
    assert_eq!(
        statement("CVE-2020-28493")["status"],
        "fixed",
        "Jinja2 2.11.3"
    );
    assert_eq!(
        statement("CVE-2024-22195")["status"],
        "affected",
        "Jinja2 3.1.3"
    );
    for requests in ["CVE-2023-32681", "CVE-2024-35195", "CVE-2024-47081"] {
        let s = statement(requests);
        assert_eq!(s["status"], "affected", "{requests}");
        assert_eq!(
            subcomponents(s),
            serde_json::json!([{"@id": "pkg:pypi/requests@2.25.1"}])
        );
        assert!(
            s["action_statement"]
                .as_str()
                .unwrap()
                .contains("--library-patch-level"),
            "{s:#}"
        );
    }
    assert_eq!(statement("CVE-2024-39689")["status"], "fixed", "certifi");
    assert!(statements.iter().all(|s| s["status"] != "not_affected"));
}

#[test]
fn patches_system_and_venv_packages_and_the_image_proves_it() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let patched = "copa-e2e-pip:patched";
    remove_image(patched);
    let report = repo_root().join("tests/data/python-fixture.trivy.json");
    let summary_path = out.path().join("summary.json");
    let vex_path = out.path().join("vex.json");
    let dangling_before = dangling_images();

    let output = copa(
        &[
            "patch",
            "-i",
            FIXTURE,
            "-r",
            report.to_str().unwrap(),
            "--pkg-types",
            "library",
            "--library-patch-level",
            "patch",
            "-t",
            patched,
            "--ca-cert",
            host_ca(),
            "--summary",
            summary_path.to_str().unwrap(),
            "-o",
            vex_path.to_str().unwrap(),
            "--vex-author",
            "E2E <e2e@example.com>",
        ],
        cache.path(),
    );
    assert!(output.status.success());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["patched_image"], patched);
    check_vex(&vex_path, patched);

    // What the image says, not what copa-host said.
    for pip in ["pip", "/app/venv/bin/pip"] {
        assert_eq!(
            pip_show_version(patched, pip, "urllib3"),
            "1.26.19",
            "{pip}: urllib3 on its 1.26 line, all four fixes of that line"
        );
        assert_eq!(pip_show_version(patched, pip, "Jinja2"), "2.11.3", "{pip}");
        assert_eq!(
            pip_show_version(patched, pip, "requests"),
            "2.25.1",
            "{pip}: requests needs a minor bump, left alone"
        );
        assert_eq!(pip_show_version(patched, pip, "idna"), "2.10", "{pip}");
        assert_eq!(
            pip_show_version(patched, pip, "MarkupSafe"),
            "1.1.1",
            "{pip}: untouched dependency"
        );
        let certifi: Pep440Version = pip_show_version(patched, pip, "certifi").parse().unwrap();
        assert!(
            certifi >= "2024.7.4".parse().unwrap(),
            "{pip}: certifi goes to the newest release, got {certifi}"
        );
    }
    // Ownership kept: the application's venv stays the application user's.
    let owner = |path: &str| run_in(patched, &["stat", "-c", "%u:%g", path]);
    assert_eq!(
        owner("/app/venv/lib/python3.11/site-packages/urllib3-1.26.19.dist-info/METADATA"),
        "1000:1000"
    );
    assert_eq!(
        owner("/app/venv/lib/python3.11/site-packages/urllib3/__init__.py"),
        "1000:1000"
    );
    assert_eq!(
        owner("/usr/local/lib/python3.11/dist-packages/urllib3-1.26.19.dist-info/METADATA"),
        "0:0"
    );
    // Nothing else broke: the packages still import and work together.
    let imported = run_in(
        patched,
        &[
            "/app/venv/bin/python",
            "-c",
            "import requests, urllib3, jinja2; print(urllib3.__version__, jinja2.Template('{{x}}').render(x='ok'))",
        ],
    );
    assert_eq!(imported, "1.26.19 ok");
    run_in(patched, &["python3", "-c", "import requests, jinja2"]);

    // The original layers, untouched, plus exactly one.
    let original = layers(FIXTURE);
    let new = layers(patched);
    assert_eq!(new.len(), original.len() + 1);
    assert_eq!(&new[..original.len()], &original[..]);
    let labels = docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        patched,
    ]);
    assert!(labels.contains("org.copa-host.patched"), "{labels}");
    let env = docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        patched,
    ]);
    assert!(
        !env.contains("PIP_CERT") && !env.contains("PIP_INDEX_URL"),
        "run-only settings leaked into the config: {env}"
    );
    let history = docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        patched,
    ]);
    assert!(
        history.lines().next().unwrap().contains("copa-host patch"),
        "{history}"
    );
    // The layer itself: the fixed packages, whiteouts for the old ones, and nothing else.
    let entries = last_layer_entries(patched, out.path());
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "usr/local/lib/python3.11/dist-packages/urllib3-1.26.19.dist-info/METADATA",
        "usr/local/lib/python3.11/dist-packages/.wh.urllib3-1.26.4.dist-info",
        "app/venv/lib/python3.11/site-packages/urllib3-1.26.19.dist-info/METADATA",
        "app/venv/lib/python3.11/site-packages/.wh.urllib3-1.26.4.dist-info",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} not in the patch layer"
        );
    }
    for (name, mtime) in &entries {
        for junk in [".copa-host", "root/.cache", "tmp/", "usr/lib/python3"] {
            assert!(
                !name.starts_with(junk),
                "{name} does not belong in the patch layer"
            );
        }
        if let Some((dir, file)) = name.rsplit_once("/__pycache__/") {
            let source = format!("{dir}/{}.py", file.split('.').next().unwrap());
            assert!(
                names.contains(&source.as_str()),
                "{name} is bytecode of a file the patch did not change"
            );
        }
        assert_eq!(*mtime, 0, "{name}: mtimes are normalised");
    }

    // The summary agrees with the image.
    let updates = summary["updates"].as_array().unwrap();
    assert!(
        updates.iter().all(|u| u["status"] == "patched"),
        "{summary:#}"
    );
    assert_eq!(
        updates.len(),
        6,
        "urllib3, jinja2, certifi in two environments: {summary:#}"
    );
    let skipped = summary["skipped"].as_array().unwrap();
    assert!(skipped.iter().any(
        |s| s["package"] == "requests" && s["reason"].as_str().unwrap().contains("minor bump")
    ));

    assert_eq!(leftover_containers(), "", "containers left behind");
    assert_eq!(
        dangling_images(),
        dangling_before,
        "intermediate images left behind"
    );

    // Reproducible: the same image, report and package versions give the same layer.
    let twin = "copa-e2e-pip:twin";
    remove_image(twin);
    let output = copa(
        &patch_args(
            FIXTURE,
            report.to_str().unwrap(),
            twin,
            &["--ca-cert", host_ca()],
        ),
        cache.path(),
    );
    assert!(output.status.success());
    assert_eq!(
        layers(twin).last(),
        new.last(),
        "a second run gave a different patch layer"
    );
    remove_image(twin);

    // Patching the patched image again: nothing left to do, exit 0, nothing written.
    let again = "copa-e2e-pip:again";
    remove_image(again);
    let output = copa(
        &patch_args(
            patched,
            report.to_str().unwrap(),
            again,
            &["--ca-cert", host_ca(), "--summary", "-"],
        ),
        cache.path(),
    );
    assert!(output.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["patched_image"], serde_json::Value::Null);
    assert_eq!(
        summary["updates"].as_array().unwrap().len(),
        0,
        "{summary:#}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("Nothing to patch"));
    assert!(!docker(&["image", "inspect", again]).status.success());
    remove_image(patched);
}

/// A private mirror: planning and pip in the run both log in with the credentials given in the
/// URL of `--pip-index-url` (as pip users write them), which reach neither the patched image nor
/// any output.
#[test]
fn a_private_mirror_gets_the_login_in_planning_and_in_the_run() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let cache = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    download_wheel(files.path(), "certifi==2024.7.4");
    let mirror = serve_index_requiring(
        vec![("certifi", wheels("certifi", &["2020.12.5", "2024.7.4"]))],
        Some(files.path().to_path_buf()),
        Some("Basic bWU6czNjciN0".to_string()),
    );
    let url = mirror.url.replace("http://", "http://me:s3cr%23t@");
    let report = certifi_report(cache.path());
    let patched = "copa-e2e-pip:private";
    remove_image(patched);
    let output = copa(
        &patch_args(
            FIXTURE,
            report.to_str().unwrap(),
            patched,
            &["--pip-index-url", &url, "--summary", "-"],
        ),
        cache.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(pip_show_version(patched, "pip", "certifi"), "2024.7.4");
    for output in [&stderr, &String::from_utf8_lossy(&output.stdout)] {
        assert!(!output.contains("s3cr"), "the password is out: {output}");
    }
    let layer = tempfile::tempdir().unwrap();
    let entries = last_layer_entries(patched, layer.path());
    assert!(
        entries.iter().all(|(path, _)| !path.contains(".copa-host")),
        "{entries:?}"
    );
    remove_image(patched);
}

/// A login in the user's netrc reaches the index the user named, as curl's and pip's would:
/// with it planning reads the private mirror; without it the mirror answers 401 and nothing is
/// planned from it.
#[test]
fn a_netrc_login_serves_the_index_the_user_named() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let cache = tempfile::tempdir().unwrap();
    let mirror = serve_index_requiring(
        vec![("certifi", wheels("certifi", &["2020.12.5", "2024.7.4"]))],
        None,
        Some("Basic bWU6czNjciN0".to_string()),
    );
    let report = certifi_report(cache.path());
    let with_login = cache.path().join("netrc");
    std::fs::write(&with_login, "machine 127.0.0.1 login me password s3cr#t\n").unwrap();
    let without_login = cache.path().join("empty-netrc");
    std::fs::write(&without_login, "machine elsewhere login x password y\n").unwrap();
    let index = format!("pypi={}", mirror.url);
    let plan_with = |netrc: &Path| {
        let output = copa(
            &patch_args(
                FIXTURE,
                report.to_str().unwrap(),
                "copa-e2e-pip:netrc",
                &[
                    "--dry-run",
                    "--index",
                    &index,
                    "--netrc-file",
                    netrc.to_str().unwrap(),
                    "--summary",
                    "-",
                ],
            ),
            cache.path(),
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!stderr.contains("s3cr"), "the password is out: {stderr}");
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        let planned = summary["updates"].as_array().is_some_and(|updates| {
            updates
                .iter()
                .any(|u| u["package"] == "certifi" && u["to"] == "2024.7.4")
        });
        (planned, stderr)
    };
    let (planned, stderr) = plan_with(&with_login);
    assert!(planned, "{stderr}");
    let (planned, stderr) = plan_with(&without_login);
    assert!(!planned, "planned without a login: {stderr}");
}

/// A report in `dir` of the system certifi 2020.12.5, fixed in 2024.7.4.
fn certifi_report(dir: &Path) -> std::path::PathBuf {
    let report = dir.join("report.json");
    std::fs::write(
        &report,
        trivy_report(&[(
            &format!("{}/certifi-2020.12.5.dist-info/METADATA", &SYSTEM[1..]),
            "certifi",
            "2020.12.5",
            "CVE-2024-39689",
            "2024.7.4",
        )]),
    )
    .unwrap();
    report
}

/// Downloads `requirement`'s wheel from PyPI into `dir`, as a mirror's file.
fn download_wheel(dir: &Path, requirement: &str) {
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .arg(dir)
        .arg(requirement)
        .status()
        .expect("pip download runs");
    assert!(status.success(), "downloading {requirement} from PyPI");
}

/// A local mirror on 127.0.0.1 that really serves a certifi wheel (fetched from PyPI) and lists
/// an urllib3 release whose file is gone: pip fails for urllib3 only.
fn broken_mirror(files: &Path) -> common::Index {
    download_wheel(files, "certifi==2024.7.4");
    serve_index_with_files(
        vec![
            ("certifi", wheels("certifi", &["2020.12.5", "2024.7.4"])),
            ("urllib3", wheels("urllib3", &["1.26.4", "1.26.5"])),
        ],
        Some(files.to_path_buf()),
    )
}

#[test]
fn a_failing_package_fails_the_run_or_is_reported_with_ignore_errors() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let cache = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let mirror = broken_mirror(files.path());
    let report = cache.path().join("report.json");
    let site = &SYSTEM[1..];
    std::fs::write(
        &report,
        trivy_report(&[
            (
                &format!("{site}/urllib3-1.26.4.dist-info/METADATA"),
                "urllib3",
                "1.26.4",
                "CVE-2021-33503",
                "1.26.5",
            ),
            (
                &format!("{site}/certifi-2020.12.5.dist-info/METADATA"),
                "certifi",
                "2020.12.5",
                "CVE-2024-39689",
                "2024.7.4",
            ),
        ]),
    )
    .unwrap();
    let dangling_before = dangling_images();

    // Without --ignore-errors: one line, no image, no containers.
    let failed = "copa-e2e-pip:failed";
    remove_image(failed);
    let output = copa(
        &patch_args(
            FIXTURE,
            report.to_str().unwrap(),
            failed,
            &["--pip-index-url", &mirror.url],
        ),
        cache.path(),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr.lines().last().unwrap();
    assert!(
        error.starts_with(
            "error: plugin pip: pip install in /usr/local/lib/python3.11/dist-packages:"
        ),
        "{error}"
    );
    assert_nothing_left(failed, dangling_before);

    // With --ignore-errors: urllib3 is reported failed, certifi is still patched.
    let partial = "copa-e2e-pip:partial";
    remove_image(partial);
    let output = copa(
        &patch_args(
            FIXTURE,
            report.to_str().unwrap(),
            partial,
            &[
                "--pip-index-url",
                &mirror.url,
                "--ignore-errors",
                "--summary",
                "-",
            ],
        ),
        cache.path(),
    );
    assert!(output.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let status = |package: &str| {
        summary["updates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["package"] == package)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("certifi"), "patched", "{summary:#}");
    assert_eq!(status("urllib3"), "failed", "{summary:#}");
    assert_eq!(pip_show_version(partial, "pip", "certifi"), "2024.7.4");
    assert_eq!(pip_show_version(partial, "pip", "urllib3"), "1.26.4");
    assert_eq!(layers(partial).len(), layers(FIXTURE).len() + 1);
    assert_eq!(leftover_containers(), "");
    assert_eq!(dangling_images(), dangling_before);
    remove_image(partial);
}

#[test]
fn an_image_that_does_not_exist_is_a_one_line_error() {
    let cache = tempfile::tempdir().unwrap();
    let report = repo_root().join("tests/data/python-fixture.trivy.json");
    let patch = |image: &str, more: &[&str]| {
        let mut args = vec![
            "patch",
            "-i",
            image,
            "-r",
            report.to_str().unwrap(),
            "--pkg-types",
            "library",
        ];
        args.extend(more);
        let output = copa(&args, cache.path());
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).trim().to_string()
    };
    assert_eq!(
        patch("docker-daemon:copa-no-such-image:never", &[]),
        "error: image copa-no-such-image:never not found in the local Docker daemon"
    );
    // A plain reference the daemon lacks is looked for in its registry (here one on loopback
    // that nobody serves), and the one line says both.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let error = patch(
        &format!("{host}/copa-no-such-image:never"),
        &["--insecure-registry", &host],
    );
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.starts_with(&format!(
            "error: image {host}/copa-no-such-image:never is not in the local Docker daemon, and from the registry: registry {host}"
        )),
        "{error}"
    );
}

#[test]
fn patches_an_image_in_an_oci_layout_and_adds_the_result_to_the_layout() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let skopeo = |args: &[&str]| {
        let output = Command::new("skopeo")
            .args(args)
            .output()
            .expect("skopeo runs");
        assert!(
            output.status.success(),
            "skopeo {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    skopeo(&[
        "copy",
        "-q",
        &format!("docker-daemon:{FIXTURE}"),
        &format!("oci:{}:v1", layout.display()),
    ]);
    let manifest_of = |tag: &str| -> serde_json::Value {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let digest = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_slice(
            &std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap(),
        )
        .unwrap()
    };
    let original = manifest_of("v1");
    let report = repo_root().join("tests/data/python-fixture.trivy.json");
    let dangling_before = dangling_images();
    let image = format!("oci:{}:v1", layout.display());
    let output = copa(
        &[
            "patch",
            "-i",
            &image,
            "-r",
            report.to_str().unwrap(),
            "--pkg-types",
            "library",
            "--ca-cert",
            host_ca(),
            "--summary",
            "-",
        ],
        dir.path(),
    );
    assert!(output.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        summary["patched_image"],
        format!("oci:{}:v1-patched", layout.display())
    );

    // The layout now has both: the original manifest untouched, and one more layer in the new one.
    assert_eq!(manifest_of("v1"), original);
    let patched = manifest_of("v1-patched");
    let (old_layers, new_layers) = (
        original["layers"].as_array().unwrap(),
        patched["layers"].as_array().unwrap(),
    );
    assert_eq!(new_layers.len(), old_layers.len() + 1);
    assert_eq!(&new_layers[..old_layers.len()], &old_layers[..]);
    assert_eq!(
        new_layers.last().unwrap()["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // Copied out by an independent tool and run: the fix is in.
    let tag = "copa-e2e-pip:from-oci";
    remove_image(tag);
    skopeo(&[
        "copy",
        "-q",
        &format!("oci:{}:v1-patched", layout.display()),
        &format!("docker-daemon:{tag}"),
    ]);
    assert_eq!(
        pip_show_version(tag, "/app/venv/bin/pip", "urllib3"),
        "1.26.19"
    );
    assert_eq!(pip_show_version(tag, "pip", "urllib3"), "1.26.19");
    remove_image(tag);
    assert_eq!(leftover_containers(), "");
    assert_eq!(
        dangling_images(),
        dangling_before,
        "the image loaded for the run is gone"
    );
}
