//! The plugins' network: HTTP(S) requests to the origins each plugin was granted, and to nothing
//! else. The host applies the run's CA bundle and proxy, adds the user's credentials for the
//! request's origin only, follows redirects only while they stay within the grants, caps every
//! body, and answers repeated GETs from a per-run cache.
//!
//! Nothing here knows an ecosystem: grants are origins, computed by the engine from the plugins'
//! manifests and the user's `--index` flags.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use base64::Engine as _;
use ureq::Agent;
use ureq::http::Uri;

use crate::setting::Setting;

/// The largest body any request may read, whatever the plugin asks for.
pub const MAX_BODY: u64 = 64 << 20;
/// The cache keeps answers up to this many bytes in all, then stops adding.
const MAX_CACHED_BYTES: u64 = 256 << 20;
const MAX_REDIRECTS: usize = 10;
const TIMEOUT: Duration = Duration::from_secs(300);
/// Headers only the host sets: credentials are never the plugin's to choose or to see.
const HOST_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization", "host"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub max_body: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The URL that answered, after redirects.
    pub url: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    NotGranted(String),
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

/// `scheme://host:port`, lower case, with the port always written, so that two spellings of
/// one origin compare equal and `http://a` never matches `https://a`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(String);

impl Origin {
    pub fn of(url: &str) -> Result<Origin, String> {
        let uri: Uri = url.parse().map_err(|_| format!("not a URL: {url}"))?;
        // Credentials travel only as the host adds them (--index-credential), never in a URL,
        // where they would reach plugins, errors and logs.
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(format!(
                "a URL with credentials in it is refused; use {}",
                Setting::IndexCredential
            ));
        }
        let scheme = uri
            .scheme_str()
            .map(str::to_ascii_lowercase)
            .filter(|s| s == "http" || s == "https")
            .ok_or_else(|| format!("not an http(s) URL: {url}"))?;
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("no host in {url}"))?
            .to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(Origin(format!("{scheme}://{host}:{port}")))
    }
}

impl Origin {
    /// Whether the host is this machine or a private network, written as such (`localhost`, a
    /// loopback, private, link-local or unspecified address): a plugin may not grant itself one
    /// by default; only the user can, with `--index`.
    pub fn is_local(&self) -> bool {
        let host = self
            .0
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => {
                ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
            }
            Ok(std::net::IpAddr::V6(ip)) => {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.is_unique_local()
                    || ip.is_unicast_link_local()
                    || ip
                        .to_ipv4_mapped()
                        .is_some_and(|v4| v4.is_loopback() || v4.is_private() || v4.is_link_local())
            }
            Err(_) => false,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Origin {
    /// The host name (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        let authority = self.0.split_once("://").map_or("", |(_, a)| a);
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// The user's credential for one origin (`--index-credential ORIGIN=ENV`): `user:password` is
/// sent as Basic, anything else as a Bearer token. Never printed: its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

impl Credential {
    pub fn new(value: String) -> Self {
        Credential(value)
    }

    /// The `Authorization` header value.
    pub fn header(&self) -> String {
        match self.login() {
            Some(_) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(&self.0)
            ),
            None => format!("Bearer {}", self.0),
        }
    }

    /// The user and password of a `user:password` credential.
    pub fn login(&self) -> Option<(&str, &str)> {
        self.0.split_once(':')
    }
}

/// `url` without the `user:password@` of its authority, and that login (percent-decoded) as a
/// credential. The error names the URL without the login.
pub fn split_credential(url: &str) -> Result<(String, Option<Credential>)> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok((url.to_string(), None));
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some((login, host)) = rest[..authority_end].rsplit_once('@') else {
        return Ok((url.to_string(), None));
    };
    let bare = format!("{scheme}://{host}{}", &rest[authority_end..]);
    let login = percent_decode(login).ok_or_else(|| {
        anyhow!("{bare}: the login in the URL is not valid percent-encoded UTF-8")
    })?;
    Ok((bare, Some(Credential::new(login))))
}

/// What a run grants: each plugin's origins, and among them those the user named (`--index`).
#[derive(Default)]
pub struct Grants {
    pub origins: HashMap<String, Vec<Origin>>,
    pub user_named: HashMap<String, Vec<Origin>>,
}

/// (plugin, URL, request headers): one plugin never reads another's answers.
type CacheKey = (String, String, Vec<(String, String)>);

pub struct PluginHttp {
    /// Built on the first request: most runs load no plugin that uses `http`, and need not
    /// read the CA bundle for it.
    agent: OnceLock<Result<Agent, String>>,
    extra_ca_pem: Option<Vec<u8>>,
    proxy: Option<ureq::Proxy>,
    /// Plugin name -> the origins it may reach.
    grants: HashMap<String, Vec<Origin>>,
    /// Origin -> the credential the user configured for it.
    credentials: HashMap<Origin, Credential>,
    /// Plugin name -> the origins the user named for it (`--index`): the only ones it is sent
    /// credentials for, so a plugin cannot collect them by declaring someone's origin.
    user_named: HashMap<String, Vec<Origin>>,
    /// Plugin name -> the folders the user configured as its indexes (`--index ECO=file:///DIR`):
    /// the only files of this machine it may read.
    folders: HashMap<String, Vec<PathBuf>>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    answers: HashMap<CacheKey, Arc<Response>>,
    bytes: u64,
}

impl PluginHttp {
    /// Requests go through the proxy of the environment, trusting the system's CAs and
    /// `extra_ca_pem`.
    pub fn new(
        extra_ca_pem: Option<&[u8]>,
        grants: Grants,
        credentials: HashMap<Origin, Credential>,
    ) -> Self {
        Self::with_proxy(
            extra_ca_pem,
            ureq::Proxy::try_from_env(),
            grants,
            credentials,
        )
    }

    /// Separate from `new` so tests talking to a loopback server are not routed through
    /// whatever proxy the machine running them has configured.
    fn with_proxy(
        extra_ca_pem: Option<&[u8]>,
        proxy: Option<ureq::Proxy>,
        grants: Grants,
        credentials: HashMap<Origin, Credential>,
    ) -> Self {
        PluginHttp {
            agent: OnceLock::new(),
            extra_ca_pem: extra_ca_pem.map(<[u8]>::to_vec),
            proxy,
            grants: grants.origins,
            credentials,
            user_named: grants.user_named,
            folders: HashMap::new(),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// These grants with the folders each plugin may read through `file://` URLs (see
    /// [`read_folder_url`]).
    pub fn with_folders(mut self, folders: HashMap<String, Vec<PathBuf>>) -> Self {
        self.folders = folders;
        self
    }

    /// A netrc file with the user's `user:password` credentials for the origins named for
    /// `plugin`, for the tools its steps run in containers (pip, go and curl read the file
    /// `NETRC` names); none when there is no such credential. netrc has no place for a bearer
    /// token or for whitespace, so such a credential stays out.
    pub fn netrc(&self, plugin: &str) -> Option<String> {
        let named = self.user_named.get(plugin)?;
        let mut netrc = String::new();
        let mut hosts: Vec<&str> = Vec::new();
        for origin in named {
            let Some((user, password)) = self.credentials.get(origin).and_then(Credential::login)
            else {
                continue;
            };
            let fits = |token: &str| {
                !token.is_empty() && !token.contains(|c: char| c.is_whitespace() || c == '"')
            };
            // netrc knows hosts, not origins: the first credential for a host wins.
            if fits(user) && fits(password) && !hosts.contains(&origin.host()) {
                hosts.push(origin.host());
                netrc.push_str(&format!(
                    "machine {} login {user} password {password}\n",
                    origin.host()
                ));
            }
        }
        (!netrc.is_empty()).then_some(netrc)
    }

    /// The client, which follows no redirect itself: each hop is checked against the grants.
    fn agent(&self) -> Result<&Agent, HttpError> {
        self.agent
            .get_or_init(|| {
                crate::index::agent_with(
                    self.extra_ca_pem.as_deref(),
                    self.proxy.clone(),
                    TIMEOUT,
                    0,
                )
                .map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| HttpError::Failed(e.clone()))
    }

    /// The origins `plugin` may reach.
    pub fn granted(&self, plugin: &str) -> &[Origin] {
        self.grants.get(plugin).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn send(&self, plugin: &str, request: Request) -> Result<Response, HttpError> {
        if let Some((name, _)) = request
            .headers
            .iter()
            .find(|(name, _)| HOST_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        {
            return Err(HttpError::Invalid(format!(
                "the {name} header is set by the host, not by a plugin"
            )));
        }
        let max_body = request.max_body.min(MAX_BODY);
        if is_file_url(&request.url) {
            return self.read_file_url(plugin, &request, max_body);
        }
        self.check_grant(plugin, &request.url)?;
        let key = (
            plugin.to_owned(),
            request.url.clone(),
            request.headers.clone(),
        );
        if request.method == Method::Get
            && let Some(hit) = self.lock_cache().answers.get(&key)
        {
            if hit.body.len() as u64 > max_body {
                return Err(HttpError::TooLarge(max_body));
            }
            return Ok(hit.as_ref().clone());
        }
        let response = self.follow(plugin, &request, max_body)?;
        if request.method == Method::Get {
            let mut cache = self.lock_cache();
            let size = response.body.len() as u64;
            if cache.bytes + size <= MAX_CACHED_BYTES {
                cache.bytes += size;
                cache.answers.insert(key, Arc::new(response.clone()));
            }
        }
        Ok(response)
    }

    /// The bytes at `url` for a `download` step of `plugin`: within its grants like any request,
    /// at most `max` bytes, and only a 200 counts. A file the plugin fetched itself (to check it
    /// before naming it) comes from the cache; the step's digest check still applies.
    pub fn download(&self, plugin: &str, url: &str, max: u64) -> Result<Vec<u8>, HttpError> {
        let request = Request {
            method: Method::Get,
            url: url.to_owned(),
            headers: Vec::new(),
            max_body: max,
        };
        if is_file_url(url) {
            return self.read_file_url(plugin, &request, max).map(|r| r.body);
        }
        self.check_grant(plugin, url)?;
        let key = (plugin.to_owned(), url.to_owned(), Vec::new());
        let cached = self.lock_cache().answers.get(&key).cloned();
        let response = match cached {
            Some(hit) if hit.body.len() as u64 <= max => hit.as_ref().clone(),
            _ => self.follow(plugin, &request, max)?,
        };
        if response.status != 200 {
            return Err(HttpError::Failed(format!(
                "{}: HTTP status {}",
                response.url, response.status
            )));
        }
        Ok(response.body)
    }

    /// A `file://` request: answered from the folders configured for `plugin`, never cached
    /// (the files are local).
    fn read_file_url(
        &self,
        plugin: &str,
        request: &Request,
        max_body: u64,
    ) -> Result<Response, HttpError> {
        let folders = self.folders.get(plugin).map(Vec::as_slice).unwrap_or(&[]);
        let mut response = read_folder_url(folders, &request.url, max_body)?;
        if request.method == Method::Head {
            response.body.clear();
        }
        Ok(response)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends the request, and each redirect while it stays within the grants.
    fn follow(
        &self,
        plugin: &str,
        request: &Request,
        max_body: u64,
    ) -> Result<Response, HttpError> {
        let mut url = request.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let origin = self.check_grant(plugin, &url)?;
            let mut builder = match request.method {
                Method::Get => ureq::http::Request::get(&url),
                Method::Head => ureq::http::Request::head(&url),
            };
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            // The credential of this hop's origin only, and only where the user sent this plugin:
            // a redirect elsewhere goes without it.
            let user_named = self
                .user_named
                .get(plugin)
                .is_some_and(|named| named.contains(&origin));
            if let Some(credential) = self.credentials.get(&origin).filter(|_| user_named) {
                builder = builder.header("authorization", credential.header());
            }
            let built = builder
                .body(())
                .map_err(|e| HttpError::Invalid(format!("{url}: {e}")))?;
            let mut answer = self
                .agent()?
                .run(built)
                .map_err(|e| HttpError::Failed(format!("{url}: {e}")))?;
            let status = answer.status().as_u16();
            let headers: Vec<(String, String)> = answer
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect();
            if (300..400).contains(&status)
                && let Some((_, location)) = headers.iter().find(|(n, _)| n == "location")
            {
                url = resolve(&url, location)
                    .map_err(|e| HttpError::Failed(format!("{url}: redirect: {e}")))?;
                continue;
            }
            let body = match request.method {
                Method::Head => Vec::new(),
                Method::Get => {
                    read_capped(answer.body_mut().as_reader(), max_body).map_err(|e| match e {
                        Capped::TooLarge => HttpError::TooLarge(max_body),
                        Capped::Io(e) => HttpError::Failed(format!("{url}: {e}")),
                    })?
                }
            };
            return Ok(Response {
                status,
                url,
                headers,
                body,
            });
        }
        Err(HttpError::Failed(format!(
            "{}: more than {MAX_REDIRECTS} redirects",
            request.url
        )))
    }

    fn check_grant(&self, plugin: &str, url: &str) -> Result<Origin, HttpError> {
        let origin = Origin::of(url).map_err(HttpError::Invalid)?;
        let granted = self.granted(plugin);
        if granted.contains(&origin) {
            return Ok(origin);
        }
        let list: Vec<String> = granted.iter().map(Origin::to_string).collect();
        Err(HttpError::NotGranted(format!(
            "{origin} is not granted to plugin {plugin} (granted: {}; a user grants an index with {} ECOSYSTEM=URL)",
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            },
            Setting::Index
        )))
    }
}

enum Capped {
    TooLarge,
    Io(std::io::Error),
}

/// Reads at most `max` bytes; more is an error, never a truncated body.
fn read_capped(reader: impl Read, max: u64) -> Result<Vec<u8>, Capped> {
    let mut body = Vec::new();
    reader
        .take(max + 1)
        .read_to_end(&mut body)
        .map_err(Capped::Io)?;
    if body.len() as u64 > max {
        return Err(Capped::TooLarge);
    }
    Ok(body)
}

fn is_file_url(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("file://"))
}

/// The folder a `file://` index URL names: an absolute path, percent-decoded, of an existing
/// directory, without `.` or `..` components.
pub fn folder_of(url: &str) -> Result<PathBuf, String> {
    let path = file_url_path(url)?;
    if !path.is_dir() {
        return Err(format!("{url}: not a directory"));
    }
    Ok(path)
}

fn file_url_path(url: &str) -> Result<PathBuf, String> {
    let encoded = url
        .get(7..)
        .filter(|_| is_file_url(url))
        .ok_or_else(|| format!("not a file:// URL: {url}"))?;
    if encoded.contains(['?', '#']) {
        return Err(format!("{url}: a file URL has no query or fragment"));
    }
    let decoded =
        percent_decode(encoded).ok_or_else(|| format!("{url}: not valid percent-encoded UTF-8"))?;
    if !decoded.starts_with('/') {
        return Err(format!("{url}: not an absolute path (file:///DIR)"));
    }
    // Checked on the decoded path, so %2e%2e is a `..` too.
    if decoded
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(format!("{url}: a path with . or .. is refused"));
    }
    Ok(PathBuf::from(decoded))
}

/// The answer to a GET of a `file://` URL inside one of `folders` (as the user configured them):
/// a file's bytes (at most `max` of them), a directory's entry names one a line (sorted, each
/// directory with a trailing `/`), 404 for a path that is not there. A path outside the
/// folders, also through a symlink, is refused, as a URL of an origin not granted is.
pub fn read_folder_url(folders: &[PathBuf], url: &str, max: u64) -> Result<Response, HttpError> {
    let path = file_url_path(url).map_err(HttpError::Invalid)?;
    let refused = |why: &str| {
        HttpError::NotGranted(format!(
            "{url} {why} (a folder is granted with {} ECOSYSTEM=file:///DIR)",
            Setting::Index
        ))
    };
    let Some(folder) = folders.iter().find(|f| path.starts_with(f)) else {
        return Err(refused("is not inside a folder configured as an index"));
    };
    let answer = |status: u16, body: Vec<u8>| Response {
        status,
        url: url.to_owned(),
        headers: Vec::new(),
        body,
    };
    let real = match path.canonicalize() {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(answer(404, Vec::new())),
        Err(e) => return Err(HttpError::Failed(format!("{url}: {e}"))),
    };
    let root = folder
        .canonicalize()
        .map_err(|e| HttpError::Failed(format!("{}: {e}", folder.display())))?;
    if !real.starts_with(&root) {
        return Err(refused("leads outside its folder through a symlink"));
    }
    let failed = |e: std::io::Error| HttpError::Failed(format!("{url}: {e}"));
    let body = if real.is_dir() {
        listing(&real, max).map_err(failed)?
    } else {
        let file = std::fs::File::open(&real).map_err(failed)?;
        read_capped(file, max).map_err(|e| match e {
            Capped::TooLarge => HttpError::TooLarge(max),
            Capped::Io(e) => failed(e),
        })?
    };
    Ok(answer(200, body))
}

/// A directory's entry names one a line, sorted, directories with a trailing `/` (names that
/// are not UTF-8 or hold a newline are left out: no URL could name them back).
fn listing(dir: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.contains('\n') {
            continue;
        }
        let slash = if entry.path().is_dir() { "/" } else { "" };
        names.push(format!("{name}{slash}\n"));
    }
    names.sort();
    let body = names.concat().into_bytes();
    if body.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "the listing is longer than {max} bytes"
        )));
    }
    Ok(body)
}

/// A redirect's `Location` against the URL that sent it.
fn resolve(base: &str, location: &str) -> Result<String> {
    // Absolute when it starts with a scheme (RFC 3986: a letter, then letters, digits, + - .).
    let has_scheme = location.find(':').is_some_and(|end| {
        let scheme = &location[..end];
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        return Ok(location.to_owned());
    }
    let uri: Uri = base.parse().map_err(|_| anyhow!("bad URL {base}"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        bail!("bad URL {base}");
    };
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{location}"));
    }
    let path = uri.path();
    let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
    Ok(format!("{scheme}://{authority}{dir}{location}"))
}

/// `%XX` escapes decoded; none when they are malformed or do not decode to UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(after.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &after[2..];
        } else {
            bytes.push(byte);
            rest = after;
        }
    }
    String::from_utf8(bytes).ok()
}

/// `text` with the login (`user:password@`) of every http(s) URL in it replaced by `***@`:
/// what the host prints or writes (errors, the summary, the VEX document) passes through here,
/// so a credential that came in a URL never leaves in one.
pub fn redact_logins(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let scheme_start = before[..at]
            .rfind(|c: char| !c.is_ascii_alphanumeric())
            .map_or(0, |i| i + 1);
        let scheme = &before[scheme_start..at];
        let authority_end = after
            .find(|c: char| "/?#\"'<>()[] ".contains(c) || c.is_whitespace())
            .unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(login_end)
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                out.push_str("***");
                rest = &after[login_end..];
            }
            _ => rest = after,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_in_an_index_url_becomes_a_credential() {
        let (url, credential) =
            split_credential("https://me%40corp:p%3Ass@mirror.example:8443/simple/").unwrap();
        assert_eq!(url, "https://mirror.example:8443/simple/");
        assert_eq!(
            credential.unwrap().header(),
            Credential::new("me@corp:p:ss".into()).header()
        );
        // An `@` after the authority is part of the path, not a login.
        let (url, credential) = split_credential("https://mirror.example/a@b/").unwrap();
        assert_eq!(
            (url.as_str(), credential),
            ("https://mirror.example/a@b/", None)
        );
        let err = split_credential("https://me:%ZZ@mirror.example/").unwrap_err();
        assert_eq!(
            err.to_string(),
            "https://mirror.example/: the login in the URL is not valid percent-encoded UTF-8"
        );
    }

    #[test]
    fn origins_compare_by_scheme_host_and_port() {
        let origin = |u: &str| Origin::of(u).unwrap().to_string();
        assert_eq!(
            origin("HTTPS://Repo.Example/packages/"),
            "https://repo.example:443"
        );
        assert_eq!(
            origin("https://repo.example:443/x"),
            "https://repo.example:443"
        );
        assert_eq!(origin("http://127.0.0.1:8080/a?b"), "http://127.0.0.1:8080");
        assert_ne!(origin("http://a.example/"), origin("https://a.example/"));
        assert!(Origin::of("file:///etc/passwd").is_err());
        assert!(Origin::of("ftp://a.example/").is_err());
        assert!(Origin::of("/relative").is_err());
        assert!(Origin::of("https://user:token@repo.example/").is_err());
        let local = |u: &str| Origin::of(u).unwrap().is_local();
        for url in [
            "http://127.0.0.1:2375/",
            "http://localhost/",
            "http://169.254.169.254/latest",
            "http://10.1.2.3/",
            "http://[::1]:80/",
            "http://0.0.0.0/",
        ] {
            assert!(local(url), "{url}");
        }
        assert!(!local("https://packages.example.org/index/"));
        assert!(!local("https://8.8.8.8/"));
    }

    #[test]
    fn logins_in_urls_are_redacted() {
        assert_eq!(
            redact_logins(
                "fetching https://me:s3cret@mirror.example/simple/x/: HTTP 500 (was \"http://tok@a.example:8080\")"
            ),
            "fetching https://***@mirror.example/simple/x/: HTTP 500 (was \"http://***@a.example:8080\")"
        );
        // What is not an http(s) login stays: an ssh user, a purl, an address in a path.
        for kept in [
            "ssh://git@github.com/a/b",
            "pkg:npm/%40scope/x@1.0",
            "https://example.com/a@b",
            "git@github.com:a/b",
            "https://",
        ] {
            assert_eq!(redact_logins(kept), kept);
        }
    }

    #[test]
    fn credentials_are_basic_for_user_password_else_bearer() {
        let basic = Credential::new("u:p".into());
        assert_eq!(basic.header(), "Basic dTpw");
        assert_eq!(Credential::new("tok".into()).header(), "Bearer tok");
        assert_eq!(format!("{basic:?}"), "Credential(..)");
    }

    #[test]
    fn netrc_holds_the_logins_of_the_origins_named_for_the_plugin() {
        let origin = |url: &str| Origin::of(url).unwrap();
        let grants = Grants {
            origins: HashMap::new(),
            user_named: HashMap::from([(
                "p".to_owned(),
                vec![
                    origin("https://mirror.example:8443/simple/"),
                    origin("https://tokens.example/"),
                    origin("http://[::1]:3141/"),
                    origin("https://spaces.example/"),
                ],
            )]),
        };
        let credentials = HashMap::from([
            (
                origin("https://mirror.example:8443"),
                Credential::new("me:pa:ss".into()),
            ),
            (
                origin("https://tokens.example"),
                Credential::new("tok".into()),
            ),
            (origin("http://[::1]:3141"), Credential::new("u:p".into())),
            (
                origin("https://spaces.example"),
                Credential::new("a b:c".into()),
            ),
            (
                origin("https://other.example"),
                Credential::new("x:y".into()),
            ),
        ]);
        let http = PluginHttp::with_proxy(None, None, grants, credentials);
        assert_eq!(
            http.netrc("p").unwrap(),
            "machine mirror.example login me password pa:ss\nmachine ::1 login u password p\n"
        );
        assert_eq!(http.netrc("other"), None);
    }

    #[test]
    fn redirects_resolve_against_the_sender() {
        let base = "http://a.example:81/dir/file.json";
        assert_eq!(resolve(base, "/x").unwrap(), "http://a.example:81/x");
        assert_eq!(resolve(base, "y").unwrap(), "http://a.example:81/dir/y");
        assert_eq!(
            resolve(base, "//b.example/z").unwrap(),
            "http://b.example/z"
        );
        assert_eq!(
            resolve(base, "https://c.example/").unwrap(),
            "https://c.example/"
        );
        assert_eq!(
            resolve(base, "/login?next=https://x").unwrap(),
            "http://a.example:81/login?next=https://x"
        );
    }

    #[test]
    fn ungranted_origins_and_host_headers_are_refused_before_any_request() {
        let grants = Grants {
            origins: HashMap::from([(
                "p".to_owned(),
                vec![Origin::of("http://127.0.0.1:9").unwrap()],
            )]),
            user_named: HashMap::new(),
        };
        let http = PluginHttp::new(None, grants, HashMap::new());
        let request = |url: &str, headers: Vec<(String, String)>| Request {
            method: Method::Get,
            url: url.to_owned(),
            headers,
            max_body: 10,
        };
        let refused = http
            .send("p", request("http://127.0.0.1:10/x", vec![]))
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "http://127.0.0.1:10 is not granted to plugin p (granted: http://127.0.0.1:9; a user grants an index with the index setting ECOSYSTEM=URL)"
        );
        assert!(matches!(
            http.send("other", request("http://127.0.0.1:9/x", vec![])),
            Err(HttpError::NotGranted(_))
        ));
        assert!(matches!(
            http.send(
                "p",
                request(
                    "http://127.0.0.1:9/x",
                    vec![("Authorization".into(), "x".into())]
                )
            ),
            Err(HttpError::Invalid(_))
        ));
    }

    /// (path, Authorization header) of each request a test server got.
    type RequestLog = Arc<Mutex<Vec<(String, String)>>>;

    /// A server on 127.0.0.1 answering each path with a fixed response (status line and
    /// headers, then a body); it logs every request.
    fn serve(answers: Vec<(&'static str, String)>) -> (String, RequestLog) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(20).flatten() {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let mut authorization = String::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorization = value.trim().to_owned();
                    }
                }
                seen.lock().unwrap().push((path.clone(), authorization));
                let answer = answers
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_else(|| "404 Not Found\r\nContent-Length: 0\r\n\r\n".into());
                let _ = (&stream).write_all(format!("HTTP/1.1 {answer}").as_bytes());
            }
        });
        (url, log)
    }

    #[test]
    fn redirects_stay_within_the_grants_and_credentials_stay_with_their_origin() {
        let (files, files_log) = serve(vec![(
            "/file",
            "200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into(),
        )]);
        let (elsewhere, elsewhere_log) = serve(Vec::new());
        let moved = |to: String| {
            format!("302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        };
        let (index, index_log) = serve(vec![
            ("/to-files", moved(format!("{files}/file"))),
            ("/to-elsewhere", moved(format!("{elsewhere}/x"))),
        ]);
        let origin = |url: &str| Origin::of(url).unwrap();
        let granted = vec![origin(&index), origin(&files)];
        let grants = Grants {
            origins: HashMap::from([("p".to_owned(), granted.clone())]),
            user_named: HashMap::from([("p".to_owned(), granted)]),
        };
        // The user has a credential for the index only.
        let credentials = HashMap::from([(origin(&index), Credential::new("s3cret".into()))]);
        let http = PluginHttp::with_proxy(None, None, grants, credentials);
        let get = |url: String| Request {
            method: Method::Get,
            url,
            headers: Vec::new(),
            max_body: 10,
        };
        let answer = http.send("p", get(format!("{index}/to-files"))).unwrap();
        assert_eq!((answer.status, answer.body.as_slice()), (200, &b"ok"[..]));
        assert_eq!(answer.url, format!("{files}/file"));
        assert_eq!(
            *index_log.lock().unwrap(),
            [("/to-files".to_owned(), "Bearer s3cret".to_owned())]
        );
        assert_eq!(
            *files_log.lock().unwrap(),
            [("/file".to_owned(), String::new())],
            "the redirect to another origin goes without the credential"
        );
        let refused = http
            .send("p", get(format!("{index}/to-elsewhere")))
            .unwrap_err();
        assert!(matches!(refused, HttpError::NotGranted(_)), "{refused}");
        assert!(elsewhere_log.lock().unwrap().is_empty());
        // Another plugin gets neither the cached answer nor the origin.
        assert!(matches!(
            http.send("q", get(format!("{index}/to-files"))),
            Err(HttpError::NotGranted(_))
        ));
        // A body longer than the plugin accepts is an error, not a truncated answer.
        let mut small = get(format!("{files}/file"));
        small.max_body = 1;
        let too_large = http.send("p", small).unwrap_err();
        assert_eq!(too_large, HttpError::TooLarge(1));
    }

    #[test]
    fn a_download_the_plugin_fetched_comes_from_the_cache() {
        let ok = "200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string();
        let (files, log) = serve(vec![("/a.tgz", ok.clone()), ("/b.tgz", ok)]);
        let grants = Grants {
            origins: HashMap::from([("p".to_owned(), vec![Origin::of(&files).unwrap()])]),
            user_named: HashMap::new(),
        };
        let http = PluginHttp::with_proxy(None, None, grants, HashMap::new());
        let fetched = Request {
            method: Method::Get,
            url: format!("{files}/a.tgz"),
            headers: Vec::new(),
            max_body: 10,
        };
        http.send("p", fetched).unwrap();
        assert_eq!(
            http.download("p", &format!("{files}/a.tgz"), 10).unwrap(),
            b"ok"
        );
        assert_eq!(
            http.download("p", &format!("{files}/b.tgz"), 10).unwrap(),
            b"ok"
        );
        let paths: Vec<String> = log.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(paths, ["/a.tgz", "/b.tgz"]);
        // The cache answers only within the grants, and only for a body within the step's limit.
        assert!(matches!(
            http.download("q", &format!("{files}/a.tgz"), 10),
            Err(HttpError::NotGranted(_))
        ));
        assert_eq!(
            http.download("p", &format!("{files}/a.tgz"), 1),
            Err(HttpError::TooLarge(1))
        );
    }

    #[test]
    fn a_configured_folder_answers_file_urls_inside_it_only() {
        let root = tempfile::tempdir().unwrap();
        let feed = root.path().join("my feed");
        std::fs::create_dir_all(feed.join("a.lib/1.0.0")).unwrap();
        std::fs::write(feed.join("A.Lib.1.0.0.nupkg"), b"zip").unwrap();
        std::fs::write(root.path().join("secret"), b"host secret").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), feed.join("leak.nupkg")).unwrap();
        std::os::unix::fs::symlink(root.path(), feed.join("up")).unwrap();
        let url = |rel: &str| format!("file://{}/{rel}", root.path().display());
        let grants = Grants::default();
        let http = PluginHttp::with_proxy(None, None, grants, HashMap::new()).with_folders(
            HashMap::from([("p".to_owned(), vec![folder_of(&url("my%20feed/")).unwrap()])]),
        );
        let get = |plugin: &str, url: String, max_body: u64| {
            let request = Request {
                method: Method::Get,
                url,
                headers: Vec::new(),
                max_body,
            };
            http.send(plugin, request)
        };
        let listing = get("p", url("my%20feed/"), 1000).unwrap();
        assert_eq!(
            String::from_utf8(listing.body).unwrap(),
            "A.Lib.1.0.0.nupkg\na.lib/\nleak.nupkg\nup/\n"
        );
        let file = get("p", url("my%20feed/A.Lib.1.0.0.nupkg"), 1000).unwrap();
        assert_eq!((file.status, file.body.as_slice()), (200, &b"zip"[..]));
        assert_eq!(
            http.download("p", &url("my%20feed/A.Lib.1.0.0.nupkg"), 1000),
            Ok(b"zip".to_vec())
        );
        assert_eq!(
            get("p", url("my%20feed/gone.nupkg"), 1000).unwrap().status,
            404
        );
        assert_eq!(
            get("p", url("my%20feed/A.Lib.1.0.0.nupkg"), 2),
            Err(HttpError::TooLarge(2))
        );
        // Out of the folder: by `..` (also encoded), by a symlink, by being elsewhere, or for
        // another plugin.
        for (plugin, target) in [
            ("p", url("my%20feed/../secret")),
            ("p", url("my%20feed/%2e%2e/secret")),
            ("p", url("my%20feed/./A.Lib.1.0.0.nupkg")),
            ("p", url("secret")),
            ("p", url("my%20feed/leak.nupkg")),
            ("p", url("my%20feed/up/secret")),
            ("p", url("my%20feed%2f..%2fsecret")),
            ("q", url("my%20feed/A.Lib.1.0.0.nupkg")),
            ("p", "file://relative/x".to_owned()),
            ("p", url("my%20feed/A.Lib.1.0.0.nupkg?x")),
            ("p", url("my%20feed/%ZZ")),
        ] {
            let refused = get(plugin, target.clone(), 1000).unwrap_err();
            assert!(
                matches!(refused, HttpError::NotGranted(_) | HttpError::Invalid(_)),
                "{target}: {refused}"
            );
            assert!(!refused.to_string().contains("host secret"));
            assert!(http.download(plugin, &target, 1000).is_err(), "{target}");
        }
        assert!(
            folder_of(&url("secret"))
                .unwrap_err()
                .ends_with("not a directory")
        );
    }

    #[test]
    fn bodies_over_the_limit_are_errors() {
        assert!(matches!(
            read_capped(&b"12345"[..], 4),
            Err(Capped::TooLarge)
        ));
        assert_eq!(read_capped(&b"1234"[..], 4).ok().unwrap(), b"1234");
    }
}
