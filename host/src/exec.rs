//! The executor: runs a plugin's steps in containers through the Docker Engine API and hands
//! back what each step changed. It injects run-only settings (CA bundle, index URLs, proxies)
//! and always removes what it created, also on failure and on Ctrl-C.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::image::{LayerTar, StepDiff, daemon};
use crate::plugin::RunStep;

/// Where the CA bundle is placed inside a step's container (and excluded from the layer).
const INJECT_DIR: &str = "/.copa-host";
const CA_BUNDLE: &str = "/.copa-host/ca.pem";
const RUN_LABEL: &str = "org.copa-host.run";

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
    /// Containers join the host's network (an index on this machine's loopback).
    pub host_network: bool,
    pub step_timeout: Duration,
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
/// removes them whatever way the run ends (success, error, Ctrl-C).
#[derive(Clone, Default)]
pub struct Created(Arc<Mutex<CreatedLists>>);

#[derive(Default)]
struct CreatedLists {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Created {
    pub fn image(&self, id: &str) {
        self.0.lock().unwrap().images.push(id.to_string());
    }

    fn container(&self, id: &str) {
        self.0.lock().unwrap().containers.push(id.to_string());
    }

    fn container_removed(&self, id: &str) {
        self.0.lock().unwrap().containers.retain(|c| c != id);
    }

    /// Removes everything still listed: containers first, then images newest first (each
    /// committed image is the parent of the next).
    pub async fn remove_all(&self, docker: &Docker) {
        let (containers, images) = {
            let mut lists = self.0.lock().unwrap();
            (
                std::mem::take(&mut lists.containers),
                std::mem::take(&mut lists.images),
            )
        };
        for id in containers {
            remove_container(docker, &id).await;
        }
        for id in images.iter().rev() {
            daemon::remove_image(docker, id).await;
        }
    }
}

#[derive(Clone)]
pub struct Executor {
    docker: Docker,
    settings: RunSettings,
    created: Created,
    run_id: String,
}

impl Executor {
    pub fn new(docker: Docker, settings: RunSettings, created: Created) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let run_id = format!("{}-{nanos}", std::process::id());
        Executor {
            docker,
            settings,
            created,
            run_id,
        }
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Runs `steps` one after another on top of `image`; a failed step is dropped (its changes
    /// never count) and, unless `keep_going`, stops the run.
    pub async fn run(
        &self,
        image: &str,
        steps: &[RunStep],
        keep_going: bool,
        workdir: &std::path::Path,
    ) -> Result<RunOutcome> {
        let mut current = image.to_string();
        let mut succeeded = Vec::new();
        let mut failures = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            eprintln!("  [{}/{}] {} ...", index + 1, steps.len(), step.description);
            let started = Instant::now();
            match self.run_step(&current, step).await {
                Ok(committed) => {
                    eprintln!(
                        "  [{}/{}] {} done in {:.1} s",
                        index + 1,
                        steps.len(),
                        step.description,
                        started.elapsed().as_secs_f64()
                    );
                    current = committed;
                    succeeded.push(index);
                }
                Err(e) => {
                    eprintln!(
                        "  [{}/{}] {} FAILED: {e}",
                        index + 1,
                        steps.len(),
                        step.description
                    );
                    failures.push((index, e.to_string()));
                    if !keep_going {
                        break;
                    }
                }
            }
        }
        let mut diffs = Vec::new();
        if !succeeded.is_empty() {
            let base_layers = self.layer_count(image).await?;
            let saved = daemon::save(&self.docker, &current, workdir).await?;
            let new_layers: Vec<LayerTar> = saved.layers.into_iter().skip(base_layers).collect();
            if new_layers.len() != succeeded.len() {
                return Err(anyhow!(
                    "expected {} new layers after the steps, found {}",
                    succeeded.len(),
                    new_layers.len()
                ));
            }
            for (tar, index) in new_layers.into_iter().zip(&succeeded) {
                let mut exclude = steps[*index].exclude.clone();
                exclude.push(INJECT_DIR.into());
                diffs.push(StepDiff { tar, exclude });
            }
        }
        let image = (!succeeded.is_empty()).then_some(current);
        Ok(RunOutcome {
            diffs,
            failures,
            image,
        })
    }

    async fn layer_count(&self, image: &str) -> Result<usize> {
        let inspect = self
            .docker
            .inspect_image(image)
            .await
            .map_err(|e| anyhow!("inspecting {image}: {e}"))?;
        Ok(inspect
            .root_fs
            .and_then(|r| r.layers)
            .map(|l| l.len())
            .unwrap_or(0))
    }

    fn environment(&self, step: &RunStep) -> Vec<String> {
        let mut env: Vec<(String, String)> = step.env.clone();
        env.push((
            "SOURCE_DATE_EPOCH".into(),
            self.settings.source_date_epoch.to_string(),
        ));
        if let Some(ecosystem) = &step.index_ecosystem {
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
                env.extend(ca_variables(ecosystem));
            }
            env.extend(self.settings.proxy_env.iter().cloned());
        }
        env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// Runs one step and commits its container; returns the committed image's ID.
    async fn run_step(&self, image: &str, step: &RunStep) -> Result<String> {
        let (program, args) = step
            .argv
            .split_first()
            .ok_or_else(|| anyhow!("step has an empty command"))?;
        let config = ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint: Some(vec![program.clone()]),
            cmd: Some(args.to_vec()),
            env: Some(self.environment(step)),
            working_dir: step.workdir.clone(),
            user: Some(step.user.clone().unwrap_or_else(|| "0:0".into())),
            labels: Some(HashMap::from([(
                RUN_LABEL.to_string(),
                self.run_id.clone(),
            )])),
            host_config: Some(HostConfig {
                network_mode: self.settings.host_network.then(|| "host".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().build()),
                config,
            )
            .await
            .map_err(|e| anyhow!("creating a container from {image}: {e}"))?;
        let id = created.id;
        self.created.container(&id);
        let result = self.run_container(&id, step).await;
        let committed = match result {
            Ok(()) => self.commit(&id).await,
            Err(e) => Err(e),
        };
        remove_container(&self.docker, &id).await;
        self.created.container_removed(&id);
        committed
    }

    async fn run_container(&self, id: &str, step: &RunStep) -> Result<()> {
        if let (Some(bundle), Some(_)) = (&self.settings.ca_bundle, &step.index_ecosystem) {
            let tar = single_file_tar(&CA_BUNDLE[1..], bundle)?;
            self.docker
                .upload_to_container(
                    id,
                    Some(UploadToContainerOptionsBuilder::default().path("/").build()),
                    bollard::body_full(tar.into()),
                )
                .await
                .map_err(|e| anyhow!("placing the CA bundle in the container: {e}"))?;
        }
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(|e| anyhow!("starting {}: {e}", step.argv[0]))?;
        let mut wait = self.docker.wait_container(
            id,
            Some(
                WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build(),
            ),
        );
        let status = match tokio::time::timeout(self.settings.step_timeout, wait.next()).await {
            Err(_) => {
                return Err(anyhow!(
                    "timed out after {} s (--timeout)",
                    self.settings.step_timeout.as_secs()
                ));
            }
            Ok(Some(Ok(response))) => response.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => code,
            Ok(Some(Err(e))) => return Err(anyhow!("waiting for the container: {e}")),
            Ok(None) => return Err(anyhow!("the daemon closed the wait stream")),
        };
        if status != 0 {
            let output = self.output_tail(id).await;
            return Err(anyhow!(
                "{} exited with status {status}: {output}",
                step.argv[..step.argv.len().min(4)].join(" ")
            ));
        }
        Ok(())
    }

    /// The last meaningful line of the container's output, for a one-line error.
    async fn output_tail(&self, id: &str) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("40")
            .build();
        let mut stream = self.docker.logs(id, Some(options));
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
            .docker
            .commit_container(options, bollard::models::ContainerConfig::default())
            .await
            .map_err(|e| anyhow!("committing the step's changes: {e}"))?;
        self.created.image(&committed.id);
        Ok(committed.id)
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

/// Variables that make an ecosystem's client trust the injected CA bundle.
fn ca_variables(ecosystem: &str) -> Vec<(String, String)> {
    match ecosystem {
        "pypi" => vec![("PIP_CERT".into(), CA_BUNDLE.into())],
        "npm" => vec![
            ("NODE_EXTRA_CA_CERTS".into(), CA_BUNDLE.into()),
            ("npm_config_cafile".into(), CA_BUNDLE.into()),
        ],
        "deb" => Vec::new(),
        _ => vec![("SSL_CERT_FILE".into(), CA_BUNDLE.into())],
    }
}

fn single_file_tar(path: &str, content: &[u8]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    let parent = path.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
    builder.append_data(&mut dir, format!("{parent}/"), std::io::empty())?;
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(content.len() as u64);
    builder.append_data(&mut header, path, content)?;
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

    fn step(ecosystem: Option<&str>) -> RunStep {
        RunStep {
            description: "pip install".into(),
            argv: vec!["python".into(), "-m".into(), "pip".into()],
            env: vec![("PYTHONDONTWRITEBYTECODE".into(), "1".into())],
            workdir: None,
            user: None,
            index_ecosystem: ecosystem.map(String::from),
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
            host_network: false,
            step_timeout: Duration::from_secs(60),
        };
        // Connecting is lazy: no daemon is contacted here.
        Executor::new(
            Docker::connect_with_defaults().unwrap(),
            settings,
            Created::default(),
        )
    }

    #[test]
    fn index_settings_ca_and_proxies_reach_only_steps_that_talk_to_an_index() {
        let env = executor().environment(&step(Some("pypi")));
        for expected in [
            "PYTHONDONTWRITEBYTECODE=1",
            "SOURCE_DATE_EPOCH=1700000000",
            "PIP_INDEX_URL=https://mirror.example/simple/",
            "PIP_CERT=/.copa-host/ca.pem",
            "COPA_CA_BUNDLE=/.copa-host/ca.pem",
            "HTTPS_PROXY=http://proxy.example:3128",
        ] {
            assert!(
                env.contains(&expected.to_string()),
                "{expected} missing from {env:?}"
            );
        }
        let offline = executor().environment(&step(None));
        assert_eq!(
            offline,
            vec!["PYTHONDONTWRITEBYTECODE=1", "SOURCE_DATE_EPOCH=1700000000"]
        );
    }

    #[test]
    fn the_ca_bundle_travels_as_a_one_file_tar() {
        let tar = single_file_tar(&CA_BUNDLE[1..], b"PEM").unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec![".copa-host/", ".copa-host/ca.pem"]);
    }
}
