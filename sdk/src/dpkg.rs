//! Debian package versions (`[epoch:]upstream[-revision]`) ordered exactly as dpkg orders them
//! (deb-version(7), dpkg's `verrevcmp`): never by plain string comparison, which gets
//! `1.0~rc1` against `1.0` and `deb12u9` against `deb12u10` wrong.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// dpkg keeps epochs in a C `int` and refuses anything larger.
const EPOCH_MAX: u32 = i32::MAX as u32;

/// A Debian version: `[epoch:]upstream_version[-debian_revision]`.
///
/// Equality is dpkg's: `0:1.0`, `1.0`, `1.0-0` and `1.00` are all the same version, so the
/// derived, field-by-field equality would be wrong.
#[derive(Clone, Debug)]
pub struct DpkgVersion {
    epoch: u32,
    upstream: String,
    revision: String,
}

impl DpkgVersion {
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
    pub fn upstream(&self) -> &str {
        &self.upstream
    }
    /// Empty when the version has no `-`; dpkg orders that the same as `0`.
    pub fn revision(&self) -> &str {
        &self.revision
    }
}

impl FromStr for DpkgVersion {
    type Err = String;

    /// The checks of dpkg's `parseversion`, with its two warnings (an upstream version that
    /// does not start with a digit, a character outside the allowed set) made errors: such a
    /// version is never what a patch should install.
    fn from_str(text: &str) -> Result<Self, String> {
        let error = |why: &str| format!("invalid Debian version {text:?}: {why}");
        // dpkg trims blanks (space and tab) only; any other whitespace is an invalid character.
        let trimmed = text.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            return Err(error("it is empty"));
        }
        // The first colon ends the epoch; later ones belong to the upstream version, as in dpkg.
        let (epoch, rest) = match trimmed.split_once(':') {
            Some((epoch, rest)) => {
                if epoch.is_empty() {
                    return Err(error("the epoch is empty"));
                }
                // Digits only: dpkg's strtol would also take a sign, which no real epoch has.
                if !epoch.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(error("the epoch is not a number"));
                }
                let value = epoch
                    .parse::<u32>()
                    .ok()
                    .filter(|e| *e <= EPOCH_MAX)
                    .ok_or_else(|| error("the epoch is too big"))?;
                if rest.is_empty() {
                    return Err(error("nothing follows the epoch"));
                }
                (value, rest)
            }
            None => (0, trimmed),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err(error("the revision is empty")),
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(error("the upstream version is empty"));
        }
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(error("the upstream version does not start with a digit"));
        }
        if let Some(c) = upstream
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && !".-+~:".contains(*c))
        {
            return Err(error(&format!(
                "invalid character {c:?} in the upstream version"
            )));
        }
        if let Some(c) = revision
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && !".+~".contains(*c))
        {
            return Err(error(&format!("invalid character {c:?} in the revision")));
        }
        Ok(DpkgVersion {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }
}

impl fmt::Display for DpkgVersion {
    /// dpkg's unambiguous form: a zero epoch is left out unless the upstream version holds a
    /// colon, which would otherwise be read back as the epoch separator.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 || self.upstream.contains(':') {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for DpkgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream.as_bytes(), other.upstream.as_bytes()))
            .then_with(|| verrevcmp(self.revision.as_bytes(), other.revision.as_bytes()))
    }
}

impl PartialOrd for DpkgVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DpkgVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DpkgVersion {}

/// Parses both and orders them as dpkg does; an unparsable version is an error, never a
/// guess.
pub fn compare(a: &str, b: &str) -> Result<Ordering, String> {
    Ok(a.parse::<DpkgVersion>()?.cmp(&b.parse::<DpkgVersion>()?))
}

/// Weight of a character in the non-digit parts: `~` before everything, even the end of the
/// string (so pre-releases sort first); the end and digits next; then letters; then everything
/// else (so `1.0a` < `1.0+` < `1.0.`).
fn order(c: Option<&u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(*c),
        Some(b'~') => -1,
        Some(c) => i32::from(*c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit and digit runs. Digit runs compare as numbers of
/// any length without ever being converted (leading zeros dropped, then the longer run wins,
/// then the first differing digit), so 30-digit snapshot stamps cannot overflow.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while a.get(i).is_some_and(|c| !c.is_ascii_digit())
            || b.get(j).is_some_and(|c| !c.is_ascii_digit())
        {
            let (x, y) = (order(a.get(i)), order(b.get(j)));
            if x != y {
                return x.cmp(&y);
            }
            // Equal weights here are never 0 (only the end and digits weigh 0, and at least one
            // side is a non-digit), so neither index can pass the end of its string.
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_difference = Ordering::Equal;
        while a.get(i).is_some_and(u8::is_ascii_digit) && b.get(j).is_some_and(u8::is_ascii_digit) {
            if first_difference == Ordering::Equal {
                first_difference = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if a.get(i).is_some_and(u8::is_ascii_digit) {
            return Ordering::Greater;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            return Ordering::Less;
        }
        if first_difference != Ordering::Equal {
            return first_difference;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    /// Worked out from the rules above, then checked against `dpkg --compare-versions`.
    const VECTORS: &[(&str, &str, Ordering)] = &[
        // A missing epoch is 0, a missing revision orders as "0", and leading zeros vanish.
        ("1.0", "1.0", Equal),
        ("1.0", "1.0-0", Equal),
        ("0:1.0", "1.0", Equal),
        ("0:1.0-0", "1.0", Equal),
        ("00:1.0", "1.0", Equal),
        ("01:1.0", "1:1.0", Equal),
        ("0:0", "0", Equal),
        ("000", "0", Equal),
        ("007", "7", Equal),
        ("1:1.0-1", "1:1.0-1", Equal),
        ("1.01", "1.1", Equal),
        ("1.001", "1.1", Equal),
        ("01.0", "1.0", Equal),
        ("1.0", "1.00", Equal),
        ("1.0-00", "1.0", Equal),
        ("1.0-1", "0:1.0-01", Equal),
        ("1.0a0", "1.0a", Equal),
        ("1.0~", "1.0~0", Equal),
        ("1.0-1.0", "1.0-1.", Equal),
        ("1.0-0.0", "1.0-0", Greater),
        // The epoch wins over everything after it, and compares as a number.
        ("1:0.1", "9.9", Greater),
        ("1:1.0", "1.0", Greater),
        ("1:1.0~rc1", "1.0", Greater),
        ("1:2.36-9", "2.37-1", Greater),
        ("2:1.0", "1:9.9", Greater),
        ("10:1.0", "9:1.0", Greater),
        ("1:1.0", "2:0.1", Less),
        ("0:9.9", "1:0", Less),
        ("1:1.0-1", "1:1.0-2", Less),
        ("1:1.0-1", "1.0-99", Greater),
        ("2147483647:0", "2147483646:99", Greater),
        // '~' sorts before everything, even the end of the string.
        ("1.0~rc1", "1.0", Less),
        ("1.0~~", "1.0~", Less),
        ("1.0~", "1.0", Less),
        ("1.0", "1.0+", Less),
        ("1.0~~", "1.0", Less),
        ("1.0~~", "1.0+", Less),
        ("1.0~", "1.0+", Less),
        ("1.0~", "1.0a", Less),
        ("1~~a", "1~~", Greater),
        ("1~~a", "1~a", Less),
        ("1~", "1", Less),
        ("1~", "0", Greater),
        ("1~a", "1~", Greater),
        ("1~a", "1~b", Less),
        ("1.0~1", "1.0~a", Less),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0~rc1", "1.0~beta", Greater),
        ("1.0~alpha", "1.0~beta", Less),
        ("1.0.0~rc1", "1.0.0~rc10", Less),
        ("1.0.0~rc2", "1.0.0~rc10", Less),
        ("1.0~rc1", "1.0.0", Less),
        ("1.2.3", "1.2.3~git", Greater),
        ("1.0~rc1+b1", "1.0~rc1", Greater),
        ("1.0~rc1+b1", "1.0", Less),
        // Then the end and digits, then letters, then every other character.
        ("1.0", "1.0.1", Less),
        ("1.0", "1.0.0", Less),
        ("1.0.0", "1.0.0.0", Less),
        ("1.0", "1", Greater),
        ("1.0.", "1.0", Greater),
        ("1..0", "1.0", Greater),
        ("0.0", "0", Greater),
        ("1.0a", "1.0.1", Less),
        ("1.0a", "1.0", Greater),
        ("1.0a", "1.0b", Less),
        ("1.0ab", "1.0a", Greater),
        ("1.0a1", "1.0a", Greater),
        ("1.a", "1.1", Greater),
        ("1a", "1.", Less),
        ("1.0A", "1.0a", Less),
        ("1.0Z", "1.0a", Less),
        ("1.0z", "1.0+", Less),
        ("1.0+", "1.0a", Greater),
        ("1.0+", "1.0.", Less),
        ("1+", "1.", Less),
        ("1.0+a", "1.0+B", Greater),
        ("1.0-a", "1.0-1", Greater),
        ("1.0-a", "1.0-+", Less),
        ("1.0-.", "1.0-+", Greater),
        // Digit runs compare as numbers.
        ("1.10", "1.9", Greater),
        ("0.9", "0.10", Less),
        ("10", "9", Greater),
        ("100", "99", Greater),
        ("2", "10", Less),
        ("1.2.10", "1.2.9", Greater),
        ("1.002", "1.1", Greater),
        ("1.010", "1.9", Greater),
        ("1.09", "1.10", Less),
        ("20240101", "20231231", Greater),
        ("1.0-10", "1.0-9", Greater),
        ("1.0-1", "1.0-2", Less),
        // Digit runs longer than any integer type.
        ("12345678901234567890123", "12345678901234567890124", Less),
        ("99999999999999999999999", "100000000000000000000000", Less),
        ("1.18446744073709551616", "1.18446744073709551615", Greater),
        (
            "340282366920938463463374607431768211456",
            "340282366920938463463374607431768211455",
            Greater,
        ),
        ("0000000000000000000000001", "1", Equal),
        ("1.000000000000000000000000000000", "1.0", Equal),
        ("1.99999999999999999999", "1.100000000000000000000", Less),
        ("1.12345678901234567890a", "1.12345678901234567890b", Less),
        ("1.12345678901234567891", "1.12345678901234567890~", Greater),
        (
            "20250101000000000000000001",
            "20250101000000000000000001",
            Equal,
        ),
        (
            "1-123456789012345678901234567890",
            "1-123456789012345678901234567891",
            Less,
        ),
        // The revision is whatever follows the last '-'; the upstream version may hold more.
        ("1.0-beta-1", "1.0-1", Greater),
        ("1.0-beta-1", "1.0-beta-2", Less),
        ("1.0-beta-1", "1.0-rc-1", Less),
        ("1.0-beta-1", "1.0.1-1", Less),
        ("1.0-1-1", "1.0-2", Greater),
        ("1:1.0-2-3", "1:1.0-2", Greater),
        ("1:2:3", "1:2", Greater),
        ("1:2:3", "1:2.3", Greater),
        ("0:1:2", "1:2", Less),
        ("1.0-1.0-1", "1.0-1.0", Greater),
        // Revisions, with '.', '+' and '~'.
        ("1.0+dfsg-1", "1.0-1", Greater),
        ("1.0~dfsg-1", "1.0-1", Less),
        ("1.2+really1.1-1", "1.2-1", Greater),
        ("1.0.1-1", "1.0-9", Greater),
        ("2.0-1", "10.0-1", Less),
        ("1.0-1", "1.0", Greater),
        ("1.0-0.1", "1.0", Greater),
        ("1.0-~1", "1.0", Less),
        ("1.0-1~", "1.0-1", Less),
        ("1.0-1~~", "1.0-1~", Less),
        ("1.0-1.1", "1.0-1", Greater),
        ("1.0-1.0", "1.0-1", Greater),
        ("1.0-1+", "1.0-1", Greater),
        ("1.0-1.1", "1.0-1+b1", Greater),
        ("1.0-1+b2", "1.0-1.1", Less),
        ("1.0-1+b1", "1.0-1+b10", Less),
        ("1.2.3-1", "1.2.3-1+b1", Less),
        ("1.0-A", "1.0-a", Less),
        ("1.0-1~rc", "1.0-1~rc.1", Less),
        ("1.0-1~exp1", "1.0-1", Less),
        ("1.0-1~exp1", "1.0-1~bpo1", Greater),
        ("1.0-1~bpo12+1", "1.0-1", Less),
        ("1.0-2~bpo11+1", "1.0-1", Greater),
        ("1.0-1+deb12u1", "1.0-1+deb12u1~", Greater),
        ("1.0-1+deb11u1", "1.0-1+deb12u1", Less),
        ("1.0-1+deb12u1", "1.0-1+deb12u1+b1", Less),
        ("1.0-1+deb12u1", "1.0-2", Less),
        ("1.0-0ubuntu1", "1.0-0ubuntu2", Less),
        ("1.0-0ubuntu1", "1.0-1", Less),
        ("1.0-1ubuntu1", "1.0-1", Greater),
        ("1.0-1ubuntu1", "1.0-1+deb12u1", Less),
        // Real Debian and Ubuntu security updates: the +debNuM counter is a number, not text.
        ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
        ("2.36-9+deb12u9", "2.36-9+deb12u10", Less),
        ("2.31-13+deb11u11", "2.36-9+deb12u9", Less),
        ("3.0.11-1~deb12u2", "3.0.11-1", Less),
        ("3.0.11-1~deb12u2", "3.0.15-1~deb12u1", Less),
        ("3.0.15-1~deb12u1", "3.0.17-1~deb12u2", Less),
        ("1.1.1n-0+deb11u5", "3.0.11-1~deb12u2", Less),
        ("1.1.1w-0+deb11u1", "1.1.1n-0+deb11u5", Greater),
        ("5.36.0-7+deb12u1", "5.36.0-7+deb12u2", Less),
        ("2024a-0+deb12u1", "2025b-0+deb12u1", Less),
        ("2024a-0+deb12u1", "2024b-0+deb12u1", Less),
        ("2025b-0+deb12u1", "2025b-0+deb12u2", Less),
        ("2024a-0+deb12u1", "2024a-4", Less),
        ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12", Less),
        ("252.30-1~deb12u2", "252.33-1~deb12u1", Less),
        ("252.31-1~deb12u1", "252.30-1~deb12u2", Greater),
        ("3.11.2-6+deb12u5", "3.11.2-6+deb12u6", Less),
        ("1:2.38.1-5+deb12u3", "2.39-1", Greater),
        ("1:9.18.28-1~deb12u2", "1:9.18.33-1~deb12u2", Less),
        ("1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+b1", Less),
        ("6.4-2", "6.4+20240113-1", Less),
        ("2.9.14+dfsg-1.3~deb12u1", "2.9.14+dfsg-1.3~deb12u2", Less),
        ("2.9.14+dfsg-1.3~deb12u1", "2.9.14+dfsg-1.3", Less),
        ("1.20.1-2+deb12u2", "1.20.1-2+deb12u3", Less),
        ("2.6.1-2+deb12u1", "2.6.1-2", Greater),
        ("2.74.6-2+deb12u5", "2.74.6-2+deb12u6", Less),
        ("1:2.39.5-0+deb12u1", "1:2.39.2-1.1", Greater),
        ("6.1.115-1", "6.1.119-1", Less),
        ("115.11.0esr-1~deb12u1", "115.9.1esr-1~deb12u1", Greater),
        ("128.5.0esr-1~deb12u1", "115.18.0esr-1~deb12u1", Greater),
        (
            "0.0~git20230105.0b87b89-1",
            "0.0~git20230301.1f2c5e3-1",
            Less,
        ),
        ("1.24.2-1ubuntu1", "1.24.2-1", Greater),
        ("2.35-0ubuntu3.8", "2.35-0ubuntu3.10", Less),
        ("3.0.2-0ubuntu1.15", "3.0.2-0ubuntu1.18", Less),
    ];

    #[test]
    fn orders_like_dpkg_both_ways() {
        for (a, b, expected) in VECTORS {
            assert_eq!(compare(a, b).unwrap(), *expected, "{a} vs {b}");
            assert_eq!(compare(b, a).unwrap(), expected.reverse(), "{b} vs {a}");
            assert_eq!(compare(a, a).unwrap(), Equal, "{a} vs itself");
            let (x, y): (DpkgVersion, DpkgVersion) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(x == y, *expected == Equal, "{a} == {b}");
            assert_eq!(x.partial_cmp(&y), Some(*expected), "{a} vs {b}");
        }
    }

    #[test]
    fn display_round_trips_every_vector() {
        for text in VECTORS.iter().flat_map(|(a, b, _)| [a, b]) {
            let v: DpkgVersion = text.parse().unwrap();
            let again: DpkgVersion = v.to_string().parse().unwrap();
            assert_eq!(
                (again.epoch(), again.upstream(), again.revision()),
                (v.epoch(), v.upstream(), v.revision()),
                "{text} -> {v}"
            );
        }
    }

    /// Strictly ascending by `dpkg --compare-versions`: every one of its 435 pairs is checked.
    const LADDER: &[&str] = &[
        "0.9",
        "0.10",
        "1~~",
        "1~~a",
        "1~",
        "1",
        "1.0~rc1",
        "1.0~rc1+b1",
        "1.0",
        "1.0-0ubuntu1",
        "1.0-1~bpo12+1",
        "1.0-1",
        "1.0-1+b1",
        "1.0-1.1",
        "1.0-2",
        "1.0-10",
        "1.0a",
        "1.0+dfsg",
        "1.0.1",
        "1.0.1a",
        "1.1~beta",
        "1.1",
        "1.10",
        "2.36-9+deb12u4",
        "2.36-9+deb12u10",
        "2.36-10",
        "20231231",
        "1:0.1",
        "1:1.0",
        "2:0",
    ];

    #[test]
    fn every_pair_of_an_ascending_ladder() {
        for (i, a) in LADDER.iter().enumerate() {
            for b in &LADDER[i + 1..] {
                assert_eq!(compare(a, b).unwrap(), Less, "{a} < {b}");
                assert_eq!(compare(b, a).unwrap(), Greater, "{b} > {a}");
            }
        }
    }

    #[test]
    fn splits_epoch_upstream_and_revision() {
        let parts = |text: &str| {
            let v: DpkgVersion = text.parse().unwrap();
            (
                v.epoch(),
                v.upstream().to_string(),
                v.revision().to_string(),
            )
        };
        let expected = |epoch, upstream: &str, revision: &str| {
            (epoch, upstream.to_string(), revision.to_string())
        };
        assert_eq!(parts("1:2.36-9+deb12u4"), expected(1, "2.36", "9+deb12u4"));
        assert_eq!(parts("1.0-beta-1"), expected(0, "1.0-beta", "1"));
        assert_eq!(parts("1.0"), expected(0, "1.0", ""));
        assert_eq!(parts("1:2:3-4"), expected(1, "2:3", "4"));
        assert_eq!(parts("2147483647:1"), expected(2_147_483_647, "1", ""));
        assert_eq!(parts(" \t1.0-1 \t"), expected(0, "1.0", "1"));
    }

    #[test]
    fn displays_the_canonical_form() {
        for (text, canonical) in [
            ("1.0", "1.0"),
            ("0:1.0-1", "1.0-1"),
            ("1.0-0", "1.0-0"),
            ("3:1.0", "3:1.0"),
            ("007:1.0", "7:1.0"),
            ("0:1:2", "0:1:2"),
            (" 1.0-1\t", "1.0-1"),
        ] {
            let v: DpkgVersion = text.parse().unwrap();
            assert_eq!(v.to_string(), canonical, "{text:?}");
        }
    }

    #[test]
    fn refuses_what_dpkg_refuses() {
        for bad in [
            "",
            "   ",
            "\t",
            "a1.0",
            "~1.0",
            "+1.0",
            "1:",
            ":1.0",
            ":",
            "1.0-",
            "1:1.0-",
            "-1",
            "1:-1",
            "x:1.0",
            "1x:1.0",
            "1.0:2",
            "-1:1.0",
            "2147483648:1.0",
            "4294967296:1.0",
            "99999999999999999999:1.0",
            "1:a1.0",
            "1.0 1",
            "1.0\n",
            "1.0!",
            "1.0_1",
            "1.0/1",
            "1.0é",
            "1.0-1!",
            "1.0-1_1",
            "1.0-1 1",
            "1:1.0-a:b",
        ] {
            let error = bad.parse::<DpkgVersion>().unwrap_err();
            assert!(
                error.starts_with(&format!("invalid Debian version {bad:?}: ")),
                "{bad:?}: {error}"
            );
            assert!(!error.contains('\n'), "{bad:?}: {error}");
            assert_eq!(compare(bad, "1.0"), Err(error.clone()), "{bad:?}");
            assert_eq!(compare("1.0", bad), Err(error), "{bad:?}");
        }
    }
}
