//! From findings to updates: which version each vulnerable package moves to, per environment.

use copa_plugin_sdk::choose::{Bump, IndexVersion, Vulnerability, choose, is_fixed_by};
use copa_plugin_sdk::pep440::{Pep440Version, normalize_name as normalize, requires_python_allows};
use copa_plugin_sdk::route::{route, skip_all};
use copa_plugin_sdk::{Finding, Plan, Policy, Target, index_urls, pypi};

/// Packages that always go to their newest release: a trust store is only as good as its
/// latest edition, and certifi's releases never break callers.
const ALWAYS_NEWEST: &[&str] = &["certifi"];

pub fn plan(targets: &[Target], findings: &[Finding], policy: Policy) -> Plan {
    let level = Bump::from(policy.library_patch_level);
    let mut plan = Plan {
        updates: Vec::new(),
        skips: Vec::new(),
    };
    // Keyed by (target, normalized package name). A finding whose `PkgPath` lies in no
    // environment of the image is skipped, never guessed.
    let groups = route(
        findings,
        &mut plan,
        "no Python environment in the image holds this package",
        |finding| {
            let name = normalize(&finding.package_name);
            match &finding.pkg_path {
                Some(path) => targets
                    .iter()
                    .position(|t| contains_path(t, path))
                    .map(|i| (i, name))
                    .into_iter()
                    .collect(),
                // Without a path, every environment that has this package at this version is
                // meant.
                None => targets
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| {
                        t.packages.iter().any(|p| {
                            normalize(&p.name) == name && p.version == finding.installed_version
                        })
                    })
                    .map(|(i, _)| (i, name.clone()))
                    .collect(),
            }
        },
    );
    let indexes: Vec<&str> = index_urls(&policy, pypi::ECOSYSTEM).collect();
    for ((target_index, package), findings) in groups {
        let target = &targets[target_index];
        plan_package(target, &package, &findings, level, &indexes, &mut plan);
    }
    plan
}

fn contains_path(target: &Target, path: &str) -> bool {
    target.packages.iter().any(|p| {
        path == p.location
            || path
                .strip_prefix(p.location.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn plan_package(
    target: &Target,
    package: &str,
    findings: &[&Finding],
    level: Bump,
    indexes: &[&str],
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
    let Some(installed) = target
        .packages
        .iter()
        .find(|p| normalize(&p.name) == package)
    else {
        return skip_all(plan, format!("not installed in {}", target.id));
    };
    let Ok(installed_version) = installed.version.parse::<Pep440Version>() else {
        return skip_all(
            plan,
            format!(
                "installed version {} is not a PEP 440 version",
                installed.version
            ),
        );
    };
    let versions = match pypi::versions(indexes.iter().copied(), &installed.name) {
        Ok(versions) => versions,
        Err(e) => return skip_all(plan, format!("package index: {e}")),
    };
    let index_versions: Vec<IndexVersion<Pep440Version>> = versions
        .into_iter()
        .filter_map(|v| {
            let version = v.version.parse::<Pep440Version>().ok()?;
            // Phrased to follow "fixed version X ..." in a skip reason.
            let unusable = if v.yanked {
                Some("is yanked".to_string())
            } else if version.is_prerelease() && !installed_version.is_prerelease() {
                Some("is a pre-release".to_string())
            } else {
                match (&v.requires_python, &target.runtime_version) {
                    (Some(requires), Some(python)) if !requires_python_allows(requires, python) => {
                        Some(format!(
                            "requires Python {requires}, the environment has {python}"
                        ))
                    }
                    _ => None,
                }
            };
            Some(IndexVersion { version, unusable })
        })
        .collect();

    // A report older than the image (or an image patched already) names vulnerabilities the
    // installed version no longer has: nothing to do for those.
    vulnerabilities.retain(|v| !is_fixed_by(&installed_version, v));
    if vulnerabilities.is_empty() {
        copa_plugin_sdk::log::info(&format!(
            "{} {} in {} already has every fix",
            installed.name, installed.version, target.id
        ));
        return;
    }
    let always_newest = ALWAYS_NEWEST.contains(&package);
    let choice = choose(
        &installed_version,
        &vulnerabilities,
        &index_versions,
        level,
        always_newest,
    );
    let (update, skips) = choice.into_plan(&target.id, &installed.name, &installed.version);
    plan.updates.extend(update);
    plan.skips.extend(skips);
}
