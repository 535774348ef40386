//! The contract's versions: a plugin built against 0.1 (without the SDK) loads next to the 0.2
//! built-ins, and every value crosses the 0.1 <-> 0.2 conversion intact.

mod common;

use common::{Node, layer_tar, serve_index, wheels};
use copa_host::index::{IndexSettings, PackageIndex};
use copa_host::plugin::{Finding, Origin, PatchLevel, PluginHost, Step};
use std::sync::Arc;

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
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, &image).unwrap();
    let caps = Arc::new(copa_host::plugin::Capabilities {
        image: Arc::new(
            copa_host::image::ImageView::new(vec![
                copa_host::image::LayerTar::whole(file).unwrap(),
            ])
            .unwrap(),
        ),
        index: Arc::new(
            PackageIndex::new(IndexSettings {
                pypi_url: index.url.clone(),
                ..Default::default()
            })
            .unwrap(),
        ),
    });

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
        builtins.iter().all(|p| p.contract == "0.2.0"),
        "built-ins speak 0.2"
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
            common::policy(PatchLevel::Minor, false),
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
            common::policy(PatchLevel::Patch, true),
        )
        .unwrap();
    assert_eq!(everything.updates.len(), 1);
    assert_eq!(everything.skips.len(), 1);
    assert_eq!(everything.skips[0].reason, "no newer version");

    let steps = host.emit_commands(&legacy, &caps, &targets, &plan).unwrap();
    let [Step::Run(run)] = steps.as_slice() else {
        panic!("one run step expected: {steps:?}");
    };
    assert_eq!(run.argv, ["legacy-install", "six=1.16.0"]);
    assert_eq!(run.index_ecosystem.as_deref(), Some("pypi"));
    assert_eq!(run.exclude, ["/legacy/cache"]);
    assert_eq!(run.updates, [0]);
}
