//! The npm registry: one packument (package document) per package, in its full form, and the
//! tarballs it links.
//!
//! The abbreviated install document (`application/vnd.npm.install-v1+json`) would be smaller,
//! but it lacks the publish times, so the full document is asked for: `engines`, `deprecated`,
//! `hasInstallScript` and `gypfile` are per version in it, and `time` has every publish date.
//!
//! A plugin reads a registry with [`versions`] and [`tarball`] over the host's granted
//! [`crate::http`]; the parts that need no network ([`package_url`], [`read_packument`],
//! [`Version::digest`]) are public so that the host's own client (for plugins of older contracts)
//! reads the registry exactly the same way.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::archive::{Artifact, ExpectedDigest};

/// The index id plugins declare and users name in `--index npm=URL`.
pub const ECOSYSTEM: &str = "npm";

/// The variables npm reads a CA bundle's path from (Node.js's, and npm's `cafile` setting), a
/// step's `ca_variables` when it runs npm; the host set both for an npm run before contract 0.5.
/// No built-in plugin runs npm (the npm plugin places tarballs itself); these are for one that
/// does.
pub const CA_VARIABLES: &[&str] = &["NODE_EXTRA_CA_CERTS", "npm_config_cafile"];

/// The public registry.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";

/// A full packument of a popular package is tens of MB; this is also the most the host's `http`
/// returns.
pub const MAX_PACKUMENT_BYTES: u64 = 64 * 1024 * 1024;

/// The largest tarball read over `http`.
pub const MAX_TARBALL_BYTES: u64 = 64 * 1024 * 1024;

/// One version of a package as the registry describes it. Everything is optional: the registry
/// holds fifteen years of documents written by many clients.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Version {
    pub version: String,
    /// `engines` ("node" -> ">=14").
    pub engines: Vec<(String, String)>,
    /// The deprecation message, when the version is deprecated.
    pub deprecated: Option<String>,
    /// When the version was published (RFC 3339).
    pub published: Option<String>,
    /// `dependencies`, name -> range as written (optional ones included, as npm lists them).
    pub dependencies: Vec<(String, String)>,
    /// `optionalDependencies`, name -> range.
    pub optional_dependencies: Vec<(String, String)>,
    /// `bin` as the document has it: a path, or command -> path.
    pub bin: Option<Value>,
    pub has_install_script: bool,
    /// Native code built with node-gyp.
    pub gypfile: bool,
    /// `dist.tarball`, `dist.integrity` (Subresource Integrity) and `dist.shasum`, verbatim: a
    /// lockfile records them as the registry wrote them.
    pub tarball: Option<String>,
    pub integrity: Option<String>,
    pub shasum: Option<String>,
}

impl Version {
    /// The digest the tarball must have: the strongest of `integrity`, else the `shasum`.
    pub fn digest(&self) -> Option<ExpectedDigest> {
        self.integrity
            .as_deref()
            .and_then(integrity_digest)
            .or_else(|| {
                self.shasum
                    .as_deref()
                    .filter(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(|s| ExpectedDigest::Sha1(s.to_ascii_lowercase()))
            })
    }
}

/// Whether `name` is a package name the registry could hold. Checked because the name becomes a
/// URL path segment: it must not point the request elsewhere on the registry. Old packages may
/// have upper case letters, so the check is about URL safety, not npm's current naming rules.
pub fn is_valid_name(name: &str) -> bool {
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

/// The URL of `name`'s packument on the registry at `registry_url`: `@scope/name` is one path
/// segment, `@scope%2fname`, as npm itself requests it.
pub fn package_url(registry_url: &str, name: &str) -> Result<String, String> {
    if !is_valid_name(name) {
        return Err(format!("invalid npm package name {name:?}"));
    }
    Ok(format!(
        "{}/{}",
        registry_url.trim_end_matches('/'),
        name.replacen('/', "%2f", 1)
    ))
}

#[derive(Deserialize)]
struct Packument<'a> {
    /// Each version's document unparsed, so that one malformed document hides nothing else and
    /// the whole packument is never held as a tree.
    #[serde(default, borrow)]
    versions: BTreeMap<String, &'a RawValue>,
    /// Version -> publish time, plus "created" and "modified".
    #[serde(default)]
    time: HashMap<String, Value>,
}

#[derive(Deserialize, Default)]
struct VersionDocument {
    #[serde(default)]
    engines: Value,
    #[serde(default)]
    deprecated: Value,
    #[serde(default)]
    dependencies: Value,
    #[serde(default, rename = "hasInstallScript")]
    has_install_script: Value,
    #[serde(default)]
    gypfile: Value,
    #[serde(default, rename = "optionalDependencies")]
    optional_dependencies: Value,
    #[serde(default)]
    bin: Value,
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

/// The versions a packument lists, ordered by their version string.
pub fn read_packument(body: &[u8]) -> Result<Vec<Version>, String> {
    let packument: Packument =
        serde_json::from_slice(body).map_err(|e| format!("parsing JSON: {e}"))?;
    Ok(packument
        .versions
        .into_iter()
        .map(|(version, raw)| {
            // A single malformed version document must not hide the others.
            let document: VersionDocument = serde_json::from_str(raw.get()).unwrap_or_default();
            let published = packument
                .time
                .get(&version)
                .and_then(Value::as_str)
                .map(str::to_owned);
            version_of(version, document, published)
        })
        .collect())
}

fn version_of(version: String, doc: VersionDocument, published: Option<String>) -> Version {
    let non_empty = |value: Option<String>| value.filter(|v| !v.is_empty());
    Version {
        version,
        engines: engines(&doc.engines),
        deprecated: deprecation(&doc.deprecated),
        published,
        dependencies: string_map(&doc.dependencies),
        optional_dependencies: string_map(&doc.optional_dependencies),
        bin: Some(doc.bin).filter(|bin| !bin.is_null()),
        has_install_script: is_true(&doc.has_install_script),
        gypfile: is_true(&doc.gypfile),
        tarball: doc.dist.tarball,
        integrity: non_empty(doc.dist.integrity),
        shasum: non_empty(doc.dist.shasum),
    }
}

fn is_true(value: &Value) -> bool {
    matches!(value, Value::Bool(true))
        || value
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

/// `deprecated` is a message; `npm deprecate pkg@v ""` clears it by writing an empty one.
fn deprecation(value: &Value) -> Option<String> {
    match value {
        Value::String(message) if !message.trim().is_empty() => Some(message.clone()),
        Value::Bool(true) => Some("deprecated".to_owned()),
        _ => None,
    }
}

/// `{"node": ">=14"}`; very old documents have `["node >= 0.4"]` instead.
fn engines(value: &Value) -> Vec<(String, String)> {
    match value {
        Value::Array(entries) => entries
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
fn string_map(value: &Value) -> Vec<(String, String)> {
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
pub fn integrity_digest(integrity: &str) -> Option<ExpectedDigest> {
    let mut best: Option<(u8, ExpectedDigest)> = None;
    for entry in integrity.split_ascii_whitespace() {
        let Some((algorithm, encoded)) = entry.split_once('-') else {
            continue;
        };
        // SRI allows options after a '?', which carry nothing for checking.
        let encoded = encoded.split('?').next().unwrap_or_default();
        let Ok(bytes) = BASE64.decode(encoded) else {
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

/// The Subresource Integrity string of bytes whose SHA-512 is `sha512_hex`, as npm writes it.
pub fn sha512_integrity(sha512_hex: &str) -> Result<String, String> {
    let bytes = hex::decode(sha512_hex).map_err(|e| format!("sha512 {sha512_hex:?}: {e}"))?;
    Ok(format!("sha512-{}", BASE64.encode(bytes)))
}

/// Every version of `name` on the first of the registries at `registry_urls` that knows the
/// package (an unknown package on all is an empty list; a registry that cannot answer is an
/// error naming its URL).
pub fn versions<'a>(
    registry_urls: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> Result<Vec<Version>, String> {
    for registry_url in registry_urls {
        let url = package_url(registry_url, name)?;
        let response =
            crate::http::get(&url, &[("accept", "application/json")], MAX_PACKUMENT_BYTES)
                .map_err(|e| format!("fetching {url}: {e}"))?;
        match response.status {
            404 => continue,
            200..=299 => {
                return read_packument(&response.body).map_err(|e| format!("reading {url}: {e}"));
            }
            status => return Err(format!("fetching {url}: HTTP {status}")),
        }
    }
    Ok(Vec::new())
}

/// The version `version` of `name`, from [`versions`].
pub fn version<'a>(
    registry_urls: impl IntoIterator<Item = &'a str>,
    name: &str,
    version: &str,
) -> Result<Version, String> {
    versions(registry_urls, name)?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(|| format!("{name}@{version} is not on the registry"))
}

/// Downloads `version`'s tarball and checks it against the digest the registry publishes (a
/// version without one is refused: nothing unchecked goes into an image).
pub fn tarball(name: &str, version: &Version) -> Result<Artifact, String> {
    let what = format!("{name}@{}", version.version);
    let url = version
        .tarball
        .as_deref()
        .ok_or_else(|| format!("{what}: the registry names no tarball"))?;
    let digest = version
        .digest()
        .ok_or_else(|| format!("{what}: the registry publishes no digest of {url}"))?;
    let response = crate::http::get(url, &[], MAX_TARBALL_BYTES)
        .map_err(|e| format!("{what}: fetching {url}: {e}"))?;
    if response.status != 200 {
        return Err(format!("{what}: fetching {url}: HTTP {}", response.status));
    }
    Artifact::from_bytes(url, &response.body, Some(&digest)).map_err(|e| format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn find<'a>(versions: &'a [Version], v: &str) -> &'a Version {
        versions
            .iter()
            .find(|p| p.version == v)
            .unwrap_or_else(|| panic!("{v} missing from {versions:?}"))
    }

    #[test]
    fn validates_names_and_encodes_scopes() {
        for ok in ["qs", "lodash.merge", "@types/node", "JSONStream", "a_b-c~d"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "", "../x", "a/b", "@scope", "@/x", "@s/", "@s/a/b", ".hidden", "a b", "a?b", "a%2f",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
            assert!(package_url(DEFAULT_REGISTRY, bad).is_err(), "{bad}");
        }
        assert_eq!(
            package_url("https://r.example/npm/", "@types/node").unwrap(),
            "https://r.example/npm/@types%2fnode"
        );
        assert_eq!(
            package_url(DEFAULT_REGISTRY, "qs").unwrap(),
            "https://registry.npmjs.org/qs"
        );
    }

    #[test]
    fn reads_integrity_strings() {
        let sha512 = integrity_digest(
            "sha512-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
        );
        let hex: String = (0u8..64).map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha512, Some(ExpectedDigest::Sha512(hex.clone())));
        // And back, as npm writes it.
        assert_eq!(
            sha512_integrity(&hex).unwrap(),
            "sha512-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
        );
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
        assert_eq!(integrity_digest("sha1-A==="), None);
    }

    #[test]
    fn parses_a_packument() {
        let versions = read_packument(PACKUMENT.as_bytes()).unwrap();
        assert_eq!(versions.len(), 4);

        let v1 = find(&versions, "1.0.0");
        assert_eq!(v1.engines, [("node".into(), ">= 0.4".into())]);
        assert_eq!(v1.published.as_deref(), Some("2016-01-02T00:00:00.000Z"));
        assert_eq!(
            v1.tarball.as_deref(),
            Some("https://registry.example/left-pad/-/left-pad-1.0.0.tgz")
        );
        assert_eq!(
            v1.digest(),
            Some(ExpectedDigest::Sha1(
                "a2f2a1c7f5b7c1f1d9e1f8c3d8e8d1e9a7b6c5d4".into()
            ))
        );

        let v12 = find(&versions, "1.2.0");
        assert_eq!(
            v12.deprecated.as_deref(),
            Some("use String.prototype.padStart()")
        );
        assert_eq!(v12.dependencies, [("a".into(), "^1.0.0".into())]);
        assert_eq!(v12.optional_dependencies, [("a".into(), "^1.0.0".into())]);
        assert_eq!(v12.bin, Some(serde_json::json!({"left-pad": "./cli.js"})));
        assert_eq!(v12.published, None);
        assert!(matches!(v12.digest(), Some(ExpectedDigest::Sha512(_))));
        assert!(
            v12.integrity
                .as_deref()
                .is_some_and(|i| i.starts_with("sha1-") && i.contains(" sha512-"))
        );
        assert!(!v12.has_install_script);

        let v13 = find(&versions, "1.3.0");
        assert_eq!(v13.deprecated, None);
        assert_eq!(
            v13.engines,
            [("node".into(), ">=14".into()), ("npm".into(), ">=7".into())]
        );
        assert!(v13.has_install_script && v13.gypfile);
        assert_eq!(v13.digest(), None);

        // A malformed version document still lists the version, with nothing known about it.
        let v2 = find(&versions, "2.0.0");
        assert_eq!(v2.tarball, None);
        assert!(read_packument(b"not json").is_err());
        assert!(read_packument(br#"{"versions": []}"#).is_err());
    }
}
