//! Alpine package versions, ordered the way apk-tools orders them.
//!
//! A port of apk-tools' `src/version.c` (the tokenizer that knows `~hash`). Only apk's own rule
//! decides: a patcher that judged "is the installed package fixed?" by any other rule would skip
//! updates apk considers newer, or install ones it considers older. Text apk rejects is an error
//! here too, never compared by some fallback.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// The parts of a version, in the only order they may appear. apk leans on this order twice: to
/// say which part may follow which, and to decide between versions that part ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
}

/// Suffix names from oldest to newest. The first [`PRE_RELEASE_SUFFIXES`] come before the bare
/// version (`1.0_rc1 < 1.0`), the rest after it (`1.0 < 1.0_p1`).
const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
const PRE_RELEASE_SUFFIXES: u64 = 4;

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    /// The token's text in the version, without the `.`, `_`, `~` or `-r` that introduces it.
    span: Range<usize>,
    /// The value of a number; a suffix's index in [`SUFFIXES`].
    number: u64,
}

impl Token {
    fn is_pre_release(&self) -> bool {
        self.kind == Kind::Suffix && self.number < PRE_RELEASE_SUFFIXES
    }
}

/// An Alpine package version: `digits{.digits}[letter]{_suffix[digits]}[~hash][-r<digits>]`,
/// e.g. `3.3.2-r1`, `1.1.1w-r1`, `9.9_p1-r0`, `0.2_git20240101-r0`.
///
/// Equality follows the order, which is apk's and not the text's: `01.2 == 1.2` and
/// `1.0_rc01 == 1.0_rc1`, yet `1.0 < 1.0-r0` (a revision, even `-r0`, is more than none) and
/// `1.0 < 1.00` (after a dot, a number led by `0` is compared as text, as a decimal fraction).
#[derive(Clone, Debug)]
pub struct ApkVersion {
    text: String,
    tokens: Vec<Token>,
}

impl ApkVersion {
    fn token_text(&self, token: &Token) -> &[u8] {
        &self.text.as_bytes()[token.span.clone()]
    }

    /// Two tokens of the same kind, at the same place.
    fn cmp_token(&self, mine: &Token, other: &Self, theirs: &Token) -> Ordering {
        let (my_text, their_text) = (self.token_text(mine), other.token_text(theirs));
        match mine.kind {
            // As in Gentoo, whose rules apk follows: a component led by 0 reads like the digits
            // of a decimal fraction (`1.05 < 1.1`), so it is compared digit by digit.
            Kind::Digit if my_text.starts_with(b"0") || their_text.starts_with(b"0") => {
                my_text.cmp(their_text)
            }
            Kind::Letter | Kind::CommitHash => my_text.cmp(their_text),
            _ => mine.number.cmp(&theirs.number),
        }
    }
}

/// Once the versions part ways, the one that goes on is newer if it goes on with a part that may
/// come earlier in a version: a component before a letter before a suffix before a hash before a
/// revision before the end (`1.2_p1 < 1.2.1`, `1.0-r9 < 1.0_p1`). A pre-release suffix instead
/// makes its version the older one.
fn cmp_diverged(mine: Option<&Token>, theirs: Option<&Token>) -> Ordering {
    if mine.is_some_and(Token::is_pre_release) {
        return Ordering::Less;
    }
    if theirs.is_some_and(Token::is_pre_release) {
        return Ordering::Greater;
    }
    let kind = |token: Option<&Token>| token.map_or(Kind::End, |t| t.kind);
    kind(theirs).cmp(&kind(mine))
}

/// The number in the ASCII digits from `start` on, and where they end. apk keeps only the low 64
/// bits of a longer number; so does this, so that such versions order as apk orders them.
fn read_number(bytes: &[u8], start: usize) -> (u64, usize) {
    let end = scan(bytes, start, u8::is_ascii_digit);
    let number = bytes[start..end].iter().fold(0u64, |n, &b| {
        n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
    });
    (number, end)
}

fn scan(bytes: &[u8], start: usize, accept: fn(&u8) -> bool) -> usize {
    bytes[start..]
        .iter()
        .position(|b| !accept(b))
        .map_or(bytes.len(), |n| start + n)
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let invalid = |why: String| format!("invalid apk version {text:?}: {why}");
    let bytes = text.as_bytes();
    let number = |kind: Kind, start: usize, missing: &str| {
        let (number, end) = read_number(bytes, start);
        if end == start {
            return Err(invalid(missing.to_string()));
        }
        Ok(Token {
            kind,
            span: start..end,
            number,
        })
    };

    let mut tokens = vec![number(Kind::InitialDigit, 0, "must start with digits")?];
    let mut pos = tokens[0].span.end;
    while let Some(&byte) = bytes.get(pos) {
        let previous = tokens[tokens.len() - 1].kind;
        let token = match byte {
            b'a'..=b'z' if previous <= Kind::Digit => Token {
                kind: Kind::Letter,
                span: pos..pos + 1,
                number: 0,
            },
            b'.' if previous <= Kind::Digit => {
                number(Kind::Digit, pos + 1, "expected digits after '.'")?
            }
            // Digits right after other digits were read with them, so only a suffix's number
            // gets here.
            b'0'..=b'9' if previous == Kind::Suffix => {
                let (number, end) = read_number(bytes, pos);
                Token {
                    kind: Kind::SuffixNo,
                    span: pos..end,
                    number,
                }
            }
            b'_' if previous <= Kind::SuffixNo => {
                let end = scan(bytes, pos + 1, u8::is_ascii_lowercase);
                let name = &text[pos + 1..end];
                let index = SUFFIXES.iter().position(|s| *s == name).ok_or_else(|| {
                    invalid(format!(
                        "unknown suffix \"_{name}\" (expected one of _{})",
                        SUFFIXES.join(", _")
                    ))
                })?;
                Token {
                    kind: Kind::Suffix,
                    span: pos + 1..end,
                    number: index as u64,
                }
            }
            b'~' if previous < Kind::CommitHash => {
                let end = scan(bytes, pos + 1, |b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if end == pos + 1 {
                    return Err(invalid(
                        "expected lowercase hex digits after '~'".to_string(),
                    ));
                }
                Token {
                    kind: Kind::CommitHash,
                    span: pos + 1..end,
                    number: 0,
                }
            }
            b'-' if previous < Kind::RevisionNo && bytes.get(pos + 1) == Some(&b'r') => {
                number(Kind::RevisionNo, pos + 2, "expected digits after \"-r\"")?
            }
            _ => {
                let found = text[pos..].chars().next().unwrap_or_default();
                return Err(invalid(format!("unexpected {found:?} at byte {pos}")));
            }
        };
        pos = token.span.end;
        tokens.push(token);
    }
    Ok(tokens)
}

impl FromStr for ApkVersion {
    type Err = String;

    /// Accepts exactly what apk's `apk_version_validate` accepts, surrounding whitespace
    /// included: none.
    fn from_str(text: &str) -> Result<Self, String> {
        Ok(ApkVersion {
            tokens: tokenize(text)?,
            text: text.to_string(),
        })
    }
}

impl fmt::Display for ApkVersion {
    /// The text as parsed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let (mut mine, mut theirs) = (self.tokens.iter(), other.tokens.iter());
        loop {
            match (mine.next(), theirs.next()) {
                (Some(a), Some(b)) if a.kind == b.kind => match self.cmp_token(a, other, b) {
                    Ordering::Equal => {}
                    order => return order,
                },
                (a, b) => return cmp_diverged(a, b),
            }
        }
    }
}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ApkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ApkVersion {}

/// Compares two version texts by [`ApkVersion`]'s order (`apk version -t a b`).
pub fn compare(a: &str, b: &str) -> Result<Ordering, String> {
    Ok(a.parse::<ApkVersion>()?.cmp(&b.parse()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    /// (a, a compared with b, b).
    const CASES: &[(&str, Ordering, &str)] = &[
        // Alpine packages, as they moved between releases.
        ("3.3.2-r1", Less, "3.3.3-r0"),                    // openssl
        ("3.3.2-r1", Less, "3.3.2-r10"),                   // openssl
        ("3.0.15-r0", Less, "3.3.2-r1"),                   // openssl
        ("1.1.1w-r1", Greater, "1.1.1v-r0"),               // openssl 1.1
        ("1.1.1t-r3", Less, "1.1.1u-r0"),                  // openssl 1.1
        ("1.1.1w-r1", Less, "3.0.0-r0"),                   // openssl 1.1 -> 3
        ("1.36.1-r29", Less, "1.36.1-r30"),                // busybox
        ("1.36.1-r29", Greater, "1.36.0-r9"),              // busybox
        ("1.37.0-r8", Greater, "1.36.1-r30"),              // busybox
        ("1.2.5-r0", Less, "1.2.5-r1"),                    // musl
        ("1.2.4_git20230717-r4", Less, "1.2.5-r0"),        // musl
        ("1.3.1-r1", Greater, "1.3.1-r0"),                 // zlib
        ("1.3.1-r1", Equal, "1.3.1-r1"),                   // zlib
        ("1.3-r2", Less, "1.3.1-r1"),                      // zlib
        ("8.11.1-r0", Less, "8.12.0-r0"),                  // curl
        ("8.11.1-r1", Less, "8.12.0-r0"),                  // curl
        ("8.9.1-r2", Less, "8.11.1-r0"),                   // curl
        ("9.8_p1-r0", Greater, "9.7_p1-r4"),               // openssh
        ("9.8_p1-r0", Less, "9.9_p1-r0"),                  // openssh
        ("9.9_p1-r2", Greater, "9.9_p1-r1"),               // openssh
        ("9.9_p1-r0", Less, "9.9_p2-r0"),                  // openssh
        ("2024a-r0", Less, "2024b-r0"),                    // tzdata
        ("2024b-r1", Less, "2025a-r0"),                    // tzdata
        ("6.5_p20241006-r3", Greater, "6.5_p20240601-r0"), // ncurses
        ("6.4_p20231125-r0", Less, "6.5_p20240601-r0"),    // ncurses
        ("20241121-r1", Greater, "20240705-r0"),           // ca-certificates
        ("2.6.4-r0", Less, "2.7.0-r0"),                    // expat
        ("2.13.4-r3", Less, "2.13.4-r4"),                  // libxml2
        ("2.14.6-r2", Less, "2.14.6-r3"),                  // apk-tools
        ("3.12.8-r1", Less, "3.12.10-r0"),                 // python3
        ("0.2_git20240101-r0", Less, "0.2_git20240315-r0"),
        ("0.2_git20240101-r0", Greater, "0.2-r5"),
        ("0.2_git20240101-r0", Less, "0.3-r0"),
        // Suffixes: pre-releases before the bare version, post-releases after it.
        ("1.0_rc1", Less, "1.0"),
        ("1.0", Less, "1.0_p1"),
        ("1.0_alpha", Less, "1.0_beta"),
        ("1.0_beta", Less, "1.0_pre"),
        ("1.0_pre", Less, "1.0_rc"),
        ("1.0_rc", Less, "1.0"),
        ("1.0", Less, "1.0_cvs"),
        ("1.0_cvs", Less, "1.0_svn"),
        ("1.0_svn", Less, "1.0_git"),
        ("1.0_git", Less, "1.0_hg"),
        ("1.0_hg", Less, "1.0_p"),
        ("1.0_alpha", Less, "1.0_p"),
        ("1.0_rc", Less, "1.0_cvs"),
        ("1.0_alpha9", Less, "1.0_beta1"),
        ("1.0_rc1", Less, "1.0_rc2"),
        ("1.0_rc9", Less, "1.0_rc10"),
        ("1.0_p1", Less, "1.0_p2"),
        ("1.0_p9", Less, "1.0_p10"),
        ("1.0_rc", Less, "1.0_rc1"),
        ("1.0_rc0", Greater, "1.0_rc"),
        ("1.0_rc01", Equal, "1.0_rc1"),
        ("1.0_p", Less, "1.0_p1"),
        ("1.0_p", Greater, "1.0"),
        ("1.0_rc1", Less, "1.0_rc1-r1"),
        ("1.0_rc1-r9", Less, "1.0"),
        ("1.0_rc1-r1", Less, "1.0-r0"),
        ("1.0-r9", Less, "1.0_p1"),
        ("1.0-r9", Less, "1.0_p0"),
        ("1.0_rc1", Less, "1.0.1_rc1"),
        // More than one suffix.
        ("0.1.0_alpha_pre2", Less, "0.1.0_alpha"),
        ("1.0_alpha_p1", Greater, "1.0_alpha"),
        ("1.0_alpha_p1", Greater, "1.0_alpha1"),
        ("1.0_rc1_p1", Greater, "1.0_rc1"),
        ("1.0_rc1_p1", Less, "1.0_rc2"),
        ("1.0_rc1_pre1", Less, "1.0_rc1"),
        ("0.1_git20240101_pre1", Less, "0.1_git20240101"),
        // A letter after the numbers.
        ("1.0a", Less, "1.0b"),
        ("1.2a", Greater, "1.2"),
        ("1.2z", Less, "1.3"),
        ("1.2a", Less, "1.2.1"),
        ("1.2a", Greater, "1.2_p1"),
        ("1.2a", Greater, "1.2_rc1"),
        ("1.2a", Greater, "1.2-r5"),
        ("1.2a-r0", Less, "1.2b-r0"),
        ("1.0a-r1", Greater, "1.0a"),
        ("1a", Greater, "1"),
        ("2.5.1-r8", Less, "2.5.1a-r1"),
        ("6b-r7", Greater, "1.12-r7"),
        ("0.9.8c-r1", Less, "0.9.8d"),
        ("2.12r-r4", Less, "2.12r-r5"),
        ("0.59s-r11", Less, "0.65"),
        // More components against fewer.
        ("1.2", Less, "1.2.1"),
        ("1.2", Less, "1.2.0"),
        ("1.2_p1", Less, "1.2.1"),
        ("1.2_rc1", Less, "1.2.0"),
        ("1.2.1_rc1", Greater, "1.2"),
        ("1.2-r5", Less, "1.2.0"),
        ("1.2-r5", Less, "1.2.0-r0"),
        ("1.2.3.4.5", Greater, "1.2.3.4"),
        ("22.7-r1", Less, "22.7.3-r1"),
        ("0.9.28-r2", Less, "0.9.28.1"),
        ("1.3_pre1-r1", Less, "1.3.2"),
        // Numbers compare by value.
        ("1.2.1", Less, "1.10"),
        ("1.9", Less, "1.10"),
        ("1.2.10", Greater, "1.2.9"),
        ("1.100", Greater, "1.99"),
        ("1.99.99", Less, "2"),
        ("10", Greater, "9.9.9"),
        ("7.0.17", Less, "7.0.174"),
        ("20050718-r1", Less, "20050718-r2"),
        ("1.0.0", Equal, "1.0.0"),
        (
            "1.0.0_pre20191002222144-r0",
            Less,
            "1.0.0_pre20210530193627-r0",
        ),
        // A component after a dot that starts with 0 compares as text.
        ("1.0", Less, "1.1"),
        ("1.01", Less, "1.1"),
        ("1.001", Less, "1.01"),
        ("1.01", Less, "1.02"),
        ("1.09", Less, "1.1"),
        ("1.09", Less, "1.10"),
        ("1.010", Greater, "1.01"),
        ("1.010", Less, "1.1"),
        ("1.05", Less, "1.5"),
        ("1.050", Greater, "1.05"),
        ("1.0", Less, "1.00"),
        ("1.0", Less, "1.01"),
        ("8.2.0", Less, "8.2.001"),
        ("8.2.0015", Less, "8.2.002"),
        ("1.02.07", Less, "1.02.10"),
        ("1.2.07.8", Less, "1.2.12.04"),
        ("2.10.1", Greater, "02.08.01b"),
        ("4.01", Less, "4.20"),
        ("0.98", Less, "1.00"),
        ("4.09-r1", Less, "4.5.14"),
        // The first component compares by value, leading zeros or not.
        ("01", Equal, "1"),
        ("01.2", Equal, "1.2"),
        ("00.1", Equal, "0.1"),
        ("006", Greater, "1.0.0"),
        ("021109-r3", Greater, "3.0.0-r2"),
        ("0.9.28.1", Less, "087-r1"),
        // Revisions compare by value; a revision, even -r0, is more than none.
        ("1.2-r9", Less, "1.2-r10"),
        ("1.0-r0", Greater, "1.0"),
        ("1.0-r1", Greater, "1.0-r0"),
        ("1.0-r00", Equal, "1.0-r0"),
        ("1.0.1-r0", Greater, "1.0-r99"),
        ("4.5_p1-r1", Greater, "4.5_p1"),
        ("1.6.8_p12-r1", Greater, "1.6.8_p9-r2"),
        // Commit hashes compare as text, and come between suffixes and the revision.
        ("1.0~1234", Less, "1.0~2345"),
        ("1.0~1234-r1", Less, "1.0~2345-r0"),
        ("1.0~1234-r1", Greater, "1.0~1234-r0"),
        ("1.0~abc", Equal, "1.0~abc"),
        ("1.0~a", Less, "1.0~ab"),
        ("1.0~9", Less, "1.0~a"),
        ("1.0~10", Less, "1.0~9"),
        ("1.0~abc", Greater, "1.0"),
        ("1.0~abc", Greater, "1.0-r5"),
        ("1.0~abc", Less, "1.0.1"),
        ("1.0~abc", Less, "1.0_p1"),
        ("1.0~abc", Greater, "1.0_rc1"),
        ("1.0_git20240101~abcd-r0", Greater, "1.0_git20240101-r3"),
    ];

    #[test]
    fn cases_compare_as_apk_does_both_ways() {
        assert!(CASES.len() >= 120, "only {} cases", CASES.len());
        for &(a, expected, b) in CASES {
            assert_eq!(compare(a, b), Ok(expected), "{a} vs {b}");
            assert_eq!(compare(b, a), Ok(expected.reverse()), "{b} vs {a}");
            assert_eq!(compare(a, a), Ok(Equal), "{a} vs itself");
        }
    }

    /// `Ord` requires a total order: sorted, every version in the cases must be no newer than
    /// any after it.
    #[test]
    fn order_is_transitive_over_all_case_versions() {
        let mut versions: Vec<ApkVersion> = CASES
            .iter()
            .flat_map(|&(a, _, b)| [a, b])
            .map(|text| text.parse().unwrap())
            .collect();
        versions.sort();
        for (i, earlier) in versions.iter().enumerate() {
            for later in &versions[i + 1..] {
                assert_ne!(earlier.cmp(later), Greater, "{earlier} vs {later}");
            }
        }
    }

    #[test]
    fn sorts_a_release_line_oldest_first() {
        let mut versions: Vec<ApkVersion> = [
            "1.0-r1",
            "1.0_p1",
            "1.0.1",
            "1.0",
            "1.0_rc2",
            "1.0_alpha",
            "1.0a",
            "1.0-r0",
            "1.0_beta3",
            "1.0~cafe",
            "1.0_rc10",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        versions.sort();
        let sorted: Vec<String> = versions.iter().map(ToString::to_string).collect();
        assert_eq!(
            sorted,
            [
                "1.0_alpha",
                "1.0_beta3",
                "1.0_rc2",
                "1.0_rc10",
                "1.0",
                "1.0-r0",
                "1.0-r1",
                "1.0~cafe",
                "1.0_p1",
                "1.0a",
                "1.0.1",
            ]
        );
    }

    #[test]
    fn equal_versions_keep_their_own_text() {
        let (a, b): (ApkVersion, ApkVersion) =
            ("01.2_rc01".parse().unwrap(), "1.2_rc1".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "01.2_rc01");
        assert_eq!(b.to_string(), "1.2_rc1");
    }

    /// apk's own overflow, kept on purpose: 2^64 reads as 0.
    #[test]
    fn numbers_past_64_bits_wrap_as_in_apk() {
        assert_eq!(compare("1.18446744073709551616", "1.1"), Ok(Less));
        assert_eq!(compare("1.18446744073709551617", "1.1"), Ok(Equal));
        assert_eq!(compare("1.0-r18446744073709551615", "1.0-r1"), Ok(Greater));
    }

    #[test]
    fn accepts_what_apk_accepts() {
        for text in [
            "1",
            "1.2",
            "0.1_pre2",
            "0.1_pre2~1234abcd",
            "0.1_p1_pre2",
            "0.1_alpha1_pre2",
            "0.1_git20240101_pre1",
            "1.0a_rc1~0f-r3",
            "3.3.2-r1",
        ] {
            assert!(
                text.parse::<ApkVersion>().is_ok(),
                "{text:?} should be valid"
            );
        }
    }

    #[test]
    fn rejects_what_apk_rejects_naming_the_text() {
        for text in [
            "",
            "a1",
            "1..2",
            "1.",
            ".1",
            "_pre1",
            "-r1",
            "1.0_foo",
            "1.0_foo1",
            "1.0-r",
            "1.0-rx",
            "1.0-",
            "1.0-1",
            "0.1bc",
            "0.1bc1",
            "0.1a1",
            "0.1a.1",
            "0.1_pre2~",
            "0.1_pre2~1234xbcd",
            "0.1_pre2~1234ABCD",
            "0.1_pre2~12~34",
            "0.1_pre2~1234abcd_pre1",
            "0.1_pre2-r1~1234abcd",
            "0.1-pre1.1",
            "0.1-r2_pre1",
            "0.1-r2-r3",
            "0.1-r2.1",
            "0.1-r2a",
            "0.1_",
            "0.1_-r0",
            "0.1__alpha",
            "0.1_1_alpha",
            "0.1_rc1a",
            "0.1_rc1.1",
            "1.0A",
            "1.0 ",
            " 1.0",
            "1.0\n",
            "1.0é",
        ] {
            let err = text.parse::<ApkVersion>().expect_err(text);
            assert!(
                err.contains(&format!("{text:?}")),
                "{err} does not name {text:?}"
            );
            assert!(!err.contains('\n'), "{err:?} is not one line");
            assert!(compare(text, "1.0").is_err() && compare("1.0", text).is_err());
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = |text: &str| text.parse::<ApkVersion>().unwrap_err();
        assert_eq!(
            err("1.0_foo"),
            "invalid apk version \"1.0_foo\": unknown suffix \"_foo\" \
             (expected one of _alpha, _beta, _pre, _rc, _cvs, _svn, _git, _hg, _p)"
        );
        assert_eq!(
            err("1.0-rx"),
            "invalid apk version \"1.0-rx\": expected digits after \"-r\""
        );
        assert_eq!(
            err("1..2"),
            "invalid apk version \"1..2\": expected digits after '.'"
        );
        assert_eq!(
            err("a1"),
            "invalid apk version \"a1\": must start with digits"
        );
        assert_eq!(
            err("0.1a1"),
            "invalid apk version \"0.1a1\": unexpected '1' at byte 4"
        );
    }
}
