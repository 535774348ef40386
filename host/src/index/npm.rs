//! The npm registry: one packument (package document) per package, in its full form.
//!
//! The abbreviated install document (`application/vnd.npm.install-v1+json`) would be smaller,
//! but it lacks the publish times, so the full document is asked for: `engines`, `deprecated`,
//! `hasInstallScript` and `gypfile` are per version in it, and `time` has every publish date.

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;
use ureq::http::{StatusCode, header};

use super::{ArtifactSource, ExpectedDigest, PackageIndex, PackageVersion, one_line};

/// A full packument of a popular package (typescript, aws-sdk) is tens of MB and only grows.
const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// Whether `name` is a package name the registry could hold. Checked because the name becomes a
/// URL path segment: a plugin must not be able to point the request elsewhere on the registry.
/// Old packages may have upper case letters, so the check is about URL safety, not npm's
/// current naming rules.
pub(super) fn is_valid_npm_name(name: &str) -> bool {
    let part_ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    };
    match name.strip_prefix('@') {
        Some(scoped) => scoped
            .split_once('/')
            .is_some_and(|(scope, package)| part_ok(scope) && part_ok(package)),
        None => part_ok(name),
    }
}

/// The path segment of a package on the registry: `@scope/name` is one segment, `@scope%2fname`,
/// as npm itself requests it.
fn registry_path(name: &str) -> String {
    name.replacen('/', "%2f", 1)
}

impl PackageIndex {
    pub(super) fn fetch_npm(&self, name: &str) -> Result<Vec<PackageVersion>, String> {
        let url = format!("{}{}", self.npm_base, registry_path(name));
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
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|e| one_line(format!("reading {url}: {e}")))?;
        parse_packument(&body).map_err(|e| one_line(format!("parsing JSON from {url}: {e}")))
    }
}

#[derive(Deserialize)]
struct Packument {
    #[serde(default)]
    versions: serde_json::Map<String, serde_json::Value>,
    /// Version -> publish time, plus "created" and "modified".
    #[serde(default)]
    time: HashMap<String, serde_json::Value>,
}

/// The fields of one version document that plugins get. Everything is optional and loosely
/// typed: the registry holds fifteen years of documents written by many clients.
#[derive(Deserialize, Default)]
struct VersionDocument {
    #[serde(default)]
    engines: serde_json::Value,
    #[serde(default)]
    deprecated: serde_json::Value,
    #[serde(default)]
    dependencies: serde_json::Value,
    #[serde(default, rename = "hasInstallScript")]
    has_install_script: serde_json::Value,
    #[serde(default)]
    gypfile: serde_json::Value,
    #[serde(default, rename = "optionalDependencies")]
    optional_dependencies: serde_json::Value,
    #[serde(default)]
    bin: serde_json::Value,
    #[serde(default)]
    dist: Dist,
}

#[derive(Deserialize, Default)]
struct Dist {
    #[serde(default)]
    tarball: Option<String>,
    #[serde(default)]
    shasum: Option<String>,
    #[serde(default)]
    integrity: Option<String>,
}

fn parse_packument(body: &[u8]) -> Result<Vec<PackageVersion>, serde_json::Error> {
    let packument: Packument = serde_json::from_slice(body)?;
    Ok(packument
        .versions
        .into_iter()
        .map(|(version, document)| {
            // A single malformed version document must not hide the others.
            let document: VersionDocument = serde_json::from_value(document).unwrap_or_default();
            let published = packument
                .time
                .get(&version)
                .and_then(|t| t.as_str())
                .map(str::to_owned);
            version_of(version, document, published)
        })
        .collect())
}

fn version_of(version: String, doc: VersionDocument, published: Option<String>) -> PackageVersion {
    let mut metadata = Vec::new();
    if is_true(&doc.has_install_script) {
        metadata.push(("hasInstallScript".to_owned(), "true".to_owned()));
    }
    if is_true(&doc.gypfile) {
        metadata.push(("gypfile".to_owned(), "true".to_owned()));
    }
    // JSON as the registry has it: which dependencies may be absent, and which files become
    // commands (they must be executable).
    for (key, value) in [
        ("optionalDependencies", &doc.optional_dependencies),
        ("bin", &doc.bin),
    ] {
        if !value.is_null() {
            metadata.push((key.to_owned(), value.to_string()));
        }
    }
    // The lockfile records these verbatim (`resolved`, `integrity`), so plugins get them as the
    // registry wrote them.
    if let Some(tarball) = &doc.dist.tarball {
        metadata.push(("tarball".to_owned(), tarball.clone()));
    }
    if let Some(integrity) = doc.dist.integrity.as_ref().filter(|i| !i.is_empty()) {
        metadata.push(("integrity".to_owned(), integrity.clone()));
    }
    if let Some(shasum) = doc.dist.shasum.as_ref().filter(|s| !s.is_empty()) {
        metadata.push(("shasum".to_owned(), shasum.clone()));
    }
    let digest = doc
        .dist
        .integrity
        .as_deref()
        .and_then(integrity_digest)
        .or_else(|| {
            doc.dist
                .shasum
                .as_deref()
                .filter(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(|s| ExpectedDigest::Sha1(s.to_ascii_lowercase()))
        });
    PackageVersion {
        version,
        // npm has no yanking: unpublished versions simply disappear from the document.
        yanked: false,
        requires_python: None,
        engines: engines(&doc.engines),
        deprecated: deprecation(&doc.deprecated),
        published,
        dependencies: string_map(&doc.dependencies),
        metadata,
        artifact: doc.dist.tarball.map(|url| ArtifactSource { url, digest }),
    }
}

fn is_true(value: &serde_json::Value) -> bool {
    matches!(value, serde_json::Value::Bool(true))
        || value
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

/// `deprecated` is a message; `npm deprecate pkg@v ""` clears it by writing an empty one.
fn deprecation(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(message) if !message.trim().is_empty() => Some(message.clone()),
        serde_json::Value::Bool(true) => Some("deprecated".to_owned()),
        _ => None,
    }
}

/// `{"node": ">=14"}`; very old documents have `["node >= 0.4"]` instead.
fn engines(value: &serde_json::Value) -> Vec<(String, String)> {
    match value {
        serde_json::Value::Array(entries) => entries
            .iter()
            .filter_map(|entry| {
                let (engine, range) = entry.as_str()?.trim().split_once(char::is_whitespace)?;
                Some((engine.to_owned(), range.trim().to_owned()))
            })
            .collect(),
        other => string_map(other),
    }
}

/// The string-valued entries of a JSON object, in document order; anything else is dropped.
fn string_map(value: &serde_json::Value) -> Vec<(String, String)> {
    value
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The strongest digest of a Subresource Integrity string ("sha512-BASE64", possibly several
/// separated by spaces), as hex.
fn integrity_digest(integrity: &str) -> Option<ExpectedDigest> {
    let mut best: Option<(u8, ExpectedDigest)> = None;
    for entry in integrity.split_ascii_whitespace() {
        let Some((algorithm, encoded)) = entry.split_once('-') else {
            continue;
        };
        // SRI allows options after a '?', which carry nothing for checking.
        let encoded = encoded.split('?').next().unwrap_or_default();
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            continue;
        };
        let hex = hex::encode(&bytes);
        let candidate = match (algorithm, bytes.len()) {
            ("sha512", 64) => (3, ExpectedDigest::Sha512(hex)),
            ("sha256", 32) => (2, ExpectedDigest::Sha256(hex)),
            ("sha1", 20) => (1, ExpectedDigest::Sha1(hex)),
            _ => continue,
        };
        if best.as_ref().is_none_or(|(rank, _)| candidate.0 > *rank) {
            best = Some(candidate);
        }
    }
    best.map(|(_, digest)| digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexSettings;
    use crate::index::test_server::{Reply, serve};

    /// The registry's answer for a package that has a deprecated version, a version with an
    /// install script, one with only a sha1, and an old array-style `engines`.
    const PACKUMENT: &str = r#"{
  "_id": "left-pad",
  "name": "left-pad",
  "dist-tags": {"latest": "1.3.0"},
  "versions": {
    "1.0.0": {
      "name": "left-pad", "version": "1.0.0",
      "engines": ["node >= 0.4"],
      "dist": {"shasum": "A2F2A1C7F5B7C1F1D9E1F8C3D8E8D1E9A7B6C5D4", "tarball": "https://registry.example/left-pad/-/left-pad-1.0.0.tgz"}
    },
    "1.2.0": {
      "name": "left-pad", "version": "1.2.0",
      "deprecated": "use String.prototype.padStart()",
      "dependencies": {"a": "^1.0.0", "b": 3},
      "optionalDependencies": {"a": "^1.0.0"},
      "bin": {"left-pad": "./cli.js"},
      "dist": {"integrity": "sha1-oPKhx/W3wfHZ4fjD2OjR6ae2xdQ= sha512-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
               "shasum": "a0f2a1c7f5b7c1f1d9e1f8c3d8e8d1e9a7b6c5d4",
               "tarball": "https://registry.example/left-pad/-/left-pad-1.2.0.tgz"}
    },
    "1.3.0": {
      "name": "left-pad", "version": "1.3.0",
      "engines": {"node": ">=14", "npm": ">=7"},
      "deprecated": "",
      "hasInstallScript": true,
      "gypfile": true,
      "dist": {"tarball": "https://registry.example/left-pad/-/left-pad-1.3.0.tgz"}
    },
    "2.0.0": "garbage"
  },
  "time": {"created": "2016-01-01T00:00:00.000Z", "1.0.0": "2016-01-02T00:00:00.000Z", "1.3.0": "2018-04-09T01:00:00.000Z"}
}"#;

    fn find<'a>(versions: &'a [PackageVersion], v: &str) -> &'a PackageVersion {
        versions
            .iter()
            .find(|p| p.version == v)
            .unwrap_or_else(|| panic!("{v} missing from {versions:?}"))
    }

    #[test]
    fn validates_names_and_encodes_scopes() {
        for ok in ["qs", "lodash.merge", "@types/node", "JSONStream", "a_b-c~d"] {
            assert!(is_valid_npm_name(ok), "{ok}");
        }
        for bad in [
            "", "../x", "a/b", "@scope", "@/x", "@s/", "@s/a/b", ".hidden", "a b", "a?b", "a%2f",
        ] {
            assert!(!is_valid_npm_name(bad), "{bad}");
        }
        assert_eq!(registry_path("@types/node"), "@types%2fnode");
        assert_eq!(registry_path("qs"), "qs");
    }

    #[test]
    fn reads_integrity_strings() {
        let sha512 = integrity_digest(
            "sha512-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
        );
        let hex: String = (0u8..64).map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha512, Some(ExpectedDigest::Sha512(hex)));
        // The strongest wins whatever the order; a wrong length or bad base64 is ignored.
        let mixed = integrity_digest(
            "sha512-!!! sha256-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= sha1-oPKhx/W3wfHZ4fjD2OjR6ae2xdQ=",
        );
        assert!(matches!(mixed, Some(ExpectedDigest::Sha256(h)) if h.starts_with("000102")));
        assert_eq!(
            integrity_digest("sha1-oPKhx/W3wfHZ4fjD2OjR6ae2xdQ=?opt"),
            Some(ExpectedDigest::Sha1(
                "a0f2a1c7f5b7c1f1d9e1f8c3d8e8d1e9a7b6c5d4".into()
            ))
        );
        assert_eq!(integrity_digest("md5-AAAA"), None);
        assert_eq!(integrity_digest("sha512-AAEC"), None);
    }

    #[test]
    fn parses_a_packument() {
        let versions = parse_packument(PACKUMENT.as_bytes()).unwrap();
        assert_eq!(versions.len(), 4);

        let v1 = find(&versions, "1.0.0");
        assert_eq!(v1.engines, [("node".into(), ">= 0.4".into())]);
        assert_eq!(v1.published.as_deref(), Some("2016-01-02T00:00:00.000Z"));
        assert_eq!(
            v1.artifact,
            Some(ArtifactSource {
                url: "https://registry.example/left-pad/-/left-pad-1.0.0.tgz".into(),
                digest: Some(ExpectedDigest::Sha1(
                    "a2f2a1c7f5b7c1f1d9e1f8c3d8e8d1e9a7b6c5d4".into()
                )),
            })
        );

        let v12 = find(&versions, "1.2.0");
        assert_eq!(
            v12.deprecated.as_deref(),
            Some("use String.prototype.padStart()")
        );
        assert_eq!(v12.dependencies, [("a".into(), "^1.0.0".into())]);
        assert_eq!(v12.published, None);
        assert!(matches!(
            v12.artifact.as_ref().and_then(|a| a.digest.as_ref()),
            Some(ExpectedDigest::Sha512(_))
        ));
        assert!(
            v12.metadata
                .iter()
                .any(|(k, v)| k == "integrity" && v.starts_with("sha1-") && v.contains(" sha512-"))
        );
        assert!(!v12.metadata.iter().any(|(k, _)| k == "hasInstallScript"));
        for (key, json) in [
            ("optionalDependencies", r#"{"a":"^1.0.0"}"#),
            ("bin", r#"{"left-pad":"./cli.js"}"#),
        ] {
            assert!(v12.metadata.contains(&(key.into(), json.into())), "{key}");
        }

        let v13 = find(&versions, "1.3.0");
        assert_eq!(v13.deprecated, None);
        assert_eq!(
            v13.engines,
            [("node".into(), ">=14".into()), ("npm".into(), ">=7".into())]
        );
        for key in ["hasInstallScript", "gypfile"] {
            assert!(
                v13.metadata.contains(&(key.into(), "true".into())),
                "{key}: {:?}",
                v13.metadata
            );
        }
        assert_eq!(v13.artifact.as_ref().map(|a| a.digest.clone()), Some(None));

        // A malformed version document still lists the version, with nothing known about it.
        let v2 = find(&versions, "2.0.0");
        assert_eq!(v2.artifact, None);
        assert!(parse_packument(b"not json").is_err());
        assert!(parse_packument(br#"{"versions": []}"#).is_err());
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
