//! A patcher whose one step never ends in time: it claims a package `stall` 1.0 in every image
//! that has `/bin/sleep`, plans the fix a report names, and emits a `run` step that sleeps for ten
//! minutes. Tests use it to make a step certainly slower than `--timeout`, or certainly still
//! running when the run is interrupted, whatever the speed of the network, Docker or machine.

use copa_plugin_sdk::{
    Finding, InstalledPackage, Manifest, PackageClass, Plan, PluginInfo, Policy, RunStep, Step,
    Target, Update, fs, register_patcher,
};

/// The report type a test's report gives its findings.
const REPORT_TYPE: &str = "stall-pkg";
const PACKAGE: &str = "stall";
const SLEEP: &str = "/bin/sleep";

#[derive(Default)]
struct Stall;

register_patcher!(Stall);

impl copa_plugin_sdk::Patcher for Stall {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "stall".into(),
            version: "0.0.1".into(),
            package_class: PackageClass::Library,
            report_types: vec![REPORT_TYPE.into()],
            purl_types: vec![],
            description: "emits a step that sleeps for ten minutes".into(),
        }
    }

    /// Its one `run` step names no user, so it runs as root.
    fn manifest(&self) -> Manifest {
        Manifest {
            root_run_steps: true,
            ..copa_plugin_sdk::asks_for_nothing(self.info())
        }
    }

    fn detect(&self) -> Result<Vec<Target>, String> {
        if !fs::exists(SLEEP) {
            return Ok(Vec::new());
        }
        Ok(vec![Target {
            id: "/".into(),
            kind: "stall".into(),
            runtime_version: None,
            packages: vec![InstalledPackage {
                name: PACKAGE.into(),
                version: "1.0".into(),
                location: SLEEP.into(),
            }],
            unpatchable_reason: None,
            attributes: Vec::new(),
        }])
    }

    fn plan(
        &self,
        targets: Vec<Target>,
        findings: Vec<Finding>,
        _: Policy,
    ) -> Result<Plan, String> {
        let updates = targets
            .iter()
            .flat_map(|target| {
                findings
                    .iter()
                    .filter(|f| f.package_name == PACKAGE)
                    .filter_map(|f| {
                        Some(Update {
                            target_id: target.id.clone(),
                            package: PACKAGE.into(),
                            from_version: f.installed_version.clone(),
                            to_version: f.fixed_versions.first()?.clone(),
                            at_least: false,
                            fixes: vec![f.vulnerability_id.clone()],
                            notes: Vec::new(),
                        })
                    })
            })
            .collect();
        Ok(Plan {
            updates,
            skips: Vec::new(),
        })
    }

    fn emit_commands(&self, _: Vec<Target>, plan: Plan, _: Policy) -> Result<Vec<Step>, String> {
        let updates = (0..plan.updates.len() as u32).collect::<Vec<_>>();
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Step::Run(RunStep {
            description: "sleep for ten minutes".into(),
            argv: vec![SLEEP.into(), "600".into()],
            env: Vec::new(),
            workdir: None,
            user: None,
            index_ecosystem: None,
            ca_variables: Vec::new(),
            // Sleeping changes nothing.
            changes: Vec::new(),
            exclude: Vec::new(),
            updates,
        })])
    }
}
