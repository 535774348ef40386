//! Verification: the plugins detect again on the original layers plus the patch layer, and each
//! update is judged by what is really installed, never by what the run said.

use std::sync::Arc;

use anyhow::Result;

use super::plan::PluginWork;
use crate::image::{PatchLayer, SourceImage};
use crate::plugin::{Capabilities, NameRule, Plan, Plugin, PluginHost, Target, Update};
use crate::summary::Status;

/// Detects again on the original layers plus the patch layer; an update counts as patched only
/// when the new version is really there: the planned version exactly, or, for an update planned
/// as a minimum, a new version for which the plugin, planning again, has nothing left to do.
pub(super) async fn verify(
    source: &SourceImage,
    layer: &PatchLayer,
    host: &Arc<PluginHost>,
    plugins: &Arc<Vec<Plugin>>,
    caps: &Arc<Capabilities>,
    work: &mut [PluginWork],
) -> Result<()> {
    let mut patched = source.base_view()?;
    patched.push_layer(layer.tar.clone())?;
    let caps = Arc::new(Capabilities {
        image: Arc::new(patched),
        index: caps.index.clone(),
        http: caps.http.clone(),
    });
    for w in work.iter_mut() {
        if w.plan.updates.is_empty() {
            continue;
        }
        let targets = {
            let (host, plugins, caps, plugin) =
                (host.clone(), plugins.clone(), caps.clone(), w.plugin);
            tokio::task::spawn_blocking(move || host.detect(&plugins[plugin], &caps)).await??
        };
        let mut replan: Option<Plan> = None;
        for i in 0..w.plan.updates.len() {
            if w.status[i].0 == Status::Failed {
                continue;
            }
            let update = &w.plan.updates[i];
            let names = &plugins[w.plugin].package_names;
            let verdict = match verdict(update, installed_version(&targets, update, names)) {
                Verdict::AskPlugin(version) => {
                    if replan.is_none() {
                        let (host, plugins, caps, plugin) =
                            (host.clone(), plugins.clone(), caps.clone(), w.plugin);
                        let (targets, findings, policy) =
                            (targets.clone(), w.findings.clone(), w.policy.clone());
                        let again = tokio::task::spawn_blocking(move || {
                            host.plan(&plugins[plugin], &caps, &targets, &findings, &policy)
                        });
                        replan = Some(again.await??);
                    }
                    let again = replan.as_ref().expect("planned above");
                    settled(update, version, again, names)
                }
                verdict => verdict,
            };
            apply(w, i, verdict);
        }
    }
    Ok(())
}

/// What became of one update.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The planned version is installed.
    Patched,
    /// A minimum's update is installed at this version, which leaves nothing to do.
    PatchedAt(String),
    Failed(String),
    /// A minimum's update installed this other version: fixed only if the plugin, planning
    /// again on the patched files, has nothing left to do for the package.
    AskPlugin(String),
}

/// The version of the update's package the plugin detected in its target after the run.
fn installed_version<'a>(
    targets: &'a [Target],
    update: &Update,
    names: &NameRule,
) -> Option<&'a str> {
    targets
        .iter()
        .filter(|t| t.id == update.target_id)
        .flat_map(|t| &t.packages)
        .find(|p| names.same(&p.name, &update.package))
        .map(|p| p.version.as_str())
}

/// Judges an update by the version installed after the run, as far as it can without asking
/// the plugin again.
fn verdict(update: &Update, installed: Option<&str>) -> Verdict {
    let Some(version) = installed else {
        return Verdict::Failed("the package is gone after the run".into());
    };
    // Exact: the plugin names the version as the package records it.
    if version == update.to_version {
        return Verdict::Patched;
    }
    if !update.at_least {
        return Verdict::Failed(format!(
            "{version} is installed after the run, not {}",
            update.to_version
        ));
    }
    if version == update.from_version {
        return Verdict::Failed(format!(
            "{version} is still installed after the run: the repositories gave no version of at \
             least {}",
            update.to_version
        ));
    }
    Verdict::AskPlugin(version.to_owned())
}

/// A minimum's update that installed `version`, judged by the plugin's plan on the patched
/// files.
fn settled(update: &Update, version: String, again: &Plan, names: &NameRule) -> Verdict {
    if plans_package(again, &update.target_id, &update.package, names) {
        Verdict::Failed(format!(
            "{version} is installed after the run, which does not fix every vulnerability the \
             update was for (needed at least {})",
            update.to_version
        ))
    } else {
        Verdict::PatchedAt(version)
    }
}

fn apply(w: &mut PluginWork, i: usize, verdict: Verdict) {
    w.status[i] = match verdict {
        Verdict::Patched => (Status::Patched, None),
        Verdict::PatchedAt(version) => {
            w.plan.updates[i].to_version = version;
            w.plan.updates[i].at_least = false;
            (Status::Patched, None)
        }
        Verdict::Failed(why) => (Status::Failed, Some(why)),
        // `verify` settles these with the plugin first; unsettled, it is not proven fixed.
        Verdict::AskPlugin(version) => (
            Status::Failed,
            Some(format!(
                "{version} is installed after the run, not proven to fix it"
            )),
        ),
    };
}

/// Whether a plan still has work (an update or a skip) for a package of a target.
fn plans_package(plan: &Plan, target: &str, package: &str, names: &NameRule) -> bool {
    plan.updates
        .iter()
        .any(|u| u.target_id == target && names.same(&u.package, package))
        || plan
            .skips
            .iter()
            .any(|s| s.target_id == target && names.same(&s.package, package))
}

pub(super) fn mark_unverified(work: &mut [PluginWork], reason: &str) {
    for w in work {
        for status in &mut w.status {
            if status.0 != Status::Failed {
                *status = (Status::Failed, Some(reason.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Skip;

    fn update(from: &str, to: &str, at_least: bool) -> Update {
        Update {
            target_id: "/var/lib/dpkg".into(),
            package: "openssl".into(),
            from_version: from.into(),
            to_version: to.into(),
            at_least,
            fixes: vec!["CVE-1".into()],
            notes: Vec::new(),
        }
    }

    #[test]
    fn an_exact_update_is_patched_only_at_its_version() {
        let exact = update("1.0", "1.2", false);
        assert_eq!(verdict(&exact, Some("1.2")), Verdict::Patched);
        assert_eq!(
            verdict(&exact, Some("1.3")),
            Verdict::Failed("1.3 is installed after the run, not 1.2".into())
        );
        assert_eq!(
            verdict(&exact, None),
            Verdict::Failed("the package is gone after the run".into())
        );
    }

    #[test]
    fn a_minimum_asks_the_plugin_unless_nothing_moved() {
        let minimum = update("1.0", "1.2", true);
        assert_eq!(verdict(&minimum, Some("1.2")), Verdict::Patched);
        assert_eq!(
            verdict(&minimum, Some("1.4")),
            Verdict::AskPlugin("1.4".into())
        );
        assert!(matches!(
            verdict(&minimum, Some("1.0")),
            Verdict::Failed(why) if why.contains("no version of at least 1.2")
        ));
    }

    #[test]
    fn the_plugins_second_plan_settles_a_minimum() {
        let minimum = update("1.0", "1.2", true);
        let nothing_left = Plan::default();
        assert_eq!(
            settled(&minimum, "1.4".into(), &nothing_left, &NameRule::default()),
            Verdict::PatchedAt("1.4".into())
        );
        let still_vulnerable = Plan {
            updates: Vec::new(),
            skips: vec![Skip {
                target_id: "/var/lib/dpkg".into(),
                package: "OpenSSL".into(),
                vulnerabilities: vec!["CVE-1".into()],
                reason: "no fix".into(),
            }],
        };
        assert!(matches!(
            settled(&minimum, "1.1".into(), &still_vulnerable, &NameRule::default()),
            Verdict::Failed(why) if why.contains("needed at least 1.2")
        ));
    }
}
