//! The contract's versions: plugins built against 0.1, 0.2, 0.3 and 0.4 (without the SDK) load
//! next to the built-ins, and every value crosses the conversion to and from the newest contract
//! intact.

mod common;

use common::{Node, layer_tar, serve_index, serve_static_with, wheels};
use copa_host::index::{IndexSettings, PackageIndex};
use copa_host::plugin::{
    Capabilities, Finding, IndexSpec, NameRule, OptionKind, OptionSpec, Origin, PatchLevel, Plugin,
    PluginHost, Step, grants,
};
use std::sync::Arc;

/// The capabilities of a call on an image of one layer, with the indexes of `settings`.
fn capabilities(layer: Vec<u8>, settings: IndexSettings) -> Arc<Capabilities> {
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, &layer).unwrap();
    Arc::new(Capabilities {
        image: Arc::new(
            copa_host::image::ImageView::new(vec![
                copa_host::image::LayerTar::whole(file).unwrap(),
            ])
            .unwrap(),
        ),
        index: Arc::new(PackageIndex::new(settings).unwrap()),
        http: None,
    })
}

fn finding(package: &str, id: &str) -> Finding {
    Finding {
        vulnerability_id: id.into(),
        package_name: package.into(),
        installed_version: "1.15.0".into(),
        fixed_versions: vec!["1.16.0".into()],
        pkg_path: None,
        report_target: "legacy".into(),
        report_type: "legacy".into(),
        purl: None,
        severity: "HIGH".into(),
        status: "fixed".into(),
    }
}

#[test]
fn a_plugin_built_against_0_1_is_loaded_and_converted() {
    let index = serve_index(vec![
        ("six", wheels("six", &["1.15.0", "1.16.0"])),
        ("idna", wheels("idna", &["3.7"])),
    ]);
    let image = layer_tar(&[
        Node::Dir("legacy"),
        Node::File("legacy/installed", "six 1.15.0\nidna 3.7\n"),
    ]);
    let caps = capabilities(
        image,
        IndexSettings {
            pypi_url: index.url.clone(),
            ..Default::default()
        },
    );

    let host = PluginHost::new(Default::default(), None).unwrap();
    let wasm = std::fs::read(env!("COPA_TEST_PLUGIN_LEGACY")).unwrap();
    let legacy = host
        .load(&wasm, Origin::File("legacy.wasm".into()))
        .unwrap();
    assert_eq!(legacy.contract, "0.1.0");
    assert_eq!(legacy.info.name, "legacy");
    assert_eq!(legacy.info.report_types, ["legacy"]);
    let builtins = host.load_all(&[]).unwrap();
    assert!(
        builtins.iter().all(|p| p.contract == "0.5.0"),
        "built-ins speak 0.5"
    );

    let targets = host.detect(&legacy, &caps).unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].kind, "legacy-db");
    assert_eq!(targets[0].attributes, [("format".into(), "lines".into())]);
    let names: Vec<(&str, &str)> = targets[0]
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(names, [("six", "1.15.0"), ("idna", "3.7")]);

    // Findings reach the 0.1 plugin, and the 0.1 package-index answers it.
    let plan = host
        .plan(
            &legacy,
            &caps,
            &targets,
            &[finding("six", "CVE-1")],
            &common::policy(PatchLevel::Minor, false),
        )
        .unwrap();
    assert_eq!(plan.updates.len(), 1, "{plan:?}");
    let update = &plan.updates[0];
    assert_eq!(
        (update.package.as_str(), update.from_version.as_str()),
        ("six", "1.15.0")
    );
    assert_eq!(update.to_version, "1.16.0");
    assert_eq!(update.fixes, ["CVE-1"]);

    // `update-all` reaches a 0.1 plugin as 0.1 said it: no findings.
    let everything = host
        .plan(
            &legacy,
            &caps,
            &targets,
            &[],
            &common::policy(PatchLevel::Patch, true),
        )
        .unwrap();
    assert_eq!(everything.updates.len(), 1);
    assert_eq!(everything.skips.len(), 1);
    assert_eq!(everything.skips[0].reason, "no newer version");

    let steps = host
        .emit_commands(&legacy, &caps, &targets, &plan, &common::default_policy())
        .unwrap();
    let [Step::Run(run)] = steps.as_slice() else {
        panic!("one run step expected: {steps:?}");
    };
    assert_eq!(run.argv, ["legacy-install", "six=1.16.0"]);
    assert_eq!(run.index_ecosystem.as_deref(), Some("pypi"));
    assert_eq!(run.exclude, ["/legacy/cache"]);
    assert_eq!(run.updates, [0]);
}

#[test]
fn a_plugin_built_against_0_2_is_loaded_and_converted() {
    // left-pad 1.1.0 as a real tarball, so the 0.2 artifact calls have something to describe.
    let tarball = {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "package/index.js", &b"// pad"[..])
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    };
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&tarball))
    };
    let (registry, _) = serve_static_with(|url| {
        let packument = serde_json::json!({
            "name": "left-pad",
            "versions": {
                "1.0.0": {"name": "left-pad", "version": "1.0.0",
                          "dist": {"tarball": format!("{url}/left-pad/-/left-pad-1.0.0.tgz")}},
                "1.1.0": {"name": "left-pad", "version": "1.1.0",
                          "dist": {"tarball": format!("{url}/left-pad/-/left-pad-1.1.0.tgz")}},
            }
        });
        vec![
            ("/left-pad".into(), packument.to_string().into_bytes()),
            ("/left-pad/-/left-pad-1.1.0.tgz".into(), tarball),
        ]
    });
    let image = layer_tar(&[
        Node::Dir("v02"),
        Node::File("v02/installed", "left-pad 1.0.0\nidna 3.7\n"),
    ]);
    let caps = capabilities(
        image,
        IndexSettings {
            npm_registry: registry,
            ..Default::default()
        },
    );

    let host = PluginHost::new(Default::default(), None).unwrap();
    let wasm = std::fs::read(env!("COPA_TEST_PLUGIN_V02")).unwrap();
    let plugin = host.load(&wasm, Origin::File("v02.wasm".into())).unwrap();
    assert_eq!(plugin.contract, "0.2.0");
    assert_eq!(plugin.info.name, "v02");
    assert_eq!(plugin.info.purl_types, ["npm"]);

    let targets = host.detect(&plugin, &caps).unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].kind, "v02-db");
    assert_eq!(targets[0].runtime_version.as_deref(), Some("3.11"));
    assert_eq!(targets[0].attributes, [("format".into(), "lines".into())]);

    // Every 0.2 policy field arrives; the 0.3 options have nowhere to go and are left out.
    let mut policy = common::policy(PatchLevel::Minor, false);
    policy.toolchain_patch_level = Some(PatchLevel::Patch);
    policy.options = vec![("source".into(), "x=y".into())];
    let plan = host
        .plan(
            &plugin,
            &caps,
            &targets,
            &[finding("left-pad", "CVE-1")],
            &policy,
        )
        .unwrap();
    assert_eq!(plan.skips.len(), 1, "{plan:?}");
    assert_eq!(
        plan.skips[0].reason,
        "level=minor update-all=false toolchain=patch"
    );
    assert_eq!(plan.updates.len(), 1, "{plan:?}");
    let update = &plan.updates[0];
    assert_eq!(
        (update.from_version.as_str(), update.to_version.as_str()),
        ("1.0.0", "1.1.0")
    );
    assert_eq!(update.fixes, ["CVE-1"]);
    assert!(update.notes.is_empty(), "0.2 updates carry no notes");

    // Every 0.2 step kind comes back as its 0.3 equivalent; the 0.2 package-index answered
    // the plugin's artifact calls.
    let steps = host
        .emit_commands(&plugin, &caps, &targets, &plan, &policy)
        .unwrap();
    let [
        Step::Run(run),
        Step::Fetch(fetch),
        Step::Write(write),
        Step::Tooling(tooling),
    ] = steps.as_slice()
    else {
        panic!("run, fetch, write and tooling steps expected: {steps:?}");
    };
    assert_eq!(run.argv, ["true"]);
    assert_eq!(run.env, [("V02".into(), "1".into())]);
    assert_eq!(run.workdir.as_deref(), Some("/v02"));
    assert_eq!(run.user.as_deref(), Some("1000:1000"));
    assert_eq!(run.exclude, ["/v02/cache"]);
    assert_eq!(run.updates, [0]);
    assert_eq!(
        (
            fetch.ecosystem.as_str(),
            fetch.name.as_str(),
            fetch.version.as_str()
        ),
        ("npm", "left-pad", "1.1.0")
    );
    let [placement] = fetch.placements.as_slice() else {
        panic!("one placement expected: {fetch:?}");
    };
    assert_eq!(placement.member, "package/index.js");
    assert_eq!(placement.path, "/v02/lib/package/index.js");
    assert_eq!(
        (
            placement.mode,
            placement.uid,
            placement.gid,
            placement.replace
        ),
        (Some(0o640), 1, 2, true)
    );
    assert_eq!(write.path, "/v02/installed");
    assert_eq!(
        write.contents.as_deref(),
        Some(format!("left-pad {sha256} 6\n").as_bytes())
    );
    assert_eq!((write.mode, write.uid, write.gid), (0o600, 3, 4));
    assert_eq!(tooling.tooling, "v02");
    assert_eq!(tooling.default_image, "busybox:1");
    assert_eq!(tooling.copy_in, ["/v02"]);
    let [output] = tooling.outputs.as_slice() else {
        panic!("one output expected: {tooling:?}");
    };
    assert_eq!(
        (
            output.from.as_str(),
            output.to.as_str(),
            output.mode,
            output.uid,
            output.gid
        ),
        ("/out", "/v02/out", None, 5, 6)
    );
    assert_eq!(tooling.updates, [0]);
}

#[test]
fn a_plugin_built_against_0_3_is_loaded_and_converted() {
    let image = layer_tar(&[
        Node::Dir("v03"),
        Node::File("v03/installed", "libssl3 3.0.11-1\n"),
    ]);
    let caps = capabilities(image, IndexSettings::default());
    let host = PluginHost::new(Default::default(), None).unwrap();
    let wasm = std::fs::read(env!("COPA_TEST_PLUGIN_V03")).unwrap();
    let plugin = host.load(&wasm, Origin::File("v03.wasm".into())).unwrap();
    assert_eq!(plugin.contract, "0.3.0");
    assert_eq!(plugin.info.name, "v03");
    assert!(
        plugin.declared.is_none(),
        "a 0.3 plugin declares no manifest"
    );

    let targets = host.detect(&plugin, &caps).unwrap();
    assert_eq!(targets[0].kind, "v03-db");
    let mut policy = common::policy(PatchLevel::Patch, false);
    policy.options = vec![("channel".into(), "stable".into())];
    // 0.4's index URLs have no field in 0.3 and are left out.
    policy.indexes = vec![("x".into(), "https://x.example/".into())];
    let mut libssl = finding("libssl3", "CVE-1");
    libssl.installed_version = "3.0.11-1".into();
    libssl.fixed_versions = vec!["3.0.13-1".into()];
    let plan = host
        .plan(&plugin, &caps, &targets, &[libssl], &policy)
        .unwrap();
    let [update] = plan.updates.as_slice() else {
        panic!("one update expected: {plan:?}");
    };
    // 0.3's ">=" prefix arrives as 0.4's typed minimum; options and notes cross unchanged.
    assert_eq!(update.to_version, "3.0.13-1");
    assert!(update.at_least);
    assert_eq!(update.notes, ["options: channel=stable"]);

    let steps = host
        .emit_commands(&plugin, &caps, &targets, &plan, &policy)
        .unwrap();
    let [Step::Run(run)] = steps.as_slice() else {
        panic!("one run step expected: {steps:?}");
    };
    assert_eq!(run.description, "install libssl3 >=3.0.13-1 (1 options)");
}

#[test]
fn a_plugin_built_against_0_4_is_loaded_and_converted() {
    let image = layer_tar(&[
        Node::Dir("v04"),
        Node::File("v04/installed", "libfoo 1.0\nlibbar 2.0\n"),
    ]);
    // No `http` capability: the plugin's request to its index is refused before any network.
    let caps = capabilities(image, IndexSettings::default());
    let host = PluginHost::new(Default::default(), None).unwrap();
    let wasm = std::fs::read(env!("COPA_TEST_PLUGIN_V04")).unwrap();
    let plugin = host.load(&wasm, Origin::File("v04.wasm".into())).unwrap();
    assert_eq!(plugin.contract, "0.4.0");
    assert_eq!(plugin.info.name, "v04");
    assert_eq!(plugin.info.purl_types, ["v04"]);
    assert_declares_its_manifest(&plugin);

    let targets = host.detect(&plugin, &caps).unwrap();
    let [target] = targets.as_slice() else {
        panic!("one target expected: {targets:?}");
    };
    assert_eq!(target.kind, "v04-db");
    assert_eq!(target.attributes, [("format".into(), "lines".into())]);
    let names: Vec<(&str, &str)> = target
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(names, [("libfoo", "1.0"), ("libbar", "2.0")]);

    // The manifest's default URL is the index in force; repeated options arrive in order.
    let mut policy = common::policy_with_indexes(PatchLevel::Patch, &plugin, &[]);
    policy.options = vec![
        ("channel".into(), "stable".into()),
        ("channel".into(), "edge".into()),
    ];
    let mut libfoo = finding("libfoo", "CVE-1");
    libfoo.fixed_versions = vec!["1.2".into()];
    let mut libbar = finding("libbar", "CVE-2");
    libbar.fixed_versions = Vec::new();
    let plan = host
        .plan(&plugin, &caps, &targets, &[libfoo, libbar], &policy)
        .unwrap();
    let [update] = plan.updates.as_slice() else {
        panic!("one update expected: {plan:?}");
    };
    assert_eq!(
        (update.package.as_str(), update.from_version.as_str()),
        ("libfoo", "1.0")
    );
    assert_eq!(update.to_version, "1.2");
    assert!(update.at_least);
    assert_eq!(update.fixes, ["CVE-1"]);
    assert_eq!(
        update.notes,
        [
            "options: channel=stable,channel=edge",
            "indexes: v04-index=https://index.v04.example/simple/",
            "index reached: not granted",
        ]
    );
    let [skip] = plan.skips.as_slice() else {
        panic!("one skip expected: {plan:?}");
    };
    assert_eq!(
        (skip.target_id.as_str(), skip.package.as_str()),
        ("/v04/installed", "libbar")
    );
    assert_eq!(skip.vulnerabilities, ["CVE-2"]);
    assert_eq!(skip.reason, "no fixed version published");

    let steps = host
        .emit_commands(&plugin, &caps, &targets, &plan, &policy)
        .unwrap();
    grants::check_steps(&plugin, &steps, plan.updates.len()).expect("steps within the manifest");
    assert_steps_cross(&steps);
}

/// The v04 plugin's manifest, every declaration as the plugin wrote it.
fn assert_declares_its_manifest(plugin: &Plugin) {
    let declared = plugin
        .declared
        .as_ref()
        .expect("a 0.4 plugin declares a manifest");
    assert_eq!(
        declared.indexes,
        [IndexSpec {
            ecosystem: "v04-index".into(),
            default_url: "https://index.v04.example/simple/".into(),
            description: "the v04 index".into(),
        }]
    );
    assert_eq!(declared.tooling, ["v04-tool"]);
    assert_eq!(plugin.package_names, NameRule::default());
    assert!(!declared.root_run_steps);
    assert_eq!(
        declared.options,
        [OptionSpec {
            key: "channel".into(),
            kind: OptionKind::Text,
            repeatable: true,
            description: "a release channel".into(),
        }]
    );
}

/// The v04 plugin's `run`, `tooling` and `write` steps for its one update of libfoo to 1.2.
fn assert_steps_cross(steps: &[Step]) {
    let [Step::Run(run), Step::Tooling(tooling), Step::Write(write)] = steps else {
        panic!("run, tooling and write steps expected: {steps:?}");
    };
    assert_eq!(run.argv, ["v04-install", "libfoo>=1.2"]);
    assert_eq!(
        run.env,
        [(
            "V04_INDEX_URL".into(),
            "https://index.v04.example/simple/".into()
        )]
    );
    assert_eq!(run.workdir.as_deref(), Some("/v04"));
    assert_eq!(run.user.as_deref(), Some("1000:1000"));
    assert_eq!(run.index_ecosystem.as_deref(), Some("v04-index"));
    assert_eq!(run.exclude, ["/v04/cache"]);
    // What 0.4 could not say is what the host assumed of every 0.4 plugin: a run step may
    // change any path, and a tool of an ecosystem the host did not know reads SSL_CERT_FILE.
    assert_eq!(run.changes, ["/"]);
    assert_eq!(run.ca_variables, ["SSL_CERT_FILE"]);
    assert_eq!(run.updates, [0]);

    assert_eq!(
        (tooling.tooling.as_str(), tooling.default_image.as_str()),
        ("v04-tool", "busybox:1")
    );
    assert_eq!(tooling.argv, ["sh", "-c", "cp /v04/installed /out"]);
    assert_eq!(tooling.env, [("V04_TOOL".into(), "1".into())]);
    assert_eq!(tooling.workdir.as_deref(), Some("/src"));
    assert_eq!(tooling.index_ecosystem.as_deref(), Some("v04-index"));
    assert_eq!(tooling.ca_variables, ["SSL_CERT_FILE"]);
    assert_eq!(tooling.copy_in, ["/v04/installed"]);
    let [output] = tooling.outputs.as_slice() else {
        panic!("one output expected: {tooling:?}");
    };
    assert_eq!(
        (
            output.from.as_str(),
            output.to.as_str(),
            output.mode,
            output.uid,
            output.gid
        ),
        ("/out", "/v04/out", Some(0o755), 1000, 1001)
    );
    assert_eq!(tooling.updates, [0]);

    assert_eq!(write.path, "/v04/installed");
    assert_eq!(
        write.contents.as_deref(),
        Some(&b"libfoo 1.2\nlibbar 2.0\n"[..])
    );
    assert_eq!((write.mode, write.uid, write.gid), (0o644, 1000, 1001));
    assert_eq!(write.updates, [0]);
}
