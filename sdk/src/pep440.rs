//! Python package versions (PEP 440) and `Requires-Python` checks.

use std::fmt;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifier};

use crate::choose::{Bump, LibraryVersion};

/// A Python package version, ordered and compared as PEP 440 says (so `1.0 == 1.0.0` and
/// `1.0rc1 < 1.0 < 1.0.post1`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pep440Version(Version);

impl fmt::Display for Pep440Version {
    /// The normalized form ("1.0-post1" shows as "1.0.post1").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Pep440Version {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map(Pep440Version)
            .map_err(|e| format!("invalid PEP 440 version {text:?}: {e}"))
    }
}

impl Pep440Version {
    /// Alpha, beta, release candidate or development release.
    pub fn is_prerelease(&self) -> bool {
        self.0.any_prerelease()
    }
}

impl LibraryVersion for Pep440Version {
    fn release_line(&self) -> (u64, u64) {
        let release = self.0.release();
        (
            release.first().copied().unwrap_or(0),
            release.get(1).copied().unwrap_or(0),
        )
    }

    fn bump_to(&self, newer: &Self) -> Bump {
        // A project changes its epoch to restart its numbering, so numbers on either side of the
        // change say nothing about compatibility.
        if self.0.epoch() != newer.0.epoch() {
            Bump::Major
        } else {
            Bump::between(self.release_line(), newer.release_line())
        }
    }
}

/// The characters PEP 503 takes for one another in a project name, a run of them counting as
/// one: those of [`normalize_name`], and so the `separators` of a Python plugin's name rule.
pub const NAME_SEPARATORS: &str = "-_.";

/// PEP 503 normalized project name (lowercase; runs of `-`, `_`, `.` become one `-`): how pip
/// and package indexes compare names.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator_run = false;
    for c in name.chars() {
        if NAME_SEPARATORS.contains(c) {
            if !in_separator_run {
                out.push('-');
            }
            in_separator_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_separator_run = false;
        }
    }
    out
}

/// Whether a `Requires-Python` specifier set (">=3.7, !=3.0.*") admits `python_version`
/// ("3.11.2", or "3.11" when the patch release is unknown).
///
/// An unreadable specifier or Python version admits: the field is metadata that projects
/// sometimes get wrong, and a broken field must not hide the release that fixes a vulnerability
/// (pip itself would install it). For a bare "X.Y", the answer is yes when either X.Y.0 or X.Y.99
/// is admitted: the actual patch release could be either end of the line, and bounds such as
/// ">=3.11.1" or "<3.11.4" should not shut out the whole line.
pub fn requires_python_allows(requires_python: &str, python_version: &str) -> bool {
    let Ok(specifiers) = requires_python
        .split(',')
        .map(str::trim)
        // Tolerates a trailing comma, which pip also accepts.
        .filter(|part| !part.is_empty())
        .map(VersionSpecifier::from_str)
        .collect::<Result<Vec<_>, _>>()
    else {
        return true;
    };
    let Ok(python) = python_version.trim().parse::<Version>() else {
        return true;
    };
    let pythons = match *python.release() {
        [major, minor] => vec![
            python.clone().with_release([major, minor, 0]),
            python.with_release([major, minor, 99]),
        ],
        _ => vec![python],
    };
    pythons
        .iter()
        .any(|python| specifiers.iter().all(|spec| spec.contains(python)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalizes_names_like_pep_503() {
        assert_eq!(normalize_name("MarkupSafe"), "markupsafe");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("Foo__Bar-.-baz"), "foo-bar-baz");
        assert_eq!(normalize_name("ruamel.yaml.clib"), "ruamel-yaml-clib");
    }

    use super::*;

    fn v(text: &str) -> Pep440Version {
        text.parse().unwrap()
    }

    #[test]
    fn ordering() {
        let less: &[(&str, &str)] = &[
            ("1.0a1", "1.0b1"),
            ("1.0b1", "1.0rc1"),
            ("1.0rc1", "1.0"),
            ("1.0a1", "1.0a2"),
            ("1.0a2", "1.0a10"),
            ("1.0c1", "1.0rc2"),
            ("1.0.dev1", "1.0a1"),
            ("1.0.dev1", "1.0.dev2"),
            ("1.0a1.dev1", "1.0a1"),
            ("0.9", "1.0.dev1"),
            ("1.0", "1.0.post1"),
            ("1.0.post1", "1.0.post2"),
            ("1.0.post1.dev1", "1.0.post1"),
            ("1.0.post1", "1.1"),
            ("1.0.post1", "1.0.1"),
            ("1.0", "1.0+local"),
            ("1.0+local", "1.0.post1"),
            ("1.0+abc", "1.0+abd"),
            ("1.0+abc", "1.0+1"),
            ("1.0+1", "1.0+2"),
            ("1.0rc1", "1.0+local"),
            ("1.0", "1.0.1"),
            ("1.9", "1.10"),
            ("1.22.7", "1.23.1"),
            ("2.0", "1!0.1"),
            ("1!1.0", "1!1.1"),
            ("1!9.9", "2!0.1"),
            ("2013.10", "1!1.0"),
            ("2022.12.7", "2023.7.22"),
            ("1.0rc1", "1.0.0"),
        ];
        for (low, high) in less {
            assert!(v(low) < v(high), "{low} < {high}");
            assert!(v(high) > v(low), "{high} > {low}");
        }
    }

    #[test]
    fn normalisation() {
        let same: &[(&str, &str)] = &[
            ("1.0.0", "1.0"),
            ("1", "1.0.0"),
            ("1.0-post1", "1.0.post1"),
            ("1.0post1", "1.0.post1"),
            ("1.0-1", "1.0.post1"),
            ("1.0.a1", "1.0a1"),
            ("1.0alpha1", "1.0a1"),
            ("1.0beta2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0.preview1", "1.0rc1"),
            ("v1.0", "1.0"),
            ("0!1.0", "1.0"),
            (" 1.0 ", "1.0"),
            ("1.0-dev3", "1.0.dev3"),
            ("1.0+Local-1", "1.0+local.1"),
        ];
        for (text, normal) in same {
            assert_eq!(v(text), v(normal), "{text} == {normal}");
        }
        assert_eq!(v("1.0-post1").to_string(), "1.0.post1");
        assert_eq!(v("1.0ALPHA1").to_string(), "1.0a1");
        assert_eq!(v("1!2.0-RC.1").to_string(), "1!2.0rc1");
        assert_eq!(v("1.0.0").to_string(), "1.0.0");
    }

    #[test]
    fn equal_versions_hash_alike() {
        use std::collections::HashSet;
        let set: HashSet<Pep440Version> = ["1.0", "1.0.0", "1", "1.0.post1"]
            .iter()
            .map(|text| v(text))
            .collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn parse_errors_name_the_text() {
        for bad in ["", "latest", "1.0.x", "1.0+", "=1.0"] {
            let err = bad.parse::<Pep440Version>().unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn release_lines() {
        let cases: &[(&str, (u64, u64))] = &[
            ("1.22.7", (1, 22)),
            ("1.22", (1, 22)),
            ("3", (3, 0)),
            ("1!2.0", (2, 0)),
            ("2.0.1.post1", (2, 0)),
            ("2.1rc1", (2, 1)),
            ("2022.12.7", (2022, 12)),
        ];
        for (text, line) in cases {
            assert_eq!(v(text).release_line(), *line, "{text}");
        }
    }

    #[test]
    fn bumps() {
        let cases: &[(&str, &str, Bump)] = &[
            ("1.22.3", "1.22.7", Bump::Patch),
            ("1.22.3", "1.22.7.post1", Bump::Patch),
            ("1.22", "1.22.1", Bump::Patch),
            ("1.22.3", "1.23.0", Bump::Minor),
            ("1.22.3", "2.0", Bump::Major),
            ("2.0", "1!2.0.1", Bump::Major),
            ("1!2.0", "1!2.0.1", Bump::Patch),
            ("1!2.0", "1!2.1", Bump::Minor),
        ];
        for (from, to, bump) in cases {
            assert_eq!(v(from).bump_to(&v(to)), *bump, "{from} -> {to}");
        }
    }

    #[test]
    fn requires_python() {
        let cases: &[(&str, &str, bool)] = &[
            (">=3.7", "3.11.2", true),
            (">=3.12", "3.11.2", false),
            ("<3", "3.11.2", false),
            ("!=3.11.*", "3.11.2", false),
            ("!=3.11.*", "3.12.0", true),
            (">=3.7, !=3.0.*", "3.11.2", true),
            (">=2.7, !=3.0.*, !=3.1.*, !=3.2.*", "3.1.4", false),
            (">=3.8,<4", "3.11.2", true),
            (">=3.8,<3.11", "3.11.2", false),
            ("~=3.9", "3.11.2", true),
            ("~=3.9.1", "3.11.2", false),
            ("==3.11.*", "3.11.2", true),
            ("  >= 3.7 ,  < 4  ", "3.11.2", true),
            (">=3.7,", "3.11.2", true),
            (">=3.12,", "3.11.2", false),
            ("", "3.11.2", true),
            (">=3.11.1", "3.11", true),
            (">=3.11.1", "3.11.0", false),
            ("<3.11.4", "3.11", true),
            ("<3.11", "3.11", false),
            (">3.11", "3.11", true),
            ("!=3.11.*", "3.11", false),
            (">=3.12", "3.11", false),
            (">=3.7", "3.11", true),
            ("==3.11.2", "3.11", false),
            ("not a specifier", "3.11.2", true),
            (">=3.7; python_version", "3.11.2", true),
            (">=3.x", "3.11.2", true),
            (">=3.7", "unknown", true),
        ];
        for (spec, python, expected) in cases {
            assert_eq!(
                requires_python_allows(spec, python),
                *expected,
                "{spec:?} admits {python}"
            );
        }
    }
}
