//! An ecosystem the host has never heard of, end to end: the SDK's example patcher `quill`
//! (sdk/examples/quill, built against the SDK only) patches an image through contract 0.4: it
//! reads its own JSON index over the `http` capability from servers on 127.0.0.1 that the user
//! granted with `--index`, and places the fixed package with a `download` step. The result is
//! checked by running the patched image. The same runs show that credentials for one origin
//! never reach another, that an origin the user did not grant is refused in one line before
//! any request reaches it, and that no file of the host names the ecosystem.

mod common;

use std::path::Path;

use common::docker::*;
use sha2::{Digest, Sha256};

const BASE: &str = "copa-fixture-base:bookworm";
const IMAGE: &str = "copa-e2e-quill:1.0";
const TOKEN: &str = "quill-s3cret";

/// A quill package: a gzip'd tar whose root holds QUILL-PACKAGE and `widget.txt`.
fn package(name: &str, version: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, text) in [
        ("QUILL-PACKAGE", format!("name={name}\nversion={version}\n")),
        ("widget.txt", format!("{name} {version}\n")),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(text.len() as u64);
        header.set_mtime(0);
        builder
            .append_data(&mut header, path, text.as_bytes())
            .unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// The image: the base fixture plus quill packages `widget` and `gadget` at 1.0.0.
fn build_image(dir: &Path) {
    let root = dir.join("root");
    for name in ["widget", "gadget"] {
        let package = root.join("opt/quill/packages").join(name);
        std::fs::create_dir_all(&package).unwrap();
        std::fs::write(
            package.join("QUILL-PACKAGE"),
            format!("name={name}\nversion=1.0.0\n"),
        )
        .unwrap();
        std::fs::write(package.join("widget.txt"), format!("{name} 1.0.0\n")).unwrap();
    }
    let container = docker_ok(&["create", BASE, "true"]);
    docker_ok(&[
        "cp",
        &format!("{}/.", root.display()),
        &format!("{container}:/"),
    ]);
    docker_ok(&["commit", &container, IMAGE]);
    docker_ok(&["rm", &container]);
}

/// A Trivy report with one finding of `package` 1.0.0, fixed in 1.0.5.
fn report(dir: &Path, package: &str) -> String {
    let report = serde_json::json!({
        "SchemaVersion": 2,
        "ArtifactName": IMAGE,
        "ArtifactType": "container_image",
        "Results": [{
            "Target": "quill", "Class": "lang-pkgs", "Type": "quill",
            "Vulnerabilities": [{
                "VulnerabilityID": "CVE-2099-0001", "PkgName": package,
                "InstalledVersion": "1.0.0", "FixedVersion": "1.0.5", "Status": "fixed",
                "Severity": "HIGH"
            }]
        }]
    });
    let path = dir.join(format!("{package}.trivy.json"));
    std::fs::write(&path, report.to_string()).unwrap();
    path.display().to_string()
}

fn plugin_dir(dir: &Path) -> String {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(env!("COPA_TEST_PLUGIN_QUILL"), plugins.join("quill.wasm")).unwrap();
    plugins.display().to_string()
}

fn copa_with_token(args: &[&str], cache: &Path) -> std::process::Output {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_copa-host"))
        .args(args)
        .env("COPA_HOST_CACHE_DIR", cache)
        .env("QUILL_TOKEN", TOKEN)
        .output()
        .unwrap();
    eprintln!(
        "copa-host {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_plugin_for_an_ecosystem_the_host_never_heard_of_patches_an_image() {
    let _daemon = exclusive_daemon();
    require_fixture(BASE);
    let dir = tempfile::tempdir().unwrap();
    build_image(dir.path());
    let (widget_105, widget_110, gadget_105) = (
        package("widget", "1.0.5"),
        package("widget", "1.1.0"),
        package("gadget", "1.0.5"),
    );
    let sha = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
    // The files: granted as a second quill URL, no credentials configured for it.
    let (files, files_log) = common::serve_static(vec![
        ("/widget-1.0.5.tar.gz".into(), widget_105.clone()),
        ("/widget-1.1.0.tar.gz".into(), widget_110.clone()),
    ]);
    // An origin nobody granted: gadget's index entry points there.
    let (elsewhere, elsewhere_log) =
        common::serve_static(vec![("/gadget-1.0.5.tar.gz".into(), gadget_105.clone())]);
    // The index: private, answers only with the token.
    let index_files = vec![
        (
            "/widget.json".to_string(),
            serde_json::json!({"name": "widget", "versions": [
                {"version": "1.0.5", "url": format!("{files}/widget-1.0.5.tar.gz"), "sha256": sha(&widget_105)},
                {"version": "1.1.0", "url": format!("{files}/widget-1.1.0.tar.gz"), "sha256": sha(&widget_110)},
            ]})
            .to_string()
            .into_bytes(),
        ),
        (
            "/gadget.json".to_string(),
            serde_json::json!({"name": "gadget", "versions": [
                {"version": "1.0.5", "url": format!("{elsewhere}/gadget-1.0.5.tar.gz"), "sha256": sha(&gadget_105)},
            ]})
            .to_string()
            .into_bytes(),
        ),
    ];
    let (index, index_log) =
        common::serve_static_requiring(Some(format!("Bearer {TOKEN}")), |_| index_files);
    let plugins = plugin_dir(dir.path());
    let cache = dir.path().join("cache");
    let tag = "copa-e2e-quill:1.0-patched";
    remove_image(tag);
    let widget_report = report(dir.path(), "widget");
    let grants = [
        "--index".to_string(),
        format!("quill={index}"),
        "--index".to_string(),
        format!("quill={files}"),
        "--index-credential".to_string(),
        format!("{index}=QUILL_TOKEN"),
    ];
    let patch = |report: &str, tag: &str| -> Vec<String> {
        let mut args: Vec<String> = [
            "patch",
            "-i",
            IMAGE,
            "-r",
            report,
            "--pkg-types",
            "library",
            "--plugin-dir",
            &plugins,
            "-t",
            tag,
            "-o",
            &dir.path().join("vex.json").display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        args.extend(grants.iter().cloned());
        args
    };

    let args = patch(&widget_report, tag);
    let output = copa_with_token(&args.iter().map(String::as_str).collect::<Vec<_>>(), &cache);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The patched image, run: the fixed version at patch level (1.0.5, not 1.1.0), its files.
    assert_eq!(
        run_in(tag, &["cat", "/opt/quill/packages/widget/QUILL-PACKAGE"]),
        "name=widget\nversion=1.0.5"
    );
    assert_eq!(
        run_in(tag, &["cat", "/opt/quill/packages/widget/widget.txt"]),
        "widget 1.0.5"
    );
    assert_eq!(
        run_in(tag, &["cat", "/opt/quill/packages/gadget/QUILL-PACKAGE"]),
        "name=gadget\nversion=1.0.0",
        "a package without a finding is left alone"
    );
    assert_eq!(layers(tag).len(), layers(IMAGE).len() + 1);
    // The credential went to the index's origin and nowhere else.
    assert!(
        index_log
            .lock()
            .unwrap()
            .iter()
            .any(|p| p == "/widget.json"),
        "{:?}",
        index_log.lock().unwrap()
    );
    assert_eq!(
        *files_log.lock().unwrap(),
        ["/widget-1.0.5.tar.gz"],
        "the file server got exactly the download, without credentials"
    );
    // The VEX names the package with the type the plugin declares.
    let vex: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("vex.json")).unwrap()).unwrap();
    let statement = &vex["statements"][0];
    assert_eq!(statement["status"], "fixed", "{vex:#}");
    assert_eq!(
        statement["products"][0]["subcomponents"][0]["@id"],
        "pkg:quill/widget@1.0.5"
    );

    // gadget's file is on an origin the user did not grant: one line, before any request.
    let refused_tag = "copa-e2e-quill:refused";
    remove_image(refused_tag);
    let dangling_before = dangling_images();
    let gadget_report = report(dir.path(), "gadget");
    let args = patch(&gadget_report, refused_tag);
    let output = copa_with_token(&args.iter().map(String::as_str).collect::<Vec<_>>(), &cache);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap();
    let elsewhere_origin = elsewhere.trim_end_matches('/');
    assert!(
        last.starts_with("error: plugin quill: ")
            && last.contains(&format!(
                "{elsewhere_origin} is not granted to plugin quill"
            )),
        "{stderr}"
    );
    assert!(elsewhere_log.lock().unwrap().is_empty());
    assert_nothing_left(refused_tag, dangling_before);

    // The user grants that origin with --index-origin (as a feed's blob store is): the file is
    // fetched from it, and no credential goes with it.
    let mut args = patch(&gadget_report, refused_tag);
    args.extend(["--index-origin".to_string(), format!("quill={elsewhere}")]);
    let output = copa_with_token(&args.iter().map(String::as_str).collect::<Vec<_>>(), &cache);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        run_in(
            refused_tag,
            &["cat", "/opt/quill/packages/gadget/QUILL-PACKAGE"]
        ),
        "name=gadget\nversion=1.0.5"
    );
    assert_eq!(*elsewhere_log.lock().unwrap(), ["/gadget-1.0.5.tar.gz"]);
    remove_image(refused_tag);

    // Without the credential, the private index answers 401: one line naming the index.
    let mut args = patch(&widget_report, refused_tag);
    args.truncate(args.len() - 2);
    let output = copa_with_token(&args.iter().map(String::as_str).collect::<Vec<_>>(), &cache);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: ") && last.contains("401") && last.contains(&index),
        "{stderr}"
    );
    remove_image(tag);
    remove_image(IMAGE);
}

#[test]
fn an_index_or_option_nobody_declares_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(dir.path());
    let cache = dir.path().join("cache");
    for (args, expected) in [
        (
            vec!["--index", "maven=https://repo.example/"],
            // The list goes on with the built-ins' indexes; quill's is last.
            "error: --index maven=https://repo.example/: no loaded plugin reads an index maven (indexes plugins declare: pypi (pip), ",
        ),
        (
            vec!["--plugin-option", "quill:color=blue"],
            "error: --plugin-option quill:color=...: plugin quill has no option color (its options: none)",
        ),
        (
            vec![
                "--index-credential",
                "https://repo.example=NO_SUCH_VARIABLE_HERE",
            ],
            "error: --index-credential https://repo.example=NO_SUCH_VARIABLE_HERE: the variable NO_SUCH_VARIABLE_HERE is not set",
        ),
        (
            vec!["--index-origin", "maven=https://cdn.example"],
            "error: --index-origin maven=https://cdn.example: no loaded plugin reads an index maven (indexes plugins declare: pypi (pip), ",
        ),
    ] {
        let mut all = vec![
            "patch",
            "-i",
            "oci:/nonexistent/layout:1",
            "--pkg-types",
            "library",
            "--plugin-dir",
            &plugins,
            "--dry-run",
        ];
        let is_index = args[0].starts_with("--index") && args[0] != "--index-credential";
        all.extend(args);
        let output = copa(&all, &cache);
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.trim();
        if is_index {
            assert!(line.starts_with(expected), "{line}");
            assert!(line.ends_with(", quill (quill))"), "{line}");
        } else {
            assert_eq!(line, expected);
        }
    }
}

#[test]
fn no_file_of_the_host_names_the_example_ecosystem() {
    fn walk(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if let Ok(text) = std::fs::read_to_string(&path)
                && text.to_ascii_lowercase().contains("quill")
            {
                found.push(path.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo_root().join("host"), &mut found);
    assert!(found.is_empty(), "host files naming quill: {found:?}");
}
