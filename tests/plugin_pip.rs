//! The real pip plugin (.wasm) through the real host, against fixture filesystems and a package
//! index on 127.0.0.1; and the sandbox limits, against a plugin that misbehaves on purpose.

mod common;

use std::sync::Arc;

use common::{Node, layer_tar, python_image_tar, serve_index, wheels};
use copa_host::image::{ImageView, LayerTar};
use copa_host::index::{IndexSettings, PackageIndex};
use copa_host::plugin::{
    Capabilities, Finding, Origin, PatchLevel, Plan, Plugin, PluginHost, Policy, Step, Target,
};

const SYSTEM: &str = "/usr/local/lib/python3.11/dist-packages";
const VENV: &str = "/app/venv";

fn view(tar: Vec<u8>) -> Arc<ImageView> {
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, &tar).unwrap();
    Arc::new(ImageView::new(vec![LayerTar::whole(file).unwrap()]).unwrap())
}

fn index() -> common::Index {
    let mut urllib3 = wheels(
        "urllib3",
        &[
            "1.26.4", "1.26.5", "1.26.17", "1.26.18", "1.26.19", "2.0.6", "2.0.7", "2.2.2",
        ],
    );
    urllib3.push(("urllib3-2.0.0-py3-none-any.whl".into(), "data-yanked=\"\""));
    urllib3.push((
        "urllib3-2.5.0-py3-none-any.whl".into(),
        "data-requires-python=\"&gt;=3.12\"",
    ));
    urllib3.push(("urllib3-2.6.0rc1-py3-none-any.whl".into(), ""));
    let mut requests = wheels("requests", &["2.25.1", "2.31.0", "2.32.2", "2.32.3"]);
    requests.push((
        "requests-2.32.0.tar.gz".into(),
        "data-yanked=\"broke proxies\"",
    ));
    serve_index(vec![
        ("urllib3", urllib3),
        ("requests", requests),
        (
            "certifi",
            wheels(
                "certifi",
                &["2020.12.5", "2022.12.7", "2024.7.4", "2025.1.31"],
            ),
        ),
        (
            "jinja2",
            wheels("Jinja2", &["2.11.2", "2.11.3", "3.1.3", "3.1.4"]),
        ),
        ("idna", wheels("idna", &["2.10", "3.7"])),
    ])
}

struct Setup {
    host: PluginHost,
    pip: Plugin,
    caps: Arc<Capabilities>,
    /// `--index pypi=URL` of the test's index.
    indexes: Vec<(String, String)>,
    _index: common::Index,
}

impl Setup {
    fn policy(&self, level: PatchLevel) -> Policy {
        common::policy_with_indexes(level, &self.pip, &self.indexes)
    }
}

fn setup(tar: Vec<u8>) -> Setup {
    let index = index();
    let host = PluginHost::new(Default::default(), None).unwrap();
    let pip = host
        .load_all(&[])
        .unwrap()
        .into_iter()
        .find(|p| p.info.name == "pip")
        .expect("pip is built in");
    let indexes = vec![("pypi".to_string(), index.url.clone())];
    let caps = Arc::new(Capabilities {
        image: view(tar),
        index: Arc::new(PackageIndex::new(IndexSettings::default()).unwrap()),
        http: Some(common::granted_http(&pip, &indexes)),
    });
    Setup {
        host,
        pip,
        caps,
        indexes,
        _index: index,
    }
}

fn finding(site: &str, package: &str, installed: &str, id: &str, fixed: &str) -> Finding {
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
        pkg_path: Some(format!("{site}/{package}-{installed}.dist-info/METADATA")),
        report_target: "Python".into(),
        report_type: "python-pkg".into(),
        purl: Some(format!("pkg:pypi/{}@{installed}", package.to_lowercase())),
        severity: "HIGH".into(),
        status: "fixed".into(),
    }
}

fn site_of(target: &str) -> String {
    if target == VENV {
        format!("{VENV}/lib/python3.11/site-packages")
    } else {
        target.to_string()
    }
}

fn findings() -> Vec<Finding> {
    let mut all = Vec::new();
    for target in [SYSTEM, VENV] {
        let site = site_of(target);
        all.push(finding(
            &site,
            "urllib3",
            "1.26.4",
            "CVE-2021-33503",
            "1.26.5",
        ));
        all.push(finding(
            &site,
            "urllib3",
            "1.26.4",
            "CVE-2023-43804",
            "1.26.17, 2.0.6",
        ));
        all.push(finding(
            &site,
            "urllib3",
            "1.26.4",
            "CVE-2024-37891",
            "1.26.19, 2.2.2",
        ));
        all.push(finding(
            &site,
            "urllib3",
            "1.26.4",
            "CVE-2025-50181",
            "2.5.0",
        ));
    }
    let site = site_of(SYSTEM);
    all.push(finding(
        &site,
        "requests",
        "2.25.1",
        "CVE-2023-32681",
        "2.31.0",
    ));
    all.push(finding(
        &site,
        "requests",
        "2.25.1",
        "CVE-2024-35195",
        "2.32.0",
    ));
    all.push(finding(
        &site,
        "certifi",
        "2020.12.5",
        "CVE-2022-23491",
        "2022.12.7",
    ));
    all.push(finding(
        &site,
        "Jinja2",
        "2.11.2",
        "CVE-2024-22195",
        "3.1.3",
    ));
    all.push(finding(&site, "idna", "2.10", "CVE-2024-3651", ""));
    all.push(finding(
        "/opt/elsewhere/site-packages",
        "urllib3",
        "1.26.4",
        "CVE-2021-33503",
        "1.26.5",
    ));
    all
}

fn plan(setup: &Setup, level: PatchLevel) -> (Vec<Target>, Plan) {
    let targets = setup.host.detect(&setup.pip, &setup.caps).unwrap();
    let plan = setup
        .host
        .plan(
            &setup.pip,
            &setup.caps,
            &targets,
            &findings(),
            &setup.policy(level),
        )
        .unwrap();
    (targets, plan)
}

fn update(plan: &Plan, target: &str, package: &str) -> Option<(String, Vec<String>)> {
    plan.updates
        .iter()
        .find(|u| u.target_id == target && u.package == package)
        .map(|u| (u.to_version.clone(), u.fixes.clone()))
}

fn skip_reason(plan: &Plan, target: &str, vulnerability: &str) -> String {
    plan.skips
        .iter()
        .find(|s| s.target_id == target && s.vulnerabilities.iter().any(|v| v == vulnerability))
        .map(|s| s.reason.clone())
        .unwrap_or_else(|| panic!("{vulnerability} in {target} is not skipped: {plan:#?}"))
}

#[test]
fn detects_system_site_packages_and_virtual_environments() {
    let setup = setup(python_image_tar());
    let targets = setup.host.detect(&setup.pip, &setup.caps).unwrap();
    let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, vec![VENV, SYSTEM, "/usr/lib/python3/dist-packages"]);
    let venv = &targets[0];
    assert_eq!(venv.kind, "venv");
    assert_eq!(venv.runtime_version.as_deref(), Some("3.11.2"));
    assert!(venv.unpatchable_reason.is_none());
    assert!(
        venv.packages
            .iter()
            .any(|p| p.name == "urllib3" && p.version == "1.26.4")
    );
    let system = &targets[1];
    assert_eq!(system.runtime_version.as_deref(), Some("3.11"));
    assert!(
        system.unpatchable_reason.is_none(),
        "Debian's pip in /usr/lib/python3/dist-packages serves python3.11"
    );
    assert_eq!(system.packages.len(), 5);
}

#[test]
fn chooses_versions_by_the_rule_at_patch_level() {
    let setup = setup(python_image_tar());
    let (_, plan) = plan(&setup, PatchLevel::Patch);
    for target in [SYSTEM, VENV] {
        // 1.26.19 fixes three: two on its own line, one because it is past the only fix.
        assert_eq!(
            update(&plan, target, "urllib3"),
            Some((
                "1.26.19".into(),
                vec![
                    "CVE-2021-33503".into(),
                    "CVE-2023-43804".into(),
                    "CVE-2024-37891".into()
                ]
            ))
        );
        assert_eq!(
            skip_reason(&plan, target, "CVE-2025-50181"),
            "fixed version 2.5.0 requires Python >=3.12, the environment has 3.11.2"
                .replace("3.11.2", if target == VENV { "3.11.2" } else { "3.11" })
        );
    }
    assert_eq!(
        skip_reason(&plan, SYSTEM, "CVE-2023-32681"),
        "fix needs a minor bump to 2.31.0; --library-patch-level is patch"
    );
    // 2.32.0 is yanked: the lowest usable release on its line stands in.
    assert_eq!(
        skip_reason(&plan, SYSTEM, "CVE-2024-35195"),
        "fix needs a minor bump to 2.32.2; --library-patch-level is patch"
    );
    // certifi goes to the newest release at any level.
    assert_eq!(
        update(&plan, SYSTEM, "certifi"),
        Some(("2025.1.31".into(), vec!["CVE-2022-23491".into()]))
    );
    assert_eq!(
        skip_reason(&plan, SYSTEM, "CVE-2024-22195"),
        "fix needs a major bump to 3.1.3; --library-patch-level is patch"
    );
    assert_eq!(
        skip_reason(&plan, SYSTEM, "CVE-2024-3651"),
        "no fixed version published"
    );
    assert_eq!(
        skip_reason(
            &plan,
            "/opt/elsewhere/site-packages/urllib3-1.26.4.dist-info/METADATA",
            "CVE-2021-33503"
        ),
        "no Python environment in the image holds this package"
    );
    assert_eq!(plan.updates.len(), 3);
}

#[test]
fn minor_and_major_levels_allow_bigger_jumps() {
    let setup = setup(python_image_tar());
    let (_, minor) = plan(&setup, PatchLevel::Minor);
    assert_eq!(
        update(&minor, SYSTEM, "requests"),
        Some((
            "2.32.2".into(),
            vec!["CVE-2023-32681".into(), "CVE-2024-35195".into()]
        ))
    );
    assert_eq!(
        update(&minor, SYSTEM, "urllib3").unwrap().0,
        "1.26.19",
        "a tie goes to the smaller bump"
    );
    let (_, major) = plan(&setup, PatchLevel::Major);
    assert_eq!(
        update(&major, SYSTEM, "Jinja2"),
        Some(("3.1.3".into(), vec!["CVE-2024-22195".into()]))
    );
}

#[test]
fn emits_one_pip_install_per_environment_with_its_own_interpreter() {
    let setup = setup(python_image_tar());
    let (targets, plan) = plan(&setup, PatchLevel::Patch);
    let steps = setup
        .host
        .emit_commands(
            &setup.pip,
            &setup.caps,
            &targets,
            &plan,
            &setup.policy(PatchLevel::Patch),
        )
        .unwrap();
    assert_eq!(steps.len(), 2);
    let runs: Vec<_> = steps
        .iter()
        .map(|step| match step {
            Step::Run(r) => r,
            other => panic!("expected run steps only: {other:?}"),
        })
        .collect();
    let venv = runs.iter().find(|r| r.description.contains(VENV)).unwrap();
    assert_eq!(
        &venv.argv[..4],
        ["/app/venv/bin/python", "-m", "pip", "install"]
    );
    assert!(venv.argv.contains(&"--no-cache-dir".to_string()));
    assert!(venv.argv.contains(&"urllib3==1.26.19".to_string()));
    assert!(
        !venv
            .env
            .iter()
            .any(|(k, _)| k == "PIP_BREAK_SYSTEM_PACKAGES")
    );
    let system = runs
        .iter()
        .find(|r| r.description.contains(SYSTEM))
        .unwrap();
    assert_eq!(system.argv[0], "/usr/bin/python3.11");
    assert!(system.argv.contains(&"certifi==2025.1.31".to_string()));
    assert!(
        system
            .env
            .iter()
            .any(|(k, v)| k == "PIP_BREAK_SYSTEM_PACKAGES" && v == "1")
    );
    assert_eq!(system.index_ecosystem.as_deref(), Some("pypi"));
    // pip installs from the index the plan read.
    for run in &runs {
        let index_url = run.env.iter().find(|(k, _)| k == "PIP_INDEX_URL");
        assert_eq!(index_url.map(|(_, v)| v), Some(&setup.indexes[0].1));
        assert!(!run.env.iter().any(|(k, _)| k == "PIP_EXTRA_INDEX_URL"));
    }
    assert_eq!(system.user, None, "root's site-packages: pip runs as root");
    for run in runs {
        for &u in &run.updates {
            assert!(
                run.description
                    .contains(&plan.updates[u as usize].target_id)
            );
        }
    }
}

#[test]
fn environments_without_pip_are_skipped_with_the_reason() {
    let tar = layer_tar(&[
        Node::File("usr/bin/python3.11", "ELF"),
        Node::File(
            "usr/local/lib/python3.11/site-packages/urllib3-1.26.4.dist-info/METADATA",
            &common::metadata("urllib3", "1.26.4"),
        ),
    ]);
    let setup = setup(tar);
    let targets = setup.host.detect(&setup.pip, &setup.caps).unwrap();
    let findings = vec![finding(
        "/usr/local/lib/python3.11/site-packages",
        "urllib3",
        "1.26.4",
        "CVE-2021-33503",
        "1.26.5",
    )];
    let plan = setup
        .host
        .plan(
            &setup.pip,
            &setup.caps,
            &targets,
            &findings,
            &setup.policy(PatchLevel::Patch),
        )
        .unwrap();
    assert!(plan.updates.is_empty());
    assert_eq!(
        skip_reason(
            &plan,
            "/usr/local/lib/python3.11/site-packages",
            "CVE-2021-33503"
        ),
        "python3.11 has no pip (a tooling-image path is not supported yet)"
    );
}

#[test]
fn an_installed_version_that_already_has_the_fix_needs_nothing() {
    let tar = layer_tar(&[
        Node::File("usr/bin/python3.11", "ELF"),
        Node::File("usr/lib/python3/dist-packages/pip/__init__.py", ""),
        Node::File(
            "usr/local/lib/python3.11/dist-packages/urllib3-1.26.19.dist-info/METADATA",
            &common::metadata("urllib3", "1.26.19"),
        ),
    ]);
    let setup = setup(tar);
    let targets = setup.host.detect(&setup.pip, &setup.caps).unwrap();
    // The report predates the patch: it names the old version's path.
    let mut f = finding(SYSTEM, "urllib3", "1.26.4", "CVE-2021-33503", "1.26.5");
    f.pkg_path = None;
    f.installed_version = "1.26.19".into();
    let plan = setup
        .host
        .plan(
            &setup.pip,
            &setup.caps,
            &targets,
            &[f],
            &setup.policy(PatchLevel::Patch),
        )
        .unwrap();
    assert!(
        plan.updates.is_empty() && plan.skips.is_empty(),
        "{plan:#?}"
    );
}

#[test]
fn runaway_plugins_are_stopped_by_name_and_the_host_survives() {
    let setup = setup(python_image_tar());
    let wasm = std::fs::read(env!("COPA_TEST_PLUGIN_RUNAWAY")).unwrap();
    let limits = copa_host::plugin::Limits {
        memory_bytes: 64 << 20,
        fuel: 2_000_000_000,
        ..Default::default()
    };
    let host = PluginHost::new(limits, None).unwrap();
    let runaway = host
        .load(&wasm, Origin::File("runaway.wasm".into()))
        .unwrap();
    assert_eq!(runaway.info.name, "runaway");

    let looped = host.detect(&runaway, &setup.caps).unwrap_err().to_string();
    assert_eq!(
        looped,
        "plugin runaway: detect failed: exceeded its instruction budget (endless loop?)"
    );
    let bombed = host
        .plan(
            &runaway,
            &setup.caps,
            &[],
            &[],
            &setup.policy(PatchLevel::Patch),
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        bombed,
        "plugin runaway: plan failed: exceeded its memory limit"
    );
    let panicked = host
        .emit_commands(
            &runaway,
            &setup.caps,
            &[],
            &Plan {
                updates: vec![],
                skips: vec![],
            },
            &setup.policy(PatchLevel::Patch),
        )
        .unwrap_err()
        .to_string();
    assert!(
        panicked.starts_with("plugin runaway: emit-commands failed: "),
        "{panicked}"
    );
    assert!(panicked.contains("broken on purpose"), "{panicked}");
    assert!(!looped.contains('\n') && !bombed.contains('\n') && !panicked.contains('\n'));

    // The same host goes on serving other plugins.
    let pip = host
        .load_all(&[])
        .unwrap()
        .into_iter()
        .find(|p| p.info.name == "pip")
        .unwrap();
    assert_eq!(host.detect(&pip, &setup.caps).unwrap().len(), 3);
}

#[test]
fn a_call_is_stopped_at_its_wall_clock_limit_whatever_its_fuel() {
    let setup = setup(python_image_tar());
    let wasm = std::fs::read(env!("COPA_TEST_PLUGIN_RUNAWAY")).unwrap();
    // Fuel that never runs out: only the clock can stop the endless loop of `detect`.
    let limits = copa_host::plugin::Limits {
        fuel: u64::MAX,
        wall_clock: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let host = PluginHost::new(limits, None).unwrap();
    let runaway = host
        .load(&wasm, Origin::File("runaway.wasm".into()))
        .unwrap();
    let stopped = host.detect(&runaway, &setup.caps).unwrap_err().to_string();
    assert_eq!(
        stopped,
        "plugin runaway: detect failed: ran longer than its time limit (1 s)"
    );
}

#[test]
fn a_cache_others_could_write_is_emptied_and_made_private_before_use() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let planted = cache.path().join("planted.cwasm");
    std::fs::write(&planted, b"anything").unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let host = PluginHost::new(Default::default(), Some(cache.path().to_path_buf())).unwrap();
    assert!(
        !planted.exists(),
        "what others could have put there is gone"
    );
    let mode = std::fs::metadata(cache.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(!host.load_all(&[]).unwrap().is_empty());
    assert!(
        std::fs::read_dir(cache.path()).unwrap().count() > 0,
        "the private cache is used again"
    );
}

#[test]
fn a_plugin_dir_replaces_a_builtin_of_the_same_name_and_compiled_plugins_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(Default::default(), Some(cache.path().to_path_buf())).unwrap();
    let builtin = host.load_all(&[]).unwrap();
    let builtin_names: Vec<&str> = builtin.iter().map(|p| p.info.name.as_str()).collect();
    let expected: Vec<&str> = copa_host::plugin::BUILTIN_PLUGINS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(builtin_names, expected);
    assert!(builtin_names.starts_with(&["pip", "apt", "apk", "rpm"]));
    assert!(
        builtin
            .iter()
            .all(|p| p.origin == Origin::Builtin && p.contract == "0.5.0")
    );
    // pip declares Python's names (PEP 503): case and runs of "-_." do not matter.
    assert!(
        builtin[0]
            .package_names
            .same("Typing_Extensions", "typing-extensions")
    );
    assert!(builtin[1].package_names.same("libssl3", "LibSSL3"));
    assert!(!builtin[1].package_names.same("python3-a_b", "python3-a-b"));
    let cached: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
    assert_eq!(
        cached.len(),
        expected.len(),
        "one compiled plugin per built-in in the cache"
    );

    // A vendor's build of "pip" (here: the built-in's own component, from a file) replaces the
    // built-in; other plugins are added.
    let (_, pip_wasm) = copa_host::plugin::BUILTIN_PLUGINS[0];
    std::fs::write(dir.path().join("pip.wasm"), pip_wasm).unwrap();
    std::fs::write(
        dir.path().join("runaway.wasm"),
        std::fs::read(env!("COPA_TEST_PLUGIN_RUNAWAY")).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a plugin").unwrap();
    let plugins = host.load_all(&[dir.path().to_path_buf()]).unwrap();
    let names: Vec<(&str, String)> = plugins
        .iter()
        .map(|p| (p.info.name.as_str(), p.origin.to_string()))
        .collect();
    let file = |name: &str| dir.path().join(name).display().to_string();
    // The other built-ins keep their place; the replacement and the new plugin come after.
    let mut wanted: Vec<(&str, String)> = expected[1..]
        .iter()
        .map(|name| (*name, Origin::Builtin.to_string()))
        .collect();
    wanted.push(("pip", file("pip.wasm")));
    wanted.push(("runaway", file("runaway.wasm")));
    assert_eq!(names, wanted);
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        expected.len() + 1,
        "same bytes, same cache entry"
    );

    std::fs::write(dir.path().join("broken.wasm"), b"\0asm garbage").unwrap();
    let error = host
        .load_all(&[dir.path().to_path_buf()])
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("broken.wasm") && error.contains("not a loadable component"),
        "{error}"
    );
}
