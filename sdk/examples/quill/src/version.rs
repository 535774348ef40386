//! Quill versions: dotted whole numbers ("1.2.10"), compared numerically component by component.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use copa_plugin_sdk::choose::LibraryVersion;

/// A quill version. A missing component counts as 0, so "1.2" and "1.2.0" are the same version
/// (and order the same): the ordering must agree with equality for the SDK's rules.
#[derive(Clone, Debug)]
pub struct QuillVersion(Vec<u64>);

impl QuillVersion {
    /// Component `i`, 0 past the end.
    fn part(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

impl FromStr for QuillVersion {
    type Err = String;

    /// Only digits and single dots: "1.2.10". Not "v1.2", "1.2-rc1", "1..2" or "+1" (which
    /// `u64::from_str` would take).
    fn from_str(text: &str) -> Result<Self, String> {
        text.split('.')
            .map(|part| {
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "{text:?} is not a quill version (dotted whole numbers)"
                    ));
                }
                part.parse::<u64>()
                    .map_err(|_| format!("{text:?} is not a quill version (a part is too large)"))
            })
            .collect::<Result<Vec<u64>, String>>()
            .map(QuillVersion)
    }
}

impl fmt::Display for QuillVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u64::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

impl Ord for QuillVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.0.len().max(other.0.len());
        (0..len)
            .map(|i| self.part(i).cmp(&other.part(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for QuillVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for QuillVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for QuillVersion {}

/// The SDK's notion of a release line (major.minor), so that its `Bump` and `is_fixed_by`
/// judge quill versions as they judge every other library.
impl LibraryVersion for QuillVersion {
    fn release_line(&self) -> (u64, u64) {
        (self.part(0), self.part(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use copa_plugin_sdk::choose::Bump;

    fn v(text: &str) -> QuillVersion {
        text.parse().unwrap()
    }

    #[test]
    fn parses_dotted_whole_numbers_only() {
        assert_eq!(v("1.2.10").to_string(), "1.2.10");
        assert_eq!(v("7").to_string(), "7");
        assert_eq!(v("01.2").to_string(), "1.2");
        for bad in [
            "", "v1.2", "1.2-rc1", "1..2", "1.2.", ".1", "+1", "1.-2", "1.2 ", "1.x",
        ] {
            assert!(bad.parse::<QuillVersion>().is_err(), "{bad:?}");
        }
        assert!("99999999999999999999".parse::<QuillVersion>().is_err());
    }

    #[test]
    fn orders_numerically_part_by_part() {
        assert!(v("1.2.10") > v("1.2.9"));
        assert!(v("1.10.0") > v("1.9.99"));
        assert!(v("2") > v("1.99.99"));
        assert!(v("1.2.0.1") > v("1.2"));
        assert_eq!(v("1.2"), v("1.2.0"));
        assert_eq!(v("1.2").cmp(&v("1.2.0.0")), Ordering::Equal);
        let mut versions = [v("1.10"), v("1.2.3"), v("1.2"), v("0.9.1")];
        versions.sort();
        let sorted: Vec<String> = versions.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, ["0.9.1", "1.2", "1.2.3", "1.10"]);
    }

    #[test]
    fn release_lines_and_bumps() {
        assert_eq!(v("1.2.10").release_line(), (1, 2));
        assert_eq!(v("3").release_line(), (3, 0));
        assert_eq!(v("1.2.0").bump_to(&v("1.2.7")), Bump::Patch);
        assert_eq!(v("1.2.0").bump_to(&v("1.3")), Bump::Minor);
        assert_eq!(v("1.2.0").bump_to(&v("2.0.0")), Bump::Major);
    }
}
