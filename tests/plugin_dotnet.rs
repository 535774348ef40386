//! The dotnet plugin through the real host: detect, plan and emitted steps on a filesystem holding
//! two apps built with mono-mcs (tests/fixtures/dotnet/packages.py), against a NuGet v3 feed on
//! 127.0.0.1 and a folder feed made of the same packages, read over the plugin's `http` with the
//! grants, credentials and options a run gives it.

mod common;

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use common::dotnet::{build_packages, serve_private_v3_feed, serve_v3_feed};
use common::{PluginSetup, builtin_plugin_with_credentials, default_index, target_attribute};
use copa_host::http::{Credential, Origin};
use copa_host::plugin::{Finding, PatchLevel, Plan, Policy, Step, Target};
use copa_plugin_sdk::nuget_feed::folder_url;
use sha2::{Digest, Sha256, Sha512};

/// A layer tar of the image: /app (app1, root's), /srv/app2 (app2, uid 1000), a .NET
/// installation whose shared framework carries a deps.json + runtimeconfig.json pair of its own,
/// and a single-file bundle at /opt/tool/tool.
fn image(apps: &Path, bundle: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, bytes: &[u8], mode: u32, uid: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_size(bytes.len() as u64);
        builder.append_data(&mut header, path, bytes).unwrap();
    };
    for (app, dir, uid) in [("app1", "app", 0), ("app2", "srv/app2", 1000)] {
        for entry in std::fs::read_dir(apps.join(app)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            add(
                &format!("{dir}/{name}"),
                &std::fs::read(&path).unwrap(),
                0o644,
                uid,
            );
        }
    }
    let shared = "usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.4";
    add("usr/share/dotnet/dotnet", b"\x7fELF muxer", 0o755, 0);
    add(
        "usr/share/dotnet/host/fxr/8.0.4/libhostfxr.so",
        b"\x7fELF",
        0o644,
        0,
    );
    add(
        &format!("{shared}/Microsoft.NETCore.App.deps.json"),
        br#"{"runtimeTarget": {"name": ".NETCoreApp,Version=v8.0/linux-x64"}, "targets": {}, "libraries": {}}"#,
        0o644,
        0,
    );
    add(
        &format!("{shared}/Microsoft.NETCore.App.runtimeconfig.json"),
        br#"{"runtimeOptions": {"tfm": "net8.0"}}"#,
        0o644,
        0,
    );
    add("opt/tool/tool", &std::fs::read(bundle).unwrap(), 0o755, 0);
    // An apphost-sized executable that is no bundle.
    add(
        "usr/local/bin/helper",
        &std::fs::read("/bin/ls").unwrap(),
        0o755,
        0,
    );
    builder.into_inner().unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    feed: std::path::PathBuf,
    /// The image's one layer.
    layer: Vec<u8>,
    setup: PluginSetup,
    /// The plugin's options (`source-mapping`), in each policy it gets.
    options: Vec<(String, String)>,
}

/// What a run gives the plugin about its feeds: `--index nuget=URL`s, the credential of each
/// origin, the plugin's options.
#[derive(Default)]
struct Feeds {
    indexes: Vec<String>,
    credentials: HashMap<Origin, Credential>,
    options: Vec<(String, String)>,
}

fn fixture(source: impl FnOnce(&Path) -> String) -> Fixture {
    fixture_with(|feed| Feeds {
        indexes: vec![source(feed)],
        ..Feeds::default()
    })
}

/// `feeds` gets the feed folder.
fn fixture_with(feeds: impl FnOnce(&Path) -> Feeds) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (feed, apps) = build_packages(dir.path(), true);
    let bundle = dir.path().join("bundle");
    let status = std::process::Command::new("python3")
        .arg(common::docker::repo_root().join("tests/fixtures/dotnet/packages.py"))
        .args(["--bundle", "/bin/ls"])
        .arg(apps.join("app1"))
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(status.success());
    let feeds = feeds(&feed);
    let layer = image(&apps, &bundle);
    let indexes: Vec<(&str, &str)> = feeds
        .indexes
        .iter()
        .map(|u| ("nuget", u.as_str()))
        .collect();
    let setup = builtin_plugin_with_credentials(
        "dotnet",
        vec![layer.clone()],
        default_index(),
        &indexes,
        feeds.credentials,
    );
    Fixture {
        _dir: dir,
        feed,
        layer,
        setup,
        options: feeds.options,
    }
}

impl Fixture {
    /// The policy of a run at `level`, with the fixture's feeds and options.
    fn policy(&self, level: PatchLevel) -> Policy {
        Policy {
            options: self.options.clone(),
            ..self.setup.policy(level, false)
        }
    }
}

/// The folder feed of `feed` as a run names it: `--nuget-source DIR` is `--index
/// nuget=file:///DIR/`.
fn folder(feed: &Path) -> String {
    folder_url(&feed.display().to_string())
}

fn finding(target: &str, package: &str, installed: &str, id: &str, fixed: &[&str]) -> Finding {
    Finding {
        vulnerability_id: id.into(),
        package_name: package.into(),
        installed_version: installed.into(),
        fixed_versions: fixed.iter().map(|f| f.to_string()).collect(),
        pkg_path: None,
        report_target: target.into(),
        report_type: "dotnet-core".into(),
        purl: Some(format!("pkg:nuget/{package}@{installed}")),
        severity: "HIGH".into(),
        status: "fixed".into(),
    }
}

fn findings() -> Vec<Finding> {
    let mut all = Vec::new();
    for target in ["app/app1.deps.json", "srv/app2/app2.deps.json"] {
        all.push(finding(
            target,
            "Copa.Fixture.Lib",
            "1.0.0",
            "CVE-LIB",
            &["1.0.1"],
        ));
        all.push(finding(
            target,
            "Copa.Fixture.Lib",
            "1.0.0",
            "CVE-MAJOR",
            &["2.0.0"],
        ));
        all.push(finding(
            target,
            "Copa.Fixture.Greeter",
            "1.0.0",
            "CVE-GREET",
            &["1.0.1"],
        ));
        all.push(finding(
            target,
            "Copa.Fixture.Newer",
            "1.0.0",
            "CVE-NEWER",
            &["1.0.1"],
        ));
    }
    all.push(finding(
        "app/app1.deps.json",
        "Microsoft.Build.Tasks.Git",
        "1.0.0",
        "CVE-BUILD",
        &["1.1.1"],
    ));
    all.push(finding(
        "opt/tool/tool",
        "Copa.Fixture.Lib",
        "1.0.0",
        "CVE-BUNDLED",
        &["1.0.1"],
    ));
    all
}

/// (app, package, from, to, fixes) of a planned update.
type UpdateRow = (String, String, String, String, Vec<String>);
/// (.nupkg file, member, path, uid, mode) of a placement.
type Placed<'a> = (&'a str, &'a str, &'a str, u32, Option<u32>);

fn updates(plan: &Plan) -> Vec<UpdateRow> {
    plan.updates
        .iter()
        .map(|u| {
            (
                u.target_id.clone(),
                u.package.clone(),
                u.from_version.clone(),
                u.to_version.clone(),
                u.fixes.clone(),
            )
        })
        .collect()
}

fn skip_reason<'a>(plan: &'a Plan, target: &str, vulnerability: &str) -> &'a str {
    plan.skips
        .iter()
        .find(|s| s.target_id == target && s.vulnerabilities.iter().any(|v| v == vulnerability))
        .map(|s| s.reason.as_str())
        .unwrap_or_else(|| panic!("no skip of {vulnerability} in {target}: {plan:#?}"))
}

fn v3() -> Fixture {
    fixture(|feed| serve_v3_feed(feed).0)
}

#[test]
fn detects_every_app_and_the_bundle() {
    let fixture = v3();
    let targets = fixture
        .setup
        .host
        .detect(&fixture.setup.plugin, &fixture.setup.caps)
        .unwrap();
    let ids: Vec<(&str, &str)> = targets
        .iter()
        .map(|t| (t.id.as_str(), t.kind.as_str()))
        .collect();
    // Not the shared framework's deps.json, not the muxer, not an ordinary executable.
    assert_eq!(
        ids,
        [
            ("/app/app1.deps.json", "dotnet-app"),
            ("/opt/tool/tool", "dotnet-bundle"),
            ("/srv/app2/app2.deps.json", "dotnet-app"),
        ]
    );
    let app2 = &targets[2];
    assert_eq!(target_attribute(app2, "tfm"), "net8.0");
    assert_eq!(target_attribute(app2, "app-dir"), "/srv/app2");
    assert_eq!(target_attribute(app2, "owner"), "1000:1000");
    assert_eq!(target_attribute(app2, "deployment"), "framework-dependent");
    assert_eq!(app2.runtime_version.as_deref(), Some("8.0.0"));
    let packages: Vec<(&str, &str)> = app2
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(
        packages,
        [
            ("Copa.Fixture.Greeter", "1.0.0"),
            ("Copa.Fixture.Lib", "1.0.0"),
            ("Copa.Fixture.Newer", "1.0.0")
        ]
    );
    assert!(app2.unpatchable_reason.is_none());
    assert!(
        targets[1]
            .unpatchable_reason
            .as_deref()
            .unwrap()
            .contains("single-file bundle")
    );
}

fn plan_of(fixture: &Fixture, level: PatchLevel) -> (Vec<Target>, Plan) {
    let setup = &fixture.setup;
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    let plan = setup
        .host
        .plan(
            &setup.plugin,
            &setup.caps,
            &targets,
            &findings(),
            &fixture.policy(level),
        )
        .unwrap();
    (targets, plan)
}

#[test]
fn plans_fixes_new_dependencies_and_explains_skips() {
    let fixture = v3();
    let (_, plan) = plan_of(&fixture, PatchLevel::Patch);
    let s = |t: &str| t.to_string();
    let mut expected = Vec::new();
    for app in ["/app/app1.deps.json", "/srv/app2/app2.deps.json"] {
        expected.push((
            s(app),
            s("Copa.Fixture.Greeter"),
            s("1.0.0"),
            s("1.0.1"),
            vec![s("CVE-GREET")],
        ));
        // The fixed Greeter needs a package the app never had.
        expected.push((s(app), s("Copa.Fixture.Helper"), s(""), s("1.0.0"), vec![]));
        expected.push((
            s(app),
            s("Copa.Fixture.Lib"),
            s("1.0.0"),
            s("1.0.1"),
            vec![s("CVE-LIB")],
        ));
    }
    assert_eq!(updates(&plan), expected);
    for app in ["/app/app1.deps.json", "/srv/app2/app2.deps.json"] {
        assert_eq!(
            skip_reason(&plan, app, "CVE-MAJOR"),
            "fix needs a major bump to 2.0.0; --library-patch-level is patch (allow it with --library-patch-level major)"
        );
        assert_eq!(
            skip_reason(&plan, app, "CVE-NEWER"),
            "fixed version 1.0.1: its assemblies need a newer framework (net9.0) than the app's net8.0"
        );
    }
    assert!(
        skip_reason(&plan, "/app/app1.deps.json", "CVE-BUILD")
            .starts_with("Microsoft.Build.* is build-time only")
    );
    assert!(skip_reason(&plan, "/opt/tool/tool", "CVE-BUNDLED").contains("single-file bundle"));

    // At major level, Lib goes to 2.0.0, which fixes both.
    let (_, plan) = plan_of(&fixture, PatchLevel::Major);
    let lib = plan
        .updates
        .iter()
        .find(|u| u.package == "Copa.Fixture.Lib")
        .unwrap();
    assert_eq!((lib.to_version.as_str(), lib.fixes.len()), ("2.0.0", 2));
}

fn sha512_of(feed: &Path, file: &str) -> String {
    let bytes = std::fs::read(feed.join(file)).unwrap();
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
    )
}

/// The steps the plugin emits for `plan` under the fixture's policy.
fn emit(fixture: &Fixture, targets: &[Target], plan: &Plan) -> Vec<Step> {
    let setup = &fixture.setup;
    setup
        .host
        .emit_commands(
            &setup.plugin,
            &setup.caps,
            targets,
            plan,
            &fixture.policy(PatchLevel::Patch),
        )
        .unwrap()
}

#[test]
fn emits_downloads_and_a_true_deps_json() {
    let fixture = v3();
    let (targets, plan) = plan_of(&fixture, PatchLevel::Patch);
    let steps = emit(&fixture, &targets, &plan);
    let mut downloads = Vec::new();
    let mut writes = Vec::new();
    for step in &steps {
        match step {
            Step::Download(download) => downloads.push(download),
            Step::Write(write) => writes.push(write),
            other => panic!("unexpected step {other:?}"),
        }
    }
    let file = |url: &str| url.rsplit('/').next().unwrap().to_string();
    let files: Vec<String> = downloads.iter().map(|d| file(&d.url)).collect();
    let placed: Vec<Placed> = downloads
        .iter()
        .zip(&files)
        .flat_map(|(d, file)| {
            d.placements.iter().map(move |p| {
                (
                    file.as_str(),
                    p.member.as_str(),
                    p.path.as_str(),
                    p.uid,
                    p.mode,
                )
            })
        })
        .collect();
    assert_eq!(
        placed,
        [
            (
                "copa.fixture.greeter.1.0.1.nupkg",
                "lib/net6.0/Copa.Fixture.Greeter.dll",
                "/app/Copa.Fixture.Greeter.dll",
                0,
                Some(0o644)
            ),
            (
                "copa.fixture.helper.1.0.0.nupkg",
                "lib/netstandard2.0/Copa.Fixture.Helper.dll",
                "/app/Copa.Fixture.Helper.dll",
                0,
                Some(0o644)
            ),
            (
                "copa.fixture.lib.1.0.1.nupkg",
                "lib/net6.0/Copa.Fixture.Lib.dll",
                "/app/Copa.Fixture.Lib.dll",
                0,
                Some(0o644)
            ),
            // The second app's files keep its owner; the new one gets the deps.json's.
            (
                "copa.fixture.greeter.1.0.1.nupkg",
                "lib/net6.0/Copa.Fixture.Greeter.dll",
                "/srv/app2/Copa.Fixture.Greeter.dll",
                1000,
                Some(0o644)
            ),
            (
                "copa.fixture.helper.1.0.0.nupkg",
                "lib/netstandard2.0/Copa.Fixture.Helper.dll",
                "/srv/app2/Copa.Fixture.Helper.dll",
                1000,
                Some(0o644)
            ),
            (
                "copa.fixture.lib.1.0.1.nupkg",
                "lib/net6.0/Copa.Fixture.Lib.dll",
                "/srv/app2/Copa.Fixture.Lib.dll",
                1000,
                Some(0o644)
            ),
        ]
    );
    // Each names the .nupkg on the feed, and the SHA-256 of its bytes.
    let origin = fixture.setup.indexes[0]
        .1
        .trim_end_matches("/v3/index.json");
    for download in &downloads {
        assert!(
            download.url.starts_with(&format!("{origin}/flat/")),
            "{}",
            download.url
        );
        let on_feed = std::fs::read_dir(&fixture.feed)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name().unwrap().to_string_lossy().to_lowercase() == file(&download.url)
            })
            .unwrap();
        assert_eq!(
            download.sha256,
            hex::encode(Sha256::digest(std::fs::read(on_feed).unwrap()))
        );
    }
    assert_eq!(writes.len(), 2, "one deps.json per app, nothing removed");
    let write = writes
        .iter()
        .find(|w| w.path == "/srv/app2/app2.deps.json")
        .unwrap();
    assert_eq!((write.uid, write.gid, write.mode), (1000, 1000, 0o644));
    assert_eq!(write.updates, [3, 4, 5]);
    let deps: serde_json::Value = serde_json::from_slice(write.contents.as_ref().unwrap()).unwrap();
    let section = &deps["targets"][".NETCoreApp,Version=v8.0"];
    assert_eq!(
        section["app2/1.0.0"]["dependencies"],
        serde_json::json!({"Copa.Fixture.Greeter": "1.0.1", "Copa.Fixture.Lib": "1.0.1", "Copa.Fixture.Newer": "1.0.0"})
    );
    // Versions read from the new DLLs themselves.
    assert_eq!(
        section["Copa.Fixture.Lib/1.0.1"],
        serde_json::json!({"runtime": {"lib/net6.0/Copa.Fixture.Lib.dll": {"assemblyVersion": "1.0.1.0", "fileVersion": "1.0.1.0"}}})
    );
    assert_eq!(
        section["Copa.Fixture.Greeter/1.0.1"]["dependencies"],
        serde_json::json!({"Copa.Fixture.Helper": "1.0.0"})
    );
    assert!(section.get("Copa.Fixture.Helper/1.0.0").is_some());
    assert!(section.get("Copa.Fixture.Lib/1.0.0").is_none());
    let libraries = &deps["libraries"];
    assert!(libraries.get("Copa.Fixture.Lib/1.0.0").is_none());
    for (key, file) in [
        ("Copa.Fixture.Lib/1.0.1", "Copa.Fixture.Lib.1.0.1.nupkg"),
        (
            "Copa.Fixture.Greeter/1.0.1",
            "Copa.Fixture.Greeter.1.0.1.nupkg",
        ),
        (
            "Copa.Fixture.Helper/1.0.0",
            "Copa.Fixture.Helper.1.0.0.nupkg",
        ),
        // Untouched: still the sha512 the fixture wrote.
        ("Copa.Fixture.Newer/1.0.0", "Copa.Fixture.Newer.1.0.0.nupkg"),
    ] {
        assert_eq!(
            libraries[key]["sha512"],
            sha512_of(&fixture.feed, file),
            "{key}"
        );
        assert_eq!(libraries[key]["type"], "package");
    }
    assert_eq!(
        libraries["Copa.Fixture.Lib/1.0.1"]["path"],
        "copa.fixture.lib/1.0.1"
    );
    assert_eq!(
        libraries["Copa.Fixture.Lib/1.0.1"]["hashPath"],
        "copa.fixture.lib.1.0.1.nupkg.sha512"
    );
}

/// The updates at patch level, in both apps: Greeter (with the Helper it now needs) and Lib.
fn assert_patch_level_plan(plan: &Plan) {
    let to: Vec<(&str, &str)> = plan
        .updates
        .iter()
        .map(|u| (u.package.as_str(), u.to_version.as_str()))
        .collect();
    assert_eq!(
        to,
        [
            ("Copa.Fixture.Greeter", "1.0.1"),
            ("Copa.Fixture.Helper", "1.0.0"),
            ("Copa.Fixture.Lib", "1.0.1"),
            ("Copa.Fixture.Greeter", "1.0.1"),
            ("Copa.Fixture.Helper", "1.0.0"),
            ("Copa.Fixture.Lib", "1.0.1"),
        ]
    );
}

#[test]
fn plans_the_same_from_a_folder_feed() {
    let fixture = fixture(folder);
    let (targets, plan) = plan_of(&fixture, PatchLevel::Patch);
    assert_patch_level_plan(&plan);
    // The packages placed are the folder's files, by file:// URL.
    let urls: Vec<String> = emit(&fixture, &targets, &plan)
        .iter()
        .filter_map(|s| match s {
            Step::Download(d) => Some(d.url.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(urls.len(), 6);
    let feed = folder(&fixture.feed);
    assert!(urls.iter().all(|u| u.starts_with(&feed)), "{urls:?}");
}

#[test]
fn an_unreachable_feed_is_a_skip_not_a_crash() {
    let fixture = fixture(|_| "http://127.0.0.1:9/v3/index.json".to_string());
    let (_, plan) = plan_of(&fixture, PatchLevel::Patch);
    assert!(plan.updates.is_empty());
    let reason = skip_reason(&plan, "/app/app1.deps.json", "CVE-LIB");
    assert!(
        reason.starts_with("package index: fetching http://127.0.0.1:9/v3/index.json"),
        "{reason}"
    );
}

#[test]
fn source_mapping_keeps_packages_off_the_feeds_it_does_not_name() {
    let mut v3_url = String::new();
    let fixture = fixture_with(|feed| {
        v3_url = serve_v3_feed(feed).0;
        Feeds {
            // Tried first, and never asked: the mapping sends Copa.* to the v3 feed only.
            indexes: vec!["http://127.0.0.1:9/v3/index.json".into(), v3_url.clone()],
            options: vec![("source-mapping".into(), format!("Copa.*={v3_url}"))],
            ..Feeds::default()
        }
    });
    let (_, plan) = plan_of(&fixture, PatchLevel::Patch);
    assert_patch_level_plan(&plan);
    // A mapping that names no source read for a package leaves it on no feed.
    let blocked = Fixture {
        options: vec![("source-mapping".into(), "*=".into())],
        ..fixture
    };
    let (_, plan) = plan_of(&blocked, PatchLevel::Patch);
    assert!(plan.updates.is_empty());
    let reason = skip_reason(&plan, "/app/app1.deps.json", "CVE-LIB");
    assert_eq!(
        reason,
        "package index: the package source mapping lets no configured feed serve Copa.Fixture.Lib"
    );
}

type RequestLog = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// The fixture against a private feed that wants `ci-bot`:`s3cret;pa=ss`, with `password` the
/// user's credential of its origin (what `--nuget-config` with the feed's
/// packageSourceCredentials, or `--index-credential`, gives), and the public feed after it.
/// Returns the request logs of both.
fn private_fixture(password: &str) -> (Fixture, RequestLog, RequestLog) {
    let mut logs = None;
    let fixture = fixture_with(|feed| {
        let (private, private_log) = serve_private_v3_feed(feed, "ci-bot", "s3cret;pa=ss");
        let (public, public_log) = serve_v3_feed(feed);
        logs = Some((private_log, public_log));
        Feeds {
            credentials: HashMap::from([(
                Origin::of(&private).unwrap(),
                Credential::new(format!("ci-bot:{password}")),
            )]),
            indexes: vec![private, public],
            ..Feeds::default()
        }
    });
    let (private, public) = logs.unwrap();
    (fixture, private, public)
}

#[test]
fn plans_and_downloads_from_a_private_feed_its_credential_going_there_only() {
    let (fixture, requests, public) = private_fixture("s3cret;pa=ss");
    let (targets, plan) = plan_of(&fixture, PatchLevel::Patch);
    assert_patch_level_plan(&plan);
    let steps = emit(&fixture, &targets, &plan);
    let origin = fixture.setup.indexes[0]
        .1
        .trim_end_matches("/v3/index.json");
    let fetched: Vec<&str> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Download(d) => Some(d.url.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(fetched.len(), 6, "{fetched:?}");
    // Every version is on both feeds: each comes from the first, the private one.
    assert!(fetched.iter().all(|u| u.starts_with(origin)), "{fetched:?}");
    // The public feed was asked too (the versions are the union), never with the credential.
    let public = public.lock().unwrap();
    assert!(public.iter().any(|p| p == "/v3/index.json"), "{public:?}");
    assert!(
        public.iter().all(|p| !p.contains("authorization")),
        "{public:?}"
    );
    // The service index, the listings and the packages themselves all came from behind the
    // login (the server answers 401 to anything else, which would have left skips).
    let requests = requests.lock().unwrap();
    assert!(
        requests.iter().any(|p| p == "/v3/index.json"),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|p| p == "/flat/copa.fixture.lib/1.0.1/copa.fixture.lib.1.0.1.nupkg"),
        "{requests:?}"
    );
}

#[test]
fn a_refused_login_is_a_skip_that_says_so() {
    let (fixture, _, _) = private_fixture("wrong");
    let (_, plan) = plan_of(&fixture, PatchLevel::Patch);
    assert!(plan.updates.is_empty(), "{plan:#?}");
    let reason = skip_reason(&plan, "/app/app1.deps.json", "CVE-LIB");
    assert!(
        reason.contains("401") && reason.contains("the credentials were refused"),
        "{reason}"
    );
}

/// The packages of `target` as detection reports them.
fn packages_of<'a>(targets: &'a [Target], target: &str) -> Vec<(&'a str, &'a str)> {
    targets
        .iter()
        .find(|t| t.id == target)
        .unwrap()
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect()
}

/// The fixture's image with one more layer, in which /app/app1.deps.json is `deps`, over the
/// fixture's feed as a folder.
fn with_app1_deps_json(fixture: &Fixture, deps: &str) -> PluginSetup {
    let layer = common::layer_tar(&[common::Node::File("app/app1.deps.json", deps)]);
    let feed = folder(&fixture.feed);
    builtin_plugin_with_credentials(
        "dotnet",
        vec![fixture.layer.clone(), layer],
        default_index(),
        &[("nuget", &feed)],
        HashMap::new(),
    )
}

#[test]
fn a_deps_json_that_names_versions_its_files_are_not_is_caught() {
    // What verification sees when the rewritten deps.json lands but the DLLs do not: the
    // planned version with the reason it is not really there, so the update is not confirmed.
    let fixture = fixture(folder);
    let (targets, plan) = plan_of(&fixture, PatchLevel::Patch);
    let steps = emit(&fixture, &targets, &plan);
    let deps = steps
        .iter()
        .find_map(|s| match s {
            Step::Write(w) if w.path == "/app/app1.deps.json" => w.contents.clone(),
            _ => None,
        })
        .unwrap();
    let deps = String::from_utf8(deps).unwrap();
    let half_patched = with_app1_deps_json(&fixture, &deps);
    let targets = half_patched
        .host
        .detect(&half_patched.plugin, &half_patched.caps)
        .unwrap();
    assert_eq!(
        packages_of(&targets, "/app/app1.deps.json"),
        [
            (
                "Copa.Fixture.Greeter",
                "1.0.1 (but /app/Copa.Fixture.Greeter.dll is assembly version 1.0.0.0, deps.json says 1.0.1.0)"
            ),
            (
                "Copa.Fixture.Lib",
                "1.0.1 (but /app/Copa.Fixture.Lib.dll is assembly version 1.0.0.0, deps.json says 1.0.1.0)"
            ),
            ("Copa.Fixture.Newer", "1.0.0"),
            (
                "Copa.Fixture.Helper",
                "1.0.0 (but /app/Copa.Fixture.Helper.dll is missing)"
            ),
        ]
    );
    // The other app, untouched, agrees with its files.
    assert_eq!(
        packages_of(&targets, "/srv/app2/app2.deps.json"),
        [
            ("Copa.Fixture.Greeter", "1.0.0"),
            ("Copa.Fixture.Lib", "1.0.0"),
            ("Copa.Fixture.Newer", "1.0.0")
        ]
    );
    // Planning on such an app still patches it (which makes files and deps.json agree again),
    // from the version deps.json lists.
    let replanned = half_patched
        .host
        .plan(
            &half_patched.plugin,
            &half_patched.caps,
            &targets,
            &findings(),
            &half_patched.policy(PatchLevel::Major, false),
        )
        .unwrap();
    let lib = replanned
        .updates
        .iter()
        .find(|u| u.target_id == "/app/app1.deps.json" && u.package == "Copa.Fixture.Lib")
        .unwrap();
    assert_eq!(
        (lib.from_version.as_str(), lib.to_version.as_str()),
        ("1.0.1", "2.0.0")
    );
}

#[test]
fn a_file_version_that_disagrees_is_caught_too() {
    let fixture = v3();
    let original = fixture
        .setup
        .host
        .detect(&fixture.setup.plugin, &fixture.setup.caps)
        .unwrap();
    assert_eq!(
        packages_of(&original, "/app/app1.deps.json")[1],
        ("Copa.Fixture.Lib", "1.0.0")
    );
    // deps.json claims a higher file version than the DLL has: the runtime would let this copy
    // beat a framework copy it does not beat.
    let mut deps: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture._dir.path().join("apps/app1/app1.deps.json")).unwrap(),
    )
    .unwrap();
    deps["targets"][".NETCoreApp,Version=v8.0"]["Copa.Fixture.Lib/1.0.0"]["runtime"]["lib/net6.0/Copa.Fixture.Lib.dll"]
        ["fileVersion"] = "1.0.0.9".into();
    let setup = with_app1_deps_json(&fixture, &serde_json::to_string_pretty(&deps).unwrap());
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    assert_eq!(
        packages_of(&targets, "/app/app1.deps.json")[1],
        (
            "Copa.Fixture.Lib",
            "1.0.0 (but /app/Copa.Fixture.Lib.dll is file version 1.0.0.0, deps.json says 1.0.0.9)"
        )
    );
}
