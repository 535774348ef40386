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
//! `--plugin-dir` of copa-host. The bindings are those of contract 0.5 (`wit/since_v0.5.0`):
//! such a plugin needs a host that loads 0.5 plugins (one that also loads those of 0.1 to 0.4,
//! built against older SDKs or none).
//!
//! The host reads a plugin's [`Manifest`] ([`Patcher::manifest`]) before anything runs and holds
//! the plugin to it: the indexes it reads over [`http`] (each grants the plugin an origin), the
//! tooling images it names, whether its `run` steps may run as root, and the options it takes.
//! Packages of the ecosystems the host knows come through [`index`]; an ecosystem of the
//! plugin's own is read over [`http`] from the URLs [`index_urls`] gives. `sdk/examples/quill`
//! is a complete plugin for an ecosystem the host has never heard of.

pub mod apk;
pub mod apt_repo;
pub mod archive;
pub mod choose;
pub mod dpkg;
pub mod gomod;
pub mod goproxy;
pub mod npm;
pub mod npm_registry;
pub mod nuget;
pub mod nuget_config;
pub mod nuget_feed;
#[cfg(feature = "openpgp")]
pub mod openpgp;
pub mod ospkg;
pub mod pep440;
pub mod pypi;
pub mod route;
pub mod rpm;

mod bindings {
    wit_bindgen::generate!({
        path: "../wit/since_v0.5.0",
        world: "plugin",
    });
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Component with_types_in bindings);

pub use bindings::exports::copa::plugin::patcher::{
    DownloadStep, FetchStep, Finding, Index as IndexSpec, InstalledPackage, Manifest, NameRule,
    OptionKind, OptionSpec, PackageClass, PatchLevel, PatchPlan as Plan, Placement, PluginInfo,
    Policy, RunStep, Skip, Step, Target, ToolingOutput, ToolingStep, Update, WriteStep,
};

/// What a patcher does. The host calls each method in a fresh instance, so state kept between
/// calls does not survive: everything `plan` and `emit_commands` need travels in the targets.
pub trait Patcher: Sync + Send {
    /// Who the plugin is: its name, version and what it consumes.
    fn info(&self) -> PluginInfo;
    /// What the plugin may ask for, read by the host before anything runs: the indexes it reads
    /// over [`http`], the tooling images it names, whether its `run` steps run as root, and the
    /// options it takes. A step or option beyond the manifest is refused, so a plugin that needs
    /// any of these overrides this; the default asks for nothing.
    ///
    /// The manifest also says how the plugin's package names compare (`package_names`), when the
    /// host matches a scanner's name to an installed package for the VEX document. The default
    /// ignores ASCII case and has no separators ("PyYAML" is "pyyaml", "a-b" is not "a_b"): what
    /// the host did for every ecosystem but Python's before contract 0.5. A plugin whose names
    /// compare otherwise (case-sensitive, or Python's "-_.") overrides it.
    fn manifest(&self) -> Manifest {
        asks_for_nothing(self.info())
    }
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

/// The manifest of a plugin that asks for nothing beyond `info`: no index, no tooling, no `run`
/// step as root, no option; package names compare ignoring ASCII case, without separators (see
/// [`Patcher::manifest`]). A plugin that needs something else starts from it:
/// `Manifest { root_run_steps: true, ..asks_for_nothing(self.info()) }`.
pub fn asks_for_nothing(info: PluginInfo) -> Manifest {
    Manifest {
        info,
        indexes: vec![],
        tooling: vec![],
        root_run_steps: false,
        options: vec![],
        package_names: NameRule {
            ignore_case: true,
            separators: String::new(),
        },
    }
}

/// OpenSSL's variable for a CA bundle's path, which Go's crypto/x509 reads too: a step's
/// `ca_variables` for a tool that follows OpenSSL. Before contract 0.5 the host set it for every
/// index but PyPI's, npm's and deb's; the apk, rpm and go steps declare it now.
pub const OPENSSL_CA_VARIABLES: &[&str] = &["SSL_CERT_FILE"];

/// The values the user gave the option `key` of this plugin, in order (`--plugin-option
/// NAME:KEY=VALUE`, or a flag of the host's that stands for one).
pub fn options<'a>(policy: &'a Policy, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    policy
        .options
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The URLs in force for the plugin's index `ecosystem` (one its manifest declares), in the
/// order to try: the user's `--index ECOSYSTEM=URL`s, else the index's default URL. Empty for an
/// ecosystem the manifest does not declare.
pub fn index_urls<'a>(
    policy: &'a Policy,
    ecosystem: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    policy
        .indexes
        .iter()
        .filter(move |(e, _)| e == ecosystem)
        .map(|(_, url)| url.as_str())
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
    fn describe() -> Manifest {
        plugin().manifest()
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

/// Package versions and package files as the host's configured index knows them, for the
/// ecosystems the host itself knows (PyPI, npm, NuGet, Go, deb, ...); see [`http`] for an index
/// of the plugin's own.
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

/// HTTP(S) requests to the origins the host granted this plugin: those of the URLs in
/// `policy.indexes` (see [`index_urls`]), from the indexes its [`Manifest`] declares. The host
/// adds credentials, CA certificates and proxy settings itself, follows redirects within the
/// grants and caches GET answers for the run, so asking twice for the same URL is free.
pub mod http {
    use crate::bindings::copa::plugin::http as host;
    pub use crate::bindings::copa::plugin::http::{Method, Request, Response};

    /// Why a request got no answer. A status such as 404 is an answer ([`Response::status`]),
    /// never an error. The same cases as the contract's `http.error`, as a type of the SDK's own
    /// so that it can print as one line (the generated type prints as `Debug`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Error {
        /// The URL's origin (or a redirect's) is not granted to this plugin: the host's message.
        NotGranted(String),
        /// The body was longer than the limit in force, in bytes.
        TooLarge(u64),
        /// A malformed request: a bad URL, or a header the host sets itself.
        Invalid(String),
        /// The server could not be reached or broke off: why.
        Failed(String),
    }

    impl From<host::Error> for Error {
        fn from(error: host::Error) -> Self {
            match error {
                host::Error::NotGranted(why) => Error::NotGranted(why),
                host::Error::TooLarge(limit) => Error::TooLarge(limit),
                host::Error::Invalid(why) => Error::Invalid(why),
                host::Error::Failed(why) => Error::Failed(why),
            }
        }
    }

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Error::NotGranted(why) => write!(f, "not granted: {why}"),
                Error::TooLarge(limit) => write!(f, "larger than {limit} bytes"),
                Error::Invalid(why) => write!(f, "invalid request: {why}"),
                Error::Failed(why) => write!(f, "failed: {why}"),
            }
        }
    }

    impl std::error::Error for Error {}

    impl Response {
        /// The first value of header `name` (compared case-insensitively; the host gives names
        /// in lower case, callers need not).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Sends one request as given (for what [`get`] and [`head`] do not cover).
    pub fn send(request: &Request) -> Result<Response, Error> {
        host::send(request).map_err(Error::from)
    }

    /// GETs `url` with `headers`, accepting a body of at most `max_body` bytes (a longer one is
    /// [`Error::TooLarge`], never cut short).
    pub fn get(url: &str, headers: &[(&str, &str)], max_body: u64) -> Result<Response, Error> {
        send(&request(Method::Get, url, headers, max_body))
    }

    /// HEADs `url` with `headers`: the status and headers, no body.
    pub fn head(url: &str, headers: &[(&str, &str)]) -> Result<Response, Error> {
        send(&request(Method::Head, url, headers, 0))
    }

    fn request(method: Method, url: &str, headers: &[(&str, &str)], max_body: u64) -> Request {
        Request {
            method,
            url: url.to_string(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            max_body,
        }
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
