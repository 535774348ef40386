//! The Go patcher: rebuilds Go binaries with fixed module versions (and, when the policy allows,
//! a newer Go toolchain for standard-library fixes), and updates go.mod / go.sum / vendor trees.
//! Trivy reports binaries as `gobinary` and module files as `gomod`; both come here.

mod buildinfo;
mod detect;
mod emit;
mod gomodfile;
mod plan;
mod source;

pub use buildinfo::{BuildInfo, Module, read as read_build_info};

use copa_plugin_sdk::{
    Finding, IndexSpec, Manifest, OptionKind, OptionSpec, PackageClass, Plan, PluginInfo, Policy,
    Step, Target, goproxy,
};

#[derive(Default)]
struct Go;

copa_plugin_sdk::register_patcher!(Go);

/// Target kinds.
mod kind {
    /// An executable with Go build info.
    pub const BINARY: &str = "gobinary";
    /// A directory with a go.mod.
    pub const MODULE: &str = "gomod";
}

/// Names of the target attributes this plugin writes in `detect` and reads back later.
mod attr {
    /// The toolchain that built the binary ("go1.21.13").
    pub const GO_VERSION: &str = "go-version";
    /// The main package's import path.
    pub const MAIN_PACKAGE: &str = "main-package";
    /// The main module (binaries) or the go.mod's module.
    pub const MODULE: &str = "module";
    pub const MODULE_VERSION: &str = "module-version";
    /// The version to fetch the main module's source at: a commit, or a released version.
    pub const SOURCE_REF: &str = "source-ref";
    /// Octal permission bits of the binary.
    pub const MODE: &str = "mode";
    pub const OWNER: &str = "owner";
    /// Prefix: "setting:-ldflags" = the build setting's value.
    pub const SETTING: &str = "setting:";
    /// Prefix: "replaced:MODULE" = "NEW-PATH [VERSION]".
    pub const REPLACED: &str = "replaced:";
    /// "1" when the module has vendor/modules.txt.
    pub const VENDORED: &str = "vendored";
    /// The directory of the go.work that uses the module.
    pub const WORKSPACE: &str = "workspace";
    /// "1" when a binary cannot be rebuilt only because its source revision is unknown (no VCS
    /// information, or a modified checkout): a `--go-source` with a ref supplies it.
    pub const NEEDS_REF: &str = "needs-ref";
}

impl copa_plugin_sdk::Patcher for Go {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "go".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            package_class: PackageClass::Library,
            report_types: vec!["gobinary".into(), "gomod".into()],
            purl_types: vec!["golang".into()],
            description: "Go binaries (rebuilt with fixed modules or toolchain) and go.mod trees"
                .into(),
        }
    }

    /// Rebuilds run in a Go toolchain image (`tooling` steps of kind "go", no `run` step); the
    /// module proxies (proxy.golang.org, or the user's `--index go=URL`s) are read over `http`;
    /// `source` (also `--go-source`) names where a module's source is.
    fn manifest(&self) -> Manifest {
        Manifest {
            indexes: vec![IndexSpec {
                ecosystem: goproxy::ECOSYSTEM.into(),
                default_url: goproxy::DEFAULT_PROXY.into(),
                description: "a Go module proxy, for module versions and Go toolchains; several \
                              are tried in order, the next only when one lacks the module"
                    .into(),
            }],
            tooling: vec![emit::TOOLING.into()],
            options: vec![OptionSpec {
                key: source::OPTION.into(),
                kind: OptionKind::Text,
                repeatable: true,
                description: "where a module's source is, for a rebuild: MODULE=GIT-URL[@REF]"
                    .into(),
            }],
            ..copa_plugin_sdk::asks_for_nothing(self.info())
        }
    }

    fn detect(&self) -> Result<Vec<Target>, String> {
        Ok(detect::targets())
    }

    fn plan(
        &self,
        targets: Vec<Target>,
        findings: Vec<Finding>,
        policy: Policy,
    ) -> Result<Plan, String> {
        plan::plan(&targets, &findings, policy)
    }

    fn emit_commands(
        &self,
        targets: Vec<Target>,
        plan: Plan,
        policy: Policy,
    ) -> Result<Vec<Step>, String> {
        emit::steps(&targets, &plan, &policy)
    }
}
