//! From findings to updates: which version each vulnerable copy of a package moves to, and what
//! that update drags along (missing dependencies, dependents whose range it leaves).

use std::collections::BTreeMap;

use copa_plugin_sdk::choose::{Bump, IndexVersion, Vulnerability, choose, is_fixed_by};
use copa_plugin_sdk::npm::{NpmVersion, engine_allows};
use copa_plugin_sdk::npm_registry::Version as PackageVersion;
use copa_plugin_sdk::route::{route, skip_all, skip_instead};
use copa_plugin_sdk::{Finding, InstalledPackage, Plan, Policy, Target, Update};

use crate::attr;
use crate::resolve::{Added, Overlay, dependents_left_out, index_version, missing_dependencies};
use crate::tree::dir_name;

/// Global packages that are never patched: npm updates itself (`npm install -g npm`), and
/// corepack ships with Node.js.
const NEVER_PATCHED_GLOBALLY: &[&str] = &["npm", "corepack"];

/// One project (or global root) as the plan and the emitted steps see it.
pub struct Project<'a> {
    /// The directory whose `node_modules` is the top of the tree ("/app", "/usr/local/lib").
    pub dir: String,
    pub global: bool,
    pub targets: Vec<&'a Target>,
}

impl<'a> Project<'a> {
    /// Every installed copy in the project.
    pub fn packages(&self) -> impl Iterator<Item = &'a InstalledPackage> + '_ {
        self.targets.iter().flat_map(|t| t.packages.iter())
    }

    pub fn locations(&self) -> Vec<String> {
        self.packages().map(|p| p.location.clone()).collect()
    }

    pub fn node(&self) -> Option<&'a str> {
        self.targets
            .first()
            .and_then(|t| t.runtime_version.as_deref())
    }
}

/// Targets grouped by project, in target order.
pub fn projects(targets: &[Target]) -> Vec<Project<'_>> {
    let mut projects: Vec<Project> = Vec::new();
    for target in targets {
        let dir = copa_plugin_sdk::attribute(target, attr::PROJECT)
            .unwrap_or_default()
            .to_string();
        match projects.iter_mut().find(|p| p.dir == dir) {
            Some(project) => project.targets.push(target),
            None => projects.push(Project {
                global: copa_plugin_sdk::attribute(target, attr::GLOBAL) == Some("1"),
                dir,
                targets: vec![target],
            }),
        }
    }
    projects
}

/// What updating the copy at `dir` to `version` does to its project.
pub struct Effect {
    /// The copy's directory.
    pub dir: String,
    /// The new version's registry document.
    pub version: PackageVersion,
    /// Packages placed below it because the new version needs them.
    pub added: Vec<Added>,
    /// Installed packages whose declared range the new version leaves.
    pub dependents: Vec<String>,
}

/// The effect of one update on top of the earlier ones (`overlay`, which it then extends).
pub fn effect(
    project: &Project,
    dir: &str,
    name: &str,
    to: &str,
    overlay: &mut Overlay,
) -> Result<Effect, String> {
    let version = index_version(name, to)?;
    let to_parsed: NpmVersion = to.parse()?;
    let mut tentative = overlay.clone();
    tentative.set(dir, to);
    let mut added = Vec::new();
    missing_dependencies(dir, &version, project.node(), &mut tentative, &mut added, 0)
        .map_err(|e| format!("{name} {to} needs what the tree cannot give it: {e}"))?;
    let dependents = dependents_left_out(
        dir,
        dir_name(dir),
        &to_parsed,
        &project.locations(),
        &tentative,
    );
    *overlay = tentative;
    Ok(Effect {
        dir: dir.to_string(),
        version,
        added,
        dependents,
    })
}

pub fn plan(targets: &[Target], findings: &[Finding], policy: Policy) -> Plan {
    let level = Bump::from(policy.library_patch_level);
    let mut plan = Plan {
        updates: Vec::new(),
        skips: Vec::new(),
    };
    let projects = projects(targets);
    let mut overlays: BTreeMap<String, Overlay> = BTreeMap::new();
    let groups = route(
        findings,
        &mut plan,
        "no installed npm package in the image at this path",
        |finding| copies_named(targets, finding),
    );
    for ((target_index, location), findings) in groups {
        let target = &targets[target_index];
        let Some(package) = target.packages.iter().find(|p| p.location == location) else {
            continue;
        };
        let project = projects
            .iter()
            .find(|p| p.targets.iter().any(|t| t.id == target.id))
            .expect("every target belongs to a project");
        let overlay = overlays.entry(project.dir.clone()).or_default();
        plan_copy(
            project, target, package, &findings, level, overlay, &mut plan,
        );
    }
    plan
}

/// The copies a finding names: (target, package directory). A `PkgPath` that is no installed
/// copy names none, never a guess.
fn copies_named(targets: &[Target], finding: &Finding) -> Vec<(usize, String)> {
    match &finding.pkg_path {
        // Trivy writes the path relative to the image root: app/node_modules/qs/package.json.
        Some(path) => {
            let path = format!("/{}", path.trim_start_matches('/'));
            let dir = path
                .strip_suffix("/package.json")
                .unwrap_or(&path)
                .to_string();
            targets
                .iter()
                .position(|t| t.packages.iter().any(|p| p.location == dir))
                .map(|i| (i, dir))
                .into_iter()
                .collect()
        }
        // Without a path, every copy of this package at this version is meant.
        None => targets
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                t.packages
                    .iter()
                    .filter(|p| {
                        p.name == finding.package_name && p.version == finding.installed_version
                    })
                    .map(move |p| (i, p.location.clone()))
            })
            .collect(),
    }
}

fn plan_copy(
    project: &Project,
    target: &Target,
    package: &InstalledPackage,
    findings: &[&Finding],
    level: Bump,
    overlay: &mut Overlay,
    plan: &mut Plan,
) {
    let mut vulnerabilities = Vulnerability::from_findings(findings);
    let skip_all = |plan: &mut Plan, reason: String| {
        let skip = skip_all(&target.id, &package.name, &vulnerabilities, reason);
        plan.skips.push(skip);
    };

    if let Some(reason) = &target.unpatchable_reason {
        return skip_all(plan, reason.clone());
    }
    if let Some(owner) = never_patched(project, &package.location) {
        let reason = if owner == package.name {
            format!(
                "{owner} is never patched as a global package (it is updated with Node.js or `npm install -g npm`)"
            )
        } else {
            format!("part of the global {owner}, which is never patched")
        };
        return skip_all(plan, reason);
    }
    let Ok(installed) = package.version.parse::<NpmVersion>() else {
        return skip_all(
            plan,
            format!(
                "installed version {} is not a semver version",
                package.version
            ),
        );
    };
    let versions = match crate::registry::versions(&package.name) {
        Ok(versions) => versions,
        Err(e) => return skip_all(plan, format!("npm registry: {e}")),
    };
    let node = target.runtime_version.as_deref();
    let index_versions: Vec<IndexVersion<NpmVersion>> = versions
        .iter()
        .filter_map(|v| {
            let version = v.version.parse::<NpmVersion>().ok()?;
            // Phrased to follow "fixed version X ..." in a skip reason.
            let engine = v
                .engines
                .iter()
                .find(|(engine, range)| {
                    engine == "node" && node.is_some_and(|node| !engine_allows(range, node))
                })
                .map(|(_, range)| range);
            let unusable = if let Some(message) = &v.deprecated {
                Some(format!("is deprecated ({})", message.trim()))
            } else if version.is_prerelease() && !installed.is_prerelease() {
                Some("is a pre-release".to_string())
            } else {
                engine.map(|range| {
                    format!(
                        "requires Node.js {range}, the image has {}",
                        node.unwrap_or_default()
                    )
                })
            };
            Some(IndexVersion { version, unusable })
        })
        .collect();

    // A report older than the image names vulnerabilities the installed copy no longer has.
    vulnerabilities.retain(|v| !is_fixed_by(&installed, v));
    if vulnerabilities.is_empty() {
        copa_plugin_sdk::log::info(&format!(
            "{} {} at {} already has every fix",
            package.name, package.version, package.location
        ));
        return;
    }
    let choice = choose(&installed, &vulnerabilities, &index_versions, level, false);
    let (update, skips) = choice.into_plan(&target.id, &package.name, &package.version);
    plan.skips.extend(skips);
    let Some(update) = update else {
        return;
    };
    match effect(
        project,
        &package.location,
        &package.name,
        &update.to_version,
        overlay,
    ) {
        Ok(effect) => {
            let notes = notes(project, package, &update.to_version, &effect);
            plan.updates.push(Update { notes, ..update });
        }
        Err(reason) => plan.skips.push(skip_instead(update, reason)),
    }
}

/// The global package (npm, corepack) a copy belongs to, when it is one never patched: the
/// package itself or anything in its own node_modules.
fn never_patched(project: &Project, location: &str) -> Option<&'static str> {
    if !project.global {
        return None;
    }
    let top = location.strip_prefix(&format!("{}/node_modules/", project.dir))?;
    let top = top.split("/node_modules/").next()?;
    NEVER_PATCHED_GLOBALLY.iter().copied().find(|n| *n == top)
}

/// What a version has that installing it without running scripts leaves undone.
fn unbuilt_parts(version: &PackageVersion) -> Vec<&'static str> {
    [
        (
            version.has_install_script,
            "an install script, which was not run",
        ),
        (
            version.gypfile,
            "native code (binding.gyp), which was not rebuilt",
        ),
    ]
    .into_iter()
    .filter(|(has, _)| *has)
    .map(|(_, what)| what)
    .collect()
}

/// What an update does beyond replacing the copy: the update's notes for the summary (what the
/// user must know), and the rest in the log.
fn notes(project: &Project, package: &InstalledPackage, to: &str, effect: &Effect) -> Vec<String> {
    let what = format!("{} {to} at {}", package.name, package.location);
    let mut notes = Vec::new();
    for part in unbuilt_parts(&effect.version) {
        notes.push(format!("has {part}"));
    }
    for added in &effect.added {
        let placed = format!(
            "needs {} {}, placed at {}",
            added.name, added.version.version, added.dir
        );
        let parts = unbuilt_parts(&added.version);
        if parts.is_empty() {
            copa_plugin_sdk::log::info(&format!("{what} {placed}"));
        } else {
            notes.push(format!("{placed}, which has {}", parts.join(" and ")));
        }
    }
    if !effect.dependents.is_empty() {
        let how = if project.global {
            "npm ls -g will call it invalid"
        } else {
            "package.json gets an override so the tree stays valid"
        };
        notes.push(format!(
            "is outside the range of {}; {how}",
            effect.dependents.join(", ")
        ));
    }
    for note in &notes {
        copa_plugin_sdk::log::warn(&format!("{what} {note}"));
    }
    notes
}
