//! A patcher written against the frozen 0.1 contract directly with wit-bindgen, as a third party
//! would have shipped it before 0.2. It exercises every 0.1 type the host converts: it detects
//! a tiny "package database" (/legacy/installed: `name version` lines), asks the 0.1
//! package-index for versions, plans (an empty findings list means "update everything", the
//! 0.1 convention) and emits one run step.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "plugin",
});

use copa::plugin::{image_fs, package_index};
use exports::copa::plugin::patcher::{
    Finding, Guest, InstalledPackage, PackageClass, PatchPlan, PluginInfo, Policy, RunStep, Skip,
    Step, Target, Update,
};

const DATABASE: &str = "/legacy/installed";

struct Legacy;

impl Guest for Legacy {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "legacy".into(),
            version: "0.1.0".into(),
            package_class: PackageClass::Os,
            report_types: vec!["legacy".into()],
            purl_types: vec![],
            description: "contract 0.1 test patcher".into(),
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
            kind: "legacy-db".into(),
            runtime_version: None,
            packages,
            unpatchable_reason: None,
            attributes: vec![("format".into(), "lines".into())],
        }])
    }

    fn plan(
        targets: Vec<Target>,
        findings: Vec<Finding>,
        _policy: Policy,
    ) -> Result<PatchPlan, String> {
        let target = targets.first().ok_or("no database")?;
        let mut plan = PatchPlan {
            updates: Vec::new(),
            skips: Vec::new(),
        };
        for package in &target.packages {
            let mine: Vec<&Finding> = findings
                .iter()
                .filter(|f| f.package_name == package.name)
                .collect();
            if !findings.is_empty() && mine.is_empty() {
                continue;
            }
            // The newest version the index lists (the test's index lists them in order).
            let versions = package_index::versions("pypi", &package.name)?;
            match versions.iter().rev().find(|v| !v.yanked) {
                Some(newest) if newest.version != package.version => plan.updates.push(Update {
                    target_id: target.id.clone(),
                    package: package.name.clone(),
                    from_version: package.version.clone(),
                    to_version: newest.version.clone(),
                    fixes: mine.iter().map(|f| f.vulnerability_id.clone()).collect(),
                }),
                _ => plan.skips.push(Skip {
                    target_id: target.id.clone(),
                    package: package.name.clone(),
                    vulnerabilities: mine.iter().map(|f| f.vulnerability_id.clone()).collect(),
                    reason: "no newer version".into(),
                }),
            }
        }
        Ok(plan)
    }

    fn emit_commands(_targets: Vec<Target>, plan: PatchPlan) -> Result<Vec<Step>, String> {
        let mut argv = vec!["legacy-install".to_string()];
        argv.extend(
            plan.updates
                .iter()
                .map(|u| format!("{}={}", u.package, u.to_version)),
        );
        Ok(vec![Step::Run(RunStep {
            description: "legacy install".into(),
            argv,
            env: vec![],
            workdir: None,
            user: None,
            index_ecosystem: Some("pypi".into()),
            exclude: vec!["/legacy/cache".into()],
            updates: (0..plan.updates.len() as u32).collect(),
        })])
    }
}

export!(Legacy);
