//! A patcher whose `run` step declares one directory it changes, `/srv/trespass`, and, when the
//! option `outside` is true, also writes `/etc/trespassed`. It claims a package `trespass`
//! (version 1.0, or what `/srv/trespass/version` says) in every image with `/bin/sh`, and its
//! step writes the version a report's fix names into that file. Tests use it to show that a
//! step's undeclared change fails the step, and that a declared one lands.

use copa_plugin_sdk::{
    Finding, InstalledPackage, Manifest, OptionKind, OptionSpec, PackageClass, Plan, PluginInfo,
    Policy, RunStep, Step, Target, Update, fs, register_patcher,
};

/// The report type a test's report gives its findings.
const REPORT_TYPE: &str = "trespass-pkg";
const PACKAGE: &str = "trespass";
const SHELL: &str = "/bin/sh";
/// The one directory the step declares.
const HOME: &str = "/srv/trespass";
const VERSION_FILE: &str = "/srv/trespass/version";
/// Writes the version given as `$1`, and `/etc/trespassed` when `$2` is "true".
const SCRIPT: &str = "mkdir -p /srv/trespass && printf %s \"$1\" > /srv/trespass/version \
                      && if [ \"$2\" = true ]; then echo x > /etc/trespassed; fi";
const OUTSIDE: &str = "outside";

#[derive(Default)]
struct Trespass;

register_patcher!(Trespass);

impl copa_plugin_sdk::Patcher for Trespass {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "trespass".into(),
            version: "0.0.1".into(),
            package_class: PackageClass::Library,
            report_types: vec![REPORT_TYPE.into()],
            purl_types: vec![],
            description: "a run step that may write outside the paths it declares".into(),
        }
    }

    /// Its `run` step names no user, so it runs as root.
    fn manifest(&self) -> Manifest {
        Manifest {
            root_run_steps: true,
            options: vec![OptionSpec {
                key: OUTSIDE.into(),
                kind: OptionKind::Flag,
                repeatable: false,
                description: "the step also writes /etc/trespassed".into(),
            }],
            ..copa_plugin_sdk::asks_for_nothing(self.info())
        }
    }

    fn detect(&self) -> Result<Vec<Target>, String> {
        if !fs::exists(SHELL) {
            return Ok(Vec::new());
        }
        let version = fs::read_to_string(VERSION_FILE).unwrap_or_else(|_| "1.0".into());
        Ok(vec![Target {
            id: HOME.into(),
            kind: "trespass".into(),
            runtime_version: None,
            packages: vec![InstalledPackage {
                name: PACKAGE.into(),
                version,
                location: VERSION_FILE.into(),
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
        let installed = |target: &Target| target.packages.first().map(|p| p.version.clone());
        let updates = targets
            .iter()
            .flat_map(|target| {
                findings
                    .iter()
                    .filter(|f| f.package_name == PACKAGE)
                    .filter_map(|f| {
                        let to_version = f.fixed_versions.first()?.clone();
                        (installed(target)? != to_version).then(|| Update {
                            target_id: target.id.clone(),
                            package: PACKAGE.into(),
                            from_version: f.installed_version.clone(),
                            to_version,
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

    fn emit_commands(
        &self,
        _: Vec<Target>,
        plan: Plan,
        policy: Policy,
    ) -> Result<Vec<Step>, String> {
        let outside = policy
            .options
            .iter()
            .any(|(key, value)| key == OUTSIDE && value == "true");
        Ok(plan
            .updates
            .iter()
            .enumerate()
            .map(|(i, update)| {
                Step::Run(RunStep {
                    description: format!("write {PACKAGE} {}", update.to_version),
                    argv: vec![
                        SHELL.into(),
                        "-c".into(),
                        SCRIPT.into(),
                        "trespass".into(),
                        update.to_version.clone(),
                        outside.to_string(),
                    ],
                    env: Vec::new(),
                    workdir: None,
                    user: None,
                    index_ecosystem: None,
                    ca_variables: Vec::new(),
                    changes: vec![HOME.into()],
                    exclude: Vec::new(),
                    updates: vec![i as u32],
                })
            })
            .collect())
    }
}
