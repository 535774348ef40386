//! The pipeline of one `copa-host patch`, one stage a module, read top to bottom:
//! [`plan`] routes the report's findings to plugins and plans (detect, plan); [`execute`] has
//! the plugins emit their steps, runs them and builds the patch layer; [`verify`] detects again
//! on the patched files and judges each update; [`output`] turns the outcome into the summary
//! and the VEX document. This module opens the inputs, runs the stages for each platform and
//! writes the image.

mod execute;
mod output;
mod plan;
mod verify;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;

use crate::exec::{self, Created, Executor, RunSettings, Sources, proxy_environment};
use crate::http::{Credential, Origin, PluginHttp};
use crate::image::{
    ImageRef, ImageView, LayerCompression, PatchLayer, PatchedImage, Platform, Registry,
    RegistrySettings, SourceImage, Stores, daemon,
};
use crate::index::{IndexSettings, PackageIndex};
use crate::netrc::NetrcFile;
use crate::plugin::grants;
use crate::plugin::{Capabilities, PackageClass, PatchLevel, Plugin, PluginHost};
use crate::report::{self, Report, Scanner};
use crate::setting::Setting;
use crate::summary::{Clock, SkipRecord, Summary};
use crate::vex;
use plan::PluginWork;

/// Everything a patch run needs to know, free of any CLI type.
#[derive(Clone, Debug)]
pub struct Options {
    pub image: ImageRef,
    /// Where the patched image goes instead of beside the source (`--output-image`).
    pub output_image: Option<ImageRef>,
    /// Push the patched image to the registry under the source's name (`--push`).
    pub push: bool,
    /// `--insecure-registry`: registries spoken to over plain http.
    pub insecure_registries: Vec<String>,
    /// How the patch layer is compressed.
    pub compression: LayerCompression,
    /// `--platform`: the platforms of an image index to patch (this machine's when empty).
    pub platforms: Vec<Platform>,
    pub report: Option<PathBuf>,
    /// The format of the report.
    pub scanner: Scanner,
    pub tag: Option<String>,
    pub tag_suffix: String,
    pub package_classes: Vec<PackageClass>,
    pub library_patch_level: PatchLevel,
    /// How far a language toolchain may move for standard-library findings; none: never.
    pub toolchain_patch_level: Option<PatchLevel>,
    pub ignore_errors: bool,
    pub step_timeout: Duration,
    pub dry_run: bool,
    pub plugin_dirs: Vec<PathBuf>,
    /// `--go-proxy` (GOPROXY syntax) as given, for the go command in the run and for plugins of
    /// contracts before 0.4; its http(s) proxies are also among `indexes`.
    pub go_proxy: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    /// `--tooling-image KIND=REF`.
    pub tooling_images: Vec<(String, String)>,
    /// Options for plugins: (plugin name, key, value), in the order given; each plugin's policy
    /// carries its own.
    pub plugin_options: Vec<(String, String, String)>,
    /// `--index ECOSYSTEM=URL`: (ecosystem, URL), in the order given.
    pub indexes: Vec<(String, String)>,
    /// The user's credential for each origin of a plugin's index (`--index-credential`).
    pub index_credentials: HashMap<Origin, Credential>,
    /// `--index-origin ECOSYSTEM=ORIGIN`: more origins for the plugins reading that ecosystem.
    pub index_origins: Vec<(String, String)>,
    /// A netrc file whose logins serve the index origins the user named and gave no
    /// `--index-credential` for.
    pub netrc: Option<NetrcFile>,
    /// Write a VEX document about the patched image.
    pub vex: Option<vex::Settings>,
}

pub async fn patch(options: &Options) -> Result<Summary> {
    // The daemon is needed for an image in it and for commands that run in containers; a run
    // that reads a registry or layout and only fetches and writes files goes without it.
    let docker = match daemon::connect().await {
        Ok(docker) => Some(docker),
        Err(e)
            if options.image.needs_daemon()
                || (!options.dry_run
                    && options
                        .output_image
                        .as_ref()
                        .is_some_and(ImageRef::needs_daemon)) =>
        {
            return Err(e);
        }
        Err(e) => {
            tracing::debug!("{e}");
            None
        }
    };
    if let Some(docker) = &docker {
        exec::remove_dead_runs(docker).await;
    }
    let created = Created::default();
    // Whatever way the run ends (done, failed, Ctrl-C), what it created goes: containers and
    // images in the daemon here, the work directory when the run's future is dropped.
    let result = tokio::select! {
        result = run(options, docker.as_ref(), &created) => result,
        signal = interrupted() => Err(anyhow!("{signal}; removed what this run had created")),
    };
    if let Some(docker) = &docker {
        created.remove_all(docker).await;
    }
    result
}

/// Resolves when the run is asked to stop: Ctrl-C, SIGTERM as CI cancellations, `timeout` and
/// Kubernetes send it, or SIGHUP when the terminal goes away. Names what came.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let watch = |kind: SignalKind, name: &str| {
        signal(kind)
            .map_err(|e| tracing::warn!("cannot watch for {name}: {e}"))
            .ok()
    };
    let mut terminate = watch(SignalKind::terminate(), "SIGTERM");
    let mut hang_up = watch(SignalKind::hangup(), "SIGHUP");
    // A signal that cannot be watched never resolves its branch.
    let next = |watched: &mut Option<tokio::signal::unix::Signal>| {
        let mut watched = watched.take();
        async move {
            match &mut watched {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = next(&mut terminate) => "terminated",
        _ = next(&mut hang_up) => "hung up",
    }
}

async fn run(options: &Options, docker: Option<&Docker>, created: &Created) -> Result<Summary> {
    let mut clock = Clock::default();
    let inputs = Inputs::read(options).await?;
    clock.lap("read report");
    // Plugins first: a mistake in their options fails the run before the image is opened.
    let host = Arc::new(PluginHost::new(
        Default::default(),
        options.cache_dir.clone(),
    )?);
    let plugins = {
        let (host, dirs) = (host.clone(), options.plugin_dirs.clone());
        Arc::new(tokio::task::spawn_blocking(move || host.load_all(&dirs)).await??)
    };
    grants::check_options(&options.plugin_options, &plugins)?;
    let grants = grants::with_extra_origins(
        grants::origins(&plugins, &options.indexes)?,
        &plugins,
        &options.index_origins,
    )?;
    let credentials = match &options.netrc {
        Some(netrc) => {
            let named = grants.user_named.values().flatten().cloned();
            netrc.fill(options.index_credentials.clone(), named.collect())?
        }
        None => options.index_credentials.clone(),
    };
    let http = Arc::new(
        PluginHttp::new(inputs.extra_ca.as_deref(), grants, credentials.clone())
            .with_folders(grants::folders(&plugins, &options.indexes)?),
    );
    clock.lap("load plugins");

    let workdir = tempfile::Builder::new()
        .prefix("copa-host-")
        .tempdir()
        .context("creating a work directory")?;
    let registry = Registry::new(&RegistrySettings {
        insecure: options.insecure_registries.clone(),
        extra_ca_pem: inputs.extra_ca.clone(),
    })?;
    let stores = Stores {
        docker,
        registry: &registry,
        workdir: workdir.path(),
    };
    let opened = SourceImage::open(&options.image, &stores, &inputs.platforms(options)).await?;
    if opened.images.len() > 1 && options.vex.is_some() {
        bail!(
            "{}: a VEX document covers one patched image; choose one platform with {} (this image index has {} selected)",
            Setting::Vex,
            Setting::Platform,
            opened.images.len()
        );
    }
    clock.lap("open image");
    let index = Arc::new(PackageIndex::new(index_settings(
        options,
        inputs.extra_ca.clone(),
        credentials,
    ))?);
    let shared = Shared {
        options,
        extra_ca: inputs.extra_ca.as_deref(),
        index: &index,
        http: &http,
        host: &host,
        plugins: &plugins,
        docker,
        created,
    };
    let (mut summary, results) =
        patch_platforms(&shared, &opened, &inputs, &stores, &mut clock).await?;
    if results.iter().all(|r| r.patched.is_none()) {
        summary.timings = clock.timings();
        return Ok(summary);
    }
    let (target, digest) = write_image(options, &opened, &results, &stores).await?;
    clock.lap("write image");
    summary.patched_image = Some(target.to_string());
    if let Some(settings) = &options.vex {
        let patched = opened.images.iter().zip(&results);
        if let Some(((platform, _), result)) =
            patched.into_iter().find(|(_, r)| r.patched.is_some())
            && let Some(report) = inputs.report_for(platform)?
        {
            output::write_vex(
                settings,
                report,
                &target,
                &digest,
                &plugins,
                &result.work,
                &summary,
            )?;
            clock.lap("write VEX");
        }
    }
    summary.timings = clock.timings();
    Ok(summary)
}

/// The report(s) and CA certificate, read before anything else so their mistakes cost nothing.
struct Inputs {
    /// One report, or one per platform from a directory of reports.
    reports: Vec<Report>,
    per_platform: bool,
    extra_ca: Option<Vec<u8>>,
}

impl Inputs {
    async fn read(options: &Options) -> Result<Self> {
        if options.vex.is_some() && options.report.is_none() {
            bail!(
                "{} needs a report ({}): a VEX document makes statements about its vulnerabilities",
                Setting::Vex,
                Setting::Report
            );
        }
        let reports = match &options.report {
            // A scanner plugin is a program that may take its time.
            Some(path) => {
                let (path, scanner) = (path.clone(), options.scanner.clone());
                tokio::task::spawn_blocking(move || report::read_all(&path, &scanner)).await??
            }
            None => Vec::new(),
        };
        let extra_ca = match &options.ca_cert {
            Some(path) => Some(execute::read_ca(path)?),
            None => None,
        };
        Ok(Inputs {
            reports,
            per_platform: options.report.as_ref().is_some_and(|p| p.is_dir()),
            extra_ca,
        })
    }

    /// The platforms to patch: the user's, else those of a directory of reports.
    fn platforms(&self, options: &Options) -> Vec<Platform> {
        if !self.per_platform || !options.platforms.is_empty() {
            return options.platforms.clone();
        }
        self.reports
            .iter()
            .map(|r| Platform {
                os: "linux".to_owned(),
                architecture: r.architecture.clone().unwrap_or_default(),
                variant: None,
            })
            .collect()
    }

    /// The report about `platform` (matched by architecture in a directory of reports).
    fn report_for(&self, platform: &Platform) -> Result<Option<&Report>> {
        if !self.per_platform {
            return Ok(self.reports.first());
        }
        self.reports
            .iter()
            .find(|r| r.architecture.as_deref() == Some(platform.architecture.as_str()))
            .map(Some)
            .ok_or_else(|| {
                anyhow!(
                    "the report directory has no report for {platform} (a report's architecture comes from its image metadata)"
                )
            })
    }
}

/// The host's package index for plugins of older contracts.
fn index_settings(
    options: &Options,
    extra_ca: Option<Vec<u8>>,
    credentials: HashMap<Origin, Credential>,
) -> IndexSettings {
    IndexSettings {
        extra_ca_pem: extra_ca,
        credentials,
        go_proxy: options.go_proxy.clone(),
        ..IndexSettings::default()
    }
    .with_user_indexes(&options.indexes)
}

/// Patches each platform's image in turn; the summary's rows name the platform when there are
/// several.
async fn patch_platforms(
    shared: &Shared<'_>,
    opened: &crate::image::OpenedImage,
    inputs: &Inputs,
    stores: &Stores<'_>,
    clock: &mut Clock,
) -> Result<(Summary, Vec<ImagePatch>)> {
    let reference = match &opened.index {
        Some(index) => &index.reference,
        None => &opened.images[0].1.reference,
    };
    let mut summary = Summary {
        image: reference.to_string(),
        patched_image: None,
        updates: Vec::new(),
        skipped: Vec::new(),
        timings: Vec::new(),
    };
    let several = opened.images.len() > 1;
    let mut results = Vec::new();
    for (platform, source) in &opened.images {
        let report = inputs.report_for(platform)?;
        let result = patch_image(shared, source, platform, report, stores, clock).await?;
        let (updates, skipped) = (summary.updates.len(), summary.skipped.len());
        summary.skipped.extend(result.skipped.iter().cloned());
        output::record_updates(&mut summary, shared.plugins, &result.work);
        if several {
            for record in &mut summary.updates[updates..] {
                record.target = format!("{platform} {}", record.target);
            }
            for record in &mut summary.skipped[skipped..] {
                record.target = format!("{platform} {}", record.target);
            }
        }
        results.push(result);
    }
    Ok((summary, results))
}

/// Writes the patched image (or image index) where the user asked, says what was written, and
/// returns its name and digest.
async fn write_image(
    options: &Options,
    opened: &crate::image::OpenedImage,
    results: &[ImagePatch],
    stores: &Stores<'_>,
) -> Result<(ImageRef, String)> {
    let reference = match &opened.index {
        Some(index) => &index.reference,
        None => &opened.images[0].1.reference,
    };
    let target = match &options.output_image {
        Some(output) => output.clone(),
        None if options.push => reference
            .patched(options.tag.as_deref(), &options.tag_suffix)?
            .in_registry()?,
        None => reference.patched(options.tag.as_deref(), &options.tag_suffix)?,
    };
    let patched: Vec<Option<PatchedImage>> = results
        .iter()
        .map(|r| {
            r.patched
                .as_ref()
                .map(|(config, layer)| PatchedImage { config, layer })
        })
        .collect();
    let written = match &opened.index {
        // One platform of an index written elsewhere (the daemon, another repository): that
        // platform's image on its own.
        Some(index) if index.is_home(&target)? || opened.images.len() > 1 => {
            index
                .write_patched(&target, &opened.images, &patched, stores)
                .await?
        }
        _ => {
            let image = patched[0].as_ref().expect("the one image was patched");
            opened.images[0]
                .1
                .write_patched(&target, image, stores)
                .await?
        }
    };
    if let Some(pushed) = written.pushed {
        eprintln!(
            "pushed {target}: {} blobs uploaded, {} mounted from the source repository, {} already there",
            pushed.uploaded, pushed.mounted, pushed.present
        );
    }
    let several = opened.images.len() > 1;
    for ((platform, _), image) in opened.images.iter().zip(&patched) {
        if let Some(image) = image {
            let layer = image.layer;
            let which = if several {
                format!(" ({platform})")
            } else {
                String::new()
            };
            eprintln!(
                "patch layer{which}: {} entries, {} bytes ({} compressed), {}",
                layer.entries, layer.uncompressed_size, layer.compressed_size, layer.digest
            );
        }
    }
    Ok((target, written.digest))
}

/// What every platform's patch shares.
struct Shared<'a> {
    options: &'a Options,
    extra_ca: Option<&'a [u8]>,
    index: &'a Arc<PackageIndex>,
    http: &'a Arc<PluginHttp>,
    host: &'a Arc<PluginHost>,
    plugins: &'a Arc<Vec<Plugin>>,
    docker: Option<&'a Docker>,
    created: &'a Created,
}

/// One image's patch: the plugins' work with its outcome, the skips, and the new config and
/// layer (none on a dry run or when nothing was planned).
struct ImagePatch {
    work: Vec<PluginWork>,
    skipped: Vec<SkipRecord>,
    patched: Option<(Vec<u8>, PatchLayer)>,
}

/// Plans, runs, builds and verifies the patch of one image (one platform).
async fn patch_image(
    shared: &Shared<'_>,
    source: &SourceImage,
    platform: &Platform,
    report: Option<&Report>,
    stores: &Stores<'_>,
    clock: &mut Clock,
) -> Result<ImagePatch> {
    let (options, host, plugins) = (shared.options, shared.host, shared.plugins);
    let view = Arc::new(source.view()?);
    let caps = Arc::new(Capabilities {
        image: view.clone(),
        index: shared.index.clone(),
        http: Some(shared.http.clone()),
    });
    let (mut work, skipped) = {
        let (host, plugins, caps, options) =
            (host.clone(), plugins.clone(), caps.clone(), options.clone());
        let report = report.cloned();
        tokio::task::spawn_blocking(move || {
            plan::plan_all(&host, &plugins, &caps, report.as_ref(), &options)
        })
        .await??
    };
    clock.lap("plan");
    if options.dry_run {
        execute::show_steps(host, plugins, &caps, &work).await?;
    }
    if options.dry_run || work.iter().all(|w| w.plan.updates.is_empty()) {
        return Ok(ImagePatch {
            work,
            skipped,
            patched: None,
        });
    }
    let execution = execute::Execution {
        options,
        host,
        plugins,
        caps: &caps,
        executor: executor(shared, &view, &caps),
        workdir: stores.workdir,
    };
    let patched = execution.patch(source, platform, &mut work, clock).await?;
    Ok(ImagePatch {
        work,
        skipped,
        patched,
    })
}

/// The executor of one image's steps, with the run's CA bundle, proxies and network.
/// The plugins with an index on this machine's loopback, which their containers reach only on
/// the host's network: through `http` (0.4 on), or the host's own package-index (before 0.4).
fn loopback_plugins(shared: &Shared<'_>) -> HashSet<String> {
    let legacy_on_loopback = shared.index.settings().urls().any(execute::is_loopback_url);
    shared
        .plugins
        .iter()
        .filter(|plugin| {
            let indexes = grants::index_urls(plugin, &shared.options.indexes);
            indexes.iter().any(|(_, url)| execute::is_loopback_url(url))
                || (plugin.declared.is_none() && legacy_on_loopback)
        })
        .map(|plugin| plugin.info.name.clone())
        .collect()
}

fn executor(shared: &Shared<'_>, view: &Arc<ImageView>, caps: &Arc<Capabilities>) -> Executor {
    let options = shared.options;
    let settings = RunSettings {
        ca_bundle: shared.extra_ca.map(|ca| execute::ca_bundle(view, ca)),
        index_env: shared.index.settings().run_environment(),
        proxy_env: proxy_environment(),
        source_date_epoch: output::source_date_epoch().unwrap_or(0),
        host_network: loopback_plugins(shared),
        step_timeout: options.step_timeout,
        tooling_images: options.tooling_images.iter().cloned().collect(),
    };
    let sources = Arc::new(Sources {
        view: view.clone(),
        index: caps.index.clone(),
        http: caps.http.clone(),
    });
    Executor::new(
        shared.docker.cloned(),
        settings,
        shared.created.clone(),
        sources,
    )
}
