//! NuGet package versions and version ranges, as NuGet.Versioning orders and matches them.
//!
//! A NuGet version has one to four numeric parts (`1`, `1.0`, `1.0.0`, `1.0.0.0` are all the same
//! version), an optional SemVer 2 pre-release (`-beta.2`, compared label by label: numbers
//! numerically, text without regard to case, numbers before text, a longer list after its own
//! prefix) and optional build metadata (`+sha.1`), which never takes part in comparisons.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::choose::LibraryVersion;

/// A NuGet package version.
#[derive(Clone, Debug)]
pub struct NuGetVersion {
    /// major, minor, patch, revision (missing parts are 0).
    numbers: [u64; 4],
    /// Pre-release labels as written (case is kept for display, ignored for ordering).
    release: Vec<String>,
    /// Build metadata as written, without the `+`.
    metadata: Option<String>,
}

impl NuGetVersion {
    pub fn major(&self) -> u64 {
        self.numbers[0]
    }
    pub fn minor(&self) -> u64 {
        self.numbers[1]
    }
    pub fn patch(&self) -> u64 {
        self.numbers[2]
    }
    pub fn revision(&self) -> u64 {
        self.numbers[3]
    }

    pub fn is_prerelease(&self) -> bool {
        !self.release.is_empty()
    }

    /// Build metadata (`+...`), which NuGet keeps but never compares.
    pub fn metadata(&self) -> Option<&str> {
        self.metadata.as_deref()
    }

    /// The form of the flat container's URLs and folder names: normalized and lower-case.
    pub fn to_lowercase_string(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl fmt::Display for NuGetVersion {
    /// NuGet's normalized form ("1.0" shows as "1.0.0", "1.0.0.0" as "1.0.0", "1.2.3.4" keeps its
    /// revision), without build metadata: the form of package folders and deps.json keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [major, minor, patch, revision] = self.numbers;
        write!(f, "{major}.{minor}.{patch}")?;
        if revision != 0 {
            write!(f, ".{revision}")?;
        }
        if !self.release.is_empty() {
            write!(f, "-{}", self.release.join("."))?;
        }
        Ok(())
    }
}

/// A dot-separated identifier list of a pre-release or metadata part: each identifier non-empty,
/// of ASCII letters, digits and hyphens (SemVer 2).
fn identifiers<'a>(text: &'a str, what: &str, whole: &str) -> Result<Vec<&'a str>, String> {
    let parts: Vec<&str> = text.split('.').collect();
    for part in &parts {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!(
                "invalid NuGet version {whole:?}: bad {what} {text:?}"
            ));
        }
    }
    Ok(parts)
}

impl FromStr for NuGetVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let whole = text;
        let text = text.trim();
        let (rest, metadata) = match text.split_once('+') {
            Some((rest, metadata)) => {
                identifiers(metadata, "build metadata", whole)?;
                (rest, Some(metadata.to_string()))
            }
            None => (text, None),
        };
        let (numbers_text, release) = match rest.split_once('-') {
            Some((numbers, release)) => (
                numbers,
                identifiers(release, "pre-release label", whole)?
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            ),
            None => (rest, Vec::new()),
        };
        let parts: Vec<&str> = numbers_text.split('.').collect();
        if parts.len() > 4 {
            return Err(format!(
                "invalid NuGet version {whole:?}: more than four numeric parts"
            ));
        }
        let mut numbers = [0u64; 4];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            // Leading zeros are accepted ("01.0"), as NuGet accepts them in existing packages.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "invalid NuGet version {whole:?}: {part:?} is not a number"
                ));
            }
            // NuGet stores each part in an Int32.
            *slot = part
                .parse::<i32>()
                .map_err(|_| format!("invalid NuGet version {whole:?}: {part:?} is too large"))?
                as u64;
        }
        Ok(NuGetVersion {
            numbers,
            release,
            metadata,
        })
    }
}

/// Whether a pre-release label counts as a number (NuGet: it parses as an Int32).
fn numeric_label(label: &str) -> Option<i32> {
    if label.bytes().all(|b| b.is_ascii_digit()) {
        label.parse().ok()
    } else {
        None
    }
}

fn compare_label(a: &str, b: &str) -> Ordering {
    match (numeric_label(a), numeric_label(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        // .NET's OrdinalIgnoreCase compares upper-cased characters.
        (None, None) => a
            .bytes()
            .map(|c| c.to_ascii_uppercase())
            .cmp(b.bytes().map(|c| c.to_ascii_uppercase())),
    }
}

fn compare_release(a: &[String], b: &[String]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        // A release sorts after every pre-release of the same numbers.
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    for (x, y) in a.iter().zip(b) {
        let order = compare_label(x, y);
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for NuGetVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.numbers
            .cmp(&other.numbers)
            .then_with(|| compare_release(&self.release, &other.release))
    }
}

impl PartialOrd for NuGetVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for NuGetVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for NuGetVersion {}

impl Hash for NuGetVersion {
    /// Consistent with `Eq`: metadata left out, labels upper-cased.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.numbers.hash(state);
        for label in &self.release {
            label.to_ascii_uppercase().hash(state);
        }
    }
}

impl LibraryVersion for NuGetVersion {
    fn release_line(&self) -> (u64, u64) {
        (self.major(), self.minor())
    }
}

/// One end of a [`VersionRange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    pub version: NuGetVersion,
    pub inclusive: bool,
}

/// A NuGet version range as nuspec dependencies write it: `1.0` (at least 1.0), `[1.0]`
/// (exactly), `[1.0,2.0)`, `(1.0,)`, `(,1.0]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionRange {
    pub min: Option<Bound>,
    pub max: Option<Bound>,
}

impl FromStr for VersionRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid NuGet version range {text:?}: {why}");
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(bad("empty"));
        }
        let first = trimmed.as_bytes()[0];
        if first != b'[' && first != b'(' {
            if trimmed.contains('*') {
                return Err(bad("floating versions are not supported"));
            }
            // A bare version is a minimum.
            let version = trimmed.parse().map_err(|e: String| bad(&e))?;
            return Ok(VersionRange {
                min: Some(Bound {
                    version,
                    inclusive: true,
                }),
                max: None,
            });
        }
        let last = *trimmed.as_bytes().last().unwrap();
        if trimmed.len() < 2 || (last != b']' && last != b')') {
            return Err(bad("unbalanced brackets"));
        }
        let min_inclusive = first == b'[';
        let max_inclusive = last == b']';
        let inner = &trimmed[1..trimmed.len() - 1];
        let parse = |part: &str| -> Result<Option<NuGetVersion>, String> {
            let part = part.trim();
            if part.is_empty() {
                Ok(None)
            } else {
                part.parse().map(Some).map_err(|e: String| bad(&e))
            }
        };
        let parts: Vec<&str> = inner.split(',').collect();
        let range = match parts[..] {
            [exact] => {
                // `[1.0]` is the only one-version bracket form.
                if !(min_inclusive && max_inclusive) {
                    return Err(bad("a single version needs [ ]"));
                }
                let version = parse(exact)?.ok_or_else(|| bad("no version"))?;
                VersionRange {
                    min: Some(Bound {
                        version: version.clone(),
                        inclusive: true,
                    }),
                    max: Some(Bound {
                        version,
                        inclusive: true,
                    }),
                }
            }
            [min, max] => VersionRange {
                min: parse(min)?.map(|version| Bound {
                    version,
                    inclusive: min_inclusive,
                }),
                max: parse(max)?.map(|version| Bound {
                    version,
                    inclusive: max_inclusive,
                }),
            },
            _ => return Err(bad("more than two versions")),
        };
        if range.min.is_none() && range.max.is_none() {
            return Err(bad("no version"));
        }
        if let (Some(min), Some(max)) = (&range.min, &range.max) {
            let empty = match min.version.cmp(&max.version) {
                Ordering::Greater => true,
                Ordering::Equal => !(min.inclusive && max.inclusive),
                Ordering::Less => false,
            };
            if empty {
                return Err(bad("no version satisfies it"));
            }
        }
        Ok(range)
    }
}

impl fmt::Display for VersionRange {
    /// NuGet's normalized form: `[1.0.0, )`, `[1.0.0, 2.0.0)`, `[1.0.0]`, `(, 1.0.0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(min), Some(max)) = (&self.min, &self.max)
            && min.inclusive
            && max.inclusive
            && min.version == max.version
        {
            return write!(f, "[{}]", min.version);
        }
        match &self.min {
            Some(min) => write!(
                f,
                "{}{}",
                if min.inclusive { '[' } else { '(' },
                min.version
            )?,
            None => f.write_str("(")?,
        }
        f.write_str(", ")?;
        match &self.max {
            Some(max) => write!(
                f,
                "{}{}",
                max.version,
                if max.inclusive { ']' } else { ')' }
            ),
            None => f.write_str(")"),
        }
    }
}

impl VersionRange {
    /// Whether `version` lies within the bounds.
    pub fn contains(&self, version: &NuGetVersion) -> bool {
        let above_min = self
            .min
            .as_ref()
            .is_none_or(|min| match version.cmp(&min.version) {
                Ordering::Greater => true,
                Ordering::Equal => min.inclusive,
                Ordering::Less => false,
            });
        let below_max = self
            .max
            .as_ref()
            .is_none_or(|max| match version.cmp(&max.version) {
                Ordering::Less => true,
                Ordering::Equal => max.inclusive,
                Ordering::Greater => false,
            });
        above_min && below_max
    }

    /// Whether a bound names a pre-release, which is what lets NuGet pick pre-releases for it.
    pub fn allows_prerelease(&self) -> bool {
        self.min
            .iter()
            .chain(&self.max)
            .any(|b| b.version.is_prerelease())
    }

    /// The version NuGet restores for this range from `available`: the lowest one in range
    /// (NuGet's "lowest applicable version" rule), pre-releases only when a bound is one.
    pub fn lowest_satisfying<'a>(
        &self,
        available: impl IntoIterator<Item = &'a NuGetVersion>,
    ) -> Option<&'a NuGetVersion> {
        let prerelease = self.allows_prerelease();
        available
            .into_iter()
            .filter(|v| self.contains(v) && (prerelease || !v.is_prerelease()))
            .min()
    }
}

/// Package ids compare without regard to case ("Newtonsoft.Json" is "newtonsoft.json").
pub fn same_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether `id` is a valid NuGet package id: letters, digits, `.`, `-`, `_`, not starting or
/// ending with a dot. Checked because ids become URL path segments and file names.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('.')
        && !id.ends_with('.')
        && !id.contains("..")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choose::{Bump, IndexVersion, Vulnerability, choose};

    fn v(text: &str) -> NuGetVersion {
        text.parse()
            .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
    }

    fn r(text: &str) -> VersionRange {
        text.parse()
            .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
    }

    #[test]
    fn ordering() {
        // Each pair is strictly ascending.
        let less: &[(&str, &str)] = &[
            ("1.0.0", "1.0.1"),
            ("1.0.1", "1.1.0"),
            ("1.1.0", "2.0.0"),
            ("1.9.0", "1.10.0"),
            ("1.0.0", "1.0.0.1"),
            ("1.0.0.9", "1.0.0.10"),
            ("1.0.0.1", "1.0.1"),
            ("1.0.0-alpha", "1.0.0"),
            ("1.0.0-alpha", "1.0.0-alpha.1"),
            ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
            ("1.0.0-alpha.beta", "1.0.0-beta"),
            ("1.0.0-beta", "1.0.0-beta.2"),
            ("1.0.0-beta.2", "1.0.0-beta.11"),
            ("1.0.0-beta.11", "1.0.0-rc.1"),
            ("1.0.0-rc.1", "1.0.0"),
            ("1.0.0-1", "1.0.0-a"),
            ("1.0.0-9", "1.0.0-10"),
            ("1.0.0-a-b", "1.0.0-a-c"),
            ("1.0.0-A", "1.0.0-b"),
            ("1.0.0-a", "1.0.0-B"),
            ("1.0.0-Beta", "1.0.0-RC"),
            // '-' sorts before letters and digits before letters, as in ordinal comparison.
            ("1.0.0-a-", "1.0.0-aa"),
            ("1.0.0-a1", "1.0.0-aa"),
            ("1.0.0-rc", "1.0.0-rc.0"),
            ("0.9.9.9", "1.0"),
            ("1.0.0-rc.1", "1.0.0.1-alpha"),
            ("6.0.8", "13.0.1"),
            ("4.3.0", "4.3.1"),
            ("8.0.0-preview.7.23375.6", "8.0.0-rc.1.23419.4"),
            ("8.0.0-rc.2.23479.6", "8.0.0"),
            ("2147483647.0", "2147483647.1"),
        ];
        for (low, high) in less {
            assert!(v(low) < v(high), "{low} < {high}");
            assert!(v(high) > v(low), "{high} > {low}");
            assert_ne!(v(low), v(high), "{low} != {high}");
        }
        let mut sorted: Vec<NuGetVersion> = ["2.0", "1.0.0-beta", "1.0", "1.0.0.1", "1.0.0-alpha"]
            .iter()
            .map(|t| v(t))
            .collect();
        sorted.sort();
        let texts: Vec<String> = sorted.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            ["1.0.0-alpha", "1.0.0-beta", "1.0.0", "1.0.0.1", "2.0.0"]
        );
    }

    #[test]
    fn equality_and_normalisation() {
        let same: &[(&str, &str)] = &[
            ("1.0", "1.0.0"),
            ("1", "1.0.0"),
            ("1.0.0.0", "1.0.0"),
            ("1.0.0.0", "1.0"),
            ("01.002.0", "1.2.0"),
            ("1.0.0-BETA", "1.0.0-beta"),
            ("1.0.0-Beta.X", "1.0.0-beta.x"),
            ("1.0.0+abc", "1.0.0"),
            ("1.0.0+abc", "1.0.0+def"),
            ("1.0.0-rc.1+build.5", "1.0.0-RC.1"),
            (" 1.2.3 ", "1.2.3"),
            ("1.0.0-01", "1.0.0-1"),
        ];
        for (a, b) in same {
            assert_eq!(v(a), v(b), "{a} == {b}");
            assert_eq!(v(a).cmp(&v(b)), Ordering::Equal, "{a} cmp {b}");
        }
        let normal: &[(&str, &str)] = &[
            ("1", "1.0.0"),
            ("1.0", "1.0.0"),
            ("1.0.0.0", "1.0.0"),
            ("1.2.3.4", "1.2.3.4"),
            ("1.0.0.0-rc.1", "1.0.0-rc.1"),
            ("01.02.03", "1.2.3"),
            ("1.0.0-Beta+meta", "1.0.0-Beta"),
            ("13.0.1", "13.0.1"),
        ];
        for (text, shown) in normal {
            assert_eq!(v(text).to_string(), *shown, "{text}");
        }
        assert_eq!(v("1.0.0-Beta").to_lowercase_string(), "1.0.0-beta");
        assert_eq!(v("1.0.0+Meta.1").metadata(), Some("Meta.1"));
        assert_eq!(v("1.2.3.4").revision(), 4);
    }

    #[test]
    fn equal_versions_hash_alike() {
        use std::collections::HashSet;
        let set: HashSet<NuGetVersion> =
            ["1.0", "1.0.0", "1.0.0.0", "1.0.0+x", "1.0.0-RC", "1.0.0-rc"]
                .iter()
                .map(|t| v(t))
                .collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn rejects_what_nuget_rejects() {
        for bad in [
            "",
            " ",
            "a",
            "1.",
            ".1",
            "1..0",
            "1.0.0.0.0",
            "1.0-",
            "1.0.0-",
            "1.0.0-beta..1",
            "1.0.0-beta_1",
            "1.0.0+",
            "1.0.0+a..b",
            "1.0.0-be ta",
            "v1.0.0",
            "1.0.x",
            "-1.0",
            "1.0 .0",
            "99999999999.0",
            "1.*",
        ] {
            let err = bad.parse::<NuGetVersion>().unwrap_err();
            assert!(err.starts_with("invalid NuGet version"), "{bad}: {err}");
        }
        // A hyphen inside the pre-release is part of a label, not a second separator.
        assert_eq!(v("1.0.0-rc-final").to_string(), "1.0.0-rc-final");
    }

    #[test]
    fn release_lines_and_bumps() {
        assert_eq!(v("13.0.1").release_line(), (13, 0));
        assert_eq!(v("4.3").release_line(), (4, 3));
        assert_eq!(v("1.0.0").bump_to(&v("1.0.1")), Bump::Patch);
        assert_eq!(v("1.0.0").bump_to(&v("1.0.0.1")), Bump::Patch);
        assert_eq!(v("4.3.0").bump_to(&v("4.4.0")), Bump::Minor);
        assert_eq!(v("6.0.8").bump_to(&v("13.0.1")), Bump::Major);
    }

    #[test]
    fn choice_with_nuget_versions() {
        let vulns = [Vulnerability {
            id: "GHSA-5crp-9r3c-p9vr".into(),
            fixed_versions: vec!["13.0.1".into()],
        }];
        let index: Vec<IndexVersion<NuGetVersion>> = ["12.0.3", "13.0.1", "13.0.2-beta1", "13.0.3"]
            .iter()
            .map(|t| IndexVersion {
                version: v(t),
                unusable: None,
            })
            .collect();
        let choice = choose(&v("12.0.3"), &vulns, &index, Bump::Patch, false);
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped[0].reason,
            "fix needs a major bump to 13.0.1; --library-patch-level is patch"
        );
        let choice = choose(&v("12.0.3"), &vulns, &index, Bump::Major, false);
        assert_eq!(choice.to, Some(v("13.0.1")));
        // The report spells it "13.0.1.0": the same version.
        let vulns = [Vulnerability {
            id: "X".into(),
            fixed_versions: vec!["13.0.1.0".into()],
        }];
        let choice = choose(&v("13.0.0"), &vulns, &index, Bump::Patch, false);
        assert_eq!(choice.to.map(|v| v.to_string()), Some("13.0.1".into()));
    }

    #[test]
    fn ranges_parse_and_normalise() {
        let cases: &[(&str, &str)] = &[
            ("1.0", "[1.0.0, )"),
            (" 1.0 ", "[1.0.0, )"),
            ("[1.0]", "[1.0.0]"),
            ("[1.0,1.0]", "[1.0.0]"),
            ("(1.0,)", "(1.0.0, )"),
            ("[1.0,)", "[1.0.0, )"),
            ("(,1.0]", "(, 1.0.0]"),
            ("(,1.0)", "(, 1.0.0)"),
            ("[1.0,2.0)", "[1.0.0, 2.0.0)"),
            ("[1.0, 2.0]", "[1.0.0, 2.0.0]"),
            ("( 1.0 , 2.0 )", "(1.0.0, 2.0.0)"),
            ("[1.0.0-beta,2.0)", "[1.0.0-beta, 2.0.0)"),
            ("[4.3.0, )", "[4.3.0, )"),
        ];
        for (text, normal) in cases {
            assert_eq!(r(text).to_string(), *normal, "{text}");
        }
        for bad in [
            "",
            "[",
            "[]",
            "()",
            "(1.0)",
            "[1.0)",
            "(1.0]",
            "[1.0,2.0",
            "1.0,2.0)",
            "[1.0,2.0,3.0]",
            "[2.0,1.0]",
            "(1.0,1.0)",
            "[1.0,1.0)",
            "(,)",
            "[,]",
            "[x,2.0]",
            "1.*",
            "[1.0,2.x)",
        ] {
            let err = bad.parse::<VersionRange>().unwrap_err();
            assert!(
                err.starts_with("invalid NuGet version range"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn range_membership() {
        // (range, version, contained)
        let cases: &[(&str, &str, bool)] = &[
            ("1.0", "1.0.0", true),
            ("1.0", "0.9.9", false),
            ("1.0", "100.0", true),
            ("1.0", "1.0.0.0", true),
            ("1.0", "1.0.0-rc.1", false),
            ("[1.0]", "1.0.0", true),
            ("[1.0]", "1.0.0.1", false),
            ("[1.0]", "1.0.0+meta", true),
            ("(1.0,)", "1.0.0", false),
            ("(1.0,)", "1.0.0.1", true),
            ("(1.0,)", "1.0.1-alpha", true),
            ("(,1.0]", "1.0.0", true),
            ("(,1.0]", "0.0.1", true),
            ("(,1.0]", "1.0.1", false),
            ("(,1.0)", "1.0.0", false),
            ("(,1.0)", "1.0.0-rc", true),
            ("[1.0,2.0)", "1.5.0", true),
            ("[1.0,2.0)", "2.0.0", false),
            ("[1.0,2.0)", "2.0.0-alpha", true),
            ("[1.0,2.0]", "2.0.0", true),
            ("[1.0.0-beta,2.0)", "1.0.0-alpha", false),
            ("[1.0.0-beta,2.0)", "1.0.0-BETA", true),
            ("[1.0.0-beta,2.0)", "1.0.0-beta.1", true),
        ];
        for (range, version, contained) in cases {
            assert_eq!(
                r(range).contains(&v(version)),
                *contained,
                "{version} in {range}"
            );
        }
    }

    #[test]
    fn lowest_satisfying_version() {
        let available: Vec<NuGetVersion> = [
            "1.0.0",
            "1.0.1",
            "1.1.0-beta",
            "1.1.0",
            "2.0.0-rc.1",
            "2.0.0",
            "3.0.0",
        ]
        .iter()
        .map(|t| v(t))
        .collect();
        let lowest = |range: &str| {
            r(range)
                .lowest_satisfying(&available)
                .map(|v| v.to_string())
        };
        assert_eq!(lowest("1.0").as_deref(), Some("1.0.0"));
        assert_eq!(lowest("1.0.0.1").as_deref(), Some("1.0.1"));
        assert_eq!(lowest("(1.0.1,)").as_deref(), Some("1.1.0"));
        assert_eq!(lowest("[1.1.0-alpha,)").as_deref(), Some("1.1.0-beta"));
        assert_eq!(lowest("[2.0,3.0)").as_deref(), Some("2.0.0"));
        assert_eq!(lowest("(2.0,3.0)").as_deref(), None);
        assert_eq!(lowest("(,1.0]").as_deref(), Some("1.0.0"));
        assert_eq!(lowest("[3.0]").as_deref(), Some("3.0.0"));
        assert_eq!(lowest("4.0").as_deref(), None);
        // The list's order does not matter.
        let reversed: Vec<NuGetVersion> = available.iter().rev().cloned().collect();
        assert_eq!(
            r("1.0.1")
                .lowest_satisfying(&reversed)
                .map(|v| v.to_string()),
            Some("1.0.1".into())
        );
    }

    #[test]
    fn package_ids() {
        assert!(same_id("Newtonsoft.Json", "newtonsoft.json"));
        assert!(!same_id("Newtonsoft.Json", "Newtonsoft.Json.Bson"));
        for ok in ["Newtonsoft.Json", "System.Text.Json", "a", "My_Lib-2"] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", ".a", "a.", "a..b", "../x", "a/b", "a b", "a%2f"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
