//! From findings to updates, per app and package: the fixed version by the shared choice rule,
//! then the dependencies that version needs for the app's framework (kept when already
//! satisfied, raised to the lowest satisfying version, or added; never lowered).

use copa_plugin_sdk::choose::{Bump, IndexVersion, Vulnerability, choose, is_fixed_by};
use copa_plugin_sdk::nuget::{NuGetVersion, VersionRange};
use copa_plugin_sdk::route::{route, skip_all, skip_instead};
use copa_plugin_sdk::{Finding, Plan, Policy, Target, Update, attribute, log};

use crate::attr;
use crate::detect::listed_version;
use crate::feed;
use crate::framework::Framework;
use crate::package;

/// Why a package is never replaced inside an app, or `None` when it may be.
pub fn never_patched(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("microsoft.build.") || lower == "microsoft.build" {
        return Some("Microsoft.Build.* is build-time only: nothing of it runs in the app");
    }
    let runtime_pack = [
        "microsoft.netcore.app.runtime.",
        "microsoft.aspnetcore.app.runtime.",
        "microsoft.windowsdesktop.app.runtime.",
        "microsoft.netcore.app.host.",
    ]
    .iter()
    .any(|prefix| lower.starts_with(prefix))
        || lower.ends_with(".app.ref");
    runtime_pack.then_some(
        "a .NET runtime or targeting pack: it comes with the runtime; update the .NET runtime \
         (or the base image) instead",
    )
}

pub fn plan(targets: &[Target], findings: &[Finding], policy: Policy) -> Plan {
    let level = Bump::from(policy.library_patch_level);
    let mut plan = Plan {
        updates: Vec::new(),
        skips: Vec::new(),
    };
    let groups = route(
        findings,
        &mut plan,
        "no .NET app in the image lists this package",
        |finding| {
            apps_named(targets, finding)
                .into_iter()
                .map(|app| (app, finding.package_name.to_ascii_lowercase()))
                .collect()
        },
    );
    for ((target_index, package), findings) in groups {
        plan_package(
            &targets[target_index],
            &package,
            &findings,
            level,
            &mut plan,
        );
    }
    plan
}

fn normalize_path(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}

/// The apps a finding is about. Trivy names the deps.json as the result's target (and sometimes
/// as `PkgPath`); without either, every app that has the package at the reported version is
/// meant.
fn apps_named(targets: &[Target], finding: &Finding) -> Vec<usize> {
    let named = [
        finding.pkg_path.as_deref(),
        Some(finding.report_target.as_str()),
    ]
    .into_iter()
    .flatten()
    .map(normalize_path)
    .find_map(|path| targets.iter().position(|t| t.id == path));
    match named {
        Some(owner) => vec![owner],
        None => targets
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.packages.iter().any(|p| {
                    p.name.eq_ignore_ascii_case(&finding.package_name)
                        && listed_version(&p.version).0 == finding.installed_version
                })
            })
            .map(|(i, _)| i)
            .collect(),
    }
}

/// Index versions as the choice rule wants them: unlisted and (for a release) pre-release
/// versions are unusable, with the reason phrased to follow "fixed version X ".
fn index_versions(
    name: &str,
    installed_prerelease: bool,
) -> Result<Vec<IndexVersion<NuGetVersion>>, String> {
    Ok(feed::versions(name)?
        .iter()
        .filter_map(|v| {
            let version = v.version.parse::<NuGetVersion>().ok()?;
            let unusable = if !v.listed {
                Some("is unlisted".to_string())
            } else if version.is_prerelease() && !installed_prerelease {
                Some("is a pre-release".to_string())
            } else {
                None
            };
            Some(IndexVersion { version, unusable })
        })
        .collect())
}

fn plan_package(
    target: &Target,
    package: &str,
    findings: &[&Finding],
    level: Bump,
    plan: &mut Plan,
) {
    let mut vulnerabilities = Vulnerability::from_findings(findings);
    let skip_all = |plan: &mut Plan, reason: String| {
        let skip = skip_all(
            &target.id,
            &findings[0].package_name,
            &vulnerabilities,
            reason,
        );
        plan.skips.push(skip);
    };
    if let Some(reason) = &target.unpatchable_reason {
        return skip_all(plan, reason.clone());
    }
    if let Some(reason) = never_patched(package) {
        return skip_all(plan, reason.into());
    }
    let Some(installed) = target
        .packages
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(package))
    else {
        return skip_all(plan, format!("not listed in {}", target.id));
    };
    if target
        .attributes
        .iter()
        .any(|(k, v)| k == attr::RUNTIME_PACK && v.eq_ignore_ascii_case(package))
    {
        return skip_all(
            plan,
            never_patched("Microsoft.NETCore.App.Runtime.")
                .unwrap()
                .into(),
        );
    }
    let (listed, disagreement) = listed_version(&installed.version);
    let Ok(installed_version) = listed.parse::<NuGetVersion>() else {
        return skip_all(
            plan,
            format!("installed version {listed} is not a NuGet version"),
        );
    };
    if let Some(problem) = disagreement {
        // Replacing the package rewrites both its files and its entry, which ends that.
        log::warn(&format!(
            "{} {listed} in {}: deps.json and the files disagree: {problem}",
            installed.name, target.id
        ));
    }
    let Some(framework) = attribute(target, attr::TFM).and_then(Framework::parse) else {
        return skip_all(plan, format!("{}: unknown target framework", target.id));
    };
    let versions = match index_versions(&installed.name, installed_version.is_prerelease()) {
        Ok(versions) => versions,
        Err(e) => return skip_all(plan, format!("package index: {e}")),
    };
    vulnerabilities.retain(|v| !is_fixed_by(&installed_version, v));
    if vulnerabilities.is_empty() {
        log::info(&format!(
            "{} {} in {} already has every fix",
            installed.name, listed, target.id
        ));
        return;
    }
    let choice = choose(
        &installed_version,
        &vulnerabilities,
        &versions,
        level,
        false,
    );
    let chosen = choice.to.clone();
    let (update, mut skips) = choice.into_plan(&target.id, &installed.name, listed);
    for skip in &mut skips {
        // .NET fixes often ship only on a new major line; say how to allow that.
        if skip.reason.starts_with("fix needs a major bump") {
            skip.reason
                .push_str(" (allow it with --library-patch-level major)");
        }
    }
    let (Some(update), Some(to)) = (update, chosen) else {
        plan.skips.extend(skips);
        return;
    };
    // The new version must have files this app can load, and its dependencies must resolve.
    let mut added = Vec::new();
    if let Err(reason) = resolve(target, &framework, &installed.name, &to, &mut added) {
        plan.skips.push(skip_instead(
            update,
            format!("fixed version {to}: {reason}"),
        ));
        plan.skips.extend(skips);
        return;
    }
    plan.updates.push(update);
    for (name, from, to) in added {
        // A dependency already raised for another update of this app needs no second entry.
        if plan.updates.iter().any(|u| {
            u.target_id == target.id && u.package.eq_ignore_ascii_case(&name) && u.to_version == to
        }) {
            continue;
        }
        plan.updates.push(Update {
            target_id: target.id.clone(),
            package: name,
            from_version: from,
            to_version: to,
            at_least: false,
            fixes: Vec::new(),
            notes: Vec::new(),
        });
    }
    plan.skips.extend(skips);
}

/// Checks that `name` `version` has assets for the app, and walks its dependency group: each
/// dependency the app lacks, or has below the range, is added to `changes` as (id, from (empty
/// when new), to) at the lowest version satisfying the range. Dependencies of those are walked
/// too.
fn resolve(
    target: &Target,
    framework: &Framework,
    name: &str,
    version: &NuGetVersion,
    changes: &mut Vec<(String, String, String)>,
) -> Result<(), String> {
    let mut work = vec![(name.to_string(), version.clone())];
    // Bounded: a dependency graph of a few hundred packages is already extraordinary.
    let mut budget = 500;
    while let Some((name, version)) = work.pop() {
        budget -= 1;
        if budget == 0 {
            return Err("the dependency graph is too large".into());
        }
        let contents = package::Contents::load(&name, &version.to_string())?;
        contents.select(framework, attribute(target, attr::RID))?;
        for (dep, range_text) in contents.dependencies(framework) {
            let range: VersionRange = range_text
                .parse()
                .map_err(|e| format!("dependency {dep}: {e}"))?;
            let present = changes
                .iter()
                .find(|(n, _, _)| n.eq_ignore_ascii_case(&dep))
                .map(|(_, _, to)| to.clone())
                .or_else(|| {
                    target
                        .packages
                        .iter()
                        .find(|p| p.name.eq_ignore_ascii_case(&dep))
                        .map(|p| listed_version(&p.version).0.to_string())
                });
            let present_version = present
                .as_deref()
                .and_then(|v| v.parse::<NuGetVersion>().ok());
            if let Some(current) = &present_version {
                // Satisfied, or above the range (never lowered: a newer one is kept).
                let above = range.max.as_ref().is_some_and(|max| *current > max.version);
                if range.contains(current) || above {
                    continue;
                }
            }
            let available = index_versions(&dep, range.allows_prerelease())
                .map_err(|e| format!("dependency {dep}: {e}"))?;
            let usable: Vec<&NuGetVersion> = available
                .iter()
                .filter(|v| v.unusable.is_none())
                .map(|v| &v.version)
                .collect();
            let chosen = range
                .lowest_satisfying(usable.iter().copied())
                .ok_or_else(|| format!("needs {dep} {range}, which the feed does not have"))?
                .clone();
            let from = present.unwrap_or_default();
            changes.retain(|(n, _, _)| !n.eq_ignore_ascii_case(&dep));
            let id = package::Contents::load(&dep, &chosen.to_string())?.id;
            changes.push((id, from, chosen.to_string()));
            work.push((dep, chosen));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_never_patched() {
        for name in [
            "Microsoft.Build.Tasks.Git",
            "microsoft.build",
            "Microsoft.NETCore.App.Runtime.linux-x64",
            "Microsoft.AspNetCore.App.Runtime.linux-musl-x64",
            "Microsoft.WindowsDesktop.App.Runtime.win-x64",
            "Microsoft.NETCore.App.Host.linux-x64",
            "Microsoft.NETCore.App.Ref",
            "Microsoft.AspNetCore.App.Ref",
        ] {
            assert!(never_patched(name).is_some(), "{name}");
        }
        for name in [
            "Microsoft.Extensions.Logging",
            "System.Text.Json",
            "Microsoft.BuildXL",
            "Newtonsoft.Json",
        ] {
            assert_eq!(never_patched(name), None, "{name}");
        }
        assert_eq!(normalize_path("app/App.deps.json"), "/app/App.deps.json");
        assert_eq!(normalize_path("/app/App.deps.json"), "/app/App.deps.json");
    }
}
