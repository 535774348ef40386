//! Debian package versions (`[epoch:]upstream[-revision]`) ordered exactly as dpkg orders them
//! (deb-version(7)): never by plain string comparison.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

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
    pub fn revision(&self) -> &str {
        &self.revision
    }
}

impl FromStr for DpkgVersion {
    type Err = String;

    /// The checks of dpkg's `parseversion`, with the "does not start with a digit" warning
    /// made an error: such a version is never what a patch should install.
    fn from_str(text: &str) -> Result<Self, String> {
        let error = |why: &str| format!("invalid Debian version {text:?}: {why}");
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(error("it is empty"));
        }
        let (epoch, rest) = match trimmed.split_once(':') {
            Some((epoch, rest)) => {
                if epoch.is_empty() {
                    return Err(error("the epoch is empty"));
                }
                if !epoch.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(error("the epoch is not a number"));
                }
                // dpkg keeps epochs in an int.
                let value: u32 = epoch
                    .parse()
                    .ok()
                    .filter(|e| *e <= i32::MAX as u32)
                    .ok_or_else(|| error("the epoch is too big"))?;
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
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

/// Parses both and orders them as dpkg does.
pub fn compare(a: &str, b: &str) -> Result<Ordering, String> {
    Ok(a.parse::<DpkgVersion>()?.cmp(&b.parse::<DpkgVersion>()?))
}

/// Weight of a character in the non-digit parts: `~` before everything, even the end of the
/// string; the end and digits next; then letters; then everything else.
fn order(c: Option<&u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(*c),
        Some(b'~') => -1,
        Some(c) => i32::from(*c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit and digit runs; digit runs compare as numbers of
/// any length (leading zeros dropped, then length, then the first differing digit).
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

    /// Each checked against `dpkg --compare-versions` when written.
    const VECTORS: &[(&str, &str, Ordering)] = &[
        ("1.0", "1.0", Equal),
        ("1.0", "1.0-0", Equal),
        ("0:1.0", "1.0", Equal),
        ("0:0", "0", Equal),
        ("1:1.0-1", "1:1.0-1", Equal),
        ("1.01", "1.1", Equal),
        ("1.001", "1.1", Equal),
        ("1:0.1", "9.9", Greater),
        ("1:1.0", "1.0", Greater),
        ("1:2.36-9", "2.37-1", Greater),
        ("2:1.0", "1:9.9", Greater),
        ("1.0~rc1", "1.0", Less),
        ("1.0~~", "1.0~", Less),
        ("1.0~", "1.0", Less),
        ("1.0", "1.0+", Less),
        ("1.0~", "1.0~~", Greater),
        ("1~~a", "1~~", Greater),
        ("1~", "1", Less),
        ("1.0", "1.0.1", Less),
        ("1.0.0", "1.0", Greater),
        ("1.0", "1", Greater),
        ("1.0.", "1.0", Greater),
        ("1.0a", "1.0.1", Less),
        ("1.0a", "1.0", Greater),
        ("1.a", "1.1", Greater),
        ("1.0A", "1.0a", Less),
        ("1.0+a", "1.0+B", Greater),
        ("1.10", "1.9", Greater),
        ("0.9", "0.10", Less),
        ("10", "9", Greater),
        ("20240101", "20231231", Greater),
        ("12345678901234567890123", "12345678901234567890124", Less),
        ("99999999999999999999999", "100000000000000000000000", Less),
        ("1.2.3", "1.2.3~git", Greater),
        ("1.0.0~alpha", "1.0.0~beta", Less),
        ("1.0.0~rc1", "1.0.0~rc10", Less),
        ("1.0.0~rc2", "1.0.0~rc10", Less),
        ("1.0+b1", "1.0+b2", Less),
        ("1.0+dfsg-1", "1.0-1", Greater),
        ("1.0~dfsg-1", "1.0-1", Less),
        ("1.2+really1.1-1", "1.2-1", Greater),
        ("1.0-beta-1", "1.0-1", Greater),
        ("1.0-1", "1.0-2", Less),
        ("1.0-10", "1.0-9", Greater),
        ("1.0-1.1", "1.0-1", Greater),
        ("1.0-1", "1.0", Greater),
        ("1.0-0.1", "1.0", Greater),
        ("1.0-1~bpo12+1", "1.0-1", Less),
        ("1.0-1+deb12u1", "1.0-1+deb12u1~", Greater),
        ("1.2.3-1", "1.2.3-1+b1", Less),
        ("1.0-0ubuntu1", "1.0-0ubuntu2", Less),
        ("1.0-0ubuntu1", "1.0-1", Less),
        // Debian security updates: the +debNuM counter is a number, not text.
        ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
        ("2.36-9+deb12u9", "2.36-9+deb12u10", Less),
        ("3.0.11-1~deb12u2", "3.0.11-1", Less),
        ("3.0.15-1~deb12u1", "3.0.17-1~deb12u2", Less),
        ("5.36.0-7+deb12u1", "5.36.0-7+deb12u2", Less),
        ("2024a-0+deb12u1", "2025b-0+deb12u1", Less),
        ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12", Less),
        ("252.30-1~deb12u2", "252.33-1~deb12u1", Less),
        ("3.11.2-6+deb12u5", "3.11.2-6+deb12u6", Less),
        ("1:2.38.1-5+deb12u3", "2.39-1", Greater),
    ];

    #[test]
    fn orders_like_dpkg_both_ways() {
        for (a, b, expected) in VECTORS {
            assert_eq!(compare(a, b).unwrap(), *expected, "{a} vs {b}");
            assert_eq!(compare(b, a).unwrap(), expected.reverse(), "{b} vs {a}");
            assert_eq!(compare(a, a).unwrap(), Equal, "{a} vs itself");
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
        let v: DpkgVersion = "1:2.36-9+deb12u4".parse().unwrap();
        assert_eq!(
            (v.epoch(), v.upstream(), v.revision()),
            (1, "2.36", "9+deb12u4")
        );
        let v: DpkgVersion = "1.0-beta-1".parse().unwrap();
        assert_eq!((v.upstream(), v.revision()), ("1.0-beta", "1"));
        assert_eq!(
            "0:1.0-1".parse::<DpkgVersion>().unwrap().to_string(),
            "1.0-1"
        );
        assert_eq!("3:1.0".parse::<DpkgVersion>().unwrap().to_string(), "3:1.0");
    }

    #[test]
    fn refuses_what_dpkg_refuses() {
        for bad in [
            "",
            "   ",
            "a1.0",
            "1:",
            ":1.0",
            "1.0-",
            "x:1.0",
            "9999999999:1.0",
            "1.0 1",
            "1.0!",
            "1.0-1!",
            "1.0-a:b",
        ] {
            let error = bad.parse::<DpkgVersion>().unwrap_err();
            assert!(
                error.starts_with("invalid Debian version"),
                "{bad:?}: {error}"
            );
            assert!(!error.contains('\n'));
        }
    }
}
