//! The pip patcher: Python packages in system site-packages / dist-packages and in virtual
//! environments, updated with each environment's own pip.

mod detect;
mod metadata;
mod plan;

use copa_plugin_sdk::{
    Finding, IndexSpec, Manifest, NameRule, PackageClass, Plan, PluginInfo, Policy, RunStep, Step,
    Target, attribute, index_urls, pep440, pypi, register_patcher, updates_for,
};

#[derive(Default)]
struct Pip;

register_patcher!(Pip);

/// Names of the target attributes this plugin writes in `detect` and reads back later.
mod attr {
    pub const PYTHON: &str = "python";
    pub const SYSTEM: &str = "system";
    /// `uid:gid` owning the site-packages directory.
    pub const OWNER: &str = "owner";
}

impl copa_plugin_sdk::Patcher for Pip {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "pip".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            package_class: PackageClass::Library,
            report_types: vec!["python-pkg".into()],
            purl_types: vec!["pypi".into()],
            description:
                "Python packages installed with pip, system-wide and in virtual environments".into(),
        }
    }

    /// pip runs as the owner of the site-packages it installs into: root for the system's (and
    /// for a virtual environment root created), so its `run` steps may run as root. It reads
    /// PyPI (or the user's `--index pypi=URL`s) over `http`; no tooling, no options. Names
    /// compare as PEP 503 has it, the rule of [`pep440::normalize_name`] (which pip and the
    /// indexes use): ASCII case aside, and a run of "-_." as one ("typing_extensions" is
    /// "typing-extensions").
    fn manifest(&self) -> Manifest {
        Manifest {
            indexes: vec![IndexSpec {
                ecosystem: pypi::ECOSYSTEM.into(),
                default_url: pypi::DEFAULT_INDEX.into(),
                description: "a Python package index (simple API), for planning and for pip in \
                              the run; the first URL is pip's index URL, the others extra ones"
                    .into(),
            }],
            root_run_steps: true,
            package_names: NameRule {
                ignore_case: true,
                separators: pep440::NAME_SEPARATORS.into(),
            },
            ..copa_plugin_sdk::asks_for_nothing(self.info())
        }
    }

    fn detect(&self) -> Result<Vec<Target>, String> {
        Ok(detect::environments())
    }

    fn plan(
        &self,
        targets: Vec<Target>,
        findings: Vec<Finding>,
        policy: Policy,
    ) -> Result<Plan, String> {
        Ok(plan::plan(&targets, &findings, policy))
    }

    fn emit_commands(
        &self,
        targets: Vec<Target>,
        plan: Plan,
        policy: Policy,
    ) -> Result<Vec<Step>, String> {
        let index_env = index_environment(&policy);
        let mut steps = Vec::new();
        for target in &targets {
            let updates = updates_for(&plan, target);
            if updates.is_empty() {
                continue;
            }
            let python = attribute(target, attr::PYTHON)
                .ok_or_else(|| format!("target {} has no interpreter", target.id))?;
            let mut argv: Vec<String> = [
                python,
                "-m",
                "pip",
                "install",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--no-input",
                "--upgrade-strategy",
                "only-if-needed",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            argv.extend(
                updates
                    .iter()
                    .map(|&i| &plan.updates[i as usize])
                    .map(|u| format!("{}=={}", u.package, u.to_version)),
            );
            // Environment variables instead of flags: an old pip ignores unknown variables but
            // fails on unknown flags.
            let mut env = vec![
                ("PIP_ROOT_USER_ACTION".to_string(), "ignore".to_string()),
                // pip's own imports must not litter the image with bytecode.
                ("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()),
            ];
            env.extend(index_env.iter().cloned());
            if attribute(target, attr::SYSTEM) == Some("1") {
                // The user asked to patch the system environment; PEP 668 protects it from
                // accidental installs, not from this one.
                env.push(("PIP_BREAK_SYSTEM_PACKAGES".into(), "1".into()));
            }
            steps.push(Step::Run(RunStep {
                description: format!("pip install in {}", target.id),
                argv,
                env,
                workdir: None,
                // pip writes as the environment's owner, so an application's venv stays its own.
                user: attribute(target, attr::OWNER)
                    .filter(|owner| *owner != "0:0")
                    .map(String::from),
                index_ecosystem: Some("pypi".into()),
                ca_variables: pypi::CA_VARIABLES.iter().map(|s| s.to_string()).collect(),
                changes: changed_paths(target),
                exclude: vec!["/root/.cache".into(), "/root/.config/pip".into()],
                updates,
            }));
        }
        Ok(steps)
    }
}

/// Where pip may write when it updates `target`. In a virtual environment everything it touches
/// (site-packages, `bin` scripts, `share` data) is under the environment's root, the target's
/// id. For the system, pip as root removes the old version from the site-packages directory it
/// was found in (the target's id) and installs under its scheme's prefix: /usr/local for the
/// official Python images and for Debian's patched pip (whose directories are `dist-packages`);
/// the interpreter's own prefix elsewhere (Alpine's and Fedora's /usr), where only the scheme's
/// directories are declared (both library dirs, scripts, data under `share`, headers) rather than
/// all of /usr: data files a package puts anywhere else fail the step, naming the path.
fn changed_paths(target: &Target) -> Vec<String> {
    let site = target.id.clone();
    if attribute(target, attr::SYSTEM) != Some("1") {
        return vec![site];
    }
    match distro_scheme(&site) {
        Some((prefix, version)) => vec![
            format!("{prefix}/lib64/python{version}/site-packages"),
            format!("{prefix}/bin"),
            format!("{prefix}/share"),
            format!("{prefix}/include/python{version}"),
            site,
        ],
        None => vec!["/usr/local".into(), site],
    }
}

/// The prefix and Python version of a system `site-packages` directory outside /usr/local
/// (`/usr/lib/python3.12/site-packages`: "/usr", "3.12"), where pip installs under that prefix.
fn distro_scheme(site: &str) -> Option<(&str, &str)> {
    let lib = site.strip_suffix("/site-packages")?;
    let (prefix, version) = lib.rsplit_once("/lib/python")?;
    (prefix != "/usr/local").then_some((prefix, version))
}

/// pip's settings for the indexes planning read: the first as its index URL, the others as
/// extra index URLs, so that pip installs from where the plan found the versions.
fn index_environment(policy: &Policy) -> Vec<(String, String)> {
    let mut urls = index_urls(policy, pypi::ECOSYSTEM);
    let mut env = Vec::new();
    if let Some(first) = urls.next() {
        env.push(("PIP_INDEX_URL".to_string(), first.to_string()));
    }
    let extra: Vec<&str> = urls.collect();
    if !extra.is_empty() {
        env.push(("PIP_EXTRA_INDEX_URL".to_string(), extra.join(" ")));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str, system: &str) -> Target {
        Target {
            id: id.into(),
            kind: String::new(),
            runtime_version: None,
            packages: Vec::new(),
            unpatchable_reason: None,
            attributes: vec![(attr::SYSTEM.into(), system.into())],
        }
    }

    #[test]
    fn pip_changes_a_venv_only_under_its_root() {
        assert_eq!(changed_paths(&target("/app/venv", "0")), ["/app/venv"]);
    }

    #[test]
    fn pip_changes_the_system_under_usr_local_and_the_site_dir_it_updates() {
        for site in [
            "/usr/lib/python3/dist-packages",
            "/usr/local/lib/python3.11/dist-packages",
            "/usr/local/lib/python3.12/site-packages",
        ] {
            assert_eq!(changed_paths(&target(site, "1")), ["/usr/local", site]);
        }
    }

    #[test]
    fn pip_changes_a_distros_system_python_only_in_its_schemes_directories() {
        assert_eq!(
            changed_paths(&target("/usr/lib/python3.12/site-packages", "1")),
            [
                "/usr/lib64/python3.12/site-packages",
                "/usr/bin",
                "/usr/share",
                "/usr/include/python3.12",
                "/usr/lib/python3.12/site-packages",
            ]
        );
    }
}
