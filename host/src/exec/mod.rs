//! The executor: runs a plugin's steps and hands back what each step changed. `run` steps run
//! in containers of the target image through the Docker Engine API, `tooling` steps in
//! containers of a tooling image, and `fetch` / `write` steps need no container at all
//! ([`files`]). It injects run-only settings (CA bundle, index URLs, proxies) and always removes
//! what it created, also on failure and on Ctrl-C.

mod files;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use bollard::Docker;
use bollard::models::{ChangeType, ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListImagesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::http::PluginHttp;
use crate::image::layer::{ALWAYS_EXCLUDED, is_at_or_below};
use crate::image::view::normalize_path;
use crate::image::{ImageView, LayerTar, StepDiff, daemon};
use crate::index::{Artifact, MAX_ARTIFACT_BYTES, PackageIndex};
use crate::plugin::{DownloadStep, RunStep, Step, ToolingStep};
use crate::terminal::printable;

/// Where the CA bundle is placed inside a step's container (and excluded from the layer).
const INJECT_DIR: &str = "/.copa-host";
const CA_BUNDLE: &str = "/.copa-host/ca.pem";
/// The user's logins for the plugin's indexes, for tools that read `NETRC`.
const NETRC: &str = "/.copa-host/netrc";
const RUN_LABEL: &str = "org.copa-host.run";
/// Capabilities of Docker's default set that no package manager needs (it keeps CHOWN,
/// DAC_OVERRIDE, FOWNER, SETUID/SETGID for its sandbox user, SETFCAP for packages that set file
/// capabilities).
const DROPPED_CAPABILITIES: &[&str] = &[
    "NET_RAW",
    "MKNOD",
    "AUDIT_WRITE",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
];
/// The most processes a step's container may run at once.
const STEP_PIDS_LIMIT: i64 = 4096;
/// The most memory a step's container may use (swap included): room for a package manager and
/// a Go build, not for a step that would take the machine down with it.
const STEP_MEMORY_LIMIT: i64 = 8 << 30;

/// Run-only settings: nothing here reaches the patch layer or the image config.
#[derive(Clone, Debug, Default)]
pub struct RunSettings {
    /// PEM bundle that steps talking to an index must trust.
    pub ca_bundle: Option<Vec<u8>>,
    /// Per index ecosystem, the variables that point its client at the configured index.
    pub index_env: HashMap<String, Vec<(String, String)>>,
    /// Proxy variables passed through from the environment.
    pub proxy_env: Vec<(String, String)>,
    /// Stamped as SOURCE_DATE_EPOCH so that tools write reproducible output (pip then writes
    /// hash-checked bytecode).
    pub source_date_epoch: u64,
    /// The plugins whose steps that talk to an index join the host's network: an index of theirs
    /// is on this machine's loopback. Every other container stays on Docker's network.
    pub host_network: std::collections::HashSet<String>,
    pub step_timeout: Duration,
    /// `--tooling-image KIND=REF`: the user's image for a kind of tooling ("go").
    pub tooling_images: HashMap<String, String>,
}

/// The outcome of running a plugin's steps.
pub struct RunOutcome {
    /// The changes of each step that succeeded, in order.
    pub diffs: Vec<StepDiff>,
    /// Index into the steps and the one-line reason, for each step that failed.
    pub failures: Vec<(usize, String)>,
    /// The image holding every successful step's changes, when any step succeeded.
    pub image: Option<String>,
}

/// Containers and images a run created and has not removed yet. Shared with the engine, which
/// removes them whatever way the run ends (success, error, timeout, Ctrl-C).
#[derive(Clone)]
pub struct Created(Arc<Mutex<CreatedLists>>);

struct CreatedLists {
    /// The value of [`RUN_LABEL`] on everything this run creates: a request the run gave up on
    /// (a timeout, Ctrl-C) may still create its container or image, which is then found by it.
    run_id: String,
    containers: Vec<String>,
    images: Vec<String>,
}

impl Default for Created {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Created(Arc::new(Mutex::new(CreatedLists {
            run_id: format!("{}-{}-{nanos}", this_machine(), std::process::id()),
            containers: Vec::new(),
            images: Vec::new(),
        })))
    }
}

impl Created {
    pub fn image(&self, id: &str) {
        self.0.lock().unwrap().images.push(id.to_string());
    }

    fn run_id(&self) -> String {
        self.0.lock().unwrap().run_id.clone()
    }

    fn container(&self, id: &str) {
        self.0.lock().unwrap().containers.push(id.to_string());
    }

    fn container_removed(&self, id: &str) {
        self.0.lock().unwrap().containers.retain(|c| c != id);
    }

    /// Removes every container of this run: those listed, and those carrying its label that a
    /// request given up on created after all.
    async fn remove_containers(&self, docker: &Docker) {
        let (listed, run_id) = {
            let mut lists = self.0.lock().unwrap();
            (std::mem::take(&mut lists.containers), lists.run_id.clone())
        };
        let labelled = labelled(&run_id, |filters| async move {
            let options = ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build();
            let found = docker.list_containers(Some(options)).await?;
            Ok(found.into_iter().filter_map(|c| c.id).collect())
        })
        .await;
        for id in unique(listed.into_iter().chain(labelled)) {
            remove_container(docker, &id).await;
        }
    }

    /// Removes everything this run created: containers first, then images newest first (each
    /// committed image is the parent of the next; a committed image carries its container's
    /// label).
    pub async fn remove_all(&self, docker: &Docker) {
        self.remove_containers(docker).await;
        let (listed, run_id) = {
            let mut lists = self.0.lock().unwrap();
            (std::mem::take(&mut lists.images), lists.run_id.clone())
        };
        let labelled = labelled(&run_id, |filters| async move {
            let options = ListImagesOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build();
            let found = docker.list_images(Some(options)).await?;
            // Oldest first, the order they are listed in; all are removed in reverse.
            let mut found: Vec<_> = found.into_iter().map(|i| (i.created, i.id)).collect();
            found.sort();
            Ok(found.into_iter().map(|(_, id)| id).collect())
        })
        .await;
        for id in unique(listed.into_iter().chain(labelled)).iter().rev() {
            daemon::remove_image(docker, id).await;
        }
    }
}

/// An id of this machine for run labels (its machine-id, else its host name): a run is known
/// to be dead only on the machine it ran on.
pub fn this_machine() -> String {
    let id = std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
        .unwrap_or_default();
    let id: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    if id.is_empty() { "unknown".into() } else { id }
}

/// Whether the run labelled `run_id` died on this machine without removing what it created
/// (killed with SIGKILL, or the machine went down): its process is gone, or is no copa-host.
fn is_dead_run(run_id: &str, machine: &str) -> bool {
    let mut parts = run_id.splitn(3, '-');
    let (Some(owner), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if owner != machine || pid == std::process::id() {
        return false;
    }
    let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !String::from_utf8_lossy(&command).contains("copa-host")
}

/// Removes the containers and images that runs which died on this machine left in the daemon
/// (a run removes its own however it ends, unless it is killed outright). Runs of other
/// machines sharing the daemon, and live ones, are left alone.
pub async fn remove_dead_runs(docker: &Docker) {
    let machine = this_machine();
    let filters = HashMap::from([("label".to_string(), vec![RUN_LABEL.to_string()])]);
    let dead = |labels: Option<HashMap<String, String>>| {
        labels
            .and_then(|l| l.get(RUN_LABEL).cloned())
            .is_some_and(|run| is_dead_run(&run, &machine))
    };
    let containers = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    match docker.list_containers(Some(containers)).await {
        Ok(found) => {
            for container in found.into_iter().filter(|c| dead(c.labels.clone())) {
                if let Some(id) = container.id {
                    remove_container(docker, &id).await;
                }
            }
        }
        Err(e) => tracing::warn!("listing containers of earlier runs: {e}"),
    }
    let images = ListImagesOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    match docker.list_images(Some(images)).await {
        Ok(found) => {
            let mut found: Vec<_> = found
                .into_iter()
                .filter(|i| dead(Some(i.labels.clone())))
                .map(|i| (i.created, i.id))
                .collect();
            // Newest first: each committed image is the parent of the next.
            found.sort();
            for (_, id) in found.iter().rev() {
                daemon::remove_image(docker, id).await;
            }
        }
        Err(e) => tracing::warn!("listing images of earlier runs: {e}"),
    }
}

/// What `list` finds with this run's label; nothing (and a warning) when the daemon cannot say.
async fn labelled<F, Fut>(run_id: &str, list: F) -> Vec<String>
where
    F: FnOnce(HashMap<String, Vec<String>>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, bollard::errors::Error>>,
{
    let filters = HashMap::from([("label".to_string(), vec![format!("{RUN_LABEL}={run_id}")])]);
    list(filters).await.unwrap_or_else(|e| {
        tracing::warn!("listing what this run created: {e}");
        Vec::new()
    })
}

/// Each ID once, where it first appears.
fn unique(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for id in ids {
        if !all.contains(&id) {
            all.push(id);
        }
    }
    all
}

/// What a command runs with, whichever image it runs in.
struct Command<'a> {
    image: &'a str,
    argv: &'a [String],
    env: &'a [(String, String)],
    workdir: Option<&'a str>,
    user: Option<&'a str>,
    index_ecosystem: Option<&'a str>,
    /// Variables the command's tools take the CA bundle's path from.
    ca_variables: &'a [String],
    /// Whether the container joins the host's network.
    host_network: bool,
    /// The netrc of the plugin's index logins, for a command that talks to an index.
    netrc: Option<String>,
}

/// The outcome of one step, before the chain of run steps is read back.
enum Done {
    /// A run step: its changes are the next layer of the committed chain.
    InChain,
    /// A step whose changes the host built itself.
    Built(StepDiff),
    /// A step that succeeded, but applies an update another step of which failed: left out
    /// (a run step's layer is still read back with the chain).
    Dropped { in_chain: bool },
}

/// Why `step` must not land: an update it applies failed in an earlier step (by index).
fn failed_with(step: &Step, failed: &HashMap<u32, usize>, steps: &[Step]) -> Option<String> {
    step_updates(step).iter().find_map(|u| {
        failed.get(u).map(|&by| {
            format!(
                "it also applies an update whose step \"{}\" failed",
                step_description(&steps[by])
            )
        })
    })
}

/// Marks every update of `step` (by index) failed, keeping the first failure of each.
fn fail_updates(step: &Step, index: usize, failed: &mut HashMap<u32, usize>) {
    for &u in step_updates(step) {
        failed.entry(u).or_insert(index);
    }
}

/// Takes back the steps that succeeded but apply an update that failed later, until none is
/// left: each becomes a failure, and its other updates fail with it.
fn drop_partial_updates(
    steps: &[Step],
    done: &mut [(usize, Done)],
    failures: &mut Vec<(usize, String)>,
    failed: &mut HashMap<u32, usize>,
) {
    loop {
        let mut dropped_any = false;
        for (index, outcome) in done.iter_mut() {
            if matches!(outcome, Done::Dropped { .. }) {
                continue;
            }
            let Some(reason) = failed_with(&steps[*index], failed, steps) else {
                continue;
            };
            *outcome = Done::Dropped {
                in_chain: matches!(outcome, Done::InChain),
            };
            fail_updates(&steps[*index], *index, failed);
            failures.push((*index, format!("taken back: {reason}")));
            dropped_any = true;
        }
        if !dropped_any {
            break;
        }
    }
    failures.sort_by_key(|(index, _)| *index);
}

/// What host-made steps read: the image being patched, the package indexes, and the origins
/// granted to plugins (for `download` steps).
pub struct Sources {
    pub view: Arc<ImageView>,
    pub index: Arc<PackageIndex>,
    pub http: Option<Arc<PluginHttp>>,
}

#[derive(Clone)]
pub struct Executor {
    /// None when no daemon is at hand: then only fetch and write steps can run.
    docker: Option<Docker>,
    settings: RunSettings,
    created: Created,
    sources: Arc<Sources>,
}

impl Executor {
    pub fn new(
        docker: Option<Docker>,
        settings: RunSettings,
        created: Created,
        sources: Arc<Sources>,
    ) -> Self {
        Executor {
            docker,
            settings,
            created,
            sources,
        }
    }

    /// What this executor created and has not removed yet.
    pub fn created(&self) -> &Created {
        &self.created
    }

    pub fn docker(&self) -> Result<&Docker> {
        self.docker
            .as_ref()
            .ok_or_else(|| anyhow!("the Docker daemon is needed to run this patch's commands"))
    }

    /// Runs `plugin`'s `steps` in order; `run` steps form a chain of containers on top of
    /// `image` (the target image in the daemon, needed only when there are run steps). A failed
    /// step is dropped (its changes never count) and, unless `keep_going`, stops the run.
    pub async fn run(
        &self,
        plugin: &str,
        image: Option<&str>,
        steps: &[Step],
        keep_going: bool,
        workdir: &std::path::Path,
    ) -> Result<RunOutcome> {
        let mut chain = image.map(str::to_string);
        let mut done: Vec<(usize, Done)> = Vec::new();
        let mut failures = Vec::new();
        // Update -> the step that failed it: an update's steps land together or not at all.
        let mut failed: HashMap<u32, usize> = HashMap::new();
        // Descriptions and errors carry a plugin's and an image's text.
        let say = |line: String| eprintln!("{}", printable(&line));
        for (index, step) in steps.iter().enumerate() {
            let description = step_description(step);
            if let Some(reason) = failed_with(step, &failed, steps) {
                say(format!(
                    "  [{}/{}] {description} not run: {reason}",
                    index + 1,
                    steps.len()
                ));
                fail_updates(step, index, &mut failed);
                failures.push((index, format!("not run: {reason}")));
                continue;
            }
            say(format!(
                "  [{}/{}] {description} ...",
                index + 1,
                steps.len()
            ));
            let started = Instant::now();
            let result = match step {
                Step::Run(run) => match chain.clone() {
                    Some(current) => self
                        .within_limit(self.run_step(plugin, &current, run))
                        .await
                        .map(|committed| {
                            chain = Some(committed);
                            Done::InChain
                        }),
                    None => Err(anyhow!("no image in the daemon to run the command in")),
                },
                Step::Fetch(fetch) => self.fetch(fetch, workdir).await.map(Done::Built),
                Step::Write(write) => files::write(write, &self.sources.view)
                    .and_then(|diff| diff.into_step_diff(workdir))
                    .map(Done::Built),
                Step::Tooling(tooling) => self
                    .tooling(plugin, tooling, workdir)
                    .await
                    .map(Done::Built),
                Step::Download(download) => self
                    .download(plugin, download, workdir)
                    .await
                    .map(Done::Built),
            };
            match result {
                Ok(outcome) => {
                    say(format!(
                        "  [{}/{}] {description} done in {:.1} s",
                        index + 1,
                        steps.len(),
                        started.elapsed().as_secs_f64()
                    ));
                    done.push((index, outcome));
                }
                Err(e) => {
                    say(format!(
                        "  [{}/{}] {description} FAILED: {e}",
                        index + 1,
                        steps.len()
                    ));
                    failures.push((index, format!("{e:#}").replace('\n', " ")));
                    fail_updates(step, index, &mut failed);
                    if !keep_going {
                        break;
                    }
                }
            }
        }
        drop_partial_updates(steps, &mut done, &mut failures, &mut failed);
        let in_chain: Vec<usize> = done
            .iter()
            .filter(|(_, d)| matches!(d, Done::InChain | Done::Dropped { in_chain: true }))
            .map(|(i, _)| *i)
            .collect();
        let mut chain_layers = Vec::new().into_iter();
        let mut head = None;
        if let (false, Some(start), Some(current)) = (in_chain.is_empty(), image, &chain) {
            let docker = self.docker()?;
            let base_layers = self.layer_count(start).await?;
            let saved = self
                .within_limit(daemon::save(docker, current, workdir))
                .await
                .map_err(|e| {
                    let steps: Vec<&str> = in_chain
                        .iter()
                        .map(|&i| step_description(&steps[i]))
                        .collect();
                    anyhow!("reading back the changes of {}: {e:#}", steps.join(", "))
                })?;
            let new_layers: Vec<LayerTar> = saved.layers.into_iter().skip(base_layers).collect();
            if new_layers.len() != in_chain.len() {
                return Err(anyhow!(
                    "expected {} new layers after the steps, found {}",
                    in_chain.len(),
                    new_layers.len()
                ));
            }
            chain_layers = new_layers.into_iter();
            head = Some(current.clone());
        }
        let mut diffs = Vec::new();
        for (index, outcome) in done {
            match outcome {
                Done::Dropped { in_chain } => {
                    // A run step's layer is in the chain; its changes stay out of the patch.
                    if in_chain {
                        chain_layers.next();
                    }
                }
                Done::Built(diff) => diffs.push(diff),
                Done::InChain => {
                    let Step::Run(run) = &steps[index] else {
                        unreachable!("only run steps join the chain")
                    };
                    let mut exclude = run.exclude.clone();
                    exclude.push(INJECT_DIR.into());
                    let tar = chain_layers.next().expect("one layer per chained step");
                    diffs.push(StepDiff { tar, exclude });
                }
            }
        }
        Ok(RunOutcome {
            diffs,
            failures,
            image: head,
        })
    }

    async fn fetch(
        &self,
        step: &crate::plugin::FetchStep,
        workdir: &std::path::Path,
    ) -> Result<StepDiff> {
        let sources = Arc::clone(&self.sources);
        let (step, workdir) = (step.clone(), workdir.to_path_buf());
        // Downloading and unpacking block; keep them off the async workers.
        tokio::task::spawn_blocking(move || {
            let artifact = sources
                .index
                .artifact(&step.ecosystem, &step.name, &step.version)
                .map_err(|e| anyhow!(e))?;
            files::place(&step.placements, &artifact, &sources.view)?.into_step_diff(&workdir)
        })
        .await?
    }

    /// A `download` step: the file at its URL, through `plugin`'s grants, checked against the
    /// step's digest and placed like a fetch.
    async fn download(
        &self,
        plugin: &str,
        step: &DownloadStep,
        workdir: &std::path::Path,
    ) -> Result<StepDiff> {
        let sources = Arc::clone(&self.sources);
        let (plugin, step, workdir) = (plugin.to_owned(), step.clone(), workdir.to_path_buf());
        tokio::task::spawn_blocking(move || {
            let http = sources
                .http
                .as_ref()
                .ok_or_else(|| anyhow!("this run grants no network to plugins"))?;
            let bytes = http.download(&plugin, &step.url, MAX_ARTIFACT_BYTES)?;
            let artifact =
                Artifact::from_download(&step.url, &bytes, &step.sha256).map_err(|e| anyhow!(e))?;
            files::place(&step.placements, &artifact, &sources.view)?.into_step_diff(&workdir)
        })
        .await?
    }

    async fn layer_count(&self, image: &str) -> Result<usize> {
        let inspect = self
            .docker()?
            .inspect_image(image)
            .await
            .map_err(|e| anyhow!("inspecting {image}: {e}"))?;
        Ok(inspect
            .root_fs
            .and_then(|r| r.layers)
            .map(|l| l.len())
            .unwrap_or(0))
    }

    /// Whether a command of `plugin` joins the host's network: only one that talks to an index,
    /// of a plugin with an index on loopback, which Docker's network cannot reach.
    fn joins_host_network(&self, plugin: &str, index_ecosystem: Option<&str>) -> bool {
        index_ecosystem.is_some() && self.settings.host_network.contains(plugin)
    }

    /// The netrc for a command of `plugin` that talks to an index (`index_ecosystem`).
    fn netrc(&self, plugin: &str, index_ecosystem: Option<&str>) -> Option<String> {
        index_ecosystem?;
        self.sources.http.as_ref()?.netrc(plugin)
    }

    fn environment(&self, command: &Command<'_>) -> Vec<String> {
        let mut env: Vec<(String, String)> = command.env.to_vec();
        env.push((
            "SOURCE_DATE_EPOCH".into(),
            self.settings.source_date_epoch.to_string(),
        ));
        if let Some(ecosystem) = command.index_ecosystem {
            // Only the host's own package-index (contracts before 0.4) has settings here.
            env.extend(
                self.settings
                    .index_env
                    .get(ecosystem)
                    .cloned()
                    .unwrap_or_default(),
            );
            if self.settings.ca_bundle.is_some() {
                // COPA_CA_BUNDLE for commands that take the bundle as an option (apt's
                // Acquire::https::CAInfo), the tools' own variables for the others.
                env.push(("COPA_CA_BUNDLE".into(), CA_BUNDLE.into()));
                env.extend(
                    command
                        .ca_variables
                        .iter()
                        .map(|name| (name.clone(), CA_BUNDLE.into())),
                );
            }
            if command.netrc.is_some() {
                env.push(("NETRC".into(), NETRC.into()));
            }
            env.extend(self.settings.proxy_env.iter().cloned());
        }
        env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// Bounds a part of a step that uses the daemon by `--timeout`. A part that runs out of
    /// time is dropped mid-request, so the containers it may have created are removed here.
    async fn within_limit<T>(
        &self,
        part: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let limit = self.settings.step_timeout;
        match tokio::time::timeout(limit, part).await {
            Ok(result) => result,
            Err(_) => {
                if let Some(docker) = &self.docker {
                    self.created.remove_containers(docker).await;
                }
                Err(anyhow!(
                    "timed out after {} ({})",
                    seconds(limit),
                    crate::setting::Setting::Timeout
                ))
            }
        }
    }

    /// Runs one step and commits its container; returns the committed image's ID.
    async fn run_step(&self, plugin: &str, image: &str, step: &RunStep) -> Result<String> {
        let command = Command {
            image,
            argv: &step.argv,
            env: &step.env,
            workdir: step.workdir.as_deref(),
            user: step.user.as_deref(),
            index_ecosystem: step.index_ecosystem.as_deref(),
            ca_variables: &step.ca_variables,
            host_network: self.joins_host_network(plugin, step.index_ecosystem.as_deref()),
            netrc: self.netrc(plugin, step.index_ecosystem.as_deref()),
        };
        let id = self.create(command).await?;
        let committed = async {
            self.start_and_wait(&id, &step.argv).await?;
            self.check_changes(&id, step).await?;
            self.commit(&id).await
        }
        .await;
        self.remove(&id).await;
        committed
    }

    /// Fails when the step's container changed a path the step did not declare (`changes`).
    async fn check_changes(&self, id: &str, step: &RunStep) -> Result<()> {
        let declared: Vec<String> = step.changes.iter().map(|p| normalize_path(p)).collect();
        if declared.iter().any(|p| p == "/") {
            return Ok(());
        }
        let changed = self
            .docker()?
            .container_changes(id)
            .await
            .map_err(|e| anyhow!("listing the step's changes: {e}"))?
            .unwrap_or_default();
        let allowed = Allowed::new(declared, &step.exclude);
        let changed = changed
            .iter()
            .map(|c| (c.path.as_str(), c.kind == ChangeType::_2));
        match allowed.refused(changed).split_first() {
            None => Ok(()),
            Some((first, rest)) => Err(anyhow!(
                "changed {first}{} outside the paths it declares ({})",
                match rest.len() {
                    0 => String::new(),
                    n => format!(" and {n} more path(s)"),
                },
                allowed.declared.join(", ")
            )),
        }
    }

    /// A container for `command`, created but not started, with the CA bundle in place when
    /// the command talks to an index.
    async fn create(&self, command: Command<'_>) -> Result<String> {
        let docker = self.docker()?;
        let (program, args) = command
            .argv
            .split_first()
            .ok_or_else(|| anyhow!("step has an empty command"))?;
        let config = ContainerCreateBody {
            image: Some(command.image.to_string()),
            entrypoint: Some(vec![program.clone()]),
            cmd: Some(args.to_vec()),
            env: Some(self.environment(&command)),
            working_dir: command.workdir.map(str::to_string),
            user: Some(command.user.unwrap_or("0:0").to_string()),
            labels: Some(HashMap::from([(
                RUN_LABEL.to_string(),
                self.created.run_id(),
            )])),
            host_config: Some(HostConfig {
                network_mode: command.host_network.then(|| "host".to_string()),
                // A package manager installs files: it never needs to gain privileges through
                // a setuid program, open raw sockets, make devices or bind low ports, and a
                // fork bomb or a runaway build in a maintainer script stops at the limits.
                security_opt: Some(vec!["no-new-privileges".to_string()]),
                cap_drop: Some(DROPPED_CAPABILITIES.iter().map(|c| c.to_string()).collect()),
                pids_limit: Some(STEP_PIDS_LIMIT),
                memory: Some(STEP_MEMORY_LIMIT),
                memory_swap: Some(STEP_MEMORY_LIMIT),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().build()),
                config,
            )
            .await
            .map_err(|e| anyhow!("creating a container from {}: {e}", command.image))?;
        let id = created.id;
        self.created.container(&id);
        let injected: Vec<(&str, &[u8])> = command
            .index_ecosystem
            .and(self.settings.ca_bundle.as_deref())
            .map(|bundle| (CA_BUNDLE, bundle))
            .into_iter()
            .chain(command.netrc.as_deref().map(|n| (NETRC, n.as_bytes())))
            .collect();
        if !injected.is_empty() {
            self.upload(&id, "/", injected_tar(&injected)?)
                .await
                .map_err(|e| anyhow!("placing the CA bundle or netrc in the container: {e}"))?;
        }
        Ok(id)
    }

    async fn upload(&self, id: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        self.docker()?
            .upload_to_container(
                id,
                Some(UploadToContainerOptionsBuilder::default().path(dir).build()),
                bollard::body_full(tar.into()),
            )
            .await
            .map_err(|e| anyhow!("copying into the container: {e}"))
    }

    async fn remove(&self, id: &str) {
        if let Some(docker) = &self.docker {
            remove_container(docker, id).await;
        }
        self.created.container_removed(id);
    }

    async fn start_and_wait(&self, id: &str, argv: &[String]) -> Result<()> {
        let docker = self.docker()?;
        docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(|e| anyhow!("starting {}: {e}", argv[0]))?;
        let mut wait = docker.wait_container(
            id,
            Some(
                WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build(),
            ),
        );
        let status = match wait.next().await {
            Some(Ok(response)) => response.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(anyhow!("waiting for the container: {e}")),
            None => return Err(anyhow!("the daemon closed the wait stream")),
        };
        if status != 0 {
            let output = self.output_tail(id).await;
            return Err(anyhow!(
                "{} exited with status {status}: {output}",
                argv[..argv.len().min(4)].join(" ")
            ));
        }
        Ok(())
    }

    /// The last meaningful line of the container's output, for a one-line error.
    async fn output_tail(&self, id: &str) -> String {
        let Ok(docker) = self.docker() else {
            return String::new();
        };
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("40")
            .build();
        let mut stream = docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        tracing::debug!("container output:\n{text}");
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        lines
            .iter()
            .rev()
            .find(|l| l.starts_with("ERROR") || l.contains("rror:"))
            .or(lines.last())
            .map(|l| l.to_string())
            .unwrap_or_else(|| "no output".into())
    }

    async fn commit(&self, id: &str) -> Result<String> {
        let options = CommitContainerOptionsBuilder::default()
            .container(id)
            .pause(false)
            .build();
        let committed = self
            .docker()?
            .commit_container(options, bollard::models::ContainerConfig::default())
            .await
            .map_err(|e| anyhow!("committing the step's changes: {e}"))?;
        self.created.image(&committed.id);
        Ok(committed.id)
    }

    /// Runs a tooling step: a container of the tooling image gets the target's `copy-in`
    /// paths (as the image has them), runs, and its outputs become the step's diff.
    async fn tooling(
        &self,
        plugin: &str,
        step: &ToolingStep,
        workdir: &std::path::Path,
    ) -> Result<StepDiff> {
        let image = self
            .settings
            .tooling_images
            .get(&step.tooling)
            .cloned()
            .unwrap_or_else(|| step.default_image.clone());
        // Pulling the tooling image is not part of the step's time: it happens once, and on a
        // slow network it may well take longer than the step.
        self.ensure_tooling_image(&image, &step.tooling).await?;
        self.within_limit(self.run_in_tooling(plugin, &image, step, workdir))
            .await
    }

    async fn run_in_tooling(
        &self,
        plugin: &str,
        image: &str,
        step: &ToolingStep,
        workdir: &std::path::Path,
    ) -> Result<StepDiff> {
        let command = Command {
            image,
            argv: &step.argv,
            env: &step.env,
            workdir: step.workdir.as_deref(),
            user: None,
            index_ecosystem: step.index_ecosystem.as_deref(),
            ca_variables: &step.ca_variables,
            host_network: self.joins_host_network(plugin, step.index_ecosystem.as_deref()),
            netrc: self.netrc(plugin, step.index_ecosystem.as_deref()),
        };
        let id = self.create(command).await?;
        let result = self.run_tooling(&id, step, workdir).await;
        self.remove(&id).await;
        result
    }

    async fn run_tooling(
        &self,
        id: &str,
        step: &ToolingStep,
        workdir: &std::path::Path,
    ) -> Result<StepDiff> {
        for path in &step.copy_in {
            let tar = files::image_tree(&self.sources.view, path)?;
            self.upload(id, "/", tar).await?;
        }
        self.start_and_wait(id, &step.argv).await?;
        let docker = self.docker()?;
        let mut diff = files::Diff::new(&self.sources.view);
        for output in &step.outputs {
            let mut archive = Vec::new();
            let mut stream = docker.download_from_container(
                id,
                Some(
                    bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
                        .path(&output.from)
                        .build(),
                ),
            );
            while let Some(chunk) = stream.next().await {
                let chunk = chunk
                    .map_err(|e| anyhow!("copying {} out of the container: {e}", output.from))?;
                archive.extend_from_slice(&chunk);
            }
            files::container_output(
                &mut diff,
                archive.as_slice(),
                &output.to,
                output.mode,
                output.uid,
                output.gid,
            )?;
        }
        diff.into_step_diff(workdir)
    }

    /// The tooling image must be in the daemon, or pullable from its registry.
    async fn ensure_tooling_image(&self, image: &str, tooling: &str) -> Result<()> {
        let docker = self.docker()?;
        if docker.inspect_image(image).await.is_ok() {
            return Ok(());
        }
        let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut pull = docker.create_image(Some(options), None, None);
        while let Some(progress) = pull.next().await {
            progress.map_err(|e| {
                anyhow!(
                    "tooling image {image} is not in the daemon and could not be pulled ({e}); \
                     name one with {} {tooling}=REF",
                    crate::setting::Setting::ToolingImage
                )
            })?;
        }
        Ok(())
    }
}

/// A duration as `--timeout` takes it ("90 s", "1.5 s").
fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// What a step does, for progress lines and errors.
pub fn step_description(step: &Step) -> &str {
    match step {
        Step::Run(s) => &s.description,
        Step::Fetch(s) => &s.description,
        Step::Write(s) => &s.description,
        Step::Tooling(s) => &s.description,
        Step::Download(s) => &s.description,
    }
}

/// Indexes of the plan's updates a step applies.
pub fn step_updates(step: &Step) -> &[u32] {
    match step {
        Step::Run(s) => &s.updates,
        Step::Fetch(s) => &s.updates,
        Step::Write(s) => &s.updates,
        Step::Tooling(s) => &s.updates,
        Step::Download(s) => &s.updates,
    }
}

/// Whether a step needs the Docker daemon, and whether it runs in the target image itself.
pub fn needs_daemon(step: &Step) -> (bool, bool) {
    match step {
        Step::Run(_) => (true, true),
        Step::Tooling(_) => (true, false),
        Step::Fetch(_) | Step::Write(_) | Step::Download(_) => (false, false),
    }
}

async fn remove_container(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    if let Err(e) = docker.remove_container(id, Some(options)).await {
        tracing::warn!("removing container {id}: {e}");
    }
}

/// Where a run step may change the image: the paths it declares, the paths whose changes never
/// enter the layer (its own `exclude`, scratch space, what the host injects), and the
/// directories above any of these, whose times change with what is written below them.
struct Allowed {
    declared: Vec<String>,
    ignored: Vec<String>,
}

impl Allowed {
    fn new(declared: Vec<String>, exclude: &[String]) -> Self {
        let ignored = exclude
            .iter()
            .map(|p| normalize_path(p))
            .chain(ALWAYS_EXCLUDED.iter().map(|p| p.to_string()))
            .chain([INJECT_DIR.to_string()])
            .collect();
        Allowed { declared, ignored }
    }

    /// The changes (path, whether deleted) it does not admit, without the directories listed
    /// only because something below them changed. Linear in the changes times their depth: a
    /// step may have written a great many.
    fn refused<'a>(&self, changed: impl Iterator<Item = (&'a str, bool)>) -> Vec<&'a str> {
        let outside: Vec<&str> = changed
            .filter(|&(path, deleted)| !self.admits(path, deleted))
            .map(|(path, _)| path)
            .collect();
        let above: std::collections::HashSet<&str> = outside
            .iter()
            .flat_map(|path| {
                let path = path.trim_end_matches('/');
                path.match_indices('/').map(move |(at, _)| &path[..at])
            })
            .collect();
        outside
            .into_iter()
            .filter(|path| !above.contains(path.trim_end_matches('/')))
            .collect()
    }

    fn admits(&self, path: &str, deleted: bool) -> bool {
        let path = normalize_path(path);
        let mut all = self.declared.iter().chain(&self.ignored);
        all.any(|p| is_at_or_below(&path, p) || (!deleted && is_at_or_below(p, &path)))
    }
}

/// The files the host puts in a container (absolute paths in [`INJECT_DIR`]) as a tar to unpack
/// at `/`. Readable by every user: a step may run as the image's application user, and the
/// container lives only for the step.
fn injected_tar(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    builder.append_data(&mut dir, format!("{}/", &INJECT_DIR[1..]), std::io::empty())?;
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        builder.append_data(&mut header, &path[1..], *content)?;
    }
    Ok(builder.into_inner()?)
}

/// Proxy variables of this process, passed to steps that reach an index.
pub fn proxy_environment() -> Vec<(String, String)> {
    [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Credential, Grants, Origin};

    fn step(ecosystem: Option<&str>) -> RunStep {
        RunStep {
            description: "pip install".into(),
            argv: vec!["python".into(), "-m".into(), "pip".into()],
            env: vec![("PYTHONDONTWRITEBYTECODE".into(), "1".into())],
            workdir: None,
            user: None,
            index_ecosystem: ecosystem.map(String::from),
            ca_variables: vec!["PIP_CERT".into()],
            changes: vec!["/app/venv".into()],
            exclude: vec![],
            updates: vec![0],
        }
    }

    fn executor() -> Executor {
        let settings = RunSettings {
            ca_bundle: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
            index_env: [(
                "pypi".to_string(),
                vec![(
                    "PIP_INDEX_URL".to_string(),
                    "https://mirror.example/simple/".to_string(),
                )],
            )]
            .into(),
            proxy_env: vec![("HTTPS_PROXY".into(), "http://proxy.example:3128".into())],
            source_date_epoch: 1_700_000_000,
            host_network: Default::default(),
            step_timeout: Duration::from_secs(60),
            tooling_images: HashMap::new(),
        };
        let mirror = Origin::of("https://mirror.example").unwrap();
        let grants = Grants {
            origins: HashMap::from([("pip".to_owned(), vec![mirror.clone()])]),
            user_named: HashMap::from([("pip".to_owned(), vec![mirror.clone()])]),
        };
        let credentials = HashMap::from([(mirror, Credential::new("me:s3cret".into()))]);
        let sources = Sources {
            view: Arc::new(ImageView::new(Vec::new()).unwrap()),
            index: Arc::new(PackageIndex::new(Default::default()).unwrap()),
            http: Some(Arc::new(PluginHttp::new(None, grants, credentials))),
        };
        Executor::new(None, settings, Created::default(), Arc::new(sources))
    }

    fn command<'a>(executor: &Executor, step: &'a RunStep) -> Command<'a> {
        Command {
            image: "image",
            argv: &step.argv,
            env: &step.env,
            workdir: None,
            user: None,
            index_ecosystem: step.index_ecosystem.as_deref(),
            ca_variables: &step.ca_variables,
            host_network: false,
            netrc: executor.netrc("pip", step.index_ecosystem.as_deref()),
        }
    }

    #[test]
    fn a_run_step_changes_only_what_it_declares_and_the_directories_above() {
        let allowed = Allowed::new(
            vec!["/app/venv".into(), "/usr/local".into()],
            &["/root/.cache".into()],
        );
        for (path, deleted) in [
            ("/app/venv/lib/python3.11/site-packages/six.py", false),
            (
                "/app/venv/lib/python3.11/site-packages/six-1.15.0.dist-info",
                true,
            ),
            ("/usr/local/bin/normalizer", false),
            ("/app", false),
            ("/usr", false),
            ("/", false),
            ("/root", false),
            ("/root/.cache/pip/http/x", false),
            ("/tmp/pip-build", false),
            ("/.copa-host/ca.pem", false),
        ] {
            assert!(allowed.admits(path, deleted), "{path}");
        }
        for (path, deleted) in [
            ("/etc/passwd", false),
            ("/app/venv2/x", false),
            ("/app", true),
            ("/usr/lib/python3/dist-packages/six.py", false),
            ("/root/.bashrc", false),
        ] {
            assert!(!allowed.admits(path, deleted), "{path}");
        }
        let changed = [
            ("/app", false),
            ("/app/venv/bin/pip", false),
            ("/etc", false),
            ("/etc/trespassed", false),
            ("/srv", true),
        ];
        assert_eq!(
            allowed.refused(changed.into_iter()),
            ["/etc/trespassed", "/srv"]
        );
    }

    #[test]
    fn index_settings_ca_and_proxies_reach_only_steps_that_talk_to_an_index() {
        let pip = step(Some("pypi"));
        let executor = executor();
        let pip = command(&executor, &pip);
        assert_eq!(
            pip.netrc.as_deref(),
            Some("machine mirror.example login me password s3cret\n")
        );
        let env = executor.environment(&pip);
        for expected in [
            "PYTHONDONTWRITEBYTECODE=1",
            "SOURCE_DATE_EPOCH=1700000000",
            "PIP_INDEX_URL=https://mirror.example/simple/",
            "PIP_CERT=/.copa-host/ca.pem",
            "COPA_CA_BUNDLE=/.copa-host/ca.pem",
            "HTTPS_PROXY=http://proxy.example:3128",
            "NETRC=/.copa-host/netrc",
        ] {
            assert!(
                env.contains(&expected.to_string()),
                "{expected} missing from {env:?}"
            );
        }
        assert!(!env.iter().any(|v| v.contains("s3cret")), "{env:?}");
        let offline = step(None);
        let offline = executor.environment(&command(&executor, &offline));
        assert_eq!(
            offline,
            vec!["PYTHONDONTWRITEBYTECODE=1", "SOURCE_DATE_EPOCH=1700000000"]
        );
    }

    #[test]
    fn a_run_is_dead_only_on_its_own_machine_and_without_its_process() {
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id();
        gone.wait().unwrap();
        let machine = this_machine();
        assert!(is_dead_run(&format!("{machine}-{pid}-1"), &machine));
        assert!(!is_dead_run(&format!("elsewhere-{pid}-1"), &machine));
        let own = std::process::id();
        assert!(!is_dead_run(&format!("{machine}-{own}-1"), &machine));
        for malformed in [
            "",
            "x",
            &format!("{machine}-notapid-1"),
            &format!("{machine}-{pid}"),
        ] {
            assert!(!is_dead_run(malformed, &machine), "{malformed}");
        }
    }

    fn write(path: &str, contents: Option<&[u8]>, updates: &[u32]) -> Step {
        Step::Write(crate::plugin::WriteStep {
            description: format!("write {path}"),
            path: path.into(),
            contents: contents.map(<[u8]>::to_vec),
            mode: 0o644,
            uid: 0,
            gid: 0,
            updates: updates.to_vec(),
        })
    }

    #[tokio::test]
    async fn an_update_lands_with_all_its_steps_or_not_at_all() {
        let workdir = tempfile::tempdir().unwrap();
        // Update 0 is written, then update 1 fails (a path that is not absolute), then one step
        // applies both: it must not run, and update 0's first step is taken back with it.
        let steps = [
            write("/a", Some(b"a"), &[0]),
            write("relative", Some(b"r"), &[1]),
            write("/both", Some(b"b"), &[0, 1]),
            write("/c", Some(b"c"), &[2]),
        ];
        let outcome = executor()
            .run("p", None, &steps, true, workdir.path())
            .await
            .unwrap();
        let failed: Vec<(usize, &str)> = outcome
            .failures
            .iter()
            .map(|(i, why)| (*i, why.as_str()))
            .collect();
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert_eq!(failed[0].0, 0);
        assert_eq!(
            failed[0].1,
            "taken back: it also applies an update whose step \"write /both\" failed"
        );
        assert_eq!(failed[1].0, 1);
        assert_eq!(
            failed[2],
            (
                2,
                "not run: it also applies an update whose step \"write relative\" failed"
            )
        );
        // Only update 2's step lands.
        assert_eq!(outcome.diffs.len(), 1);
    }

    #[test]
    fn the_ca_bundle_and_netrc_travel_as_one_tar() {
        let tar = injected_tar(&[(CA_BUNDLE, b"PEM"), (NETRC, b"machine x")]).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            vec![".copa-host/", ".copa-host/ca.pem", ".copa-host/netrc"]
        );
    }
}
