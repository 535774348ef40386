//! The host's own model of what plugins declare, find, plan and ask for. Engine, executor, VEX
//! and summary work on these types only; each contract version converts to and from them at the
//! edge (`plugin::v0_5` for the newest, `plugin::v0_4` for 0.4 and the older minors through it),
//! so a new contract changes one conversion module, not the pipeline. The meaning of every field
//! is the contract's (wit/since_v0.5.0/patcher.wit); what is written here is what the host relies
//! on.

/// Whether a plugin patches the OS's packages or an application's libraries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageClass {
    Os,
    Library,
}

/// How far an update may move from the installed version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PatchLevel {
    Patch,
    Minor,
    Major,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub package_class: PackageClass,
    /// Scanner report types it handles ("python-pkg").
    pub report_types: Vec<String>,
    /// Package URL types it handles ("pypi"); its VEX products are named with them.
    pub purl_types: Vec<String>,
    pub description: String,
}

/// An index a plugin reads over `http`: the id users name in `--index ECOSYSTEM=URL`, and the
/// URL (whose origin is granted) used when they name none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSpec {
    pub ecosystem: String,
    pub default_url: String,
    pub description: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    Text,
    Flag,
    Number,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    pub key: String,
    pub kind: OptionKind,
    pub repeatable: bool,
    pub description: String,
}

/// What a plugin declares before it runs; it is held to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub info: PluginInfo,
    pub indexes: Vec<IndexSpec>,
    /// Tooling kinds its `tooling` steps may name.
    pub tooling: Vec<String>,
    /// Whether its `run` steps may run as root.
    pub root_run_steps: bool,
    pub options: Vec<OptionSpec>,
    pub package_names: NameRule,
}

/// When two spellings name the same package of a plugin's ecosystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameRule {
    /// ASCII case does not matter.
    pub ignore_case: bool,
    /// Characters that stand for one another, a run of them counting as one.
    pub separators: String,
}

/// Names that differ only in ASCII case are the same: what most package managers do.
impl Default for NameRule {
    fn default() -> Self {
        NameRule {
            ignore_case: true,
            separators: String::new(),
        }
    }
}

impl NameRule {
    /// Whether `a` and `b` name the same package under this rule.
    pub fn same(&self, a: &str, b: &str) -> bool {
        self.folded(a).eq(self.folded(b))
    }

    /// The name's characters with case folded and each run of separators as the first one.
    fn folded<'a>(&'a self, name: &'a str) -> impl Iterator<Item = char> + 'a {
        let mut in_run = false;
        name.chars().filter_map(move |c| {
            if self.separators.contains(c) {
                let first = !in_run;
                in_run = true;
                return first.then(|| self.separators.chars().next()).flatten();
            }
            in_run = false;
            Some(if self.ignore_case {
                c.to_ascii_lowercase()
            } else {
                c
            })
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledPackage {
    pub name: String,
    pub version: String,
    /// Where the package's metadata lives in the image.
    pub location: String,
}

/// Something a plugin can patch (a venv, an npm project, the dpkg database), as it detected it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Stable id, usually a path in the image; updates and skips refer to it.
    pub id: String,
    pub kind: String,
    pub runtime_version: Option<String>,
    pub packages: Vec<InstalledPackage>,
    pub unpatchable_reason: Option<String>,
    /// The plugin's own facts, handed back to it unchanged.
    pub attributes: Vec<(String, String)>,
}

/// One vulnerability of one package, as the report said it, routed to a plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub vulnerability_id: String,
    pub package_name: String,
    pub installed_version: String,
    /// One fixed version per release line; empty when none is published.
    pub fixed_versions: Vec<String>,
    pub pkg_path: Option<String>,
    pub report_target: String,
    pub report_type: String,
    pub purl: Option<String>,
    pub severity: String,
    pub status: String,
}

/// The user's choices a plugin plans under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub library_patch_level: PatchLevel,
    /// No report: every update the package manager offers within the installed release.
    pub update_all: bool,
    /// How far a language toolchain may move; none: never.
    pub toolchain_patch_level: Option<PatchLevel>,
    /// This plugin's options, in the order given, without the plugin's name.
    pub options: Vec<(String, String)>,
    /// (ecosystem, URL) of its indexes in force, in the order to try.
    pub indexes: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub target_id: String,
    pub package: String,
    pub from_version: String,
    pub to_version: String,
    /// `to_version` is only a minimum: verified when the installed version is at least it.
    pub at_least: bool,
    /// Vulnerability ids the new version fixes.
    pub fixes: Vec<String>,
    /// What the user must know about the update, shown with it.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    pub target_id: String,
    pub package: String,
    pub vulnerabilities: Vec<String>,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub updates: Vec<Update>,
    pub skips: Vec<Skip>,
}

/// A command in a container made from the image being patched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStep {
    pub description: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// `uid:gid`; none is root.
    pub user: Option<String>,
    /// The index ecosystem the command talks to: the step gets the run's CA bundle, proxy and
    /// the plugin's logins.
    pub index_ecosystem: Option<String>,
    /// Variables set to the CA bundle's path when the run has one.
    pub ca_variables: Vec<String>,
    /// Absolute paths (or prefixes) the command may change; a change elsewhere fails the step.
    pub changes: Vec<String>,
    /// Paths whose changes never enter the layer (caches).
    pub exclude: Vec<String>,
    /// Indexes into the plan's updates this step applies.
    pub updates: Vec<u32>,
}

/// Members of an artifact of the host's package index (older contracts), placed in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchStep {
    pub description: String,
    pub ecosystem: String,
    pub name: String,
    pub version: String,
    pub placements: Vec<Placement>,
    pub updates: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// A member of the artifact; one ending in "/" places everything below it.
    pub member: String,
    /// Absolute path in the image.
    pub path: String,
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    /// Remove what is at `path` first.
    pub replace: bool,
}

/// Bytes the plugin computed at a path, or the path removed when `contents` is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteStep {
    pub description: String,
    pub path: String,
    pub contents: Option<Vec<u8>>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub updates: Vec<u32>,
}

/// A file from a granted URL, checked against `sha256`, its members placed in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadStep {
    pub description: String,
    pub url: String,
    pub sha256: String,
    pub placements: Vec<Placement>,
    pub updates: Vec<u32>,
}

/// A command in a container made from a tooling image, its outputs copied into the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolingStep {
    pub description: String,
    /// The tooling kind ("go"), which `--tooling-image KIND=REF` replaces.
    pub tooling: String,
    pub default_image: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub index_ecosystem: Option<String>,
    pub ca_variables: Vec<String>,
    /// Paths of the target image copied to the same paths in the container first.
    pub copy_in: Vec<String>,
    pub outputs: Vec<ToolingOutput>,
    pub updates: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolingOutput {
    pub from: String,
    pub to: String,
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
}

/// The steps of a plan, run in order (see `step` in patcher.wit for how they combine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Run(RunStep),
    Fetch(FetchStep),
    Write(WriteStep),
    Tooling(ToolingStep),
    Download(DownloadStep),
}

#[cfg(test)]
mod tests {
    use super::NameRule;

    #[test]
    fn a_name_rule_folds_case_and_runs_of_separators() {
        let python = NameRule {
            ignore_case: true,
            separators: "-_.".into(),
        };
        assert!(python.same("Typing_Extensions", "typing-extensions"));
        assert!(python.same("zope.interface", "zope--interface"));
        assert!(!python.same("zopeinterface", "zope-interface"));
        let exact = NameRule {
            ignore_case: false,
            separators: String::new(),
        };
        assert!(exact.same("Newtonsoft.Json", "Newtonsoft.Json"));
        assert!(!exact.same("Newtonsoft.Json", "newtonsoft.json"));
        assert!(!exact.same("a_b", "a-b"));
    }
}
