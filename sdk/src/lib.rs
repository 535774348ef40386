//! The SDK for copa-host patchers.
//!
//! A patcher is a WebAssembly component that implements the `copa:plugin/patcher` interface. With
//! this crate, an author writes one type that implements [`Patcher`] and registers it with
//! [`register_patcher!`]; the WIT bindings stay inside the SDK.
//!
//! ```ignore
//! #[derive(Default)]
//! struct MyPatcher;
//! impl copa_plugin_sdk::Patcher for MyPatcher { /* ... */ }
//! copa_plugin_sdk::register_patcher!(MyPatcher);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release`; the `.wasm` goes into a
//! `--plugin-dir` of copa-host.

pub mod apk;
pub mod choose;
pub mod dpkg;
pub mod gomod;
pub mod npm;
pub mod nuget;
pub mod ospkg;
pub mod pep440;
pub mod route;
pub mod rpm;

mod bindings {
    wit_bindgen::generate!({
        path: "../wit/since_v0.3.0",
        world: "plugin",
    });
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Component with_types_in bindings);

pub use bindings::exports::copa::plugin::patcher::{
    FetchStep, Finding, InstalledPackage, PackageClass, PatchLevel, PatchPlan as Plan, Placement,
    PluginInfo, Policy, RunStep, Skip, Step, Target, ToolingOutput, ToolingStep, Update, WriteStep,
};

/// What a patcher does. The host calls each method in a fresh instance, so state kept between
/// calls does not survive: everything `plan` and `emit_commands` need travels in the targets.
pub trait Patcher: Sync + Send {
    fn info(&self) -> PluginInfo;
    /// Finds what this patcher can patch in the image (through [`fs`]).
    fn detect(&self) -> Result<Vec<Target>, String>;
    /// Decides the updates for the findings routed to this patcher (asking [`index`] for versions).
    fn plan(
        &self,
        targets: Vec<Target>,
        findings: Vec<Finding>,
        policy: Policy,
    ) -> Result<Plan, String>;
    /// Turns a plan into the steps the host executes, under the policy `plan` was given (its
    /// options included).
    fn emit_commands(
        &self,
        targets: Vec<Target>,
        plan: Plan,
        policy: Policy,
    ) -> Result<Vec<Step>, String>;
}

/// The values the user gave the option `key` of this plugin, in order (`--plugin-option
/// NAME:KEY=VALUE`, or a flag of the host's that stands for one).
pub fn options<'a>(policy: &'a Policy, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    policy
        .options
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A plugin-private fact that `detect` stored in a target's attributes.
pub fn attribute<'a>(target: &'a Target, key: &str) -> Option<&'a str> {
    target
        .attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The indexes of the plan's updates of `target`, as a run step lists what it applies.
pub fn updates_for(plan: &Plan, target: &Target) -> Vec<u32> {
    plan.updates
        .iter()
        .enumerate()
        .filter(|(_, u)| u.target_id == target.id)
        .map(|(i, _)| i as u32)
        .collect()
}

/// Registers the type that implements [`Patcher`]; it must implement `Default`.
#[macro_export]
macro_rules! register_patcher {
    ($patcher:ty) => {
        #[unsafe(no_mangle)]
        fn __copa_plugin_instance() -> &'static dyn $crate::Patcher {
            static INSTANCE: ::std::sync::OnceLock<$patcher> = ::std::sync::OnceLock::new();
            INSTANCE.get_or_init(<$patcher as ::core::default::Default>::default)
        }
    };
}

#[cfg(target_arch = "wasm32")]
fn plugin() -> &'static dyn Patcher {
    unsafe extern "Rust" {
        fn __copa_plugin_instance() -> &'static dyn Patcher;
    }
    // SAFETY: `register_patcher!` defines this symbol with exactly this signature.
    unsafe { __copa_plugin_instance() }
}

#[cfg(target_arch = "wasm32")]
struct Component;

#[cfg(target_arch = "wasm32")]
impl bindings::exports::copa::plugin::patcher::Guest for Component {
    fn info() -> PluginInfo {
        plugin().info()
    }
    fn detect() -> Result<Vec<Target>, String> {
        plugin().detect()
    }
    fn plan(targets: Vec<Target>, findings: Vec<Finding>, policy: Policy) -> Result<Plan, String> {
        plugin().plan(targets, findings, policy)
    }
    fn emit_commands(
        targets: Vec<Target>,
        plan: Plan,
        policy: Policy,
    ) -> Result<Vec<Step>, String> {
        plugin().emit_commands(targets, plan, policy)
    }
}

/// The read-only view of the image being patched.
pub mod fs {
    use crate::bindings::copa::plugin::image_fs as host;
    pub use crate::bindings::copa::plugin::image_fs::{EntryKind, EntryStat};

    pub fn read_file(path: &str) -> Result<Vec<u8>, String> {
        host::read_file(path)
    }

    /// A file's contents as text (invalid UTF-8 is replaced, since metadata files are not always clean).
    pub fn read_to_string(path: &str) -> Result<String, String> {
        host::read_file(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    pub fn read_dir(path: &str) -> Result<Vec<String>, String> {
        host::read_dir(path)
    }

    pub fn stat(path: &str) -> Option<EntryStat> {
        host::stat(path)
    }

    pub fn exists(path: &str) -> bool {
        host::stat(path).is_some()
    }

    pub fn is_dir(path: &str) -> bool {
        matches!(host::stat(path), Some(s) if s.kind == EntryKind::Directory)
    }

    /// Every path under `root` whose last component is `name`, not descending into `prune`d names.
    pub fn find(root: &str, name: &str, prune: &[&str]) -> Vec<String> {
        let prune: Vec<String> = prune.iter().map(|p| p.to_string()).collect();
        host::find(root, name, &prune)
    }
}

/// Package versions and package files as the host's configured index knows them.
pub mod index {
    use crate::bindings::copa::plugin::package_index as host;
    pub use crate::bindings::copa::plugin::package_index::{PackageArtifact, PackageVersion};

    pub fn versions(ecosystem: &str, name: &str) -> Result<Vec<PackageVersion>, String> {
        host::versions(ecosystem, name)
    }

    /// Downloads (once per run) and describes the artifact of one version.
    pub fn artifact(ecosystem: &str, name: &str, version: &str) -> Result<PackageArtifact, String> {
        host::artifact(ecosystem, name, version)
    }

    /// The bytes of one member of a version's artifact.
    pub fn artifact_member(
        ecosystem: &str,
        name: &str,
        version: &str,
        member: &str,
    ) -> Result<Vec<u8>, String> {
        host::artifact_member(ecosystem, name, version, member)
    }
}

/// Messages for the host's log (shown with `RUST_LOG=debug` / in progress output). Outside
/// WebAssembly (a plugin's native unit tests) they go to stderr.
pub mod log {
    #[cfg(target_arch = "wasm32")]
    fn log(level: &str, message: &str) {
        use crate::bindings::copa::plugin::log::{Level, log};
        let level = match level {
            "debug" => Level::Debug,
            "info" => Level::Info,
            _ => Level::Warn,
        };
        log(level, message);
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn log(level: &str, message: &str) {
        eprintln!("{level}: {message}");
    }

    pub fn debug(message: &str) {
        log("debug", message);
    }
    pub fn info(message: &str) {
        log("info", message);
    }
    pub fn warn(message: &str) {
        log("warn", message);
    }
}
