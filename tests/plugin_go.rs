//! The real Go plugin (.wasm) through the real host, against fixture filesystems holding real Go
//! binaries (built by Debian's Go 1.21 and 1.19 from a local git repository, see
//! tests/fixtures/go-fixture.sh) and a module proxy on 127.0.0.1.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::{PluginSetup, builtin_plugin_with_indexes, serve_static, target_attribute};
use copa_host::plugin::{Finding, PatchLevel, Plan, Step, Target};

/// The fixture material, built once per machine (the script keeps a complete directory).
fn fixture() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("COPA_GO_FIXTURE")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("copa-go-fixture"));
        let script = common::docker::repo_root().join("tests/fixtures/go-fixture.sh");
        let status = Command::new("bash").arg(script).arg(&dir).status().unwrap();
        assert!(
            status.success(),
            "tests/fixtures/go-fixture.sh failed (tests/setup.sh installs Debian's Go)"
        );
        dir
    })
}

fn revision() -> String {
    std::fs::read_to_string(fixture().join("REVISION"))
        .unwrap()
        .trim()
        .to_string()
}

/// A layer tar entry with real bytes, mode and owner.
struct Entry {
    path: &'static str,
    bytes: Vec<u8>,
    mode: u32,
    uid: u64,
}

fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.uid);
        header.set_size(entry.bytes.len() as u64);
        builder
            .append_data(&mut header, entry.path, entry.bytes.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

fn binary(name: &str) -> Vec<u8> {
    std::fs::read(fixture().join("bin").join(name)).unwrap()
}

const GO_MOD: &str = "module example.com/copa/service\n\ngo 1.21\n\nrequire (\n\tgolang.org/x/crypto v0.4.0\n\tgolang.org/x/text v0.7.0 // indirect\n)\n\nreplace golang.org/x/text => ../text\n";

/// An image with the fixture binaries where applications keep them, a non-Go ELF program as
/// big as a Go one, a shell script, and a module tree in a workspace that vendors.
fn image() -> Vec<u8> {
    let text = |s: &str| s.as_bytes().to_vec();
    layer(&[
        Entry {
            path: "app/hello",
            bytes: binary("hello"),
            mode: 0o750,
            uid: 1000,
        },
        Entry {
            path: "usr/local/bin/hello-novcs",
            bytes: binary("hello-novcs"),
            mode: 0o755,
            uid: 0,
        },
        Entry {
            path: "opt/old/hello-go119",
            bytes: binary("hello-go119"),
            mode: 0o755,
            uid: 0,
        },
        Entry {
            path: "usr/bin/bash",
            bytes: std::fs::read("/usr/bin/bash").unwrap(),
            mode: 0o755,
            uid: 0,
        },
        Entry {
            path: "usr/bin/script",
            bytes: text("#!/bin/sh\necho hi\n"),
            mode: 0o755,
            uid: 0,
        },
        // Not executable: a copy of a Go binary kept as data is not a program of the image.
        Entry {
            path: "srv/data/hello.bin",
            bytes: binary("hello"),
            mode: 0o644,
            uid: 0,
        },
        Entry {
            path: "src/go.work",
            bytes: text("go 1.21\n\nuse ./service\n"),
            mode: 0o644,
            uid: 0,
        },
        Entry {
            path: "src/service/go.mod",
            bytes: text(GO_MOD),
            mode: 0o644,
            uid: 1000,
        },
        Entry {
            path: "src/service/go.sum",
            bytes: text(""),
            mode: 0o644,
            uid: 1000,
        },
        Entry {
            path: "src/service/vendor/modules.txt",
            bytes: text("# golang.org/x/crypto v0.4.0\n"),
            mode: 0o644,
            uid: 1000,
        },
        // Module caches and vendored copies are not the user's modules.
        Entry {
            path: "root/go/pkg/mod/golang.org/x/crypto@v0.4.0/go.mod",
            bytes: text("module golang.org/x/crypto\n"),
            mode: 0o444,
            uid: 0,
        },
        Entry {
            path: "src/service/vendor/golang.org/x/crypto/go.mod",
            bytes: text("module golang.org/x/crypto\n"),
            mode: 0o644,
            uid: 0,
        },
    ])
}

/// A module proxy on 127.0.0.1 listing x/crypto versions and toolchains.
fn proxy() -> String {
    let files = vec![
        (
            "/golang.org/x/crypto/@v/list".to_string(),
            b"v0.4.0\nv0.17.0\nv0.25.0\nv0.31.0\nv0.32.0-rc.1\nv1.0.0\n".to_vec(),
        ),
        (
            "/golang.org/toolchain/@v/list".to_string(),
            b"v0.0.1-go1.21.12.linux-amd64\nv0.0.1-go1.21.13.linux-amd64\nv0.0.1-go1.22.12.linux-amd64\nv0.0.1-go1.22.12.darwin-arm64\nv0.0.1-go1.23rc1.linux-amd64\nv0.0.1-go1.23.4.linux-amd64\nv0.0.1-go1.24.0.darwin-arm64\n".to_vec(),
        ),
    ];
    serve_static(files).0
}

/// The plugin reads the proxy over `http`, as `--index go=URL` grants it.
fn setup() -> PluginSetup {
    builtin_plugin_with_indexes(
        "go",
        vec![image()],
        common::default_index(),
        &[("go", &proxy())],
    )
}

fn finding(
    target: &str,
    kind: &str,
    package: &str,
    installed: &str,
    id: &str,
    fixed: &str,
) -> Finding {
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
        report_target: target.into(),
        report_type: kind.into(),
        purl: Some(format!("pkg:golang/{package}@{installed}")),
        severity: "HIGH".into(),
        status: "fixed".into(),
    }
}

fn by_id<'a>(targets: &'a [Target], id: &str) -> &'a Target {
    targets.iter().find(|t| t.id == id).unwrap_or_else(|| {
        panic!(
            "no target {id}: {:#?}",
            targets.iter().map(|t| &t.id).collect::<Vec<_>>()
        )
    })
}

fn version_of<'a>(target: &'a Target, package: &str) -> &'a str {
    &target
        .packages
        .iter()
        .find(|p| p.name == package)
        .unwrap()
        .version
}

#[test]
fn detects_go_binaries_and_module_trees() {
    let setup = setup();
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    let mut ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "/app/hello",
            "/opt/old/hello-go119",
            "/src/service",
            "/usr/local/bin/hello-novcs"
        ]
    );

    let hello = by_id(&targets, "/app/hello");
    assert_eq!(hello.kind, "gobinary");
    assert_eq!(hello.unpatchable_reason, None);
    let go = hello.runtime_version.as_deref().unwrap();
    assert!(go.starts_with("go1.21."), "{go}");
    assert_eq!(version_of(hello, "golang.org/x/crypto"), "v0.4.0");
    assert_eq!(version_of(hello, "stdlib"), format!("v{}", &go[2..]));
    assert_eq!(target_attribute(hello, "module"), "example.com/copa/hello");
    assert_eq!(
        target_attribute(hello, "main-package"),
        "example.com/copa/hello"
    );
    assert_eq!(target_attribute(hello, "source-ref"), revision());
    assert_eq!(
        target_attribute(hello, "setting:-ldflags"),
        "-s -w -X main.version=1.0.0"
    );
    assert_eq!(target_attribute(hello, "setting:-tags"), "netgo");
    assert_eq!(target_attribute(hello, "setting:CGO_ENABLED"), "0");
    assert_eq!(target_attribute(hello, "setting:GOARCH"), "amd64");
    assert_eq!(target_attribute(hello, "setting:vcs.modified"), "false");
    assert_eq!(target_attribute(hello, "mode"), "750");
    assert_eq!(target_attribute(hello, "owner"), "1000:1000");

    let novcs = by_id(&targets, "/usr/local/bin/hello-novcs");
    let reason = novcs.unpatchable_reason.as_deref().unwrap();
    assert!(reason.contains("built without VCS information"), "{reason}");

    let old = by_id(&targets, "/opt/old/hello-go119");
    assert!(
        old.runtime_version
            .as_deref()
            .unwrap()
            .starts_with("go1.19.")
    );
    assert_eq!(old.unpatchable_reason, None);

    let module = by_id(&targets, "/src/service");
    assert_eq!(module.kind, "gomod");
    assert_eq!(module.runtime_version.as_deref(), Some("1.21"));
    assert_eq!(version_of(module, "golang.org/x/crypto"), "v0.4.0");
    assert_eq!(target_attribute(module, "vendored"), "1");
    assert_eq!(target_attribute(module, "workspace"), "/src");
    assert_eq!(
        target_attribute(module, "replaced:golang.org/x/text"),
        "../text"
    );
    assert_eq!(target_attribute(module, "owner"), "1000:1000");
}

fn plan_with(
    setup: &PluginSetup,
    findings: &[Finding],
    level: PatchLevel,
    toolchain: Option<PatchLevel>,
) -> (Vec<Target>, Plan) {
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    let mut policy = setup.policy(level, false);
    policy.toolchain_patch_level = toolchain;
    let plan = setup
        .host
        .plan(&setup.plugin, &setup.caps, &targets, findings, &policy)
        .unwrap();
    (targets, plan)
}

fn summary(plan: &Plan) -> (Vec<String>, Vec<String>) {
    (
        plan.updates
            .iter()
            .map(|u| {
                format!(
                    "{} {} {} -> {} [{}]",
                    u.target_id,
                    u.package,
                    u.from_version,
                    u.to_version,
                    u.fixes.join(" ")
                )
            })
            .collect(),
        plan.skips
            .iter()
            .map(|s| {
                format!(
                    "{} {} [{}]: {}",
                    s.target_id,
                    s.package,
                    s.vulnerabilities.join(" "),
                    s.reason
                )
            })
            .collect(),
    )
}

fn crypto_findings(target: &str, kind: &str) -> Vec<Finding> {
    vec![
        finding(
            target,
            kind,
            "golang.org/x/crypto",
            "v0.4.0",
            "CVE-2023-48795",
            "0.17.0",
        ),
        finding(
            target,
            kind,
            "golang.org/x/crypto",
            "v0.4.0",
            "CVE-2024-45337",
            "0.31.0",
        ),
    ]
}

#[test]
fn plans_module_updates_with_go_semver() {
    let setup = setup();
    let mut findings = crypto_findings("app/hello", "gobinary");
    findings.extend(crypto_findings("src/service/go.mod", "gomod"));
    findings.extend(crypto_findings("usr/local/bin/hello-novcs", "gobinary"));
    findings.push(finding(
        "usr/bin/gone",
        "gobinary",
        "golang.org/x/crypto",
        "v0.4.0",
        "CVE-2023-48795",
        "0.17.0",
    ));

    let (_, plan) = plan_with(&setup, &findings, PatchLevel::Patch, None);
    let (updates, skips) = summary(&plan);
    assert!(updates.is_empty(), "{updates:?}");
    // Each vulnerability names the smallest update that would fix it.
    for expected in [
        "/app/hello golang.org/x/crypto [CVE-2023-48795]: fix needs a minor bump to v0.17.0; --library-patch-level is patch",
        "/app/hello golang.org/x/crypto [CVE-2024-45337]: fix needs a minor bump to v0.31.0; --library-patch-level is patch",
    ] {
        assert!(skips.contains(&expected.to_string()), "{skips:#?}");
    }

    let (_, plan) = plan_with(&setup, &findings, PatchLevel::Minor, None);
    let (updates, skips) = summary(&plan);
    // v0.31.0 fixes both; the pre-release and the major version are never candidates here.
    assert_eq!(
        updates,
        [
            "/app/hello golang.org/x/crypto v0.4.0 -> v0.31.0 [CVE-2023-48795 CVE-2024-45337]",
            "/src/service golang.org/x/crypto v0.4.0 -> v0.31.0 [CVE-2023-48795 CVE-2024-45337]",
        ]
    );
    assert_eq!(skips.len(), 2, "{skips:#?}");
    assert!(
        skips[0].starts_with(
            "/usr/bin/gone golang.org/x/crypto [CVE-2023-48795]: no Go binary or go.mod"
        ),
        "{skips:#?}"
    );
    assert!(skips[1].starts_with("/usr/local/bin/hello-novcs golang.org/x/crypto [CVE-2023-48795 CVE-2024-45337]: built without VCS information"), "{skips:#?}");
}

/// The plugin reads the proxies of `--index go=URL` over `http` in order, asking the next one
/// only when one lacks the module, as the go command reads a `GOPROXY` list joined by `,`.
#[test]
fn reads_the_proxies_in_order_and_falls_through_only_on_not_found() {
    let (lacking, asked) = serve_static(Vec::new());
    let findings = crypto_findings("app/hello", "gobinary");
    let with_proxies = |proxies: &[&str]| {
        let indexes: Vec<(&str, &str)> = proxies.iter().map(|url| ("go", *url)).collect();
        builtin_plugin_with_indexes("go", vec![image()], common::default_index(), &indexes)
    };

    let setup = with_proxies(&[&lacking, &proxy()]);
    let (_, plan) = plan_with(&setup, &findings, PatchLevel::Minor, None);
    let (updates, _) = summary(&plan);
    assert_eq!(
        updates,
        ["/app/hello golang.org/x/crypto v0.4.0 -> v0.31.0 [CVE-2023-48795 CVE-2024-45337]"]
    );
    assert_eq!(*asked.lock().unwrap(), ["/golang.org/x/crypto/@v/list"]);

    // A proxy that cannot answer is an error naming it; the next one is not asked.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let setup = with_proxies(&[&closed, &proxy()]);
    let (_, plan) = plan_with(&setup, &findings, PatchLevel::Minor, None);
    let (updates, skips) = summary(&plan);
    assert!(updates.is_empty(), "{updates:?}");
    let expected = format!(
        "/app/hello golang.org/x/crypto [CVE-2023-48795 CVE-2024-45337]: module proxy: fetching {closed}/golang.org/x/crypto/@v/list: "
    );
    assert!(
        skips.len() == 1 && skips[0].starts_with(&expected),
        "{skips:#?}"
    );
}

#[test]
fn replaced_modules_and_fixed_installs() {
    let setup = setup();
    let findings = vec![
        finding(
            "src/service/go.mod",
            "gomod",
            "golang.org/x/text",
            "v0.7.0",
            "CVE-2022-32149",
            "0.3.8",
        ),
        finding(
            "app/hello",
            "gobinary",
            "golang.org/x/crypto",
            "v0.4.0",
            "CVE-2022-27191",
            "0.0.0-20220314234659-1baeb1ce4c0b",
        ),
    ];
    let (_, plan) = plan_with(&setup, &findings, PatchLevel::Major, None);
    let (updates, skips) = summary(&plan);
    // v0.4.0 is past the pseudo-version that fixed it: nothing to do, nothing to skip.
    assert!(updates.is_empty(), "{updates:?}");
    assert_eq!(
        skips,
        [
            "/src/service golang.org/x/text [CVE-2022-32149]: golang.org/x/text is replaced by ../text (a replace directive); a new requirement would not change what is built"
        ]
    );
}

#[test]
fn standard_library_fixes_follow_the_toolchain_level() {
    let setup = setup();
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    let stdlib = version_of(by_id(&targets, "/app/hello"), "stdlib").to_string();
    let findings = vec![
        finding(
            "app/hello",
            "gobinary",
            "stdlib",
            &stdlib,
            "CVE-2024-34156",
            "1.22.7, 1.23.1",
        ),
        finding(
            "app/hello",
            "gobinary",
            "stdlib",
            &stdlib,
            "CVE-2023-45288",
            "1.21.9, 1.22.2",
        ),
    ];

    let (_, plan) = plan_with(&setup, &findings, PatchLevel::Major, None);
    let (updates, skips) = summary(&plan);
    assert!(updates.is_empty());
    assert_eq!(
        skips,
        [
            "/app/hello stdlib [CVE-2024-34156 CVE-2023-45288]: a standard-library fix needs a newer Go toolchain; toolchains change only with --toolchain-patch-level"
        ]
    );

    // Debian's 1.21 is 1.21.13: CVE-2023-45288 is fixed already; the other needs Go 1.22.
    let (_, plan) = plan_with(
        &setup,
        &findings,
        PatchLevel::Patch,
        Some(PatchLevel::Patch),
    );
    let (updates, skips) = summary(&plan);
    assert!(updates.is_empty(), "{updates:?}");
    assert_eq!(
        skips,
        [
            "/app/hello stdlib [CVE-2024-34156]: fix needs go1.22.12 (a minor toolchain bump); --toolchain-patch-level is patch"
        ]
    );

    // Minor: the newest Go 1 release for linux-amd64 (not the darwin build, not the rc).
    let (targets, plan) = plan_with(
        &setup,
        &findings,
        PatchLevel::Patch,
        Some(PatchLevel::Minor),
    );
    let (updates, skips) = summary(&plan);
    assert_eq!(
        updates,
        [format!(
            "/app/hello stdlib {stdlib} -> v1.23.4 [CVE-2024-34156]"
        )]
    );
    assert!(skips.is_empty(), "{skips:?}");

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
    let [Step::Tooling(step)] = steps.as_slice() else {
        panic!("{steps:#?}")
    };
    assert!(env(step, "COPA_GOTOOLCHAIN") == "go1.23.4");
    assert_eq!(env(step, "COPA_GET"), "");
    assert_eq!(step.default_image, "golang:1.23");
}

fn env<'a>(step: &'a copa_host::plugin::ToolingStep, key: &str) -> &'a str {
    step.env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {:?}", step.env))
}

#[test]
fn emits_a_rebuild_with_the_original_flags_and_a_module_update() {
    let setup = setup();
    let mut findings = crypto_findings("app/hello", "gobinary");
    findings.extend(crypto_findings("src/service/go.mod", "gomod"));
    let (targets, plan) = plan_with(&setup, &findings, PatchLevel::Minor, None);
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
    let [Step::Tooling(rebuild), Step::Tooling(module)] = steps.as_slice() else {
        panic!("{steps:#?}")
    };

    let go = by_id(&targets, "/app/hello")
        .runtime_version
        .clone()
        .unwrap();
    assert_eq!(rebuild.tooling, "go");
    assert_eq!(rebuild.argv[..2], ["sh", "-c"]);
    assert_eq!(rebuild.index_ecosystem.as_deref(), Some("go"));
    assert_eq!(env(rebuild, "COPA_MODULE"), "example.com/copa/hello");
    // No repository is known for example.com: the module proxy's copy, and a note that the
    // rebuilt binary loses its VCS information.
    assert_eq!(env(rebuild, "COPA_SOURCE"), "proxy");
    assert_eq!(env(rebuild, "COPA_REF"), revision());
    let [note] = plan.updates[0].notes.as_slice() else {
        panic!("{plan:#?}")
    };
    assert!(
        note.contains("carries no vcs.revision")
            && note.contains("--go-source example.com/copa/hello=GIT-URL"),
        "{note}"
    );
    assert!(plan.updates[1].notes.is_empty(), "{plan:#?}");
    assert_eq!(env(rebuild, "COPA_PACKAGE"), "example.com/copa/hello");
    assert_eq!(env(rebuild, "COPA_GET"), "golang.org/x/crypto@v0.31.0");
    // Its only other dependency versions to keep: none (x/crypto is the one updated).
    assert_eq!(env(rebuild, "COPA_KEEP"), "");
    // The original toolchain is kept.
    assert_eq!(env(rebuild, "COPA_GOTOOLCHAIN"), go);
    assert_eq!(env(rebuild, "COPA_LDFLAGS"), "-s -w -X main.version=1.0.0");
    assert_eq!(env(rebuild, "COPA_TAGS"), "netgo");
    assert_eq!(env(rebuild, "CGO_ENABLED"), "0");
    assert_eq!(env(rebuild, "GOOS"), "linux");
    assert_eq!(env(rebuild, "GOARCH"), "amd64");
    assert_eq!(env(rebuild, "GOAMD64"), "v1");
    // The script is fixed text: nothing from the image is spliced into it.
    assert!(!rebuild.argv[2].contains("example.com") && !rebuild.argv[2].contains("crypto"));
    assert_eq!(rebuild.outputs.len(), 1);
    assert_eq!(rebuild.outputs[0].to, "/app/hello");
    assert_eq!(rebuild.outputs[0].mode, Some(0o750));
    assert_eq!(
        (rebuild.outputs[0].uid, rebuild.outputs[0].gid),
        (1000, 1000)
    );
    assert_eq!(rebuild.updates, [0]);

    // The module is in the workspace of /src/go.work, which comes along and back.
    assert_eq!(module.copy_in, ["/src/service", "/src/go.work"]);
    assert_eq!(env(module, "COPA_DIR"), "/src/service");
    assert_eq!(env(module, "COPA_WORK"), "/src");
    assert_eq!(env(module, "COPA_GET"), "golang.org/x/crypto@v0.31.0");
    let outputs: Vec<&str> = module.outputs.iter().map(|o| o.to.as_str()).collect();
    assert_eq!(
        outputs,
        [
            "/src/service/go.mod",
            "/src/service/go.sum",
            "/src/service/vendor",
            "/src/go.work"
        ]
    );
    assert_eq!(module.outputs[3].mode, Some(0o644));
    assert!(
        module.description.contains("still hold the old code"),
        "{}",
        module.description
    );
    assert_eq!(module.updates, [1]);
}

/// The policy of a run at minor level with `--go-source`s.
fn with_sources(setup: &PluginSetup, sources: &[&str]) -> copa_host::plugin::Policy {
    let mut policy = setup.policy(PatchLevel::Minor, false);
    policy.options = sources
        .iter()
        .map(|s| ("source".to_string(), s.to_string()))
        .collect();
    policy
}

#[test]
fn go_sources_name_the_repository_and_the_revision_of_a_rebuild() {
    let setup = setup();
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    let mut findings = crypto_findings("app/hello", "gobinary");
    findings.extend(crypto_findings("usr/local/bin/hello-novcs", "gobinary"));
    let emit = |policy: &copa_host::plugin::Policy| {
        let plan = setup
            .host
            .plan(&setup.plugin, &setup.caps, &targets, &findings, policy)
            .unwrap();
        let steps = setup
            .host
            .emit_commands(&setup.plugin, &setup.caps, &targets, &plan, policy)
            .unwrap();
        (plan, steps)
    };

    // A repository without a ref: the binary's own revision, checked out in git; the binary
    // without VCS information still has no revision to build.
    let (plan, steps) = emit(&with_sources(
        &setup,
        &["example.com/copa/hello=https://git.example.com/hello.git"],
    ));
    let [Step::Tooling(rebuild)] = steps.as_slice() else {
        panic!("{steps:#?}")
    };
    assert_eq!(env(rebuild, "COPA_SOURCE"), "git");
    assert_eq!(
        env(rebuild, "COPA_GIT_URL"),
        "https://git.example.com/hello.git"
    );
    assert_eq!(env(rebuild, "COPA_GIT_REF"), revision());
    assert_eq!(env(rebuild, "COPA_GIT_SUBDIR"), "");
    assert!(rebuild.copy_in.is_empty());
    assert!(
        rebuild
            .description
            .contains("from https://git.example.com/hello.git at "),
        "{}",
        rebuild.description
    );
    assert!(plan.updates[0].notes.is_empty(), "{plan:#?}");
    let novcs: Vec<&str> = plan
        .skips
        .iter()
        .filter(|s| s.target_id == "/usr/local/bin/hello-novcs")
        .map(|s| s.reason.as_str())
        .collect();
    assert!(
        novcs.len() == 1 && novcs[0].contains("built without VCS information"),
        "{novcs:#?}"
    );

    // With a ref (a path the image holds comes along into the container), the binary without
    // VCS information is rebuilt at it; the later --go-source of a module wins.
    let (plan, steps) = emit(&with_sources(
        &setup,
        &[
            "example.com/copa/hello=https://git.example.com/hello.git",
            "example.com/copa/hello=/src/service@release-1",
        ],
    ));
    assert!(plan.skips.is_empty(), "{plan:#?}");
    let [Step::Tooling(hello), Step::Tooling(novcs)] = steps.as_slice() else {
        panic!("{steps:#?}")
    };
    for step in [hello, novcs] {
        assert_eq!(env(step, "COPA_SOURCE"), "git");
        assert_eq!(env(step, "COPA_GIT_URL"), "/src/service");
        assert_eq!(env(step, "COPA_GIT_REF"), "release-1");
        assert_eq!(step.copy_in, ["/src/service"]);
    }
    assert_eq!(novcs.outputs[0].to, "/usr/local/bin/hello-novcs");

    // A source that is not one fails the plan with the reason.
    let error = setup
        .host
        .plan(
            &setup.plugin,
            &setup.caps,
            &targets,
            &findings,
            &with_sources(
                &setup,
                &["example.com/copa/hello=https://git.example.com/h.git@--force"],
            ),
        )
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a git revision"), "{error}");
}

/// A file module proxy holding `example.com/dep` v1.0.0 (go 1.21) and v1.1.0 (go 1.22).
fn dep_proxy(dir: &std::path::Path) {
    let versions = dir.join("example.com/dep/@v");
    std::fs::create_dir_all(&versions).unwrap();
    std::fs::write(versions.join("list"), "v1.0.0\nv1.1.0\n").unwrap();
    for (version, go) in [("v1.0.0", "1.21"), ("v1.1.0", "1.22")] {
        let go_mod = format!("module example.com/dep\n\ngo {go}\n");
        std::fs::write(versions.join(format!("{version}.mod")), &go_mod).unwrap();
        std::fs::write(
            versions.join(format!("{version}.info")),
            format!("{{\"Version\":\"{version}\",\"Time\":\"2024-01-01T00:00:00Z\"}}"),
        )
        .unwrap();
        let mut zip = zip::ZipWriter::new(
            std::fs::File::create(versions.join(format!("{version}.zip"))).unwrap(),
        );
        let options = zip::write::SimpleFileOptions::default();
        for (name, text) in [("go.mod", go_mod.as_str()), ("dep.go", "package dep\n")] {
            zip.start_file(format!("example.com/dep@{version}/{name}"), options)
                .unwrap();
            std::io::Write::write_all(&mut zip, text.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }
}

#[test]
fn a_module_update_keeps_its_go_work_workspace_valid() {
    // The emitted module step, run for real with Debian's Go 1.22 on a copy of the workspace:
    // the update needs Go 1.22, so go.work's go line must follow, or the go command refuses the
    // workspace ("listed in go.work file requires go >= 1.22").
    let setup = setup();
    let findings = vec![finding(
        "src/service/go.mod",
        "gomod",
        "golang.org/x/crypto",
        "v0.4.0",
        "CVE-2023-48795",
        "0.17.0",
    )];
    let (targets, plan) = plan_with(&setup, &findings, PatchLevel::Minor, None);
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
    let [Step::Tooling(step)] = steps.as_slice() else {
        panic!("{steps:#?}")
    };

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    dep_proxy(&root.join("proxy"));
    let work = root.join("src");
    std::fs::create_dir_all(work.join("service")).unwrap();
    std::fs::write(work.join("go.work"), "go 1.21\n\nuse ./service\n").unwrap();
    std::fs::write(
        work.join("service/go.mod"),
        "module example.com/copa/service\n\ngo 1.21\n\nrequire example.com/dep v1.0.0\n",
    )
    .unwrap();
    let go = "/usr/lib/go-1.22/bin";
    let mut command = Command::new("sh");
    command.args(&step.argv[1..]).env_clear();
    for (key, value) in &step.env {
        command.env(key, value);
    }
    // The image's paths and the planned version are the test's own here.
    let output = command
        .env("COPA_DIR", work.join("service"))
        .env("COPA_WORK", &work)
        .env("COPA_GET", "example.com/dep@v1.1.0")
        .env("PATH", format!("{go}:/usr/bin:/bin"))
        .env("HOME", root)
        .env("GOPATH", root.join("gopath"))
        .env("GOCACHE", root.join("gocache"))
        .env(
            "GOPROXY",
            format!("file://{}", root.join("proxy").display()),
        )
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let go_mod = std::fs::read_to_string(work.join("service/go.mod")).unwrap();
    assert!(
        go_mod.contains("go 1.22") && go_mod.contains("example.com/dep v1.1.0"),
        "{go_mod}"
    );
    let go_work = std::fs::read_to_string(work.join("go.work")).unwrap();
    assert!(go_work.starts_with("go 1.22\n"), "{go_work}");
    assert!(go_work.contains("use ./service"), "{go_work}");
    // The workspace is valid again, and builds with the new version.
    let list = Command::new(format!("{go}/go"))
        .args(["list", "-m", "example.com/dep"])
        .current_dir(&work)
        .env("HOME", root)
        .env("GOPATH", root.join("gopath"))
        .env("GOCACHE", root.join("gocache"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).trim(),
        "example.com/dep v1.1.0",
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
}
