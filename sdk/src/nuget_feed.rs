//! NuGet feeds as the dotnet CLI reads them: v3 servers (service index, flat container,
//! registration) and folder feeds, and package source mapping.
//!
//! A source is the URL of a v3 service index (`https://api.nuget.org/v3/index.json`) or a
//! `file://` URL of a folder of `.nupkg` files (flat, `Id.Version.nupkg`, or hierarchical,
//! `id/version/id.version.nupkg`, as `nuget add` lays them out), which the host's `http`
//! answers inside a folder the user configured: a directory as its entry names one a line,
//! directories with a trailing `/`. The versions of a package are the union over the sources;
//! each version's .nupkg comes from the first source that has it, NuGet's own rule.
//!
//! The flat container (`PackageBaseAddress/3.0.0`) lists versions and serves the .nupkg; the
//! registration resource, when the feed has one, adds what only it knows: unlisted versions,
//! deprecation and publish time. It is metadata: a feed whose registration fails still answers,
//! with a warning. No v3 resource publishes a digest of the .nupkg itself.
//!
//! Everything here asks through a `get` closure (a URL's status and body), so that a plugin
//! (over [`crate::http`], see [`http_get`]) and the host's own client (for plugins of older
//! contracts) read a feed exactly the same way.

use serde::Deserialize;

use crate::nuget::{NuGetVersion, is_valid_id};

/// The index id the dotnet plugin declares and users name in `--index nuget=URL`.
pub const ECOSYSTEM: &str = "nuget";

/// The public gallery.
pub const DEFAULT_SOURCE: &str = "https://api.nuget.org/v3/index.json";

/// Registration indexes of popular packages run to several MB; this is also the most the
/// host's `http` returns.
pub const MAX_JSON_BYTES: u64 = 64 * 1024 * 1024;

/// The largest .nupkg read over `http` (the host's cap).
pub const MAX_NUPKG_BYTES: u64 = 64 * 1024 * 1024;

/// A folder listing is a line per entry; a directory of a million names is no feed.
pub const MAX_LISTING_BYTES: u64 = 16 * 1024 * 1024;

/// The most registration pages one package's lookup fetches: nuget.org's largest packages have
/// a few dozen; a feed naming more is not read further (the versions still stand).
pub const MAX_REGISTRATION_PAGES: usize = 256;

/// Registration resource types, newest first; 3.6.0 is the one that lists SemVer 2 packages.
const REGISTRATION_TYPES: &[&str] = &[
    "RegistrationsBaseUrl/3.6.0",
    "RegistrationsBaseUrl/3.4.0",
    "RegistrationsBaseUrl/3.0.0-rc",
    "RegistrationsBaseUrl/3.0.0-beta",
    "RegistrationsBaseUrl",
];
const PACKAGE_BASE_TYPE: &str = "PackageBaseAddress/3.0.0";

/// A URL's status and body, or why there is none.
pub type Answer = Result<(u16, Vec<u8>), String>;

/// One version of a package on the feeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// As the feed spells it (the flat container's lower case; a folder's normalized form).
    pub version: String,
    /// False for a version the feed unlisted: restorable by exact pin, never offered.
    pub listed: bool,
    /// The deprecation message, when the feed deprecated the version.
    pub deprecated: Option<String>,
    /// RFC 3339.
    pub published: Option<String>,
    /// Where the .nupkg is: on the first source that has the version.
    pub nupkg_url: String,
}

/// What a lookup found, and what it could not read but did without (a registration).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub versions: Vec<Version>,
    pub warnings: Vec<String>,
}

/// The `get` of a plugin: the host's `http`, asking for JSON, at most `MAX_JSON_BYTES`.
pub fn http_get(url: &str) -> Answer {
    let response = crate::http::get(url, &[("accept", "application/json")], MAX_JSON_BYTES)
        .map_err(|e| e.to_string())?;
    Ok((response.status, response.body))
}

/// Every version of `id` on `sources` (service index URLs and `file://` folder URLs, in the
/// order NuGet tries them): the union, each version from the first source that has it. The id
/// is checked before any request, since it becomes part of URLs.
pub fn versions<'a>(
    sources: impl IntoIterator<Item = &'a str>,
    id: &str,
    mut get: impl FnMut(&str) -> Answer,
) -> Result<Listing, String> {
    if !is_valid_id(id) {
        return Err(format!("invalid NuGet package id {id:?}"));
    }
    let mut listing = Listing::default();
    let mut seen: Vec<NuGetVersion> = Vec::new();
    for source in sources {
        let found = if source.starts_with("file://") {
            folder_versions(source, id, &mut get)?
        } else {
            server_versions(source, id, &mut get, &mut listing.warnings)?
        };
        for version in found {
            // Not a NuGet version: nothing could compare it, so it is left out.
            let Ok(parsed) = version.version.parse::<NuGetVersion>() else {
                continue;
            };
            if !seen.contains(&parsed) {
                seen.push(parsed);
                listing.versions.push(version);
            }
        }
    }
    Ok(listing)
}

/// A server's resources, from its service index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resources {
    /// The flat container, with a trailing slash.
    pub package_base: String,
    /// The registration base, with a trailing slash.
    pub registrations: Option<String>,
}

/// What the service index at `url` answered (`status`, `body`) says.
pub fn read_service_index(url: &str, status: u16, body: &[u8]) -> Result<Resources, String> {
    let index: ServiceIndex = read_json(url, status, body)?
        .ok_or_else(|| format!("fetching {url}: HTTP 404 (no NuGet service index there)"))?;
    let find = |kind: &str| {
        index
            .resources
            .iter()
            .find(|r| r.kind.types().any(|t| t == kind))
            .map(|r| format!("{}/", r.id.trim_end_matches('/')))
    };
    let package_base = find(PACKAGE_BASE_TYPE)
        .ok_or_else(|| format!("{url}: the service index has no {PACKAGE_BASE_TYPE} resource"))?;
    let registrations = REGISTRATION_TYPES.iter().find_map(|kind| find(kind));
    Ok(Resources {
        package_base,
        registrations,
    })
}

fn server_versions(
    service_index: &str,
    id: &str,
    get: &mut impl FnMut(&str) -> Answer,
    warnings: &mut Vec<String>,
) -> Result<Vec<Version>, String> {
    let (status, body) = fetch(service_index, get)?;
    let resources = read_service_index(service_index, status, &body)?;
    let lower = id.to_ascii_lowercase();
    let listing_url = format!("{}{lower}/index.json", resources.package_base);
    let (status, body) = fetch(&listing_url, get)?;
    let Some(flat) = read_json::<FlatContainerIndex>(&listing_url, status, &body)? else {
        return Ok(Vec::new());
    };
    let mut versions: Vec<Version> = flat
        .versions
        .into_iter()
        .map(|version| {
            let version = version.to_ascii_lowercase();
            Version {
                nupkg_url: format!(
                    "{}{lower}/{version}/{lower}.{version}.nupkg",
                    resources.package_base
                ),
                version,
                listed: true,
                deprecated: None,
                published: None,
            }
        })
        .collect();
    if let Some(base) = &resources.registrations {
        // Metadata only: without it the versions still stand.
        match registration(base, &lower, get) {
            Ok(entries) => apply_registration(&mut versions, &entries),
            Err(e) => warnings.push(format!("{id}: registration: {e}")),
        }
    }
    Ok(versions)
}

/// GETs `url`, naming it in the error.
fn fetch(url: &str, get: &mut impl FnMut(&str) -> Answer) -> Answer {
    get(url).map_err(|e| format!("fetching {url}: {e}"))
}

/// The JSON of a 2xx answer; `None` for 404; an error naming `url` for any other status.
fn read_json<T: for<'de> Deserialize<'de>>(
    url: &str,
    status: u16,
    body: &[u8],
) -> Result<Option<T>, String> {
    match status {
        200..=299 => serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| format!("parsing JSON from {url}: {e}")),
        404 => Ok(None),
        401 | 403 => Err(format!(
            "fetching {url}: HTTP {status}; the feed wants credentials for its origin, and the \
             credentials were refused or none are configured (--index-credential ORIGIN=ENV, \
             NuGetPackageSourceCredentials_NAME with --nuget-source NAME=URL, or the \
             nuget.config's packageSourceCredentials)"
        )),
        status => Err(format!("fetching {url}: HTTP {status}")),
    }
}

fn registration(
    base: &str,
    lower_id: &str,
    get: &mut impl FnMut(&str) -> Answer,
) -> Result<Vec<CatalogEntry>, String> {
    let url = format!("{base}{lower_id}/index.json");
    let (status, body) = fetch(&url, get)?;
    let Some(index) = read_json::<RegistrationIndex>(&url, status, &body)? else {
        return Ok(Vec::new());
    };
    if index.items.len() > MAX_REGISTRATION_PAGES {
        return Err(format!(
            "{url}: {} pages, more than the {MAX_REGISTRATION_PAGES} read",
            index.items.len()
        ));
    }
    let mut entries = Vec::new();
    for page in index.items {
        // Large packages leave their pages out of the index; each is then one more request.
        let leaves = match page.items {
            Some(leaves) => leaves,
            None => {
                let (status, body) = fetch(&page.id, get)?;
                read_json::<RegistrationPage>(&page.id, status, &body)?
                    .ok_or_else(|| format!("fetching {}: HTTP 404", page.id))?
                    .items
            }
        };
        entries.extend(leaves.into_iter().map(|leaf| leaf.catalog_entry));
    }
    Ok(entries)
}

fn apply_registration(versions: &mut [Version], entries: &[CatalogEntry]) {
    for entry in entries {
        let Ok(entry_version) = entry.version.parse::<NuGetVersion>() else {
            continue;
        };
        let Some(version) = versions
            .iter_mut()
            .find(|v| v.version.parse::<NuGetVersion>().ok().as_ref() == Some(&entry_version))
        else {
            continue;
        };
        version.listed = entry.listed != Some(false);
        version.deprecated = entry.deprecation.as_ref().map(|d| {
            d.message
                .clone()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| {
                    if d.reasons.is_empty() {
                        "deprecated".to_string()
                    } else {
                        format!("deprecated: {}", d.reasons.join(", "))
                    }
                })
        });
        // nuget.org dates unlisted packages 1900-01-01: that says nothing about publication.
        version.published = entry.published.clone().filter(|p| !p.starts_with("1900-"));
    }
}

/// The entries of the folder at `url` (a `file://` URL ending in `/`): (name, is a directory),
/// sorted. A folder that is not there is an error: the user configured it.
fn folder_entries(
    url: &str,
    get: &mut impl FnMut(&str) -> Answer,
) -> Result<Vec<(String, bool)>, String> {
    let (status, body) = fetch(url, get)?;
    if status != 200 {
        return Err(format!("reading folder feed {url}: status {status}"));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| format!("reading folder feed {url}: the listing is not UTF-8"))?;
    let mut entries: Vec<(String, bool)> = text
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| match line.strip_suffix('/') {
            Some(dir) => (dir.to_string(), true),
            None => (line.to_string(), false),
        })
        // A name that is not one path segment is no entry of this folder.
        .filter(|(name, _)| !name.contains('/') && name != "." && name != "..")
        .collect();
    entries.sort();
    Ok(entries)
}

/// Versions of `id` in the folder feed at `source`: `Id.Version.nupkg` files at the top, and
/// `id/version/id.version.nupkg` below (names compared without case, as NuGet does). Oldest
/// first; a flat file wins over a folder copy of the same version.
fn folder_versions(
    source: &str,
    id: &str,
    get: &mut impl FnMut(&str) -> Answer,
) -> Result<Vec<Version>, String> {
    let root = format!("{}/", source.trim_end_matches('/'));
    let lower_id = id.to_ascii_lowercase();
    let prefix = format!("{lower_id}.");
    let mut found: Vec<(NuGetVersion, String)> = Vec::new();
    for (name, is_dir) in folder_entries(&root, get)? {
        let lower = name.to_ascii_lowercase();
        if !is_dir {
            // "My.Lib.1.0.0.nupkg" is also "My" + ".Lib.1.0.0"; only a whole version counts.
            if let Some(version) = lower
                .strip_suffix(".nupkg")
                .and_then(|stem| stem.strip_prefix(&prefix))
                .and_then(|v| v.parse::<NuGetVersion>().ok())
            {
                found.push((version, format!("{root}{}", encode_segment(&name))));
            }
        } else if lower == lower_id {
            let dir = format!("{root}{}/", encode_segment(&name));
            found.extend(hierarchical_versions(&dir, &prefix, get)?);
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut versions: Vec<Version> = Vec::new();
    for (version, url) in found {
        let text = version.to_string();
        if versions.iter().any(|v| v.version == text) {
            continue;
        }
        versions.push(Version {
            version: text,
            listed: true,
            deprecated: None,
            published: None,
            nupkg_url: url,
        });
    }
    Ok(versions)
}

/// The versions below a hierarchical feed's package folder `dir`, each with its .nupkg.
fn hierarchical_versions(
    dir: &str,
    prefix: &str,
    get: &mut impl FnMut(&str) -> Answer,
) -> Result<Vec<(NuGetVersion, String)>, String> {
    let mut found = Vec::new();
    for (name, is_dir) in folder_entries(dir, get)? {
        let Some(version) = is_dir.then(|| name.parse::<NuGetVersion>().ok()).flatten() else {
            continue;
        };
        let version_dir = format!("{dir}{}/", encode_segment(&name));
        let wanted = format!("{prefix}{}.nupkg", version.to_lowercase_string());
        let nupkg = folder_entries(&version_dir, get)?
            .into_iter()
            .find(|(file, is_dir)| !is_dir && file.eq_ignore_ascii_case(&wanted));
        if let Some((file, _)) = nupkg {
            found.push((version, format!("{version_dir}{}", encode_segment(&file))));
        }
    }
    Ok(found)
}

/// A path segment percent-encoded for a `file://` URL.
fn encode_segment(name: &str) -> String {
    let mut out = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~+@,=".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A `file://` URL of an absolute path, percent-encoding what a URL path cannot hold: how a
/// folder feed becomes a source.
pub fn folder_url(path: &str) -> String {
    let segments: Vec<String> = path
        .trim_end_matches('/')
        .split('/')
        .map(encode_segment)
        .collect();
    format!("file://{}/", segments.join("/"))
}

/// Package source mapping: which sources may serve which package ids, as (pattern, source URL)
/// pairs. With none, every source serves every package. With some, a package is looked up only
/// on the sources of its most specific pattern (an exact id beats the longest `Prefix.*`), and on
/// no source when no pattern matches, which keeps a private package's name off a public feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceMapping {
    pub rules: Vec<(String, String)>,
}

impl SourceMapping {
    /// The rules as the dotnet plugin's option `source-mapping` carries them: `PATTERN=URL`.
    pub fn from_options<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let rules = values
            .into_iter()
            .map(|value| match value.split_once('=') {
                Some((pattern, url)) if !pattern.is_empty() => {
                    Ok((pattern.to_string(), url.to_string()))
                }
                _ => Err(format!(
                    "source-mapping {value:?}: expected PATTERN=SOURCE-URL (Contoso.*=https://pkgs.contoso.example/v3/index.json)"
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(SourceMapping { rules })
    }

    /// The option values of these rules.
    pub fn to_options(&self) -> Vec<String> {
        self.rules
            .iter()
            .map(|(pattern, url)| format!("{pattern}={url}"))
            .collect()
    }

    /// Whether package `id` may come from `source`.
    pub fn allows(&self, id: &str, source: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        let id = id.to_ascii_lowercase();
        let rank = |pattern: &str| -> Option<usize> {
            let pattern = pattern.to_ascii_lowercase();
            match pattern.strip_suffix('*') {
                Some(prefix) => id.starts_with(prefix).then_some(prefix.len()),
                // An exact id outranks every prefix.
                None => (pattern == id).then_some(usize::MAX),
            }
        };
        let Some(best) = self.rules.iter().filter_map(|(p, _)| rank(p)).max() else {
            return false;
        };
        self.rules
            .iter()
            .any(|(pattern, url)| rank(pattern) == Some(best) && !url.is_empty() && url == source)
    }
}

#[derive(Deserialize)]
struct ServiceIndex {
    resources: Vec<Resource>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(rename = "@id")]
    id: String,
    #[serde(rename = "@type")]
    kind: ResourceType,
}

/// `@type` is a string, or (on some servers) a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum ResourceType {
    One(String),
    Many(Vec<String>),
}

impl ResourceType {
    fn types(&self) -> impl Iterator<Item = &str> {
        let list: &[String] = match self {
            ResourceType::One(one) => std::slice::from_ref(one),
            ResourceType::Many(many) => many,
        };
        list.iter().map(String::as_str)
    }
}

#[derive(Deserialize)]
struct FlatContainerIndex {
    versions: Vec<String>,
}

#[derive(Deserialize)]
struct RegistrationIndex {
    items: Vec<RegistrationPageRef>,
}

#[derive(Deserialize)]
struct RegistrationPageRef {
    #[serde(rename = "@id")]
    id: String,
    items: Option<Vec<RegistrationLeaf>>,
}

#[derive(Deserialize)]
struct RegistrationPage {
    items: Vec<RegistrationLeaf>,
}

#[derive(Deserialize)]
struct RegistrationLeaf {
    #[serde(rename = "catalogEntry")]
    catalog_entry: CatalogEntry,
}

#[derive(Deserialize)]
struct CatalogEntry {
    version: String,
    listed: Option<bool>,
    published: Option<String>,
    deprecation: Option<Deprecation>,
}

#[derive(Deserialize)]
struct Deprecation {
    message: Option<String>,
    #[serde(default)]
    reasons: Vec<String>,
}

#[cfg(test)]
mod tests;
