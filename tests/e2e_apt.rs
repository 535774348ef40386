//! End to end for OS packages on a real Docker engine and the real Debian mirror: the base
//! fixture (debootstrap of `bookworm main`, with the official three-suite sources) has genuinely
//! outdated packages. What is outdated changes with every Debian point release, so the tests
//! ask apt inside the image at run time and never hard-code a Debian version. Results are
//! checked by running the patched image (`dpkg-query`, `apt-get -s upgrade`) and reading its
//! layers.

mod common;

use std::collections::BTreeMap;

use common::debian::*;
use common::docker::*;
use serde_json::{Value, json};

fn installed_version(image: &str, package: &str) -> String {
    run_in(image, &["dpkg-query", "-W", "-f=${Version}", package])
}

#[test]
fn patches_the_os_packages_a_report_names_and_the_image_proves_it() {
    let _daemon = exclusive_daemon();
    require_fixture(BASE);
    let dir = tempfile::tempdir().unwrap();
    let tag = "copa-test-apt:report";
    remove_image(tag);

    let outdated = upgradable(BASE);
    assert!(
        !outdated.is_empty(),
        "the fixture has outdated packages (at least its bullseye ncurses-base): {outdated:?}"
    );
    // tzdata depends on nothing else: leaving it out of the report (when the report still names
    // something) shows that only what the report names is upgraded.
    let left_out = (outdated.len() >= 2 && outdated.contains_key("tzdata")).then_some("tzdata");
    let mut findings: Vec<(String, String, String, String, &str)> = outdated
        .iter()
        .filter(|(name, _)| Some(name.as_str()) != left_out)
        .map(|(name, (installed, candidate))| {
            (
                format!("TEST-{name}"),
                name.clone(),
                installed.clone(),
                candidate.clone(),
                "fixed",
            )
        })
        .collect();
    // Unfixable, and fixed only in a version no repository has: both skipped with a reason.
    let bash = installed_version(BASE, "bash");
    findings.push((
        "TEST-nofix".into(),
        "bash".into(),
        bash.clone(),
        String::new(),
        "affected",
    ));
    findings.push((
        "TEST-future".into(),
        "bash".into(),
        bash.clone(),
        format!("{bash}+copa1"),
        "fixed",
    ));
    let release = run_in(BASE, &["cat", "/etc/debian_version"]);
    let report = write(
        dir.path(),
        "report.json",
        &os_report("debian", &release, &findings),
    );
    let summary_path = dir.path().join("summary.json");

    let output = copa(
        &[
            "patch",
            "-i",
            BASE,
            "-r",
            &report,
            "-t",
            tag,
            "--summary",
            summary_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(output.status.success(), "copa-host failed");

    // The image: the base's layers untouched, one more on top.
    let (before, after) = (layers(BASE), layers(tag));
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after[..before.len()], before[..]);

    // Every named package is at the repositories' version, by dpkg's own account.
    let named: Vec<&String> = outdated
        .keys()
        .filter(|n| Some(n.as_str()) != left_out)
        .collect();
    for name in &named {
        assert_eq!(
            installed_version(tag, name),
            outdated[*name].1,
            "{name} in the patched image"
        );
    }
    let still = upgradable(tag);
    for name in &named {
        assert!(
            !still.contains_key(*name),
            "{name} still upgradable: {still:?}"
        );
    }
    if let Some(left_out) = left_out {
        assert_eq!(installed_version(tag, left_out), outdated[left_out].0);
    }
    assert_eq!(installed_version(tag, "bash"), bash);
    // The patched system still works: apt and dpkg run, and a shell starts.
    run_in(tag, &["dpkg", "--audit"]);

    // The layer: packages, never apt's lists, caches or logs.
    let entries: Vec<String> = last_layer_entries(tag, dir.path())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(entries.iter().any(|e| e == "var/lib/dpkg/status"));
    for junk in [
        "var/lib/apt/lists/",
        "var/cache/apt/",
        "var/log/",
        "var/lib/dpkg/status-old",
        "var/cache/ldconfig/aux-cache",
    ] {
        assert!(
            !entries.iter().any(|e| e.starts_with(junk)),
            "{junk} in the layer"
        );
    }

    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    let updates = summary["updates"].as_array().unwrap();
    assert_eq!(updates.len(), named.len());
    for update in updates {
        assert_eq!(update["status"], "patched", "{update}");
        let name = update["package"].as_str().unwrap();
        assert_eq!(update["to"], outdated[name].1.as_str());
        assert_eq!(update["fixes"], json!([format!("TEST-{name}")]));
    }
    let skips = summary["skipped"].as_array().unwrap();
    let reason = |id: &str| {
        skips
            .iter()
            .find(|s| {
                s["vulnerabilities"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(id))
            })
            .map(|s| s["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no skip for {id}: {skips:?}"))
    };
    assert!(
        reason("TEST-nofix").contains("no fix"),
        "{}",
        reason("TEST-nofix")
    );
    assert_eq!(
        reason("TEST-future"),
        format!("the image's repositories offer {bash} at most; the fix needs {bash}+copa1")
    );

    // Patching the patched image again (here: everything else, without a report) replaces
    // copa-host's layer with one holding both patches, instead of stacking a second one.
    let repatched = "copa-test-apt:repatched";
    remove_image(repatched);
    let output = copa(&["patch", "-i", tag, "-t", repatched], dir.path());
    assert!(output.status.success(), "re-patching failed");
    let layers_after = layers(repatched);
    assert_eq!(layers_after.len(), before.len() + 1);
    assert_eq!(layers_after[..before.len()], before[..]);
    for (name, (_, candidate)) in &outdated {
        assert_eq!(&installed_version(repatched, name), candidate, "{name}");
    }
    let history = docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        repatched,
    ]);
    assert!(history.contains(&layers_after[before.len()]), "{history}");
    remove_image(repatched);
    remove_image(tag);
}

#[test]
fn without_a_report_everything_upgradable_is_upgraded_and_a_second_run_has_nothing_to_do() {
    let _daemon = exclusive_daemon();
    require_fixture(BASE);
    let dir = tempfile::tempdir().unwrap();
    let (tag, again) = ("copa-test-apt:all", "copa-test-apt:again");
    remove_image(tag);
    remove_image(again);
    let outdated = upgradable(BASE);
    assert!(!outdated.is_empty());

    let output = copa(&["patch", "-i", BASE, "-t", tag], dir.path());
    assert!(output.status.success(), "copa-host failed");
    for (name, (_, candidate)) in &outdated {
        assert_eq!(&installed_version(tag, name), candidate, "{name}");
    }
    assert_eq!(upgradable(tag), BTreeMap::new());

    let output = copa(&["patch", "-i", tag, "-t", again], dir.path());
    assert!(output.status.success(), "a second run must succeed");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Nothing to patch"),
        "the second run says there is nothing to do"
    );
    assert!(!docker(&["image", "inspect", again]).status.success());
    remove_image(tag);
}

#[test]
fn a_report_of_another_distribution_is_refused_naming_both() {
    let _daemon = exclusive_daemon();
    require_fixture(BASE);
    let dir = tempfile::tempdir().unwrap();
    let tag = "copa-test-apt:wrong";
    remove_image(tag);
    let report = os_report(
        "alpine",
        "3.20.3",
        &[(
            "CVE-1".into(),
            "musl".into(),
            "1.2.5-r0".into(),
            "1.2.5-r1".into(),
            "fixed",
        )],
    );
    let report = write(dir.path(), "alpine.json", &report);
    let output = copa(&["patch", "-i", BASE, "-r", &report, "-t", tag], dir.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        error.contains("alpine 3.20.3") && error.contains("Debian GNU/Linux 12"),
        "{error}"
    );
    assert!(!docker(&["image", "inspect", tag]).status.success());
    assert_eq!(leftover_containers(), "");
}

/// A Debian mirror on 127.0.0.1 in the layout of apt-cacher-ng or an artifact manager's
/// remote: every request is answered from deb.debian.org under the same path, and recorded.
/// apt pipelines requests on keep-alive connections, so each connection serves requests in order.
struct Mirror {
    url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn serve_mirror() -> Mirror {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        if header.trim().is_empty() {
                            break;
                        }
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .to_string();
                    log.lock().unwrap().push(path.clone());
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let (status, body) =
                        match agent.get(&format!("http://deb.debian.org{path}")).call() {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                let mut body = Vec::new();
                                response
                                    .into_body()
                                    .into_reader()
                                    .read_to_end(&mut body)
                                    .unwrap();
                                (status, body)
                            }
                            Err(_) => (502, Vec::new()),
                        };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                        body.len()
                    );
                    if writer.write_all(head.as_bytes()).is_err()
                        || writer.write_all(&body).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Mirror { url, requests }
}

#[test]
fn an_apt_mirror_serves_the_planning_and_the_run() {
    let _daemon = exclusive_daemon();
    require_fixture(BASE);
    let dir = tempfile::tempdir().unwrap();
    let tag = "copa-test-apt:mirror";
    remove_image(tag);
    let outdated = upgradable(BASE);
    let name = ["liblzma5", "libpcre2-8-0"]
        .into_iter()
        .find(|n| outdated.contains_key(*n))
        .unwrap_or_else(|| outdated.keys().next().expect("an outdated package"));
    let (installed, candidate) = &outdated[name];
    let release = run_in(BASE, &["cat", "/etc/debian_version"]);
    let report = os_report(
        "debian",
        &release,
        &[(
            "TEST-mirror".into(),
            name.to_string(),
            installed.clone(),
            candidate.clone(),
            "fixed",
        )],
    );
    let report = write(dir.path(), "report.json", &report);
    let mirror = serve_mirror();

    let output = copa(
        &[
            "patch",
            "-i",
            BASE,
            "-r",
            &report,
            "-t",
            tag,
            "--apt-mirror",
            &mirror.url,
        ],
        dir.path(),
    );
    let requests = mirror.requests.lock().unwrap().clone();
    assert!(
        output.status.success(),
        "copa-host failed; mirror saw {requests:?}"
    );
    assert_eq!(&installed_version(tag, name), candidate);
    // The host read the indexes through the mirror, and so did apt in the run, which then
    // downloaded the package from it.
    assert!(
        requests.iter().any(|p| p
            .starts_with("/debian-security/dists/bookworm-security/main/binary-amd64/Packages")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|p| p.ends_with("/InRelease")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|p| p.contains("/pool/") && p.ends_with(".deb")),
        "{requests:?}"
    );
    // The image's own sources are untouched.
    let sources = run_in(tag, &["cat", "/etc/apt/sources.list.d/debian.sources"]);
    assert!(sources.contains("http://deb.debian.org/debian-security"));
    assert!(!sources.contains("127.0.0.1"));
    remove_image(tag);
}

#[test]
fn a_distroless_image_is_patched_without_apt_or_a_container() {
    let _daemon = exclusive_daemon();
    require_fixture(BASE);
    require_fixture(DISTROLESS);
    let dir = tempfile::tempdir().unwrap();
    let tag = "copa-test-apt:distroless";
    remove_image(tag);

    let (report, installed, candidate) = distroless_report(dir.path());
    assert_eq!(
        status_d_field(DISTROLESS, "ncurses-base", "Version"),
        installed
    );
    let containers_before = leftover_containers();
    let output = copa(
        &["patch", "-i", DISTROLESS, "-r", &report, "-t", tag],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "copa-host failed: {stderr}");
    assert_eq!(leftover_containers(), containers_before);

    // What a scanner reads: the status entry names the new version, without the archive's
    // fields, and the checksum list matches the files now in the image.
    assert_ncurses_base(tag, &candidate);
    assert_eq!(
        status_d_field(tag, "ncurses-base", "Package"),
        "ncurses-base"
    );
    assert_eq!(status_d_field(tag, "ncurses-base", "Filename"), "");
    // Only the named package changed: another entry is untouched.
    assert_eq!(
        run_in(tag, &["cat", "/var/lib/dpkg/status.d/bash"]),
        run_in(DISTROLESS, &["cat", "/var/lib/dpkg/status.d/bash"])
    );

    // The original layers plus one, holding the package's files and its two records.
    let (original, patched) = (layers(DISTROLESS), layers(tag));
    assert_eq!(patched.len(), original.len() + 1);
    assert_eq!(&patched[..original.len()], &original[..]);
    let entries = last_layer_entries(tag, dir.path());
    let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        paths.contains(&"var/lib/dpkg/status.d/ncurses-base"),
        "{paths:?}"
    );
    assert!(paths.contains(&"var/lib/dpkg/status.d/ncurses-base.md5sums"));
    assert!(
        paths
            .iter()
            .all(|p| !p.starts_with("var/lib/dpkg/status.d/")
                || p.starts_with("var/lib/dpkg/status.d/ncurses-base")),
        "no other status entry changes: {paths:?}"
    );
    // merged /usr: nothing turned the image's /lib symlink into a directory.
    assert_eq!(run_in(tag, &["readlink", "/lib"]), "usr/lib");
    remove_image(tag);
}

#[test]
fn docker_and_oci_archives_are_read_and_written_beside_the_original() {
    let _daemon = exclusive_daemon();
    require_fixture(BASE);
    require_fixture(DISTROLESS);
    let dir = tempfile::tempdir().unwrap();
    let (report, _, candidate) = distroless_report(dir.path());
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let sha = |name: &str| {
        let bytes = std::fs::read(file(name)).unwrap();
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    };
    let skopeo = |args: &[&str]| {
        let output = std::process::Command::new("skopeo")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let layer_count = |reference: &str| {
        let inspect: Value = serde_json::from_str(&skopeo(&["inspect", reference])).unwrap();
        inspect["Layers"].as_array().unwrap().len()
    };
    docker_ok(&["save", "-o", &file("in.tar"), DISTROLESS]);
    let original = sha("in.tar");
    let originals = layer_count(&format!("docker-archive:{}", file("in.tar")));

    // docker-archive: the patched image is a new file beside the input, which is untouched.
    let output = copa(
        &[
            "patch",
            "-i",
            &format!("docker-archive:{}:{DISTROLESS}", file("in.tar")),
            "-r",
            &report,
        ],
        dir.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(sha("in.tar"), original);
    let patched = format!("docker-archive:{}", file("in-patched.tar"));
    assert_eq!(layer_count(&patched), originals + 1);
    let loaded = "copa-fixture-distroless:bookworm-patched";
    remove_image(loaded);
    docker_ok(&["load", "-i", &file("in-patched.tar")]);
    assert_ncurses_base(loaded, &candidate);
    remove_image(loaded);

    // oci-archive, made by skopeo from the same image, and read back by skopeo.
    skopeo(&[
        "copy",
        &format!("docker-archive:{}", file("in.tar")),
        &format!("oci-archive:{}:v1", file("in.oci.tar")),
    ]);
    let original = sha("in.oci.tar");
    let output = copa(
        &[
            "patch",
            "-i",
            &format!("oci-archive:{}:v1", file("in.oci.tar")),
            "-r",
            &report,
        ],
        dir.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(sha("in.oci.tar"), original);
    let patched = format!("oci-archive:{}:v1-patched", file("in.oci-patched.tar"));
    assert_eq!(layer_count(&patched), originals + 1);
    let tag = "copa-test-apt:oci-archive";
    remove_image(tag);
    skopeo(&["copy", &patched, &format!("docker-daemon:{tag}")]);
    assert_ncurses_base(tag, &candidate);
    remove_image(tag);
}
