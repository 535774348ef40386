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
        ["read report", "load plugins", "open image", "plan"]
    );
    // The steps a real run would take are shown (and emitted, so emit errors surface).
    let shown = stderr(&output);
    for line in [
        "plugin pip would run:",
        "  [1/2] pip install in /app/venv",
        "  [2/2] pip install in /usr/local/lib/python3.11/dist-packages",
    ] {
        assert!(shown.lines().any(|l| l == line), "{line:?} not in {shown}");
    }
    assert!(shown.contains("Dry run"));
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
            "dir:/tmp/x",
            "-r",
            report.to_str().unwrap(),
            "--dry-run",
        ],
        dir.path(),
    ));
    assert!(error.contains("not supported yet"), "{error}");
    // A registry nobody listens on: one line naming it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = one_line_error(&copa(
        &[
            "patch",
            "-i",
            &format!("docker://127.0.0.1:{closed}/x:1"),
            "--insecure-registry",
            &format!("127.0.0.1:{closed}"),
            "-r",
            report.to_str().unwrap(),
            "--dry-run",
        ],
        dir.path(),
    ));
    assert!(
        error.contains(&format!("registry 127.0.0.1:{closed}")),
        "{error}"
    );
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
    // An option for a plugin that is not loaded would do nothing: refused, without its value
    // (which may be a credential).
    let error = one_line_error(&copa(
        &[
            "patch",
            "-i",
            &image,
            "-r",
            report.to_str().unwrap(),
            "--plugin-option",
            "gopher:token=s3cret",
            "--dry-run",
        ],
        dir.path(),
    ));
    assert!(
        error.starts_with(
            "error: --plugin-option gopher:token=...: no plugin named gopher is loaded (loaded: pip, apt,"
        ) && !error.contains("s3cret"),
        "{error}"
    );
    // Durations a clock cannot hold, or no time at all, are refused by the flag's parser.
    for (timeout, reason) in [
        ("0s", "at least 1s"),
        ("99999999999999999h", "at most a year"),
        ("5 minutes", "not a duration"),
    ] {
        let output = copa(
            &["patch", "-i", &image, "--timeout", timeout, "--dry-run"],
            dir.path(),
        );
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains(reason), "{}", stderr(&output));
    }
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

/// A dry run's plan as the summary states it: updates and skips.
fn planned(args: &[&str], dir: &Path, path: Option<&str>) -> (serde_json::Value, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_copa-host"));
    command
        .args(args)
        .args(["--pkg-types", "library", "--dry-run", "--summary", "-"])
        .env("COPA_HOST_CACHE_DIR", dir)
        .env_remove("PIP_INDEX_URL")
        .env_remove("COPA_HOST_PLUGIN_PATH");
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        serde_json::json!({"updates": summary["updates"], "skipped": summary["skipped"]}),
        stderr(&output),
    )
}

fn mirror() -> common::Index {
    serve_index(vec![
        (
            "urllib3",
            wheels("urllib3", &["1.26.4", "1.26.5", "1.26.18", "2.0.6"]),
        ),
        ("requests", wheels("requests", &["2.25.1", "2.31.0"])),
    ])
}

#[test]
fn a_grype_report_plans_like_the_equivalent_trivy_report() {
    let dir = tempfile::tempdir().unwrap();
    let (image, trivy) = layout_and_report(dir.path());
    let index = mirror();
    // The findings of `layout_and_report` as Grype prints them.
    let trivy_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&trivy).unwrap()).unwrap();
    let matches: Vec<serde_json::Value> = trivy_json["Results"][0]["Vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let fixed: Vec<&str> = v["FixedVersion"].as_str().unwrap().split(", ").collect();
            let path = format!("/{}", v["PkgPath"].as_str().unwrap());
            serde_json::json!({
                "vulnerability": {"id": v["VulnerabilityID"], "severity": "High",
                                  "fix": {"versions": fixed, "state": "fixed"}},
                "artifact": {"name": v["PkgName"], "version": v["InstalledVersion"], "type": "python",
                             "purl": v["PkgIdentifier"]["PURL"],
                             "locations": [{"path": path, "annotations": {"evidence": "primary"}}]}
            })
        })
        .collect();
    let grype = dir.path().join("grype.json");
    std::fs::write(
        &grype,
        serde_json::json!({"matches": matches, "distro": {"name": "debian", "version": "12"},
                           "source": {"type": "image", "target": {"userInput": "fixture", "architecture": "amd64"}}})
        .to_string(),
    )
    .unwrap();

    let base = ["patch", "-i", &image, "--pip-index-url", &index.url];
    let (from_trivy, _) = planned(&[&base[..], &["-r", &trivy]].concat(), dir.path(), None);
    let (from_grype, _) = planned(
        &[
            &base[..],
            &["-r", grype.to_str().unwrap(), "--scanner", "grype"],
        ]
        .concat(),
        dir.path(),
        None,
    );
    assert_eq!(from_grype, from_trivy);
    assert_eq!(from_trivy["updates"].as_array().unwrap().len(), 2);
}

#[test]
fn a_scanner_plugin_is_run_from_path_and_its_manifest_planned() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = layout_and_report(dir.path());
    let index = mirror();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let script = |name: &str, body: &str| {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // A converter from a made-up scanner's CSV-ish format to a Copa update manifest.
    script(
        "copa-fake",
        r#"echo "converting $1" >&2
printf '{"apiVersion": "v1alpha2", "metadata": {"os": {"type": "debian", "version": "12"}}, "osupdates": [], "langupdates": ['
sep=""
while IFS=, read -r name installed fixed id; do
  printf '%s{"name": "%s", "installedVersion": "%s", "fixedVersion": "%s", "vulnerabilityID": "%s", "type": "python-pkg", "class": "lang-pkgs"}' "$sep" "$name" "$installed" "$fixed" "$id"
  sep=","
done < "$1"
echo ']}'"#,
    );
    script(
        "copa-broken",
        "echo 'line one' >&2\necho 'no idea what this is' >&2\nexit 3",
    );
    script("copa-garbage", "echo 'not json'");
    let report = dir.path().join("fake.csv");
    std::fs::write(
        &report,
        "urllib3,1.26.4,1.26.5,CVE-2021-33503\nurllib3,1.26.4,1.26.17,CVE-2023-43804\n",
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let base = ["patch", "-i", &image, "--pip-index-url", &index.url];

    let (plan, log) = planned(
        &[
            &base[..],
            &["-r", report.to_str().unwrap(), "--scanner", "fake"],
        ]
        .concat(),
        dir.path(),
        Some(&path),
    );
    assert!(
        log.contains(&format!("copa-fake: converting {}", report.display())),
        "the plugin's log is shown: {log}"
    );
    // No paths in a manifest: urllib3 is patched wherever it is at 1.26.4.
    let updates = plan["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 2, "{plan:#}");
    for update in updates {
        assert_eq!(update["package"], "urllib3");
        assert_eq!(update["to"], "1.26.18");
        assert_eq!(
            update["fixes"],
            serde_json::json!(["CVE-2021-33503", "CVE-2023-43804"])
        );
    }

    let vex = dir.path().join("vex.json");
    let run = |scanner: &str| {
        Command::new(env!("CARGO_BIN_EXE_copa-host"))
            .args([
                "patch",
                "-i",
                &image,
                "-r",
                report.to_str().unwrap(),
                "--dry-run",
            ])
            .args(["--scanner", scanner, "-o", vex.to_str().unwrap()])
            .env("COPA_HOST_CACHE_DIR", dir.path())
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let broken = run("broken");
    assert!(!broken.status.success());
    let text = stderr(&broken);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "copa-broken: line one",
            "copa-broken: no idea what this is",
            "error: scanner plugin copa-broken failed with exit status 3: no idea what this is"
        ]
    );
    let error = one_line_error(&run("garbage"));
    assert!(
        error.starts_with("error: scanner plugin copa-garbage: its output: malformed JSON"),
        "{error}"
    );
    let error = one_line_error(&run("missing"));
    assert_eq!(
        error,
        "error: scanner plugin copa-missing not found on PATH (--scanner missing)"
    );
    let error = one_line_error(&run("../x"));
    assert!(error.starts_with("error: --scanner \"../x\""), "{error}");
    assert!(!vex.exists(), "a failed run writes no VEX document");

    let without_report = copa(
        &[
            "patch",
            "-i",
            &image,
            "-o",
            vex.to_str().unwrap(),
            "--dry-run",
        ],
        dir.path(),
    );
    assert!(
        one_line_error(&without_report).contains("-o needs a report (-r)"),
        "{}",
        stderr(&without_report)
    );
}

/// An OCI layout with the .NET test app app1 at /app (tests/fixtures/dotnet/packages.py), a
/// Trivy report of its Copa.Fixture.Lib 1.0.0, and the folder feed of the test packages.
fn dotnet_layout(dir: &Path) -> (String, String, std::path::PathBuf) {
    let (feed, apps) = common::dotnet::build_packages(dir, true);
    let mut layer = tar::Builder::new(Vec::new());
    for entry in std::fs::read_dir(apps.join("app1")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        let name = format!("app/{}", path.file_name().unwrap().to_str().unwrap());
        layer.append_data(&mut header, name, &bytes[..]).unwrap();
    }
    let layout = dir.join("dotnet-layout");
    write_oci_layout(&layout, "v1", &[layer.into_inner().unwrap()]);
    let report = dir.join("dotnet-report.json");
    std::fs::write(
        &report,
        common::dotnet::trivy_dotnet_report(&[(
            "app/app1.deps.json",
            "Copa.Fixture.Lib",
            "1.0.0",
            "CVE-LIB",
            "1.0.1",
        )]),
    )
    .unwrap();
    (
        format!("oci:{}:v1", layout.display()),
        report.display().to_string(),
        feed,
    )
}

#[test]
fn nuget_configs_are_read_explicitly_or_from_the_user_level() {
    let dir = tempfile::tempdir().unwrap();
    let (image, report, feed) = dotnet_layout(dir.path());
    let home = dir.path().join("home");
    let user_level = home.join(".nuget/NuGet/NuGet.Config");
    std::fs::create_dir_all(user_level.parent().unwrap()).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["patch", "-i", &image, "-r", &report];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--pkg-types", "library", "--dry-run", "--summary", "-"]);
        Command::new(env!("CARGO_BIN_EXE_copa-host"))
            .args(&args)
            .env("COPA_HOST_CACHE_DIR", dir.path())
            .env("HOME", &home)
            .env_remove("COPA_HOST_PLUGIN_PATH")
            .output()
            .unwrap()
    };
    let summary = |output: Output| -> serde_json::Value {
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let planned_to = |summary: &serde_json::Value| {
        summary["updates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                format!(
                    "{} {}",
                    u["package"].as_str().unwrap(),
                    u["to"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };

    // Without --nuget-source or --nuget-config, the user-level config (what the dotnet CLI
    // reads) names the feed.
    std::fs::write(
        &user_level,
        format!(
            r#"<configuration><packageSources><clear/><add key="local" value="{}"/></packageSources></configuration>"#,
            feed.display()
        ),
    )
    .unwrap();
    assert_eq!(planned_to(&summary(run(&[]))), ["Copa.Fixture.Lib 1.0.1"]);

    // A broken user-level config (an encrypted password, which only Windows can read) does not
    // fail the run, nor send the packages to nuget.org: they are looked up on no feed, the
    // warning says why and the skip says so.
    std::fs::write(
        &user_level,
        r#"<configuration><packageSources><add key="corp" value="https://nuget.corp.example/v3/index.json"/></packageSources>
           <packageSourceCredentials><corp><add key="Username" value="u"/><add key="Password" value="AQAAANCMnd8BFdERjHoAwE"/></corp></packageSourceCredentials></configuration>"#,
    )
    .unwrap();
    let output = run(&[]);
    let warning = stderr(&output);
    assert!(
        warning.contains(&user_level.display().to_string())
            && warning.contains("ClearTextPassword"),
        "{warning}"
    );
    let broken = summary(output);
    assert!(planned_to(&broken).is_empty(), "{broken:#}");
    let reason = broken["skipped"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("source mapping lets no configured feed"),
        "{reason}"
    );
    // An explicit source replaces the user-level config.
    let feed_arg = feed.display().to_string();
    assert_eq!(
        planned_to(&summary(run(&["--nuget-source", &feed_arg]))),
        ["Copa.Fixture.Lib 1.0.1"]
    );
    // An explicit config is the user's word: a broken or missing one fails the run, in one line.
    let error = one_line_error(&run(&["--nuget-config", user_level.to_str().unwrap()]));
    assert!(error.contains("ClearTextPassword"), "{error}");
    let missing = dir.path().join("missing.config");
    let error = one_line_error(&run(&["--nuget-config", missing.to_str().unwrap()]));
    assert!(
        error.contains("reading NuGet config") && error.contains("missing.config"),
        "{error}"
    );
}
