//! The command line: parses arguments into engine options and prints results.

mod nuget;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::engine::{self, Options};
use crate::http::{Credential, Origin, split_credential};
use crate::netrc::NetrcFile;
use crate::plugin::{PackageClass, PatchLevel, PluginHost};
use crate::setting::Setting;
use copa_plugin_sdk::nuget_feed;

#[derive(Parser, Debug)]
#[command(
    name = "copa-host",
    version,
    about = "Patch vulnerable packages inside container images, with sandboxed WebAssembly patchers"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Patch an image: install the fixed versions and add them as one new layer.
    Patch(Box<PatchArgs>),
    /// Work with patcher plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum PluginsCommand {
    /// List the plugins copa-host would load.
    List {
        /// Also load every *.wasm in this directory (repeatable).
        #[arg(long = "plugin-dir", value_name = "DIR")]
        plugin_dirs: Vec<PathBuf>,
    },
}

/// VEX formats (`--format`).
#[derive(Clone, Copy, Debug, ValueEnum)]
enum VexFormat {
    Openvex,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Level {
    Patch,
    Minor,
    Major,
}

#[derive(clap::Args, Debug)]
struct PatchArgs {
    /// The image to patch: a reference (the local Docker daemon when it has the image, else
    /// the registry), `docker-daemon:REF`, `docker://REF`, `oci:DIR[:TAG]`,
    /// `docker-archive:FILE[:REF]` or `oci-archive:FILE[:TAG]`. The patched image goes beside
    /// it (same transport, tag `-t` or `<tag>-patched`) unless --push or --output-image say
    /// otherwise.
    #[arg(short, long, value_name = "IMAGE")]
    image: String,
    /// Write the patched image here instead (any transport of -i), e.g.
    /// `oci:out:v1` or `docker://registry.example/app:fixed`.
    #[arg(long, value_name = "IMAGE", conflicts_with = "push")]
    output_image: Option<String>,
    /// Push the patched image to the registry under its name (`<repo>:<tag>-patched` or -t),
    /// instead of loading it into the local daemon. Only blobs the registry lacks travel.
    #[arg(long)]
    push: bool,
    /// A registry (HOST[:PORT]) to speak plain http to.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// The platforms of a multi-platform image to patch (linux/amd64,linux/arm64); the others
    /// are carried over unchanged. Default: this machine's.
    #[arg(long, value_delimiter = ',', value_name = "OS/ARCH")]
    platform: Vec<String>,
    /// How the patch layer is compressed: gzip, zstd or none.
    #[arg(long, default_value = "gzip", value_name = "ALGORITHM")]
    compression: String,
    /// Vulnerability report of the image (Trivy JSON unless --scanner says otherwise). Without
    /// one, every OS package with an update in the image's own repositories is upgraded (within
    /// the same release).
    #[arg(short, long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// The report's format: trivy, grype, native (a Copa update manifest v1alpha1/v1alpha2),
    /// or NAME to run the scanner plugin `copa-NAME REPORT` from PATH.
    #[arg(long, default_value = "trivy", value_name = "SCANNER")]
    scanner: String,
    /// Write a VEX document about the patched image to FILE.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The format of the VEX document.
    #[arg(long, value_enum, default_value = "openvex")]
    format: VexFormat,
    /// The author named in the VEX document.
    #[arg(long, env = "COPA_VEX_AUTHOR", default_value = crate::vex::DEFAULT_AUTHOR, value_name = "NAME")]
    vex_author: String,
    /// Name of the patched image: a tag on the same repository, or a full reference.
    #[arg(short, long)]
    tag: Option<String>,
    /// Suffix for the patched image's tag when -t is not given.
    #[arg(long, default_value = "patched")]
    tag_suffix: String,
    /// Which packages to patch: os, library, or os,library.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "os",
        value_name = "TYPES"
    )]
    pkg_types: Vec<String>,
    /// The largest version jump allowed for a library.
    #[arg(long, value_enum, default_value = "patch")]
    library_patch_level: Level,
    /// Let a language toolchain (Go) move this far to fix standard-library findings; the bare
    /// flag means patch (the newest release of the same minor). Without it, toolchains stay.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "patch", value_name = "LEVEL")]
    toolchain_patch_level: Option<Level>,
    /// The image for a kind of tooling container (go=golang:1.22), instead of the patcher's
    /// default (repeatable).
    #[arg(long = "tooling-image", value_name = "KIND=REF", value_parser = parse_tooling_image)]
    tooling_images: Vec<(String, String)>,
    /// Report a package that fails and patch the rest, instead of failing the run.
    #[arg(long)]
    ignore_errors: bool,
    /// Time limit of each step in a container, e.g. 300s, 5m.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
    /// Plan and show what would be done, run nothing, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write the summary as JSON to FILE (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    summary: Option<String>,
    /// Also load every *.wasm in this directory (repeatable); a plugin named like a built-in replaces it.
    #[arg(long = "plugin-dir", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
    /// Python package index (simple API), used for planning and by pip in the container; the
    /// same as `--index pypi=URL` (default: PyPI).
    #[arg(long, env = "PIP_INDEX_URL", value_name = "URL")]
    pip_index_url: Option<String>,
    /// npm registry, for planning and for the tarballs of the run (scoped packages included);
    /// the same as `--index npm=URL` (default: registry.npmjs.org).
    #[arg(long, env = "COPA_NPM_REGISTRY", value_name = "URL")]
    npm_registry: Option<String>,
    /// Debian/Ubuntu mirror: replaces the scheme://host[:port] of every APT repository of the
    /// image, keeping its path (http://deb.debian.org/debian-security ->
    /// URL/debian-security), for planning and for apt in the run; the same as `--index deb=URL`.
    #[arg(long, env = "COPA_APT_MIRROR", value_name = "URL")]
    apt_mirror: Option<String>,
    /// A NuGet feed: the URL of a v3 service index (`.../v3/index.json`) or a folder of .nupkg
    /// files; repeatable, tried in order; nuget.org when none is given. The same as `--index
    /// nuget=URL` (a folder: `file:///DIR`). `NAME=URL` names the source, whose credentials then
    /// come from NuGetPackageSourceCredentials_NAME (`Username=...;Password=...`), sent to the
    /// URL's origin only.
    #[arg(long = "nuget-source", value_name = "[NAME=]URL|DIR")]
    nuget_sources: Vec<String>,
    /// A nuget.config: its package sources (tried after --nuget-source; each an `--index
    /// nuget=URL`), their credentials (Username, ClearTextPassword) and package source mapping
    /// (the dotnet plugin's option source-mapping). Without it, --nuget-source and --index
    /// nuget=, the user-level ~/.nuget/NuGet/NuGet.Config is read when it exists.
    #[arg(long = "nuget-config", value_name = "FILE")]
    nuget_config: Option<PathBuf>,
    /// Go module proxies (GOPROXY syntax) for the go command in the run; each http(s) proxy is
    /// also an `--index go=URL` for planning Go updates and toolchains (default:
    /// https://proxy.golang.org). direct, off and file:// are for the go command only.
    #[arg(long, env = "GOPROXY", value_name = "URLS")]
    go_proxy: Option<String>,
    /// Where the Go patcher gets the source of a module's binaries: a git URL (https, ssh, or a
    /// path in the tooling image or the image), checked out at REF (a commit, tag or branch)
    /// when given, else at the binary's vcs.revision (repeatable). Default: the module's public
    /// repository on well-known hosts, else the module proxy.
    #[arg(long = "go-source", value_name = "MODULE=GIT-URL[@REF]", value_parser = parse_go_source)]
    go_sources: Vec<String>,
    /// An option for a plugin, passed to it in its policy (repeatable; the plugin's
    /// documentation names its keys).
    #[arg(long = "plugin-option", value_name = "PLUGIN:KEY=VALUE", value_parser = parse_plugin_option)]
    plugin_options: Vec<(String, String, String)>,
    /// The URL of a plugin's package index, for the ecosystem id its manifest declares
    /// (`copa-host plugins list` shows them); repeatable, also for one ecosystem (tried in
    /// order). Grants the plugin that URL's origin instead of its default's.
    #[arg(long = "index", value_name = "ECOSYSTEM=URL", value_parser = parse_pair)]
    indexes: Vec<(String, String)>,
    /// Credentials for one origin of a plugin's index (`https://repo.example`), read from the
    /// environment variable ENV: `user:password` is sent as Basic, anything else as a Bearer
    /// token; only to that origin (repeatable).
    #[arg(long = "index-credential", value_name = "ORIGIN=ENV", value_parser = parse_pair)]
    index_credentials: Vec<(String, String)>,
    /// A netrc file (`machine HOST login USER password PASS`) whose logins serve the index
    /// origins you name (`--index` and its aliases) that no --index-credential covers, as curl
    /// and pip read it; `default` entries are ignored. Default: $NETRC, else ~/.netrc when it
    /// exists.
    #[arg(long = "netrc-file", value_name = "FILE")]
    netrc_file: Option<PathBuf>,
    /// One more origin for the plugins that read an index of ECOSYSTEM, for what their index
    /// points to elsewhere (a CDN or blob store its downloads redirect to); no credential is
    /// sent there (repeatable).
    #[arg(long = "index-origin", value_name = "ECOSYSTEM=ORIGIN", value_parser = parse_pair)]
    index_origins: Vec<(String, String)>,
    /// A CA certificate (PEM) to trust for package indexes (during planning and in the run)
    /// and registries.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

impl From<Level> for PatchLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Patch => PatchLevel::Patch,
            Level::Minor => PatchLevel::Minor,
            Level::Major => PatchLevel::Major,
        }
    }
}

/// How the command line spells a setting the library names in a message: its flag.
fn flag(setting: Setting) -> &'static str {
    match setting {
        Setting::CaCert => "--ca-cert",
        Setting::IgnoreErrors => "--ignore-errors",
        Setting::Platform => "--platform",
        Setting::PkgTypes => "--pkg-types",
        Setting::Report => "-r",
        Setting::Vex => "-o",
        Setting::Timeout => "--timeout",
        Setting::IndexCredential => "--index-credential",
        Setting::Index => "--index",
        Setting::IndexOrigin => "--index-origin",
        Setting::PluginOption => "--plugin-option",
        Setting::OutputImage => "--output-image",
        Setting::Push => "--push",
        Setting::Scanner => "--scanner",
        Setting::ToolingImage => "--tooling-image",
        Setting::NetrcFile => "--netrc-file",
    }
}

/// The longest duration a flag takes: a year, far beyond any step, and far from overflowing a
/// clock.
const MAX_DURATION_SECONDS: u64 = 365 * 24 * 3600;

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| text.split_at(i))
        .unwrap_or((text, "s"));
    let value: u64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text} (e.g. 300s, 5m, 1h)"))?;
    let unit_seconds = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("not a duration: {text} (e.g. 300s, 5m, 1h)")),
    };
    match value.checked_mul(unit_seconds) {
        Some(0) => Err(format!("not a duration: {text} (it must be at least 1s)")),
        Some(seconds) if seconds <= MAX_DURATION_SECONDS => Ok(Duration::from_secs(seconds)),
        _ => Err(format!("not a duration: {text} (at most a year)")),
    }
}

/// `KEY=VALUE` with both sides non-empty.
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !value.is_empty() => {
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text}")),
    }
}

fn parse_tooling_image(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((kind, image)) if !kind.is_empty() && !image.is_empty() => {
            Ok((kind.to_string(), image.to_string()))
        }
        _ => Err(format!(
            "expected KIND=IMAGE (go=golang:1.22), got {text:?}"
        )),
    }
}

fn parse_go_source(text: &str) -> Result<String, String> {
    match text.split_once('=') {
        Some((module, url)) if !module.trim().is_empty() && !url.trim().is_empty() => {
            Ok(text.to_string())
        }
        _ => Err(format!(
            "expected MODULE=GIT-URL[@REF] (example.com/app=https://git.example.com/app.git), got {text:?}"
        )),
    }
}

fn parse_plugin_option(text: &str) -> Result<(String, String, String), String> {
    let parsed = text
        .split_once(':')
        .and_then(|(plugin, option)| Some((plugin, option.split_once('=')?)));
    match parsed {
        Some((plugin, (key, value))) if !plugin.is_empty() && !key.is_empty() => {
            Ok((plugin.to_string(), key.to_string(), value.to_string()))
        }
        _ => Err(format!(
            "expected PLUGIN:KEY=VALUE (go:source=example.com/app=/srv/app.git), got {text:?}"
        )),
    }
}

fn plugin_dirs(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("COPA_HOST_PLUGIN_PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .filter(|d| !d.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    dirs.extend(extra.iter().cloned());
    dirs
}

impl PatchArgs {
    fn options(&self) -> Result<Options> {
        let mut package_classes = Vec::new();
        for kind in &self.pkg_types {
            match kind.trim() {
                "os" => package_classes.push(PackageClass::Os),
                "library" => package_classes.push(PackageClass::Library),
                other => {
                    bail!("--pkg-types: unknown type {other:?} (use os, library or os,library)")
                }
            }
        }
        Ok(Options {
            image: self.image.parse()?,
            output_image: self.output_image.as_deref().map(str::parse).transpose()?,
            push: self.push,
            insecure_registries: self.insecure_registries.clone(),
            compression: self.compression.parse()?,
            platforms: self
                .platform
                .iter()
                .map(|p| p.parse())
                .collect::<anyhow::Result<_>>()?,
            report: self.report.clone(),
            scanner: self.scanner.parse()?,
            tag: self.tag.clone(),
            tag_suffix: self.tag_suffix.clone(),
            package_classes,
            library_patch_level: self.library_patch_level.into(),
            toolchain_patch_level: self.toolchain_patch_level.map(Into::into),
            ignore_errors: self.ignore_errors,
            step_timeout: self.timeout,
            dry_run: self.dry_run,
            plugin_dirs: plugin_dirs(&self.plugin_dirs),
            go_proxy: self.go_proxy.clone(),
            ca_cert: self.ca_cert.clone(),
            cache_dir: PluginHost::default_cache_dir(),
            tooling_images: self.tooling_images.clone(),
            // --go-source is the Go patcher's option `source`; a nuget.config's package source
            // mapping is the .NET patcher's `source-mapping`.
            plugin_options: self
                .go_sources
                .iter()
                .map(|source| ("go".to_string(), "source".to_string(), source.clone()))
                .chain(self.nuget_feeds()?.mapping.into_iter().map(|rule| {
                    let (plugin, key) = nuget::MAPPING_OPTION;
                    (plugin.to_string(), key.to_string(), rule)
                }))
                .chain(self.plugin_options.iter().cloned())
                .collect(),
            indexes: self.indexes()?,
            index_credentials: self.credentials()?,
            netrc: match &self.netrc_file {
                Some(path) => Some(NetrcFile {
                    path: path.clone(),
                    given: true,
                }),
                None => default_netrc().map(|path| NetrcFile { path, given: false }),
            },
            index_origins: self.index_origins.clone(),
            vex: self.output.as_ref().map(|path| {
                let VexFormat::Openvex = self.format;
                crate::vex::Settings {
                    path: path.clone(),
                    author: self.vex_author.clone(),
                }
            }),
        })
    }

    /// The `--index ECOSYSTEM=URL`s that the older flags of the built-in plugins stand for:
    /// (flag, ecosystem, URL), in order. Their URLs may carry `user:password@`, as the tools
    /// they come from allow.
    fn index_aliases(&self) -> Result<Vec<(&'static str, &'static str, String)>> {
        // Each flag with the index URLs its value names.
        type Urls = fn(&str) -> Result<Vec<String>, String>;
        let table: [(&str, &str, &Option<String>, Urls); 4] = [
            (
                "--pip-index-url",
                copa_plugin_sdk::pypi::ECOSYSTEM,
                &self.pip_index_url,
                |url| Ok(vec![url.to_string()]),
            ),
            (
                "--npm-registry",
                copa_plugin_sdk::npm_registry::ECOSYSTEM,
                &self.npm_registry,
                |url| Ok(vec![url.to_string()]),
            ),
            // Substituted into the image's sources in the run: a plain URL.
            (
                "--apt-mirror",
                copa_plugin_sdk::apt_repo::ECOSYSTEM,
                &self.apt_mirror,
                |url| copa_plugin_sdk::apt_repo::mirror_url(url).map(|url| vec![url]),
            ),
            // A GOPROXY list: its http(s) proxies, in order.
            (
                "--go-proxy",
                copa_plugin_sdk::goproxy::ECOSYSTEM,
                &self.go_proxy,
                crate::index::go_http_proxies,
            ),
        ];
        let mut aliases = Vec::new();
        for (flag, ecosystem, value, urls) in table {
            let Some(value) = value else { continue };
            let urls = urls(value).map_err(|e| anyhow!("{flag}: {e}"))?;
            aliases.extend(urls.into_iter().map(|url| (flag, ecosystem, url)));
        }
        Ok(aliases)
    }

    /// What `--nuget-source` and `--nuget-config` (or the user-level config) stand for.
    fn nuget_feeds(&self) -> Result<nuget::Feeds> {
        let config = match &self.nuget_config {
            Some(path) => Some(nuget::ConfigFile::Given(path.clone())),
            // What the dotnet CLI would read; explicit sources replace it.
            None => (self.nuget_sources.is_empty()
                && !self.indexes.iter().any(|(e, _)| e == nuget_feed::ECOSYSTEM))
            .then(dirs::home_dir)
            .flatten()
            .and_then(|home| nuget::user_config(&home))
            .map(nuget::ConfigFile::UserLevel),
        };
        nuget::feeds(&self.nuget_sources, config.as_ref(), &|name| {
            std::env::var(name).ok()
        })
    }

    /// `--index`es, after those the older flags stand for (without their credentials).
    fn indexes(&self) -> Result<Vec<(String, String)>> {
        let mut indexes = Vec::new();
        for (flag, ecosystem, url) in self.index_aliases()? {
            let (url, _) = split_credential(&url).map_err(|e| anyhow!("{flag}: {e}"))?;
            indexes.push((ecosystem.to_string(), url));
        }
        let nuget = self.nuget_feeds()?.indexes;
        indexes.extend(
            nuget
                .into_iter()
                .map(|url| (nuget_feed::ECOSYSTEM.to_string(), url)),
        );
        indexes.extend(self.indexes.iter().cloned());
        Ok(indexes)
    }

    /// Each origin's credential: from an older flag's URL, or from the variable an
    /// `--index-credential ORIGIN=ENV` names (which wins). Errors never include a secret.
    fn credentials(&self) -> Result<HashMap<Origin, Credential>> {
        let mut credentials = HashMap::new();
        for (flag, _, url) in self.index_aliases()? {
            if let (url, Some(credential)) =
                split_credential(&url).map_err(|e| anyhow!("{flag}: {e}"))?
            {
                let origin = Origin::of(&url).map_err(|e| anyhow!("{flag} {url}: {e}"))?;
                credentials.insert(origin, credential);
            }
        }
        credentials.extend(self.nuget_feeds()?.credentials);
        for (origin, variable) in &self.index_credentials {
            let parsed = Origin::of(origin)
                .map_err(|e| anyhow!("--index-credential {origin}={variable}: {e}"))?;
            let value = std::env::var(variable).map_err(|_| {
                anyhow!(
                    "--index-credential {origin}={variable}: the variable {variable} is not set"
                )
            })?;
            credentials.insert(parsed, Credential::new(value));
        }
        Ok(credentials)
    }
}

/// The netrc curl and pip would read: `$NETRC`, else `~/.netrc` when there is one.
fn default_netrc() -> Option<PathBuf> {
    match std::env::var_os("NETRC") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => dirs::home_dir()
            .map(|home| home.join(".netrc"))
            .filter(|path| path.is_file()),
    }
}

pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COPA_HOST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    // Before anything could make a message that names a setting.
    crate::setting::spell_with(flag);
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Patch(args) => patch(&args).await,
            Command::Plugins {
                command: PluginsCommand::List { plugin_dirs: dirs },
            } => list_plugins(&plugin_dirs(&dirs)),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain joined, so the cause is never lost nor spread over lines.
            let message = crate::terminal::printable(&format!("{e:#}").replace('\n', " "));
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn patch(args: &PatchArgs) -> Result<()> {
    let options = args.options()?;
    for warning in args.nuget_feeds()?.warnings {
        tracing::warn!("{warning}");
    }
    let summary = engine::patch(&options).await?;
    if let Some(path) = &args.summary {
        let json = summary.to_json() + "\n";
        if path == "-" {
            std::io::stdout().write_all(json.as_bytes())?;
        } else {
            write_file_atomically(path, json.as_bytes())?;
        }
    }
    eprint!("{}", crate::terminal::printable(&summary.to_table()));
    if options.dry_run {
        eprintln!("Dry run: nothing was run or written.");
    } else if summary.patched_image.is_none() && summary.updates.is_empty() {
        eprintln!("Nothing to patch: no planned update for this image.");
    }
    Ok(())
}

fn write_file_atomically(path: &str, bytes: &[u8]) -> Result<()> {
    let path = std::path::Path::new(path);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| anyhow!("--summary {}: {e}", path.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .map_err(|e| anyhow!("--summary {}: {}", path.display(), e.error))?;
    Ok(())
}

fn list_plugins(dirs: &[PathBuf]) -> Result<()> {
    let host = PluginHost::new(Default::default(), PluginHost::default_cache_dir())?;
    let plugins = host.load_all(dirs)?;
    println!(
        "{:<10} {:<9} {:<9} {:<8} {:<20} ORIGIN",
        "NAME", "VERSION", "CONTRACT", "CLASS", "REPORT TYPES"
    );
    for plugin in plugins {
        let class = match plugin.info.package_class {
            PackageClass::Os => "os",
            PackageClass::Library => "library",
        };
        let line = format!(
            "{:<10} {:<9} {:<9} {:<8} {:<20} {}",
            plugin.info.name,
            plugin.info.version,
            plugin.contract,
            class,
            plugin.info.report_types.join(","),
            plugin.origin
        );
        println!("{}", crate::terminal::printable(&line));
        for line in manifest_lines(&plugin) {
            println!("    {}", crate::terminal::printable(&line));
        }
    }
    Ok(())
}

/// What a plugin's manifest declares beyond its info, a line each (nothing before 0.4).
fn manifest_lines(plugin: &crate::plugin::Plugin) -> Vec<String> {
    let Some(declared) = &plugin.declared else {
        return Vec::new();
    };
    let mut lines: Vec<String> = declared
        .indexes
        .iter()
        .map(|i| {
            format!(
                "index {}: {} ({}; --index {}=URL)",
                i.ecosystem, i.default_url, i.description, i.ecosystem
            )
        })
        .collect();
    if !declared.tooling.is_empty() {
        lines.push(format!("tooling: {}", declared.tooling.join(", ")));
    }
    if declared.root_run_steps {
        lines.push("runs commands as root in the image".to_owned());
    }
    let names = &plugin.package_names;
    lines.push(format!(
        "package names: {}{}",
        if names.ignore_case {
            "case does not matter"
        } else {
            "case matters"
        },
        if names.separators.is_empty() {
            String::new()
        } else {
            format!(", any of {:?} stand for one another", names.separators)
        }
    ));
    for option in &declared.options {
        let kind = match option.kind {
            crate::plugin::OptionKind::Text => "text",
            crate::plugin::OptionKind::Flag => "true|false",
            crate::plugin::OptionKind::Number => "number",
        };
        lines.push(format!(
            "option {}:{}={kind}{}: {}",
            plugin.info.name,
            option.key,
            if option.repeatable {
                " (repeatable)"
            } else {
                ""
            },
            option.description
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch_args(flags: &[&str]) -> PatchArgs {
        let argv = ["copa-host", "patch", "-i", "app:1"].iter().chain(flags);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Patch(args) => *args,
            Command::Plugins { .. } => unreachable!("parsed a patch command"),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn every_setting_is_spelled_as_a_flag_of_patch() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let patch = cli.find_subcommand("patch").unwrap();
        for setting in Setting::ALL {
            let spelled = flag(setting);
            let known = patch
                .get_arguments()
                .any(|arg| match spelled.strip_prefix("--") {
                    Some(long) => arg.get_long() == Some(long),
                    None => arg.get_short() == spelled.chars().nth(1),
                });
            assert!(
                known,
                "{setting:?} is spelled {spelled}, not a flag of patch"
            );
        }
    }

    #[test]
    fn go_proxy_stands_for_an_index_of_each_http_proxy() {
        let goproxy =
            "https://me:s3cret@goproxy.corp.example/|file:///srv/goproxy,http://b.example,direct";
        let args = patch_args(&["--go-proxy", goproxy, "--index", "go=https://c.example"]);
        assert_eq!(
            args.indexes().unwrap(),
            pairs(&[
                ("go", "https://goproxy.corp.example"),
                ("go", "http://b.example"),
                ("go", "https://c.example"),
            ])
        );
        let origin = Origin::of("https://goproxy.corp.example").unwrap();
        assert_eq!(
            args.credentials().unwrap()[&origin].header(),
            Credential::new("me:s3cret".into()).header()
        );
        // The go command in the run gets the list as given.
        assert_eq!(args.options().unwrap().go_proxy.as_deref(), Some(goproxy));
    }

    #[test]
    fn a_go_proxy_list_without_http_proxies_names_no_index() {
        for goproxy in ["direct", "off", "file:///srv/goproxy,direct"] {
            let args = patch_args(&["--go-proxy", goproxy]);
            assert_eq!(args.indexes().unwrap(), [], "{goproxy}");
        }
        assert_eq!(patch_args(&[]).options().unwrap().go_proxy, None);
        let err = patch_args(&["--go-proxy", "ftp://me:s3cret@x.example"])
            .indexes()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--go-proxy: GOPROXY entry \"ftp://x.example\" is not an http(s) or file URL"
        );
    }
}
