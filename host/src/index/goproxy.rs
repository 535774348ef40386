//! The Go module proxy protocol (`GOPROXY`): `<proxy>/<escaped module>/@v/list` lists a
//! module's tagged versions. It also lists Go toolchains, as versions of the module
//! `golang.org/toolchain` (`v0.0.1-go1.22.3.linux-amd64`), which is what `GOTOOLCHAIN=go1.22.3`
//! downloads. Proxies are tried in `GOPROXY` order: after a `,` only when the previous one does
//! not have the module (404/410), after a `|` on any error, as the go command does.

use ureq::Agent;

use super::{PackageVersion, one_line};

/// The public proxy, as the go command defaults to it.
pub const DEFAULT_PROXY: &str = "https://proxy.golang.org";

/// One entry of a `GOPROXY` list, with how a failure of it falls through to the next.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    url: String,
    /// `|` after this entry: any error falls through, not only "not found".
    on_any_error: bool,
}

#[derive(Clone, Debug)]
pub struct GoProxy {
    entries: Vec<Entry>,
}

impl GoProxy {
    /// Parses a `GOPROXY` value. `direct` (fetching from version control) and `off` have no
    /// version list the host could read, so they end the list for planning.
    pub fn new(goproxy: &str) -> Result<Self, String> {
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
            if !(url.starts_with("https://")
                || url.starts_with("http://")
                || url.starts_with("file://"))
            {
                return Err(format!(
                    "GOPROXY entry {url:?} is not an http(s) or file URL"
                ));
            }
            entries.push(Entry {
                url: url.trim_end_matches('/').to_string(),
                on_any_error,
            });
        }
        if entries.is_empty() {
            return Err(format!("GOPROXY {goproxy:?} names no module proxy"));
        }
        Ok(Self { entries })
    }

    /// The versions of `module` the first proxy that has it lists; empty when none has it.
    pub fn versions(&self, agent: &Agent, module: &str) -> Result<Vec<PackageVersion>, String> {
        let path = escape(module)?;
        let mut last_error = None;
        for entry in &self.entries {
            let url = format!("{}/{path}/@v/list", entry.url);
            match fetch(agent, &url) {
                Ok(Some(text)) => {
                    return Ok(text
                        .lines()
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(|v| PackageVersion {
                            version: v.to_string(),
                            ..PackageVersion::default()
                        })
                        .collect());
                }
                Ok(None) => continue,
                Err(e) if entry.on_any_error => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        match last_error {
            Some(e) => Err(e),
            None => Ok(Vec::new()),
        }
    }
}

/// The body at `url`; `None` when the proxy does not have it (404, 410, or a missing file).
fn fetch(agent: &Agent, url: &str) -> Result<Option<String>, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {path}: {e}")),
        };
    }
    tracing::debug!(%url, "querying module proxy");
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| one_line(format!("fetching {url}: {e}")))?;
    let status = response.status().as_u16();
    if status == 404 || status == 410 {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(format!("fetching {url}: HTTP {status}"));
    }
    response
        .body_mut()
        .read_to_string()
        .map(Some)
        .map_err(|e| one_line(format!("reading {url}: {e}")))
}

/// The proxy protocol's case encoding: each upper-case letter becomes `!` and its lower case,
/// so module paths stay distinct on case-insensitive file systems.
fn escape(module: &str) -> Result<String, String> {
    let valid = !module.is_empty()
        && !module.starts_with(['-', '/', '.'])
        && !module.contains("..")
        && module
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/+".contains(&b));
    if !valid {
        return Err(format!("invalid Go module path {module:?}"));
    }
    let mut out = String::with_capacity(module.len());
    for c in module.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Ok(out)
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
    fn escapes_module_paths() {
        assert_eq!(
            escape("github.com/Azure/azure-sdk-for-go").unwrap(),
            "github.com/!azure/azure-sdk-for-go"
        );
        assert!(escape("-flag").is_err());
        assert!(escape("a/../b").is_err());
        assert!(escape("a b").is_err());
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
