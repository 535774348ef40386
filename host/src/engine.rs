//! The pipeline of one `copa-host patch`: report -> findings; image -> view; plugins detect,
//! plan and emit steps; the executor runs them; the changes become one layer; the patched view
//! is detected again to verify; the image is written.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;

use crate::exec::{self, Created, Executor, RunSettings, Sources, proxy_environment};
use crate::http::{Credential, Origin, PluginHttp};
use crate::image::{
    ImageRef, ImageView, LayerCompression, PatchLayer, PatchedImage, Platform, Registry,
    RegistrySettings, SourceImage, StepDiff, Stores, daemon, layer,
};
use crate::index::{IndexSettings, PackageIndex};
use crate::plugin::grants;
use crate::plugin::{
    Capabilities, Finding, PackageClass, PatchLevel, Plan, Plugin, PluginHost, Policy, Step,
    Target, Update,
};
use crate::report::{self, Report, Scanner};
use crate::summary::{Clock, SkipRecord, Status, Summary, UpdateRecord};
use crate::vex;
use copa_plugin_sdk::ospkg::{self, OsRelease};

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
    /// `--nuget-source`s, in order (`[NAME=]URL` or a folder feed).
    pub nuget_sources: Vec<String>,
    /// `--nuget-config` (or the user-level one): more sources, credentials, source mapping.
    pub nuget_config: Option<crate::index::NuGetConfigFile>,
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
    /// Write a VEX document about the patched image.
    pub vex: Option<vex::Settings>,
}

/// One plugin's share of the run.
struct PluginWork {
    plugin: usize,
    targets: Vec<Target>,
    /// The findings routed to the plugin (none without a report); verification plans again
    /// with them.
    findings: Vec<Finding>,
    /// The policy the plan was made under; emitting and verifying use it again.
    policy: Policy,
    plan: Plan,
    status: Vec<(Status, Option<String>)>,
}

/// The updates of all plugins that ended in `status`, with their error when they failed.
fn updates_with(
    work: &[PluginWork],
    status: Status,
) -> impl Iterator<Item = (&Update, Option<&str>)> {
    work.iter().flat_map(move |w| {
        w.plan
            .updates
            .iter()
            .zip(&w.status)
            .filter(move |(_, s)| s.0 == status)
            .map(|(u, s)| (u, s.1.as_deref()))
    })
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
    if options.vex.is_some() && options.report.is_none() {
        bail!("-o needs a report (-r): a VEX document makes statements about its vulnerabilities");
    }
    // One report, or a directory of reports with one per platform (matched by architecture).
    let reports = match &options.report {
        // A scanner plugin is a program that may take its time.
        Some(path) => {
            let (path, scanner) = (path.clone(), options.scanner.clone());
            tokio::task::spawn_blocking(move || report::read_all(&path, &scanner)).await??
        }
        None => Vec::new(),
    };
    let per_platform = options.report.as_ref().is_some_and(|p| p.is_dir());
    let extra_ca = match &options.ca_cert {
        Some(path) => Some(read_ca(path)?),
        None => None,
    };
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
    let http = Arc::new(PluginHttp::new(
        extra_ca.as_deref(),
        grants::origins(&plugins, &options.indexes)?,
        options.index_credentials.clone(),
    ));
    clock.lap("load plugins");

    let workdir = tempfile::Builder::new()
        .prefix("copa-host-")
        .tempdir()
        .context("creating a work directory")?;
    let registry = Registry::new(&RegistrySettings {
        insecure: options.insecure_registries.clone(),
        extra_ca_pem: extra_ca.clone(),
    })?;
    let stores = Stores {
        docker,
        registry: &registry,
        workdir: workdir.path(),
    };
    let platforms: Vec<Platform> = if per_platform && options.platforms.is_empty() {
        reports
            .iter()
            .map(|r| Platform {
                os: "linux".to_owned(),
                architecture: r.architecture.clone().unwrap_or_default(),
                variant: None,
            })
            .collect()
    } else {
        options.platforms.clone()
    };
    let opened = SourceImage::open(&options.image, &stores, &platforms).await?;
    let report_for = |platform: &Platform| -> Result<Option<&Report>> {
        if !per_platform {
            return Ok(reports.first());
        }
        reports
            .iter()
            .find(|r| r.architecture.as_deref() == Some(platform.architecture.as_str()))
            .map(Some)
            .ok_or_else(|| {
                anyhow!(
                    "the report directory has no report for {platform} (a report's architecture comes from its image metadata)"
                )
            })
    };
    if opened.images.len() > 1 && options.vex.is_some() {
        bail!(
            "-o: a VEX document covers one patched image; choose one platform with --platform (this image index has {} selected)",
            opened.images.len()
        );
    }
    clock.lap("open image");
    let index = Arc::new(PackageIndex::new(
        IndexSettings {
            extra_ca_pem: extra_ca.clone(),
            nuget_sources: options.nuget_sources.clone(),
            nuget_config: options.nuget_config.clone(),
            go_proxy: options.go_proxy.clone(),
            ..IndexSettings::default()
        }
        .with_user_indexes(&options.indexes),
    )?);

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
    let shared = Shared {
        options,
        extra_ca: extra_ca.as_deref(),
        index: &index,
        http: &http,
        host: &host,
        plugins: &plugins,
        docker,
        created,
    };
    let several = opened.images.len() > 1;
    let mut results = Vec::new();
    for (platform, source) in &opened.images {
        let report = report_for(platform)?;
        let result = patch_image(&shared, source, platform, report, &stores, &mut clock).await?;
        let (updates, skipped) = (summary.updates.len(), summary.skipped.len());
        summary.skipped.extend(result.skipped.iter().cloned());
        record_updates(&mut summary, &plugins, &result.work);
        // Several platforms: each line says which one it is about.
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
    if results.iter().all(|r| r.patched.is_none()) {
        summary.timings = clock.timings();
        return Ok(summary);
    }

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
                .write_patched(&target, &opened.images, &patched, &stores)
                .await?
        }
        _ => {
            let image = patched[0].as_ref().expect("the one image was patched");
            opened.images[0]
                .1
                .write_patched(&target, image, &stores)
                .await?
        }
    };
    clock.lap("write image");
    if let Some(pushed) = written.pushed {
        eprintln!(
            "pushed {target}: {} blobs uploaded, {} mounted from the source repository, {} already there",
            pushed.uploaded, pushed.mounted, pushed.present
        );
    }
    for ((platform, _), image) in opened.images.iter().zip(&patched) {
        if let Some(image) = image {
            let layer = image.layer;
            eprintln!(
                "patch layer{}: {} entries, {} bytes ({} compressed), {}",
                if several {
                    format!(" ({platform})")
                } else {
                    String::new()
                },
                layer.entries,
                layer.uncompressed_size,
                layer.compressed_size,
                layer.digest
            );
        }
    }
    summary.patched_image = Some(target.to_string());
    if let (Some(settings), Some((platform, result))) = (
        &options.vex,
        opened
            .images
            .iter()
            .map(|(platform, _)| platform)
            .zip(&results)
            .find(|(_, r)| r.patched.is_some()),
    ) && let Some(report) = report_for(platform)?
    {
        write_vex(
            settings,
            report,
            &target,
            &written.digest,
            &plugins,
            &result.work,
            &summary,
        )?;
        clock.lap("write VEX");
    }
    summary.timings = clock.timings();
    Ok(summary)
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
            plan_all(&host, &plugins, &caps, report.as_ref(), &options)
        })
        .await??
    };
    clock.lap("plan");
    if options.dry_run {
        // The steps are what the user would see run; emitting them also surfaces a plugin's
        // emit errors before any real run.
        for w in work.iter().filter(|w| !w.plan.updates.is_empty()) {
            let steps = emit(host, plugins, &caps, w, &w.plan).await?;
            eprintln!("plugin {} would run:", plugins[w.plugin].info.name);
            for (index, step) in steps.iter().enumerate() {
                eprintln!(
                    "  [{}/{}] {}",
                    index + 1,
                    steps.len(),
                    exec::step_description(step)
                );
            }
        }
    }
    if options.dry_run || work.iter().all(|w| w.plan.updates.is_empty()) {
        return Ok(ImagePatch {
            work,
            skipped,
            patched: None,
        });
    }
    let settings = RunSettings {
        ca_bundle: shared.extra_ca.map(|ca| ca_bundle(&view, ca)),
        index_env: shared.index.settings().run_environment(),
        proxy_env: proxy_environment(),
        source_date_epoch: source_date_epoch().unwrap_or(0),
        // An index on this machine's loopback is reachable from the container only on the
        // host's network.
        host_network: shared.index.settings().urls().any(is_loopback_url)
            || shared.plugins.iter().any(|plugin| {
                grants::index_urls(plugin, &options.indexes)
                    .iter()
                    .any(|(_, url)| is_loopback_url(url))
            }),
        step_timeout: options.step_timeout,
        tooling_images: options.tooling_images.iter().cloned().collect(),
    };
    let sources = Arc::new(Sources {
        view: view.clone(),
        index: caps.index.clone(),
        http: caps.http.clone(),
    });
    let executor = Executor::new(
        shared.docker.cloned(),
        settings,
        shared.created.clone(),
        sources,
    );
    let patched = execute_and_build(
        options,
        source,
        platform,
        host,
        plugins,
        &caps,
        &executor,
        &mut work,
        stores.workdir,
        clock,
    )
    .await?;
    Ok(ImagePatch {
        work,
        skipped,
        patched,
    })
}

/// Runs the steps, builds and verifies the layer. Returns the patched image's config and layer.
#[allow(clippy::too_many_arguments)]
async fn execute_and_build(
    options: &Options,
    source: &SourceImage,
    platform: &Platform,
    host: &Arc<PluginHost>,
    plugins: &Arc<Vec<Plugin>>,
    caps: &Arc<Capabilities>,
    executor: &Executor,
    work: &mut [PluginWork],
    workdir: &std::path::Path,
    clock: &mut Clock,
) -> Result<Option<(Vec<u8>, PatchLayer)>> {
    let mut diffs: Vec<StepDiff> = Vec::new();
    let mut emitted = Vec::new();
    for w in work.iter() {
        let steps = if w.plan.updates.is_empty() {
            Vec::new()
        } else {
            emit(host, plugins, caps, w, &w.plan).await?
        };
        emitted.push(steps);
    }
    // Commands cannot run in an image of a platform this machine does not run (no emulation is
    // assumed): such a plugin's updates fail with the reason; fetches and writes still work.
    if !platform.runs_here() {
        for (w, steps) in work.iter_mut().zip(emitted.iter_mut()) {
            if steps.iter().any(|s| exec::needs_daemon(s).1) {
                let reason = format!(
                    "the {} patcher runs commands in the image, and this machine cannot run {platform} binaries",
                    plugins[w.plugin].info.name
                );
                for status in &mut w.status {
                    *status = (Status::Failed, Some(reason.clone()));
                }
                steps.clear();
            }
        }
    }
    // The target image goes into the daemon only when a command must run in it: fetch and
    // write steps need no container, tooling steps only their tooling image.
    let mut image = None;
    if emitted.iter().flatten().any(|s| exec::needs_daemon(s).1) {
        let docker = executor.docker()?;
        let (run_image, loaded) = source.ensure_in_daemon(docker, workdir).await?;
        if loaded {
            executor.created().image(&run_image);
        }
        image = Some(run_image);
    }
    for (w, steps) in work.iter_mut().zip(emitted) {
        if steps.is_empty() {
            continue;
        }
        let plugin = &plugins[w.plugin];
        let outcome = executor
            .run(
                &plugin.info.name,
                image.as_deref(),
                &steps,
                options.ignore_errors,
                workdir,
            )
            .await?;
        image = outcome.image.clone().or(image);
        diffs.extend(outcome.diffs);
        let mut retry: Vec<Update> = Vec::new();
        for (step_index, error) in &outcome.failures {
            let step = &steps[*step_index];
            if !options.ignore_errors {
                bail!(
                    "plugin {}: {}: {error}",
                    plugin.info.name,
                    exec::step_description(step)
                );
            }
            // One failing package must not sink the others it was installed with: retry each
            // update of the failed step on its own (its other steps were taken back).
            let updates = exec::step_updates(step);
            for &u in updates {
                w.status[u as usize] = (Status::Failed, Some(error.clone()));
            }
            if updates.len() > 1 {
                retry.extend(updates.iter().map(|&u| w.plan.updates[u as usize].clone()));
            }
        }
        let mut seen = std::collections::HashSet::new();
        retry.retain(|u| seen.insert((u.target_id.clone(), u.package.clone())));
        for update in retry {
            let single = Plan {
                updates: vec![update.clone()],
                skips: Vec::new(),
            };
            let steps = emit(host, plugins, caps, w, &single).await?;
            let outcome = executor
                .run(&plugin.info.name, image.as_deref(), &steps, true, workdir)
                .await?;
            image = outcome.image.clone().or(image);
            diffs.extend(outcome.diffs);
            let index = w
                .plan
                .updates
                .iter()
                .position(|u| u.target_id == update.target_id && u.package == update.package)
                .expect("retried update is in the plan");
            w.status[index] = match outcome.failures.first() {
                Some((_, error)) => (Status::Failed, Some(error.clone())),
                None => (Status::Planned, None),
            };
        }
    }

    clock.lap("run steps");
    let epoch = source_date_epoch().unwrap_or(0);
    // Re-patching an image copa-host patched: its patch layer goes first, under this run's
    // changes, and the result replaces it on the original layers.
    if let Some(previous) = source.previous_patch_layer() {
        diffs.insert(
            0,
            StepDiff {
                tar: previous,
                exclude: Vec::new(),
            },
        );
    }
    let layer = {
        let (base, workdir) = (source.base_view()?, workdir.to_path_buf());
        let compression = options.compression;
        tokio::task::spawn_blocking(move || {
            layer::squash(&diffs, &base, epoch, compression, &workdir)
        })
        .await??
    };
    clock.lap("build layer");
    match &layer {
        Some(layer) => verify(source, layer, host, plugins, caps, work).await?,
        None => mark_unverified(work, "the package manager changed nothing in the image"),
    }
    clock.lap("verify");
    let failed: Vec<String> = updates_with(work, Status::Failed)
        .map(|(u, error)| {
            format!(
                "{} in {}: {}",
                u.package,
                u.target_id,
                error.unwrap_or_default()
            )
        })
        .collect();
    if !failed.is_empty() && !options.ignore_errors {
        bail!(
            "not patched: {} (use --ignore-errors to write the image anyway)",
            failed.join("; ")
        );
    }
    let Some(layer) = layer.filter(|_| updates_with(work, Status::Patched).next().is_some()) else {
        bail!("no update could be applied: {}", failed.join("; "));
    };
    let created_by = format!("copa-host patch {}", patched_packages(work).join(" "));
    let created = now_or_source_date_epoch();
    let config = source.patched_config(&layer, &rfc3339(created), &created_by)?;
    Ok(Some((config, layer)))
}

/// The steps of `plan` (all of `work`'s, or a part of it) from `work`'s plugin.
async fn emit(
    host: &Arc<PluginHost>,
    plugins: &Arc<Vec<Plugin>>,
    caps: &Arc<Capabilities>,
    work: &PluginWork,
    plan: &Plan,
) -> Result<Vec<Step>> {
    let (host, plugins, caps, plugin, targets, plan, policy) = (
        host.clone(),
        plugins.clone(),
        caps.clone(),
        work.plugin,
        work.targets.clone(),
        plan.clone(),
        work.policy.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let steps = host.emit_commands(&plugins[plugin], &caps, &targets, &plan, &policy)?;
        grants::check_steps(&plugins[plugin], &steps, plan.updates.len())?;
        Ok(steps)
    })
    .await?
}

/// Detects again on the original layers plus the patch layer; an update counts as patched only
/// when the new version is really there: the planned version exactly, or, for an update planned
/// as a minimum, a new version for which the plugin, planning again, has nothing left to do.
async fn verify(
    source: &SourceImage,
    layer: &PatchLayer,
    host: &Arc<PluginHost>,
    plugins: &Arc<Vec<Plugin>>,
    caps: &Arc<Capabilities>,
    work: &mut [PluginWork],
) -> Result<()> {
    let mut patched = source.base_view()?;
    patched.push_layer(layer.tar.clone())?;
    let patched_caps = Arc::new(Capabilities {
        image: Arc::new(patched),
        index: caps.index.clone(),
        http: caps.http.clone(),
    });
    for w in work.iter_mut() {
        if w.plan.updates.is_empty() {
            continue;
        }
        let targets = {
            let (host, plugins, caps, plugin) = (
                host.clone(),
                plugins.clone(),
                patched_caps.clone(),
                w.plugin,
            );
            tokio::task::spawn_blocking(move || host.detect(&plugins[plugin], &caps)).await??
        };
        let mut replan: Option<Plan> = None;
        for i in 0..w.plan.updates.len() {
            if w.status[i].0 == Status::Failed {
                continue;
            }
            let update = &w.plan.updates[i];
            let found = targets
                .iter()
                .filter(|t| t.id == update.target_id)
                .flat_map(|t| &t.packages)
                .find(|p| p.name.eq_ignore_ascii_case(&update.package))
                .map(|p| p.version.clone());
            let Some(version) = found else {
                w.status[i] = (
                    Status::Failed,
                    Some("the package is gone after the run".into()),
                );
                continue;
            };
            // Exact: the plugin names the version as the package records it.
            if version == update.to_version {
                w.status[i] = (Status::Patched, None);
                continue;
            }
            let minimum = update.at_least.then_some(update.to_version.as_str());
            if minimum.is_some() && version != update.from_version {
                if replan.is_none() {
                    let (host, plugins, caps, plugin) = (
                        host.clone(),
                        plugins.clone(),
                        patched_caps.clone(),
                        w.plugin,
                    );
                    let (targets, findings, policy) =
                        (targets.clone(), w.findings.clone(), w.policy.clone());
                    replan = Some(
                        tokio::task::spawn_blocking(move || {
                            host.plan(&plugins[plugin], &caps, &targets, &findings, &policy)
                        })
                        .await??,
                    );
                }
                let again = replan.as_ref().expect("planned above");
                if !plans_package(again, &update.target_id, &update.package) {
                    w.plan.updates[i].to_version = version;
                    w.plan.updates[i].at_least = false;
                    w.status[i] = (Status::Patched, None);
                    continue;
                }
            }
            let error = match minimum {
                Some(minimum) if version == update.from_version => format!(
                    "{version} is still installed after the run: the repositories gave no \
                     version of at least {minimum}"
                ),
                Some(minimum) => format!(
                    "{version} is installed after the run, which does not fix every \
                     vulnerability the update was for (needed at least {minimum})"
                ),
                None => format!(
                    "{version} is installed after the run, not {}",
                    update.to_version
                ),
            };
            w.status[i] = (Status::Failed, Some(error));
        }
    }
    Ok(())
}

/// Whether a plan still has work (an update or a skip) for a package of a target.
fn plans_package(plan: &Plan, target: &str, package: &str) -> bool {
    plan.updates
        .iter()
        .any(|u| u.target_id == target && u.package.eq_ignore_ascii_case(package))
        || plan
            .skips
            .iter()
            .any(|s| s.target_id == target && s.package.eq_ignore_ascii_case(package))
}

fn mark_unverified(work: &mut [PluginWork], reason: &str) {
    for w in work {
        for status in &mut w.status {
            if status.0 != Status::Failed {
                *status = (Status::Failed, Some(reason.to_string()));
            }
        }
    }
}

fn patched_packages(work: &[PluginWork]) -> Vec<String> {
    let mut packages: Vec<String> = updates_with(work, Status::Patched)
        .map(|(u, _)| format!("{}=={}", u.package, u.to_version))
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

/// Detect and plan with every plugin of the chosen classes; findings no plugin takes are
/// reported as skipped with the reason.
fn plan_all(
    host: &PluginHost,
    plugins: &[Plugin],
    caps: &Arc<Capabilities>,
    report: Option<&Report>,
    options: &Options,
) -> Result<(Vec<PluginWork>, Vec<SkipRecord>)> {
    let mut skipped = Vec::new();
    let findings: Vec<&report::Finding> = report
        .map(|r| r.findings.iter().collect())
        .unwrap_or_default();
    let update_all = report.is_none();
    if update_all && !options.package_classes.contains(&PackageClass::Os) {
        bail!("without a report (-r) only OS packages are updated, and --pkg-types excludes os");
    }
    if let Some(report) = report {
        check_os_matches(report, &caps.image)?;
    }
    let mut routed = vec![false; findings.len()];
    let mut work = Vec::new();
    for (plugin_index, plugin) in plugins.iter().enumerate() {
        let chosen: Vec<usize> = (0..findings.len())
            .filter(|&i| routes_to(findings[i], plugin))
            .collect();
        for &i in &chosen {
            routed[i] = true;
        }
        // Without a report, every OS patcher looks for what is upgradable in its database.
        let wanted = if update_all {
            plugin.info.package_class == PackageClass::Os
        } else {
            !chosen.is_empty()
        };
        if !wanted || !options.package_classes.contains(&plugin.info.package_class) {
            continue;
        }
        let targets = host.detect(plugin, caps)?;
        if update_all && targets.is_empty() {
            continue;
        }
        let plugin_findings: Vec<Finding> = chosen
            .iter()
            .map(|&i| to_plugin_finding(findings[i]))
            .collect();
        let policy = policy(options, plugin);
        let plan = host.plan(plugin, caps, &targets, &plugin_findings, &policy)?;
        for skip in &plan.skips {
            skipped.push(SkipRecord {
                ecosystem: plugin.info.name.clone(),
                target: skip.target_id.clone(),
                package: skip.package.clone(),
                vulnerabilities: skip.vulnerabilities.clone(),
                reason: skip.reason.clone(),
            });
        }
        let status = vec![(Status::Planned, None); plan.updates.len()];
        work.push(PluginWork {
            plugin: plugin_index,
            targets,
            findings: plugin_findings,
            policy,
            plan,
            status,
        });
    }
    for (finding, routed) in findings.iter().zip(routed) {
        let class_wanted = match finding.class {
            report::FindingClass::OsPkgs => options.package_classes.contains(&PackageClass::Os),
            report::FindingClass::LangPkgs => {
                options.package_classes.contains(&PackageClass::Library)
            }
        };
        let reason = if !class_wanted {
            let class = match finding.class {
                report::FindingClass::OsPkgs => "os",
                report::FindingClass::LangPkgs => "library",
            };
            format!("--pkg-types does not include {class}")
        } else if !routed {
            format!("no plugin handles {} packages", finding.report_type)
        } else {
            continue;
        };
        skipped.push(SkipRecord {
            ecosystem: finding.report_type.clone(),
            target: finding
                .pkg_path
                .clone()
                .unwrap_or_else(|| finding.report_target.clone()),
            package: finding.package_name.clone(),
            vulnerabilities: vec![finding.vulnerability_id.clone()],
            reason,
        });
    }
    merge_skips(&mut skipped);
    Ok((work, skipped))
}

/// The policy of the run for one plugin: with the options meant for it.
fn policy(options: &Options, plugin: &Plugin) -> Policy {
    Policy {
        library_patch_level: options.library_patch_level,
        update_all: options.report.is_none(),
        toolchain_patch_level: options.toolchain_patch_level,
        options: options_for(&options.plugin_options, &plugin.info.name),
        indexes: grants::index_urls(plugin, &options.indexes),
    }
}

/// The (key, value) options of `plugin`, in the order given.
fn options_for(options: &[(String, String, String)], plugin: &str) -> Vec<(String, String)> {
    options
        .iter()
        .filter(|(name, _, _)| name == plugin)
        .map(|(_, key, value)| (key.clone(), value.clone()))
        .collect()
}

/// Trivy's OS family names and the os-release IDs of the same distributions.
const OS_FAMILIES: &[(&str, &[&str])] = &[
    ("debian", &["debian"]),
    ("ubuntu", &["ubuntu"]),
    ("alpine", &["alpine"]),
    ("wolfi", &["wolfi"]),
    ("chainguard", &["chainguard"]),
    ("redhat", &["rhel"]),
    ("centos", &["centos"]),
    ("rocky", &["rocky"]),
    ("alma", &["almalinux"]),
    ("fedora", &["fedora"]),
    ("amazon", &["amzn"]),
    ("oracle", &["ol"]),
    ("azurelinux", &["azurelinux"]),
    ("cbl-mariner", &["mariner"]),
    ("photon", &["photon"]),
    ("suse linux enterprise server", &["sles"]),
    ("opensuse.leap", &["opensuse-leap", "opensuse"]),
    ("opensuse.tumbleweed", &["opensuse-tumbleweed"]),
];

/// A report of another distribution (or another major release) than the image is a mistake
/// that would patch the wrong packages: refuse it, naming both.
fn check_os_matches(report: &Report, image: &ImageView) -> Result<()> {
    let Some((family, name)) = &report.os else {
        return Ok(());
    };
    let Some(release) = ospkg::OS_RELEASE_PATHS
        .iter()
        .find_map(|p| view_text(image, p))
        .map(|text| OsRelease::parse(&text))
    else {
        return Ok(());
    };
    let family = family.to_ascii_lowercase();
    let same_family = match OS_FAMILIES.iter().find(|(f, _)| *f == family) {
        Some((_, ids)) => ids.contains(&release.id.as_str()),
        None => family == release.id,
    };
    let major = |v: &str| v.split(['.', ' ']).next().unwrap_or_default().to_string();
    let same_release = match &release.version_id {
        Some(version) if !name.is_empty() => major(name) == major(version),
        _ => true,
    };
    if !same_family || !same_release {
        bail!(
            "the report is for {family} {name}, but the image is {} (/etc/os-release)",
            release.pretty_name.clone().unwrap_or_else(|| format!(
                "{} {}",
                release.id,
                release.version_id.clone().unwrap_or_default()
            ))
        );
    }
    Ok(())
}

fn view_text(image: &ImageView, path: &str) -> Option<String> {
    image
        .read_file(path)
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Routing uses what the scanner said (result type, PURL type), never a guess.
fn routes_to(finding: &report::Finding, plugin: &Plugin) -> bool {
    plugin
        .info
        .report_types
        .iter()
        .any(|t| t == &finding.report_type)
        || finding
            .purl_type()
            .is_some_and(|p| plugin.info.purl_types.iter().any(|t| t == p))
}

/// One row per (ecosystem, target, package, reason).
fn merge_skips(skipped: &mut Vec<SkipRecord>) {
    let mut merged: Vec<SkipRecord> = Vec::new();
    for skip in skipped.drain(..) {
        match merged.iter_mut().find(|m| {
            m.ecosystem == skip.ecosystem
                && m.target == skip.target
                && m.package == skip.package
                && m.reason == skip.reason
        }) {
            Some(m) => {
                for v in skip.vulnerabilities {
                    if !m.vulnerabilities.contains(&v) {
                        m.vulnerabilities.push(v);
                    }
                }
            }
            None => merged.push(skip),
        }
    }
    *skipped = merged;
}

fn to_plugin_finding(f: &report::Finding) -> Finding {
    Finding {
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

fn record_updates(summary: &mut Summary, plugins: &[Plugin], work: &[PluginWork]) {
    for w in work {
        for (update, (status, error)) in w.plan.updates.iter().zip(&w.status) {
            summary.updates.push(UpdateRecord {
                ecosystem: plugins[w.plugin].info.name.clone(),
                target: update.target_id.clone(),
                package: update.package.clone(),
                from: update.from_version.clone(),
                // A minimum still unverified reads as one (">=1.2").
                to: if update.at_least {
                    format!(">={}", update.to_version)
                } else {
                    update.to_version.clone()
                },
                fixes: update.fixes.clone(),
                notes: update.notes.clone(),
                status: *status,
                error: error.clone(),
            });
        }
    }
}

/// Writes the VEX document of a run that wrote `patched` (`digest`): the outcome of each
/// finding from where the patchers found its package and what became of their updates.
fn write_vex(
    settings: &vex::Settings,
    report: &Report,
    patched: &ImageRef,
    digest: &str,
    plugins: &[Plugin],
    work: &[PluginWork],
    summary: &Summary,
) -> Result<()> {
    let outcomes: Vec<vex::Outcome> = report
        .findings
        .iter()
        .map(|finding| {
            let placements = placements(finding, plugins, work);
            vex::outcome(finding, &placements, &summary.updates, &summary.skipped)
        })
        .collect();
    let file_name = |path: &std::path::Path| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".to_owned())
    };
    let (repository, name, tag) = match patched {
        ImageRef::Plain(reference)
        | ImageRef::Daemon(reference)
        | ImageRef::Registry(reference)
        | ImageRef::DockerArchive {
            reference: Some(reference),
            ..
        } => {
            let (repository, tag) = crate::image::split_reference(reference);
            let name = repository.rsplit('/').next().unwrap_or(repository);
            (
                Some(repository.to_owned()),
                name.to_owned(),
                tag.map(str::to_owned),
            )
        }
        ImageRef::OciLayout { dir: path, tag } | ImageRef::OciArchive { path, tag } => {
            (None, file_name(path), tag.clone())
        }
        ImageRef::DockerArchive {
            path,
            reference: None,
        } => (None, file_name(path), None),
    };
    let product = vex::Product {
        repository,
        name,
        tag,
        digest: digest.to_owned(),
    };
    let timestamp = rfc3339(now_or_source_date_epoch());
    let declared_purl_type = |finding: &report::Finding| {
        plugins
            .iter()
            .find(|plugin| routes_to(finding, plugin))
            .and_then(|plugin| plugin.info.purl_types.first().cloned())
    };
    match vex::document(
        report,
        &outcomes,
        &declared_purl_type,
        &product,
        &settings.author,
        &timestamp,
    ) {
        Some(document) => vex::write(&settings.path, &document),
        None => {
            eprintln!(
                "No VEX document written to {}: the report lists no vulnerabilities.",
                settings.path.display()
            );
            Ok(())
        }
    }
}

/// Where the patchers that handled a finding found its package: the targets holding a package
/// of that name, narrowed to the one whose files hold the finding's path when it has one.
fn placements(
    finding: &report::Finding,
    plugins: &[Plugin],
    work: &[PluginWork],
) -> Vec<vex::Placement> {
    let python = finding.report_type == "python-pkg" || finding.purl_type() == Some("pypi");
    let same_name = |name: &str| {
        if python {
            copa_plugin_sdk::pep440::normalize_name(name)
                == copa_plugin_sdk::pep440::normalize_name(&finding.package_name)
        } else {
            name.eq_ignore_ascii_case(&finding.package_name)
        }
    };
    let mut placements = Vec::new();
    for w in work
        .iter()
        .filter(|w| routes_to(finding, &plugins[w.plugin]))
    {
        for target in &w.targets {
            let held = target.packages.iter().find(|p| {
                same_name(&p.name)
                    && finding.pkg_path.as_deref().is_none_or(|path| {
                        path == p.location
                            || path
                                .strip_prefix(p.location.as_str())
                                .is_some_and(|rest| rest.starts_with('/'))
                    })
            });
            if let Some(package) = held {
                placements.push(vex::Placement {
                    ecosystem: plugins[w.plugin].info.name.clone(),
                    target: target.id.clone(),
                    package: package.name.clone(),
                });
            }
        }
    }
    placements
}

fn read_ca(path: &std::path::Path) -> Result<Vec<u8>> {
    let pem = std::fs::read(path).map_err(|e| anyhow!("--ca-cert {}: {e}", path.display()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        bail!(
            "--ca-cert {}: no PEM certificate in the file",
            path.display()
        );
    }
    Ok(pem)
}

/// The image's own trust store plus the user's CA: package managers given a bundle use only
/// that bundle, and must still trust the public hosts the image already trusts.
fn ca_bundle(view: &ImageView, extra: &[u8]) -> Vec<u8> {
    let mut bundle = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .find_map(|p| view.read_file(p).ok())
    .unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with(b"\n") {
        bundle.push(b'\n');
    }
    bundle.extend_from_slice(extra);
    bundle
}

/// Now, unless the user pins time with `SOURCE_DATE_EPOCH`: the layer is reproducible, the
/// image's creation time and the VEX timestamp are real ones otherwise.
fn now_or_source_date_epoch() -> u64 {
    source_date_epoch().unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    })
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds). Without it the layer's mtimes are 0, so
/// they never depend on when the patch ran.
fn source_date_epoch() -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

fn is_loopback_url(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or_default()
            .trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Seconds since the epoch as RFC 3339 UTC.
fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_gets_its_own_options_in_order() {
        let option = |plugin: &str, key: &str, value: &str| {
            (plugin.to_string(), key.to_string(), value.to_string())
        };
        let options = [
            option("go", "source", "a=https://a"),
            option("npm", "source", "elsewhere"),
            option("go", "source", "b=https://b@v1"),
            option("go", "other", ""),
        ];
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            options_for(&options, "go"),
            pairs(&[
                ("source", "a=https://a"),
                ("source", "b=https://b@v1"),
                ("other", "")
            ])
        );
        assert_eq!(
            options_for(&options, "npm"),
            pairs(&[("source", "elsewhere")])
        );
        assert!(options_for(&options, "pip").is_empty());
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn recognises_loopback_indexes() {
        assert!(is_loopback_url("http://127.0.0.1:8080/simple/"));
        assert!(is_loopback_url("http://user:pw@localhost/simple"));
        assert!(is_loopback_url("http://[::1]:3141/root/pypi"));
        assert!(!is_loopback_url("https://pypi.org/simple/"));
    }
}
