//! The npm registry as this plugin reads it: the URLs of the run's policy, and each packument and
//! tarball fetched (and parsed) once per call. The host calls every export in a fresh instance,
//! so what is kept here lives for one `plan` or `emit-commands` call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use copa_plugin_sdk::archive::Artifact;
use copa_plugin_sdk::npm_registry::{self, Version};
use copa_plugin_sdk::{Policy, index_urls};

#[derive(Default)]
struct Registry {
    urls: Vec<String>,
    versions: HashMap<String, Rc<Vec<Version>>>,
    tarballs: HashMap<(String, String), Rc<Artifact>>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::default();
}

/// Reads the registries `policy` names from now on (the user's `--index npm=URL`s, else the
/// public registry).
pub fn use_policy(policy: &Policy) {
    REGISTRY.with_borrow_mut(|registry| {
        *registry = Registry {
            urls: index_urls(policy, npm_registry::ECOSYSTEM)
                .map(String::from)
                .collect(),
            ..Registry::default()
        }
    });
}

/// Every version of `name` on the registry (none for an unknown package).
pub fn versions(name: &str) -> Result<Rc<Vec<Version>>, String> {
    if let Some(known) = REGISTRY.with_borrow(|r| r.versions.get(name).cloned()) {
        return Ok(known);
    }
    let urls = REGISTRY.with_borrow(|r| r.urls.clone());
    let versions = Rc::new(npm_registry::versions(
        urls.iter().map(String::as_str),
        name,
    )?);
    REGISTRY.with_borrow_mut(|r| r.versions.insert(name.to_string(), Rc::clone(&versions)));
    Ok(versions)
}

/// The registry's document of `name@version`.
pub fn version(name: &str, version: &str) -> Result<Version, String> {
    versions(name)?
        .iter()
        .find(|v| v.version == version)
        .cloned()
        .ok_or_else(|| format!("{name}@{version} is not on the registry"))
}

/// The tarball of `name@version`, checked against the registry's digest.
pub fn tarball(name: &str, version: &Version) -> Result<Rc<Artifact>, String> {
    let key = (name.to_string(), version.version.clone());
    if let Some(known) = REGISTRY.with_borrow(|r| r.tarballs.get(&key).cloned()) {
        return Ok(known);
    }
    let artifact = Rc::new(npm_registry::tarball(name, version)?);
    REGISTRY.with_borrow_mut(|r| r.tarballs.insert(key, Rc::clone(&artifact)));
    Ok(artifact)
}
