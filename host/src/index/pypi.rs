//! PyPI for plugins of contracts before 0.4, which read it through `package-index`: the SDK's
//! reader of the simple API over the host's client (0.4 plugins read it themselves over `http`).

use copa_plugin_sdk::pypi::{self, Release};
use ureq::http::{StatusCode, header};

use super::{PackageIndex, PackageVersion, one_line};

impl PackageIndex {
    pub(super) fn fetch_pypi(&self, name: &str) -> Result<Vec<PackageVersion>, String> {
        let url = pypi::project_url(&self.pypi_base, name)?;
        tracing::debug!(%url, "querying package index");
        let mut response = self
            .agent
            .get(&url)
            .header(header::ACCEPT, pypi::ACCEPT)
            .call()
            .map_err(|e| one_line(format!("fetching {url}: {e}")))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(format!("fetching {url}: HTTP {status}"));
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body_mut()
            .with_config()
            .limit(pypi::MAX_PAGE_BYTES)
            .read_to_vec()
            .map_err(|e| one_line(format!("reading {url}: {e}")))?;
        let releases = pypi::read_page(name, content_type.as_deref(), &body)
            .map_err(|e| one_line(format!("reading {url}: {e}")))?;
        Ok(releases.into_iter().map(package_version).collect())
    }
}

fn package_version(release: Release) -> PackageVersion {
    PackageVersion {
        version: release.version,
        yanked: release.yanked,
        requires_python: release.requires_python,
        ..PackageVersion::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexSettings;
    use crate::index::test_server::{self, Reply, RequestLog, local_index};
    use std::net::TcpListener;

    /// The test server, with the simple index under `/simple` as on pypi.org.
    fn serve(
        routes: Vec<(&'static str, Reply<&'static str>)>,
        max_requests: usize,
    ) -> (String, RequestLog) {
        let (origin, seen) = test_server::serve(routes, max_requests);
        (format!("{origin}/simple"), seen)
    }

    fn version(v: &str, yanked: bool, requires_python: Option<&str>) -> PackageVersion {
        PackageVersion {
            version: v.to_owned(),
            yanked,
            requires_python: requires_python.map(str::to_owned),
            ..PackageVersion::default()
        }
    }

    const HTML_PAGE: &str = r#"<a href="/files/MarkupSafe-1.1.1.tar.gz" data-requires-python="&gt;=2.7,!=3.0.*">MarkupSafe-1.1.1.tar.gz</a>
<a href="/files/markupsafe-2.0.0.tar.gz" data-requires-python="&#62;=3.6">markupsafe-2.0.0.tar.gz</a>
<a href="/files/MarkupSafe-2.1.0.tar.gz" data-yanked="" data-requires-python=&gt;=3.7>MarkupSafe-2.1.0.tar.gz</a>
<a href="/files/markupsafe-3.0.0.tar.gz"></a>"#;

    #[test]
    fn queries_a_local_index() {
        let routes = vec![
            (
                "/simple/markupsafe/",
                Reply {
                    status: "200 OK",
                    content_type: "text/html; charset=utf-8",
                    body: HTML_PAGE,
                },
            ),
            (
                "/simple/zope-interface/",
                Reply {
                    status: "200 OK",
                    content_type: "application/vnd.pypi.simple.v1+json",
                    body: r#"{"meta":{"api-version":"1.0"},"name":"zope-interface","files":[
                        {"filename":"zope.interface-5.4.0.tar.gz","url":"x","hashes":{},"yanked":"oops"},
                        {"filename":"zope_interface-5.4.0-cp39-cp39-manylinux1_x86_64.whl","url":"x","hashes":{},"requires-python":">=3.5"},
                        {"filename":"zope.interface-6.0.tar.gz","url":"x","hashes":{},"requires-python":">=3.7","yanked":true}]}"#,
                },
            ),
            (
                "/simple/broken/",
                Reply {
                    status: "500 Internal Server Error",
                    content_type: "text/plain",
                    body: "boom",
                },
            ),
            (
                "/simple/garbled/",
                Reply {
                    status: "200 OK",
                    content_type: "application/json",
                    body: "{\"files\": 3}",
                },
            ),
        ];
        let (base, seen) = serve(routes, 6);
        let index = local_index(&base);

        let expected_markupsafe = [
            version("1.1.1", false, Some(">=2.7,!=3.0.*")),
            version("2.0.0", false, Some(">=3.6")),
            version("2.1.0", true, Some(">=3.7")),
            version("3.0.0", false, None),
        ];
        assert_eq!(
            index.versions("pypi", "MarkupSafe").unwrap(),
            expected_markupsafe
        );
        // Served from the cache: the spelling differs but normalizes the same.
        assert_eq!(
            index.versions("PyPI", "MARKUPSAFE").unwrap(),
            expected_markupsafe
        );

        assert_eq!(
            index.versions("pypi", "Zope.Interface").unwrap(),
            [
                version("5.4.0", false, Some(">=3.5")),
                version("6.0", true, Some(">=3.7")),
            ]
        );
        assert_eq!(index.versions("pypi", "no-such-package").unwrap(), []);

        let err = index.versions("pypi", "broken").unwrap_err();
        assert!(err.contains(&format!("{base}/broken/")), "{err}");
        assert!(err.contains("500"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = index.versions("pypi", "garbled").unwrap_err();
        assert!(err.contains(&format!("{base}/garbled/")), "{err}");

        assert!(
            index
                .versions("cargo", "left-pad")
                .unwrap_err()
                .contains("cargo")
        );
        assert!(index.versions("pypi", "../admin").is_err());

        // Errors are not cached: asking again goes back to the server.
        assert!(index.versions("pypi", "broken").is_err());
        // Cached answers, including "unknown package", cost no request.
        index.versions("pypi", "markupsafe").unwrap();
        index.versions("pypi", "zope-interface").unwrap();
        index.versions("pypi", "No_Such.Package").unwrap();

        let seen = seen.lock().unwrap();
        let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/simple/markupsafe/",
                "/simple/zope-interface/",
                "/simple/no-such-package/",
                "/simple/broken/",
                "/simple/garbled/",
                "/simple/broken/",
            ]
        );
        assert!(seen.iter().all(|(_, accept)| accept == pypi::ACCEPT));
    }

    #[test]
    fn unreachable_index_names_the_url() {
        // Bind then drop to get a loopback port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}/simple/");
        let err = local_index(&base).versions("pypi", "six").unwrap_err();
        assert!(err.starts_with(&format!("fetching {base}six/: ")), "{err}");
    }

    #[test]
    fn queries_the_real_pypi() {
        if std::env::var("COPA_OFFLINE").as_deref() == Ok("1") {
            eprintln!("COPA_OFFLINE=1: skipping the real PyPI query");
            return;
        }
        let index = PackageIndex::new(IndexSettings::default()).unwrap();
        let versions = index.versions("pypi", "urllib3").unwrap();
        let find = |v: &str| {
            versions
                .iter()
                .find(|p| p.version == v)
                .unwrap_or_else(|| panic!("urllib3 {v} missing from {versions:?}"))
        };
        assert!(!find("1.26.4").yanked);
        assert!(!find("1.26.5").yanked);
        // Yanked for truncating compressed bodies.
        assert!(find("2.0.0").yanked);
        assert!(find("2.0.0").requires_python.is_some());
    }
}
