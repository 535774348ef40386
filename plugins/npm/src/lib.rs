//! The npm patcher: every npm project in the image (a package.json with node_modules beside
//! it) and the global package roots. Vulnerable copies are replaced in place with the fixed
//! version's registry tarball (`fetch` steps), and package.json and the lockfiles are rewritten
//! to match (`write` steps); every other package of the tree stays as it is.

mod emit;
mod json;
mod node;
mod plan;
mod registry;
mod resolve;
mod tree;

use copa_plugin_sdk::{
    Finding, IndexSpec, Manifest, PackageClass, Plan, PluginInfo, Policy, Step, Target,
    npm_registry, register_patcher,
};

#[derive(Default)]
struct Npm;

register_patcher!(Npm);

/// Names of the target attributes this plugin writes in `detect` and reads back later.
mod attr {
    /// The directory whose node_modules tops the tree ("/app"; "/usr/local/lib" for globals).
    pub const PROJECT: &str = "project";
    /// "1" for a global package root (no package.json of its own).
    pub const GLOBAL: &str = "global";
    /// The project's lockfiles that exist, one path a line.
    pub const LOCKFILES: &str = "lockfiles";
}

impl copa_plugin_sdk::Patcher for Npm {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "npm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            package_class: PackageClass::Library,
            report_types: vec!["node-pkg".into(), "npm".into()],
            purl_types: vec!["npm".into()],
            description: "npm packages of Node.js applications and global packages, replaced in place from the registry".into(),
        }
    }

    /// The registry it reads over `http` (packuments, and the tarballs it checks before its
    /// `download` steps name them); nothing else: no container, no tooling, no options.
    fn manifest(&self) -> Manifest {
        Manifest {
            indexes: vec![IndexSpec {
                ecosystem: npm_registry::ECOSYSTEM.into(),
                default_url: npm_registry::DEFAULT_REGISTRY.into(),
                description: "an npm registry, for planning and for the tarballs placed; the \
                              first that has a package answers for it"
                    .into(),
            }],
            ..copa_plugin_sdk::asks_for_nothing(self.info())
        }
    }

    fn detect(&self) -> Result<Vec<Target>, String> {
        Ok(tree::detect())
    }

    fn plan(
        &self,
        targets: Vec<Target>,
        findings: Vec<Finding>,
        policy: Policy,
    ) -> Result<Plan, String> {
        registry::use_policy(&policy);
        Ok(plan::plan(&targets, &findings, policy))
    }

    fn emit_commands(
        &self,
        targets: Vec<Target>,
        plan: Plan,
        policy: Policy,
    ) -> Result<Vec<Step>, String> {
        registry::use_policy(&policy);
        emit::emit(&targets, &plan)
    }
}
