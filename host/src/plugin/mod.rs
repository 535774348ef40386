//! Patcher plugins: loading WebAssembly components, caching their compiled form, and calling
//! them in a sandbox with the host's capabilities (image-fs, package-index, http to granted
//! origins, log) and nothing else.
//!
//! The host speaks the newest contract (0.5, [`v0_5`]); plugins built against 0.1 to 0.4 are
//! loaded too and converted at the edge ([`v0_1`]..[`v0_4`]), so the rest of the host only knows
//! its own model ([`crate::model`]).

mod cache;
mod convert;
pub mod grants;
mod sandbox;
mod v0_1;
mod v0_2;
mod v0_3;
mod v0_4;
mod v0_5;

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::http::PluginHttp;
use crate::image::ImageView;
use crate::index::PackageIndex;

/// Plugins are called with, and answer in, the host's model; each contract converts at the edge.
pub use crate::model::{
    DownloadStep, FetchStep, Finding, IndexSpec, Manifest, NameRule, OptionKind, OptionSpec,
    PackageClass, PatchLevel, Placement, Plan, PluginInfo, Policy, RunStep, Skip, Step, Target,
    ToolingOutput, ToolingStep, Update, WriteStep,
};
use convert::{Convert, to_wit};
use v0_5::{http, image_fs, log, package_index};

/// The contract this host speaks: plugins export `copa:plugin/patcher@0.5.*`, or an older minor
/// of the same major that the host converts.
pub const CONTRACT_INTERFACE: &str = "copa:plugin/patcher";
pub const CONTRACT_MAJOR_MINOR: (u64, u64) = (0, 5);
/// The minors of major 0 this host still loads.
const SUPPORTED_MINORS: &[u64] = &[1, 2, 3, 4, 5];

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// Bounds for one call into a plugin.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Linear memory a plugin may grow to, all its memories together.
    pub memory_bytes: usize,
    /// Instructions (wasmtime fuel) a call may execute. Host calls (index look-ups) are not
    /// counted, so a slow network never trips it; an endless loop always does.
    pub fuel: u64,
    /// Wall-clock time a call may take, host calls (HTTP) included.
    pub wall_clock: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            fuel: 20_000_000_000,
            // Generous: a plan may read many index pages, each allowed minutes by `http`.
            wall_clock: std::time::Duration::from_secs(30 * 60),
        }
    }
}

/// Where a plugin came from, as `plugins list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built-in"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What a plugin call may touch: the image being patched, the package indexes, and the origins
/// granted to it (none when `http` is absent).
pub struct Capabilities {
    pub image: Arc<ImageView>,
    pub index: Arc<PackageIndex>,
    pub http: Option<Arc<PluginHttp>>,
}

pub struct PluginHost {
    engine: Engine,
    linker: Linker<State>,
    limits: Limits,
    cache_dir: Option<PathBuf>,
}

pub struct Plugin {
    pub info: PluginInfo,
    /// What its manifest declares beyond `info`; none for plugins before 0.4, which declare
    /// nothing and are held only to what their contract allowed.
    pub declared: Option<Declared>,
    /// How its package names compare: declared since 0.5, what the host assumed before.
    pub package_names: NameRule,
    pub origin: Origin,
    /// The contract version the plugin was built against ("0.1.0").
    pub contract: String,
    /// Imports resolved once; each call only instantiates.
    pre: Pre,
}

/// A manifest's declarations beyond the plugin's info (see `manifest` in patcher.wit).
#[derive(Clone, Debug)]
pub struct Declared {
    pub indexes: Vec<IndexSpec>,
    pub tooling: Vec<String>,
    pub root_run_steps: bool,
    pub options: Vec<OptionSpec>,
}

/// What a plugin says of itself: a manifest since 0.4, its info before.
enum Described {
    Manifest(Manifest),
    Info(PluginInfo),
}

/// A plugin ready to instantiate, by the contract minor it was built against.
enum Pre {
    V0_5(v0_5::PluginPre<State>),
    V0_4(v0_4::PluginPre<State>),
    V0_3(v0_3::PluginPre<State>),
    V0_2(v0_2::PluginPre<State>),
    V0_1(v0_1::PluginPre<State>),
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: sandbox::CallLimiter,
    caps: Option<Arc<Capabilities>>,
    plugin: String,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl PluginHost {
    /// `cache_dir`: where compiled plugins are kept between runs (`None`: compile every time).
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| anyhow!("creating the wasm engine: {e}"))?;
        sandbox::start_ticking(&engine);
        if let Some(dir) = &cache_dir {
            cache::reclaim(dir);
            if !cache::is_private(dir) {
                tracing::warn!(
                    "the plugin cache {} is not yours alone to write; plugins are compiled without it",
                    dir.display()
                );
            }
        }
        let mut linker = Linker::new(&engine);
        // WASI is linked because Rust's std imports it; the context grants nothing (no preopens,
        // no environment, no sockets), so it only serves clocks, randomness and stderr.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow!("linking WASI: {e}"))?;
        v0_5::Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("linking the host capabilities: {e}"))?;
        v0_4::Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("linking the host capabilities of contract 0.4: {e}"))?;
        v0_3::Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("linking the host capabilities of contract 0.3: {e}"))?;
        v0_2::Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("linking the host capabilities of contract 0.2: {e}"))?;
        v0_1::Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("linking the host capabilities of contract 0.1: {e}"))?;
        Ok(PluginHost {
            engine,
            linker,
            limits,
            cache_dir,
        })
    }

    /// The default cache: `$COPA_HOST_CACHE_DIR`, else the user's cache dir.
    pub fn default_cache_dir() -> Option<PathBuf> {
        std::env::var_os("COPA_HOST_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("copa-host")))
            .map(|d| d.join("plugins"))
    }

    /// Built-in plugins, then every `*.wasm` in `dirs` (in order); a later plugin with the name
    /// of an earlier one replaces it.
    pub fn load_all(&self, dirs: &[PathBuf]) -> Result<Vec<Plugin>> {
        let mut plugins: Vec<Plugin> = Vec::new();
        for (name, bytes) in BUILTIN_PLUGINS {
            let plugin = self
                .load(bytes, Origin::Builtin)
                .with_context(|| format!("built-in plugin {name}"))?;
            plugins.push(plugin);
        }
        for dir in dirs {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| anyhow!("plugin directory {}: {e}", dir.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "wasm"))
                .collect();
            files.sort();
            for file in files {
                let bytes =
                    std::fs::read(&file).map_err(|e| anyhow!("plugin {}: {e}", file.display()))?;
                let plugin = self.load(&bytes, Origin::File(file))?;
                plugins.retain(|p| p.info.name != plugin.info.name);
                plugins.push(plugin);
            }
        }
        Ok(plugins)
    }

    pub fn load(&self, wasm: &[u8], origin: Origin) -> Result<Plugin> {
        let component = self
            .compile(wasm)
            .map_err(|e| anyhow!("plugin {origin}: not a loadable component: {e}"))?;
        let (contract, minor) = self.contract_version(&component, &origin)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(|pre| match minor {
                1 => v0_1::PluginPre::new(pre).map(Pre::V0_1),
                2 => v0_2::PluginPre::new(pre).map(Pre::V0_2),
                3 => v0_3::PluginPre::new(pre).map(Pre::V0_3),
                4 => v0_4::PluginPre::new(pre).map(Pre::V0_4),
                _ => v0_5::PluginPre::new(pre).map(Pre::V0_5),
            })
            .map_err(|e| {
                anyhow!("plugin {origin}: imports what this host does not provide: {e}")
            })?;
        let mut plugin = Plugin {
            info: PluginInfo {
                name: origin.to_string(),
                version: String::new(),
                package_class: PackageClass::Library,
                report_types: Vec::new(),
                purl_types: Vec::new(),
                description: String::new(),
            },
            declared: None,
            package_names: NameRule::default(),
            origin,
            contract,
            pre,
        };
        let described = self.call(&plugin, None, "describe", |p, s| match p {
            Instance::V0_5(p) => p.call_describe(s).map(|m| Described::Manifest(m.convert())),
            Instance::V0_4(p) => p.call_describe(s).map(|m| Described::Manifest(m.convert())),
            Instance::V0_3(p) => p
                .call_info(s)
                .map(|i| Described::Info(v0_3::plugin_info(i).convert())),
            Instance::V0_2(p) => p
                .call_info(s)
                .map(|i| Described::Info(v0_2::plugin_info(i).convert())),
            Instance::V0_1(p) => p
                .call_info(s)
                .map(|i| Described::Info(v0_1::plugin_info(i).convert())),
        })?;
        match described {
            Described::Manifest(m) => {
                let declared = Declared {
                    indexes: m.indexes,
                    tooling: m.tooling,
                    root_run_steps: m.root_run_steps,
                    options: m.options,
                };
                check_manifest(&m.info.name, &declared)?;
                plugin.info = m.info;
                plugin.declared = Some(declared);
                plugin.package_names = m.package_names;
            }
            // Before 0.4 a plugin declared only its info, and is held to what its contract allowed.
            Described::Info(info) => {
                plugin.package_names = v0_4::package_names(&info);
                plugin.info = info;
            }
        }
        Ok(plugin)
    }

    /// Loads the precompiled form from the cache when the engine can use it, else compiles
    /// and stores it. The key covers the wasm bytes and the engine's compatibility hash, so a
    /// host upgrade or different settings never load stale code.
    fn compile(&self, wasm: &[u8]) -> wasmtime::Result<Component> {
        let Some(dir) = self.cache_dir.as_ref().filter(|dir| cache::is_private(dir)) else {
            return Component::new(&self.engine, wasm);
        };
        let mut engine_hash = std::hash::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let key = format!(
            "{}-{:016x}.cwasm",
            hex::encode(Sha256::digest(wasm)),
            engine_hash.finish()
        );
        let path = dir.join(key);
        if path.exists() && cache::is_private(&path) {
            // SAFETY: the file is this user's alone, and only this host writes the cache
            // (atomically, below) from its own engine's output; wasmtime checks the header and
            // compatibility before using it.
            if let Ok(component) = unsafe { Component::deserialize_file(&self.engine, &path) } {
                return Ok(component);
            }
        }
        let compiled = self.engine.precompile_component(wasm)?;
        // A cache we cannot write only costs speed.
        let _ = cache::write_atomically(dir, &path, &compiled);
        // SAFETY: the bytes were produced by this engine a moment ago.
        unsafe { Component::deserialize(&self.engine, &compiled) }
    }

    /// The contract version the component exports, and its minor.
    fn contract_version(&self, component: &Component, origin: &Origin) -> Result<(String, u64)> {
        let ty = component.component_type();
        let exported: Vec<String> = ty
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let version = exported
            .iter()
            .find_map(|name| name.strip_prefix(CONTRACT_INTERFACE)?.strip_prefix('@'))
            .ok_or_else(|| {
                anyhow!(
                    "plugin {origin}: does not export {CONTRACT_INTERFACE} (exports: {})",
                    exported.join(", ")
                )
            })?;
        let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(major), Some(minor))
                if major == CONTRACT_MAJOR_MINOR.0 && SUPPORTED_MINORS.contains(&minor) =>
            {
                Ok((version.to_string(), minor))
            }
            _ => bail!(
                "plugin {origin}: built for {CONTRACT_INTERFACE}@{version}, this host speaks {}.{}.x \
                 and loads {}.{{{}}}",
                CONTRACT_MAJOR_MINOR.0,
                CONTRACT_MAJOR_MINOR.1,
                CONTRACT_MAJOR_MINOR.0,
                SUPPORTED_MINORS
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    pub fn detect(&self, plugin: &Plugin, caps: &Arc<Capabilities>) -> Result<Vec<Target>> {
        self.call(plugin, Some(caps), "detect", |p, s| match p {
            Instance::V0_5(p) => Ok(p.call_detect(s)?.map(Convert::convert)),
            Instance::V0_4(p) => Ok(p.call_detect(s)?.map(Convert::convert)),
            Instance::V0_3(p) => Ok(p.call_detect(s)?.map(|targets| {
                targets
                    .into_iter()
                    .map(|t| v0_3::target_from(t).convert())
                    .collect()
            })),
            Instance::V0_2(p) => Ok(p.call_detect(s)?.map(|targets| {
                targets
                    .into_iter()
                    .map(|t| v0_2::target_from(t).convert())
                    .collect()
            })),
            Instance::V0_1(p) => Ok(p.call_detect(s)?.map(|targets| {
                targets
                    .into_iter()
                    .map(|t| v0_1::target_from(t).convert())
                    .collect()
            })),
        })?
        .map_err(|e| anyhow!("plugin {}: detect: {e}", plugin.info.name))
    }

    pub fn plan(
        &self,
        plugin: &Plugin,
        caps: &Arc<Capabilities>,
        targets: &[Target],
        findings: &[Finding],
        policy: &Policy,
    ) -> Result<Plan> {
        // Minors before 0.5 take 0.4's values, converted on to theirs.
        let older = || -> (Vec<v0_4::wit::Target>, Vec<v0_4::wit::Finding>, v0_4::wit::Policy) {
            (to_wit(targets), to_wit(findings), policy.clone().convert())
        };
        self.call(plugin, Some(caps), "plan", |p, s| match p {
            Instance::V0_5(p) => {
                let targets: Vec<v0_5::wit::Target> = to_wit(targets);
                let findings: Vec<v0_5::wit::Finding> = to_wit(findings);
                let policy = policy.clone().convert();
                Ok(p.call_plan(s, &targets, &findings, &policy)?
                    .map(Convert::convert))
            }
            Instance::V0_4(p) => {
                let (targets, findings, policy) = older();
                Ok(p.call_plan(s, &targets, &findings, &policy)?
                    .map(Convert::convert))
            }
            Instance::V0_3(p) => {
                let (targets, findings, policy) = older();
                let targets: Vec<_> = targets.iter().map(v0_3::target_to).collect();
                let findings: Vec<_> = findings.iter().map(v0_3::finding_to).collect();
                Ok(
                    p.call_plan(s, &targets, &findings, &v0_3::policy_to(&policy))?
                        .map(|plan| v0_3::plan_from(plan).convert()),
                )
            }
            Instance::V0_2(p) => {
                let (targets, findings, policy) = older();
                let targets: Vec<_> = targets.iter().map(v0_2::target_to).collect();
                let findings: Vec<_> = findings.iter().map(v0_2::finding_to).collect();
                Ok(
                    p.call_plan(s, &targets, &findings, v0_2::policy_to(&policy))?
                        .map(|plan| v0_2::plan_from(plan).convert()),
                )
            }
            Instance::V0_1(p) => {
                let (targets, findings, policy) = older();
                let targets: Vec<_> = targets.iter().map(v0_1::target_to).collect();
                let findings: Vec<_> = findings.iter().map(v0_1::finding_to).collect();
                Ok(
                    p.call_plan(s, &targets, &findings, v0_1::policy_to(&policy))?
                        .map(|plan| v0_1::plan_from(plan).convert()),
                )
            }
        })?
        .map_err(|e| anyhow!("plugin {}: plan: {e}", plugin.info.name))
    }

    pub fn emit_commands(
        &self,
        plugin: &Plugin,
        caps: &Arc<Capabilities>,
        targets: &[Target],
        plan: &Plan,
        policy: &Policy,
    ) -> Result<Vec<Step>> {
        // Minors before 0.5 take 0.4's values, converted on to theirs.
        let older = || -> (Vec<v0_4::wit::Target>, v0_4::wit::PatchPlan, v0_4::wit::Policy) {
            (to_wit(targets), plan.clone().convert(), policy.clone().convert())
        };
        self.call(plugin, Some(caps), "emit-commands", |p, s| match p {
            Instance::V0_5(p) => {
                let targets: Vec<v0_5::wit::Target> = to_wit(targets);
                let (plan, policy) = (plan.clone().convert(), policy.clone().convert());
                Ok(p.call_emit_commands(s, &targets, &plan, &policy)?
                    .map(Convert::convert))
            }
            Instance::V0_4(p) => {
                let (targets, plan, policy) = older();
                Ok(p.call_emit_commands(s, &targets, &plan, &policy)?
                    .map(Convert::convert))
            }
            Instance::V0_3(p) => {
                let (targets, plan, policy) = older();
                let targets: Vec<_> = targets.iter().map(v0_3::target_to).collect();
                let (plan, policy) = (v0_3::plan_to(&plan), v0_3::policy_to(&policy));
                Ok(p.call_emit_commands(s, &targets, &plan, &policy)?
                    .map(|steps| {
                        steps
                            .into_iter()
                            .map(|st| v0_3::step_from(st).convert())
                            .collect()
                    }))
            }
            Instance::V0_2(p) => {
                let (targets, plan, _) = older();
                let targets: Vec<_> = targets.iter().map(v0_2::target_to).collect();
                Ok(p.call_emit_commands(s, &targets, &v0_2::plan_to(&plan))?
                    .map(|steps| {
                        steps
                            .into_iter()
                            .map(|st| v0_2::step_from(st).convert())
                            .collect()
                    }))
            }
            Instance::V0_1(p) => {
                let (targets, plan, _) = older();
                let targets: Vec<_> = targets.iter().map(v0_1::target_to).collect();
                Ok(p.call_emit_commands(s, &targets, &v0_1::plan_to(&plan))?
                    .map(|steps| {
                        steps
                            .into_iter()
                            .map(|st| v0_1::step_from(st).convert())
                            .collect()
                    }))
            }
        })?
        .map_err(|e| anyhow!("plugin {}: emit-commands: {e}", plugin.info.name))
    }

    /// One call in a fresh store: a trapped instance is dead, and no state may leak between calls.
    fn call<R>(
        &self,
        plugin: &Plugin,
        caps: Option<&Arc<Capabilities>>,
        function: &str,
        f: impl FnOnce(Instance<'_>, &mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        let stderr = MemoryOutputPipe::new(64 << 10);
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .build();
        let state = State {
            wasi,
            table: ResourceTable::new(),
            limits: sandbox::CallLimiter::new(self.limits.memory_bytes),
            caps: caps.cloned(),
            plugin: plugin.info.name.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store
            .set_fuel(self.limits.fuel)
            .map_err(|e| anyhow!("setting fuel: {e}"))?;
        store.set_epoch_deadline(sandbox::ticks(self.limits.wall_clock));
        store.epoch_deadline_trap();
        let name = &plugin.info.name;
        let result = match &plugin.pre {
            Pre::V0_5(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| f(Instance::V0_5(i.copa_plugin_patcher()), &mut store)),
            Pre::V0_4(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| f(Instance::V0_4(i.copa_plugin_patcher()), &mut store)),
            Pre::V0_3(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| f(Instance::V0_3(i.copa_plugin_patcher()), &mut store)),
            Pre::V0_2(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| f(Instance::V0_2(i.copa_plugin_patcher()), &mut store)),
            Pre::V0_1(pre) => pre
                .instantiate(&mut store)
                .and_then(|i| f(Instance::V0_1(i.copa_plugin_patcher()), &mut store)),
        };
        result.map_err(|e| {
            // A Rust panic aborts with `unreachable`; its message on stderr says what happened.
            let reason = panic_message(&String::from_utf8_lossy(&stderr.contents()))
                .unwrap_or_else(|| trap_reason(&e, &self.limits));
            anyhow!("plugin {name}: {function} failed: {reason}")
        })
    }
}

/// The patcher export of an instance, by contract minor.
enum Instance<'a> {
    V0_5(&'a v0_5::wit::Guest),
    V0_4(&'a v0_4::wit::Guest),
    V0_3(&'a v0_3::Guest),
    V0_2(&'a v0_2::Guest),
    V0_1(&'a v0_1::Guest),
}

/// "panicked at src/lib.rs:4:9: message" from Rust's panic output ("thread '..' panicked at
/// LOCATION:" then the message on the next line).
fn panic_message(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines();
    let location = lines.by_ref().find_map(|l| {
        l.split_once("panicked at ")
            .map(|(_, at)| at.trim_end_matches(':').to_string())
    })?;
    let message = lines.next().unwrap_or_default().trim();
    Some(format!("panicked at {location}: {message}"))
}

/// The first line of a wasmtime error, in words a user can act on.
fn trap_reason(error: &wasmtime::Error, limits: &Limits) -> String {
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::OutOfFuel => "exceeded its instruction budget (endless loop?)".into(),
            wasmtime::Trap::Interrupt => format!(
                "ran longer than its time limit ({} s)",
                limits.wall_clock.as_secs()
            ),
            wasmtime::Trap::StackOverflow => "stack overflow".into(),
            other => format!("trapped: {other}"),
        };
    }
    let text = format!("{error:#}");
    if text.contains(sandbox::OUT_OF_MEMORY) {
        return "exceeded its memory limit".into();
    }
    text.lines().next().unwrap_or("unknown error").to_string()
}

impl State {
    fn caps(&self) -> Result<&Capabilities, String> {
        self.caps
            .as_deref()
            .ok_or_else(|| "no image is open during this call".to_string())
    }
}

/// image-fs and log are the same in every contract minor; each minor's bindings have their own
/// types, so the implementation is stamped out per minor.
macro_rules! unchanged_capabilities {
    ($image_fs:path, $log:path) => {
        use $image_fs as image_fs_minor;
        use $log as log_minor;

        impl image_fs_minor::Host for State {
            fn read_file(&mut self, path: String) -> Result<Vec<u8>, String> {
                self.caps()?
                    .image
                    .read_file(&path)
                    .map_err(|e| e.to_string())
            }

            fn read_dir(&mut self, path: String) -> Result<Vec<String>, String> {
                self.caps()?
                    .image
                    .read_dir(&path)
                    .map_err(|e| e.to_string())
            }

            fn stat(&mut self, path: String) -> Option<image_fs_minor::EntryStat> {
                use image_fs_minor::EntryKind;
                let caps = self.caps().ok()?;
                let entry = caps.image.stat(&path)?;
                Some(image_fs_minor::EntryStat {
                    kind: match entry.kind {
                        crate::image::EntryKind::File => EntryKind::File,
                        crate::image::EntryKind::Directory => EntryKind::Directory,
                        crate::image::EntryKind::Symlink => EntryKind::Symlink,
                        crate::image::EntryKind::Other => EntryKind::Other,
                    },
                    size: entry.size,
                    mode: entry.mode,
                    uid: entry.uid as u32,
                    gid: entry.gid as u32,
                    link_target: entry.link_target.clone(),
                })
            }

            fn find(&mut self, root: String, name: String, prune: Vec<String>) -> Vec<String> {
                match self.caps() {
                    Ok(caps) => caps.image.find(&root, &name, &prune),
                    Err(_) => Vec::new(),
                }
            }
        }

        impl log_minor::Host for State {
            fn log(&mut self, level: log_minor::Level, message: String) {
                let plugin = &self.plugin;
                let message = crate::terminal::printable(&message);
                match level {
                    log_minor::Level::Debug => tracing::debug!(plugin, "{message}"),
                    log_minor::Level::Info => tracing::info!(plugin, "{message}"),
                    log_minor::Level::Warn => tracing::warn!(plugin, "{message}"),
                }
            }
        }
    };
}
pub(crate) use unchanged_capabilities;

unchanged_capabilities!(image_fs, log);

/// package-index is the same from 0.2 on; each minor's bindings have their own types, so the
/// implementation is stamped out per minor.
macro_rules! unchanged_package_index {
    ($package_index:path) => {
        use $package_index as package_index_minor;

        impl package_index_minor::Host for State {
            fn versions(
                &mut self,
                ecosystem: String,
                name: String,
            ) -> Result<Vec<package_index_minor::PackageVersion>, String> {
                let versions = self.caps()?.index.versions(&ecosystem, &name)?;
                Ok(versions
                    .into_iter()
                    .map(|v| package_index_minor::PackageVersion {
                        version: v.version,
                        yanked: v.yanked,
                        requires_python: v.requires_python,
                        engines: v.engines,
                        deprecated: v.deprecated,
                        published: v.published,
                        dependencies: v.dependencies,
                        metadata: v.metadata,
                    })
                    .collect())
            }

            fn artifact(
                &mut self,
                ecosystem: String,
                name: String,
                version: String,
            ) -> Result<package_index_minor::PackageArtifact, String> {
                let artifact = self.caps()?.index.artifact(&ecosystem, &name, &version)?;
                Ok(package_index_minor::PackageArtifact {
                    url: artifact.url.clone(),
                    size: artifact.size,
                    sha256: artifact.sha256.clone(),
                    sha512: artifact.sha512.clone(),
                    members: artifact.file_members().map(str::to_string).collect(),
                })
            }

            fn artifact_member(
                &mut self,
                ecosystem: String,
                name: String,
                version: String,
                member: String,
            ) -> Result<Vec<u8>, String> {
                let index = &self.caps()?.index;
                index
                    .artifact(&ecosystem, &name, &version)?
                    .read_member(&member)
                    .map_err(|e| e.to_string())
            }
        }
    };
}
pub(crate) use unchanged_package_index;

unchanged_package_index!(package_index);

/// http is the same from 0.4 on; each minor's bindings have their own types, so the
/// implementation is stamped out per minor.
macro_rules! unchanged_http {
    ($http:path) => {
        use $http as http_minor;

        impl http_minor::Host for State {
            fn send(
                &mut self,
                request: http_minor::Request,
            ) -> Result<http_minor::Response, http_minor::Error> {
                use crate::http::{HttpError, Method, Request};
                let caps = self.caps().map_err(http_minor::Error::Invalid)?;
                let Some(client) = &caps.http else {
                    return Err(http_minor::Error::NotGranted(format!(
                        "plugin {} has no network access in this call",
                        self.plugin
                    )));
                };
                let request = Request {
                    method: match request.method {
                        http_minor::Method::Get => Method::Get,
                        http_minor::Method::Head => Method::Head,
                    },
                    url: request.url,
                    headers: request.headers,
                    max_body: request.max_body,
                };
                let response = client.send(&self.plugin, request).map_err(|e| match e {
                    HttpError::NotGranted(why) => http_minor::Error::NotGranted(why),
                    HttpError::TooLarge(limit) => http_minor::Error::TooLarge(limit),
                    HttpError::Invalid(why) => http_minor::Error::Invalid(why),
                    HttpError::Failed(why) => http_minor::Error::Failed(why),
                })?;
                Ok(http_minor::Response {
                    status: response.status,
                    url: response.url,
                    headers: response.headers,
                    body: response.body,
                })
            }
        }
    };
}
pub(crate) use unchanged_http;

unchanged_http!(http);

/// A manifest the host can act on: ecosystems users can name, absolute default URLs, option keys
/// given once. One line naming the plugin otherwise.
fn check_manifest(name: &str, declared: &Declared) -> Result<()> {
    let bad_id = |id: &str| {
        id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    for index in &declared.indexes {
        if bad_id(&index.ecosystem) {
            bail!(
                "plugin {name}: its manifest names an index {:?}; an ecosystem id is lower case letters, digits and -",
                index.ecosystem
            );
        }
        let origin = crate::http::Origin::of(&index.default_url).map_err(|e| {
            anyhow!(
                "plugin {name}: the default URL of its index {}: {e}",
                index.ecosystem
            )
        })?;
        if origin.is_local() {
            bail!(
                "plugin {name}: its index {} defaults to {origin}, this machine or a private network; only a user grants such an origin ({} {}=URL)",
                index.ecosystem,
                crate::setting::Setting::Index,
                index.ecosystem
            );
        }
    }
    for (i, option) in declared.options.iter().enumerate() {
        if declared.options[..i].iter().any(|o| o.key == option.key) {
            bail!(
                "plugin {name}: its manifest declares the option {} twice",
                option.key
            );
        }
    }
    Ok(())
}

/// The conversions of the types every older minor shares with the newest unchanged (plugin
/// info, targets, findings, plans), stamped out per minor: `old` and `new` name the minor's and
/// the newest patcher interfaces where it is used. `(notes)` for the minors whose updates carry
/// notes (0.3).
macro_rules! older_patcher_types {
    (@notes_from $update:ident) => {
        Vec::new()
    };
    (@notes_from $update:ident notes) => {
        $update.notes
    };
    ($($notes:ident)?) => {
        fn update_from(u: old::Update) -> new::Update {
            let (to_version, at_least) = $crate::plugin::from_legacy_to_version(u.to_version);
            new::Update {
                target_id: u.target_id,
                package: u.package,
                from_version: u.from_version,
                to_version,
                at_least,
                fixes: u.fixes,
                notes: $crate::plugin::older_patcher_types!(@notes_from u $($notes)?),
            }
        }

        fn update_to(u: &new::Update) -> old::Update {
            old::Update {
                target_id: u.target_id.clone(),
                package: u.package.clone(),
                from_version: u.from_version.clone(),
                to_version: $crate::plugin::to_legacy_to_version(&u.to_version, u.at_least),
                fixes: u.fixes.clone(),
                $($notes: u.$notes.clone(),)?
            }
        }

        pub(in crate::plugin) fn plugin_info(info: old::PluginInfo) -> new::PluginInfo {
            new::PluginInfo {
                name: info.name,
                version: info.version,
                package_class: match info.package_class {
                    old::PackageClass::Os => new::PackageClass::Os,
                    old::PackageClass::Library => new::PackageClass::Library,
                },
                report_types: info.report_types,
                purl_types: info.purl_types,
                description: info.description,
            }
        }

        /// `run` steps are the same record in every minor.
        pub(in crate::plugin) fn run_step_from(r: old::RunStep) -> new::RunStep {
            new::RunStep {
                description: r.description,
                argv: r.argv,
                env: r.env,
                workdir: r.workdir,
                user: r.user,
                index_ecosystem: r.index_ecosystem,
                exclude: r.exclude,
                updates: r.updates,
            }
        }

        pub(in crate::plugin) fn target_from(t: old::Target) -> new::Target {
            new::Target {
                id: t.id,
                kind: t.kind,
                runtime_version: t.runtime_version,
                packages: t
                    .packages
                    .into_iter()
                    .map(|p| new::InstalledPackage {
                        name: p.name,
                        version: p.version,
                        location: p.location,
                    })
                    .collect(),
                unpatchable_reason: t.unpatchable_reason,
                attributes: t.attributes,
            }
        }

        pub(in crate::plugin) fn target_to(t: &new::Target) -> old::Target {
            old::Target {
                id: t.id.clone(),
                kind: t.kind.clone(),
                runtime_version: t.runtime_version.clone(),
                packages: t
                    .packages
                    .iter()
                    .map(|p| old::InstalledPackage {
                        name: p.name.clone(),
                        version: p.version.clone(),
                        location: p.location.clone(),
                    })
                    .collect(),
                unpatchable_reason: t.unpatchable_reason.clone(),
                attributes: t.attributes.clone(),
            }
        }

        pub(in crate::plugin) fn finding_to(f: &new::Finding) -> old::Finding {
            old::Finding {
                vulnerability_id: f.vulnerability_id.clone(),
                package_name: f.package_name.clone(),
                installed_version: f.installed_version.clone(),
                fixed_versions: f.fixed_versions.clone(),
                pkg_path: f.pkg_path.clone(),
                report_target: f.report_target.clone(),
                report_type: f.report_type.clone(),
                purl: f.purl.clone(),
                severity: f.severity.clone(),
                status: f.status.clone(),
            }
        }

        pub(in crate::plugin) fn patch_level(level: new::PatchLevel) -> old::PatchLevel {
            match level {
                new::PatchLevel::Patch => old::PatchLevel::Patch,
                new::PatchLevel::Minor => old::PatchLevel::Minor,
                new::PatchLevel::Major => old::PatchLevel::Major,
            }
        }

        pub(in crate::plugin) fn plan_from(p: old::PatchPlan) -> new::PatchPlan {
            new::PatchPlan {
                updates: p
                    .updates
                    .into_iter()
                    .map(update_from)
                    .collect(),
                skips: p
                    .skips
                    .into_iter()
                    .map(|s| new::Skip {
                        target_id: s.target_id,
                        package: s.package,
                        vulnerabilities: s.vulnerabilities,
                        reason: s.reason,
                    })
                    .collect(),
            }
        }

        pub(in crate::plugin) fn plan_to(p: &new::PatchPlan) -> old::PatchPlan {
            old::PatchPlan {
                updates: p
                    .updates
                    .iter()
                    .map(update_to)
                    .collect(),
                skips: p
                    .skips
                    .iter()
                    .map(|s| old::Skip {
                        target_id: s.target_id.clone(),
                        package: s.package.clone(),
                        vulnerabilities: s.vulnerabilities.clone(),
                        reason: s.reason.clone(),
                    })
                    .collect(),
            }
        }
    };
}
pub(crate) use older_patcher_types;

/// Before 0.4, an update that is only a minimum said so with this prefix on `to-version`.
const LEGACY_AT_LEAST: &str = ">=";

/// An older plugin's `to-version` as the version and whether it is only a minimum.
pub(crate) fn from_legacy_to_version(to_version: String) -> (String, bool) {
    match to_version.strip_prefix(LEGACY_AT_LEAST) {
        Some(minimum) => (minimum.to_owned(), true),
        None => (to_version, false),
    }
}

/// An update's `to-version` as an older plugin reads it.
pub(crate) fn to_legacy_to_version(to_version: &str, at_least: bool) -> String {
    if at_least {
        format!("{LEGACY_AT_LEAST}{to_version}")
    } else {
        to_version.to_owned()
    }
}

/// The steps of 0.2 and 0.3 (the same records), into the newest contract's.
macro_rules! older_steps {
    () => {
        pub(in crate::plugin) fn step_from(step: old::Step) -> new::Step {
            match step {
                old::Step::Run(r) => new::Step::Run(run_step_from(r)),
                old::Step::Fetch(f) => new::Step::Fetch(new::FetchStep {
                    description: f.description,
                    ecosystem: f.ecosystem,
                    name: f.name,
                    version: f.version,
                    placements: f
                        .placements
                        .into_iter()
                        .map(|p| new::Placement {
                            member: p.member,
                            path: p.path,
                            mode: p.mode,
                            uid: p.uid,
                            gid: p.gid,
                            replace: p.replace,
                        })
                        .collect(),
                    updates: f.updates,
                }),
                old::Step::Write(w) => new::Step::Write(new::WriteStep {
                    description: w.description,
                    path: w.path,
                    contents: w.contents,
                    mode: w.mode,
                    uid: w.uid,
                    gid: w.gid,
                    updates: w.updates,
                }),
                old::Step::Tooling(t) => new::Step::Tooling(new::ToolingStep {
                    description: t.description,
                    tooling: t.tooling,
                    default_image: t.default_image,
                    argv: t.argv,
                    env: t.env,
                    workdir: t.workdir,
                    index_ecosystem: t.index_ecosystem,
                    copy_in: t.copy_in,
                    outputs: t
                        .outputs
                        .into_iter()
                        .map(|o| new::ToolingOutput {
                            from: o.from,
                            to: o.to,
                            mode: o.mode,
                            uid: o.uid,
                            gid: o.gid,
                        })
                        .collect(),
                    updates: t.updates,
                }),
            }
        }
    };
}
pub(crate) use older_steps;
