//! The copa-host binary on inputs that need no Docker: dry runs on OCI layouts against a private
//! index on 127.0.0.1, bad input, and the plugin listing.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{python_image_tar, serve_index, trivy_report, wheels, write_oci_layout};

fn copa(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_copa-host"))
        .args(args)
        .env("COPA_HOST_CACHE_DIR", cache)
        .env_remove("PIP_INDEX_URL")
        .env_remove("COPA_HOST_PLUGIN_PATH")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The error line of a failed run: exactly one line, starting with "error: ".
fn one_line_error(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected failure, got success: {}",
        stderr(output)
    );
    let text = stderr(output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got:\n{text}");
    assert!(lines[0].starts_with("error: "), "{text}");
    lines[0].to_string()
}

fn layout_and_report(dir: &Path) -> (String, String) {
    let layout = dir.join("layout");
    write_oci_layout(&layout, "v1", &[python_image_tar()]);
    let report = dir.join("report.json");
    let venv = "app/venv/lib/python3.11/site-packages";
    let system = "usr/local/lib/python3.11/dist-packages";
    std::fs::write(
        &report,
        trivy_report(&[
            (
                &format!("{system}/urllib3-1.26.4.dist-info/METADATA"),
                "urllib3",
                "1.26.4",
                "CVE-2021-33503",
                "1.26.5",
            ),
            (
                &format!("{system}/urllib3-1.26.4.dist-info/METADATA"),
                "urllib3",
                "1.26.4",
                "CVE-2023-43804",
                "1.26.17, 2.0.6",
            ),
            (
                &format!("{venv}/urllib3-1.26.4.dist-info/METADATA"),
                "urllib3",
                "1.26.4",
                "CVE-2021-33503",
                "1.26.5",
            ),
            (
                &format!("{venv}/requests-2.25.1.dist-info/METADATA"),
                "requests",
                "2.25.1",
                "CVE-2023-32681",
                "2.31.0",
            ),
        ]),
    )
    .unwrap();
    (
        format!("oci:{}:v1", layout.display()),
        report.display().to_string(),
    )
}

#[test]
fn dry_run_on_an_oci_layout_plans_from_a_private_pep503_index() {
    let dir = tempfile::tempdir().unwrap();
    let (image, report) = layout_and_report(dir.path());
    // 1.26.17 is missing from this mirror: the next release on its line stands in.
    let index = serve_index(vec![
        (
            "urllib3",
            wheels("urllib3", &["1.26.4", "1.26.5", "1.26.18", "2.0.6"]),
        ),
        ("requests", wheels("requests", &["2.25.1", "2.31.0"])),
    ]);
    let index_before = std::fs::read(dir.path().join("layout/index.json")).unwrap();
    let output = copa(
        &[
            "patch",
            "-i",
            &image,
            "-r",
            &report,
            "--pkg-types",
            "library",
            "--dry-run",
            "--pip-index-url",
            &index.url,
            "--summary",
            "-",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["image"], image);
    assert_eq!(summary["patched_image"], serde_json::Value::Null);
    let updates = summary["updates"].as_array().unwrap();
    let find = |target: &str, package: &str| {
        updates
            .iter()
            .find(|u| u["target"] == target && u["package"] == package)
            .unwrap_or_else(|| panic!("no {package} update in {target}: {summary:#}"))
    };
    let system = find("/usr/local/lib/python3.11/dist-packages", "urllib3");
    assert_eq!(system["from"], "1.26.4");
    assert_eq!(system["to"], "1.26.18");
    assert_eq!(
        system["fixes"],
        serde_json::json!(["CVE-2021-33503", "CVE-2023-43804"])
    );
    assert_eq!(system["status"], "planned");
    assert_eq!(system["ecosystem"], "pip");
    let venv = find("/app/venv", "urllib3");
    assert_eq!(venv["to"], "1.26.5");
    assert_eq!(updates.len(), 2);
    let skipped = summary["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["package"], "requests");
    assert_eq!(skipped[0]["target"], "/app/venv");
    assert_eq!(
        skipped[0]["reason"],
        "fix needs a minor bump to 2.31.0; --library-patch-level is patch"
    );
    let stages: Vec<&str> = summary["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["read report", "open image", "load plugins", "plan"]
    );
    assert!(stderr(&output).contains("Dry run"));
    assert_eq!(
        std::fs::read(dir.path().join("layout/index.json")).unwrap(),
        index_before,
        "a dry run writes nothing"
    );
}

#[test]
fn os_findings_are_skipped_when_only_libraries_are_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = layout_and_report(dir.path());
    let report = dir.path().join("mixed.json");
    let mut value: serde_json::Value = serde_json::from_str(&trivy_report(&[])).unwrap();
    value["Results"] = serde_json::json!([{"Target": "fixture (debian 12.0)", "Class": "os-pkgs", "Type": "debian",
        "Vulnerabilities": [{"VulnerabilityID": "CVE-2023-4911", "PkgName": "libc6", "InstalledVersion": "2.36-9", "FixedVersion": "2.36-9+deb12u3", "Severity": "HIGH"}]}]);
    std::fs::write(&report, value.to_string()).unwrap();
    let output = copa(
        &[
            "patch",
            "-i",
            &image,
            "-r",
            report.to_str().unwrap(),
            "--pkg-types",
            "library",
            "--dry-run",
            "--summary",
            "-",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        summary["skipped"][0]["reason"],
        "--pkg-types does not include os"
    );
    assert_eq!(summary["skipped"][0]["package"], "libc6");
}

#[test]
fn bad_input_gets_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = layout_and_report(dir.path());
    let summary = dir.path().join("summary.json");
    let summary_arg = summary.to_str().unwrap();
    let malformed = dir.path().join("malformed.json");
    std::fs::write(&malformed, "{\"SchemaVersion\": 2, \"Results\": [").unwrap();
    let old = dir.path().join("old.json");
    std::fs::write(&old, r#"{"SchemaVersion": 1, "Results": []}"#).unwrap();

    let error = one_line_error(&copa(
        &[
            "patch",
            "-i",
            &image,
            "-r",
            malformed.to_str().unwrap(),
            "--dry-run",
            "--summary",
            summary_arg,
        ],
        dir.path(),
    ));
    assert!(
        error.contains("malformed.json") && error.contains("malformed JSON"),
        "{error}"
    );
    let error = one_line_error(&copa(
        &[
            "patch",
            "-i",
            &image,
            "-r",
            old.to_str().unwrap(),
            "--dry-run",
            "--summary",
            summary_arg,
        ],
        dir.path(),
    ));
    assert!(
        error.contains("unsupported Trivy SchemaVersion 1"),
        "{error}"
    );
    let error = one_line_error(&copa(
        &[
            "patch",
            "-i",
            &image,
            "-r",
            "/nonexistent/report.json",
            "--dry-run",
        ],
        dir.path(),
    ));
    assert!(
        error.contains("/nonexistent/report.json") && error.contains("cannot read"),
        "{error}"
    );
    let report = dir.path().join("report.json");
    let missing_layout = format!("oci:{}:v1", dir.path().join("no-such-layout").display());
    let error = one_line_error(&copa(
        &[
            "patch",
            "-i",
            &missing_layout,
            "-r",
            report.to_str().unwrap(),
            "--dry-run",
        ],
        dir.path(),
    ));
    assert!(
        error.contains("no-such-layout") && error.contains("not an OCI layout"),
        "{error}"
    );
    let missing_tag = image.replace(":v1", ":v9");
    let error = one_line_error(&copa(
        &[
            "patch",
            "-i",
            &missing_tag,
            "-r",
            report.to_str().unwrap(),
            "--dry-run",
        ],
        dir.path(),
    ));
    assert!(error.contains("has no image tagged v9"), "{error}");
    let error = one_line_error(&copa(
        &[
            "patch",
            "-i",
            "docker://example/x",
            "-r",
            report.to_str().unwrap(),
            "--dry-run",
        ],
        dir.path(),
    ));
    assert!(error.contains("not supported yet"), "{error}");
    let error = one_line_error(&copa(
        &[
            "patch",
            "-i",
            &image,
            "-r",
            report.to_str().unwrap(),
            "--pkg-types",
            "library,firmware",
            "--dry-run",
        ],
        dir.path(),
    ));
    assert!(error.contains("firmware"), "{error}");
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let error = one_line_error(&copa(
        &[
            "patch",
            "-i",
            &image,
            "-r",
            report.to_str().unwrap(),
            "--ca-cert",
            not_pem.to_str().unwrap(),
            "--dry-run",
        ],
        dir.path(),
    ));
    assert!(
        error.contains("--ca-cert") && error.contains("no PEM certificate"),
        "{error}"
    );
    assert!(!summary.exists(), "no summary is written on failure");
}

#[test]
fn plugins_list_shows_the_built_in_pip_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let output = copa(&["plugins", "list"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let pip = text
        .lines()
        .find(|l| l.starts_with("pip "))
        .unwrap_or_else(|| panic!("{text}"));
    for column in ["0.1.0", "library", "python-pkg", "built-in"] {
        assert!(pip.contains(column), "{pip}");
    }
}
