//! The real npm plugin (.wasm) through the real host, against a fixture filesystem and an npm
//! registry on 127.0.0.1 serving packuments and tarballs built here.

mod common;

use std::io::Write;

use base64::Engine as _;
use common::{Node, PluginSetup, builtin_plugin_with_indexes, layer_tar, serve_static_with};
use copa_host::index::PackageIndex;
use copa_host::plugin::{Finding, PatchLevel, Plan, Step, Target};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

/// A package version on the test registry: name, version, dependencies, extra version fields.
struct Release {
    name: &'static str,
    version: &'static str,
    dependencies: Value,
    extra: Value,
    /// Files besides package.json, relative to the package.
    files: &'static [&'static str],
}

fn release(name: &'static str, version: &'static str) -> Release {
    Release {
        name,
        version,
        dependencies: json!({}),
        extra: json!({}),
        files: &["index.js"],
    }
}

fn with_deps(mut r: Release, deps: Value) -> Release {
    r.dependencies = deps;
    r
}

fn with(mut r: Release, extra: Value) -> Release {
    r.extra = extra;
    r
}

fn releases() -> Vec<Release> {
    let mut semver = with_deps(release("semver", "7.5.2"), json!({"lru-cache": "^6.0.0"}));
    semver.extra = json!({"bin": {"semver": "bin/semver.js"}});
    semver.files = &["index.js", "bin/semver.js"];
    let mut lodash = release("lodash", "4.17.21");
    lodash.files = &["lodash.js"];
    vec![
        release("lodash", "4.17.15"),
        with(
            release("lodash", "4.17.20"),
            json!({"deprecated": "use 4.17.21"}),
        ),
        lodash,
        release("qs", "6.7.0"),
        with_deps(release("qs", "6.7.3"), json!({"side-channel": "^1.0.4"})),
        release("qs", "6.8.0"),
        with_deps(
            release("side-channel", "1.0.4"),
            json!({"object-inspect": "^1.9.0"}),
        ),
        with_deps(
            release("side-channel", "1.0.6"),
            json!({"object-inspect": "^1.13.1"}),
        ),
        release("object-inspect", "1.12.0"),
        release("object-inspect", "1.13.1"),
        with(
            release("object-inspect", "1.13.2"),
            json!({"hasInstallScript": true}),
        ),
        release("ms", "2.0.0"),
        release("ms", "2.1.1"),
        release("ms", "2.1.3"),
        release("@scope/util", "1.0.0"),
        with(
            release("@scope/util", "1.0.1"),
            json!({"engines": {"node": ">=20"}}),
        ),
        release("@scope/util", "1.0.2"),
        release("npm", "10.8.2"),
        release("npm", "10.9.0"),
        release("ip", "2.0.0"),
        release("ip", "2.0.1"),
        with_deps(release("semver", "7.3.5"), json!({"lru-cache": "^6.0.0"})),
        semver,
        release("minimist", "1.2.0"),
        with(release("minimist", "1.2.6"), json!({"gypfile": true})),
        release("lru-cache", "6.0.0"),
    ]
}

/// The tarball npm would publish: everything under `package/`.
fn tarball(r: &Release) -> Vec<u8> {
    let manifest = json!({"name": r.name, "version": r.version, "dependencies": r.dependencies});
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: String, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        header.set_mtime(499162500);
        builder.append_data(&mut header, path, bytes).unwrap();
    };
    add(
        "package/package.json".into(),
        serde_json::to_string_pretty(&manifest).unwrap().as_bytes(),
    );
    for file in r.files {
        add(
            format!("package/{file}"),
            format!("// {}@{} {file}\n", r.name, r.version).as_bytes(),
        );
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn tarball_url(origin: &str, name: &str, version: &str) -> String {
    let base = name.rsplit('/').next().unwrap();
    format!("{origin}/{name}/-/{base}-{version}.tgz")
}

fn integrity(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
    )
}

/// Serves a packument per package (at `/name`, scoped as `/@scope%2fname`) and every tarball.
fn registry() -> String {
    let (url, _) = serve_static_with(|origin| {
        let releases = releases();
        let mut files = Vec::new();
        let mut packuments: Vec<(&str, serde_json::Map<String, Value>)> = Vec::new();
        for r in &releases {
            let bytes = tarball(r);
            let url = tarball_url(origin, r.name, r.version);
            let mut doc = json!({
                "name": r.name, "version": r.version, "dependencies": r.dependencies,
                "dist": {"tarball": url, "integrity": integrity(&bytes)}
            });
            for (k, v) in r.extra.as_object().unwrap() {
                doc[k] = v.clone();
            }
            files.push((url.strip_prefix(origin).unwrap().to_string(), bytes));
            match packuments.iter_mut().find(|(n, _)| *n == r.name) {
                Some((_, versions)) => {
                    versions.insert(r.version.into(), doc);
                }
                None => {
                    let mut versions = serde_json::Map::new();
                    versions.insert(r.version.into(), doc);
                    packuments.push((r.name, versions));
                }
            }
        }
        for (name, versions) in packuments {
            let body = json!({"name": name, "versions": versions, "time": {}});
            files.push((
                format!("/{}", name.replacen('/', "%2f", 1)),
                serde_json::to_vec(&body).unwrap(),
            ));
        }
        files
    });
    url
}

fn manifest(name: &str, version: &str, deps: Value) -> String {
    serde_json::to_string_pretty(&json!({"name": name, "version": version, "dependencies": deps}))
        .unwrap()
        + "\n"
}

/// The lockfile entries of the /app fixture tree (keys relative to /app).
fn lock_packages() -> Value {
    let entry = |name: &str, v: &str| json!({"version": v, "resolved": format!("https://registry.npmjs.org/{name}/-/{name}-{v}.tgz"), "integrity": "sha512-old"});
    let mut send = entry("send", "0.17.1");
    send["dependencies"] = json!({"ms": "2.1.1"});
    let mut body_parser = entry("body-parser", "1.19.0");
    body_parser["dependencies"] = json!({"qs": "6.7.0"});
    json!({
        "node_modules/@scope/util": entry("util", "1.0.0"),
        "node_modules/body-parser": body_parser,
        "node_modules/lodash": entry("lodash", "4.17.15"),
        "node_modules/ms": entry("ms", "2.0.0"),
        "node_modules/qs": entry("qs", "6.7.0"),
        "node_modules/send": send,
        "node_modules/send/node_modules/ms": entry("ms", "2.1.1"),
    })
}

fn app_manifest() -> String {
    "{\n  \"name\": \"app\",\n  \"version\": \"1.0.0\",\n  \"dependencies\": {\n    \"@scope/util\": \"1.0.0\",\n    \"body-parser\": \"1.19.0\",\n    \"lodash\": \"^4.17.15\",\n    \"send\": \"0.17.1\"\n  }\n}\n".to_string()
}

/// [`lock_packages`] as a lockfile v1 `dependencies` tree: each package nested in the entry of
/// the package whose `node_modules` holds it, its dependencies as `requires`.
fn legacy_tree() -> Value {
    let mut tree = serde_json::Map::new();
    for (key, entry) in lock_packages().as_object().unwrap() {
        // v1 calls a package's dependencies `requires`.
        let entry: serde_json::Map<String, Value> = entry
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| match k.as_str() {
                "dependencies" => ("requires".to_string(), v.clone()),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        let names: Vec<&str> = key
            .strip_prefix("node_modules/")
            .unwrap()
            .split("/node_modules/")
            .collect();
        let (last, parents) = names.split_last().unwrap();
        let mut level = &mut tree;
        for parent in parents {
            level = level[*parent]
                .as_object_mut()
                .unwrap()
                .entry("dependencies")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .unwrap();
        }
        level.insert(last.to_string(), Value::Object(entry));
    }
    Value::Object(tree)
}

/// A Debian image with Node.js 18.20.4 (dpkg), an app with nested copies and a scoped package,
/// global npm (with its own dependencies) and semver, a yarn project, and an app owned by 1000.
fn image() -> Vec<u8> {
    image_with_lockfile(3)
}

/// [`image`] with /app's lockfile in `version`'s format: 3 (npm 9+: `packages`), 2 (npm 7-8:
/// `packages` and the v1 tree) or 1 (npm 5-6: the `dependencies` tree only, and no hidden
/// lockfile in node_modules).
fn image_with_lockfile(version: u64) -> Vec<u8> {
    let mut lock = json!({"name": "app", "version": "1.0.0", "lockfileVersion": version, "requires": true, "packages": {}});
    let mut packages = serde_json::Map::new();
    packages.insert(
        "".into(),
        json!({"name": "app", "version": "1.0.0", "dependencies": {"@scope/util": "1.0.0", "body-parser": "1.19.0", "lodash": "^4.17.15", "send": "0.17.1"}}),
    );
    for (k, v) in lock_packages().as_object().unwrap() {
        packages.insert(k.clone(), v.clone());
    }
    lock["packages"] = Value::Object(packages.clone());
    if version < 3 {
        lock["dependencies"] = legacy_tree();
    }
    if version == 1 {
        lock = json!({"name": "app", "version": "1.0.0", "lockfileVersion": 1, "requires": true, "dependencies": legacy_tree()});
    }
    // Not `remove`: with serde_json's preserve_order (enabled when the whole workspace is built
    // together) it swaps the last key into the hole, and the fixture would no longer be sorted.
    let packages: serde_json::Map<String, Value> = packages
        .into_iter()
        .filter(|(k, _)| !k.is_empty())
        .collect();
    let hidden = json!({"name": "app", "version": "1.0.0", "lockfileVersion": version, "requires": true, "packages": packages});
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap() + "\n";
    let files: Vec<(String, String)> = vec![
        (
            "var/lib/dpkg/status".into(),
            "Package: nodejs\nStatus: install ok installed\nVersion: 18.20.4+dfsg-1~deb12u2\n"
                .into(),
        ),
        ("app/package.json".into(), app_manifest()),
        ("app/package-lock.json".into(), pretty(&lock)),
        (
            "app/node_modules/lodash/package.json".into(),
            manifest("lodash", "4.17.15", json!({})),
        ),
        ("app/node_modules/lodash/lodash.js".into(), "old".into()),
        (
            "app/node_modules/lodash/fp/old-only.js".into(),
            "old".into(),
        ),
        (
            "app/node_modules/body-parser/package.json".into(),
            manifest("body-parser", "1.19.0", json!({"qs": "6.7.0"})),
        ),
        (
            "app/node_modules/qs/package.json".into(),
            manifest("qs", "6.7.0", json!({})),
        ),
        (
            "app/node_modules/ms/package.json".into(),
            manifest("ms", "2.0.0", json!({})),
        ),
        (
            "app/node_modules/send/package.json".into(),
            manifest("send", "0.17.1", json!({"ms": "2.1.1"})),
        ),
        (
            "app/node_modules/send/node_modules/ms/package.json".into(),
            manifest("ms", "2.1.1", json!({})),
        ),
        (
            "app/node_modules/@scope/util/package.json".into(),
            manifest("@scope/util", "1.0.0", json!({})),
        ),
        (
            "usr/local/lib/node_modules/npm/package.json".into(),
            manifest("npm", "10.8.2", json!({})),
        ),
        (
            "usr/local/lib/node_modules/npm/node_modules/ip/package.json".into(),
            manifest("ip", "2.0.0", json!({})),
        ),
        (
            "usr/local/lib/node_modules/semver/package.json".into(),
            manifest("semver", "7.3.5", json!({"lru-cache": "^6.0.0"})),
        ),
        (
            "usr/local/lib/node_modules/semver/node_modules/lru-cache/package.json".into(),
            manifest("lru-cache", "6.0.0", json!({})),
        ),
        (
            "yarnapp/package.json".into(),
            manifest("yarnapp", "1.0.0", json!({"minimist": "1.2.0"})),
        ),
        ("yarnapp/yarn.lock".into(), "# yarn lockfile v1\n".into()),
        (
            "yarnapp/node_modules/minimist/package.json".into(),
            manifest("minimist", "1.2.0", json!({})),
        ),
        (
            "srv/tool/package.json".into(),
            manifest("tool", "0.1.0", json!({"minimist": "1.2.5"})),
        ),
        (
            "srv/tool/node_modules/minimist/package.json".into(),
            manifest("minimist", "1.2.0", json!({})),
        ),
    ];
    let mut files = files;
    if version > 1 {
        files.push((
            "app/node_modules/.package-lock.json".into(),
            pretty(&hidden),
        ));
    }
    let mut nodes = vec![
        Node::OwnedDir("srv/tool", 1000),
        Node::OwnedDir("srv/tool/node_modules", 1000),
        Node::OwnedDir("srv/tool/node_modules/minimist", 1000),
    ];
    nodes.extend(files.iter().map(|(p, c)| Node::File(p, c)));
    layer_tar(&nodes)
}

fn setup() -> PluginSetup {
    setup_with(image())
}

fn setup_with(layer: Vec<u8>) -> PluginSetup {
    let index = PackageIndex::new(Default::default()).unwrap();
    builtin_plugin_with_indexes("npm", vec![layer], index, &[("npm", &registry())])
}

fn finding(path: &str, name: &str, installed: &str, id: &str, fixed: &str) -> Finding {
    Finding {
        vulnerability_id: id.into(),
        package_name: name.into(),
        installed_version: installed.into(),
        fixed_versions: fixed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        pkg_path: Some(format!("{path}/package.json")),
        report_target: "Node.js".into(),
        report_type: "node-pkg".into(),
        purl: Some(format!("pkg:npm/{name}@{installed}")),
        severity: "HIGH".into(),
        status: "fixed".into(),
    }
}

fn findings() -> Vec<Finding> {
    vec![
        finding(
            "app/node_modules/lodash",
            "lodash",
            "4.17.15",
            "CVE-2021-23337",
            "4.17.21",
        ),
        finding(
            "app/node_modules/qs",
            "qs",
            "6.7.0",
            "CVE-2022-24999",
            "6.10.3, 6.9.7, 6.8.3, 6.7.3",
        ),
        finding(
            "app/node_modules/send/node_modules/ms",
            "ms",
            "2.1.1",
            "GHSA-ms",
            "2.1.3",
        ),
        finding(
            "app/node_modules/@scope/util",
            "@scope/util",
            "1.0.0",
            "GHSA-util",
            "1.0.1",
        ),
        finding(
            "usr/local/lib/node_modules/npm",
            "npm",
            "10.8.2",
            "CVE-npm",
            "10.9.0",
        ),
        finding(
            "usr/local/lib/node_modules/npm/node_modules/ip",
            "ip",
            "2.0.0",
            "CVE-2024-29415",
            "2.0.1",
        ),
        finding(
            "usr/local/lib/node_modules/semver",
            "semver",
            "7.3.5",
            "CVE-2022-25883",
            "7.5.2, 6.3.1, 5.7.2",
        ),
        finding(
            "yarnapp/node_modules/minimist",
            "minimist",
            "1.2.0",
            "CVE-2021-44906",
            "1.2.6",
        ),
        finding(
            "srv/tool/node_modules/minimist",
            "minimist",
            "1.2.0",
            "CVE-2021-44906",
            "1.2.6",
        ),
    ]
}

fn plan_at(setup: &PluginSetup, level: PatchLevel) -> (Vec<Target>, Plan) {
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    let plan = setup
        .host
        .plan(
            &setup.plugin,
            &setup.caps,
            &targets,
            &findings(),
            &setup.policy(level, false),
        )
        .unwrap();
    (targets, plan)
}

fn update<'a>(plan: &'a Plan, package: &str) -> Option<&'a copa_host::plugin::Update> {
    plan.updates.iter().find(|u| u.package == package)
}

fn skip_reason<'a>(plan: &'a Plan, target: &str, package: &str) -> &'a str {
    &plan
        .skips
        .iter()
        .find(|s| s.target_id == target && s.package == package)
        .unwrap_or_else(|| panic!("no skip for {package} in {target}: {plan:#?}"))
        .reason
}

#[test]
fn detects_every_tree_and_copy() {
    let setup = setup();
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    for id in [
        "/app/node_modules",
        "/app/node_modules/send/node_modules",
        "/srv/tool/node_modules",
        "/yarnapp/node_modules",
        "/usr/local/lib/node_modules",
        "/usr/local/lib/node_modules/npm/node_modules",
        "/usr/local/lib/node_modules/semver/node_modules",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let app = targets
        .iter()
        .find(|t| t.id == "/app/node_modules")
        .unwrap();
    assert_eq!(app.kind, "npm-project");
    assert_eq!(app.runtime_version.as_deref(), Some("18.20.4"));
    let scoped = app
        .packages
        .iter()
        .find(|p| p.name == "@scope/util")
        .unwrap();
    assert_eq!(scoped.location, "/app/node_modules/@scope/util");
    // The two copies of ms are in different targets, each at its own version.
    let ms = |id: &str| {
        let target = targets.iter().find(|t| t.id == id).unwrap();
        let ms = target.packages.iter().find(|p| p.name == "ms").unwrap();
        ms.version.clone()
    };
    assert_eq!(ms("/app/node_modules"), "2.0.0");
    assert_eq!(ms("/app/node_modules/send/node_modules"), "2.1.1");
    assert_eq!(
        common::target_attribute(app, "lockfiles"),
        "/app/package-lock.json\n/app/node_modules/.package-lock.json"
    );
    let yarn = targets
        .iter()
        .find(|t| t.id == "/yarnapp/node_modules")
        .unwrap();
    assert!(
        yarn.unpatchable_reason
            .as_deref()
            .is_some_and(|r| r.contains("yarn")),
        "{yarn:#?}"
    );
    let global = targets
        .iter()
        .find(|t| t.id == "/usr/local/lib/node_modules")
        .unwrap();
    assert_eq!(global.kind, "npm-global");
    assert_eq!(
        common::target_attribute(global, "project"),
        "/usr/local/lib"
    );
}

#[test]
fn plans_direct_transitive_nested_scoped_and_global_updates() {
    let setup = setup();
    let (_, plan) = plan_at(&setup, PatchLevel::Patch);
    let to = |package: &str| {
        update(&plan, package).map(|u| (u.target_id.as_str(), u.to_version.as_str()))
    };
    assert_eq!(to("lodash"), Some(("/app/node_modules", "4.17.21")));
    assert_eq!(to("qs"), Some(("/app/node_modules", "6.7.3")));
    // Only the nested copy named by the finding; the top-level ms 2.0.0 stays.
    assert_eq!(
        to("ms"),
        Some(("/app/node_modules/send/node_modules", "2.1.3"))
    );
    // 1.0.1 needs Node.js 20; the next release on its line stands in.
    assert_eq!(to("@scope/util"), Some(("/app/node_modules", "1.0.2")));
    assert_eq!(
        update(&plan, "minimist").map(|u| u.target_id.as_str()),
        Some("/srv/tool/node_modules")
    );
    assert_eq!(plan.updates.len(), 5, "{plan:#?}");
    // What the user must know reaches the summary as the updates' notes: scripts and native
    // code that were not run or built, here or in what an update brings along, and overrides.
    let notes = |package: &str| update(&plan, package).unwrap().notes.clone();
    assert_eq!(
        notes("minimist"),
        ["has native code (binding.gyp), which was not rebuilt"]
    );
    let qs = notes("qs");
    assert!(
        qs.contains(
            &"needs object-inspect 1.13.2, placed at \
              /app/node_modules/qs/node_modules/side-channel/node_modules/object-inspect, \
              which has an install script, which was not run"
                .to_string()
        ),
        "{qs:#?}"
    );
    assert!(notes("lodash").is_empty());

    let global = "/usr/local/lib/node_modules";
    assert!(skip_reason(&plan, global, "npm").contains("never patched"));
    assert!(
        skip_reason(&plan, "/usr/local/lib/node_modules/npm/node_modules", "ip")
            .contains("part of the global npm")
    );
    assert_eq!(
        skip_reason(&plan, global, "semver"),
        "fix needs a minor bump to 7.5.2; --library-patch-level is patch"
    );
    assert!(skip_reason(&plan, "/yarnapp/node_modules", "minimist").contains("yarn"));

    let (_, plan) = plan_at(&setup, PatchLevel::Minor);
    assert_eq!(
        update(&plan, "semver").map(|u| (u.target_id.as_str(), u.to_version.as_str())),
        Some((global, "7.5.2"))
    );
}

/// A download step with the package and version it names ("npm NAME@VERSION").
struct Fetch<'a> {
    name: String,
    version: String,
    placements: &'a [copa_host::plugin::Placement],
}

/// The download steps, each checked to name the registry's tarball of its package and the
/// SHA-256 of exactly the bytes the registry serves.
fn fetches(steps: &[Step]) -> Vec<Fetch<'_>> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Download(d) => Some(d),
            _ => None,
        })
        .map(|d| {
            let (name, version) = d
                .description
                .strip_prefix("npm ")
                .and_then(|what| what.rsplit_once('@'))
                .unwrap_or_else(|| panic!("{}", d.description));
            let release = releases()
                .into_iter()
                .find(|r| r.name == name && r.version == version)
                .unwrap();
            assert!(
                d.url.ends_with(&tarball_url("", name, version)),
                "{}",
                d.url
            );
            assert_eq!(d.sha256, hex::encode(Sha256::digest(tarball(&release))));
            Fetch {
                name: name.to_string(),
                version: version.to_string(),
                placements: &d.placements,
            }
        })
        .collect()
}

fn write_of<'a>(steps: &'a [Step], path: &str) -> &'a copa_host::plugin::WriteStep {
    steps
        .iter()
        .find_map(|s| match s {
            Step::Write(w) if w.path == path => Some(w),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no write of {path}"))
}

fn written_json(steps: &[Step], path: &str) -> Value {
    serde_json::from_slice(write_of(steps, path).contents.as_ref().unwrap()).unwrap()
}

#[test]
fn emits_fetches_removals_and_rewritten_project_files() {
    let setup = setup();
    let (targets, plan) = plan_at(&setup, PatchLevel::Minor);
    let steps = setup
        .host
        .emit_commands(
            &setup.plugin,
            &setup.caps,
            &targets,
            &plan,
            &setup.policy(PatchLevel::Patch, false),
        )
        .unwrap();
    assert!(
        steps
            .iter()
            .all(|s| matches!(s, Step::Download(_) | Step::Write(_))),
        "no containers: {steps:#?}"
    );

    let placed: Vec<(String, String, &str)> = fetches(&steps)
        .iter()
        .flat_map(|f| {
            f.placements
                .iter()
                .filter(|p| p.member == "package/")
                .map(move |p| (f.name.clone(), f.version.clone(), p.path.as_str()))
        })
        .collect();
    for (name, version, path) in [
        ("lodash", "4.17.21", "/app/node_modules/lodash"),
        ("qs", "6.7.3", "/app/node_modules/qs"),
        (
            "side-channel",
            "1.0.6",
            "/app/node_modules/qs/node_modules/side-channel",
        ),
        (
            "object-inspect",
            "1.13.2",
            "/app/node_modules/qs/node_modules/side-channel/node_modules/object-inspect",
        ),
        ("ms", "2.1.3", "/app/node_modules/send/node_modules/ms"),
        ("@scope/util", "1.0.2", "/app/node_modules/@scope/util"),
        ("semver", "7.5.2", "/usr/local/lib/node_modules/semver"),
        ("minimist", "1.2.6", "/srv/tool/node_modules/minimist"),
    ] {
        assert!(
            placed.contains(&(name.into(), version.into(), path)),
            "{name}@{version} at {path} missing from {placed:#?}"
        );
    }
    assert_eq!(placed.len(), 8, "{placed:#?}");
    for fetch in fetches(&steps) {
        assert!(fetch.placements.iter().all(|p| !p.replace));
    }
    // The tool belongs to uid 1000, and so do its new files.
    let minimist = fetches(&steps)
        .into_iter()
        .find(|f| f.name == "minimist")
        .unwrap();
    assert_eq!(
        (minimist.placements[0].uid, minimist.placements[0].gid),
        (1000, 1000)
    );
    // semver's command must stay executable whatever the tarball says.
    let semver = fetches(&steps)
        .into_iter()
        .find(|f| f.name == "semver")
        .unwrap();
    assert!(
        semver
            .placements
            .iter()
            .any(|p| p.member == "package/bin/semver.js"
                && p.path == "/usr/local/lib/node_modules/semver/bin/semver.js"
                && p.mode == Some(0o755))
    );

    // The file only the old lodash had goes; the shared one is overwritten by the fetch.
    let removed: Vec<&str> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Write(w) if w.contents.is_none() => Some(w.path.as_str()),
            _ => None,
        })
        .collect();
    assert!(removed.contains(&"/app/node_modules/lodash/fp/old-only.js"));
    assert!(!removed.contains(&"/app/node_modules/lodash/lodash.js"));
    assert!(
        !removed
            .iter()
            .any(|p| p.contains("/node_modules/qs/node_modules/"))
    );

    // package.json: the user's style kept, overrides for the packages whose dependents pin
    // them, every other line as it was.
    let manifest = write_of(&steps, "/app/package.json");
    let text = String::from_utf8(manifest.contents.clone().unwrap()).unwrap();
    let expected = app_manifest()
        .replace("\"^4.17.15\"", "\"^4.17.21\"")
        .replace("\"@scope/util\": \"1.0.0\"", "\"@scope/util\": \"1.0.2\"")
        .replace(
            "\n  }\n}\n",
            "\n  },\n  \"overrides\": {\n    \"qs\": \"6.7.3\",\n    \"ms\": \"2.0.0 || 2.1.3\"\n  }\n}\n",
        );
    assert_eq!(text, expected);

    for path in [
        "/app/package-lock.json",
        "/app/node_modules/.package-lock.json",
    ] {
        let lock = written_json(&steps, path);
        let packages = lock["packages"].as_object().unwrap();
        let lodash = &packages["node_modules/lodash"];
        assert_eq!(lodash["version"], "4.17.21");
        assert!(
            lodash["resolved"]
                .as_str()
                .unwrap()
                .ends_with("/lodash/-/lodash-4.17.21.tgz")
        );
        let expected_integrity = integrity(&tarball(
            releases()
                .iter()
                .find(|r| r.name == "lodash" && r.version == "4.17.21")
                .unwrap(),
        ));
        assert_eq!(lodash["integrity"], expected_integrity.as_str());
        assert_eq!(
            packages["node_modules/qs"]["dependencies"],
            json!({"side-channel": "^1.0.4"})
        );
        assert_eq!(
            packages["node_modules/send/node_modules/ms"]["version"],
            "2.1.3"
        );
        assert_eq!(packages["node_modules/ms"]["version"], "2.0.0");
        assert_eq!(
            packages["node_modules/qs/node_modules/side-channel/node_modules/object-inspect"]["hasInstallScript"],
            true
        );
        let keys: Vec<&String> = packages.keys().collect();
        let position = |k: &str| keys.iter().position(|x| *x == k).unwrap();
        assert!(
            position("node_modules/qs") < position("node_modules/qs/node_modules/side-channel")
                && position("node_modules/qs/node_modules/side-channel")
                    < position("node_modules/send"),
            "{keys:?}"
        );
        if path == "/app/package-lock.json" {
            assert_eq!(packages[""]["dependencies"]["lodash"], "^4.17.21");
        }
    }
    // Untouched projects get no writes; a global root has no package.json.
    assert!(steps.iter().all(|s| match s {
        Step::Write(w) =>
            !w.path.starts_with("/yarnapp") && w.path != "/usr/local/lib/package.json",
        _ => true,
    }));
}

#[test]
fn rewrites_lockfile_v1_and_v2_trees() {
    let lodash_integrity = integrity(&tarball(
        releases()
            .iter()
            .find(|r| r.name == "lodash" && r.version == "4.17.21")
            .unwrap(),
    ));
    for version in [1, 2] {
        let setup = setup_with(image_with_lockfile(version));
        let (targets, plan) = plan_at(&setup, PatchLevel::Minor);
        let app = targets
            .iter()
            .find(|t| t.id == "/app/node_modules")
            .unwrap();
        let expected_lockfiles = if version == 1 {
            "/app/package-lock.json"
        } else {
            "/app/package-lock.json\n/app/node_modules/.package-lock.json"
        };
        assert_eq!(
            common::target_attribute(app, "lockfiles"),
            expected_lockfiles
        );
        let steps = setup
            .host
            .emit_commands(
                &setup.plugin,
                &setup.caps,
                &targets,
                &plan,
                &setup.policy(PatchLevel::Patch, false),
            )
            .unwrap();
        let lock = written_json(&steps, "/app/package-lock.json");
        assert_eq!(lock["lockfileVersion"], version, "v{version}");
        let tree = &lock["dependencies"];
        let lodash = &tree["lodash"];
        assert_eq!(lodash["version"], "4.17.21", "v{version}");
        assert!(
            lodash["resolved"]
                .as_str()
                .unwrap()
                .ends_with("/lodash/-/lodash-4.17.21.tgz"),
            "v{version}"
        );
        assert_eq!(lodash["integrity"], lodash_integrity.as_str(), "v{version}");
        assert!(lodash.get("requires").is_none(), "v{version}");
        // qs moved, needs side-channel (which needs object-inspect): each nested in the entry
        // of the package whose node_modules holds it, as v1 trees nest.
        let qs = &tree["qs"];
        assert_eq!(qs["version"], "6.7.3", "v{version}");
        assert_eq!(
            qs["requires"],
            json!({"side-channel": "^1.0.4"}),
            "v{version}"
        );
        let side_channel = &qs["dependencies"]["side-channel"];
        assert_eq!(side_channel["version"], "1.0.6", "v{version}: {qs:#}");
        assert_eq!(
            side_channel["dependencies"]["object-inspect"]["version"], "1.13.2",
            "v{version}: {qs:#}"
        );
        assert_eq!(tree["send"]["dependencies"]["ms"]["version"], "2.1.3");
        assert_eq!(tree["send"]["requires"], json!({"ms": "2.1.1"}));
        assert_eq!(tree["ms"]["version"], "2.0.0");
        assert_eq!(tree["@scope/util"]["version"], "1.0.2");
        assert_eq!(tree["body-parser"], legacy_tree()["body-parser"]);
        if version == 1 {
            assert!(lock.get("packages").is_none(), "v1 has no packages map");
            assert!(
                !steps.iter().any(
                    |s| matches!(s, Step::Write(w) if w.path.ends_with("/.package-lock.json"))
                ),
                "no hidden lockfile is made up"
            );
        } else {
            let packages = &lock["packages"];
            assert_eq!(packages["node_modules/lodash"]["version"], "4.17.21");
            assert_eq!(packages[""]["dependencies"]["lodash"], "^4.17.21");
            assert_eq!(
                packages["node_modules/qs/node_modules/side-channel"]["version"],
                "1.0.6"
            );
            let hidden = written_json(&steps, "/app/node_modules/.package-lock.json");
            assert_eq!(hidden["lockfileVersion"], 2);
            assert_eq!(hidden["packages"]["node_modules/qs"]["version"], "6.7.3");
            assert!(hidden.get("dependencies").is_none());
        }
    }
}
