//! The real apt plugin (.wasm) through the real host, against Debian fixture filesystems whose
//! apt sources point at a repository served on 127.0.0.1, granted to the plugin as a run grants
//! it (`--index deb=URL`); the plugin reads its Release and `Packages` indexes over `http`. The
//! suites' InRelease files are signed by a key made in the test ([`ARCHIVE_KEY`]), which the
//! images trust as Debian images trust Debian's: in `/etc/apt/trusted.gpg.d/` and in the keyring
//! a source's `Signed-By` names.

mod common;

use common::debian::{ARCHIVE_KEY, Release, apt_suite, apt_suite_with, armored_public_key, key_id};
use common::{
    Node, PluginSetup, builtin_plugin, builtin_plugin_with_indexes, default_index, gzip, layer_tar,
    serve_static,
};
use copa_host::plugin::{Finding, PatchLevel, Plan, Step, Target};

const STATUS: &str = "\
Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21.22

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u1

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u1

Package: tzdata
Status: hold ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2
";

fn packages(entries: &[(&str, &str)]) -> String {
    entries
        .iter()
        .map(|(name, version)| {
            format!("Package: {name}\nVersion: {version}\nArchitecture: amd64\nDescription: x\n continued\n\n")
        })
        .collect()
}

/// bookworm (gzip), bookworm-updates (gzip) and bookworm-security (uncompressed only).
fn repository() -> String {
    let signed = Release::SignedBy(ARCHIVE_KEY);
    serve_static(repository_files(signed, signed)).0
}

/// The files of [`repository`], the Releases of the debian suites served as `debian` says and
/// bookworm-security's as `security` says.
fn repository_files(debian: Release, security: Release) -> Vec<(String, Vec<u8>)> {
    let mut files = apt_suite_with(
        debian,
        "debian",
        "bookworm",
        &[(
            "Packages.gz",
            gzip(&packages(&[
                ("dpkg", "1.21.22"),
                ("libssl3", "3.0.11-1~deb12u1"),
                ("openssl", "3.0.11-1~deb12u1"),
                ("tzdata", "2024a-0+deb12u1"),
                ("bash", "5.2.15-2+b2"),
            ])),
        )],
    );
    files.extend(apt_suite_with(
        debian,
        "debian",
        "bookworm-updates",
        &[(
            "Packages.gz",
            gzip(&packages(&[("tzdata", "2025b-0+deb12u1")])),
        )],
    ));
    files.extend(apt_suite_with(
        security,
        "debian-security",
        "bookworm-security",
        &[(
            "Packages",
            packages(&[
                ("libssl3", "3.0.13-1~deb12u1"),
                ("libssl3", "3.0.15-1~deb12u1"),
                ("openssl", "3.0.15-1~deb12u1"),
            ])
            .into_bytes(),
        )],
    ));
    files
}

/// The keyring the debian suites' `Signed-By` names; bookworm-security has none, so the image's
/// `trusted.gpg.d` applies.
const SIGNED_BY: &str = "/usr/share/keyrings/test-archive-keyring.asc";

fn sources(url: &str) -> String {
    format!(
        "Types: deb\nURIs: {url}/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\
         Signed-By: {SIGNED_BY}\n\n\
         Types: deb\nURIs: {url}/debian-security\nSuites: bookworm-security\nComponents: main\n"
    )
}

const DEBIAN_OS: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n\
                         VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";

/// Where the images keep the test archive's key: as Debian's images keep Debian's.
const TRUSTED: &str = "etc/apt/trusted.gpg.d/test-archive.asc";

fn debian(sources: &str) -> Vec<u8> {
    let key = armored_public_key(ARCHIVE_KEY);
    layer_tar(&[
        Node::File("etc/os-release", DEBIAN_OS),
        Node::File("etc/apt/sources.list.d/debian.sources", sources),
        Node::File(TRUSTED, &key),
        Node::File(SIGNED_BY.trim_start_matches('/'), &key),
        Node::File("var/lib/dpkg/status", STATUS),
        Node::File("usr/bin/apt-get", "ELF"),
    ])
}

/// The plugin over the image `tar`, in a run whose `--index deb=URL` (a mirror) is `url`.
fn setup(tar: Vec<u8>, url: &str) -> PluginSetup {
    builtin_plugin_with_indexes("apt", vec![tar], default_index(), &[("deb", url)])
}

fn finding(id: &str, package: &str, installed: &str, fixed: &str, status: &str) -> Finding {
    Finding {
        vulnerability_id: id.into(),
        package_name: package.into(),
        installed_version: installed.into(),
        fixed_versions: fixed
            .split(", ")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        pkg_path: None,
        report_target: "img (debian 12.5)".into(),
        report_type: "debian".into(),
        purl: Some(format!("pkg:deb/debian/{package}@{installed}?arch=amd64")),
        severity: "HIGH".into(),
        status: status.into(),
    }
}

fn plan(s: &PluginSetup, targets: &[Target], findings: &[Finding]) -> Plan {
    s.host
        .plan(
            &s.plugin,
            &s.caps,
            targets,
            findings,
            &s.policy(PatchLevel::Patch, findings.is_empty()),
        )
        .unwrap()
}

/// Why planning a run without a report fails.
fn error_without_a_report(s: &PluginSetup, targets: &[Target]) -> String {
    s.host
        .plan(
            &s.plugin,
            &s.caps,
            targets,
            &[],
            &s.policy(PatchLevel::Patch, true),
        )
        .unwrap_err()
        .to_string()
}

fn emit(s: &PluginSetup, targets: &[Target], plan: &Plan) -> Vec<Step> {
    s.host
        .emit_commands(
            &s.plugin,
            &s.caps,
            targets,
            plan,
            &s.policy(PatchLevel::Patch, false),
        )
        .unwrap()
}

fn updates(plan: &Plan) -> Vec<(String, String, String, Vec<String>)> {
    plan.updates
        .iter()
        .map(|u| {
            (
                u.package.clone(),
                u.from_version.clone(),
                u.to_version.clone(),
                u.fixes.clone(),
            )
        })
        .collect()
}

fn skips(plan: &Plan) -> Vec<(String, Vec<String>, String)> {
    plan.skips
        .iter()
        .map(|s| {
            (
                s.package.clone(),
                s.vulnerabilities.clone(),
                s.reason.clone(),
            )
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn detects_the_dpkg_database_and_the_image_sources() {
    let url = repository();
    let s = setup(debian(&sources(&url)), &url);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    assert_eq!(targets.len(), 1);
    let target = &targets[0];
    assert_eq!(target.id, "/var/lib/dpkg/status");
    assert_eq!(target.runtime_version.as_deref(), Some("12"));
    assert_eq!(target.unpatchable_reason, None);
    let names: Vec<(&str, &str)> = target
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("dpkg", "1.21.22"),
            ("libssl3", "3.0.11-1~deb12u1"),
            ("openssl", "3.0.11-1~deb12u1"),
            ("tzdata", "2024a-0+deb12u1"),
            ("bash", "5.2.15-2+b2"),
        ]
    );
}

#[test]
fn plans_the_repositories_newest_build_for_what_the_report_names() {
    let url = repository();
    let s = setup(debian(&sources(&url)), &url);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    let findings = [
        finding(
            "CVE-1",
            "libssl3",
            "3.0.11-1~deb12u1",
            "3.0.11-1~deb12u2",
            "fixed",
        ),
        finding(
            "CVE-2",
            "libssl3",
            "3.0.11-1~deb12u1",
            "3.0.13-1~deb12u1",
            "fixed",
        ),
        finding("CVE-3", "bash", "5.2.15-2+b2", "", "will_not_fix"),
        finding(
            "CVE-4",
            "tzdata",
            "2024a-0+deb12u1",
            "2025b-0+deb12u1",
            "fixed",
        ),
        finding("CVE-5", "curl", "7.88.1-10", "7.88.1-10+deb12u5", "fixed"),
        finding(
            "CVE-6",
            "openssl",
            "3.0.11-1~deb12u1",
            "3.0.16-1~deb12u1",
            "fixed",
        ),
    ];
    let plan = plan(&s, &targets, &findings);
    assert_eq!(
        updates(&plan),
        [(
            "libssl3".to_string(),
            "3.0.11-1~deb12u1".to_string(),
            "3.0.15-1~deb12u1".to_string(),
            strings(&["CVE-1", "CVE-2"])
        )]
    );
    assert_eq!(
        skips(&plan),
        [
            (
                "bash".to_string(),
                strings(&["CVE-3"]),
                "the distribution will not fix it (status will_not_fix)".to_string()
            ),
            (
                "curl".to_string(),
                strings(&["CVE-5"]),
                "not installed in /var/lib/dpkg/status".to_string()
            ),
            (
                "openssl".to_string(),
                strings(&["CVE-6"]),
                "the image's repositories offer 3.0.15-1~deb12u1 at most; the fix needs 3.0.16-1~deb12u1"
                    .to_string()
            ),
            (
                "tzdata".to_string(),
                strings(&["CVE-4"]),
                "held in the image (apt-mark hold); apt leaves it as it is".to_string()
            ),
        ]
    );

    let steps = emit(&s, &targets, &plan);
    assert_eq!(steps.len(), 1);
    let Step::Run(step) = &steps[0] else {
        panic!("expected a run step: {:?}", steps[0]);
    };
    assert_eq!(step.argv[..2], strings(&["/bin/sh", "-c"]));
    assert!(step.argv[2].contains("apt-get $opts -q update"));
    assert!(step.argv[2].contains("install --only-upgrade --no-install-recommends"));
    assert!(step.argv[2].contains(r"#\1$COPA_APT_MIRROR#g"));
    assert_eq!(
        step.argv[3..],
        strings(&["copa-apt", "libssl3=3.0.15-1~deb12u1"])
    );
    assert_eq!(step.index_ecosystem.as_deref(), Some("deb"));
    assert_eq!(step.user, None);
    assert!(
        step.env
            .contains(&("DEBIAN_FRONTEND".into(), "noninteractive".into()))
    );
    // apt in the run reads the mirror planning read.
    assert!(step.env.contains(&("COPA_APT_MIRROR".into(), url.clone())));
    for junk in [
        "/var/lib/apt/lists",
        "/var/cache/apt",
        "/var/log/apt",
        "/var/log/dpkg.log",
    ] {
        assert!(step.exclude.contains(&junk.to_string()), "{junk}");
    }
    assert_eq!(step.updates, [0]);
}

#[test]
fn without_a_report_plans_every_upgradable_package_but_held_ones() {
    let url = repository();
    let s = setup(debian(&sources(&url)), &url);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    let plan = plan(&s, &targets, &[]);
    let planned: Vec<(String, String)> = plan
        .updates
        .iter()
        .map(|u| (u.package.clone(), u.to_version.clone()))
        .collect();
    assert_eq!(
        planned,
        [
            ("libssl3".to_string(), "3.0.15-1~deb12u1".to_string()),
            ("openssl".to_string(), "3.0.15-1~deb12u1".to_string()),
        ]
    );
    assert_eq!(skips(&plan)[0].0, "tzdata");
}

#[test]
fn an_unreadable_repository_makes_the_fix_a_minimum() {
    // Sources pointing at a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = setup(debian(&sources(&url)), &url);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    let findings = [finding(
        "CVE-1",
        "libssl3",
        "3.0.11-1~deb12u1",
        "3.0.13-1~deb12u1",
        "fixed",
    )];
    let plan = plan(&s, &targets, &findings);
    assert_eq!(plan.updates[0].to_version, "3.0.13-1~deb12u1");
    assert!(plan.updates[0].at_least);
    let steps = emit(&s, &targets, &plan);
    let Step::Run(step) = &steps[0] else {
        panic!("expected a run step: {:?}", steps[0]);
    };
    // apt takes its candidate; verification checks the result is at least the fix.
    assert_eq!(step.argv[3..], strings(&["copa-apt", "libssl3"]));
    // Without a report there is nothing to fall back on: a clear error.
    let error = error_without_a_report(&s, &targets);
    assert!(error.contains("without a report"), "{error}");
}

/// A .deb (ar archive) whose data.tar.gz holds `files` (path, contents).
fn deb(files: &[(&str, &str)]) -> Vec<u8> {
    let mut data = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        data.append_data(&mut header, format!("./{path}"), contents.as_bytes())
            .unwrap();
    }
    let data = data.into_inner().unwrap().finish().unwrap();
    let mut deb = b"!<arch>\n".to_vec();
    for (name, contents) in [
        ("debian-binary", &b"2.0\n"[..]),
        ("control.tar.gz", &b"-"[..]),
        ("data.tar.gz", &data[..]),
    ] {
        deb.extend(
            format!(
                "{name:<16}0           0     0     100644  {:<10}`\n",
                contents.len()
            )
            .bytes(),
        );
        deb.extend(contents);
        if contents.len() % 2 == 1 {
            deb.push(b'\n');
        }
    }
    deb
}

/// A distroless image (status.d, no apt, no sources) whose release's repositories are served on
/// 127.0.0.1, their Releases as `release` says, bookworm-security offering libssl3
/// 3.0.15-1~deb12u1 as a .deb; the image trusts the test archive key when `trusts_the_key`.
/// Returns the plugin over it, the server's URL and the .deb's SHA256.
fn distroless(release: Release, trusts_the_key: bool) -> (PluginSetup, String, String) {
    let new_deb = deb(&[
        ("usr/lib/x86_64-linux-gnu/libssl.so.3", "new library"),
        ("usr/share/doc/libssl3/copyright", "license"),
    ]);
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&new_deb));
    let security = format!(
        "Package: libssl3\nVersion: 3.0.15-1~deb12u1\nArchitecture: amd64\nSource: openssl\n\
         Depends: libc6 (>= 2.34)\nFilename: pool/updates/main/o/openssl/libssl3.deb\n\
         Size: {}\nSHA256: {sha256}\nDescription: Secure Sockets Layer toolkit\n shared libraries\n",
        new_deb.len()
    );
    let mut files = apt_suite_with(
        release,
        "debian",
        "bookworm",
        &[(
            "Packages",
            packages(&[("libssl3", "3.0.11-1~deb12u1")]).into_bytes(),
        )],
    );
    files.extend(apt_suite_with(
        release,
        "debian",
        "bookworm-updates",
        &[("Packages", Vec::new())],
    ));
    files.extend(apt_suite_with(
        release,
        "debian-security",
        "bookworm-security",
        &[("Packages", security.into_bytes())],
    ));
    files.push((
        "/debian-security/pool/updates/main/o/openssl/libssl3.deb".into(),
        new_deb,
    ));
    let (url, _) = serve_static(files);
    let key = armored_public_key(ARCHIVE_KEY);
    let mut nodes = vec![
        Node::File("etc/os-release", DEBIAN_OS),
        Node::File(
            "var/lib/dpkg/status.d/libssl3",
            "Package: libssl3\nVersion: 3.0.11-1~deb12u1\nArchitecture: amd64\n",
        ),
        Node::File(
            "var/lib/dpkg/status.d/libssl3.md5sums",
            "abc  usr/lib/x86_64-linux-gnu/libssl.so.3\ndef  usr/lib/x86_64-linux-gnu/old-engine.so\n",
        ),
        Node::File(
            "var/lib/dpkg/status.d/base-files",
            "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n",
        ),
    ];
    if trusts_the_key {
        // The archive keys the plugin carries are Debian's and Ubuntu's; the image's own
        // keyrings count as well.
        nodes.push(Node::File(TRUSTED, &key));
    }
    // No sources in the image (it has no apt): the release's own repositories, through the
    // mirror on 127.0.0.1.
    let s = builtin_plugin_with_indexes(
        "apt",
        vec![layer_tar(&nodes)],
        default_index(),
        &[("deb", &url)],
    );
    (s, url, sha256)
}

#[test]
fn a_distroless_image_gets_the_deb_unpacked_and_its_records_rewritten() {
    let (s, url, sha256) = distroless(Release::SignedBy(ARCHIVE_KEY), true);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    assert_eq!(targets[0].id, "/var/lib/dpkg/status.d");
    assert_eq!(targets[0].unpatchable_reason, None);
    assert_eq!(common::target_attribute(&targets[0], "distroless"), "true");
    let libssl = targets[0]
        .packages
        .iter()
        .find(|p| p.name == "libssl3")
        .unwrap();
    assert_eq!(libssl.location, "/var/lib/dpkg/status.d/libssl3");

    let plan = plan(
        &s,
        &targets,
        &[finding(
            "CVE-1",
            "libssl3",
            "3.0.11-1~deb12u1",
            "3.0.13-1~deb12u1",
            "fixed",
        )],
    );
    assert_eq!(plan.updates.len(), 1, "{plan:?}");
    assert_eq!(plan.updates[0].to_version, "3.0.15-1~deb12u1");

    let steps = emit(&s, &targets, &plan);
    let summary: Vec<String> = steps
        .iter()
        .map(|step| match step {
            Step::Write(w) => format!(
                "write {} {}",
                w.path,
                w.contents
                    .as_ref()
                    .map_or("(remove)".into(), |c| String::from_utf8_lossy(c)
                        .into_owned())
            ),
            Step::Download(d) => format!(
                "download {} {} -> {:?}",
                d.url,
                d.sha256,
                d.placements
                    .iter()
                    .map(|p| (&p.member, &p.path))
                    .collect::<Vec<_>>()
            ),
            other => panic!("no container steps for a distroless image: {other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "write /usr/lib/x86_64-linux-gnu/old-engine.so (remove)".to_string(),
            // The release's repository, at the mirror, with the digest its index lists.
            format!(
                "download {url}/debian-security/pool/updates/main/o/openssl/libssl3.deb \
                 {sha256} -> [(\"\", \"/\")]"
            ),
            // md5 of "new library" and of "license".
            "write /var/lib/dpkg/status.d/libssl3.md5sums \
             878d18a4b2f46ebdba6924d01e508474  usr/lib/x86_64-linux-gnu/libssl.so.3\n\
             718779752b851ac0dc6281a8c8d77e7e  usr/share/doc/libssl3/copyright\n"
                .to_string(),
            "write /var/lib/dpkg/status.d/libssl3 Package: libssl3\nVersion: 3.0.15-1~deb12u1\n\
             Architecture: amd64\nSource: openssl\nDepends: libc6 (>= 2.34)\n\
             Description: Secure Sockets Layer toolkit\n shared libraries\n"
                .to_string(),
        ]
    );
}

#[test]
fn other_distributions_are_not_its_business() {
    let s = builtin_plugin(
        "apt",
        vec![layer_tar(&[
            Node::File("etc/os-release", "ID=alpine\nVERSION_ID=3.20.3\n"),
            Node::File("var/lib/dpkg/status", STATUS),
        ])],
        default_index(),
    );
    assert!(s.host.detect(&s.plugin, &s.caps).unwrap().is_empty());
}

#[test]
fn a_repository_on_an_origin_the_run_does_not_grant_is_not_read() {
    let files = apt_suite(
        "debian",
        "bookworm",
        &[(
            "Packages",
            packages(&[("libssl3", "3.0.15-1~deb12u1")]).into_bytes(),
        )],
    );
    let (url, requests) = serve_static(files);
    // No --index deb=URL: the plugin may read the archives its manifest declares, and the image
    // names a repository elsewhere.
    let s = builtin_plugin("apt", vec![debian(&sources(&url))], default_index());
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    let findings = [
        finding(
            "CVE-1",
            "libssl3",
            "3.0.11-1~deb12u1",
            "3.0.13-1~deb12u1",
            "fixed",
        ),
        finding("CVE-2", "bash", "5.2.15-2+b2", "5.2.15-3", "fixed"),
    ];
    let plan = plan(&s, &targets, &findings);
    assert!(plan.updates.is_empty(), "{plan:?}");
    let reason = format!(
        "the image's repository {url}/debian is on {url}, which this run does not grant; \
         --apt-mirror URL (or --index deb=URL) names a mirror that serves it"
    );
    assert_eq!(
        skips(&plan),
        [
            ("bash".to_string(), strings(&["CVE-2"]), reason.clone()),
            ("libssl3".to_string(), strings(&["CVE-1"]), reason.clone()),
        ]
    );
    // Without a report there is nothing to skip: the run is refused with the same reason.
    let error = error_without_a_report(&s, &targets);
    assert!(error.contains(&reason), "{error}");
    assert_eq!(*requests.lock().unwrap(), Vec::<String>::new());
}

/// A libssl3 finding the security suite's 3.0.15-1~deb12u1 fixes.
fn libssl3_finding() -> Finding {
    finding(
        "CVE-1",
        "libssl3",
        "3.0.11-1~deb12u1",
        "3.0.13-1~deb12u1",
        "fixed",
    )
}

#[test]
fn a_suite_signed_by_a_key_the_image_does_not_trust_is_not_read() {
    let signed = Release::SignedBy(ARCHIVE_KEY);
    let url = serve_static(repository_files(signed, Release::SignedBy(2))).0;
    let s = setup(debian(&sources(&url)), &url);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    // As when the index cannot be read: the fix is a minimum, and apt in the run (which checks
    // the signatures itself) takes its candidate.
    let plan = plan(&s, &targets, &[libssl3_finding()]);
    assert_eq!(plan.updates[0].to_version, "3.0.13-1~deb12u1");
    assert!(plan.updates[0].at_least);
    let error = error_without_a_report(&s, &targets);
    let reason = format!(
        "{url}/debian-security/dists/bookworm-security/InRelease: not signed by a key the image \
         trusts for this repository (key ids {})",
        key_id(2)
    );
    assert!(error.contains(&reason), "{error}");
}

#[test]
fn an_inrelease_whose_signed_text_was_altered_is_not_read() {
    // A mirror in the middle serves its own index, offering a version nobody published, and
    // writes that index's digest into the signed Release.
    let forged = packages(&[("libssl3", "3.0.99-1~deb12u1")]).into_bytes();
    let signed = Release::SignedBy(ARCHIVE_KEY);
    let mut files = repository_files(signed, signed);
    let dir = "/debian-security/dists/bookworm-security";
    let index = files
        .iter_mut()
        .find(|(path, _)| *path == format!("{dir}/main/binary-amd64/Packages"))
        .unwrap();
    let listed = |bytes: &[u8]| {
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        format!(" {sha256} {} main/binary-amd64/Packages", bytes.len())
    };
    let (genuine, forged_line) = (listed(&index.1), listed(&forged));
    index.1 = forged;
    let inrelease = files
        .iter_mut()
        .find(|(path, _)| *path == format!("{dir}/InRelease"))
        .unwrap();
    let text = String::from_utf8(inrelease.1.clone()).unwrap();
    assert!(text.contains(&genuine));
    inrelease.1 = text.replace(&genuine, &forged_line).into_bytes();

    let url = serve_static(files).0;
    let s = setup(debian(&sources(&url)), &url);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    let plan = plan(&s, &targets, &[libssl3_finding()]);
    assert_eq!(plan.updates[0].to_version, "3.0.13-1~deb12u1");
    assert!(plan.updates[0].at_least);
    let error = error_without_a_report(&s, &targets);
    let reason = format!(
        "{url}{dir}/InRelease: the signature by key {} does not match the signed text (altered)",
        key_id(ARCHIVE_KEY)
    );
    assert!(error.contains(&reason), "{error}");
}

#[test]
fn a_source_marked_trusted_is_read_unsigned() {
    let signed = Release::SignedBy(ARCHIVE_KEY);
    let url = serve_static(repository_files(signed, Release::Unsigned)).0;
    // The last stanza, bookworm-security's, is marked.
    let marked = format!("{}Trusted: yes\n", sources(&url));
    let s = setup(debian(&marked), &url);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    let plan = plan(&s, &targets, &[libssl3_finding()]);
    assert_eq!(plan.updates[0].to_version, "3.0.15-1~deb12u1");
    assert!(!plan.updates[0].at_least);
    // Without the mark, the same suite is refused.
    let s = setup(debian(&sources(&url)), &url);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    let error = error_without_a_report(&s, &targets);
    let security = format!("{url}/debian-security/dists/bookworm-security");
    assert!(
        error.contains(&format!(
            "{security}/Release: not signed (no InRelease, and {security}/Release.gpg is not \
             found)"
        )),
        "{error}"
    );
}

#[test]
fn a_key_written_into_a_deb822_source_is_the_one_its_repository_is_checked_with() {
    // The debian suites are signed by a key the image's keyrings do not hold.
    let url = serve_static(repository_files(
        Release::SignedBy(3),
        Release::SignedBy(ARCHIVE_KEY),
    ))
    .0;
    // deb822 continues a field on lines that start with a space, and writes an empty line as ".".
    let block: String = armored_public_key(3)
        .lines()
        .map(|line| format!(" {}\n", if line.is_empty() { "." } else { line }))
        .collect();
    let inline = sources(&url).replace(
        &format!("Signed-By: {SIGNED_BY}\n"),
        &format!("Signed-By:\n{block}"),
    );
    assert_ne!(inline, sources(&url));
    let s = setup(debian(&inline), &url);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    let plan = plan(&s, &targets, &[]);
    assert_eq!(plan.updates.len(), 2, "{plan:?}");
    assert!(plan.updates.iter().all(|u| !u.at_least));
    // Named by the keyring file instead, which holds the image's key, the suites are refused.
    let s = setup(debian(&sources(&url)), &url);
    let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
    let error = error_without_a_report(&s, &targets);
    let reason = format!(
        "{url}/debian/dists/bookworm/InRelease: not signed by a key the image trusts for this \
         repository (key ids {})",
        key_id(3)
    );
    assert!(error.contains(&reason), "{error}");
}

#[test]
fn a_distroless_package_from_an_unverified_repository_is_skipped_with_the_reason() {
    let unsigned = |url: &str| {
        format!(
            "{url}/debian/dists/bookworm/Release: not signed (no InRelease, and \
             {url}/debian/dists/bookworm/Release.gpg is not found)"
        )
    };
    let unknown = |url: &str| {
        format!(
            "{url}/debian/dists/bookworm/InRelease: not signed by a key the image trusts for \
             this repository (key ids {})",
            key_id(ARCHIVE_KEY)
        )
    };
    for (release, trusts_the_key, why) in [
        (
            Release::Unsigned,
            true,
            &unsigned as &dyn Fn(&str) -> String,
        ),
        // Only Debian's and Ubuntu's archive keys, which did not sign it.
        (Release::SignedBy(ARCHIVE_KEY), false, &unknown),
    ] {
        let (s, url, _) = distroless(release, trusts_the_key);
        let targets = s.host.detect(&s.plugin, &s.caps).unwrap();
        let plan = plan(&s, &targets, &[libssl3_finding()]);
        assert!(plan.updates.is_empty(), "{plan:?}");
        assert_eq!(
            skips(&plan),
            [(
                "libssl3".to_string(),
                strings(&["CVE-1"]),
                format!(
                    "the repositories' package lists could not be read ({}), and without apt in \
                     the image only an exact version can be installed",
                    why(&url)
                )
            )]
        );
    }
}
