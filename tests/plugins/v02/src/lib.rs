//! A patcher written against the frozen 0.2 contract directly with wit-bindgen, as a third party
//! would have shipped it before 0.3. It exercises every 0.2 type the host converts: it detects a
//! tiny "package database" (/v02/installed: `name version` lines), asks the 0.2 package-index
//! (npm) for versions and artifacts, reports the policy it was given as a skip, and emits one step of
//! each kind.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.2.0",
    world: "plugin",
});

use copa::plugin::{image_fs, package_index};
use exports::copa::plugin::patcher::{
    FetchStep, Finding, Guest, InstalledPackage, PackageClass, PatchLevel, PatchPlan, Placement,
    PluginInfo, Policy, RunStep, Skip, Step, Target, ToolingOutput, ToolingStep, Update, WriteStep,
};

const DATABASE: &str = "/v02/installed";

struct V02;

fn level(level: PatchLevel) -> &'static str {
    match level {
        PatchLevel::Patch => "patch",
        PatchLevel::Minor => "minor",
        PatchLevel::Major => "major",
    }
}

impl Guest for V02 {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "v02".into(),
            version: "0.2.0".into(),
            package_class: PackageClass::Library,
            report_types: vec!["v02".into()],
            purl_types: vec!["npm".into()],
            description: "contract 0.2 test patcher".into(),
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
            kind: "v02-db".into(),
            runtime_version: Some("3.11".into()),
            packages,
            unpatchable_reason: None,
            attributes: vec![("format".into(), "lines".into())],
        }])
    }

    fn plan(
        targets: Vec<Target>,
        findings: Vec<Finding>,
        policy: Policy,
    ) -> Result<PatchPlan, String> {
        let target = targets.first().ok_or("no database")?;
        let mut plan = PatchPlan {
            updates: Vec::new(),
            skips: vec![Skip {
                target_id: target.id.clone(),
                package: "(policy)".into(),
                vulnerabilities: Vec::new(),
                reason: format!(
                    "level={} update-all={} toolchain={}",
                    level(policy.library_patch_level),
                    policy.update_all,
                    policy.toolchain_patch_level.map(level).unwrap_or("none")
                ),
            }],
        };
        for package in &target.packages {
            let mine: Vec<&Finding> = findings
                .iter()
                .filter(|f| f.package_name == package.name)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let versions = package_index::versions("npm", &package.name)?;
            if let Some(newest) = versions.iter().rev().find(|v| !v.yanked) {
                plan.updates.push(Update {
                    target_id: target.id.clone(),
                    package: package.name.clone(),
                    from_version: package.version.clone(),
                    to_version: newest.version.clone(),
                    fixes: mine.iter().map(|f| f.vulnerability_id.clone()).collect(),
                });
            }
        }
        Ok(plan)
    }

    fn emit_commands(_targets: Vec<Target>, plan: PatchPlan) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        for (i, update) in plan.updates.iter().enumerate() {
            let updates = vec![i as u32];
            let artifact = package_index::artifact("npm", &update.package, &update.to_version)?;
            let first = artifact.members.first().ok_or("an empty artifact")?;
            let member =
                package_index::artifact_member("npm", &update.package, &update.to_version, first)?;
            steps.push(Step::Run(RunStep {
                description: format!("v02 install {}", update.package),
                argv: vec!["true".into()],
                env: vec![("V02".into(), "1".into())],
                workdir: Some("/v02".into()),
                user: Some("1000:1000".into()),
                index_ecosystem: Some("npm".into()),
                exclude: vec!["/v02/cache".into()],
                updates: updates.clone(),
            }));
            steps.push(Step::Fetch(FetchStep {
                description: format!("v02 fetch {}", update.package),
                ecosystem: "npm".into(),
                name: update.package.clone(),
                version: update.to_version.clone(),
                placements: vec![Placement {
                    member: first.clone(),
                    path: format!("/v02/lib/{first}"),
                    mode: Some(0o640),
                    uid: 1,
                    gid: 2,
                    replace: true,
                }],
                updates: updates.clone(),
            }));
            steps.push(Step::Write(WriteStep {
                description: format!("v02 record {}", update.package),
                path: DATABASE.into(),
                contents: Some(
                    format!("{} {} {}\n", update.package, artifact.sha256, member.len())
                        .into_bytes(),
                ),
                mode: 0o600,
                uid: 3,
                gid: 4,
                updates: updates.clone(),
            }));
            steps.push(Step::Tooling(ToolingStep {
                description: format!("v02 tool {}", update.package),
                tooling: "v02".into(),
                default_image: "busybox:1".into(),
                argv: vec!["sh".into(), "-c".into(), "true".into()],
                env: vec![],
                workdir: None,
                index_ecosystem: None,
                copy_in: vec!["/v02".into()],
                outputs: vec![ToolingOutput {
                    from: "/out".into(),
                    to: "/v02/out".into(),
                    mode: None,
                    uid: 5,
                    gid: 6,
                }],
                updates,
            }));
        }
        Ok(steps)
    }
}

export!(V02);
