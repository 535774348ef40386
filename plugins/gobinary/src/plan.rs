//! From findings to updates: module versions per binary or go.mod (the SDK's choice rule over Go
//! module semver), and toolchain upgrades for standard-library findings when the policy allows.

use std::collections::BTreeMap;

use copa_plugin_sdk::choose::{
    Bump, IndexVersion, LibraryVersion, Vulnerability, choose, is_fixed_by,
};
use copa_plugin_sdk::gomod::{GoVersion, ModuleVersion};
use copa_plugin_sdk::goproxy::{self, TOOLCHAIN_MODULE};
use copa_plugin_sdk::{
    Finding, PatchLevel, Plan, Policy, Skip, Target, Update, attribute, index_urls,
};

use crate::source::{self, Source};
use crate::{attr, kind};

pub const STDLIB: &str = "stdlib";

pub fn plan(targets: &[Target], findings: &[Finding], policy: Policy) -> Result<Plan, String> {
    let sources = source::configured(&policy)?;
    let mut plan = Plan {
        updates: Vec::new(),
        skips: Vec::new(),
    };
    let mut groups: BTreeMap<(usize, String), Vec<&Finding>> = BTreeMap::new();
    for finding in findings {
        match owner(targets, finding) {
            Some(target) => groups
                .entry((target, finding.package_name.clone()))
                .or_default()
                .push(finding),
            None => plan.skips.push(Skip {
                target_id: location(finding),
                package: finding.package_name.clone(),
                vulnerabilities: vec![finding.vulnerability_id.clone()],
                reason: "no Go binary or go.mod in the image at this path".into(),
            }),
        }
    }
    for ((target, package), findings) in groups {
        let target = &targets[target];
        let vulnerabilities = merge(&findings);
        let skip = |plan: &mut Plan, vulnerabilities: Vec<String>, reason: String| {
            plan.skips.push(Skip {
                target_id: target.id.clone(),
                package: package.clone(),
                vulnerabilities,
                reason,
            })
        };
        let ids: Vec<String> = vulnerabilities.iter().map(|v| v.id.clone()).collect();
        if let Some(reason) = &target.unpatchable_reason
            && !revision_named(target, &sources)
        {
            skip(&mut plan, ids, reason.clone());
            continue;
        }
        if target.kind == kind::BINARY
            && let Err(reason) = source::of(target, &sources)
        {
            skip(&mut plan, ids, reason);
            continue;
        }
        let outcome = if package == STDLIB {
            plan_toolchain(target, vulnerabilities, &policy)
        } else {
            plan_module(target, &package, vulnerabilities, &policy)
        };
        match outcome {
            Ok((update, skipped)) => {
                plan.updates.extend(update);
                for (vulnerabilities, reason) in skipped {
                    skip(&mut plan, vulnerabilities, reason);
                }
            }
            Err(reason) => skip(&mut plan, ids, reason),
        }
    }
    note_sources(targets, &sources, &mut plan);
    Ok(plan)
}

/// Whether a binary whose revision is unknown gets one from a `--go-source ...@REF`.
fn revision_named(target: &Target, sources: &[source::Configured]) -> bool {
    attribute(target, attr::NEEDS_REF) == Some("1")
        && attribute(target, attr::MODULE)
            .and_then(|module| source::configured_for(sources, module))
            .is_some_and(|(configured, _)| configured.reference.is_some())
}

/// A binary that recorded its revision but is rebuilt from the module proxy's copy (no git
/// repository is known for its module) loses its VCS information: its first update says so.
fn note_sources(targets: &[Target], sources: &[source::Configured], plan: &mut Plan) {
    for target in targets.iter().filter(|t| t.kind == kind::BINARY) {
        let Some(first) = plan.updates.iter_mut().find(|u| u.target_id == target.id) else {
            continue;
        };
        let revision = attribute(target, &format!("{}vcs.revision", attr::SETTING));
        if let (Some(revision), Ok(Source::Proxy { .. })) = (revision, source::of(target, sources))
        {
            let module = attribute(target, attr::MODULE).unwrap_or_default();
            first.notes.push(format!(
                "rebuilt from the module proxy's copy of {module} at {revision}, so it carries no \
                 vcs.revision; name the git repository with --go-source {module}=GIT-URL to keep it"
            ));
        }
    }
}

/// An update (if any) and the vulnerabilities left, grouped by reason.
type Outcome = Result<(Option<Update>, Vec<(Vec<String>, String)>), String>;

/// The path a finding is about, absolute: Trivy leaves `PkgPath` empty for Go and names the
/// binary or the go.mod as the result's target, relative to the image root.
fn location(finding: &Finding) -> String {
    let path = finding
        .pkg_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or(&finding.report_target);
    format!("/{}", path.trim_start_matches('/'))
}

fn owner(targets: &[Target], finding: &Finding) -> Option<usize> {
    let path = location(finding);
    targets.iter().position(|t| match t.kind.as_str() {
        kind::BINARY => t.id == path,
        // Trivy names go.mod (or, from older versions, go.sum) of the module directory.
        _ => ["go.mod", "go.sum"]
            .iter()
            .any(|file| path == format!("{}/{file}", t.id.trim_end_matches('/'))),
    })
}

/// One entry per vulnerability id, fixed versions of repeated findings merged.
fn merge(findings: &[&Finding]) -> Vec<Vulnerability> {
    let mut merged: Vec<Vulnerability> = Vec::new();
    for finding in findings {
        match merged.iter_mut().find(|v| v.id == finding.vulnerability_id) {
            Some(existing) => {
                for fixed in &finding.fixed_versions {
                    if !existing.fixed_versions.contains(fixed) {
                        existing.fixed_versions.push(fixed.clone());
                    }
                }
            }
            None => merged.push(Vulnerability {
                id: finding.vulnerability_id.clone(),
                fixed_versions: finding.fixed_versions.clone(),
            }),
        }
    }
    merged
}

fn bump(level: PatchLevel) -> Bump {
    match level {
        PatchLevel::Patch => Bump::Patch,
        PatchLevel::Minor => Bump::Minor,
        PatchLevel::Major => Bump::Major,
    }
}

/// The versions of `module` on the proxies in force, which the go command of the rebuild
/// reads too: the host gives it a `GOPROXY` that names the same proxies.
fn proxy_versions(policy: &Policy, module: &str) -> Result<Vec<String>, String> {
    goproxy::versions(index_urls(policy, goproxy::ECOSYSTEM), module)
}

fn plan_module(
    target: &Target,
    module: &str,
    mut vulnerabilities: Vec<Vulnerability>,
    policy: &Policy,
) -> Outcome {
    let installed = target
        .packages
        .iter()
        .find(|p| p.name == module)
        .ok_or_else(|| format!("{} does not use {module}", target.id))?;
    if let Some(replacement) = attribute(target, &format!("{}{module}", attr::REPLACED)) {
        return Err(format!(
            "{module} is replaced by {replacement} (a replace directive); a new requirement would not change what is built"
        ));
    }
    if !goproxy::is_valid_module_path(module) {
        return Err(format!("{module:?} is not a valid module path"));
    }
    let installed_version: ModuleVersion = installed.version.parse()?;
    vulnerabilities.retain(|v| !is_fixed_by(&installed_version, v));
    if vulnerabilities.is_empty() {
        return Ok((None, Vec::new()));
    }
    let offered = proxy_versions(policy, module).map_err(|e| format!("module proxy: {e}"))?;
    let index_versions: Vec<IndexVersion<ModuleVersion>> = offered
        .iter()
        .filter_map(|v| {
            let version: ModuleVersion = v.parse().ok()?;
            let unusable = (version.is_prerelease() && !installed_version.is_prerelease())
                .then(|| "is a pre-release".to_string());
            Some(IndexVersion { version, unusable })
        })
        .collect();
    let choice = choose(
        &installed_version,
        &vulnerabilities,
        &index_versions,
        bump(policy.library_patch_level),
        false,
    );
    let update = choice.to.map(|to| Update {
        target_id: target.id.clone(),
        package: module.to_string(),
        from_version: installed.version.clone(),
        to_version: to.to_string(),
        at_least: false,
        fixes: choice.fixes,
        notes: Vec::new(),
    });
    let skipped = choice
        .skipped
        .into_iter()
        .map(|s| (s.vulnerabilities, s.reason))
        .collect();
    Ok((update, skipped))
}

/// Standard-library findings move the binary to a newer Go: the newest release the module
/// proxy offers as `golang.org/toolchain` for the binary's platform, within
/// `--toolchain-patch-level` (patch: same minor; minor: same major).
fn plan_toolchain(
    target: &Target,
    mut vulnerabilities: Vec<Vulnerability>,
    policy: &Policy,
) -> Outcome {
    if target.kind != kind::BINARY {
        return Err(
            "a standard-library fix needs a newer Go toolchain; the go.mod's go and toolchain lines are not changed"
                .into(),
        );
    }
    let Some(level) = policy.toolchain_patch_level else {
        return Err(
            "a standard-library fix needs a newer Go toolchain; toolchains change only with --toolchain-patch-level"
                .into(),
        );
    };
    let level = bump(level);
    let go_version = attribute(target, attr::GO_VERSION).unwrap_or_default();
    let installed: GoVersion = go_version.parse()?;
    vulnerabilities.retain(|v| !is_fixed_by(&installed, v));
    if vulnerabilities.is_empty() {
        return Ok((None, Vec::new()));
    }
    let platform = format!(
        "{}-{}",
        attribute(target, &format!("{}GOOS", attr::SETTING)).unwrap_or("linux"),
        attribute(target, &format!("{}GOARCH", attr::SETTING)).unwrap_or("amd64"),
    );
    let offered = proxy_versions(policy, TOOLCHAIN_MODULE)
        .map_err(|e| format!("module proxy ({TOOLCHAIN_MODULE}): {e}"))?;
    let mut releases: Vec<GoVersion> = offered
        .iter()
        .filter_map(|v| GoVersion::from_toolchain_module(v))
        .filter(|(go, for_platform)| {
            *for_platform == platform && go.is_release() && *go > installed
        })
        .map(|(go, _)| go)
        .collect();
    releases.sort();
    let newest = releases
        .iter()
        .filter(|go| installed.bump_to(go) <= level)
        .max();
    let fixes_all = |go: &GoVersion| -> Vec<String> {
        vulnerabilities
            .iter()
            .filter(|v| is_fixed_by(go, v))
            .map(|v| v.id.clone())
            .collect()
    };
    let fixed_ids = newest.map(fixes_all).unwrap_or_default();
    let update = newest.filter(|_| !fixed_ids.is_empty()).map(|to| Update {
        target_id: target.id.clone(),
        package: STDLIB.to_string(),
        from_version: crate::detect::stdlib_version(go_version),
        to_version: crate::detect::stdlib_version(&to.toolchain_name()),
        at_least: false,
        fixes: fixed_ids.clone(),
        notes: Vec::new(),
    });
    let mut skipped: Vec<(Vec<String>, String)> = Vec::new();
    for vulnerability in &vulnerabilities {
        if fixed_ids.contains(&vulnerability.id) {
            continue;
        }
        let beyond = releases
            .iter()
            .filter(|go| is_fixed_by(*go, vulnerability))
            .min();
        let reason = if vulnerability.fixed_versions.is_empty() {
            "no fixed version published".to_string()
        } else if let Some(go) = beyond.filter(|go| installed.bump_to(go) > level) {
            format!(
                "fix needs {} (a {} toolchain bump); --toolchain-patch-level is {level}",
                go.toolchain_name(),
                installed.bump_to(go)
            )
        } else {
            format!(
                "no Go toolchain for {platform} on the module proxy fixes it within --toolchain-patch-level {level}"
            )
        };
        match skipped.iter_mut().find(|(_, r)| *r == reason) {
            Some((ids, _)) => ids.push(vulnerability.id.clone()),
            None => skipped.push((vec![vulnerability.id.clone()], reason)),
        }
    }
    Ok((update, skipped))
}
