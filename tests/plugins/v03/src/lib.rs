//! A patcher written against the frozen 0.3 contract directly with wit-bindgen, as a third party
//! would have shipped it before 0.4. It exercises what 0.4 changed around it: its options and
//! notes cross unchanged, its "only a minimum" is 0.3's `>=` prefix of `to-version` (0.4's
//! `at-least`), and `emit-commands` gets the plan back in 0.3's form. It detects a tiny "package
//! database" (/v03/installed: `name version` lines) and plans every finding to at least its first
//! fixed version.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.3.0",
    world: "plugin",
});

use copa::plugin::image_fs;
use exports::copa::plugin::patcher::{
    Finding, Guest, InstalledPackage, PackageClass, PatchPlan, PluginInfo, Policy, RunStep, Step,
    Target, Update,
};

const DATABASE: &str = "/v03/installed";

struct V03;

impl Guest for V03 {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "v03".into(),
            version: "0.3.0".into(),
            package_class: PackageClass::Os,
            report_types: vec!["v03".into()],
            purl_types: vec![],
            description: "contract 0.3 test patcher".into(),
        }
    }

    fn detect() -> Result<Vec<Target>, String> {
        let Ok(bytes) = image_fs::read_file(DATABASE) else {
            return Ok(Vec::new());
        };
        let packages = String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(name, version)| InstalledPackage {
                name: name.into(),
                version: version.into(),
                location: DATABASE.into(),
            })
            .collect();
        Ok(vec![Target {
            id: DATABASE.into(),
            kind: "v03-db".into(),
            runtime_version: None,
            packages,
            unpatchable_reason: None,
            attributes: Vec::new(),
        }])
    }

    fn plan(
        targets: Vec<Target>,
        findings: Vec<Finding>,
        policy: Policy,
    ) -> Result<PatchPlan, String> {
        let target = targets.first().ok_or("no database")?;
        let options: Vec<String> = policy
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let updates = findings
            .iter()
            .filter_map(|f| {
                let installed = target.packages.iter().find(|p| p.name == f.package_name)?;
                Some(Update {
                    target_id: target.id.clone(),
                    package: installed.name.clone(),
                    from_version: installed.version.clone(),
                    to_version: format!(">={}", f.fixed_versions.first()?),
                    fixes: vec![f.vulnerability_id.clone()],
                    notes: vec![format!("options: {}", options.join(","))],
                })
            })
            .collect();
        Ok(PatchPlan {
            updates,
            skips: Vec::new(),
        })
    }

    fn emit_commands(
        _targets: Vec<Target>,
        plan: PatchPlan,
        policy: Policy,
    ) -> Result<Vec<Step>, String> {
        Ok(plan
            .updates
            .iter()
            .enumerate()
            .map(|(i, update)| {
                Step::Run(RunStep {
                    // What the plugin got back: the update in 0.3's form, and its options.
                    description: format!(
                        "install {} {} ({} options)",
                        update.package,
                        update.to_version,
                        policy.options.len()
                    ),
                    argv: vec!["true".into()],
                    env: Vec::new(),
                    workdir: None,
                    user: None,
                    index_ecosystem: None,
                    exclude: Vec::new(),
                    updates: vec![i as u32],
                })
            })
            .collect())
    }
}

export!(V03);
