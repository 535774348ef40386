//! Package index client answering the plugins' `versions(ecosystem, name)` calls.
//!
//! Plugins call into the host synchronously from a blocking thread, so this uses the blocking
//! `ureq` client rather than anything async. Two kinds of index are supported:
//!
//! - `pypi` (any case): the Python "simple" repository API at `--index-url`, one page per
//!   project ([`pypi`]).
//! - `npm`: the npm registry at `--npm-registry`, one packument per package ([`npm`]).
//! - `deb <uri> <suite> <component> <arch>`: the binary `Packages` index of an APT repository,
//!   named as in a one-line `sources.list` entry, read with the SDK's `apt_repo` once per run
//!   and looked up by binary package name, for plugins of contracts before 0.4 ([`deb`]).
//! - `go`: the Go module proxies of `--go-proxy` (`GOPROXY` syntax) and `--index go=URL`,
//!   module versions and Go toolchains as `golang.org/toolchain`, for plugins of contracts
//!   before 0.4 ([`goproxy`]).
//!
//! - `nuget`: the NuGet v3 feeds and folder feeds of `--index nuget=URL` (nuget.org when none),
//!   for plugins of contracts before 0.4, read with the SDK's client ([`nuget`]).
//!
//! All share one agent, so the TLS roots (system bundle plus `--ca-cert`) and the proxy from
//! the environment apply to every request.

mod deb;
mod goproxy;
mod npm;
mod nuget;
mod pypi;

pub use copa_plugin_sdk::archive::{
    ArchiveEntry, Artifact, EntryKind, ExpectedDigest, MAX_ARTIFACT_BYTES, PREALLOCATE_AT_MOST,
};
pub use goproxy::http_proxies as go_http_proxies;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use copa_plugin_sdk::pep440::normalize_name;
use ureq::Agent;
use ureq::http::Uri;

use crate::http::{Credential, Origin};
use crate::setting::Setting;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider, parse_pem};

/// One release of a package as the index describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageVersion {
    pub version: String,
    pub yanked: bool,
    pub requires_python: Option<String>,
    /// npm `engines` ("node" -> ">=14").
    pub engines: Vec<(String, String)>,
    pub deprecated: Option<String>,
    /// RFC 3339.
    pub published: Option<String>,
    /// Run-time dependencies, name -> range as the index writes it.
    pub dependencies: Vec<(String, String)>,
    /// Ecosystem fields passed to plugins verbatim (a deb's Packages stanza).
    pub metadata: Vec<(String, String)>,
    /// Where the version's package file is, when the index says.
    pub artifact: Option<ArtifactSource>,
}

/// Where to download a version's package file and what its bytes must hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactSource {
    pub url: String,
    /// The digest the index publishes; a download that does not match is refused.
    pub digest: Option<ExpectedDigest>,
}

#[derive(Clone, Debug)]
pub struct IndexSettings {
    /// Base URL of the simple index, e.g. "https://pypi.org/simple/".
    pub pypi_url: String,
    /// PEM contents of `--ca-cert`, trusted in addition to the system roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// The first `--index deb=URL` (`--apt-mirror`): replaces the origin
    /// (`scheme://host[:port]`) of every APT repository.
    pub apt_mirror: Option<String>,
    /// The NuGet sources (`--index nuget=` URLs: v3 service indexes and `file://` folders), in
    /// the order NuGet tries them; empty means nuget.org. Set by [`Self::with_user_indexes`].
    pub nuget_sources: Vec<String>,
    /// The user's credential of each origin (`--index-credential`), for the NuGet feeds.
    pub credentials: HashMap<Origin, Credential>,
    /// Base URL of the npm registry, e.g. "https://registry.npmjs.org/".
    pub npm_registry: String,
    /// `GOPROXY` syntax: the Go module proxies for the `go` ecosystem and for the go command in
    /// a run: the user's (`--go-proxy`) whole, `--index go=` URLs added by
    /// [`Self::with_user_indexes`]; `None`: the public proxy.
    pub go_proxy: Option<String>,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            pypi_url: copa_plugin_sdk::pypi::DEFAULT_INDEX.to_owned(),
            extra_ca_pem: None,
            apt_mirror: None,
            nuget_sources: Vec::new(),
            credentials: HashMap::new(),
            npm_registry: copa_plugin_sdk::npm_registry::DEFAULT_REGISTRY.to_owned(),
            go_proxy: None,
        }
    }
}

impl IndexSettings {
    /// These settings with the user's `--index ECOSYSTEM=URL`s for the ecosystems plugins of
    /// older contracts read through this index: the first `pypi` URL is the simple index, the
    /// first `npm` URL the registry, the first `deb` URL the APT mirror; the `nuget` URLs are the
    /// NuGet sources; the `go` URLs join the Go proxies, which the go command in a run uses too.
    pub fn with_user_indexes(mut self, indexes: &[(String, String)]) -> Self {
        let first = |ecosystem: &str| {
            indexes
                .iter()
                .find(|(e, _)| e == ecosystem)
                .map(|(_, url)| url.clone())
        };
        if let Some(url) = first(copa_plugin_sdk::pypi::ECOSYSTEM) {
            self.pypi_url = url;
        }
        if let Some(url) = first(copa_plugin_sdk::npm_registry::ECOSYSTEM) {
            self.npm_registry = url;
        }
        let nuget: Vec<String> = indexes
            .iter()
            .filter(|(e, _)| e == copa_plugin_sdk::nuget_feed::ECOSYSTEM)
            .map(|(_, url)| url.clone())
            .collect();
        if !nuget.is_empty() {
            self.nuget_sources = nuget;
        }
        if let Some(url) = first(copa_plugin_sdk::apt_repo::ECOSYSTEM) {
            self.apt_mirror = Some(url.trim_end_matches('/').to_owned());
        }
        let go_urls: Vec<&str> = indexes
            .iter()
            .filter(|(e, _)| e == copa_plugin_sdk::goproxy::ECOSYSTEM)
            .map(|(_, url)| url.as_str())
            .collect();
        self.go_proxy = goproxy::with_index_urls(self.go_proxy.as_deref(), &go_urls);
        self
    }

    /// The `GOPROXY` in force.
    fn go_proxy(&self) -> &str {
        self.go_proxy
            .as_deref()
            .unwrap_or(copa_plugin_sdk::goproxy::DEFAULT_PROXY)
    }

    /// The environment of a `run` step that names `ecosystem` as its `index-ecosystem`: where
    /// the ecosystem's tool finds these indexes.
    pub fn run_environment(&self) -> HashMap<String, Vec<(String, String)>> {
        [
            (
                copa_plugin_sdk::pypi::ECOSYSTEM.to_string(),
                vec![("PIP_INDEX_URL".to_string(), self.pypi_url.clone())],
            ),
            (
                "npm".to_string(),
                vec![("npm_config_registry".to_string(), self.npm_registry.clone())],
            ),
            (
                "deb".to_string(),
                self.apt_mirror
                    .iter()
                    .map(|m| ("COPA_APT_MIRROR".to_string(), m.clone()))
                    .collect(),
            ),
            (
                copa_plugin_sdk::goproxy::ECOSYSTEM.to_string(),
                goproxy::environment(self.go_proxy()),
            ),
        ]
        .into()
    }

    /// Every index URL of these settings that a tool in a container may reach.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        [self.pypi_url.as_str(), self.npm_registry.as_str()]
            .into_iter()
            .chain(self.apt_mirror.as_deref())
            .chain(self.go_proxy().split([',', '|']).map(str::trim))
    }
}

/// The ecosystems [`PackageIndex::versions`] answers for, as an error names them.
const KNOWN_ECOSYSTEMS: &str =
    "pypi, npm, nuget, go, and \"deb <uri> <suite> <component> <arch>\" for an APT repository";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A package file may be tens of MB (a .deb, a .nupkg with native parts).
const ARTIFACT_TIMEOUT: Duration = Duration::from_secs(300);

/// Where distributions keep their CA bundle. The first readable one wins; `SSL_CERT_FILE`
/// overrides them all, as it does for OpenSSL-based tools.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

type CacheKey = (String, String);

/// One artifact, downloaded by the first caller; a failure is kept too, so it is reported once.
type ArtifactSlot = Arc<std::sync::OnceLock<Result<Arc<Artifact>, String>>>;

pub struct PackageIndex {
    settings: IndexSettings,
    agent: Agent,
    /// `pypi_url` with exactly one trailing slash, so the project path can be appended.
    pypi_base: String,
    /// `npm_registry` with exactly one trailing slash.
    npm_base: String,
    /// Answers are cached for the lifetime of the index: one patch run asks for the same
    /// package repeatedly, and the index barely changes within a run.
    cache: Mutex<HashMap<CacheKey, Vec<PackageVersion>>>,
    /// APT repositories' package lists, each loaded on first use and kept for the run.
    deb: deb::Repositories,
    /// The NuGet sources, or why they are unusable (kept for the NuGet lookups: a run that
    /// reads no NuGet versions through this index does not depend on them).
    nuget: Result<nuget::Feeds, String>,
    /// The error of a `GOPROXY` that names no proxy, kept for the Go lookups: a run that reads
    /// no Go versions through this index does not depend on it.
    go: Result<goproxy::GoProxy, String>,
    /// Keyed by (ecosystem, name, version).
    artifacts: Mutex<HashMap<(String, String, String), ArtifactSlot>>,
}

impl PackageIndex {
    /// Builds a client that uses the proxy configured in the environment
    /// (ALL_PROXY / HTTPS_PROXY / HTTP_PROXY, minus NO_PROXY).
    pub fn new(settings: IndexSettings) -> anyhow::Result<Self> {
        Self::with_proxy(settings, ureq::Proxy::try_from_env())
    }

    /// Separate from `new` so tests talking to a loopback server are not routed through
    /// whatever proxy the machine running them has configured.
    fn with_proxy(settings: IndexSettings, proxy: Option<ureq::Proxy>) -> anyhow::Result<Self> {
        let pypi_base = base_url(&settings.pypi_url)?;
        let npm_base = base_url(&settings.npm_registry)?;

        let agent = agent_with(
            settings.extra_ca_pem.as_deref(),
            proxy,
            REQUEST_TIMEOUT,
            DEFAULT_REDIRECTS,
        )?;

        Ok(Self {
            settings: settings.clone(),
            agent,
            pypi_base,
            npm_base,
            cache: Mutex::new(HashMap::new()),
            deb: deb::Repositories::new(settings.apt_mirror.clone()),
            nuget: nuget::Feeds::new(&settings.nuget_sources, &settings.credentials),
            go: goproxy::GoProxy::new(settings.go_proxy()),
            artifacts: Mutex::new(HashMap::new()),
        })
    }

    pub fn settings(&self) -> &IndexSettings {
        &self.settings
    }

    /// All versions of `name` the index lists, in the order first seen (the caller sorts them
    /// with real version semantics). An unknown package is an empty list, not an error.
    pub fn versions(&self, ecosystem: &str, name: &str) -> Result<Vec<PackageVersion>, String> {
        // OSV spells the ecosystem "PyPI"; accept any case rather than make plugins guess.
        if ecosystem.eq_ignore_ascii_case("pypi") {
            return self.pypi_versions(name);
        }
        if ecosystem.eq_ignore_ascii_case("npm") {
            return self.npm_versions(name);
        }
        if deb::is_deb_ecosystem(ecosystem) {
            return self.deb.versions(&self.agent, ecosystem, name);
        }
        if ecosystem.eq_ignore_ascii_case("nuget") {
            return self.nuget_versions(name);
        }
        if ecosystem == copa_plugin_sdk::goproxy::ECOSYSTEM {
            let key = (ecosystem.to_owned(), name.to_owned());
            if let Some(hit) = self.lock_cache().get(&key) {
                return Ok(hit.clone());
            }
            let versions = self.go.as_ref()?.versions(&self.agent, name)?;
            self.lock_cache().insert(key, versions.clone());
            return Ok(versions);
        }
        Err(format!(
            "no package index for ecosystem {ecosystem} (this host has: {KNOWN_ECOSYSTEMS})"
        ))
    }

    fn nuget_versions(&self, id: &str) -> Result<Vec<PackageVersion>, String> {
        // Package ids are case-insensitive.
        let key = ("nuget".to_owned(), id.to_ascii_lowercase());
        if let Some(hit) = self.lock_cache().get(&key) {
            return Ok(hit.clone());
        }
        let versions = self
            .nuget
            .as_ref()
            .map_err(Clone::clone)?
            .versions(&self.agent, id)?;
        self.lock_cache().insert(key, versions.clone());
        Ok(versions)
    }

    /// The `Authorization` header value to send with a request for `url`, when `url` lies on
    /// the origin of a NuGet source with a credential (`--index-credential`).
    /// Artifact downloads need it: private feeds serve their packages only to the same login.
    pub fn authorization_for(&self, url: &str) -> Option<String> {
        self.nuget.as_ref().ok()?.authorization_for(url)
    }

    /// The package file of one version, downloaded once per run and checked against the digest
    /// the index publishes for it.
    pub fn artifact(
        &self,
        ecosystem: &str,
        name: &str,
        version: &str,
    ) -> Result<Arc<Artifact>, String> {
        let key = (ecosystem.to_owned(), name.to_owned(), version.to_owned());
        let slot = {
            let mut artifacts = self
                .artifacts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(artifacts.entry(key).or_default())
        };
        slot.get_or_init(|| {
            let versions = self.versions(ecosystem, name)?;
            let source = versions
                .iter()
                .find(|v| v.version == version)
                .ok_or_else(|| format!("{ecosystem} {name}: the index has no version {version}"))?
                .artifact
                .clone()
                .ok_or_else(|| {
                    format!("{ecosystem} {name} {version}: the index names no package file")
                })?;
            let bytes = self.download(&source.url)?;
            Artifact::from_bytes(&source.url, &bytes, source.digest.as_ref()).map(Arc::new)
        })
        .clone()
    }

    /// `file://` URLs are read from this machine (folder feeds); anything else over HTTP(S).
    fn download(&self, url: &str) -> Result<Vec<u8>, String> {
        if url.starts_with("file://") {
            // An index names files of this machine only inside a folder feed the user gave;
            // anything else (an npm packument's `file:///etc/shadow`) is refused.
            return self
                .nuget
                .as_ref()
                .map_err(Clone::clone)?
                .read_file(url, MAX_ARTIFACT_BYTES);
        }
        let started = std::time::Instant::now();
        let mut request = self.agent.get(url);
        // Private feeds serve their packages only to the same login as their listings.
        if let Some(authorization) = self.authorization_for(url) {
            request = request.header(ureq::http::header::AUTHORIZATION, authorization);
        }
        let response = request
            .config()
            .timeout_global(Some(ARTIFACT_TIMEOUT))
            .build()
            .call()
            .map_err(|e| one_line(format!("downloading {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(format!("downloading {url}: HTTP {}", response.status()));
        }
        let bytes = response
            .into_body()
            .into_with_config()
            .limit(MAX_ARTIFACT_BYTES)
            .read_to_vec()
            .map_err(|e| one_line(format!("downloading {url}: {e}")))?;
        tracing::debug!(
            url,
            bytes = bytes.len(),
            seconds = started.elapsed().as_secs_f64(),
            "downloaded artifact"
        );
        Ok(bytes)
    }

    fn pypi_versions(&self, name: &str) -> Result<Vec<PackageVersion>, String> {
        if !copa_plugin_sdk::pypi::is_valid_name(name) {
            return Err(format!("invalid Python package name {name:?}"));
        }
        let key = ("pypi".to_owned(), normalize_name(name));
        if let Some(hit) = self.lock_cache().get(&key) {
            return Ok(hit.clone());
        }

        // The lock is not held across the request so that lookups of other packages from other
        // threads are not serialized behind a slow one; a concurrent miss costs one extra fetch.
        let versions = self.fetch_pypi(name)?;
        self.lock_cache().insert(key, versions.clone());
        Ok(versions)
    }

    fn npm_versions(&self, name: &str) -> Result<Vec<PackageVersion>, String> {
        // The registry treats names case-sensitively, so the name is the key as given.
        let key = ("npm".to_owned(), name.to_owned());
        if let Some(hit) = self.lock_cache().get(&key) {
            return Ok(hit.clone());
        }
        let versions = self.fetch_npm(name)?;
        self.lock_cache().insert(key, versions.clone());
        Ok(versions)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Vec<PackageVersion>>> {
        // Entries are inserted whole, so a panic elsewhere cannot leave the map inconsistent.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `url` with exactly one trailing slash, so that a path can be appended; it must be an
/// absolute http(s) URL.
fn base_url(url: &str) -> anyhow::Result<String> {
    let base = format!("{}/", url.trim_end_matches('/'));
    let uri: Uri = base
        .parse()
        .with_context(|| format!("invalid package index URL {url:?}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        bail!("package index URL {url:?} must be an absolute http(s) URL");
    }
    Ok(base)
}

/// The system CA bundle plus the user's extra CAs.
///
/// Explicit roots rather than ureq's built-in webpki roots: corporate networks (and CI
/// sandboxes) intercept TLS with a CA that is only in the system bundle.
/// ureq's own default: the host's indexes follow redirects.
const DEFAULT_REDIRECTS: u32 = 10;

/// An HTTP client with the run's TLS roots (system bundle plus `--ca-cert`) and `proxy`,
/// following at most `max_redirects` redirects (0: a redirect is returned as is).
pub(crate) fn agent_with(
    extra_ca_pem: Option<&[u8]>,
    proxy: Option<ureq::Proxy>,
    timeout: Duration,
    max_redirects: u32,
) -> anyhow::Result<Agent> {
    let roots = trusted_roots(extra_ca_pem)?;
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .build();
    Ok(Agent::config_builder()
        .tls_config(tls)
        .proxy(proxy)
        .timeout_global(Some(timeout))
        .max_redirects(max_redirects)
        // 404 is a normal answer (unknown package) and other statuses get our own error
        // text, so inspect the status instead of having ureq turn it into an error.
        .http_status_as_error(false)
        .user_agent(concat!("copa-host/", env!("CARGO_PKG_VERSION")))
        .build()
        .into())
}

fn trusted_roots(extra_ca_pem: Option<&[u8]>) -> anyhow::Result<Vec<Certificate<'static>>> {
    let mut roots = Vec::new();
    match system_bundle()? {
        Some((path, pem)) => {
            // A distro bundle is not ours to fix: skip an odd entry instead of refusing to start.
            for item in parse_pem(&pem) {
                match item {
                    Ok(PemItem::Certificate(cert)) => roots.push(cert),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(path, "skipping unparsable CA bundle entry: {e}"),
                }
            }
        }
        None => tracing::warn!(
            "no system CA bundle found (tried SSL_CERT_FILE and {SYSTEM_CA_BUNDLES:?}); \
             only {} will be trusted",
            Setting::CaCert
        ),
    }

    if let Some(pem) = extra_ca_pem {
        let before = roots.len();
        for item in parse_pem(pem) {
            if let PemItem::Certificate(cert) =
                item.with_context(|| format!("parsing {} PEM", Setting::CaCert))?
            {
                roots.push(cert);
            }
        }
        if roots.len() == before {
            bail!("{} contains no PEM certificate", Setting::CaCert);
        }
    }
    Ok(roots)
}

fn system_bundle() -> anyhow::Result<Option<(String, Vec<u8>)>> {
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        // An explicit setting that points nowhere is a mistake worth reporting.
        let pem = std::fs::read(&path)
            .with_context(|| format!("reading SSL_CERT_FILE {}", path.to_string_lossy()))?;
        return Ok(Some((path.to_string_lossy().into_owned(), pem)));
    }
    Ok(SYSTEM_CA_BUNDLES
        .iter()
        .find_map(|path| Some(((*path).to_owned(), std::fs::read(path).ok()?))))
}

/// ureq errors can embed newlines (e.g. from TLS alerts); callers want a single line.
fn one_line(message: String) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A throwaway HTTP server for the index tests of every ecosystem.
#[cfg(test)]
mod test_server {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::{IndexSettings, PackageIndex};

    /// Path and Accept header of each request the test server received.
    pub type RequestLog = Arc<Mutex<Vec<(String, String)>>>;

    /// Generic over the body so that text pages can stay `&'static str` while compressed
    /// package lists are built at run time.
    pub struct Reply<B> {
        pub status: &'static str,
        pub content_type: &'static str,
        pub body: B,
    }

    /// A minimal HTTP/1.1 server on loopback answering at most `max_requests` requests from
    /// `routes` (path -> reply; anything else is a 404). Records each request's path and Accept.
    /// Returns the server's origin (`http://127.0.0.1:PORT`) and the request log.
    pub fn serve<B: AsRef<[u8]> + Send + 'static>(
        routes: Vec<(&'static str, Reply<B>)>,
        max_requests: usize,
    ) -> (String, RequestLog) {
        serve_recording(routes, max_requests, "accept")
    }

    /// [`serve`], logging the value of request header `logged` (lower case) instead of Accept.
    pub fn serve_recording<B: AsRef<[u8]> + Send + 'static>(
        routes: Vec<(&'static str, Reply<B>)>,
        max_requests: usize,
        logged: &'static str,
    ) -> (String, RequestLog) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let seen = RequestLog::default();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(max_requests) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let mut accept = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case(logged)
                    {
                        accept = value.trim().to_owned();
                    }
                }
                log.lock().unwrap().push((path.clone(), accept));
                let (status, content_type, body) = routes.iter().find(|(p, _)| *p == path).map_or(
                    ("404 Not Found", "text/html", &b"<h1>Not Found</h1>"[..]),
                    |(_, r)| (r.status, r.content_type, r.body.as_ref()),
                );
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len(),
                )
                .unwrap();
                stream.write_all(body).unwrap();
            }
        });
        (origin, seen)
    }

    /// The paths the server was asked for, in order.
    pub fn paths(seen: &RequestLog) -> Vec<String> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    pub fn local_index(pypi_url: &str) -> PackageIndex {
        let settings = IndexSettings {
            pypi_url: pypi_url.to_owned(),
            ..IndexSettings::default()
        };
        PackageIndex::with_proxy(settings, None).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_server::{Reply, local_index, serve};

    #[test]
    fn package_index_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PackageIndex>();
    }

    #[test]
    fn rejects_bad_settings() {
        let settings = |url: &str, pem: Option<&[u8]>| IndexSettings {
            pypi_url: url.to_owned(),
            extra_ca_pem: pem.map(<[u8]>::to_vec),
            nuget_sources: Vec::new(),
            ..IndexSettings::default()
        };
        assert!(PackageIndex::new(settings("pypi.org/simple", None)).is_err());
        assert!(PackageIndex::new(settings("ftp://example.com/simple/", None)).is_err());
        let err = PackageIndex::new(settings("https://pypi.org/simple", Some(b"not a pem")))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("the CA certificate file"),
            "{err:#}"
        );
        let index = PackageIndex::new(settings("https://pypi.org/simple///", None)).unwrap();
        assert_eq!(index.pypi_base, "https://pypi.org/simple/");
    }

    #[test]
    fn an_index_cannot_name_a_file_of_this_machine() {
        let secret = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secret.path(), "host secret").unwrap();
        let packument = format!(
            r#"{{"name":"x","versions":{{"1.0.0":{{"dist":{{"tarball":"file://{}"}}}}}}}}"#,
            secret.path().display()
        );
        let (origin, _) = serve(
            vec![(
                "/x",
                Reply {
                    status: "200 OK",
                    content_type: "application/json",
                    body: packument,
                },
            )],
            2,
        );
        let settings = IndexSettings {
            npm_registry: origin,
            ..IndexSettings::default()
        };
        let index = PackageIndex::with_proxy(settings, None).unwrap();
        let err = index.artifact("npm", "x", "1.0.0").unwrap_err();
        assert!(
            err.contains("is not inside a folder configured as an index"),
            "{err}"
        );
        assert!(!err.contains("host secret"));
    }

    #[test]
    fn the_go_command_of_a_run_reads_the_proxies_planning_reads() {
        let goproxy = |settings: IndexSettings| {
            let env = settings.run_environment();
            env["go"]
                .iter()
                .find(|(name, _)| name == "GOPROXY")
                .map(|(_, value)| value.clone())
        };
        let indexes = [
            ("go".to_string(), "https://a.example".to_string()),
            (
                "pypi".to_string(),
                "https://pypi.example/simple/".to_string(),
            ),
            ("go".to_string(), "https://b.example/".to_string()),
        ];
        assert_eq!(
            goproxy(IndexSettings::default().with_user_indexes(&indexes)).as_deref(),
            Some("https://a.example,https://b.example")
        );
        assert_eq!(
            goproxy(IndexSettings::default().with_user_indexes(&[])).as_deref(),
            Some("https://proxy.golang.org")
        );
    }

    #[test]
    fn dispatches_on_the_ecosystem() {
        let routes = vec![
            (
                "/simple/six/",
                Reply {
                    status: "200 OK",
                    content_type: "text/html",
                    body: r#"<a href="/f/six-1.16.0.tar.gz">six-1.16.0.tar.gz</a>"#,
                },
            ),
            (
                "/debian/dists/stable/Release",
                Reply {
                    status: "200 OK",
                    content_type: "text/plain",
                    // The SHA256 of the index below.
                    body: "SHA256:\n 7ee1b96aea34328c7072b168def5da8f8a0f54136b8ad8764e9514769cbe1adb \
                           28 main/binary-amd64/Packages\n",
                },
            ),
            (
                "/debian/dists/stable/main/binary-amd64/Packages",
                Reply {
                    status: "200 OK",
                    content_type: "text/plain",
                    body: "Package: six\nVersion: 9.9-1\n",
                },
            ),
        ];
        let (origin, seen) = serve(routes, 4);
        let index = local_index(&format!("{origin}/simple/"));
        let only_version = |ecosystem: &str| {
            let versions = index.versions(ecosystem, "six").unwrap();
            assert_eq!(versions.len(), 1, "{ecosystem}: {versions:?}");
            versions[0].version.clone()
        };

        assert_eq!(only_version("PyPI"), "1.16.0");
        assert_eq!(
            only_version(&format!("deb {origin}/debian stable main amd64")),
            "9.9-1"
        );
        for unknown in ["cargo", "debian", "", "debs http://x/ stable main amd64"] {
            let err = index.versions(unknown, "six").unwrap_err();
            assert_eq!(
                err,
                format!(
                    "no package index for ecosystem {unknown} (this host has: {KNOWN_ECOSYSTEMS})"
                )
            );
        }
        // Anything whose first word is `deb` is a repository line, so a malformed one gets the
        // repository syntax error rather than "no package index".
        let err = index.versions("deb stable main", "six").unwrap_err();
        assert!(
            err.contains("deb <uri> <suite> <component> <arch>"),
            "{err}"
        );
        // PyPI once, then InRelease (404), Release and the one index file it lists.
        assert_eq!(seen.lock().unwrap().len(), 4);
    }
}
