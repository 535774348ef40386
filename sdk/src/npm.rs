//! npm package versions and ranges, with node-semver's rules (the `nodejs-semver` crate):
//! `^ ~ x * ||`, hyphen ranges, and pre-releases that only match a range naming a pre-release
//! of the same `major.minor.patch`.

use std::fmt;
use std::str::FromStr;

use nodejs_semver::{Range, Version};

use crate::choose::LibraryVersion;

/// A version as npm orders it: build metadata is ignored, a pre-release sorts before its release.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NpmVersion(Version);

impl fmt::Display for NpmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for NpmVersion {
    type Err = String;

    /// Strict `major.minor.patch[-pre][+build]`, as the registry stores versions (a leading `v`
    /// or `=` is tolerated, as node-semver's `valid()` does).
    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let bare = trimmed.trim_start_matches(['v', '=']);
        // node-semver's strict parser wants all three numbers; the crate also accepts "1.2",
        // which is a range in npm, not a version.
        if bare.contains(char::is_whitespace)
            || bare
                .split(['-', '+'])
                .next()
                .unwrap_or_default()
                .split('.')
                .count()
                != 3
        {
            return Err(format!(
                "invalid npm version {text:?}: expected MAJOR.MINOR.PATCH"
            ));
        }
        Version::parse(bare)
            .map(NpmVersion)
            .map_err(|e| format!("invalid npm version {text:?}: {e}"))
    }
}

impl NpmVersion {
    pub fn is_prerelease(&self) -> bool {
        self.0.is_prerelease()
    }

    pub fn major(&self) -> u64 {
        self.0.major()
    }
}

impl LibraryVersion for NpmVersion {
    fn release_line(&self) -> (u64, u64) {
        (self.0.major(), self.0.minor())
    }
}

/// A dependency range (`^4.17.21`, `~1.2`, `1.x || >=2.5.0`, `1.2.3 - 2.3.4`, `*`, `""`).
#[derive(Clone, Debug)]
pub struct NpmRange(Range);

impl FromStr for NpmRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Range::parse(text.trim())
            .map(NpmRange)
            .map_err(|e| format!("invalid npm range {text:?}: {e}"))
    }
}

impl NpmRange {
    /// Whether `version` is in the range, with npm's default pre-release rule (a pre-release
    /// matches only when a comparator names a pre-release of the same `major.minor.patch`).
    pub fn satisfies(&self, version: &NpmVersion) -> bool {
        self.0.satisfies(&version.0)
    }

    /// The highest of `versions` in the range: what npm installs for a fresh dependency.
    pub fn max_satisfying<'v>(&self, versions: &'v [NpmVersion]) -> Option<&'v NpmVersion> {
        versions.iter().filter(|v| self.satisfies(v)).max()
    }
}

/// Whether an `engines.node` range admits `node_version` ("18.20.4").
///
/// An unreadable range or version admits, as npm only warns about engines by default: a broken
/// field must not hide the release that fixes a vulnerability.
pub fn engine_allows(range: &str, node_version: &str) -> bool {
    match (
        range.parse::<NpmRange>(),
        node_version.parse::<NpmVersion>(),
    ) {
        // node's own versions carry no pre-release in practice; npm checks with pre-releases
        // included so that a nightly node is judged by its numbers.
        (Ok(range), Ok(node)) => range.0.satisfies_with_prerelease(&node.0, true),
        _ => true,
    }
}

/// Whether a dependency spec is a registry range this module can judge (not a URL, git, file,
/// tag, workspace or `npm:` alias spec).
pub fn is_range_spec(spec: &str) -> bool {
    let spec = spec.trim();
    !spec.contains(':') && !spec.contains('/') && spec.parse::<NpmRange>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choose::{Bump, IndexVersion, Vulnerability, choose};

    fn v(text: &str) -> NpmVersion {
        text.parse().unwrap()
    }

    fn satisfies(range: &str, version: &str) -> bool {
        range.parse::<NpmRange>().unwrap().satisfies(&v(version))
    }

    #[test]
    fn orders_like_node_semver() {
        let ordered = [
            "0.0.1",
            "0.1.0",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        // Build metadata does not order.
        assert_eq!(v("1.0.0+build.1"), v("1.0.0+other"));
        assert_eq!(v("v1.2.3"), v("1.2.3"));
        assert_eq!(v("1.2.3-rc.1+b").to_string(), "1.2.3-rc.1+b");
        for bad in [
            "1.2",
            "1",
            "x",
            "1.2.3.4",
            "",
            "latest",
            "^1.2.3",
            "1.2.0 - 1.2.5",
        ] {
            assert!(bad.parse::<NpmVersion>().is_err(), "{bad}");
        }
    }

    /// Vectors checked against node-semver's `semver.satisfies` (semver 7.6).
    #[test]
    fn ranges_match_node_semver() {
        let cases: &[(&str, &str, bool)] = &[
            ("^4.17.15", "4.17.21", true),
            ("^4.17.15", "5.0.0", false),
            ("^4.17.15", "4.17.14", false),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("^0.0.3", "0.0.4", false),
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.3.0", false),
            ("~1.2", "1.2.0", true),
            ("~1", "1.9.9", true),
            ("1.x", "1.99.0", true),
            ("1.2.x", "1.3.0", false),
            ("*", "3.4.5", true),
            ("", "3.4.5", true),
            ("1.x || >=2.5.0", "2.4.0", false),
            ("1.x || >=2.5.0", "2.5.1", true),
            ("1.2.3 - 2.3.4", "2.3.4", true),
            ("1.2.3 - 2.3.4", "2.3.5", false),
            ("1.2.3 - 2.3", "2.3.9", true),
            (">=1.2.7 <1.3.0", "1.2.8", true),
            (">=1.2.7 <1.3.0", "1.3.0", false),
            ("=1.2.3", "1.2.3", true),
            ("1.2.3", "1.2.4", false),
            // Pre-releases only when the range names one on the same tuple.
            ("^1.2.3", "1.3.0-beta", false),
            (">1.2.3-alpha.3", "1.2.3-alpha.7", true),
            (">1.2.3-alpha.3", "3.4.5-alpha.9", false),
            ("^1.2.3-beta.2", "1.2.3-beta.4", true),
            ("^1.2.3-beta.2", "1.2.4-beta.1", false),
            ("*", "1.0.0-rc.1", false),
        ];
        for (range, version, expected) in cases {
            assert_eq!(satisfies(range, version), *expected, "{version} in {range}");
        }
        assert!("not a range".parse::<NpmRange>().is_err());
    }

    #[test]
    fn max_satisfying_is_what_npm_installs() {
        let versions: Vec<NpmVersion> = ["1.0.0", "1.2.0", "1.3.0-rc.1", "1.2.5", "2.0.0"]
            .iter()
            .map(|t| v(t))
            .collect();
        let range: NpmRange = "^1.0.0".parse().unwrap();
        assert_eq!(range.max_satisfying(&versions), Some(&v("1.2.5")));
        let range: NpmRange = ">=3".parse().unwrap();
        assert_eq!(range.max_satisfying(&versions), None);
    }

    #[test]
    fn engines() {
        assert!(engine_allows(">=14", "18.20.4"));
        assert!(!engine_allows(">=20", "18.20.4"));
        assert!(engine_allows("^14.18.0 || >=16.0.0", "18.20.4"));
        assert!(!engine_allows(">= 0.4 < 0.9", "18.20.4"));
        // Unreadable: admitted.
        assert!(engine_allows("%%%", "18.20.4"));
        assert!(engine_allows(">=14", "unknown"));
    }

    #[test]
    fn range_specs() {
        for ok in ["^1.2.3", "~1", "*", "", "1.x || 2", ">= 1.2.3"] {
            assert!(is_range_spec(ok), "{ok}");
        }
        for other in [
            "npm:lodash@^4",
            "file:../x",
            "git+https://github.com/a/b.git",
            "github:a/b",
            "a/b",
            "latest",
            "workspace:*",
            "https://example.com/x.tgz",
        ] {
            assert!(!is_range_spec(other), "{other}");
        }
    }

    #[test]
    fn the_choice_rule_over_npm_versions() {
        let index: Vec<IndexVersion<NpmVersion>> = [
            ("6.7.0", None),
            ("6.7.1", None),
            ("6.7.2", Some("is deprecated")),
            ("6.7.3", None),
            ("6.8.0", None),
            ("6.9.0-rc.1", None),
        ]
        .into_iter()
        .map(|(version, unusable)| IndexVersion {
            version: v(version),
            unusable: unusable.map(String::from),
        })
        .collect();
        let vulns = [Vulnerability {
            id: "CVE-2022-24999".into(),
            fixed_versions: vec!["6.7.2".into(), "6.8.3".into()],
        }];
        // 6.7.2 is deprecated, so the next release on its line stands in.
        let choice = choose(&v("6.7.0"), &vulns, &index, Bump::Patch, false);
        assert_eq!(choice.to, Some(v("6.7.3")));
        assert_eq!(choice.fixes, ["CVE-2022-24999"]);
        assert_eq!(v("6.7.0").bump_to(&v("6.8.0")), Bump::Minor);
        assert_eq!(v("0.2.0").bump_to(&v("1.0.0")), Bump::Major);
    }
}
