//! The Go module proxies of a `GOPROXY` list, for plugins of contracts before 0.4, which read
//! them through `package-index` (0.4 plugins read them over `http` with
//! `copa_plugin_sdk::goproxy`, whose protocol reader this uses), and for the go command in a
//! run. What only this path needs stays here: the list's syntax (after a `,` the next proxy is
//! asked only when one lacks the module, after a `|` on any error, as the go command does;
//! `direct` and `off` end it for planning), `file://` proxies, and the host's own requests.

use std::io::Read;

use copa_plugin_sdk::goproxy::{self, MAX_LIST_BYTES};
use ureq::Agent;

use super::{PackageVersion, one_line};

/// One entry of a `GOPROXY` list, with how a failure of it falls through to the next.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    url: String,
    /// `|` after this entry: any error falls through, not only "not found".
    on_any_error: bool,
}

/// The proxies of a `GOPROXY` value, up to `direct` or `off` (fetching from version control,
/// or nothing), which have no version list to read. An entry that is neither an http(s) nor a
/// file URL is an error.
fn entries(goproxy: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut rest = goproxy.trim();
    while !rest.is_empty() {
        let end = rest.find([',', '|']).unwrap_or(rest.len());
        let url = rest[..end].trim();
        let on_any_error = rest[end..].starts_with('|');
        rest = rest.get(end + 1..).unwrap_or("");
        if url == "direct" || url == "off" {
            break;
        }
        if url.is_empty() {
            continue;
        }
        if !(is_http(url) || url.starts_with("file://")) {
            // Without its login: this is shown to the user.
            let shown = crate::http::split_credential(url).map_or(String::new(), |(bare, _)| bare);
            return Err(format!(
                "GOPROXY entry {shown:?} is not an http(s) or file URL"
            ));
        }
        entries.push(Entry {
            url: url.trim_end_matches('/').to_string(),
            on_any_error,
        });
    }
    Ok(entries)
}

fn is_http(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// The http(s) proxies of a `GOPROXY` value, in order: those a plugin can read over `http`
/// (`--go-proxy` stands for an `--index go=URL` of each). `file://` proxies, `direct` and `off`
/// are for the go command in the run only.
pub fn http_proxies(goproxy: &str) -> Result<Vec<String>, String> {
    Ok(entries(goproxy)?
        .into_iter()
        .map(|entry| entry.url)
        .filter(|url| is_http(url))
        .collect())
}

/// The `GOPROXY` of this index and of the go command in a run, so that the go command reaches
/// every proxy planning read: the user's (`--go-proxy`) whole, followed by the `--index go=`
/// URLs it does not name; without one, those URLs; `None` when there are neither.
pub(super) fn with_index_urls(goproxy: Option<&str>, index_urls: &[&str]) -> Option<String> {
    // The user's list may carry logins, which `--go-proxy`'s index URLs no longer do.
    let named: Vec<String> = goproxy
        .and_then(|goproxy| entries(goproxy).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|entry| crate::http::split_credential(&entry.url).map_or(entry.url, |(bare, _)| bare))
        .collect();
    let missing: Vec<&str> = index_urls
        .iter()
        .map(|url| url.trim_end_matches('/'))
        .filter(|url| !named.iter().any(|named| named == url))
        .collect();
    match (goproxy, missing.is_empty()) {
        (goproxy, true) => goproxy.map(str::to_string),
        (None, false) => Some(missing.join(",")),
        (Some(goproxy), false) => Some(format!("{goproxy},{}", missing.join(","))),
    }
}

#[derive(Clone, Debug)]
pub struct GoProxy {
    entries: Vec<Entry>,
}

impl GoProxy {
    /// Parses a `GOPROXY` value; one that names no proxy to read is an error.
    pub fn new(goproxy: &str) -> Result<Self, String> {
        let entries = entries(goproxy)?;
        if entries.is_empty() {
            return Err("GOPROXY names no module proxy before direct or off".to_string());
        }
        Ok(Self { entries })
    }

    /// The versions of `module` the first proxy that has it lists; empty when none has it.
    pub fn versions(&self, agent: &Agent, module: &str) -> Result<Vec<PackageVersion>, String> {
        let mut last_error = None;
        for entry in &self.entries {
            let url = goproxy::list_url(&entry.url, module)?;
            match fetch(agent, &url) {
                Ok(Some(versions)) => {
                    return Ok(versions.into_iter().map(package_version).collect());
                }
                Ok(None) => continue,
                Err(e) if entry.on_any_error => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        last_error.map_or(Ok(Vec::new()), Err)
    }
}

fn package_version(version: String) -> PackageVersion {
    PackageVersion {
        version,
        ..PackageVersion::default()
    }
}

/// The versions the list at `url` names; `None` when the proxy does not have the module.
fn fetch(agent: &Agent, url: &str) -> Result<Option<Vec<String>>, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return read_file(path);
    }
    tracing::debug!(%url, "querying module proxy");
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| one_line(format!("fetching {url}: {e}")))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_LIST_BYTES)
        .read_to_vec()
        .map_err(|e| one_line(format!("reading {url}: {e}")))?;
    goproxy::read_answer(url, status, &body)
}

/// A `file://` proxy's list, bounded like one read over HTTP; `None` when there is none.
fn read_file(path: &str) -> Result<Option<Vec<String>>, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {path}: {e}")),
    };
    let mut body = Vec::new();
    file.take(MAX_LIST_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading {path}: {e}"))?;
    if body.len() as u64 > MAX_LIST_BYTES {
        return Err(format!(
            "reading {path}: larger than {MAX_LIST_BYTES} bytes"
        ));
    }
    Ok(Some(goproxy::read_list(&body)))
}

/// The go command's settings for a run: the configured proxies, and the checksum-database and
/// private-module settings of this process's environment (a private module needs GOPRIVATE /
/// GONOSUMDB in the run exactly as on the user's machine).
pub(super) fn environment(go_proxy: &str) -> Vec<(String, String)> {
    let mut env = vec![("GOPROXY".to_string(), go_proxy.to_string())];
    for name in [
        "GOSUMDB",
        "GONOSUMDB",
        "GONOSUMCHECK",
        "GOPRIVATE",
        "GONOPROXY",
        "GOINSECURE",
        "GOFLAGS",
    ] {
        if let Some(value) = std::env::var_os(name) {
            env.push((name.to_string(), value.to_string_lossy().into_owned()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{Reply, serve};
    use super::*;

    fn agent() -> Agent {
        Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into()
    }

    #[test]
    fn parses_goproxy_lists() {
        let proxy = GoProxy::new(
            "https://a.example/mod/, http://b.example|file:///srv/proxy,direct,https://never",
        )
        .unwrap();
        assert_eq!(
            proxy.entries,
            [
                Entry {
                    url: "https://a.example/mod".into(),
                    on_any_error: false
                },
                Entry {
                    url: "http://b.example".into(),
                    on_any_error: true
                },
                Entry {
                    url: "file:///srv/proxy".into(),
                    on_any_error: false
                },
            ]
        );
        assert!(GoProxy::new("direct").is_err());
        assert!(GoProxy::new("off").is_err());
        assert!(GoProxy::new("ftp://x").is_err());
    }

    #[test]
    fn plugins_read_only_the_http_proxies_of_a_list() {
        assert_eq!(
            http_proxies(
                "https://a.example/mod/|file:///srv/proxy, http://b.example,direct,https://never"
            )
            .unwrap(),
            ["https://a.example/mod", "http://b.example"]
        );
        assert_eq!(http_proxies("off").unwrap(), Vec::<String>::new());
        assert_eq!(
            http_proxies("https://a.example,ftp://x").unwrap_err(),
            "GOPROXY entry \"ftp://x\" is not an http(s) or file URL"
        );
    }

    #[test]
    fn the_go_command_gets_every_proxy_planning_reads() {
        // The user's list stays whole, logins included; what it already names is not repeated.
        assert_eq!(
            with_index_urls(
                Some("https://me:pw@a.example|file:///srv,direct"),
                &["https://a.example/", "https://c.example"]
            )
            .as_deref(),
            Some("https://me:pw@a.example|file:///srv,direct,https://c.example")
        );
        assert_eq!(
            with_index_urls(None, &["https://a.example", "https://b.example"]).as_deref(),
            Some("https://a.example,https://b.example")
        );
        assert_eq!(with_index_urls(Some("off"), &[]).as_deref(), Some("off"));
        assert_eq!(with_index_urls(None, &[]), None);
    }

    #[test]
    fn lists_versions_falling_through_on_not_found() {
        let (first, _) = serve::<&'static [u8]>(vec![], 4);
        let (second, log) = serve(
            vec![(
                "/github.com/!burnt!sushi/toml/@v/list",
                Reply {
                    status: "200 OK",
                    content_type: "text/plain",
                    body: &b"v1.2.0\nv1.3.2\n\n"[..],
                },
            )],
            4,
        );
        let proxy = GoProxy::new(&format!("{first},{second}")).unwrap();
        let versions: Vec<String> = proxy
            .versions(&agent(), "github.com/BurntSushi/toml")
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(versions, ["v1.2.0", "v1.3.2"]);
        assert_eq!(log.lock().unwrap().len(), 1);
        // Nobody has it: an unknown module, not an error.
        assert!(
            proxy
                .versions(&agent(), "example.com/none")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn errors_stop_at_a_comma_and_fall_through_a_pipe() {
        let (broken, _) = serve(
            vec![(
                "/example.com/m/@v/list",
                Reply {
                    status: "500 Internal Server Error",
                    content_type: "text/plain",
                    body: &b"down"[..],
                },
            )],
            4,
        );
        let (good, _) = serve(
            vec![(
                "/example.com/m/@v/list",
                Reply {
                    status: "200 OK",
                    content_type: "text/plain",
                    body: &b"v1.0.0\n"[..],
                },
            )],
            4,
        );
        let error = GoProxy::new(&format!("{broken},{good}"))
            .unwrap()
            .versions(&agent(), "example.com/m")
            .unwrap_err();
        assert!(error.contains("HTTP 500"), "{error}");
        let versions = GoProxy::new(&format!("{broken}|{good}"))
            .unwrap()
            .versions(&agent(), "example.com/m")
            .unwrap();
        assert_eq!(versions.len(), 1);
    }

    #[test]
    fn reads_file_proxies() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("golang.org/toolchain/@v");
        std::fs::create_dir_all(&list).unwrap();
        std::fs::write(list.join("list"), "v0.0.1-go1.22.12.linux-amd64\n").unwrap();
        let proxy = GoProxy::new(&format!("file://{}", dir.path().display())).unwrap();
        let versions = proxy.versions(&agent(), "golang.org/toolchain").unwrap();
        assert_eq!(versions[0].version, "v0.0.1-go1.22.12.linux-amd64");
        assert!(
            proxy
                .versions(&agent(), "golang.org/x/none")
                .unwrap()
                .is_empty()
        );
    }
}
