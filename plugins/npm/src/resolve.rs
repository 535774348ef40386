//! Node's module resolution over an installed tree, and what an in-place update needs from it:
//! the dependencies the new version lacks, and the installed packages whose declared range the
//! new version leaves.

use std::collections::BTreeMap;

use copa_plugin_sdk::npm_registry::Version as PackageVersion;

use crate::registry;
use copa_plugin_sdk::npm::{NpmRange, NpmVersion, engine_allows, is_range_spec};
use serde_json::Value;

use crate::tree::{join, parent, read_manifest};

/// How deep missing dependencies of missing dependencies are followed before giving up; real
/// trees that need more than this are better re-resolved by npm.
const MAX_DEPTH: usize = 16;

/// Package directories whose version this plan changes or adds (directory -> version), so that
/// later resolution sees the tree as it will be.
#[derive(Clone, Default)]
pub struct Overlay(BTreeMap<String, String>);

impl Overlay {
    pub fn set(&mut self, dir: &str, version: &str) {
        self.0.insert(dir.to_string(), version.to_string());
    }

    /// The version at `dir`: planned, else installed.
    pub fn version_at(&self, dir: &str) -> Option<String> {
        if let Some(v) = self.0.get(dir) {
            return Some(v.clone());
        }
        read_manifest(dir)?
            .get("version")?
            .as_str()
            .map(String::from)
    }
}

/// The package directory `name` resolves to from the package at `from` (Node's lookup: the
/// package's own node_modules, then each ancestor's, skipping node_modules directories
/// themselves), with its version.
pub fn resolve(from: &str, name: &str, overlay: &Overlay) -> Option<(String, String)> {
    let mut dir = from.to_string();
    loop {
        if !dir.ends_with("/node_modules") {
            let candidate = join(&join(&dir, "node_modules"), name);
            if let Some(version) = overlay.version_at(&candidate) {
                return Some((candidate, version));
            }
        }
        if dir == "/" {
            return None;
        }
        dir = parent(&dir).to_string();
    }
}

/// A package this plan installs where there was none (or replaces below an updated package),
/// because the new version of a package needs it.
#[derive(Clone, Debug)]
pub struct Added {
    pub dir: String,
    pub name: String,
    pub version: PackageVersion,
}

/// The version document the registry has for `name@version`.
pub fn index_version(name: &str, version: &str) -> Result<PackageVersion, String> {
    registry::version(name, version)
}

/// Plans what `version` (about to be placed at `dir`) needs that the tree does not provide:
/// each unsatisfied dependency goes into `dir/node_modules` at the highest version its range
/// allows, the way npm would nest a conflicting dependency, and so on for what those need.
/// Nothing already installed is moved or changed.
pub fn missing_dependencies(
    dir: &str,
    version: &PackageVersion,
    node: Option<&str>,
    overlay: &mut Overlay,
    added: &mut Vec<Added>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "dependencies nest deeper than {MAX_DEPTH} levels below {dir}"
        ));
    }
    let optional: Vec<&String> = version
        .optional_dependencies
        .iter()
        .map(|(name, _)| name)
        .collect();
    for (name, spec) in &version.dependencies {
        if !is_range_spec(spec) {
            copa_plugin_sdk::log::info(&format!(
                "{dir}: dependency {name}@{spec} is not a registry range; not checked"
            ));
            continue;
        }
        let range: NpmRange = spec.parse()?;
        let resolved = resolve(dir, name, overlay);
        let satisfied = resolved
            .as_ref()
            .is_some_and(|(_, v)| v.parse::<NpmVersion>().is_ok_and(|v| range.satisfies(&v)));
        if satisfied {
            continue;
        }
        if resolved.is_none() && optional.contains(&name) {
            // Optional dependencies are often platform-specific and absent on purpose.
            continue;
        }
        let place = join(&join(dir, "node_modules"), name);
        if resolved.as_ref().is_some_and(|(at, _)| *at == place) {
            return Err(format!(
                "{place} holds a version outside {spec}, which other packages there may use"
            ));
        }
        let chosen = newest_in_range(name, &range, node)?;
        overlay.set(&place, &chosen.version);
        added.push(Added {
            dir: place.clone(),
            name: name.clone(),
            version: chosen.clone(),
        });
        missing_dependencies(&place, &chosen, node, overlay, added, depth + 1)?;
    }
    Ok(())
}

/// The highest usable registry version of `name` in `range`: what `npm install` would pick.
fn newest_in_range(
    name: &str,
    range: &NpmRange,
    node: Option<&str>,
) -> Result<PackageVersion, String> {
    let versions = registry::versions(name)?;
    let usable = |v: &PackageVersion| {
        node.is_none_or(|node| {
            v.engines
                .iter()
                .filter(|(engine, _)| engine == "node")
                .all(|(_, r)| engine_allows(r, node))
        })
    };
    let in_range: Vec<(NpmVersion, &PackageVersion)> = versions
        .iter()
        .filter_map(|v| Some((v.version.parse::<NpmVersion>().ok()?, v)))
        .filter(|(parsed, _)| range.satisfies(parsed))
        .collect();
    // npm avoids deprecated versions when the range allows another.
    let pick = |allow_deprecated: bool| {
        in_range
            .iter()
            .filter(|(_, v)| usable(v) && (allow_deprecated || v.deprecated.is_none()))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, v)| (*v).clone())
    };
    pick(false)
        .or_else(|| pick(true))
        .ok_or_else(|| format!("no registry version of {name} satisfies {range:?}"))
}

/// Installed packages (and the project itself) that reach the copy at `dir` through Node's
/// lookup and declare a range for it that `to` is outside of, as "express@4.17.1 wants 6.7.0".
pub fn dependents_left_out(
    dir: &str,
    name: &str,
    to: &NpmVersion,
    packages: &[String],
    overlay: &Overlay,
) -> Vec<String> {
    let mut out = Vec::new();
    for location in packages {
        let Some(manifest) = read_manifest(location) else {
            continue;
        };
        for field in ["dependencies", "optionalDependencies", "peerDependencies"] {
            let Some(spec) = manifest
                .get(field)
                .and_then(|d| d.get(name))
                .and_then(Value::as_str)
            else {
                continue;
            };
            if !is_range_spec(spec) {
                continue;
            }
            let Ok(range) = spec.parse::<NpmRange>() else {
                continue;
            };
            if resolve(location, name, overlay).is_some_and(|(at, _)| at == dir)
                && !range.satisfies(to)
            {
                let who = manifest
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(location);
                let version = manifest
                    .get("version")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                out.push(format!("{who}@{version} wants {spec}"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
