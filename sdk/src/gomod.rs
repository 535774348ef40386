//! Go versions: module versions (semantic versions with a `v`, pseudo-versions, `+incompatible`),
//! ordered exactly as `golang.org/x/mod/semver` orders them, and Go toolchain versions
//! (`go1.21.0`, `go1.21rc2`), ordered as the go command's `internal/gover` orders them.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::choose::LibraryVersion;

/// A Go module version. Scanners write installed versions with the `v` (`v0.4.0`) and fixed
/// versions without it (`0.17.0`); both parse, and the version always displays with the `v`, as
/// `go get module@version` needs it.
///
/// Build metadata (`+incompatible`) is kept for display but ignored by comparison, as semver and
/// the go command ignore it: `v2.0.0+incompatible` and `v2.0.0` are the same version.
#[derive(Clone, Debug)]
pub struct ModuleVersion {
    /// Decimal digits without leading zeros; kept as text because semver puts no bound on them.
    major: String,
    minor: String,
    patch: String,
    /// `v1` and `v1.2` are valid shorthands of `v1.0.0` and `v1.2.0`; kept to display as written.
    short: Short,
    /// Dot-separated pre-release identifiers, without the leading `-`.
    prerelease: Vec<String>,
    /// Build metadata without the leading `+`.
    build: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Short {
    Full,
    MajorOnly,
    MajorMinor,
}

impl ModuleVersion {
    /// The canonical form without build metadata, as `semver.Canonical` writes it (`v1.2.0`).
    pub fn canonical(&self) -> String {
        let mut text = format!("v{}.{}.{}", self.major, self.minor, self.patch);
        if !self.prerelease.is_empty() {
            text.push('-');
            text.push_str(&self.prerelease.join("."));
        }
        text
    }

    /// A pre-release that is not a pseudo-version (`v1.2.0-rc.1`): something a user opted into.
    pub fn is_prerelease(&self) -> bool {
        !self.prerelease.is_empty() && !self.is_pseudo()
    }

    /// Whether this is a pseudo-version (an untagged commit), by the go command's own pattern:
    /// `vX.0.0-yyyymmddhhmmss-rev`, `vX.Y.Z-pre.0.yyyymmddhhmmss-rev` or
    /// `vX.Y.(Z+1)-0.yyyymmddhhmmss-rev`.
    pub fn is_pseudo(&self) -> bool {
        self.pseudo_parts().is_some()
    }

    /// The commit time (`yyyymmddhhmmss`, UTC) and revision prefix of a pseudo-version.
    pub fn pseudo_parts(&self) -> Option<(&str, &str)> {
        if self.short != Short::Full {
            return None;
        }
        // The last identifier is `yyyymmddhhmmss-rev` (hyphens are legal inside identifiers).
        let last = self.prerelease.last()?;
        let (time, revision) = last.split_once('-')?;
        let time_ok = time.len() == 14 && time.bytes().all(|b| b.is_ascii_digit());
        let revision_ok =
            !revision.is_empty() && revision.bytes().all(|b| b.is_ascii_alphanumeric());
        if !time_ok || !revision_ok {
            return None;
        }
        let before = &self.prerelease[..self.prerelease.len() - 1];
        let shape_ok = match before {
            // vX.0.0-yyyymmddhhmmss-rev: no tag before the commit.
            [] => self.minor == "0" && self.patch == "0",
            // vX.Y.(Z+1)-0.yyyymmddhhmmss-rev: after release tag vX.Y.Z, or
            // vX.Y.Z-pre.0.yyyymmddhhmmss-rev: after pre-release tag vX.Y.Z-pre.
            [.., zero] => zero == "0",
        };
        shape_ok.then_some((time, revision))
    }
}

impl fmt::Display for ModuleVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.short {
            Short::MajorOnly => write!(f, "v{}", self.major)?,
            Short::MajorMinor => write!(f, "v{}.{}", self.major, self.minor)?,
            Short::Full => write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?,
        }
        if !self.prerelease.is_empty() {
            write!(f, "-{}", self.prerelease.join("."))?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

impl FromStr for ModuleVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = |why: &str| format!("invalid Go module version {text:?}: {why}");
        let trimmed = text.trim();
        let rest = trimmed.strip_prefix('v').unwrap_or(trimmed);
        let (rest, build) = match rest.split_once('+') {
            Some((rest, build)) => {
                if !identifiers_ok(build, false) {
                    return Err(invalid("bad build metadata"));
                }
                (rest, Some(build.to_string()))
            }
            None => (rest, None),
        };
        let (core, prerelease) = match rest.split_once('-') {
            Some((core, pre)) => {
                if !identifiers_ok(pre, true) {
                    return Err(invalid("bad pre-release"));
                }
                (core, pre.split('.').map(String::from).collect())
            }
            None => (rest, Vec::new()),
        };
        let numbers: Vec<&str> = core.split('.').collect();
        if numbers.len() > 3 || !numbers.iter().all(|n| is_number(n)) {
            return Err(invalid("expected MAJOR[.MINOR[.PATCH]]"));
        }
        let short = match numbers.len() {
            1 => Short::MajorOnly,
            2 => Short::MajorMinor,
            _ => Short::Full,
        };
        // x/mod/semver accepts `v1` and `v1.2` only bare.
        if short != Short::Full && (!prerelease.is_empty() || build.is_some()) {
            return Err(invalid("a short version takes no pre-release or build"));
        }
        Ok(ModuleVersion {
            major: numbers[0].to_string(),
            minor: numbers.get(1).unwrap_or(&"0").to_string(),
            patch: numbers.get(2).unwrap_or(&"0").to_string(),
            short,
            prerelease,
            build,
        })
    }
}

/// A semver numeric field: digits, and no leading zero unless it is "0".
fn is_number(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
}

/// Dot-separated non-empty identifiers of `[0-9A-Za-z-]`; numeric pre-release identifiers must
/// not have leading zeros (build identifiers may).
fn identifiers_ok(text: &str, prerelease: bool) -> bool {
    text.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(prerelease
                && id.bytes().all(|b| b.is_ascii_digit())
                && id.len() > 1
                && id.starts_with('0'))
    })
}

/// Compares decimal strings without leading zeros, of any length.
fn cmp_number(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn cmp_prerelease(a: &[String], b: &[String]) -> Ordering {
    // No pre-release ranks above any pre-release of the same version.
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    for (x, y) in a.iter().zip(b) {
        let x_num = x.bytes().all(|c| c.is_ascii_digit());
        let y_num = y.bytes().all(|c| c.is_ascii_digit());
        let order = match (x_num, y_num) {
            (true, true) => cmp_number(x, y),
            // Numeric identifiers rank below alphanumeric ones.
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.as_bytes().cmp(y.as_bytes()),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for ModuleVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_number(&self.major, &other.major)
            .then_with(|| cmp_number(&self.minor, &other.minor))
            .then_with(|| cmp_number(&self.patch, &other.patch))
            .then_with(|| cmp_prerelease(&self.prerelease, &other.prerelease))
    }
}

impl PartialOrd for ModuleVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equality is the ordering's: build metadata does not make a different version.
impl PartialEq for ModuleVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ModuleVersion {}

impl LibraryVersion for ModuleVersion {
    fn release_line(&self) -> (u64, u64) {
        // Numbers beyond u64 are not real-world release lines; saturating keeps them ordered.
        let number = |n: &str| n.parse::<u64>().unwrap_or(u64::MAX);
        (number(&self.major), number(&self.minor))
    }
}

/// A Go toolchain version (`go1.21.0`, `go1.21rc2`, `1.22.3`, or Trivy's `v1.21.0` for the
/// `stdlib` package). Ordered as the go command orders toolchains: the language version `1.21`
/// ranks below its pre-releases `1.21rc1`, which rank below the release `1.21.0`; before Go 1.21
/// the first release had no `.0` (`1.20` is `1.20.0`).
#[derive(Clone, Debug)]
pub struct GoVersion {
    major: u64,
    minor: u64,
    /// None: no patch field (a language version or a pre-release).
    patch: Option<u64>,
    /// "" (release), "alpha", "beta" or "rc" — ordered as strings, which the go command relies on.
    kind: String,
    pre: Option<u64>,
    /// As written, without the `go`/`v` prefix, for display.
    text: String,
}

impl GoVersion {
    pub fn major(&self) -> u64 {
        self.major
    }

    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// An alpha, beta or release candidate.
    pub fn is_prerelease(&self) -> bool {
        !self.kind.is_empty()
    }

    /// A language version (`1.21`) names no toolchain release from Go 1.21 on.
    pub fn is_release(&self) -> bool {
        self.kind.is_empty() && self.patch.is_some()
    }

    /// The name the go command uses for the toolchain: `go1.22.3`.
    pub fn toolchain_name(&self) -> String {
        format!("go{}", self.text)
    }

    /// The toolchain's version from a `golang.org/toolchain` module version
    /// (`v0.0.1-go1.22.3.linux-amd64`), with the platform suffix it is built for.
    pub fn from_toolchain_module(version: &str) -> Option<(GoVersion, String)> {
        let rest = version.strip_prefix("v0.0.1-go")?;
        // The platform (GOOS-GOARCH) is the last dot-separated part; the version has dots too.
        let (go, platform) = rest.rsplit_once('.')?;
        if !platform.contains('-') {
            return None;
        }
        Some((go.parse().ok()?, platform.to_string()))
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for GoVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("invalid Go version {text:?}");
        let trimmed = text.trim();
        // `runtime.Version()` may add experiments after a space: "go1.21.0 X:boringcrypto".
        let trimmed = trimmed.split_whitespace().next().unwrap_or("");
        let bare = trimmed
            .strip_prefix("go")
            .or_else(|| trimmed.strip_prefix('v'))
            .unwrap_or(trimmed);
        let (major, rest) = cut_int(bare).ok_or_else(invalid)?;
        let mut version = GoVersion {
            major,
            minor: 0,
            patch: Some(0),
            kind: String::new(),
            pre: None,
            text: bare.to_string(),
        };
        if rest.is_empty() {
            return Ok(version);
        }
        let rest = rest.strip_prefix('.').ok_or_else(invalid)?;
        let (minor, rest) = cut_int(rest).ok_or_else(invalid)?;
        version.minor = minor;
        if rest.is_empty() {
            // Patch missing means .0 before Go 1.21; from 1.21 on, "1.21" is the language
            // version, below every 1.21 toolchain. (The go command looks at the minor only.)
            version.patch = (minor < 21).then_some(0);
            return Ok(version);
        }
        if let Some(rest) = rest.strip_prefix('.') {
            // Pre-releases of patch releases do not exist.
            let (patch, rest) = cut_int(rest).ok_or_else(invalid)?;
            if !rest.is_empty() {
                return Err(invalid());
            }
            version.patch = Some(patch);
            return Ok(version);
        }
        let kind_len = rest.bytes().take_while(|b| b.is_ascii_lowercase()).count();
        if kind_len == 0 {
            return Err(invalid());
        }
        version.patch = None;
        version.kind = rest[..kind_len].to_string();
        let rest = &rest[kind_len..];
        if !rest.is_empty() {
            let (pre, rest) = cut_int(rest).ok_or_else(invalid)?;
            if !rest.is_empty() {
                return Err(invalid());
            }
            version.pre = Some(pre);
        }
        Ok(version)
    }
}

/// A leading decimal number without leading zeros, and the rest.
fn cut_int(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(|b| b.is_ascii_digit()).count();
    let number = &text[..digits];
    if !is_number(number) {
        return None;
    }
    Some((number.parse().ok()?, &text[digits..]))
}

impl Ord for GoVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        // A missing patch ranks below any patch number, as the go command compares "" below "0".
        self.major
            .cmp(&other.major)
            .then(self.minor.cmp(&other.minor))
            .then(self.patch.cmp(&other.patch))
            .then_with(|| self.kind.cmp(&other.kind))
            .then(self.pre.cmp(&other.pre))
    }
}

impl PartialOrd for GoVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for GoVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for GoVersion {}

impl LibraryVersion for GoVersion {
    fn release_line(&self) -> (u64, u64) {
        (self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choose::{Bump, IndexVersion, Vulnerability, choose};

    fn m(text: &str) -> ModuleVersion {
        text.parse()
            .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
    }

    fn g(text: &str) -> GoVersion {
        text.parse()
            .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
    }

    /// golang.org/x/mod/semver's own test table, in increasing order; `None` marks versions it
    /// rejects, and a canonical form equal to the previous one means "compares equal".
    const SEMVER_TABLE: &[(&str, Option<&str>)] = &[
        ("bad", None),
        ("v1-alpha.beta.gamma", None),
        ("v1-pre", None),
        ("v1+meta", None),
        ("v1-pre+meta", None),
        ("v1.2-pre", None),
        ("v1.2+meta", None),
        ("v1.2-pre+meta", None),
        ("v1.0.0-alpha", Some("v1.0.0-alpha")),
        ("v1.0.0-alpha.1", Some("v1.0.0-alpha.1")),
        ("v1.0.0-alpha.beta", Some("v1.0.0-alpha.beta")),
        ("v1.0.0-beta", Some("v1.0.0-beta")),
        ("v1.0.0-beta.2", Some("v1.0.0-beta.2")),
        ("v1.0.0-beta.11", Some("v1.0.0-beta.11")),
        ("v1.0.0-rc.1", Some("v1.0.0-rc.1")),
        ("v1", Some("v1.0.0")),
        ("v1.0", Some("v1.0.0")),
        ("v1.0.0", Some("v1.0.0")),
        ("v1.2", Some("v1.2.0")),
        ("v1.2.0", Some("v1.2.0")),
        ("v1.2.3-456", Some("v1.2.3-456")),
        ("v1.2.3-456.789", Some("v1.2.3-456.789")),
        ("v1.2.3-456-789", Some("v1.2.3-456-789")),
        ("v1.2.3-456a", Some("v1.2.3-456a")),
        ("v1.2.3-pre", Some("v1.2.3-pre")),
        ("v1.2.3-pre+meta", Some("v1.2.3-pre")),
        ("v1.2.3-pre.1", Some("v1.2.3-pre.1")),
        ("v1.2.3-zzz", Some("v1.2.3-zzz")),
        ("v1.2.3", Some("v1.2.3")),
        ("v1.2.3+meta", Some("v1.2.3")),
        ("v1.2.3+meta-pre", Some("v1.2.3")),
        ("v1.2.3+meta-pre.sha.256a", Some("v1.2.3")),
    ];

    #[test]
    fn semver_table_validity_and_canonical_form() {
        for (text, canonical) in SEMVER_TABLE {
            let parsed = text.parse::<ModuleVersion>();
            match canonical {
                None => assert!(parsed.is_err(), "{text} must be rejected"),
                Some(canonical) => assert_eq!(&parsed.unwrap().canonical(), canonical, "{text}"),
            }
        }
    }

    #[test]
    fn semver_table_order() {
        // Every pair, as x/mod's TestCompare does: order follows the table, equal canonical
        // forms compare equal.
        let valid: Vec<(&str, &str)> = SEMVER_TABLE
            .iter()
            .filter_map(|(text, canonical)| canonical.map(|c| (*text, c)))
            .collect();
        for (i, (a, ca)) in valid.iter().enumerate() {
            for (j, (b, cb)) in valid.iter().enumerate() {
                let expected = if ca == cb { Ordering::Equal } else { i.cmp(&j) };
                assert_eq!(m(a).cmp(&m(b)), expected, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn more_invalid_versions() {
        for text in [
            "",
            "v",
            "v01.2.3",
            "v1.02.3",
            "v1.2.03",
            "v1.2.3-01",
            "v1.2.3-",
            "v1.2.3-a..b",
            "v1.2.3+",
            "v1.2.3+a..b",
            "v1.2.3.4",
            "v1.2.3-a_b",
            "v1.2.x",
            "va.b.c",
            "v-1.2.3",
            "1.2.3 4",
        ] {
            assert!(
                text.parse::<ModuleVersion>().is_err(),
                "{text:?} must be rejected"
            );
        }
        // Build identifiers may have leading zeros; pre-release ones may not.
        assert!("v1.2.3+01".parse::<ModuleVersion>().is_ok());
        assert!("v1.2.3-0a".parse::<ModuleVersion>().is_ok());
    }

    #[test]
    fn v_prefix_is_optional_and_always_displayed() {
        // Trivy: installed "v0.4.0", fixed "0.17.0".
        assert_eq!(m("0.17.0"), m("v0.17.0"));
        assert_eq!(m("0.17.0").to_string(), "v0.17.0");
        assert_eq!(m(" v0.4.0 ").to_string(), "v0.4.0");
        assert!(m("v0.4.0") < m("0.17.0"));
        assert_eq!(m("v1.2").to_string(), "v1.2");
        assert_eq!(m("v2.0.0+incompatible").to_string(), "v2.0.0+incompatible");
    }

    #[test]
    fn incompatible_is_build_metadata() {
        assert_eq!(m("v2.0.0+incompatible"), m("v2.0.0"));
        assert!(m("v2.0.0+incompatible") < m("v2.0.1+incompatible"));
        assert!(m("v1.9.9") < m("v2.0.0+incompatible"));
        assert!(m("v2.0.0-rc.1+incompatible") < m("v2.0.0+incompatible"));
        assert_eq!(m("v3.1.0+incompatible").release_line(), (3, 1));
    }

    #[test]
    fn pseudo_versions() {
        let pseudo = [
            (
                "v0.0.0-20230101120000-abcdef123456",
                "20230101120000",
                "abcdef123456",
            ),
            (
                "v1.2.4-0.20230101120000-abcdef123456",
                "20230101120000",
                "abcdef123456",
            ),
            (
                "v1.2.3-pre.0.20230101120000-abcdef123456",
                "20230101120000",
                "abcdef123456",
            ),
            (
                "v1.2.3-rc.1.0.20230101120000-abcdef123456",
                "20230101120000",
                "abcdef123456",
            ),
            (
                "v0.0.0-0.20230101120000-abcdef123456",
                "20230101120000",
                "abcdef123456",
            ),
            (
                "v2.0.0-20230101120000-abcdef123456+incompatible",
                "20230101120000",
                "abcdef123456",
            ),
            ("v0.0.0-20060102150405-hash", "20060102150405", "hash"),
        ];
        for (text, time, revision) in pseudo {
            let v = m(text);
            assert!(v.is_pseudo(), "{text}");
            assert!(
                !v.is_prerelease(),
                "{text} is a commit, not an opted-in pre-release"
            );
            assert_eq!(v.pseudo_parts(), Some((time, revision)), "{text}");
        }
        for text in [
            "v1.2.3-20230101120000-abcdef123456",
            "v1.2.3-pre.20230101120000-abcdef123456",
            "v0.0.0-2023010112000-abcdef123456",
            "v0.0.0-20230101120000",
            "v0.0.0-20230101120000-",
            "v1.2.3-rc.1",
            "v1.2.3",
        ] {
            assert!(!m(text).is_pseudo(), "{text}");
        }
        assert!(m("v1.2.3-rc.1").is_prerelease());
    }

    #[test]
    fn pseudo_version_order() {
        // Increasing: a pseudo-version sits after the tag it builds on and before the next one.
        let order = [
            "v0.0.0-20190101000000-aaaaaaaaaaaa",
            "v0.0.0-20200101000000-000000000000",
            "v0.0.0-20200101000001-000000000000",
            "v0.0.1",
            "v0.1.0",
            "v1.2.3",
            "v1.2.4-0.20200101000000-abcdef123456",
            "v1.2.4-0.20210101000000-abcdef123456",
            "v1.2.4-pre",
            "v1.2.4-pre.0.20200101000000-abcdef123456",
            "v1.2.4-pre.1",
            "v1.2.4",
        ];
        for pair in order.windows(2) {
            assert!(m(pair[0]) < m(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        // Revisions only break ties of equal commit times (lexically, as identifiers).
        assert!(m("v0.0.0-20200101000000-aaaaaaaaaaaa") < m("v0.0.0-20200101000000-bbbbbbbbbbbb"));
    }

    #[test]
    fn numbers_of_any_size() {
        assert!(m("v1.99999999999999999999.0") < m("v1.100000000000000000000.0"));
        assert!(m("v9.0.0") < m("v10.0.0"));
        assert!(m("v1.2.3-9") < m("v1.2.3-10"));
        assert!(m("v1.2.3-10") < m("v1.2.3-9a"));
    }

    #[test]
    fn release_lines_and_bumps() {
        assert_eq!(m("v0.4.0").release_line(), (0, 4));
        assert_eq!(m("v0.4.0").bump_to(&m("0.17.0")), Bump::Minor);
        assert_eq!(m("v0.17.0").bump_to(&m("0.17.1")), Bump::Patch);
        assert_eq!(m("v1.9.0").bump_to(&m("v2.0.0+incompatible")), Bump::Major);
        assert_eq!(
            m("v0.0.0-20220101000000-abcdef123456").bump_to(&m("v0.0.1")),
            Bump::Patch
        );
    }

    #[test]
    fn choose_over_module_versions() {
        // x/crypto as Trivy reports it: installed with "v", fixes without.
        let vulns = [
            Vulnerability {
                id: "CVE-2022-41717".into(),
                fixed_versions: vec![],
            },
            Vulnerability {
                id: "CVE-2023-48795".into(),
                fixed_versions: vec!["0.17.0".into()],
            },
            Vulnerability {
                id: "CVE-2024-45337".into(),
                fixed_versions: vec!["0.31.0".into()],
            },
        ];
        let index: Vec<IndexVersion<ModuleVersion>> = ["v0.4.0", "v0.17.0", "v0.25.0", "v0.31.0"]
            .iter()
            .map(|v| IndexVersion {
                version: m(v),
                unusable: None,
            })
            .collect();
        let choice = choose(&m("v0.4.0"), &vulns, &index, Bump::Minor, false);
        assert_eq!(choice.to.map(|v| v.to_string()), Some("v0.31.0".into()));
        assert_eq!(choice.fixes, vec!["CVE-2023-48795", "CVE-2024-45337"]);
        let choice = choose(&m("v0.4.0"), &vulns, &index, Bump::Patch, false);
        assert_eq!(choice.to, None);
    }

    /// The go command's `internal/gover` test table: (x, y, Compare(x, y)), valid versions only
    /// (we reject what it calls malformed).
    #[test]
    fn go_version_order() {
        let table: &[(&str, &str, i32)] = &[
            ("1", "1.1", -1),
            ("1.5", "1.6", -1),
            ("1.5", "1.10", -1),
            ("1.6", "1.6.1", -1),
            ("1.19", "1.19.0", 0),
            ("1.19rc1", "1.19", -1),
            ("1.20", "1.20.0", 0),
            ("1.20rc1", "1.20", -1),
            ("1.21", "1.21.0", -1),
            ("1.21", "1.21rc1", -1),
            ("1.21rc1", "1.21.0", -1),
            ("1.6", "1.19", -1),
            ("1.19", "1.19.1", -1),
            ("1.19rc1", "1.19", -1),
            ("1.19rc1", "1.19.1", -1),
            ("1.19rc1", "1.19rc2", -1),
            ("1.19.0", "1.19.1", -1),
            ("1.19rc1", "1.19.0", -1),
            ("1.19alpha3", "1.19beta2", -1),
            ("1.19beta2", "1.19rc1", -1),
            ("1.1", "1.99999999999999998", -1),
            ("1.99999999999999998", "1.99999999999999999", -1),
            // Our additions: prefixes as Go, Trivy and Debian write them.
            ("go1.21.0", "v1.21.0", 0),
            ("go1.21rc2", "1.21.0", -1),
            ("go1.21.13", "go1.22.3", -1),
            ("go1.22.3", "1.22.12", -1),
            ("go1.21.0 X:boringcrypto", "go1.21.0", 0),
            ("go1.9.2", "go1.10", -1),
        ];
        for (x, y, expected) in table {
            let expected = match expected {
                -1 => Ordering::Less,
                0 => Ordering::Equal,
                _ => Ordering::Greater,
            };
            assert_eq!(g(x).cmp(&g(y)), expected, "{x} vs {y}");
            assert_eq!(g(y).cmp(&g(x)), expected.reverse(), "{y} vs {x}");
        }
    }

    #[test]
    fn go_version_rejects_malformed() {
        for text in [
            "",
            "x",
            "go",
            "1.",
            "1.21.",
            "1.21.3rc1",
            "1.21rc",
            "1.21RC1",
            "01.21",
            "1.21.0.1",
        ] {
            // "1.21rc" (a kind without a number) is valid for the go command.
            if text == "1.21rc" {
                assert!(text.parse::<GoVersion>().is_ok());
                continue;
            }
            assert!(
                text.parse::<GoVersion>().is_err(),
                "{text:?} must be rejected"
            );
        }
    }

    #[test]
    fn go_version_facts() {
        assert!(g("go1.21.0").is_release());
        assert!(!g("1.21").is_release());
        assert!(g("1.20").is_release());
        assert!(g("go1.21rc2").is_prerelease());
        assert_eq!(g("v1.22.3").toolchain_name(), "go1.22.3");
        assert_eq!(g("go1.22.3").release_line(), (1, 22));
        assert_eq!(g("go1.21.13").bump_to(&g("go1.22.3")), Bump::Minor);
        assert_eq!(
            GoVersion::from_toolchain_module("v0.0.1-go1.22.3.linux-amd64"),
            Some((g("1.22.3"), "linux-amd64".to_string()))
        );
        assert_eq!(
            GoVersion::from_toolchain_module("v0.0.1-go1.21rc2.darwin-arm64"),
            Some((g("1.21rc2"), "darwin-arm64".to_string()))
        );
        assert_eq!(GoVersion::from_toolchain_module("v0.0.1-go1.22.3"), None);
        assert_eq!(GoVersion::from_toolchain_module("v1.2.3"), None);
    }
}
