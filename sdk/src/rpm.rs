//! RPM package versions (`[epoch:]version[-release]`), ordered the way rpm orders them.
//!
//! Only rpm's own algorithm decides: a patcher that judged "is the installed package fixed?" by
//! any other rule would skip updates rpm considers newer, or install ones it considers older.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// An RPM package version, `[epoch:]version[-release]`.
///
/// Ordered by epoch (a missing epoch is 0), then version with [`rpmvercmp`], then release with
/// [`rpmvercmp`], a missing release sorting before any present one. That is the total order of
/// python-rpm's `labelCompare` (and so `rpmdev-vercmp`). rpm's dependency check differs in one
/// point: there a missing release matches any release, so a requirement on `3.0.7` is met by
/// `3.0.7-27.el9`; ask [`RpmVersion::satisfies_at_least`] for that judgement.
///
/// Equality follows the order, so `0:1.2 == 1.2` and `1.01 == 1.1`; the text shown by `Display`
/// keeps the version and release as written.
#[derive(Clone, Debug)]
pub struct RpmVersion {
    epoch: u64,
    version: String,
    release: Option<String>,
}

impl RpmVersion {
    /// 0 when none was given.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn release(&self) -> Option<&str> {
        self.release.as_deref()
    }

    /// Whether `self`, installed, meets a requirement of `min` or newer, as rpm's dependency
    /// check decides: when either side has no release, releases are not compared (a fix
    /// announced as `3.0.7` is in every `3.0.7-N`).
    pub fn satisfies_at_least(&self, min: &RpmVersion) -> bool {
        let by_release = match (&self.release, &min.release) {
            (Some(installed), Some(required)) => rpmvercmp(installed, required),
            _ => Ordering::Equal,
        };
        self.cmp_epoch_version(min).then(by_release) != Ordering::Less
    }

    fn cmp_epoch_version(&self, other: &RpmVersion) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
    }
}

impl FromStr for RpmVersion {
    type Err = String;

    /// The epoch ends at the first ':' and the release starts after the last '-', as in rpm's
    /// own parser; unlike it, an empty or non-numeric epoch and an empty release are errors
    /// rather than silently read as 0 or as no release.
    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = |why: String| format!("invalid RPM version {text:?}: {why}");
        let (epoch, rest) = match text.split_once(':') {
            Some((epoch, rest)) => {
                // `u64::from_str` alone would also take "+1".
                if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(format!("epoch {epoch:?} is not a number")));
                }
                let epoch = epoch
                    .parse()
                    .map_err(|_| invalid(format!("epoch {epoch} is too large")))?;
                (epoch, rest)
            }
            None => (0, text),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err(invalid("empty release after '-'".to_string())),
            Some((version, release)) => (version, Some(release.to_string())),
            None => (rest, None),
        };
        if version.is_empty() {
            return Err(invalid("empty version".to_string()));
        }
        Ok(RpmVersion {
            epoch,
            version: version.to_string(),
            release,
        })
    }
}

impl fmt::Display for RpmVersion {
    /// Epoch 0 is left out, as rpm shows it (`0:1.2` shows as `1.2`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.version)?;
        if let Some(release) = &self.release {
            write!(f, "-{release}")?;
        }
        Ok(())
    }
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_epoch_version(other)
            .then_with(|| match (&self.release, &other.release) {
                (Some(mine), Some(theirs)) => rpmvercmp(mine, theirs),
                (mine, theirs) => mine.is_some().cmp(&theirs.is_some()),
            })
    }
}

impl PartialOrd for RpmVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for RpmVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RpmVersion {}

/// Compares two `[epoch:]version[-release]` texts by [`RpmVersion`]'s order.
pub fn compare(a: &str, b: &str) -> Result<Ordering, String> {
    Ok(a.parse::<RpmVersion>()?.cmp(&b.parse()?))
}

/// rpm's `rpmvercmp()` (rpm 4.15 and later): compares one version or one release.
///
/// Both texts are walked as runs of ASCII digits or ASCII letters; everything else separates runs
/// and only marks where one ends (`1_0 == 1.0`), except `~` and `^`. Runs are compared pairwise:
/// numbers by value, however long; letters byte by byte; a number is newer than letters. `~`
/// sorts before anything, the end of the text included (`1.0~rc1 < 1.0`); `^` sorts after the
/// end of the text but before anything else (`1.0 < 1.0^git1 < 1.0.1`). When all runs so far are
/// equal, the text with runs left over is newer (`1.0 < 1.0a`).
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    let (mut one, mut two) = (a.as_bytes(), b.as_bytes());
    loop {
        one = skip_separators(one);
        two = skip_separators(two);
        let first = match (one.first(), two.first()) {
            (Some(b'~'), Some(b'~')) | (Some(b'^'), Some(b'^')) => {
                one = &one[1..];
                two = &two[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (Some(b'^'), Some(_)) | (None, Some(_)) => return Ordering::Less,
            (Some(_), Some(b'^')) | (Some(_), None) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
            (Some(&first), Some(_)) => first,
        };
        let numeric = first.is_ascii_digit();
        // The run in `two` is read as the kind `one` starts with, so an empty one there means
        // the kinds differ.
        let in_run: fn(&u8) -> bool = if numeric {
            u8::is_ascii_digit
        } else {
            u8::is_ascii_alphabetic
        };
        let (run_one, rest_one) = split_run(one, in_run);
        let (run_two, rest_two) = split_run(two, in_run);
        let order = if run_two.is_empty() {
            if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        } else if numeric {
            cmp_numbers(run_one, run_two)
        } else {
            run_one.cmp(run_two)
        };
        if order != Ordering::Equal {
            return order;
        }
        one = rest_one;
        two = rest_two;
    }
}

fn skip_separators(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|&b| b.is_ascii_alphanumeric() || b == b'~' || b == b'^')
        .unwrap_or(text.len());
    &text[start..]
}

fn split_run(text: &[u8], in_run: fn(&u8) -> bool) -> (&[u8], &[u8]) {
    let end = text.iter().position(|b| !in_run(b)).unwrap_or(text.len());
    text.split_at(end)
}

/// Compares digit runs by value without parsing them: dates and hashes make runs longer than
/// any integer type.
fn cmp_numbers(a: &[u8], b: &[u8]) -> Ordering {
    let without_leading_zeros = |digits: &[u8]| -> usize {
        digits
            .iter()
            .position(|&d| d != b'0')
            .unwrap_or(digits.len())
    };
    let a = &a[without_leading_zeros(a)..];
    let b = &b[without_leading_zeros(b)..];
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    fn v(text: &str) -> RpmVersion {
        text.parse().unwrap()
    }

    /// (a, b, how a compares to b); each is also checked reversed and against itself.
    const VERCMP: &[(&str, &str, Ordering)] = &[
        // Numbers.
        ("1", "1", Equal),
        ("1", "2", Less),
        ("9", "10", Less),
        ("10", "9", Greater),
        ("2.0", "1.9999", Greater),
        ("1.0", "1.0.1", Less),
        ("1.0.1", "1.0.2", Less),
        ("1.0.10", "1.0.9", Greater),
        ("1.2.3", "1.2.3", Equal),
        ("1.10", "1.9", Greater),
        ("1.01", "1.1", Equal),
        ("001", "1", Equal),
        ("1.001", "1.1", Equal),
        ("1.0010", "1.10", Equal),
        ("0", "00", Equal),
        ("0", "1", Less),
        ("1.0", "1.00", Equal),
        ("1.0", "1.0.0", Less),
        ("2.0.0", "2", Greater),
        ("4.999.9", "5.0", Less),
        ("10.0001", "10.1", Equal),
        ("10.0001", "10.0039", Less),
        ("20101121", "20101122", Less),
        ("3.0.7", "3.0.10", Less),
        ("2.34", "2.4", Greater),
        ("1.2.3.4.5", "1.2.3.4.6", Less),
        ("1.2.3.4.5", "1.2.3.4", Greater),
        ("0.1", "0.0.1", Greater),
        ("1.0.0.0.0", "1", Greater),
        ("1.0", "1.01", Less),
        // Digit runs longer than any integer type.
        ("18446744073709551616", "18446744073709551615", Greater),
        (
            "123456789012345678901234567890",
            "123456789012345678901234567891",
            Less,
        ),
        (
            "99999999999999999999999999",
            "100000000000000000000000000",
            Less,
        ),
        ("000000000000000000000000001", "1", Equal),
        ("1.00000000000000000000000000000000000000002", "1.2", Equal),
        ("1.123456789012345678901234567890", "1.99", Greater),
        ("20240101123456789012", "20240101123456789011", Greater),
        ("1.18446744073709551616", "1.18446744073709551616.0", Less),
        // Letters, compared byte by byte.
        ("a", "a", Equal),
        ("a", "b", Less),
        ("abc", "abd", Less),
        ("abc", "ab", Greater),
        ("A", "a", Less),
        ("Z", "a", Less),
        ("alpha", "beta", Less),
        ("rc", "beta", Greater),
        ("xyz10", "xyz10", Equal),
        ("xyz10", "xyz10.1", Less),
        ("xyz10", "xyz9", Greater),
        ("1.0aa", "1.0a", Greater),
        ("1.0a", "1.0b", Less),
        ("10b2", "10a1", Greater),
        ("10a2", "10b2", Less),
        ("5.5p1", "5.5p2", Less),
        ("5.5p1", "5.5p10", Less),
        ("5.5p2", "5.6p1", Less),
        ("5.6p1", "6.5p1", Less),
        ("2.0.1a", "2.0.1", Greater),
        // A number is newer than letters.
        ("1.0a", "1.0", Greater),
        ("1.a", "1.1", Less),
        ("a", "1", Less),
        ("xyz.4", "8", Less),
        ("xyz.4", "2", Less),
        ("6.0.rc1", "6.0", Greater),
        ("6.0.rc1", "6.0.1", Less),
        ("1.0alpha", "1.0.1", Less),
        ("1.0a1", "1.0.1", Less),
        ("10xyz", "10.1xyz", Less),
        ("1b.fc17", "1.fc17", Less),
        ("1g.fc17", "1.fc17", Greater),
        ("1.el9", "1.1", Less),
        ("1el9", "1.9", Less),
        ("2a", "2.0", Less),
        ("a1", "1a", Less),
        ("abc1", "abc", Greater),
        ("1abc", "1", Greater),
        // Separators only split runs.
        ("1_0", "1.0", Equal),
        ("1-0", "1.0", Equal),
        ("1+0", "1.0", Equal),
        ("1..0", "1.0", Equal),
        ("1.0.", "1.0", Equal),
        (".1.0", "1.0", Equal),
        ("1.0 ", "1.0", Equal),
        ("a+", "a_", Equal),
        ("+a", "_a", Equal),
        ("+", "_", Equal),
        ("", "", Equal),
        ("", ".", Equal),
        ("", "1", Less),
        ("", "a", Less),
        ("1.0a", "1.0.a", Equal),
        ("1a", "1.a", Equal),
        ("1%{?dist}", "1.dist", Equal),
        // Non-ASCII characters are separators too.
        ("1.0α", "1.0", Equal),
        ("1.α.0", "1.0", Equal),
        ("1.0ä1", "1.0.1", Equal),
        // `~` sorts before anything, the end included.
        ("1.0~rc1", "1.0", Less),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0~rc1", "1.0~rc1", Equal),
        ("1.0~rc1~git123", "1.0~rc1", Less),
        ("1.0~", "1.0", Less),
        ("1.0~", "1.0~", Equal),
        ("1.0~~", "1.0~", Less),
        ("~", "", Less),
        ("~1", "", Less),
        ("~", "~~", Greater),
        ("1.0~rc1", "1.0.rc1", Less),
        ("1.0~rc1", "1.0rc1", Less),
        ("1.0~rc1", "0.9", Greater),
        ("1.0~1", "1.0~a", Greater),
        ("1.0~rc1", "1.0~beta", Greater),
        ("2.0~beta1", "2.0~rc1", Less),
        ("1~", "1_", Less),
        ("1.0~rc1", "1.0-1", Less),
        ("1.0~rc1", "1.0~rc1.", Equal),
        // `^` sorts after the end, before anything else.
        ("1.0^", "1.0", Greater),
        ("1.0^", "1.0^", Equal),
        ("1.0^git1", "1.0", Greater),
        ("1.0^git1", "1.0^git2", Less),
        ("1.0^git1", "1.0.1", Less),
        ("1.0^git1", "1.01", Less),
        ("1.0^20160101", "1.0.1", Less),
        ("1.0^20160102", "1.0^20160101^git1", Greater),
        ("1.0^20160101^git1", "1.0^20160101", Greater),
        ("1.0^git1~pre", "1.0^git1", Less),
        ("1.0^git1~pre", "1.0", Greater),
        ("1.0^", "1.0.0", Less),
        ("1.0^", "1.0a", Less),
        ("1.0^^", "1.0^", Greater),
        ("^", "", Greater),
        ("1.0^", "1.0~", Greater),
        ("1.0^1", "1.0^a", Greater),
        ("1.0^git1", "1.0^git1", Equal),
        ("1^", "1_", Greater),
        ("1.0^", "1.0.", Greater),
        // Both.
        ("1.0~rc1^git1", "1.0~rc1", Greater),
        ("1.0~rc1^git1", "1.0", Less),
        ("1.0~rc1^git1", "1.0~rc2", Less),
        ("1.0~rc1^git1", "1.0~rc1^git2", Less),
        ("1.0~rc1^", "1.0~rc1~", Greater),
        // Seen in real packages.
        ("27.el9", "28.el9", Less),
        ("100.el9_4.2", "100.el9_4.4", Less),
        ("1.el9", "1.el9_0", Less),
        ("1.el9_2.1", "1.el9_2", Greater),
        ("5.el8", "5.el8_10", Less),
        ("3.el7", "3.el7_9", Less),
        ("1.fc38", "1.fc39", Less),
        ("2.fc39", "1.fc40", Greater),
        ("0.rc1.fc39", "1.fc39", Less),
        ("1.0.2k", "1.0.2n", Less),
        ("1.1.1k", "1.1.1w", Less),
        ("1.1.1w", "1.1.1", Greater),
        ("1.1.1", "3.0.0", Less),
        ("2.34", "2.28", Greater),
        ("9.0.1", "9.0.1.alpha", Less),
        ("7.76.1", "7.61.1", Greater),
        ("1.2.11", "1.2.13", Less),
        ("2.9.13", "2.9.1", Greater),
        ("4.4.20", "4.4.3", Greater),
        ("5.1.8", "5.1.16", Less),
        ("1.9.5p2", "1.9.5p10", Less),
        ("2.17", "2.17.0", Less),
        ("20230101", "20221231", Greater),
        ("0.20230101git1234abc", "0.20230101", Greater),
        ("1.0.0.git20230101", "1.0.0", Greater),
        ("1.34.2~rc1", "1.34.1", Greater),
        ("1.0.0~beta1", "1.0.0~alpha2", Greater),
        ("1.0~pre20230101", "1.0~pre20221231", Greater),
        ("0.9.8zh", "0.9.8zg", Greater),
        ("0.9.8z", "0.9.8za", Less),
        ("3.0.7", "3.0.7", Equal),
    ];

    #[test]
    fn rpmvercmp_vectors() {
        assert!(VERCMP.len() >= 150, "{} vectors", VERCMP.len());
        for &(a, b, expected) in VERCMP {
            assert_eq!(rpmvercmp(a, b), expected, "{a:?} vs {b:?}");
            assert_eq!(rpmvercmp(b, a), expected.reverse(), "{b:?} vs {a:?}");
            assert_eq!(rpmvercmp(a, a), Equal, "{a:?} vs itself");
        }
    }

    #[test]
    fn vectors_hold_for_versions_and_releases() {
        for &(a, b, expected) in VERCMP.iter().filter(|(a, b, _)| {
            // Only texts that parse as a bare version or bare release.
            [a, b]
                .iter()
                .all(|text| !text.is_empty() && !text.contains([':', '-']))
        }) {
            assert_eq!(compare(a, b), Ok(expected), "versions {a:?} vs {b:?}");
            let (a_release, b_release) = (format!("1-{a}"), format!("1-{b}"));
            assert_eq!(
                compare(&a_release, &b_release),
                Ok(expected),
                "releases {a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn evr_order() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1:3.0.7-27.el9", "1:3.0.7-28.el9", Less),
            ("2.34-100.el9_4.2", "2.34-100.el9_4.4", Less),
            ("0:1.2", "1.2", Equal),
            ("0:1.2-3", "1.2-3", Equal),
            ("01:1.0", "1:1.0", Equal),
            ("1:1.0", "2.0", Greater),
            ("1:1.0", "2:0.1", Less),
            ("3.0.7-27.el9", "1:3.0.7-27.el9", Less),
            ("1.0-1", "1.0-01", Equal),
            ("1.0-2", "1.0-10", Less),
            ("2.0-1", "1.0-99", Greater),
            ("1.0-1.el9", "1.0-1.el9_1", Less),
            ("1.0~rc1-5", "1.0-1", Less),
            ("1.0^git1-1", "1.0-9", Greater),
            ("1.0-2-3", "1.0.2-3", Equal),
            ("1.0", "1.0-1", Less),
            ("1.0", "1.0", Equal),
            ("1.1", "1.0-99", Greater),
            ("1:1.0", "1:1.0-1", Less),
            ("2.0.1-1", "2.0.1a-1", Less),
            ("18446744073709551615:1", "18446744073709551614:9", Greater),
        ];
        for &(a, b, expected) in cases {
            assert_eq!(compare(a, b), Ok(expected), "{a} vs {b}");
            assert_eq!(compare(b, a), Ok(expected.reverse()), "{b} vs {a}");
        }
    }

    #[test]
    fn order_and_equality_agree() {
        let versions: Vec<RpmVersion> = [
            "1.0", "0:1.0", "1.0-1", "1.0-01", "1.0-2", "1:1.0", "1.00", "1.0~rc1", "1.0^git1",
        ]
        .iter()
        .map(|text| v(text))
        .collect();
        for a in &versions {
            for b in &versions {
                assert_eq!(a == b, a.cmp(b) == Equal, "{a} vs {b}");
                assert_eq!(a.partial_cmp(b), Some(a.cmp(b)), "{a} vs {b}");
                assert_eq!(b.cmp(a), a.cmp(b).reverse(), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn satisfies_at_least() {
        let cases: &[(&str, &str, bool)] = &[
            ("1:3.0.7-28.el9", "1:3.0.7-27.el9", true),
            ("1:3.0.7-27.el9", "1:3.0.7-28.el9", false),
            ("1:3.0.7-27.el9", "1:3.0.7-27.el9", true),
            ("1:3.0.7-27.el9", "1:3.0.7", true),
            ("1:3.0.7", "1:3.0.7-99.el9", true),
            ("1:3.0.7-27", "3.0.8-1", true),
            ("3.0.7-27", "1:3.0.1-1", false),
            ("3.0.7-27", "3.0.8", false),
            ("3.0.8-1", "3.0.7-99", true),
            ("1.0~rc1-1", "1.0", false),
            ("1.0^git1-1", "1.0", true),
            ("2.34-100.el9_4.4", "2.34-100.el9_4.2", true),
            ("2.34-100.el9_4.2", "2.34-100.el9_4.4", false),
            ("0:2.34-1", "2.34-1", true),
        ];
        for &(installed, required, expected) in cases {
            assert_eq!(
                v(installed).satisfies_at_least(&v(required)),
                expected,
                "{installed} >= {required}"
            );
        }
        // The order keeps a missing release below any release, while the requirement check lets
        // it match.
        assert!(v("1:3.0.7") < v("1:3.0.7-27.el9"));
        assert!(v("1:3.0.7").satisfies_at_least(&v("1:3.0.7-27.el9")));
    }

    #[test]
    fn parts() {
        let full = v("2:1.0-2-3.el9");
        assert_eq!(full.epoch(), 2);
        assert_eq!(full.version(), "1.0-2");
        assert_eq!(full.release(), Some("3.el9"));
        let bare = v("1.0");
        assert_eq!(bare.epoch(), 0);
        assert_eq!(bare.version(), "1.0");
        assert_eq!(bare.release(), None);
    }

    #[test]
    fn display() {
        let cases: &[(&str, &str)] = &[
            ("0:1.2", "1.2"),
            ("0:1.2-3", "1.2-3"),
            ("01:1.0", "1:1.0"),
            ("1:3.0.7-27.el9", "1:3.0.7-27.el9"),
            ("1.0", "1.0"),
            ("1.01-001", "1.01-001"),
            ("1.0~rc1^git1-1", "1.0~rc1^git1-1"),
        ];
        for (text, shown) in cases {
            assert_eq!(v(text).to_string(), *shown, "{text}");
            assert_eq!(v(shown).to_string(), *shown, "{shown}");
        }
    }

    #[test]
    fn parse_errors_name_the_text() {
        for bad in [
            "",
            "x:1.0",
            "1.0-",
            ":1.0",
            "1:",
            "1:-1",
            "-1",
            "+1:1.0",
            "1x:1.0",
            "18446744073709551616:1.0",
            "1.0\n-",
        ] {
            let err = bad.parse::<RpmVersion>().unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(!err.contains('\n'), "{err}");
            assert_eq!(compare(bad, "1.0"), Err(err.clone()));
            assert_eq!(compare("1.0", bad), Err(err));
        }
    }
}
