//! End to end on a real Docker engine: the Go fixture images (tests/fixtures/build.sh) are
//! patched by the real binary, which rebuilds their Go program in a Go tooling image against a
//! module proxy on 127.0.0.1 (made from Debian's packages by tests/fixtures/go-fixture.sh). The
//! result is checked with `go version -m` on the binary taken out of the patched image, and by
//! running it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::docker::*;
use common::serve_static;

const APP: &str = "copa-fixture-go-app:bookworm";
const BARE: &str = "copa-fixture-go-bare:latest";
const TOOLING: &str = "go=copa-fixture-go-tooling:1.21";
const GO: &str = "/usr/lib/go-1.21/bin/go";

fn fixture() -> PathBuf {
    let dir = std::env::var_os("COPA_GO_FIXTURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("copa-go-fixture"));
    let script = repo_root().join("tests/fixtures/go-fixture.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(&dir)
        .arg("--toolchain")
        .status()
        .unwrap();
    assert!(status.success(), "tests/fixtures/go-fixture.sh failed");
    dir
}

/// The fixture program's git repository as a bare clone served over git's "dumb" HTTP protocol
/// on 127.0.0.1 (a stand-in for the source host); returns its URL.
fn serve_repository(fixture: &Path, dir: &Path) -> String {
    let bare = dir.join("hello.git");
    for args in [
        vec![
            "clone",
            "-q",
            "--bare",
            fixture.join("src/hello").to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
        vec!["-C", bare.to_str().unwrap(), "update-server-info"],
    ] {
        let status = Command::new("git").args(&args).status().unwrap();
        assert!(status.success(), "git {args:?}");
    }
    let mut files = tree_files(&bare);
    // git asks for the smart protocol first; a dumb server answers with the plain file.
    let refs = files
        .iter()
        .find(|(path, _)| path == "/info/refs")
        .map(|(_, bytes)| bytes.clone())
        .unwrap();
    files.push(("/info/refs?service=git-upload-pack".into(), refs));
    format!("{}/", serve_static(files).0)
}

/// Every file below `root`, served on 127.0.0.1 at its relative path; returns the base URL.
fn serve_tree(root: &Path) -> String {
    serve_static(tree_files(root)).0
}

/// Every file below `root`, at its path relative to `root` ("/a/b").
fn tree_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, root: &Path, files: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, files);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy();
                files.push((format!("/{relative}"), std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut files = Vec::new();
    walk(root, root, &mut files);
    files
}

/// A Trivy report: `(target, package, installed, id, fixed)`; a target ending in go.mod is a
/// `gomod` result, anything else a `gobinary` one.
fn report(findings: &[(&str, &str, &str, &str, &str)]) -> String {
    let mut targets: Vec<&str> = findings.iter().map(|f| f.0).collect();
    targets.dedup();
    let results: Vec<serde_json::Value> = targets
        .iter()
        .map(|target| {
            let vulnerabilities: Vec<serde_json::Value> = findings
                .iter()
                .filter(|f| f.0 == *target)
                .map(|(_, name, installed, id, fixed)| {
                    serde_json::json!({
                        "VulnerabilityID": id, "PkgName": name, "PkgPath": "",
                        "InstalledVersion": installed, "FixedVersion": fixed,
                        "Status": "fixed", "Severity": "HIGH",
                        "PkgIdentifier": {"PURL": format!("pkg:golang/{name}@{installed}")}
                    })
                })
                .collect();
            let kind = if target.ends_with("go.mod") {
                "gomod"
            } else {
                "gobinary"
            };
            serde_json::json!({"Target": target, "Class": "lang-pkgs", "Type": kind,
                               "Vulnerabilities": vulnerabilities})
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "SchemaVersion": 2, "ArtifactName": "fixture", "ArtifactType": "container_image",
        "Results": results
    }))
    .unwrap()
}

fn patch(
    image: &str,
    report: &Path,
    tag: &str,
    proxy: &str,
    extra: &[&str],
    out: &Path,
) -> serde_json::Value {
    let summary = out.join("summary.json");
    let mut args = vec![
        "patch",
        "-i",
        image,
        "-r",
        report.to_str().unwrap(),
        "--pkg-types",
        "library",
        "--library-patch-level",
        "minor",
        "--go-proxy",
        proxy,
        "--tooling-image",
        TOOLING,
        "-t",
        tag,
        "--summary",
        summary.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output: Output = Command::new(env!("CARGO_BIN_EXE_copa-host"))
        .args(&args)
        .env("COPA_HOST_CACHE_DIR", out.join("cache"))
        // Debian's module sources carry no checksum-database entries.
        .env("GOSUMDB", "off")
        .output()
        .unwrap();
    eprintln!(
        "copa-host {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "copa-host failed");
    serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap()
}

/// `go version -m` of a file taken out of an image.
fn go_version_m(image: &str, path: &str, dir: &Path) -> String {
    let container = docker_ok(&["create", image]);
    let local = dir.join("binary");
    docker_ok(&[
        "cp",
        &format!("{container}:{path}"),
        local.to_str().unwrap(),
    ]);
    docker_ok(&["rm", &container]);
    let output = Command::new(GO)
        .args(["version", "-m"])
        .arg(&local)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn line<'a>(version_m: &'a str, prefix: &str) -> &'a str {
    version_m
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {version_m}"))
}

#[test]
fn rebuilds_a_go_binary_with_the_fixed_module_and_skips_one_without_vcs() {
    let _daemon = exclusive_daemon();
    require_fixture(APP);
    require_fixture("copa-fixture-go-tooling:1.21");
    let fixture = fixture();
    let proxy = serve_tree(&fixture.join("goproxy"));
    let out = tempfile::tempdir().unwrap();
    let tag = "copa-e2e-go:patched";
    remove_image(tag);
    let repository = serve_repository(&fixture, out.path());
    let report_path = out.path().join("report.json");
    // The fixture proxy has x/crypto v0.4.0 and v0.25.0 (what Debian ships), so the test
    // vulnerability is one fixed in v0.25.0.
    std::fs::write(
        &report_path,
        report(&[
            (
                "app/hello",
                "golang.org/x/crypto",
                "v0.4.0",
                "COPA-TEST-XCRYPTO",
                "0.25.0",
            ),
            (
                "usr/local/bin/hello-novcs",
                "golang.org/x/crypto",
                "v0.4.0",
                "COPA-TEST-XCRYPTO",
                "0.25.0",
            ),
        ]),
    )
    .unwrap();
    let before = go_version_m(APP, "/app/hello", out.path());

    // The program's repository, named for its module: rebuilt in a checkout of the revision
    // the binary records.
    let source = format!("example.com/copa/hello={repository}");
    let summary = patch(
        APP,
        &report_path,
        tag,
        &proxy,
        &["--go-source", &source],
        out.path(),
    );
    let updates = summary["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "{summary:#}");
    assert_eq!(updates[0]["target"], "/app/hello");
    assert_eq!(updates[0]["to"], "v0.25.0");
    assert_eq!(updates[0]["status"], "patched");
    assert_eq!(updates[0]["notes"], serde_json::json!([]), "{summary:#}");
    let skipped = summary["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{summary:#}");
    assert_eq!(skipped[0]["target"], "/usr/local/bin/hello-novcs");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("built without VCS information")
    );

    // The binary in the patched image, read by the go command itself.
    let after = go_version_m(tag, "/app/hello", out.path());
    assert!(
        line(&after, "dep").starts_with("dep\tgolang.org/x/crypto\tv0.25.0\th1:"),
        "{after}"
    );
    assert_eq!(
        after.lines().next().unwrap().split(": ").nth(1),
        before.lines().next().unwrap().split(": ").nth(1),
        "same toolchain"
    );
    // The same flags, and the same VCS information: the checkout was the very revision.
    for setting in [
        "build\t-ldflags=",
        "build\t-tags=",
        "build\tCGO_ENABLED=",
        "build\tGOARCH=",
        "build\tvcs=git",
        "build\tvcs.revision=",
        "build\tvcs.time=",
        "build\tvcs.modified=false",
    ] {
        assert_eq!(line(&after, setting), line(&before, setting));
    }
    assert_eq!(
        line(&after, "build\tvcs.revision="),
        format!(
            "build\tvcs.revision={}",
            std::fs::read_to_string(fixture.join("REVISION"))
                .unwrap()
                .trim()
        )
    );
    // It runs, with the -X value of the original -ldflags, as its original owner and mode.
    assert_eq!(run_in(tag, &["/app/hello", "--version"]), "hello 1.0.0");
    assert_eq!(run_in(tag, &["/app/hello"]), "true");
    assert_eq!(
        run_in(tag, &["stat", "-c", "%a %u:%g", "/app/hello"]),
        "750 1000:1000"
    );
    // Untouched: the binary that could not be rebuilt.
    let novcs = go_version_m(tag, "/usr/local/bin/hello-novcs", out.path());
    assert!(line(&novcs, "dep").starts_with("dep\tgolang.org/x/crypto\tv0.4.0"));

    let original = layers(APP);
    let new = layers(tag);
    assert_eq!(new.len(), original.len() + 1);
    assert_eq!(&new[..original.len()], &original[..]);

    // Patching the patched image again, for a toolchain fix now: the rebuild starts from the
    // binary's own dependency versions, so the x/crypto fix stays (the source's go.mod still
    // says v0.4.0).
    let go = after
        .lines()
        .next()
        .unwrap()
        .split(": ")
        .nth(1)
        .unwrap()
        .trim();
    let stdlib = format!("v{}", &go[2..]);
    let again_report = out.path().join("again.json");
    std::fs::write(
        &again_report,
        report(&[(
            "app/hello",
            "stdlib",
            &stdlib,
            "CVE-2024-34156",
            "1.22.7, 1.23.1",
        )]),
    )
    .unwrap();
    let again_tag = "copa-e2e-go:patched-again";
    remove_image(again_tag);
    let summary = patch(
        tag,
        &again_report,
        again_tag,
        &proxy,
        &[
            "--go-source",
            &source,
            "--toolchain-patch-level",
            "minor",
            "--tooling-image",
            "go=copa-fixture-go-tooling:1.22",
        ],
        out.path(),
    );
    let updates = summary["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "{summary:#}");
    assert_eq!(updates[0]["package"], "stdlib");
    assert_eq!(updates[0]["status"], "patched", "{summary:#}");
    let again = go_version_m(again_tag, "/app/hello", out.path());
    assert!(again.lines().next().unwrap().contains("go1.22."), "{again}");
    assert!(
        line(&again, "dep").starts_with("dep\tgolang.org/x/crypto\tv0.25.0\th1:"),
        "{again}"
    );
    assert_eq!(
        line(&again, "build\tvcs.revision="),
        line(&before, "build\tvcs.revision=")
    );
    // Still the original layers plus one: the new patch layer replaces the earlier one.
    let again_layers = layers(again_tag);
    assert_eq!(again_layers.len(), original.len() + 1);
    assert_eq!(&again_layers[..original.len()], &original[..]);
    remove_image(again_tag);
    remove_image(tag);
}

#[test]
fn a_binary_without_vcs_information_is_rebuilt_at_the_ref_a_go_source_names() {
    let _daemon = exclusive_daemon();
    require_fixture(APP);
    require_fixture("copa-fixture-go-tooling:1.21");
    let fixture = fixture();
    let proxy = serve_tree(&fixture.join("goproxy"));
    let out = tempfile::tempdir().unwrap();
    let tag = "copa-e2e-go-novcs:patched";
    remove_image(tag);
    let repository = serve_repository(&fixture, out.path());
    let revision = std::fs::read_to_string(fixture.join("REVISION")).unwrap();
    let revision = revision.trim();
    let report_path = out.path().join("report.json");
    std::fs::write(
        &report_path,
        report(&[(
            "usr/local/bin/hello-novcs",
            "golang.org/x/crypto",
            "v0.4.0",
            "COPA-TEST-XCRYPTO",
            "0.25.0",
        )]),
    )
    .unwrap();
    let before = go_version_m(APP, "/usr/local/bin/hello-novcs", out.path());
    assert!(!before.contains("vcs.revision"), "{before}");

    let source = format!("example.com/copa/hello={repository}@{revision}");
    let summary = patch(
        APP,
        &report_path,
        tag,
        &proxy,
        &["--go-source", &source],
        out.path(),
    );
    let updates = summary["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "{summary:#}");
    assert_eq!(updates[0]["target"], "/usr/local/bin/hello-novcs");
    assert_eq!(updates[0]["status"], "patched", "{summary:#}");
    assert!(
        summary["skipped"].as_array().unwrap().is_empty(),
        "{summary:#}"
    );

    // Built in a checkout of the named revision: the new dependency, and now VCS information.
    let after = go_version_m(tag, "/usr/local/bin/hello-novcs", out.path());
    assert!(
        line(&after, "dep").starts_with("dep\tgolang.org/x/crypto\tv0.25.0\th1:"),
        "{after}"
    );
    assert_eq!(
        line(&after, "build\tvcs.revision="),
        format!("build\tvcs.revision={revision}")
    );
    assert_eq!(
        line(&after, "build\tvcs.modified="),
        "build\tvcs.modified=false"
    );
    assert_eq!(
        line(&after, "build\t-ldflags="),
        line(&before, "build\t-ldflags=")
    );
    assert_eq!(
        run_in(tag, &["/usr/local/bin/hello-novcs", "--version"]),
        "hello 1.0.0"
    );
    remove_image(tag);
}

#[test]
fn toolchain_level_minor_rebuilds_with_a_newer_go_in_an_image_without_go() {
    let _daemon = exclusive_daemon();
    require_fixture(BARE);
    require_fixture("copa-fixture-go-tooling:1.21");
    let fixture = fixture();
    let proxy = serve_tree(&fixture.join("goproxy"));
    let out = tempfile::tempdir().unwrap();
    let tag = "copa-e2e-go-bare:patched";
    remove_image(tag);
    let before = go_version_m(BARE, "/app/hello", out.path());
    let go = before
        .lines()
        .next()
        .unwrap()
        .split(": ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    assert!(go.starts_with("go1.21."), "{go}");
    let stdlib = format!("v{}", &go[2..]);
    let report_path = out.path().join("report.json");
    std::fs::write(
        &report_path,
        report(&[(
            "app/hello",
            "stdlib",
            &stdlib,
            "CVE-2024-34156",
            "1.22.7, 1.23.1",
        )]),
    )
    .unwrap();

    // At patch level the toolchain stays: the fix needs Go 1.22.
    let summary = patch(
        BARE,
        &report_path,
        tag,
        &proxy,
        &["--toolchain-patch-level", "patch"],
        out.path(),
    );
    assert!(
        summary["updates"].as_array().unwrap().is_empty(),
        "{summary:#}"
    );
    assert!(
        summary["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("--toolchain-patch-level is patch"),
        "{summary:#}"
    );

    // The go command verifies a downloaded toolchain against sum.golang.org whatever GOSUMDB
    // says, and that is not reachable here: the tooling image brings Go 1.22 itself (the last
    // --tooling-image wins), so GOTOOLCHAIN=go1.22.N is its local toolchain.
    let summary = patch(
        BARE,
        &report_path,
        tag,
        &proxy,
        &[
            "--toolchain-patch-level",
            "minor",
            "--tooling-image",
            "go=copa-fixture-go-tooling:1.22",
        ],
        out.path(),
    );
    let updates = summary["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "{summary:#}");
    assert_eq!(updates[0]["package"], "stdlib");
    assert_eq!(updates[0]["status"], "patched", "{summary:#}");
    // Without --go-source, example.com has no known repository: the module proxy's copy, and
    // the summary says what that costs.
    assert!(
        updates[0]["notes"][0]
            .as_str()
            .unwrap()
            .contains("carries no vcs.revision"),
        "{summary:#}"
    );
    let to = updates[0]["to"].as_str().unwrap();
    assert!(to.starts_with("v1.22."), "{to}");

    let after = go_version_m(tag, "/app/hello", out.path());
    assert_eq!(
        after
            .lines()
            .next()
            .unwrap()
            .split(": ")
            .nth(1)
            .unwrap()
            .trim(),
        format!("go{}", &to[1..])
    );
    assert!(
        line(&after, "dep").starts_with("dep\tgolang.org/x/crypto\tv0.4.0"),
        "{after}"
    );
    // The image has no shell: the binary runs as its own entrypoint.
    assert_eq!(run_in(tag, &["/app/hello", "--version"]), "hello 1.0.0");
    remove_image(tag);
}

#[test]
fn updates_a_vendoring_module_tree_in_a_tooling_container() {
    let _daemon = exclusive_daemon();
    require_fixture(APP);
    require_fixture("copa-fixture-go-tooling:1.21");
    let fixture = fixture();
    let proxy = serve_tree(&fixture.join("goproxy"));
    let out = tempfile::tempdir().unwrap();
    let tag = "copa-e2e-go-mod:patched";
    remove_image(tag);
    let report_path = out.path().join("report.json");
    std::fs::write(
        &report_path,
        report(&[(
            "srv/hello/go.mod",
            "golang.org/x/crypto",
            "v0.4.0",
            "COPA-TEST-XCRYPTO",
            "0.25.0",
        )]),
    )
    .unwrap();

    let summary = patch(APP, &report_path, tag, &proxy, &[], out.path());
    let updates = summary["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "{summary:#}");
    assert_eq!(updates[0]["target"], "/srv/hello");
    assert_eq!(updates[0]["status"], "patched", "{summary:#}");

    let go_mod = run_in(tag, &["cat", "/srv/hello/go.mod"]);
    assert!(
        go_mod.contains("require golang.org/x/crypto v0.25.0"),
        "{go_mod}"
    );
    let go_sum = run_in(tag, &["cat", "/srv/hello/go.sum"]);
    assert!(
        go_sum.contains("golang.org/x/crypto v0.25.0 h1:"),
        "{go_sum}"
    );
    let modules = run_in(tag, &["cat", "/srv/hello/vendor/modules.txt"]);
    assert!(
        modules.starts_with("# golang.org/x/crypto v0.25.0"),
        "{modules}"
    );
    assert_eq!(
        run_in(tag, &["stat", "-c", "%u:%g", "/srv/hello/go.mod"]),
        "1000:1000"
    );
    // The binary is left as it was: go.mod updates do not rebuild it.
    let binary = go_version_m(tag, "/app/hello", out.path());
    assert!(line(&binary, "dep").starts_with("dep\tgolang.org/x/crypto\tv0.4.0"));
    remove_image(tag);
}
