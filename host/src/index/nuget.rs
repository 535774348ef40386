//! NuGet feeds: v3 servers (service index, flat container, registration) and folder feeds.
//!
//! A source is either the URL of a v3 service index (`https://api.nuget.org/v3/index.json`) or
//! a local directory of `.nupkg` files (flat, `Id.Version.nupkg`, or hierarchical,
//! `id/version/id.version.nupkg`, as `nuget add` and `dotnet nuget push` lay them out). The
//! versions of a package are the union over all sources; each version's artifact comes from the
//! first source that has it, which is NuGet's own rule for a package on several feeds.
//!
//! The flat container (`PackageBaseAddress/3.0.0`) lists versions and serves the .nupkg; the
//! registration resource, when the feed has one, adds what only it knows: unlisted versions,
//! deprecation and publish time. It is metadata: a feed whose registration fails still answers.
//! No v3 resource publishes a digest of the .nupkg itself, so artifacts carry none; the host's
//! download computes the SHA-512 that deps.json records.
//!
//! Sources come from `--nuget-source` (`[NAME=]URL-or-folder`, tried first) and from a
//! `nuget.config` ([`super::nuget_config`]), whose package source mapping then limits which
//! sources each package is looked up on. Credentials come from
//! `NuGetPackageSourceCredentials_<name>` (`Username=..;Password=..`), as the dotnet CLI reads
//! them, or else from the config's `packageSourceCredentials`, for a named source. They are sent
//! only to the source's own origin, never to a CDN the service index points at.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use copa_plugin_sdk::nuget::{NuGetVersion, is_valid_id};
use serde::Deserialize;
use ureq::Agent;
use ureq::http::{StatusCode, Uri, header};

use super::nuget_config::NuGetConfig;
use super::{ArtifactSource, PackageVersion, one_line};

/// The public gallery, used when no `--nuget-source` is given.
pub const NUGET_ORG: &str = "https://api.nuget.org/v3/index.json";

/// Registration indexes of popular packages run to several MB.
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Registration resource types, newest first; 3.6.0 is the one that lists SemVer 2 packages.
const REGISTRATION_TYPES: &[&str] = &[
    "RegistrationsBaseUrl/3.6.0",
    "RegistrationsBaseUrl/3.4.0",
    "RegistrationsBaseUrl/3.0.0-rc",
    "RegistrationsBaseUrl/3.0.0-beta",
    "RegistrationsBaseUrl",
];
const PACKAGE_BASE_TYPE: &str = "PackageBaseAddress/3.0.0";

pub(super) struct Sources {
    sources: Vec<Source>,
    /// The config's package source mapping (none: every source serves every package).
    mapping: NuGetConfig,
}

struct Source {
    /// Where the source was given (`--nuget-source ".."`, `nuget.config source ".."`), for
    /// messages.
    spec: String,
    /// The source's name, which credentials and the source mapping refer to.
    name: Option<String>,
    location: Location,
    /// `Authorization` header value for requests to `origin`.
    authorization: Option<String>,
}

enum Location {
    Server {
        service_index: String,
        /// `scheme://host[:port]` of the service index: where credentials may go.
        origin: String,
        /// The service index's resources, fetched by the first lookup (its error kept too).
        resources: OnceLock<Result<Resources, String>>,
    },
    Folder(PathBuf),
}

#[derive(Debug)]
struct Resources {
    /// With a trailing slash.
    package_base: String,
    /// With a trailing slash.
    registrations: Option<String>,
}

impl Sources {
    /// `specs`: `[NAME=]URL-or-directory` as given to `--nuget-source`, tried before the
    /// `config`'s sources; neither means nuget.org. `env` looks up credential variables (the
    /// process environment outside tests).
    pub(super) fn new(
        specs: &[String],
        config: Option<&NuGetConfig>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut sources: Vec<Source> = specs
            .iter()
            .map(|spec| Source::parse(spec, config, &env))
            .collect::<Result<_, _>>()?;
        if let Some(config) = config {
            for source in &config.sources {
                sources.push(Source::new(
                    format!("nuget.config source {:?}", source.name),
                    Some(&source.name),
                    &source.location,
                    Some(config),
                    &env,
                )?);
            }
            if sources.is_empty() {
                return Err(
                    "the NuGet config enables no package source and no --nuget-source is given"
                        .into(),
                );
            }
        }
        if sources.is_empty() {
            sources.push(Source::parse(
                &format!("nuget.org={NUGET_ORG}"),
                None,
                &env,
            )?);
        }
        Ok(Self {
            sources,
            mapping: config.cloned().unwrap_or_default(),
        })
    }

    /// Every version of `id` the sources list, first source first.
    pub(super) fn versions(&self, agent: &Agent, id: &str) -> Result<Vec<PackageVersion>, String> {
        if !is_valid_id(id) {
            return Err(format!("invalid NuGet package id {id:?}"));
        }
        let mut all: Vec<(NuGetVersion, PackageVersion)> = Vec::new();
        let eligible = self
            .sources
            .iter()
            .filter(|source| self.mapping.allows(id, source.name.as_deref()));
        for source in eligible {
            for found in source.versions(agent, id)? {
                let Ok(parsed) = found.version.parse::<NuGetVersion>() else {
                    tracing::debug!(
                        source = source.spec,
                        id,
                        version = found.version,
                        "not a NuGet version; ignored"
                    );
                    continue;
                };
                if !all.iter().any(|(seen, _)| *seen == parsed) {
                    all.push((parsed, found));
                }
            }
        }
        Ok(all.into_iter().map(|(_, version)| version).collect())
    }

    /// The `Authorization` header for `url`, when it lies on a source's origin that has
    /// credentials: for downloading the artifacts this index names.
    pub(super) fn authorization_for(&self, url: &str) -> Option<String> {
        let origin = origin_of(url)?;
        self.sources
            .iter()
            .find_map(|source| match &source.location {
                Location::Server { origin: own, .. } if *own == origin => {
                    source.authorization.clone()
                }
                _ => None,
            })
    }

    /// Whether `path` (of this machine) lies inside a folder feed the user configured: the only
    /// files a package index may name.
    pub(super) fn holds_file(&self, path: &Path) -> bool {
        let Ok(path) = path.canonicalize() else {
            return false;
        };
        self.sources.iter().any(|source| match &source.location {
            Location::Folder(dir) => dir.canonicalize().is_ok_and(|dir| path.starts_with(dir)),
            Location::Server { .. } => false,
        })
    }
}

impl Source {
    /// A `--nuget-source` value; `config` may hold credentials for its name.
    fn parse(
        spec: &str,
        config: Option<&NuGetConfig>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let (name, location) = match spec.split_once('=') {
            Some((name, rest))
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) =>
            {
                (Some(name), rest)
            }
            _ => (None, spec),
        };
        Self::new(
            format!("--nuget-source {spec:?}"),
            name,
            location,
            config,
            env,
        )
    }

    /// `what` says where the source was given, for messages.
    fn new(
        what: String,
        name: Option<&str>,
        location: &str,
        config: Option<&NuGetConfig>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let bad = |why: &str| format!("{what}: {why}");
        let location = if location.starts_with("http://") || location.starts_with("https://") {
            let uri: Uri = location.parse().map_err(|_| bad("not a valid URL"))?;
            if uri.host().is_none() {
                return Err(bad("the URL has no host"));
            }
            Location::Server {
                service_index: location.to_string(),
                origin: origin_of(location).ok_or_else(|| bad("not a valid URL"))?,
                resources: OnceLock::new(),
            }
        } else {
            let path = location.strip_prefix("file://").unwrap_or(location);
            let path = Path::new(path);
            if !path.is_absolute() {
                return Err(bad("a folder feed must be an absolute path"));
            }
            if !path.is_dir() {
                return Err(bad("no such directory"));
            }
            Location::Folder(path.to_path_buf())
        };
        // The environment wins over the config, as with the dotnet CLI.
        let authorization = match name {
            Some(name) => {
                let variable = format!("NuGetPackageSourceCredentials_{name}");
                match env(&variable) {
                    Some(value) => Some(
                        parse_credentials(&value)
                            .map(|(user, password)| basic(user, password))
                            .map_err(|e| format!("{variable}: {e}"))?,
                    ),
                    None => config
                        .and_then(|c| c.credentials(name))
                        .map(|(user, password)| basic(user, password)),
                }
            }
            None => None,
        };
        if authorization.is_some() && matches!(location, Location::Folder(_)) {
            return Err(bad("credentials are for feeds on a server, not folders"));
        }
        Ok(Source {
            spec: what,
            name: name.map(str::to_string),
            location,
            authorization,
        })
    }

    fn versions(&self, agent: &Agent, id: &str) -> Result<Vec<PackageVersion>, String> {
        match &self.location {
            Location::Folder(dir) => folder_versions(dir, id),
            Location::Server {
                service_index,
                origin,
                resources,
            } => {
                let resources = resources
                    .get_or_init(|| self.fetch_resources(agent, service_index))
                    .as_ref()
                    .map_err(Clone::clone)?;
                let lower = id.to_ascii_lowercase();
                let listing = format!("{}{lower}/index.json", resources.package_base);
                let Some(flat) = self.get_json::<FlatContainerIndex>(agent, origin, &listing)?
                else {
                    return Ok(Vec::new());
                };
                let mut versions: Vec<PackageVersion> = flat
                    .versions
                    .into_iter()
                    .map(|version| {
                        let version = version.to_ascii_lowercase();
                        PackageVersion {
                            artifact: Some(ArtifactSource {
                                url: format!(
                                    "{}{lower}/{version}/{lower}.{version}.nupkg",
                                    resources.package_base
                                ),
                                digest: None,
                            }),
                            version,
                            ..PackageVersion::default()
                        }
                    })
                    .collect();
                if let Some(registrations) = &resources.registrations {
                    // Metadata only: without it the versions still stand.
                    match self.registration(agent, origin, registrations, &lower) {
                        Ok(leaves) => apply_registration(&mut versions, &leaves),
                        Err(e) => tracing::warn!(source = self.spec, id, "registration: {e}"),
                    }
                }
                Ok(versions)
            }
        }
    }

    fn fetch_resources(&self, agent: &Agent, service_index: &str) -> Result<Resources, String> {
        let origin = origin_of(service_index).unwrap_or_default();
        let index: ServiceIndex = self
            .get_json(agent, &origin, service_index)?
            .ok_or_else(|| format!("fetching {service_index}: HTTP 404 Not Found"))?;
        let find = |kind: &str| {
            index
                .resources
                .iter()
                .find(|r| r.kind.types().any(|t| t == kind))
                .map(|r| format!("{}/", r.id.trim_end_matches('/')))
        };
        let package_base = find(PACKAGE_BASE_TYPE).ok_or_else(|| {
            format!("{service_index}: the service index has no {PACKAGE_BASE_TYPE} resource")
        })?;
        let registrations = REGISTRATION_TYPES.iter().find_map(|kind| find(kind));
        Ok(Resources {
            package_base,
            registrations,
        })
    }

    fn registration(
        &self,
        agent: &Agent,
        origin: &str,
        base: &str,
        lower_id: &str,
    ) -> Result<Vec<CatalogEntry>, String> {
        let url = format!("{base}{lower_id}/index.json");
        let Some(index) = self.get_json::<RegistrationIndex>(agent, origin, &url)? else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        for page in index.items {
            // Large packages leave their pages out of the index; each is then one more request.
            let leaves = match page.items {
                Some(leaves) => leaves,
                None => {
                    self.get_json::<RegistrationPage>(agent, origin, &page.id)?
                        .ok_or_else(|| format!("fetching {}: HTTP 404 Not Found", page.id))?
                        .items
                }
            };
            entries.extend(leaves.into_iter().map(|leaf| leaf.catalog_entry));
        }
        Ok(entries)
    }

    /// GETs `url` as JSON; `None` for 404. Credentials go along only to the source's origin.
    fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        agent: &Agent,
        origin: &str,
        url: &str,
    ) -> Result<Option<T>, String> {
        tracing::debug!(%url, "querying NuGet feed");
        let mut request = agent.get(url).header(header::ACCEPT, "application/json");
        if let Some(authorization) = &self.authorization
            && origin_of(url).as_deref() == Some(origin)
        {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let mut response = request
            .call()
            .map_err(|e| one_line(format!("fetching {url}: {e}")))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let hint = if self.authorization.is_some() {
                "the credentials were refused"
            } else {
                "the feed needs credentials: name the source (--nuget-source NAME=URL) and set NuGetPackageSourceCredentials_NAME, or give them in the nuget.config's packageSourceCredentials"
            };
            return Err(format!("fetching {url}: HTTP {status}; {hint}"));
        }
        if !status.is_success() {
            return Err(format!("fetching {url}: HTTP {status}"));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|e| one_line(format!("reading {url}: {e}")))?;
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| one_line(format!("parsing JSON from {url}: {e}")))
    }
}

/// `Username=..;Password=..` (the dotnet CLI's format; other keys such as
/// `ValidAuthenticationTypes` are ignored) as (username, password).
fn parse_credentials(value: &str) -> Result<(&str, &str), String> {
    let mut username = None;
    let mut password = None;
    for part in value.split(';') {
        let Some((key, val)) = part.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "username" => username = Some(val),
            "password" | "cleartextpassword" => password = Some(val),
            _ => {}
        }
    }
    match (username, password) {
        (Some(user), Some(password)) => Ok((user, password)),
        _ => Err("expected Username=...;Password=...".into()),
    }
}

/// A basic `Authorization` header value.
fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `scheme://host[:port]`, lower-cased.
fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?.as_str().to_ascii_lowercase();
    // Credentials embedded in a URL are not part of its origin.
    let host = authority.rsplit('@').next()?;
    Some(format!("{scheme}://{host}"))
}

/// Versions of `id` in a folder feed: `Id.Version.nupkg` files at the top, and
/// `id/version/id.version.nupkg` below (names compared without case, as NuGet does).
fn folder_versions(dir: &Path, id: &str) -> Result<Vec<PackageVersion>, String> {
    let read = |dir: &Path| {
        std::fs::read_dir(dir)
            .map_err(|e| format!("reading folder feed {}: {e}", dir.display()))
            .map(|entries| {
                let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                paths.sort();
                paths
            })
    };
    let mut found = Vec::new();
    let prefix = format!("{}.", id.to_ascii_lowercase());
    for path in read(dir)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if path.is_file()
            && let Some(version) = lower
                .strip_suffix(".nupkg")
                .and_then(|stem| stem.strip_prefix(&prefix))
            // "My.Lib.1.0.0.nupkg" is also "My" + ".Lib.1.0.0"; only a whole version counts.
            && let Ok(parsed) = version.parse::<NuGetVersion>()
        {
            found.push((parsed, path.clone()));
        } else if path.is_dir() && lower == id.to_ascii_lowercase() {
            for version_dir in read(&path)? {
                let Some(version) = version_dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|v| v.parse::<NuGetVersion>().ok())
                else {
                    continue;
                };
                let wanted = format!("{prefix}{}.nupkg", version.to_lowercase_string());
                let nupkg = read(&version_dir)?.into_iter().find(|file| {
                    file.is_file()
                        && file
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.eq_ignore_ascii_case(&wanted))
                });
                if let Some(nupkg) = nupkg {
                    found.push((version, nupkg));
                }
            }
        }
    }
    // Oldest first, whatever the layout; stable, so a flat file wins over a folder copy.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut versions: Vec<PackageVersion> = Vec::new();
    for (version, path) in found {
        let text = version.to_string();
        if versions.iter().any(|v| v.version == text) {
            continue;
        }
        versions.push(PackageVersion {
            version: text,
            artifact: Some(ArtifactSource {
                url: file_url(&path),
                digest: None,
            }),
            ..PackageVersion::default()
        });
    }
    Ok(versions)
}

/// A `file://` URL of an absolute path, percent-encoding what a URL path cannot hold.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~+@,=".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

fn apply_registration(versions: &mut [PackageVersion], entries: &[CatalogEntry]) {
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
        // Unlisted versions stay restorable by exact pin but are never offered: like a yank.
        version.yanked = entry.listed == Some(false);
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
mod tests {
    use super::*;
    use crate::index::test_server::{Reply, serve, serve_recording};
    use crate::index::{IndexSettings, NuGetConfigFile, PackageIndex};

    fn json(body: String) -> Reply<String> {
        Reply {
            status: "200 OK",
            content_type: "application/json",
            body,
        }
    }

    fn index_with(sources: &[String]) -> PackageIndex {
        let settings = IndexSettings {
            nuget_sources: sources.to_vec(),
            ..IndexSettings::default()
        };
        PackageIndex::with_proxy(settings, None).unwrap()
    }

    fn service_index(base: &str, registrations: Option<&str>) -> String {
        let mut resources = vec![
            serde_json::json!({"@id": "https://example.invalid/query", "@type": "SearchQueryService"}),
            serde_json::json!({"@id": base, "@type": PACKAGE_BASE_TYPE}),
        ];
        if let Some(registrations) = registrations {
            resources.push(serde_json::json!({"@id": registrations, "@type": ["RegistrationsBaseUrl/3.6.0", "RegistrationsBaseUrl/Versioned"]}));
        }
        serde_json::json!({"version": "3.0.0", "resources": resources}).to_string()
    }

    #[test]
    fn reads_a_v3_feed_with_registration() {
        // Resources live on one server, the service index on another that points at it.
        let registration_index = serde_json::json!({"count": 2, "items": [
            {"@id": "page-inline", "items": [
                {"catalogEntry": {"version": "1.0.0", "listed": true, "published": "2024-01-02T03:04:05+00:00"}},
                {"catalogEntry": {"version": "1.0.1+sha.abc", "listed": false, "published": "1900-01-01T00:00:00+00:00"}}
            ]},
            {"@id": "PAGE2"}
        ]});
        let page2 = serde_json::json!({"items": [
            {"catalogEntry": {"version": "2.0.0-RC.1", "deprecation": {"reasons": ["Legacy"], "message": "use Other.Lib"}}},
            {"catalogEntry": {"version": "2.0.0", "deprecation": {"reasons": ["CriticalBugs"]}}}
        ]});
        let (resources, seen) = serve(
            vec![
                (
                    "/flat/my.lib/index.json",
                    json(r#"{"versions": ["1.0.0", "1.0.1", "2.0.0-rc.1", "2.0.0", "not.a.version"]}"#.into()),
                ),
                ("/page2", json(page2.to_string())),
            ],
            8,
        );
        // The registration index names its second page by absolute URL.
        let registration_index = registration_index
            .to_string()
            .replace("PAGE2", &format!("{resources}/page2"));
        let (resources2, _) = serve(
            vec![("/reg/my.lib/index.json", json(registration_index))],
            1,
        );
        let (index_origin, index_seen) = serve(
            vec![(
                "/v3/index.json",
                json(service_index(
                    &format!("{resources}/flat"),
                    Some(&format!("{resources2}/reg/")),
                )),
            )],
            1,
        );
        let index = index_with(&[format!("{index_origin}/v3/index.json")]);
        let versions = index.versions("nuget", "My.Lib").unwrap();
        let summary: Vec<(&str, bool, Option<&str>, Option<&str>)> = versions
            .iter()
            .map(|v| {
                (
                    v.version.as_str(),
                    v.yanked,
                    v.deprecated.as_deref(),
                    v.published.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("1.0.0", false, None, Some("2024-01-02T03:04:05+00:00")),
                ("1.0.1", true, None, None),
                ("2.0.0-rc.1", false, Some("use Other.Lib"), None),
                ("2.0.0", false, Some("deprecated: CriticalBugs"), None),
            ]
        );
        assert_eq!(
            versions[0].artifact,
            Some(ArtifactSource {
                url: format!("{resources}/flat/my.lib/1.0.0/my.lib.1.0.0.nupkg"),
                digest: None
            })
        );
        // Cached: a second lookup, in another case, costs nothing.
        assert_eq!(index.versions("NuGet", "MY.LIB").unwrap(), versions);
        assert_eq!(index_seen.lock().unwrap().len(), 1);
        let paths: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(paths, ["/flat/my.lib/index.json", "/page2"]);
        // An unknown package is an empty list; the service index is not fetched again.
        assert!(index.versions("nuget", "Other").unwrap().is_empty());
    }

    #[test]
    fn sends_credentials_only_to_the_source_origin() {
        let (cdn, cdn_seen) = serve_recording(
            vec![(
                "/flat/a/index.json",
                json(r#"{"versions":["1.0.0"]}"#.into()),
            )],
            1,
            "authorization",
        );
        let (origin, seen) = serve_recording(
            vec![(
                "/v3/index.json",
                json(service_index(&format!("{cdn}/flat/"), None)),
            )],
            1,
            "authorization",
        );
        let env = |name: &str| {
            (name == "NuGetPackageSourceCredentials_private")
                .then(|| "Username=ci;Password=s3cr=t;ValidAuthenticationTypes=basic".to_string())
        };
        let sources =
            Sources::new(&[format!("private={origin}/v3/index.json")], None, env).unwrap();
        let agent = crate::index::test_server::local_index("http://127.0.0.1/")
            .agent
            .clone();
        let versions = sources.versions(&agent, "A").unwrap();
        assert_eq!(versions.len(), 1);
        // base64("ci:s3cr=t")
        assert_eq!(seen.lock().unwrap()[0].1, "Basic Y2k6czNjcj10");
        assert_eq!(cdn_seen.lock().unwrap()[0].1, "");
        assert_eq!(
            sources
                .authorization_for(&format!("{origin}/x.nupkg"))
                .as_deref(),
            Some("Basic Y2k6czNjcj10")
        );
        assert_eq!(sources.authorization_for(&format!("{cdn}/x.nupkg")), None);
    }

    #[test]
    fn refused_credentials_and_broken_feeds_are_one_line_errors() {
        let (origin, _) = serve(
            vec![
                (
                    "/locked/index.json",
                    Reply {
                        status: "401 Unauthorized",
                        content_type: "text/plain",
                        body: "no".to_string(),
                    },
                ),
                (
                    "/nobase/index.json",
                    json(r#"{"version":"3.0.0","resources":[]}"#.into()),
                ),
            ],
            2,
        );
        let index = index_with(&[format!("{origin}/locked/index.json")]);
        let err = index.versions("nuget", "a").unwrap_err();
        assert!(
            err.contains("401") && err.contains("NuGetPackageSourceCredentials_"),
            "{err}"
        );
        let index = index_with(&[format!("{origin}/nobase/index.json")]);
        let err = index.versions("nuget", "a").unwrap_err();
        assert!(
            err.contains("no PackageBaseAddress/3.0.0 resource"),
            "{err}"
        );
        assert!(
            index
                .versions("nuget", "../x")
                .unwrap_err()
                .contains("invalid NuGet package id")
        );
    }

    #[test]
    fn reads_folder_feeds_flat_and_hierarchical() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "My.Lib.1.0.0.nupkg",
            "my.lib.1.0.1-beta.nupkg",
            "My.Lib.Extra.3.0.0.nupkg",
            "My.Lib.notes.txt",
        ] {
            std::fs::write(root.join(file), b"zip").unwrap();
        }
        std::fs::create_dir_all(root.join("my.lib/2.0.0")).unwrap();
        std::fs::write(root.join("my.lib/2.0.0/my.lib.2.0.0.nupkg"), b"zip").unwrap();
        std::fs::create_dir_all(root.join("my.lib/3.0.0")).unwrap();
        std::fs::create_dir_all(root.join("other with space")).unwrap();
        std::fs::write(root.join("other with space/Other.1.0.nupkg"), b"zip").unwrap();

        let index = index_with(&[root.display().to_string()]);
        let versions = index.versions("nuget", "my.lib").unwrap();
        let listed: Vec<(&str, &str)> = versions
            .iter()
            .map(|v| {
                (
                    v.version.as_str(),
                    v.artifact.as_ref().unwrap().url.as_str(),
                )
            })
            .collect();
        let url = |rel: &str| format!("file://{}/{rel}", root.display());
        assert_eq!(
            listed,
            [
                ("1.0.0", url("My.Lib.1.0.0.nupkg").as_str()),
                ("1.0.1-beta", url("my.lib.1.0.1-beta.nupkg").as_str()),
                ("2.0.0", url("my.lib/2.0.0/my.lib.2.0.0.nupkg").as_str()),
            ]
        );
        let index = index_with(&[format!(
            "file://{}",
            root.join("other with space").display()
        )]);
        let versions = index.versions("nuget", "Other").unwrap();
        assert!(
            versions[0]
                .artifact
                .as_ref()
                .unwrap()
                .url
                .ends_with("/other%20with%20space/Other.1.0.nupkg")
        );
        assert_eq!(versions[0].version, "1.0.0");
    }

    #[test]
    fn merges_sources_first_one_wins() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        std::fs::write(first.path().join("a.1.0.0.nupkg"), b"zip").unwrap();
        std::fs::write(second.path().join("A.1.0.nupkg"), b"zip").unwrap();
        std::fs::write(second.path().join("A.2.0.0.nupkg"), b"zip").unwrap();
        let index = index_with(&[
            first.path().display().to_string(),
            second.path().display().to_string(),
        ]);
        let versions = index.versions("nuget", "A").unwrap();
        assert_eq!(versions.len(), 2);
        assert!(
            versions[0]
                .artifact
                .as_ref()
                .unwrap()
                .url
                .contains(&first.path().display().to_string())
        );
        assert!(
            versions[1]
                .artifact
                .as_ref()
                .unwrap()
                .url
                .contains(&second.path().display().to_string())
        );
    }

    #[test]
    fn config_sources_follow_the_command_line_and_obey_the_mapping() {
        let private = tempfile::tempdir().unwrap();
        let public = tempfile::tempdir().unwrap();
        let extra = tempfile::tempdir().unwrap();
        std::fs::write(private.path().join("Contoso.Lib.1.0.0.nupkg"), b"zip").unwrap();
        std::fs::write(public.path().join("Contoso.Lib.9.0.0.nupkg"), b"zip").unwrap();
        std::fs::write(public.path().join("Other.1.0.0.nupkg"), b"zip").unwrap();
        std::fs::write(extra.path().join("Other.2.0.0.nupkg"), b"zip").unwrap();
        let config_dir = tempfile::tempdir().unwrap();
        let config = config_dir.path().join("nuget.config");
        std::fs::write(
            &config,
            format!(
                r#"<configuration><packageSources><clear/>
                  <add key="public" value="{}"/><add key="private" value="{}"/></packageSources>
                  <packageSourceMapping>
                    <packageSource key="public"><package pattern="*"/></packageSource>
                    <packageSource key="private"><package pattern="Contoso.*"/></packageSource>
                    <packageSource key="extra"><package pattern="Other"/></packageSource>
                  </packageSourceMapping></configuration>"#,
                public.path().display(),
                private.path().display()
            ),
        )
        .unwrap();
        let index = PackageIndex::with_proxy(
            IndexSettings {
                nuget_sources: vec![format!("extra={}", extra.path().display())],
                nuget_config: Some(NuGetConfigFile::Given(config.clone())),
                ..IndexSettings::default()
            },
            None,
        )
        .unwrap();
        // A private name is never looked up on the public feed, whatever it serves.
        let versions = index.versions("nuget", "Contoso.Lib").unwrap();
        assert_eq!(
            versions
                .iter()
                .map(|v| v.version.as_str())
                .collect::<Vec<_>>(),
            ["1.0.0"]
        );
        // The exact pattern names the command line's source alone.
        let versions = index.versions("nuget", "Other").unwrap();
        assert_eq!(
            versions
                .iter()
                .map(|v| v.version.as_str())
                .collect::<Vec<_>>(),
            ["2.0.0"]
        );
        // A config that leaves no source is an error, not a silent nuget.org.
        std::fs::write(
            &config,
            "<configuration><packageSources><clear/></packageSources></configuration>",
        )
        .unwrap();
        let settings = |file| IndexSettings {
            nuget_config: Some(file),
            ..IndexSettings::default()
        };
        let err = PackageIndex::with_proxy(settings(NuGetConfigFile::Given(config.clone())), None)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("enables no package source"),
            "{err}"
        );
        // The user-level config is not the run's to fail: only the NuGet lookups fail.
        let index =
            PackageIndex::with_proxy(settings(NuGetConfigFile::UserLevel(config)), None).unwrap();
        let err = index.versions("nuget", "Other").unwrap_err();
        assert!(err.contains("enables no package source"), "{err}");
    }

    #[test]
    fn credentials_come_from_the_environment_before_the_config() {
        let config: NuGetConfig = {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("nuget.config");
            std::fs::write(
                &path,
                r#"<configuration><packageSources><add key="Team Feed" value="https://feed.example/v3/index.json"/></packageSources>
                   <packageSourceCredentials><Team_x0020_Feed><add key="Username" value="cfg"/><add key="ClearTextPassword" value="pw"/></Team_x0020_Feed>
                   <ci><add key="Username" value="cfg"/><add key="ClearTextPassword" value="pw"/></ci></packageSourceCredentials></configuration>"#,
            )
            .unwrap();
            NuGetConfig::read(&path, &|_: &str| None).unwrap()
        };
        let none = |_: &str| None;
        let sources = Sources::new(&[], Some(&config), none).unwrap();
        // base64("cfg:pw")
        assert_eq!(
            sources
                .authorization_for("https://feed.example/x.nupkg")
                .as_deref(),
            Some("Basic Y2ZnOnB3")
        );
        // A source named on the command line takes the config's credentials for its name...
        let sources = Sources::new(
            &["ci=https://ci.example/v3/index.json".into()],
            Some(&config),
            none,
        )
        .unwrap();
        assert_eq!(
            sources
                .authorization_for("https://ci.example/x.nupkg")
                .as_deref(),
            Some("Basic Y2ZnOnB3")
        );
        // ...unless the environment has some.
        let env = |name: &str| {
            (name == "NuGetPackageSourceCredentials_ci").then(|| "Username=env;Password=pw".into())
        };
        let sources = Sources::new(
            &["ci=https://ci.example/v3/index.json".into()],
            Some(&config),
            env,
        )
        .unwrap();
        // base64("env:pw")
        assert_eq!(
            sources
                .authorization_for("https://ci.example/x.nupkg")
                .as_deref(),
            Some("Basic ZW52OnB3")
        );
    }

    #[test]
    fn rejects_bad_sources() {
        let none = |_: &str| None;
        for (spec, why) in [
            ("relative/dir", "absolute path"),
            ("/no/such/dir/anywhere", "no such directory"),
            ("http://", "not a valid URL"),
        ] {
            let err = Sources::new(&[spec.to_string()], None, none).err().unwrap();
            assert!(
                err.contains(why) && err.contains("--nuget-source"),
                "{spec}: {err}"
            );
        }
        let env = |_: &str| Some("Password=only".to_string());
        let err = Sources::new(&["x=https://feed.example/v3/index.json".into()], None, env)
            .err()
            .unwrap();
        assert!(err.contains("NuGetPackageSourceCredentials_x"), "{err}");
        // A URL with '=' in its query is not a NAME=URL pair.
        let sources =
            Sources::new(&["https://feed.example/index.json?a=b".into()], None, none).unwrap();
        assert!(
            matches!(&sources.sources[0].location, Location::Server { service_index, .. } if service_index.ends_with("?a=b"))
        );
        // No source given: nuget.org.
        let sources = Sources::new(&[], None, none).unwrap();
        assert!(
            matches!(&sources.sources[0].location, Location::Server { service_index, .. } if service_index == NUGET_ORG)
        );
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://Feed.Example:8443/v3/index.json").as_deref(),
            Some("https://feed.example:8443")
        );
        assert_eq!(
            origin_of("https://u:p@feed.example/x").as_deref(),
            Some("https://feed.example")
        );
        assert_eq!(origin_of("/local/path"), None);
    }
}
