//! Executing the plans: each plugin emits its steps, the executor runs them (a failed step's
//! updates retried one by one under --ignore-errors), and their changes become the patch layer,
//! which [`super::verify`] then checks.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};

use super::Options;
use super::output::{now_or_source_date_epoch, rfc3339, source_date_epoch};
use super::plan::{PluginWork, updates_with};
use super::verify::{mark_unverified, verify};
use crate::exec::{self, Executor};
use crate::image::{ImageView, PatchLayer, Platform, SourceImage, StepDiff, layer};
use crate::plugin::{Capabilities, Plan, Plugin, PluginHost, Step, Update, grants};
use crate::setting::Setting;
use crate::summary::{Clock, Status};
use crate::terminal::printable;

/// What executing one image's plans needs.
pub(super) struct Execution<'a> {
    pub options: &'a Options,
    pub host: &'a Arc<PluginHost>,
    pub plugins: &'a Arc<Vec<Plugin>>,
    pub caps: &'a Arc<Capabilities>,
    pub executor: Executor,
    pub workdir: &'a Path,
}

/// A plugin's steps, by the index of its work.
type Emitted = Vec<Vec<Step>>;

impl Execution<'_> {
    /// Runs the steps, builds and verifies the layer. Returns the patched image's config and
    /// layer.
    pub async fn patch(
        &self,
        source: &SourceImage,
        platform: &Platform,
        work: &mut [PluginWork],
        clock: &mut Clock,
    ) -> Result<Option<(Vec<u8>, PatchLayer)>> {
        let mut emitted = self.emit_all(work).await?;
        self.refuse_foreign_commands(platform, work, &mut emitted);
        let diffs = self.run_all(source, work, emitted).await?;
        clock.lap("run steps");
        let layer = self.build_layer(source, diffs).await?;
        clock.lap("build layer");
        match &layer {
            Some(layer) => verify(source, layer, self.host, self.plugins, self.caps, work).await?,
            None => mark_unverified(work, "the package manager changed nothing in the image"),
        }
        clock.lap("verify");
        let layer = judge(work, layer, self.options.ignore_errors)?;
        let created_by = format!("copa-host patch {}", patched_packages(work).join(" "));
        let created = now_or_source_date_epoch();
        let config = source.patched_config(&layer, &rfc3339(created), &created_by)?;
        Ok(Some((config, layer)))
    }

    async fn emit_all(&self, work: &[PluginWork]) -> Result<Emitted> {
        let mut emitted = Vec::new();
        for w in work {
            let steps = if w.plan.updates.is_empty() {
                Vec::new()
            } else {
                emit(self.host, self.plugins, self.caps, w, &w.plan).await?
            };
            emitted.push(steps);
        }
        Ok(emitted)
    }

    /// Commands cannot run in an image of a platform this machine does not run (no emulation
    /// is assumed): such a plugin's updates fail with the reason; fetches and writes still work.
    fn refuse_foreign_commands(
        &self,
        platform: &Platform,
        work: &mut [PluginWork],
        emitted: &mut Emitted,
    ) {
        if platform.runs_here() {
            return;
        }
        for (w, steps) in work.iter_mut().zip(emitted.iter_mut()) {
            if steps.iter().any(|s| exec::needs_daemon(s).1) {
                let reason = format!(
                    "the {} patcher runs commands in the image, and this machine cannot run {platform} binaries",
                    self.plugins[w.plugin].info.name
                );
                for status in &mut w.status {
                    *status = (Status::Failed, Some(reason.clone()));
                }
                steps.clear();
            }
        }
    }

    /// Runs every plugin's steps in order; returns each step's changes.
    async fn run_all(
        &self,
        source: &SourceImage,
        work: &mut [PluginWork],
        emitted: Emitted,
    ) -> Result<Vec<StepDiff>> {
        // The target image goes into the daemon only when a command must run in it: fetch and
        // write steps need no container, tooling steps only their tooling image.
        let mut image = None;
        if emitted.iter().flatten().any(|s| exec::needs_daemon(s).1) {
            let docker = self.executor.docker()?;
            let (run_image, loaded) = source.ensure_in_daemon(docker, self.workdir).await?;
            if loaded {
                self.executor.created().image(&run_image);
            }
            image = Some(run_image);
        }
        let mut diffs = Vec::new();
        for (w, steps) in work.iter_mut().zip(emitted) {
            if !steps.is_empty() {
                self.run_plugin(w, &steps, &mut image, &mut diffs).await?;
            }
        }
        Ok(diffs)
    }

    /// Runs one plugin's steps on `image` (the chain so far). Under --ignore-errors a failed
    /// step's updates fail, and those it applied together are retried one by one, so one
    /// failing package does not sink the others (the failed step's other steps were taken back).
    async fn run_plugin(
        &self,
        w: &mut PluginWork,
        steps: &[Step],
        image: &mut Option<String>,
        diffs: &mut Vec<StepDiff>,
    ) -> Result<()> {
        let name = &self.plugins[w.plugin].info.name;
        let ignore_errors = self.options.ignore_errors;
        let outcome = self
            .executor
            .run(name, image.as_deref(), steps, ignore_errors, self.workdir)
            .await?;
        *image = outcome.image.clone().or(image.take());
        diffs.extend(outcome.diffs);
        let mut retry: Vec<Update> = Vec::new();
        for (step_index, error) in &outcome.failures {
            let step = &steps[*step_index];
            if !ignore_errors {
                bail!("plugin {name}: {}: {error}", exec::step_description(step));
            }
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
            self.retry_alone(w, update, image, diffs).await?;
        }
        Ok(())
    }

    /// Emits and runs one update of a failed step on its own; its status is the outcome.
    async fn retry_alone(
        &self,
        w: &mut PluginWork,
        update: Update,
        image: &mut Option<String>,
        diffs: &mut Vec<StepDiff>,
    ) -> Result<()> {
        let single = Plan {
            updates: vec![update.clone()],
            skips: Vec::new(),
        };
        let steps = emit(self.host, self.plugins, self.caps, w, &single).await?;
        let name = &self.plugins[w.plugin].info.name;
        let outcome = self
            .executor
            .run(name, image.as_deref(), &steps, true, self.workdir)
            .await?;
        *image = outcome.image.clone().or(image.take());
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
        Ok(())
    }

    /// The steps' changes squashed into one layer over the original ones (none when nothing
    /// changed).
    async fn build_layer(
        &self,
        source: &SourceImage,
        mut diffs: Vec<StepDiff>,
    ) -> Result<Option<PatchLayer>> {
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
        let (base, workdir) = (source.base_view()?, self.workdir.to_path_buf());
        let compression = self.options.compression;
        tokio::task::spawn_blocking(move || {
            layer::squash(&diffs, &base, epoch, compression, &workdir)
        })
        .await?
    }
}

/// The layer to write, unless an update failed (without --ignore-errors) or none was patched.
fn judge(
    work: &[PluginWork],
    layer: Option<PatchLayer>,
    ignore_errors: bool,
) -> Result<PatchLayer> {
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
    if !failed.is_empty() && !ignore_errors {
        bail!(
            "not patched: {} (use {} to write the image anyway)",
            failed.join("; "),
            Setting::IgnoreErrors
        );
    }
    match layer.filter(|_| updates_with(work, Status::Patched).next().is_some()) {
        Some(layer) => Ok(layer),
        None => bail!("no update could be applied: {}", failed.join("; ")),
    }
}

/// Prints the steps each plugin would run (a dry run); emitting them also surfaces a plugin's
/// emit errors before any real run.
pub(super) async fn show_steps(
    host: &Arc<PluginHost>,
    plugins: &Arc<Vec<Plugin>>,
    caps: &Arc<Capabilities>,
    work: &[PluginWork],
) -> Result<()> {
    for w in work.iter().filter(|w| !w.plan.updates.is_empty()) {
        let steps = emit(host, plugins, caps, w, &w.plan).await?;
        let mut lines = vec![format!("plugin {} would run:", plugins[w.plugin].info.name)];
        for (index, step) in steps.iter().enumerate() {
            let description = exec::step_description(step);
            lines.push(format!("  [{}/{}] {description}", index + 1, steps.len()));
            if let Step::Run(run) = step {
                let changes = match run.changes.join(", ") {
                    none if none.is_empty() => "nothing".to_owned(),
                    paths => paths,
                };
                lines.push(format!("        may change: {changes}"));
            }
        }
        eprintln!("{}", printable(&lines.join("\n")));
    }
    Ok(())
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

fn patched_packages(work: &[PluginWork]) -> Vec<String> {
    let mut packages: Vec<String> = updates_with(work, Status::Patched)
        .map(|(u, _)| format!("{}=={}", u.package, u.to_version))
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

pub(super) fn read_ca(path: &Path) -> Result<Vec<u8>> {
    let pem =
        std::fs::read(path).map_err(|e| anyhow!("{} {}: {e}", Setting::CaCert, path.display()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        bail!(
            "{} {}: no PEM certificate in the file",
            Setting::CaCert,
            path.display()
        );
    }
    Ok(pem)
}

/// The image's own trust store plus the user's CA: package managers given a bundle use only
/// that bundle, and must still trust the public hosts the image already trusts.
pub(super) fn ca_bundle(view: &ImageView, extra: &[u8]) -> Vec<u8> {
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

pub(super) fn is_loopback_url(url: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_loopback_indexes() {
        assert!(is_loopback_url("http://127.0.0.1:8080/simple/"));
        assert!(is_loopback_url("http://user:pw@localhost/simple"));
        assert!(is_loopback_url("http://[::1]:3141/root/pypi"));
        assert!(!is_loopback_url("https://pypi.org/simple/"));
    }
}
