//! From a plan to steps: `fetch` the new versions' tarballs into the copies' directories, remove
//! the files the old versions had and the new ones do not, and `write` package.json and the
//! lockfiles so that they describe the patched tree (a later `npm ci` reproduces it).
//!
//! No container and no npm are involved, so this works the same for images without npm or
//! without Node.js at all.

use std::collections::{BTreeMap, BTreeSet};

use copa_plugin_sdk::npm::{NpmRange, NpmVersion};
use copa_plugin_sdk::npm_registry::{self, Version as PackageVersion};
use copa_plugin_sdk::{DownloadStep, Placement, Plan, Step, Target, WriteStep, fs};
use serde_json::{Map, Value, json};

use crate::attr;
use crate::json;
use crate::plan::{Effect, Project, effect, projects};
use crate::registry;
use crate::resolve::Overlay;
use crate::tree::{dir_name, join, parent};

/// Fields of package.json that list what the project installs.
const DEPENDENCY_FIELDS: &[&str] = &["dependencies", "devDependencies", "optionalDependencies"];

/// One update as the steps apply it.
struct Change {
    update: u32,
    effect: Effect,
}

pub fn emit(targets: &[Target], plan: &Plan) -> Result<Vec<Step>, String> {
    // Keyed by (name, version): one download, placed at every copy that gets it.
    let mut fetches: BTreeMap<(String, String), DownloadStep> = BTreeMap::new();
    let mut removals = Vec::new();
    let mut writes = Vec::new();
    for project in projects(targets) {
        let mut overlay = Overlay::default();
        let mut changes = Vec::new();
        for (index, update) in plan.updates.iter().enumerate() {
            let Some(target) = project.targets.iter().find(|t| t.id == update.target_id) else {
                continue;
            };
            let package = target
                .packages
                .iter()
                .find(|p| p.name == update.package)
                .ok_or_else(|| format!("{} is not in {}", update.package, target.id))?;
            let effect = effect(
                &project,
                &package.location,
                &update.package,
                &update.to_version,
                &mut overlay,
            )?;
            let index = index as u32;
            let owner = owner(&package.location);
            place(
                &mut fetches,
                &update.package,
                &effect.version,
                &effect.dir,
                owner,
                index,
            )?;
            removals.extend(removed_files(
                &update.package,
                &update.to_version,
                &effect.dir,
                index,
            )?);
            for added in &effect.added {
                place(
                    &mut fetches,
                    &added.name,
                    &added.version,
                    &added.dir,
                    owner,
                    index,
                )?;
            }
            changes.push(Change {
                update: index,
                effect,
            });
        }
        if !changes.is_empty() {
            writes.extend(project_files(&project, &overlay, &changes)?);
        }
    }
    let mut steps: Vec<Step> = fetches.into_values().map(Step::Download).collect();
    steps.extend(removals);
    steps.extend(writes);
    Ok(steps)
}

/// `uid:gid` of an existing path, so that placed files keep the ownership of what they replace.
fn owner(path: &str) -> (u32, u32) {
    fs::stat(path).map_or((0, 0), |s| (s.uid, s.gid))
}

/// The top directory of an npm tarball: "package/" for everything npm publishes today, the
/// package's name for some very old ones.
fn tarball_root(members: &[String]) -> Result<String, String> {
    let first = members.first().ok_or("the tarball is empty")?;
    let root = first.split('/').next().unwrap_or_default();
    if root.is_empty() || !members.iter().all(|m| m.starts_with(&format!("{root}/"))) {
        return Err("the tarball has no single top directory".into());
    }
    Ok(format!("{root}/"))
}

/// Adds the placement of `name@version` at `dir` to the download of its tarball.
fn place(
    fetches: &mut BTreeMap<(String, String), DownloadStep>,
    name: &str,
    version: &PackageVersion,
    dir: &str,
    (uid, gid): (u32, u32),
    update: u32,
) -> Result<(), String> {
    let artifact = registry::tarball(name, version)?;
    let members = members(&artifact);
    let root = tarball_root(&members).map_err(|e| format!("{name}@{}: {e}", version.version))?;
    let step = fetches
        .entry((name.to_string(), version.version.clone()))
        .or_insert_with(|| DownloadStep {
            description: format!("npm {name}@{}", version.version),
            url: artifact.url.clone(),
            // The bytes this plugin checked against the registry's digest, and no others.
            sha256: artifact.sha256.clone(),
            placements: Vec::new(),
            updates: Vec::new(),
        });
    // Not `replace`: that would also remove the copy's own node_modules, which holds other
    // installed packages; files the old version had and the new one lacks go by name instead.
    step.placements.push(Placement {
        member: root.clone(),
        path: dir.to_string(),
        mode: None,
        uid,
        gid,
        replace: false,
    });
    // npm makes every bin target executable when it links it, whatever the tarball says.
    for bin in bin_paths(version) {
        let member = format!("{root}{bin}");
        if members.contains(&member) {
            step.placements.push(Placement {
                member,
                path: join(dir, &bin),
                mode: Some(0o755),
                uid,
                gid,
                replace: false,
            });
        }
    }
    if !step.updates.contains(&update) {
        step.updates.push(update);
    }
    Ok(())
}

/// The paths of a tarball's regular files, sorted.
fn members(artifact: &copa_plugin_sdk::archive::Artifact) -> Vec<String> {
    artifact.file_members().map(String::from).collect()
}

/// The files a version's `bin` names, relative to the package ("bin/semver.js").
fn bin_paths(version: &PackageVersion) -> Vec<String> {
    let Some(bin) = &version.bin else {
        return Vec::new();
    };
    let paths: Vec<&str> = match bin {
        Value::String(path) => vec![path.as_str()],
        Value::Object(map) => map.values().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    paths
        .into_iter()
        .map(|p| p.trim_start_matches("./").to_string())
        .filter(|p| !p.is_empty() && !p.split('/').any(|part| part == ".." || part == "."))
        .collect()
}

/// Removal steps for the files of the copy at `dir` that the new version does not have (its
/// own `node_modules` is other packages and stays).
fn removed_files(name: &str, version: &str, dir: &str, update: u32) -> Result<Vec<Step>, String> {
    let members = members(&*registry::tarball(
        name,
        &registry::version(name, version)?,
    )?);
    let root = tarball_root(&members)?;
    let new: BTreeSet<&str> = members
        .iter()
        .filter_map(|m| m.strip_prefix(root.as_str()))
        .collect();
    let mut old = Vec::new();
    list_files(dir, "", &mut old);
    Ok(old
        .into_iter()
        .filter(|relative| !new.contains(relative.as_str()))
        .map(|relative| {
            Step::Write(WriteStep {
                description: format!("remove {relative} of the old {name} at {dir}"),
                path: join(dir, &relative),
                contents: None,
                mode: 0,
                uid: 0,
                gid: 0,
                updates: vec![update],
            })
        })
        .collect())
}

fn list_files(dir: &str, relative: &str, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap_or_default() {
        if relative.is_empty() && entry == "node_modules" {
            continue;
        }
        let path = join(dir, &entry);
        let rel = if relative.is_empty() {
            entry.clone()
        } else {
            format!("{relative}/{entry}")
        };
        match fs::stat(&path).map(|s| s.kind) {
            Some(fs::EntryKind::Directory) => list_files(&path, &rel, out),
            Some(_) => out.push(rel),
            None => {}
        }
    }
}

/// The Subresource Integrity string npm records: the registry's, else the tarball's sha512.
fn integrity(name: &str, version: &PackageVersion) -> Result<String, String> {
    if let Some(sri) = &version.integrity {
        return Ok(sri.clone());
    }
    npm_registry::sha512_integrity(&registry::tarball(name, version)?.sha512)
}

/// The spec a direct dependency gets for `new`, in the style the user wrote: `^4.17.15` becomes
/// `^4.17.21`, `4.17.15` becomes `4.17.21`; a range that already admits `new` stays as it is,
/// anything else becomes npm's default `^new`.
pub fn restyle(old: &str, new: &str) -> String {
    let trimmed = old.trim();
    let start = trimmed
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (prefix, rest) = trimmed.split_at(start);
    if matches!(prefix, "" | "^" | "~" | ">=" | "=" | "v" | "~>")
        && rest.parse::<NpmVersion>().is_ok()
    {
        return format!("{prefix}{new}");
    }
    let admits = old
        .parse::<NpmRange>()
        .ok()
        .zip(new.parse::<NpmVersion>().ok())
        .is_some_and(|(range, version)| range.satisfies(&version));
    if admits {
        old.to_string()
    } else {
        format!("^{new}")
    }
}

/// Writes for the project's package.json (direct dependencies, overrides) and lockfiles.
fn project_files(
    project: &Project,
    overlay: &Overlay,
    changes: &[Change],
) -> Result<Vec<Step>, String> {
    let updates: Vec<u32> = changes.iter().map(|c| c.update).collect();
    let modules = join(&project.dir, "node_modules");
    let mut steps = Vec::new();

    // (field, name, spec) of each direct dependency whose spec changes.
    let mut direct: Vec<(String, String, String)> = Vec::new();
    let manifest_path = join(&project.dir, "package.json");
    if !project.global {
        let bytes = fs::read_file(&manifest_path)?;
        let (mut manifest, layout) =
            json::parse(&bytes).map_err(|e| format!("{manifest_path}: {e}"))?;
        for change in changes {
            let dir = &change.effect.dir;
            if parent(dir) != modules && !parent(dir).starts_with(&format!("{modules}/@")) {
                continue;
            }
            let name = dir_name(dir);
            for field in DEPENDENCY_FIELDS {
                if let Some(spec) = manifest
                    .get_mut(*field)
                    .and_then(|d| d.get_mut(name))
                    .filter(|s| s.is_string())
                {
                    let old = spec.as_str().unwrap_or_default().to_string();
                    let new = restyle(&old, &change.effect.version.version);
                    if new != old {
                        *spec = Value::String(new.clone());
                        direct.push((field.to_string(), name.to_string(), new));
                    }
                }
            }
        }
        let overridden = overrides(project, overlay, changes, &manifest);
        if !overridden.is_empty() {
            let root = manifest
                .as_object_mut()
                .ok_or_else(|| format!("{manifest_path} is not a JSON object"))?;
            let map = root
                .entry("overrides")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(map) = map.as_object_mut() {
                for (name, spec) in overridden {
                    map.insert(name, Value::String(spec));
                }
            }
        }
        let rendered = json::render(&manifest, &layout);
        if rendered != bytes {
            steps.push(write(&manifest_path, rendered, &updates, "package.json of"));
        }
    }

    let lockfiles = project
        .targets
        .first()
        .and_then(|t| copa_plugin_sdk::attribute(t, attr::LOCKFILES))
        .unwrap_or_default();
    for path in lockfiles.lines().filter(|l| !l.is_empty()) {
        let bytes = fs::read_file(path)?;
        let (mut lock, layout) = json::parse(&bytes).map_err(|e| format!("{path}: {e}"))?;
        update_lockfile(&mut lock, &project.dir, changes, &direct)?;
        steps.push(write(
            path,
            json::render(&lock, &layout),
            &updates,
            "lockfile of",
        ));
    }
    Ok(steps)
}

/// `overrides` entries that keep the tree valid for `npm ls` and `npm ci` when a new version
/// leaves the declared range of packages that use it: name -> every version of that package
/// the patched tree holds (so that its other copies stay valid too).
fn overrides(
    project: &Project,
    overlay: &Overlay,
    changes: &[Change],
    manifest: &Value,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for change in changes.iter().filter(|c| !c.effect.dependents.is_empty()) {
        let name = dir_name(&change.effect.dir).to_string();
        let is_direct = DEPENDENCY_FIELDS
            .iter()
            .any(|f| manifest.get(*f).and_then(|d| d.get(&name)).is_some());
        // npm refuses an override that differs from a direct dependency's spec (EOVERRIDE).
        if is_direct {
            continue;
        }
        if manifest
            .get("overrides")
            .and_then(|o| o.get(&name))
            .is_some_and(|existing| !existing.is_string())
        {
            copa_plugin_sdk::log::warn(&format!(
                "{}: the overrides for {name} are nested; left as they are",
                project.dir
            ));
            continue;
        }
        let mut versions: Vec<NpmVersion> = project
            .locations()
            .iter()
            .filter(|l| dir_name(l) == name)
            .filter_map(|l| overlay.version_at(l)?.parse().ok())
            .chain(
                changes
                    .iter()
                    .flat_map(|c| &c.effect.added)
                    .filter(|a| a.name == name)
                    .filter_map(|a| a.version.version.parse().ok()),
            )
            .collect();
        versions.sort();
        versions.dedup();
        let spec = versions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" || ");
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, spec));
        }
    }
    out
}

fn write(path: &str, contents: Vec<u8>, updates: &[u32], what: &str) -> Step {
    let stat = fs::stat(path);
    Step::Write(WriteStep {
        description: format!("{what} {}", parent(path)),
        path: path.to_string(),
        contents: Some(contents),
        mode: stat.as_ref().map_or(0o644, |s| s.mode & 0o7777),
        uid: stat.as_ref().map_or(0, |s| s.uid),
        gid: stat.as_ref().map_or(0, |s| s.gid),
        updates: updates.to_vec(),
    })
}

/// The lockfile key of a package directory: its path relative to the project.
fn lock_key(project_dir: &str, dir: &str) -> String {
    dir.strip_prefix(project_dir)
        .unwrap_or(dir)
        .trim_start_matches('/')
        .to_string()
}

/// The dependency maps of a version as a lockfile entry has them: `dependencies` without the
/// optional ones, which go in `optionalDependencies`.
fn dependency_maps(version: &PackageVersion) -> (Map<String, Value>, Map<String, Value>) {
    let optional: Map<String, Value> = version
        .optional_dependencies
        .iter()
        .map(|(name, range)| (name.clone(), Value::String(range.clone())))
        .collect();
    let required = version
        .dependencies
        .iter()
        .filter(|(name, _)| !optional.contains_key(name))
        .map(|(name, range)| (name.clone(), Value::String(range.clone())))
        .collect();
    (required, optional)
}

fn set_or_remove(entry: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(value) => {
            entry.insert(key.to_string(), value);
        }
        None => {
            entry.shift_remove(key);
        }
    }
}

/// A `packages` entry (lockfile v2/v3) describing `version`.
fn set_package_entry(
    entry: &mut Map<String, Value>,
    name: &str,
    version: &PackageVersion,
) -> Result<(), String> {
    let (required, optional) = dependency_maps(version);
    entry.insert("version".into(), json!(version.version));
    if let Some(tarball) = &version.tarball {
        entry.insert("resolved".into(), json!(tarball));
    }
    entry.insert("integrity".into(), json!(integrity(name, version)?));
    set_or_remove(
        entry,
        "dependencies",
        (!required.is_empty()).then(|| Value::Object(required)),
    );
    set_or_remove(
        entry,
        "optionalDependencies",
        (!optional.is_empty()).then(|| Value::Object(optional)),
    );
    let engines: Map<String, Value> = version
        .engines
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    set_or_remove(
        entry,
        "engines",
        (!engines.is_empty()).then(|| Value::Object(engines)),
    );
    set_or_remove(
        entry,
        "hasInstallScript",
        version.has_install_script.then(|| json!(true)),
    );
    let bin = version.bin.clone().map(|bin| match bin {
        // npm records a string `bin` under the package's unscoped name.
        Value::String(path) => json!({ name.rsplit('/').next().unwrap_or(name): path }),
        other => other,
    });
    set_or_remove(entry, "bin", bin);
    Ok(())
}

/// A lockfile v1 `dependencies` entry's fields for `version`.
fn set_legacy_entry(
    entry: &mut Map<String, Value>,
    name: &str,
    version: &PackageVersion,
) -> Result<(), String> {
    entry.insert("version".into(), json!(version.version));
    if let Some(tarball) = &version.tarball {
        entry.insert("resolved".into(), json!(tarball));
    }
    entry.insert("integrity".into(), json!(integrity(name, version)?));
    let requires: Map<String, Value> = version
        .dependencies
        .iter()
        .map(|(n, r)| (n.clone(), json!(r)))
        .collect();
    set_or_remove(
        entry,
        "requires",
        (!requires.is_empty()).then(|| Value::Object(requires)),
    );
    Ok(())
}

/// Flags an added package inherits from the package that needs it.
const INHERITED_FLAGS: &[&str] = &["dev", "optional", "devOptional", "peer"];

fn update_lockfile(
    lock: &mut Value,
    project_dir: &str,
    changes: &[Change],
    direct: &[(String, String, String)],
) -> Result<(), String> {
    let legacy_tree = lock
        .get("lockfileVersion")
        .and_then(Value::as_u64)
        .is_none_or(|v| v < 3);
    if let Some(packages) = lock.get_mut("packages").and_then(Value::as_object_mut) {
        for change in changes {
            let key = lock_key(project_dir, &change.effect.dir);
            let name = dir_name(&change.effect.dir).to_string();
            let entry = packages
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let entry = entry
                .as_object_mut()
                .ok_or("a lockfile entry is not an object")?;
            set_package_entry(entry, &name, &change.effect.version)?;
            let flags: Vec<(String, Value)> = INHERITED_FLAGS
                .iter()
                .filter_map(|f| Some((f.to_string(), entry.get(*f)?.clone())))
                .collect();
            for added in &change.effect.added {
                let mut entry = Map::new();
                set_package_entry(&mut entry, &added.name, &added.version)?;
                entry.extend(flags.iter().cloned());
                insert_sorted(
                    packages,
                    lock_key(project_dir, &added.dir),
                    Value::Object(entry),
                );
            }
        }
        if let Some(root) = packages.get_mut("").and_then(Value::as_object_mut) {
            for (field, name, spec) in direct {
                if let Some(slot) = root.get_mut(field).and_then(|d| d.get_mut(name)) {
                    *slot = json!(spec);
                }
            }
        }
    }
    if !legacy_tree {
        return Ok(());
    }
    if let Some(tree) = lock.get_mut("dependencies").and_then(Value::as_object_mut) {
        for change in changes {
            let key = lock_key(project_dir, &change.effect.dir);
            let name = dir_name(&change.effect.dir).to_string();
            let Some(entry) = legacy_entry(tree, &key) else {
                continue;
            };
            set_legacy_entry(entry, &name, &change.effect.version)?;
            let dev = entry.get("dev") == Some(&json!(true));
            for added in &change.effect.added {
                let mut child = Map::new();
                set_legacy_entry(&mut child, &added.name, &added.version)?;
                if dev {
                    child.insert("dev".into(), json!(true));
                }
                // v1 nests each package in the entry of the package whose node_modules holds it.
                let parent_key = lock_key(project_dir, parent_package(&added.dir));
                if let Some(parent) = legacy_entry(tree, &parent_key) {
                    let children = parent
                        .entry("dependencies")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Some(children) = children.as_object_mut() {
                        children.insert(dir_name(&added.dir).to_string(), Value::Object(child));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The package directory that holds the `node_modules` that `dir` is in.
fn parent_package(dir: &str) -> &str {
    dir.rsplit_once("/node_modules/").map_or(dir, |(p, _)| p)
}

/// The lockfile v1 entry at `key` ("node_modules/a/node_modules/@s/b": a, then its @s/b).
fn legacy_entry<'a>(
    tree: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let names: Vec<&str> = key
        .strip_prefix("node_modules/")?
        .split("/node_modules/")
        .collect();
    let (first, rest) = names.split_first()?;
    let mut entry = tree.get_mut(*first)?.as_object_mut()?;
    for name in rest {
        entry = entry
            .get_mut("dependencies")?
            .as_object_mut()?
            .get_mut(*name)?
            .as_object_mut()?;
    }
    Some(entry)
}

/// Inserts `key` before the first later key, as npm keeps `packages` sorted by path.
fn insert_sorted(map: &mut Map<String, Value>, key: String, value: Value) {
    if map.contains_key(&key) {
        map.insert(key, value);
        return;
    }
    let position = map
        .keys()
        .position(|k| !k.is_empty() && k.as_str() > key.as_str())
        .unwrap_or(map.len());
    map.shift_insert(position, key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restyles_specs() {
        assert_eq!(restyle("^4.17.15", "4.17.21"), "^4.17.21");
        assert_eq!(restyle("4.17.15", "4.17.21"), "4.17.21");
        assert_eq!(restyle("~1.2.0", "1.2.6"), "~1.2.6");
        assert_eq!(restyle(">=1.2.0", "1.2.6"), ">=1.2.6");
        assert_eq!(restyle("1.x", "1.2.6"), "1.x");
        assert_eq!(restyle("*", "1.2.6"), "*");
        assert_eq!(restyle("1.2.0 - 1.2.5", "1.2.6"), "^1.2.6");
    }

    #[test]
    fn lock_keys_and_parents() {
        assert_eq!(
            lock_key("/app", "/app/node_modules/a/node_modules/@s/b"),
            "node_modules/a/node_modules/@s/b"
        );
        assert_eq!(
            lock_key("/usr/local/lib", "/usr/local/lib/node_modules/semver"),
            "node_modules/semver"
        );
        assert_eq!(
            parent_package("/app/node_modules/a/node_modules/b"),
            "/app/node_modules/a"
        );
        assert_eq!(
            tarball_root(&["package/a".into(), "package/b/c".into()]).unwrap(),
            "package/"
        );
        assert!(tarball_root(&["package/a".into(), "other/b".into()]).is_err());
    }

    #[test]
    fn inserts_in_path_order() {
        let mut map = Map::new();
        for key in ["", "node_modules/a", "node_modules/c"] {
            map.insert(key.into(), json!({}));
        }
        insert_sorted(&mut map, "node_modules/a/node_modules/b".into(), json!(1));
        insert_sorted(&mut map, "node_modules/d".into(), json!(2));
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "",
                "node_modules/a",
                "node_modules/a/node_modules/b",
                "node_modules/c",
                "node_modules/d"
            ]
        );
    }

    #[test]
    fn legacy_entries_nest() {
        let mut tree = json!({"a": {"version": "1", "dependencies": {"@s/b": {"version": "2"}}}});
        let tree = tree.as_object_mut().unwrap();
        assert_eq!(
            legacy_entry(tree, "node_modules/a/node_modules/@s/b").unwrap()["version"],
            "2"
        );
        assert!(legacy_entry(tree, "node_modules/x").is_none());
    }
}
