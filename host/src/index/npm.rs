//! The npm registry for plugins of contracts before 0.4, which read it through `package-index`:
//! the SDK's packument reader over the host's client (0.4 plugins read it themselves over
//! `http` with `copa_plugin_sdk::npm_registry`).

use copa_plugin_sdk::npm_registry::{self, Version};
use ureq::http::{StatusCode, header};

use super::{ArtifactSource, PackageIndex, PackageVersion, one_line};

impl PackageIndex {
    pub(super) fn fetch_npm(&self, name: &str) -> Result<Vec<PackageVersion>, String> {
        let url = npm_registry::package_url(&self.npm_base, name)?;
        tracing::debug!(%url, "querying the npm registry");
        let mut response = self
            .agent
            .get(&url)
            .header(header::ACCEPT, "application/json")
            .call()
            .map_err(|e| one_line(format!("fetching {url}: {e}")))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(format!("fetching {url}: HTTP {status}"));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(npm_registry::MAX_PACKUMENT_BYTES)
            .read_to_vec()
            .map_err(|e| one_line(format!("reading {url}: {e}")))?;
        let versions = npm_registry::read_packument(&body)
            .map_err(|e| one_line(format!("reading {url}: {e}")))?;
        Ok(versions.into_iter().map(package_version).collect())
    }
}

/// A version as `package-index` describes it: the ecosystem's own fields in `metadata`, as
/// README's contract section lists them.
fn package_version(version: Version) -> PackageVersion {
    let mut metadata = Vec::new();
    if version.has_install_script {
        metadata.push(("hasInstallScript".to_owned(), "true".to_owned()));
    }
    if version.gypfile {
        metadata.push(("gypfile".to_owned(), "true".to_owned()));
    }
    if !version.optional_dependencies.is_empty() {
        let optional: serde_json::Map<String, serde_json::Value> = version
            .optional_dependencies
            .iter()
            .map(|(name, range)| (name.clone(), range.clone().into()))
            .collect();
        metadata.push((
            "optionalDependencies".to_owned(),
            serde_json::Value::Object(optional).to_string(),
        ));
    }
    if let Some(bin) = &version.bin {
        metadata.push(("bin".to_owned(), bin.to_string()));
    }
    for (key, value) in [
        ("tarball", &version.tarball),
        ("integrity", &version.integrity),
        ("shasum", &version.shasum),
    ] {
        if let Some(value) = value {
            metadata.push((key.to_owned(), value.clone()));
        }
    }
    let digest = version.digest();
    PackageVersion {
        // npm has no yanking: unpublished versions simply disappear from the document.
        yanked: false,
        requires_python: None,
        engines: version.engines,
        deprecated: version.deprecated,
        published: version.published,
        dependencies: version.dependencies,
        metadata,
        artifact: version.tarball.map(|url| ArtifactSource { url, digest }),
        version: version.version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexSettings;
    use crate::index::test_server::{Reply, serve};
    use copa_plugin_sdk::archive::ExpectedDigest;

    fn find<'a>(versions: &'a [PackageVersion], v: &str) -> &'a PackageVersion {
        versions
            .iter()
            .find(|p| p.version == v)
            .unwrap_or_else(|| panic!("{v} missing from {versions:?}"))
    }

    const PACKUMENT: &str = r#"{"name": "left-pad", "versions": {
    "1.0.0": {"engines": ["node >= 0.4"],
      "dist": {"shasum": "a2f2a1c7f5b7c1f1d9e1f8c3d8e8d1e9a7b6c5d4", "tarball": "https://registry.example/left-pad-1.0.0.tgz"}},
    "1.2.0": {"optionalDependencies": {"a": "^1.0.0"}, "bin": {"left-pad": "./cli.js"}, "hasInstallScript": true,
      "dist": {"tarball": "https://registry.example/left-pad-1.2.0.tgz"}},
    "1.3.0": {}, "1.4.0": {}}}"#;

    #[test]
    fn describes_versions_as_package_index_does() {
        let versions: Vec<PackageVersion> = npm_registry::read_packument(PACKUMENT.as_bytes())
            .unwrap()
            .into_iter()
            .map(package_version)
            .collect();
        let v1 = find(&versions, "1.0.0");
        assert_eq!(v1.engines, [("node".into(), ">= 0.4".into())]);
        assert_eq!(
            v1.artifact,
            Some(ArtifactSource {
                url: "https://registry.example/left-pad-1.0.0.tgz".into(),
                digest: Some(ExpectedDigest::Sha1(
                    "a2f2a1c7f5b7c1f1d9e1f8c3d8e8d1e9a7b6c5d4".into()
                )),
            })
        );
        let v12 = find(&versions, "1.2.0");
        for (key, value) in [
            ("hasInstallScript", "true"),
            ("optionalDependencies", r#"{"a":"^1.0.0"}"#),
            ("bin", r#"{"left-pad":"./cli.js"}"#),
            ("tarball", "https://registry.example/left-pad-1.2.0.tgz"),
        ] {
            assert!(v12.metadata.contains(&(key.into(), value.into())), "{key}");
        }
        assert_eq!(v12.artifact.as_ref().map(|a| a.digest.clone()), Some(None));
    }

    #[test]
    fn queries_a_local_registry() {
        let routes = vec![
            (
                "/npm/left-pad",
                Reply {
                    status: "200 OK",
                    content_type: "application/json",
                    body: PACKUMENT,
                },
            ),
            (
                "/npm/@scope%2fpkg",
                Reply {
                    status: "200 OK",
                    content_type: "application/json",
                    body: r#"{"name":"@scope/pkg","versions":{"0.1.0":{"dist":{"tarball":"http://x/pkg-0.1.0.tgz"}}}}"#,
                },
            ),
            (
                "/npm/private",
                Reply {
                    status: "401 Unauthorized",
                    content_type: "application/json",
                    body: "{}",
                },
            ),
        ];
        let (origin, seen) = serve(routes, 5);
        let settings = IndexSettings {
            npm_registry: format!("{origin}/npm"),
            ..IndexSettings::default()
        };
        let index = PackageIndex::with_proxy(settings, None).unwrap();

        assert_eq!(index.versions("npm", "left-pad").unwrap().len(), 4);
        // Cached: no second request.
        assert_eq!(index.versions("npm", "left-pad").unwrap().len(), 4);
        let scoped = index.versions("npm", "@scope/pkg").unwrap();
        assert_eq!(scoped[0].version, "0.1.0");
        assert_eq!(index.versions("npm", "no-such-package").unwrap(), []);
        let err = index.versions("npm", "private").unwrap_err();
        assert!(err.contains(&format!("{origin}/npm/private")), "{err}");
        assert!(err.contains("401"), "{err}");
        let err = index.versions("npm", "../admin").unwrap_err();
        assert_eq!(err, "invalid npm package name \"../admin\"");

        let seen = seen.lock().unwrap();
        let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/npm/left-pad",
                "/npm/@scope%2fpkg",
                "/npm/no-such-package",
                "/npm/private"
            ]
        );
        assert!(seen.iter().all(|(_, accept)| accept == "application/json"));
    }

    #[test]
    fn queries_the_real_registry() {
        if std::env::var("COPA_OFFLINE").as_deref() == Ok("1") {
            eprintln!("COPA_OFFLINE=1: skipping the real npm registry query");
            return;
        }
        let index = PackageIndex::new(IndexSettings::default()).unwrap();
        let versions = index.versions("npm", "minimist").unwrap();
        let v = find(&versions, "1.2.6");
        // The registry's own timestamp (it has rewritten old ones), RFC 3339.
        assert!(
            v.published
                .as_deref()
                .is_some_and(|t| t.starts_with("20") && t.contains('T')),
            "{:?}",
            v.published
        );
        assert!(matches!(
            v.artifact.as_ref().and_then(|a| a.digest.as_ref()),
            Some(ExpectedDigest::Sha512(hex)) if hex.len() == 128
        ));
        assert_eq!(
            v.artifact.as_ref().map(|a| a.url.as_str()),
            Some("https://registry.npmjs.org/minimist/-/minimist-1.2.6.tgz")
        );
        let semver = index.versions("npm", "semver").unwrap();
        let v752 = find(&semver, "7.5.2");
        assert_eq!(v752.engines, [("node".into(), ">=10".into())]);
        assert_eq!(v752.dependencies, [("lru-cache".into(), "^6.0.0".into())]);
        assert!(
            v752.metadata
                .contains(&("bin".into(), r#"{"semver":"bin/semver.js"}"#.into()))
        );
        let scoped = index.versions("npm", "@types/node").unwrap();
        assert!(scoped.len() > 100);
    }
}
