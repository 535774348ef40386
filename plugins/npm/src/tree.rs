//! Installed npm trees: projects (a package.json with node_modules beside it), global roots, and
//! every `node_modules` directory inside them.
//!
//! A target is one `node_modules` directory and its packages are the packages directly in it,
//! so a name is unique within a target even when a tree holds several copies of a package
//! (`/app/node_modules/qs` and `/app/node_modules/body-parser/node_modules/qs`): the host
//! verifies an update by target and name, and each copy is patched on its own.

use copa_plugin_sdk::{InstalledPackage, Target, fs};
use serde_json::Value;

use crate::attr;
use crate::node;

/// Global package roots (`npm root -g` of a /usr/local and a /usr prefix).
pub const GLOBAL_ROOTS: &[&str] = &["/usr/local/lib/node_modules", "/usr/lib/node_modules"];

/// Not descended into when looking for projects: installed trees (searched on their own) and
/// pseudo filesystems.
const PRUNE: &[&str] = &["node_modules", "proc", "sys", "dev", ".git"];

/// Lockfiles npm keeps in sync with node_modules, relative to the project (shrinkwrap first: npm
/// prefers it when both exist).
pub const LOCKFILES: &[&str] = &[
    "npm-shrinkwrap.json",
    "package-lock.json",
    "node_modules/.package-lock.json",
];

pub fn detect() -> Vec<Target> {
    let node_version = node::version();
    match &node_version {
        Some(v) => copa_plugin_sdk::log::debug(&format!("Node.js {v} in the image")),
        None => copa_plugin_sdk::log::info(
            "no Node.js version found in the image; engines.node is not checked",
        ),
    }
    let mut targets = Vec::new();
    for manifest in fs::find("/", "package.json", PRUNE) {
        let dir = parent(&manifest);
        let modules = join(dir, "node_modules");
        if fs::is_dir(&modules) && !GLOBAL_ROOTS.iter().any(|g| modules.starts_with(g)) {
            project(dir, &node_version, &mut targets);
        }
    }
    for root in GLOBAL_ROOTS {
        if fs::is_dir(root) {
            // The prefix's lib directory plays the project: lockfile keys are relative to it
            // ("node_modules/semver"), as in the hidden lockfile npm keeps for global installs.
            let hidden = join(root, ".package-lock.json");
            let attributes = vec![
                (attr::PROJECT.into(), parent(root).to_string()),
                (attr::GLOBAL.into(), "1".into()),
                (
                    attr::LOCKFILES.into(),
                    if fs::exists(&hidden) {
                        hidden
                    } else {
                        String::new()
                    },
                ),
            ];
            walk(
                root,
                "npm-global",
                &attributes,
                None,
                &node_version,
                &mut targets,
            );
        }
    }
    targets
}

fn project(dir: &str, node_version: &Option<String>, targets: &mut Vec<Target>) {
    let manifest_path = join(dir, "package.json");
    let manifest: Option<Value> = fs::read_file(&manifest_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let reason = match &manifest {
        None => Some(format!("{manifest_path} is not valid JSON")),
        Some(manifest) => unsupported_setup(dir, manifest),
    };
    let lockfiles: Vec<String> = LOCKFILES
        .iter()
        .map(|l| join(dir, l))
        .filter(|l| fs::exists(l))
        .collect();
    let attributes = vec![
        (attr::PROJECT.into(), dir.to_string()),
        (attr::GLOBAL.into(), "0".into()),
        (attr::LOCKFILES.into(), lockfiles.join("\n")),
    ];
    walk(
        &join(dir, "node_modules"),
        "npm-project",
        &attributes,
        reason.as_deref(),
        node_version,
        targets,
    );
}

/// Why a project cannot be patched by rewriting npm's files, when it cannot.
fn unsupported_setup(dir: &str, manifest: &Value) -> Option<String> {
    let present = |name: &str| fs::exists(&join(dir, name));
    if present("pnpm-lock.yaml") || present("node_modules/.pnpm") {
        return Some("pnpm projects are not supported yet (pnpm-lock.yaml)".into());
    }
    if present(".pnp.cjs") || present(".pnp.js") {
        return Some("Yarn Plug'n'Play projects are not supported (.pnp.cjs)".into());
    }
    if present("yarn.lock") {
        return Some("yarn projects are not supported yet (yarn.lock)".into());
    }
    if manifest.get("workspaces").is_some() {
        return Some("npm workspaces are not supported yet".into());
    }
    let patched = ["dependencies", "devDependencies", "optionalDependencies"]
        .iter()
        .filter_map(|field| manifest.get(field)?.as_object())
        .flatten()
        .find(|(_, spec)| spec.as_str().is_some_and(|s| s.starts_with("patch:")));
    if let Some((name, _)) = patched {
        return Some(format!(
            "dependency {name} uses the patch: protocol, which is not supported"
        ));
    }
    None
}

/// One target for `modules` and, recursively, one for each nested `node_modules`.
fn walk(
    modules: &str,
    kind: &str,
    attributes: &[(String, String)],
    reason: Option<&str>,
    node_version: &Option<String>,
    targets: &mut Vec<Target>,
) {
    let packages = packages_in(modules);
    let nested: Vec<String> = packages
        .iter()
        .map(|p| join(&p.location, "node_modules"))
        .filter(|m| fs::is_dir(m))
        .collect();
    if !packages.is_empty() {
        targets.push(Target {
            id: modules.to_string(),
            kind: kind.to_string(),
            runtime_version: node_version.clone(),
            packages,
            unpatchable_reason: reason.map(String::from),
            attributes: attributes.to_vec(),
        });
    }
    for modules in nested {
        walk(
            &modules,
            "npm-nested",
            attributes,
            reason,
            node_version,
            targets,
        );
    }
}

/// The packages directly in a `node_modules` directory (`@scope/name` included). Linked
/// packages (symlinks: `npm link`, workspaces) are not copies this plugin can replace.
pub fn packages_in(modules: &str) -> Vec<InstalledPackage> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(modules).unwrap_or_default() {
        if entry.starts_with('.') {
            continue;
        }
        let path = join(modules, &entry);
        if entry.starts_with('@') {
            for scoped in fs::read_dir(&path).unwrap_or_default() {
                if !scoped.starts_with('.') {
                    dirs.push(join(&path, &scoped));
                }
            }
        } else {
            dirs.push(path);
        }
    }
    dirs.into_iter()
        .filter(|dir| matches!(fs::stat(dir), Some(s) if s.kind == fs::EntryKind::Directory))
        .filter_map(|location| {
            let manifest = read_manifest(&location)?;
            let version = manifest.get("version")?.as_str()?.to_string();
            let name = manifest
                .get("name")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| dir_name(&location).to_string());
            Some(InstalledPackage {
                name,
                version,
                location,
            })
        })
        .collect()
}

/// The package.json of the package at `dir`, parsed.
pub fn read_manifest(dir: &str) -> Option<Value> {
    let bytes = fs::read_file(&join(dir, "package.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The name a package is required by: its directory below node_modules (`qs`, `@scope/x`).
pub fn dir_name(location: &str) -> &str {
    match location.rsplit_once("/node_modules/") {
        Some((_, name)) => name,
        None => location.rsplit('/').next().unwrap_or(location),
    }
}

/// The directory holding `path`.
pub fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => "/",
    }
}

pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(dir_name("/app/node_modules/qs"), "qs");
        assert_eq!(dir_name("/app/node_modules/a/node_modules/@s/b"), "@s/b");
        assert_eq!(parent("/app/package.json"), "/app");
        assert_eq!(parent("/package.json"), "/");
        assert_eq!(join("/", "node_modules"), "/node_modules");
        assert_eq!(join("/app", "node_modules"), "/app/node_modules");
    }
}
