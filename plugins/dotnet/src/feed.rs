//! The NuGet feeds as this plugin reads them over `http`: the URLs of the run's policy (the
//! user's `--index nuget=URL`s, else nuget.org), the package source mapping of its option
//! `source-mapping`, and each package's versions and each .nupkg fetched (and unpacked) once
//! per call. The host calls every export in a fresh instance, so what is kept here lives for one
//! `plan` or `emit-commands` call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use copa_plugin_sdk::archive::Artifact;
use copa_plugin_sdk::nuget::NuGetVersion;
use copa_plugin_sdk::nuget_feed::{self, SourceMapping, Version};
use copa_plugin_sdk::{Policy, http, index_urls, log, options};

/// The plugin's option that carries the package source mapping (`PATTERN=SOURCE-URL`).
pub const MAPPING_OPTION: &str = "source-mapping";

#[derive(Default)]
struct Feeds {
    urls: Vec<String>,
    mapping: SourceMapping,
    /// By lower-case id.
    versions: HashMap<String, Rc<Vec<Version>>>,
    /// By .nupkg URL.
    packages: HashMap<String, Rc<Artifact>>,
}

thread_local! {
    static FEEDS: RefCell<Feeds> = RefCell::default();
}

/// Reads the feeds `policy` names from now on, under its source mapping.
pub fn use_policy(policy: &Policy) -> Result<(), String> {
    let mapping = SourceMapping::from_options(options(policy, MAPPING_OPTION))?;
    FEEDS.with_borrow_mut(|feeds| {
        *feeds = Feeds {
            urls: index_urls(policy, nuget_feed::ECOSYSTEM)
                .map(String::from)
                .collect(),
            mapping,
            ..Feeds::default()
        }
    });
    Ok(())
}

/// Every version of `id` on the feeds the mapping allows for it (none for an unknown package).
pub fn versions(id: &str) -> Result<Rc<Vec<Version>>, String> {
    let key = id.to_ascii_lowercase();
    if let Some(known) = FEEDS.with_borrow(|f| f.versions.get(&key).cloned()) {
        return Ok(known);
    }
    let sources: Vec<String> = FEEDS.with_borrow(|f| {
        f.urls
            .iter()
            .filter(|url| f.mapping.allows(id, url))
            .cloned()
            .collect()
    });
    if sources.is_empty() {
        return Err(format!(
            "the package source mapping lets no configured feed serve {id}"
        ));
    }
    let listing =
        nuget_feed::versions(sources.iter().map(String::as_str), id, nuget_feed::http_get)?;
    for warning in &listing.warnings {
        log::warn(warning);
    }
    let versions = Rc::new(listing.versions);
    FEEDS.with_borrow_mut(|f| f.versions.insert(key, Rc::clone(&versions)));
    Ok(versions)
}

/// The .nupkg of `id` `version`, fetched from the first feed that has it and unpacked.
pub fn package(id: &str, version: &str) -> Result<Rc<Artifact>, String> {
    let wanted = version.parse::<NuGetVersion>().ok();
    let url = versions(id)?
        .iter()
        .find(|v| wanted.is_some() && v.version.parse::<NuGetVersion>().ok() == wanted)
        .map(|v| v.nupkg_url.clone())
        .ok_or_else(|| format!("{id} {version} is not on the feed"))?;
    if let Some(known) = FEEDS.with_borrow(|f| f.packages.get(&url).cloned()) {
        return Ok(known);
    }
    let response = http::get(&url, &[], nuget_feed::MAX_NUPKG_BYTES)
        .map_err(|e| format!("fetching {url}: {e}"))?;
    if response.status != 200 {
        return Err(format!("fetching {url}: HTTP {}", response.status));
    }
    // No v3 resource publishes a digest of the .nupkg: the download step names the SHA-256 of
    // these bytes, so what lands is what was read here.
    let artifact = Rc::new(Artifact::from_bytes(&url, &response.body, None)?);
    FEEDS.with_borrow_mut(|f| f.packages.insert(url, Rc::clone(&artifact)));
    Ok(artifact)
}
