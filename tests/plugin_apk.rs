//! The real apk plugin (.wasm) through the real host, against Alpine-like fixture filesystems.
//! No apk repository is reachable from the tests and the host has no apk index, so every planned
//! version is a minimum (`>=`) and the emitted constraints say so.

mod common;

use common::{Node, PluginSetup, builtin_plugin, default_index, layer_tar, target_attribute};
use copa_host::plugin::{Finding, PatchLevel, Step};

const DB: &str = "/lib/apk/db/installed";

const INSTALLED: &str = "\
C:Q1a9UWnsAh0p2Q8aTCc3ZmuGnm+Xc=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
o:musl
F:lib
R:ld-musl-x86_64.so.1

P:busybox
V:1.36.1-r2
A:x86_64
o:busybox

P:libcrypto3
V:3.1.1-r1
A:x86_64
o:openssl

P:libssl3
V:3.1.1-r1
A:x86_64
o:openssl
D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3

P:zlib
V:1.2.13-r1
A:x86_64
o:zlib

P:ca-certificates-bundle
V:20230506-r0
A:noarch
o:ca-certificates
";

const WORLD: &str = "alpine-baselayout\nbusybox=1.36.1-r2\nca-certificates-bundle\nlibssl3\nzlib\n";

const REPOSITORIES: &str = "\
# the release's repositories
https://dl-cdn.alpinelinux.org/alpine/v3.18/main
https://dl-cdn.alpinelinux.org/alpine/v3.18/community

@edge https://dl-cdn.alpinelinux.org/alpine/edge/main
";

fn alpine(with_apk: bool) -> Vec<u8> {
    let mut nodes = vec![
        Node::File(
            "etc/os-release",
            "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n",
        ),
        Node::File("lib/apk/db/installed", INSTALLED),
        Node::File("lib/apk/db/scripts.tar", ""),
        Node::File("lib/apk/db/triggers", ""),
        Node::File("etc/apk/world", WORLD),
        Node::File("etc/apk/repositories", REPOSITORIES),
        Node::File("etc/apk/arch", "x86_64\n"),
        Node::File("bin/busybox", "ELF"),
        Node::Link("bin/sh", "/bin/busybox"),
    ];
    if with_apk {
        nodes.push(Node::File("sbin/apk", "ELF"));
    }
    layer_tar(&nodes)
}

fn setup(tar: Vec<u8>) -> PluginSetup {
    builtin_plugin("apk", vec![tar], default_index())
}

fn finding(id: &str, package: &str, installed: &str, fixed: &str, status: &str) -> Finding {
    Finding {
        vulnerability_id: id.into(),
        package_name: package.into(),
        installed_version: installed.into(),
        fixed_versions: fixed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        pkg_path: None,
        report_target: "alpine:3.18 (alpine 3.18.4)".into(),
        report_type: "alpine".into(),
        purl: Some(format!(
            "pkg:apk/alpine/{package}@{installed}?arch=x86_64&distro=3.18.4"
        )),
        severity: "HIGH".into(),
        status: status.into(),
    }
}

/// Trivy-shaped findings: two fixes of one package collapsing to the higher, a pinned package, a
/// finding with no fix, one already fixed in the image, and a package the image does not have.
fn findings() -> Vec<Finding> {
    vec![
        finding("CVE-2023-5363", "libssl3", "3.1.1-r1", "3.1.4-r0", "fixed"),
        finding("CVE-2023-5678", "libssl3", "3.1.1-r1", "3.1.4-r1", "fixed"),
        finding(
            "CVE-2023-5363",
            "libcrypto3",
            "3.1.1-r1",
            "3.1.4-r0",
            "fixed",
        ),
        finding(
            "CVE-2023-42363",
            "busybox",
            "1.36.1-r2",
            "1.36.1-r5",
            "fixed",
        ),
        finding("CVE-2023-45853", "zlib", "1.2.13-r1", "", "affected"),
        finding("CVE-2025-26519", "musl", "1.2.4-r1", "1.2.4-r2", "fixed"),
        finding("CVE-2024-2398", "curl", "8.5.0-r0", "8.7.1-r0", "fixed"),
    ]
}

#[test]
fn info_routes_alpine_wolfi_and_chainguard_findings() {
    let setup = setup(alpine(true));
    assert_eq!(
        setup.plugin.info.report_types,
        ["alpine", "wolfi", "chainguard"]
    );
    assert_eq!(setup.plugin.info.purl_types, ["apk"]);
}

#[test]
fn detects_the_installed_database_repositories_and_world() {
    let setup = setup(alpine(true));
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    assert_eq!(targets.len(), 1);
    let target = &targets[0];
    assert_eq!(target.id, DB);
    assert_eq!(target.kind, "apk");
    assert_eq!(target.runtime_version.as_deref(), Some("3.18.4"));
    assert_eq!(target.unpatchable_reason, None);
    let packages: Vec<(&str, &str, &str)> = target
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.location.as_str()))
        .collect();
    assert_eq!(
        packages,
        [
            ("musl", "1.2.4-r2", DB),
            ("busybox", "1.36.1-r2", DB),
            ("libcrypto3", "3.1.1-r1", DB),
            ("libssl3", "3.1.1-r1", DB),
            ("zlib", "1.2.13-r1", DB),
            ("ca-certificates-bundle", "20230506-r0", DB),
        ]
    );
    assert_eq!(target_attribute(target, "os"), "alpine");
    assert_eq!(target_attribute(target, "arch"), "x86_64");
    assert_eq!(target_attribute(target, "apk"), "/sbin/apk");
    assert_eq!(target_attribute(target, "shell"), "/bin/sh");
    assert_eq!(
        target_attribute(target, "repositories"),
        "apk https://dl-cdn.alpinelinux.org/alpine/v3.18/main x86_64\n\
         apk https://dl-cdn.alpinelinux.org/alpine/v3.18/community x86_64\n\
         @edge apk https://dl-cdn.alpinelinux.org/alpine/edge/main x86_64"
    );
    assert_eq!(
        target_attribute(target, "world"),
        "alpine-baselayout\nbusybox=1.36.1-r2\nca-certificates-bundle\nlibssl3\nzlib"
    );
}

/// An update as (package, from, (only a minimum, to), fixes).
type Planned<'a> = (&'a str, &'a str, (bool, &'a str), Vec<&'a str>);

#[test]
fn plans_minimums_collapsed_per_package_with_skips_and_reasons() {
    let setup = setup(alpine(true));
    let (_, plan) = setup.detect_and_plan(&findings());
    let updates: Vec<Planned> = plan
        .updates
        .iter()
        .map(|u| {
            assert_eq!(u.target_id, DB);
            (
                u.package.as_str(),
                u.from_version.as_str(),
                (u.at_least, u.to_version.as_str()),
                u.fixes.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        updates,
        [
            (
                "libcrypto3",
                "3.1.1-r1",
                (true, "3.1.4-r0"),
                vec!["CVE-2023-5363"]
            ),
            (
                "libssl3",
                "3.1.1-r1",
                (true, "3.1.4-r1"),
                vec!["CVE-2023-5363", "CVE-2023-5678"]
            ),
        ]
    );
    let skips: Vec<(&str, Vec<&str>, &str)> = plan
        .skips
        .iter()
        .map(|s| {
            (
                s.package.as_str(),
                s.vulnerabilities.iter().map(String::as_str).collect(),
                s.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        skips,
        [
            (
                "busybox",
                vec!["CVE-2023-42363"],
                "pinned in /etc/apk/world (busybox=1.36.1-r2)"
            ),
            (
                "curl",
                vec!["CVE-2024-2398"],
                "not installed in /lib/apk/db/installed"
            ),
            (
                "zlib",
                vec!["CVE-2023-45853"],
                "the distribution has published no fix yet"
            ),
        ],
        "musl 1.2.4-r2 already has its fix"
    );
}

#[test]
fn emits_one_apk_add_through_a_virtual_package() {
    let setup = setup(alpine(true));
    let (targets, plan) = setup.detect_and_plan(&findings());
    let steps = setup
        .host
        .emit_commands(
            &setup.plugin,
            &setup.caps,
            &targets,
            &plan,
            &common::default_policy(),
        )
        .unwrap();
    assert_eq!(steps.len(), 1);
    let Step::Run(run) = &steps[0] else {
        panic!("expected a run step: {:?}", steps[0]);
    };
    assert_eq!(
        run.argv,
        [
            "/bin/sh",
            "-c",
            "set -e\napk=$1\nshift\n\
             \"$apk\" add --no-cache --upgrade --virtual .copa-patch \"$@\"\n\
             \"$apk\" del --no-cache .copa-patch",
            "copa-apk",
            "/sbin/apk",
            "libcrypto3>=3.1.4-r0",
            "libssl3>=3.1.4-r1",
        ]
    );
    assert!(run.env.is_empty());
    assert_eq!(run.user, None);
    assert_eq!(run.workdir, None);
    assert_eq!(run.index_ecosystem.as_deref(), Some("apk"));
    assert_eq!(
        run.exclude,
        [
            "/var/cache/apk",
            "/etc/apk/cache",
            "/lib/apk/db/lock",
            "/lib/apk/exec",
            "/var/log/apk.log"
        ]
    );
    assert_eq!(run.updates, [0, 1]);
    assert_eq!(
        run.description,
        "apk add --upgrade (virtual .copa-patch) in /lib/apk/db/installed"
    );
}

#[test]
fn an_image_without_apk_is_detected_but_unpatchable() {
    let setup = setup(alpine(false));
    let (targets, plan) = setup.detect_and_plan(&findings());
    let reason = "no apk in the image (distroless); patching through a tooling container is not supported yet";
    assert_eq!(targets[0].unpatchable_reason.as_deref(), Some(reason));
    assert!(plan.updates.is_empty());
    let reasons: Vec<(&str, &str)> = plan
        .skips
        .iter()
        .map(|s| (s.package.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("busybox", reason),
            ("curl", reason),
            ("libcrypto3", reason),
            ("libssl3", reason),
            ("musl", reason),
            ("zlib", reason),
        ]
    );
    // Nothing to run: with no update planned, no step.
    let steps = setup
        .host
        .emit_commands(
            &setup.plugin,
            &setup.caps,
            &targets,
            &plan,
            &common::default_policy(),
        )
        .unwrap();
    assert!(steps.is_empty());
}

#[test]
fn without_a_report_the_missing_index_is_an_error_not_a_guess() {
    let setup = setup(alpine(true));
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    let err = setup
        .host
        .plan(
            &setup.plugin,
            &setup.caps,
            &targets,
            &[],
            &common::policy(PatchLevel::Patch, true),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the repositories' index is needed")
            && err.contains("no package index for ecosystem apk https://dl-cdn.alpinelinux.org/alpine/v3.18/main x86_64"),
        "{err}"
    );
}

#[test]
fn wolfi_and_other_distributions() {
    let wolfi = layer_tar(&[
        Node::File(
            "etc/os-release",
            "ID=wolfi\nNAME=\"Wolfi\"\nVERSION_ID=20230201\n",
        ),
        Node::File(
            "lib/apk/db/installed",
            "P:glibc\nV:2.38-r10\nA:aarch64\no:glibc\n\nP:wolfi-baselayout\nV:20230201-r7\nA:aarch64\n",
        ),
        Node::File("etc/apk/repositories", "https://packages.wolfi.dev/os\n"),
        Node::File("usr/bin/apk", "ELF"),
        Node::Link("bin/sh", "/usr/bin/busybox"),
        Node::File("usr/bin/busybox", "ELF"),
    ]);
    let setup = setup(wolfi);
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].runtime_version.as_deref(), Some("20230201"));
    assert_eq!(target_attribute(&targets[0], "apk"), "/usr/bin/apk");
    assert_eq!(
        target_attribute(&targets[0], "repositories"),
        "apk https://packages.wolfi.dev/os aarch64",
        "without /etc/apk/arch the packages' architecture is the image's"
    );

    let debian = common::python_image_tar();
    let setup = self::setup(debian);
    assert!(
        setup
            .host
            .detect(&setup.plugin, &setup.caps)
            .unwrap()
            .is_empty()
    );
}
