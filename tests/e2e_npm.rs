//! End to end on a real Docker engine: the Node.js fixture image (tests/fixtures/build.sh) is
//! patched by the real binary against the real npm registry, then checked by running the patched
//! image: `npm ls` says the tree is valid and holds exactly the planned versions, the app still
//! loads, and the layer holds nothing but the patched packages and project files.

mod common;

use std::collections::BTreeSet;

use common::docker::*;

const FIXTURE: &str = "copa-fixture-node:bookworm";

/// `(pkg path without leading slash, name, installed, vulnerability, fixed versions)` as a Trivy
/// node-pkg result.
fn node_report(findings: &[(&str, &str, &str, &str, &str)]) -> String {
    let vulnerabilities: Vec<serde_json::Value> = findings
        .iter()
        .map(|(path, name, installed, id, fixed)| {
            serde_json::json!({
                "VulnerabilityID": id, "PkgName": name,
                "PkgPath": format!("{path}/package.json"), "InstalledVersion": installed,
                "FixedVersion": fixed, "Status": "fixed", "Severity": "HIGH",
                "PkgIdentifier": {"PURL": format!("pkg:npm/{name}@{installed}")}
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "SchemaVersion": 2,
        "ArtifactName": FIXTURE,
        "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": "debian", "Name": "12.0"}},
        "Results": [{"Target": "Node.js", "Class": "lang-pkgs", "Type": "node-pkg",
                     "Vulnerabilities": vulnerabilities}]
    }))
    .unwrap()
}

/// Real advisories of the fixture's packages.
fn report() -> String {
    node_report(&[
        (
            "app/node_modules/lodash",
            "lodash",
            "4.17.15",
            "CVE-2021-23337",
            "4.17.21",
        ),
        (
            "app/node_modules/lodash",
            "lodash",
            "4.17.15",
            "CVE-2020-8203",
            "4.17.19",
        ),
        (
            "app/node_modules/minimist",
            "minimist",
            "1.2.0",
            "CVE-2021-44906",
            "1.2.6, 0.2.4",
        ),
        (
            "app/node_modules/qs",
            "qs",
            "6.7.0",
            "CVE-2022-24999",
            "6.10.3, 6.9.7, 6.8.3, 6.7.3, 6.6.1, 6.5.3, 6.4.1, 6.3.3, 6.2.4",
        ),
        (
            "srv/tool/node_modules/minimist",
            "minimist",
            "1.2.5",
            "CVE-2021-44906",
            "1.2.6, 0.2.4",
        ),
        (
            "usr/local/lib/node_modules/semver",
            "semver",
            "7.3.5",
            "CVE-2022-25883",
            "7.5.2, 6.3.1, 5.7.2",
        ),
    ])
}

fn sh(image: &str, script: &str) -> String {
    run_in(image, &["sh", "-c", script])
}

/// `path name@version` of every package npm sees in /app (and the global root).
fn tree(image: &str, dir: &str) -> BTreeSet<String> {
    let flag = if dir == "global" { "-g" } else { "" };
    let cd = if dir == "global" { "/" } else { dir };
    parseable_tree(&sh(
        image,
        &format!("cd {cd} && npm ls {flag} --all --parseable --long"),
    ))
}

/// `npm ls --parseable --long` output as `path name@version` lines.
fn parseable_tree(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .map(|l| {
            let mut parts = l.split(':');
            format!(
                "{} {}",
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default()
            )
        })
        .collect()
}

/// The tree `npm ci` installs in `dir` of `image` from package.json and the lockfile alone
/// (node_modules removed first, as `npm ci` does), in the form of [`tree`]. `npm ci` itself fails
/// when package.json and the lockfile disagree.
fn tree_after_npm_ci(image: &str, dir: &str) -> BTreeSet<String> {
    let script = format!(
        "cd {dir} && npm ci --ignore-scripts --no-audit --no-fund >&2 && npm ls --all --parseable --long"
    );
    let ca = format!("{}:/mnt/ca.crt:ro", host_ca());
    parseable_tree(&docker_ok(&[
        "run",
        "--rm",
        "--volume",
        &ca,
        "--env",
        "NODE_EXTRA_CA_CERTS=/mnt/ca.crt",
        "--env",
        "npm_config_cafile=/mnt/ca.crt",
        "--entrypoint",
        "sh",
        image,
        "-c",
        &script,
    ]))
}

fn version_of(image: &str, dir: &str, package: &str) -> String {
    sh(
        image,
        &format!("cd {dir} && node -p \"require('{package}/package.json').version\""),
    )
}

#[test]
fn patches_direct_transitive_and_global_packages_and_npm_agrees() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let report_path = out.path().join("report.json");
    std::fs::write(&report_path, report()).unwrap();
    let before_app = tree(FIXTURE, "/app");
    let before_global = tree(FIXTURE, "global");
    let dangling_before = dangling_images();

    let patched = "copa-e2e-npm:patched";
    remove_image(patched);
    let summary_path = out.path().join("summary.json");
    let output = copa(
        &[
            "patch",
            "-i",
            FIXTURE,
            "-r",
            report_path.to_str().unwrap(),
            "--pkg-types",
            "library",
            "-t",
            patched,
            "--ca-cert",
            host_ca(),
            "--summary",
            summary_path.to_str().unwrap(),
        ],
        cache.path(),
    );
    assert!(output.status.success());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    let updates = summary["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 4, "{summary:#}");
    assert!(
        updates.iter().all(|u| u["status"] == "patched"),
        "{summary:#}"
    );
    assert!(
        summary["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["package"] == "semver"
                && s["reason"].as_str().unwrap().contains("minor bump")),
        "{summary:#}"
    );

    // What npm and node say in the patched image.
    assert_eq!(version_of(patched, "/app", "lodash"), "4.17.21");
    assert_eq!(version_of(patched, "/app", "minimist"), "1.2.6");
    assert_eq!(version_of(patched, "/app", "qs"), "6.7.3");
    assert_eq!(version_of(patched, "/srv/tool", "minimist"), "1.2.6");
    assert_eq!(version_of(patched, "/usr/local/lib", "semver"), "7.3.5");
    sh(
        patched,
        "cd /app && node -e \"require('express'); require('body-parser')\"",
    );
    // `npm ls` exits non-zero on an invalid, missing or extraneous package.
    let after_app = tree(patched, "/app");
    let changed: BTreeSet<String> = after_app.difference(&before_app).cloned().collect();
    let gone: BTreeSet<String> = before_app.difference(&after_app).cloned().collect();
    let names = |set: &BTreeSet<String>| -> BTreeSet<String> {
        set.iter()
            .map(|l| l.split(' ').nth(1).unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&gone),
        ["lodash@4.17.15", "minimist@1.2.0", "qs@6.7.0"]
            .map(String::from)
            .into(),
        "only the patched packages left the tree"
    );
    let arrived = names(&changed);
    for expected in ["lodash@4.17.21", "minimist@1.2.6", "qs@6.7.3"] {
        assert!(arrived.contains(expected), "{expected} not in {arrived:?}");
    }
    // Anything else that arrived was placed below qs, for qs.
    for line in &changed {
        let path = line.split(' ').next().unwrap();
        assert!(
            [
                "/app/node_modules/lodash",
                "/app/node_modules/minimist",
                "/app/node_modules/qs"
            ]
            .iter()
            .any(|p| path == *p || path.starts_with("/app/node_modules/qs/node_modules/")),
            "{line} changed"
        );
    }
    assert_eq!(tree(patched, "global"), before_global);
    sh(patched, "cd /srv/tool && npm ls --all >/dev/null");
    // The lockfiles are true: a clean install from them gives exactly the patched trees.
    assert_eq!(tree_after_npm_ci(patched, "/app"), after_app);
    assert_eq!(
        tree_after_npm_ci(patched, "/srv/tool"),
        tree(patched, "/srv/tool")
    );

    let manifest: serde_json::Value =
        serde_json::from_str(&sh(patched, "cat /app/package.json")).unwrap();
    assert_eq!(manifest["dependencies"]["lodash"], "^4.17.21");
    assert_eq!(manifest["dependencies"]["minimist"], "^1.2.6");
    assert_eq!(manifest["dependencies"]["express"], "^4.17.1");
    let lock: serde_json::Value =
        serde_json::from_str(&sh(patched, "cat /app/package-lock.json")).unwrap();
    assert_eq!(lock["packages"]["node_modules/qs"]["version"], "6.7.3");
    assert_eq!(
        lock["packages"]["node_modules/lodash"]["resolved"],
        "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz"
    );
    assert_eq!(
        sh(
            patched,
            "stat -c %u:%g /srv/tool/node_modules/minimist/package.json"
        ),
        "1000:1000"
    );

    // The layer: the patched packages and project files, nothing else.
    let entries = last_layer_entries(patched, out.path());
    let allowed = [
        "app/node_modules/lodash",
        "app/node_modules/minimist",
        "app/node_modules/qs",
        "app/node_modules/.package-lock.json",
        "app/package.json",
        "app/package-lock.json",
        "srv/tool/node_modules/minimist",
        "srv/tool/package.json",
        "srv/tool/package-lock.json",
        "srv/tool/node_modules/.package-lock.json",
    ];
    for (name, _) in &entries {
        let parent_dir = allowed.iter().any(|a| a.starts_with(&format!("{name}/")));
        assert!(
            parent_dir
                || allowed
                    .iter()
                    .any(|a| name == a || name.starts_with(&format!("{a}/"))),
            "{name} does not belong in the patch layer"
        );
    }
    assert!(
        entries
            .iter()
            .any(|(n, _)| n == "app/node_modules/lodash/package.json")
    );

    // Minor level: semver moves to 7.5.2 and its command still runs.
    let minor = "copa-e2e-npm:minor";
    remove_image(minor);
    let output = copa(
        &[
            "patch",
            "-i",
            FIXTURE,
            "-r",
            report_path.to_str().unwrap(),
            "--pkg-types",
            "library",
            "--library-patch-level",
            "minor",
            "-t",
            minor,
            "--ca-cert",
            host_ca(),
        ],
        cache.path(),
    );
    assert!(output.status.success());
    assert_eq!(version_of(minor, "/usr/local/lib", "semver"), "7.5.2");
    assert_eq!(
        sh(minor, "semver -r '^1.2.0' 1.2.3 1.3.9 2.0.0"),
        "1.2.3\n1.3.9".trim()
    );
    sh(minor, "npm ls -g --all >/dev/null");

    assert_eq!(leftover_containers(), "", "containers left behind");
    assert_eq!(
        dangling_images(),
        dangling_before,
        "intermediate images left behind"
    );
    remove_image(minor);
    remove_image(patched);
}

/// The fixture with /app's package-lock.json rewritten by npm itself in an older format: 2 (npm
/// 7-8: `packages` and the v1 tree) or 1 (npm 5-6: the tree only; those npm versions kept no
/// hidden lockfile either). Same tree, same node_modules.
fn fixture_with_lockfile(version: u32) -> String {
    let image = format!("copa-e2e-npm:lockfile-v{version}");
    let container = format!("copa-e2e-npm-lockfile-v{version}");
    let _ = docker(&["rm", "-f", &container]);
    let hidden = if version == 1 {
        " && rm node_modules/.package-lock.json"
    } else {
        ""
    };
    let ca = format!("{}:/mnt/ca.crt:ro", host_ca());
    docker_ok(&[
        "run",
        "--name",
        &container,
        "--volume",
        &ca,
        "--env",
        "NODE_EXTRA_CA_CERTS=/mnt/ca.crt",
        "--env",
        "npm_config_cafile=/mnt/ca.crt",
        "--entrypoint",
        "sh",
        FIXTURE,
        "-c",
        &format!(
            "cd /app && npm install --package-lock-only --lockfile-version {version} \
             --ignore-scripts --no-audit --no-fund >&2{hidden} && rm -rf /root/.npm /tmp/*"
        ),
    ]);
    docker_ok(&["commit", &container, &image]);
    docker_ok(&["rm", &container]);
    image
}

#[test]
fn lockfiles_v1_and_v2_stay_true_and_npm_ci_reproduces_the_patched_tree() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let report_path = out.path().join("report.json");
    std::fs::write(&report_path, report()).unwrap();
    for version in [1, 2] {
        let original = fixture_with_lockfile(version);
        let patched = format!("copa-e2e-npm:lockfile-v{version}-patched");
        remove_image(&patched);
        let summary_path = out.path().join(format!("summary-v{version}.json"));
        let output = copa(
            &[
                "patch",
                "-i",
                &original,
                "-r",
                report_path.to_str().unwrap(),
                "--pkg-types",
                "library",
                "-t",
                &patched,
                "--ca-cert",
                host_ca(),
                "--summary",
                summary_path.to_str().unwrap(),
            ],
            cache.path(),
        );
        assert!(output.status.success(), "v{version}");
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
        // lodash, minimist and qs in /app, and the other app's minimist.
        let updates = summary["updates"].as_array().unwrap();
        assert_eq!(updates.len(), 4, "v{version}: {summary:#}");
        assert!(
            updates.iter().all(|u| u["status"] == "patched"),
            "v{version}: {summary:#}"
        );
        let lock: serde_json::Value =
            serde_json::from_str(&sh(&patched, "cat /app/package-lock.json")).unwrap();
        assert_eq!(lock["lockfileVersion"], version);
        assert_eq!(lock["dependencies"]["qs"]["version"], "6.7.3", "v{version}");
        assert_eq!(
            lock["dependencies"]["lodash"]["resolved"],
            "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz",
            "v{version}"
        );
        // npm ls (in `tree`) fails on an invalid tree; npm ci on a lockfile that disagrees with
        // package.json; and the clean install must be the patched tree exactly.
        let patched_tree = tree(&patched, "/app");
        assert!(patched_tree.iter().any(|l| l.ends_with(" qs@6.7.3")));
        assert_eq!(
            tree_after_npm_ci(&patched, "/app"),
            patched_tree,
            "v{version}"
        );
        remove_image(&patched);
        remove_image(&original);
    }
}
