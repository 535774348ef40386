//! Hostile input, built here as an attacker would: each case must end in one line (exit 1, never
//! an abort or a signal), write nothing, and leave no work directory behind.

mod common;

use std::path::Path;
use std::process::Output;

use common::docker::copa_with_env;
use common::{layer_tar, python_image_tar, trivy_report, write_oci_layout};

/// A tebibyte: what a lying tar header claims.
const TEBIBYTE: u64 = 1 << 40;

/// Runs copa-host with its own temporary directory, so that what it leaves there is seen.
fn copa_in(tmp: &Path, args: &[&str]) -> Output {
    copa_with_env(args, &tmp.join("cache"), &[("TMPDIR", tmp)])
}

/// A dry run of `image` for libraries, which must end in one line containing `expected`.
fn assert_dry_run_refused(tmp: &Path, image: &str, expected: &str) {
    let output = copa_in(
        tmp,
        &["patch", "-i", image, "--pkg-types", "library", "--dry-run"],
    );
    assert_refused(&output, tmp, expected);
}

/// Exit 1 with one line starting `error:` that contains `expected`, and nothing left behind.
fn assert_refused(output: &Output, tmp: &Path, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(expected), "{stderr}");
    assert_left_nothing(tmp);
}

/// Nothing in `tmp` but the plugin cache and the test's inputs.
fn assert_left_nothing(tmp: &Path) {
    let left: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "cache" && !name.starts_with("input"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A dry run for libraries of the OCI layout at `layout` (tag 1) with a report of one finding,
/// package `name` 1.0 at a dist-info of the system site-packages, fixed in 1.1.
fn dry_run_of_one_finding(tmp: &Path, layout: &Path, name: &str, extra: &[&str]) -> Output {
    let site = "usr/local/lib/python3.11/dist-packages";
    let report = tmp.join("input-report.json");
    let path = format!("{site}/evil-1.0.dist-info/METADATA");
    let findings = [(path.as_str(), name, "1.0", "CVE-2000-1", "1.1")];
    std::fs::write(&report, trivy_report(&findings)).unwrap();
    let image = format!("oci:{}:1", layout.display());
    let mut args = vec![
        "patch",
        "-i",
        &image,
        "-r",
        report.to_str().unwrap(),
        "--pkg-types",
        "library",
        "--dry-run",
    ];
    args.extend(extra);
    copa_in(tmp, &args)
}

/// A tar of `nodes` followed by one regular file `path` whose header claims `claimed` bytes but
/// which holds only a block of them: the archive ends there, as a truncated or forged one does.
fn tar_with_lying_entry(nodes: &[common::Node], path: &str, claimed: u64) -> Vec<u8> {
    let mut tar = layer_tar(nodes);
    // Drop the two zero blocks that end the archive.
    tar.truncate(tar.len() - 1024);
    let mut header = tar::Header::new_gnu();
    header.set_path(path).unwrap();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(claimed);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(&[b'x'; 512]);
    tar
}

#[test]
fn a_layer_file_claiming_a_tebibyte_is_an_unreadable_file() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("input-layout");
    let site = "usr/local/lib/python3.11/dist-packages";
    let lying = tar_with_lying_entry(
        &[],
        &format!("{site}/evil-1.0.dist-info/METADATA"),
        TEBIBYTE,
    );
    write_oci_layout(&layout, "1", &[python_image_tar(), lying]);
    let output = dry_run_of_one_finding(tmp.path(), &layout, "evil", &["--summary", "-"]);
    // The file cannot be read (pip then does not see the package), and the run goes on: the
    // finding is skipped with the reason, nothing is allocated for the claim.
    assert!(output.status.success(), "{output:?}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let skipped = summary["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s["package"] == "evil"),
        "{summary:#}"
    );
    assert_left_nothing(tmp.path());
}

#[test]
fn a_docker_archive_manifest_claiming_a_tebibyte_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("input.tar");
    std::fs::write(
        &archive,
        tar_with_lying_entry(&[], "manifest.json", TEBIBYTE),
    )
    .unwrap();
    let image = format!("docker-archive:{}", archive.display());
    assert_dry_run_refused(
        tmp.path(),
        &image,
        "manifest.json claims 1099511627776 bytes",
    );
}

/// An oci-archive whose layout holds a symlink to a file of this machine: packing the output
/// would have carried that file.
#[test]
fn an_oci_archive_with_a_link_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("input-layout");
    write_oci_layout(&layout, "1", &[python_image_tar()]);
    let archive = tmp.path().join("input.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    builder.append_dir_all(".", &layout).unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder
        .append_link(&mut header, "blobs/sha256/leak", "/etc/hostname")
        .unwrap();
    builder.into_inner().unwrap();
    let image = format!("oci-archive:{}:1", archive.display());
    assert_dry_run_refused(
        tmp.path(),
        &image,
        "member blobs/sha256/leak is a Symlink; an OCI layout holds only files and directories",
    );
    assert!(!tmp.path().join("input-patched.tar").exists());
}

/// A login in an index URL is never printed, whichever flag carried it.
#[test]
fn a_login_in_a_refused_url_is_not_printed() {
    let tmp = tempfile::tempdir().unwrap();
    for flag in [
        vec!["--index", "pypi=https://me:s3cret@mirror.example/simple/"],
        vec!["--index-credential", "https://me:s3cret@mirror.example=ENV"],
    ] {
        let mut args = vec!["patch", "-i", "oci:/nonexistent:1", "--dry-run"];
        args.extend(flag);
        let output = copa_in(tmp.path(), &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("https://***@mirror.example"), "{stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}

/// Text from a report or an image reaches the terminal with its control characters shown, not
/// obeyed: an escape sequence in a package name cannot rewrite the summary or set the title.
#[test]
fn control_characters_in_a_package_name_are_shown_not_obeyed() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("input-layout");
    write_oci_layout(&layout, "1", &[python_image_tar()]);
    let name = "evil\u{1b}]0;pwned\u{7}\u{1b}[2K\rurllib3 fixed";
    let output = dry_run_of_one_finding(tmp.path(), &layout, name, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2K\\u{d}urllib3 fixed"),
        "{stderr}"
    );
    assert!(
        !output
            .stderr
            .iter()
            .any(|&b| b == 0x1b || b == 0x07 || b == b'\r'),
        "{stderr}"
    );
    assert_left_nothing(tmp.path());
}
