//! The version-choice rule shared by every library patcher.
//!
//! Scanners report one fixed version per release line ("1.22.7, 1.23.1"), so "fixed" is judged
//! per line: moving from 1.22.3 to 1.23.0 does not fix a bug whose 1.23 fix is 1.23.1. Every
//! patcher uses this one rule so that the same report leads to the same update whatever the
//! ecosystem.

use std::cmp::Reverse;
use std::fmt;
use std::str::FromStr;

/// A version of a library, as an ecosystem orders it.
pub trait LibraryVersion: Ord + Clone + fmt::Display + FromStr {
    /// (major, minor): versions on the same line are patch releases of each other.
    fn release_line(&self) -> (u64, u64);

    /// How big a jump from `self` to `newer` is.
    fn bump_to(&self, newer: &Self) -> Bump {
        Bump::between(self.release_line(), newer.release_line())
    }
}

/// The size of an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

impl Bump {
    /// The bump between two release lines, for `bump_to` overrides that only add a rule of
    /// their own on top of the line comparison.
    pub fn between(from: (u64, u64), to: (u64, u64)) -> Bump {
        if from.0 != to.0 {
            Bump::Major
        } else if from.1 != to.1 {
            Bump::Minor
        } else {
            Bump::Patch
        }
    }
}

impl fmt::Display for Bump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        })
    }
}

/// The largest bump an update may make (`--library-patch-level`).
pub type PatchLevel = Bump;

/// One vulnerability of the installed version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vulnerability {
    pub id: String,
    /// Versions as the scanner wrote them, one fix per release line.
    pub fixed_versions: Vec<String>,
}

impl Vulnerability {
    /// The vulnerabilities of one package's findings, each once: a scanner lists one finding per
    /// place or per advisory, and the fixed versions of all of them count.
    pub fn from_findings(findings: &[&crate::Finding]) -> Vec<Vulnerability> {
        let mut vulnerabilities: Vec<Vulnerability> = Vec::new();
        for finding in findings {
            match vulnerabilities
                .iter_mut()
                .find(|v| v.id == finding.vulnerability_id)
            {
                Some(existing) => {
                    for fixed in &finding.fixed_versions {
                        if !existing.fixed_versions.contains(fixed) {
                            existing.fixed_versions.push(fixed.clone());
                        }
                    }
                }
                None => vulnerabilities.push(Vulnerability {
                    id: finding.vulnerability_id.clone(),
                    fixed_versions: finding.fixed_versions.clone(),
                }),
            }
        }
        vulnerabilities
    }
}

/// A version the package index offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexVersion<V> {
    pub version: V,
    /// `None` when the version can be installed; otherwise why not. It is shown after
    /// "fixed version 2.0.1 ", so phrase it as a predicate: "is yanked", "requires Python >=3.12".
    pub unusable: Option<String>,
}

/// The outcome of [`choose`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice<V> {
    /// The version to update to; `None` when no allowed update fixes anything.
    pub to: Option<V>,
    /// Ids of the vulnerabilities `to` fixes, in input order.
    pub fixes: Vec<String>,
    /// Every vulnerability left unfixed, grouped by reason.
    pub skipped: Vec<Skipped>,
}

impl<V: fmt::Display> Choice<V> {
    /// The plan's entries for this choice about `package` in `target_id`, installed at `from`:
    /// the update to the chosen version (when there is one) and a skip for each group of
    /// vulnerabilities left open, with its reason.
    pub fn into_plan(
        self,
        target_id: &str,
        package: &str,
        from: &str,
    ) -> (Option<crate::Update>, Vec<crate::Skip>) {
        let update = self.to.map(|to| crate::Update {
            target_id: target_id.to_string(),
            package: package.to_string(),
            from_version: from.to_string(),
            to_version: to.to_string(),
            at_least: false,
            fixes: self.fixes,
            notes: Vec::new(),
        });
        let skips = self
            .skipped
            .into_iter()
            .map(|skipped| crate::Skip {
                target_id: target_id.to_string(),
                package: package.to_string(),
                vulnerabilities: skipped.vulnerabilities,
                reason: skipped.reason,
            })
            .collect();
        (update, skips)
    }
}

/// Vulnerabilities left unfixed for one reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub vulnerabilities: Vec<String>,
    pub reason: String,
}

/// Chooses the version to move `installed` to.
///
/// Candidates are the fixed versions above `installed` (a fixed version the index lacks or
/// cannot install is replaced by the lowest usable later release on its line, or dropped). Among
/// those within `level`, the one fixing the most vulnerabilities wins; ties go to the smallest
/// bump, then the lowest version. With `always_newest` (packages such as certifi, whose only
/// sensible version is the latest), the sole candidate is the newest usable version, whatever
/// the bump.
pub fn choose<V: LibraryVersion>(
    installed: &V,
    vulns: &[Vulnerability],
    index: &[IndexVersion<V>],
    level: PatchLevel,
    always_newest: bool,
) -> Choice<V> {
    let fixed: Vec<Vec<V>> = vulns
        .iter()
        .map(|vuln| {
            vuln.fixed_versions
                .iter()
                .filter_map(|text| text.trim().parse().ok())
                .collect()
        })
        .collect();

    // Resolved even with `always_newest`: why a fix is unavailable explains a skip either way.
    let mut resolved = Vec::new();
    let mut unavailable: Vec<Option<String>> = Vec::with_capacity(vulns.len());
    for versions in &fixed {
        let mut first_unavailable = None;
        let mut any_available = false;
        for version in versions.iter().filter(|v| *v > installed) {
            match resolve(version, index) {
                Ok(usable) => {
                    resolved.push(usable);
                    any_available = true;
                }
                Err(reason) => {
                    first_unavailable.get_or_insert(reason);
                }
            }
        }
        unavailable.push(first_unavailable.filter(|_| !any_available));
    }

    let candidates: Vec<V> = if always_newest {
        index
            .iter()
            .filter(|entry| entry.unusable.is_none())
            .map(|entry| &entry.version)
            .max()
            .filter(|newest| *newest > installed)
            .cloned()
            .into_iter()
            .collect()
    } else {
        resolved.sort();
        resolved.dedup();
        resolved
    };
    let allowed = |candidate: &V| always_newest || installed.bump_to(candidate) <= level;
    let fixed_count = |candidate: &V| {
        fixed
            .iter()
            .filter(|versions| fixes(candidate, versions))
            .count()
    };

    let to = candidates
        .iter()
        .filter(|candidate| allowed(candidate))
        .map(|candidate| (fixed_count(candidate), candidate))
        .min_by_key(|&(count, candidate)| (Reverse(count), installed.bump_to(candidate), candidate))
        .filter(|&(count, _)| count > 0)
        .map(|(_, candidate)| candidate.clone());

    let mut fixed_ids = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    for ((vuln, versions), unavailable) in vulns.iter().zip(&fixed).zip(unavailable) {
        if to.as_ref().is_some_and(|to| fixes(to, versions)) {
            fixed_ids.push(vuln.id.clone());
            continue;
        }
        let beyond_level = candidates
            .iter()
            .filter(|&candidate| !allowed(candidate) && fixes(candidate, versions))
            .min_by_key(|candidate| (installed.bump_to(candidate), *candidate));
        let reason = if vuln.fixed_versions.is_empty() {
            "no fixed version published".to_string()
        } else if versions.is_empty() {
            format!(
                "no fixed version could be read from \"{}\"",
                vuln.fixed_versions.join(", ")
            )
        } else if let Some(candidate) = beyond_level {
            format!(
                "fix needs a {} bump to {candidate}; --library-patch-level is {level}",
                installed.bump_to(candidate)
            )
        } else if let Some(reason) = unavailable {
            reason
        } else {
            format!("no release fixes it within --library-patch-level {level}")
        };
        match skipped.iter_mut().find(|group| group.reason == reason) {
            Some(group) => group.vulnerabilities.push(vuln.id.clone()),
            None => skipped.push(Skipped {
                vulnerabilities: vec![vuln.id.clone()],
                reason,
            }),
        }
    }

    Choice {
        to,
        fixes: fixed_ids,
        skipped,
    }
}

/// Whether `version` (typically the installed one) already fixes `vuln` by the same rule that
/// `choose` applies to candidates.
pub fn is_fixed_by<V: LibraryVersion>(version: &V, vuln: &Vulnerability) -> bool {
    let fixed: Vec<V> = vuln
        .fixed_versions
        .iter()
        .filter_map(|text| text.trim().parse().ok())
        .collect();
    fixes(version, &fixed)
}

/// Whether `version` fixes a vulnerability with these fixed versions. Being past a fix on some
/// other line proves nothing (1.23.0 is newer than the 1.22.7 fix but may predate the 1.23.1
/// one), so only the fix on `version`'s own line counts, unless `version` is past them all.
fn fixes<V: LibraryVersion>(version: &V, fixed: &[V]) -> bool {
    let line = version.release_line();
    fixed
        .iter()
        .any(|fix| fix.release_line() == line && version >= fix)
        || (!fixed.is_empty() && fixed.iter().all(|fix| version >= fix))
}

/// The usable index version that stands in for `fixed`: itself, or else the lowest usable later
/// release on its line (which contains the fix too). The error says why `fixed` is unusable.
fn resolve<V: LibraryVersion>(fixed: &V, index: &[IndexVersion<V>]) -> Result<V, String> {
    let line = fixed.release_line();
    let usable = index
        .iter()
        .filter(|entry| entry.unusable.is_none())
        .map(|entry| &entry.version);
    if let Some(exact) = usable.clone().find(|version| *version == fixed) {
        return Ok(exact.clone());
    }
    if let Some(later) = usable
        .filter(|version| *version > fixed && version.release_line() == line)
        .min()
    {
        return Ok(later.clone());
    }
    Err(
        match index
            .iter()
            .filter(|entry| entry.version == *fixed)
            .find_map(|entry| entry.unusable.as_deref())
        {
            Some(why) => format!("fixed version {fixed} {why}"),
            None => format!("fixed version {fixed} is not on the index"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pep440::Pep440Version;

    /// A dotted-triple version ("1.22.7"; missing parts are 0), to test the rule without PEP 440.
    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Triple(u64, u64, u64);

    impl fmt::Display for Triple {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}.{}.{}", self.0, self.1, self.2)
        }
    }

    impl FromStr for Triple {
        type Err = String;
        fn from_str(text: &str) -> Result<Self, String> {
            let parts = text
                .split('.')
                .map(|part| part.parse::<u64>().map_err(|e| format!("{text}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            match parts[..] {
                [major] => Ok(Triple(major, 0, 0)),
                [major, minor] => Ok(Triple(major, minor, 0)),
                [major, minor, patch] => Ok(Triple(major, minor, patch)),
                _ => Err(format!("{text}: too many parts")),
            }
        }
    }

    impl LibraryVersion for Triple {
        fn release_line(&self) -> (u64, u64) {
            (self.0, self.1)
        }
    }

    fn v<V: LibraryVersion>(text: &str) -> V
    where
        V::Err: fmt::Debug,
    {
        text.parse().unwrap()
    }

    fn vuln(id: &str, fixed: &[&str]) -> Vulnerability {
        Vulnerability {
            id: id.to_string(),
            fixed_versions: fixed.iter().map(|f| f.to_string()).collect(),
        }
    }

    /// Index entries: "1.2.3" is usable, "1.2.3=is yanked" is unusable for the text after '='.
    fn index<V: LibraryVersion>(entries: &[&str]) -> Vec<IndexVersion<V>>
    where
        V::Err: fmt::Debug,
    {
        entries
            .iter()
            .map(|entry| match entry.split_once('=') {
                Some((version, why)) => IndexVersion {
                    version: v(version),
                    unusable: Some(why.to_string()),
                },
                None => IndexVersion {
                    version: v(entry),
                    unusable: None,
                },
            })
            .collect()
    }

    fn skip(ids: &[&str], reason: &str) -> Skipped {
        Skipped {
            vulnerabilities: ids.iter().map(|id| id.to_string()).collect(),
            reason: reason.to_string(),
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|id| id.to_string()).collect()
    }

    /// Runs the rule on triples with `always_newest` off.
    fn run(
        installed: &str,
        vulns: &[Vulnerability],
        entries: &[&str],
        level: PatchLevel,
    ) -> Choice<Triple> {
        choose(&v(installed), vulns, &index(entries), level, false)
    }

    const REPORT_INDEX: &[&str] = &["1.21.0", "1.22.3", "1.22.7", "1.23.0", "1.23.1", "2.0.0"];

    #[test]
    fn comma_list_patch_on_own_line() {
        let choice = run(
            "1.22.3",
            &[vuln("CVE-1", &["1.22.7", "1.23.1"])],
            REPORT_INDEX,
            Bump::Patch,
        );
        assert_eq!(choice.to, Some(v("1.22.7")));
        assert_eq!(choice.fixes, ids(&["CVE-1"]));
        assert!(choice.skipped.is_empty());
    }

    #[test]
    fn comma_list_needs_minor_at_patch_level() {
        let choice = run(
            "1.21.0",
            &[vuln("CVE-1", &["1.22.7", "1.23.1"])],
            REPORT_INDEX,
            Bump::Patch,
        );
        assert_eq!(choice.to, None);
        assert!(choice.fixes.is_empty());
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "fix needs a minor bump to 1.22.7; --library-patch-level is patch"
            )]
        );
    }

    #[test]
    fn comma_list_minor_level_takes_lowest_fix() {
        let choice = run(
            "1.21.0",
            &[vuln("CVE-1", &["1.22.7", "1.23.1"])],
            REPORT_INDEX,
            Bump::Minor,
        );
        assert_eq!(choice.to, Some(v("1.22.7")));
        assert_eq!(choice.fixes, ids(&["CVE-1"]));
    }

    #[test]
    fn above_a_fix_on_another_line_only_does_not_fix() {
        let vulns = [vuln("CVE-1", &["1.22.7", "1.23.1"])];
        assert!(!fixes::<Triple>(&v("1.23.0"), &[v("1.22.7"), v("1.23.1")]));
        // 1.23.0 is not even a candidate, and 1.23.1 is a minor bump away.
        let choice = run(
            "1.22.3",
            &vulns,
            &["1.22.3", "1.23.0", "1.23.1"],
            Bump::Patch,
        );
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "fix needs a minor bump to 1.23.1; --library-patch-level is patch"
            )]
        );
    }

    #[test]
    fn fixes_vectors() {
        let cases: &[(&str, &[&str], bool)] = &[
            ("1.22.7", &["1.22.7", "1.23.1"], true),
            ("1.22.9", &["1.22.7", "1.23.1"], true),
            ("1.22.6", &["1.22.7", "1.23.1"], false),
            ("1.23.0", &["1.22.7", "1.23.1"], false),
            ("1.23.1", &["1.22.7", "1.23.1"], true),
            ("1.24.0", &["1.22.7", "1.23.1"], true),
            ("2.0.0", &["1.22.7", "1.23.1"], true),
            ("1.21.9", &["1.22.7", "1.23.1"], false),
            ("1.23.0", &["1.22.7"], true),
            ("1.22.8", &["1.22.7", "2.0.1"], true),
            ("1.23.0", &["1.22.7", "2.0.1"], false),
            ("2.0.0", &["1.22.7", "2.0.1"], false),
            ("5.0.0", &[], false),
        ];
        for (version, fixed, expected) in cases {
            let fixed: Vec<Triple> = fixed.iter().map(|f| v(f)).collect();
            assert_eq!(
                fixes(&v::<Triple>(version), &fixed),
                *expected,
                "{version} fixes {fixed:?}"
            );
        }
    }

    #[test]
    fn above_all_fixes_counts_across_lines() {
        let vulns = [
            vuln("CVE-1", &["1.21.4", "1.22.1"]),
            vuln("CVE-2", &["1.23.5"]),
        ];
        let choice = run(
            "1.20.0",
            &vulns,
            &["1.21.4", "1.22.1", "1.23.5"],
            Bump::Minor,
        );
        assert_eq!(choice.to, Some(v("1.23.5")));
        assert_eq!(choice.fixes, ids(&["CVE-1", "CVE-2"]));
    }

    #[test]
    fn candidate_fixing_more_wins_over_smaller_bump() {
        let vulns = [
            vuln("CVE-1", &["1.2.3"]),
            vuln("CVE-2", &["1.3.0"]),
            vuln("CVE-3", &["1.3.0"]),
        ];
        let choice = run("1.2.0", &vulns, &["1.2.3", "1.3.0"], Bump::Minor);
        assert_eq!(choice.to, Some(v("1.3.0")));
        assert_eq!(choice.fixes, ids(&["CVE-1", "CVE-2", "CVE-3"]));
        assert!(choice.skipped.is_empty());
    }

    #[test]
    fn patch_level_keeps_what_it_can_and_explains_the_rest() {
        let vulns = [
            vuln("CVE-1", &["1.2.3"]),
            vuln("CVE-2", &["1.3.0"]),
            vuln("CVE-3", &["2.0.0"]),
            vuln("CVE-4", &["1.3.0"]),
        ];
        let choice = run("1.2.0", &vulns, &["1.2.3", "1.3.0", "2.0.0"], Bump::Patch);
        assert_eq!(choice.to, Some(v("1.2.3")));
        assert_eq!(choice.fixes, ids(&["CVE-1"]));
        assert_eq!(
            choice.skipped,
            vec![
                skip(
                    &["CVE-2", "CVE-4"],
                    "fix needs a minor bump to 1.3.0; --library-patch-level is patch"
                ),
                skip(
                    &["CVE-3"],
                    "fix needs a major bump to 2.0.0; --library-patch-level is patch"
                ),
            ]
        );
    }

    #[test]
    fn tie_prefers_smallest_bump() {
        // 1.2.5 and 1.3.0 each fix one vulnerability.
        let vulns = [
            vuln("CVE-1", &["1.2.5", "1.4.0"]),
            vuln("CVE-2", &["1.3.0"]),
        ];
        let choice = run("1.2.0", &vulns, &["1.2.5", "1.3.0", "1.4.0"], Bump::Minor);
        // 1.4.0 fixes both; without it the tie goes to the patch bump.
        assert_eq!(choice.to, Some(v("1.4.0")));
        let choice = run("1.2.0", &vulns, &["1.2.5", "1.3.0"], Bump::Minor);
        assert_eq!(choice.to, Some(v("1.2.5")));
        assert_eq!(choice.fixes, ids(&["CVE-1"]));
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-2"],
                "no release fixes it within --library-patch-level minor"
            )]
        );
    }

    #[test]
    fn tie_on_bump_prefers_lowest_version() {
        let vulns = [vuln("CVE-1", &["1.2.3"]), vuln("CVE-2", &["1.2.3"])];
        let choice = run("1.2.0", &vulns, &["1.2.3", "1.2.4", "1.2.9"], Bump::Patch);
        assert_eq!(choice.to, Some(v("1.2.3")));
        assert_eq!(choice.fixes, ids(&["CVE-1", "CVE-2"]));
    }

    #[test]
    fn tie_between_minor_bumps_prefers_lowest_version() {
        let vulns = [vuln("CVE-1", &["1.3.2", "1.4.1"])];
        let choice = run("1.2.0", &vulns, &["1.3.2", "1.4.1"], Bump::Minor);
        assert_eq!(choice.to, Some(v("1.3.2")));
    }

    #[test]
    fn major_level_allows_major_bump() {
        let vulns = [vuln("CVE-1", &["2.0.1"])];
        let choice = run("1.9.0", &vulns, &["2.0.0", "2.0.1"], Bump::Major);
        assert_eq!(choice.to, Some(v("2.0.1")));
        let choice = run("1.9.0", &vulns, &["2.0.0", "2.0.1"], Bump::Minor);
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "fix needs a major bump to 2.0.1; --library-patch-level is minor"
            )]
        );
    }

    #[test]
    fn beyond_level_reason_names_smallest_bump() {
        let vulns = [vuln("CVE-1", &["1.3.1", "2.0.1"])];
        let choice = run("1.2.0", &vulns, &["1.3.1", "2.0.1"], Bump::Patch);
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "fix needs a minor bump to 1.3.1; --library-patch-level is patch"
            )]
        );
    }

    #[test]
    fn yanked_fix_is_replaced_by_next_patch_on_its_line() {
        let vulns = [vuln("CVE-1", &["1.22.7", "1.23.1"])];
        let entries = ["1.22.7=is yanked", "1.22.8", "1.22.9", "1.23.1"];
        let choice = run("1.22.3", &vulns, &entries, Bump::Patch);
        assert_eq!(choice.to, Some(v("1.22.8")));
        assert_eq!(choice.fixes, ids(&["CVE-1"]));
    }

    #[test]
    fn missing_fix_is_replaced_by_next_patch_on_its_line() {
        let vulns = [vuln("CVE-1", &["1.22.7"])];
        let choice = run("1.22.3", &vulns, &["1.22.3", "1.22.10"], Bump::Patch);
        assert_eq!(choice.to, Some(v("1.22.10")));
    }

    #[test]
    fn replacement_never_crosses_lines() {
        let vulns = [vuln("CVE-1", &["1.22.7"])];
        let choice = run("1.22.3", &vulns, &["1.22.3", "1.23.0"], Bump::Major);
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped,
            vec![skip(&["CVE-1"], "fixed version 1.22.7 is not on the index")]
        );
    }

    #[test]
    fn yanked_fix_without_replacement() {
        let vulns = [vuln("CVE-1", &["1.22.7"])];
        let entries = ["1.22.7=is yanked", "1.22.8=requires Python >=3.12"];
        let choice = run("1.22.3", &vulns, &entries, Bump::Patch);
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped,
            vec![skip(&["CVE-1"], "fixed version 1.22.7 is yanked")]
        );
    }

    #[test]
    fn unusable_reason_is_quoted_verbatim() {
        let vulns = [vuln("CVE-1", &["1.22.7"])];
        let choice = run(
            "1.22.3",
            &vulns,
            &["1.22.7=requires Python >=3.12"],
            Bump::Patch,
        );
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "fixed version 1.22.7 requires Python >=3.12"
            )]
        );
    }

    #[test]
    fn unavailable_reason_names_the_first_fix() {
        let vulns = [vuln("CVE-1", &["1.22.7", "1.23.1"])];
        let choice = run("1.22.3", &vulns, &["1.23.1=is yanked"], Bump::Major);
        assert_eq!(
            choice.skipped,
            vec![skip(&["CVE-1"], "fixed version 1.22.7 is not on the index")]
        );
    }

    #[test]
    fn beyond_level_outranks_unavailable() {
        // The 1.22 fix is gone but 1.23.1 would fix it with a minor bump.
        let vulns = [vuln("CVE-1", &["1.22.7", "1.23.1"])];
        let choice = run("1.22.3", &vulns, &["1.23.1"], Bump::Patch);
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "fix needs a minor bump to 1.23.1; --library-patch-level is patch"
            )]
        );
    }

    #[test]
    fn unavailable_fix_outside_level_reports_unavailability() {
        let vulns = [vuln("CVE-1", &["2.0.1"])];
        let choice = run("1.9.0", &vulns, &["2.0.1=is yanked"], Bump::Patch);
        assert_eq!(
            choice.skipped,
            vec![skip(&["CVE-1"], "fixed version 2.0.1 is yanked")]
        );
    }

    #[test]
    fn no_fixed_version_published() {
        let vulns = [
            vuln("CVE-1", &[]),
            vuln("CVE-2", &["1.2.3"]),
            vuln("CVE-3", &[]),
        ];
        let choice = run("1.2.0", &vulns, &["1.2.3"], Bump::Patch);
        assert_eq!(choice.to, Some(v("1.2.3")));
        assert_eq!(choice.fixes, ids(&["CVE-2"]));
        assert_eq!(
            choice.skipped,
            vec![skip(&["CVE-1", "CVE-3"], "no fixed version published")]
        );
    }

    #[test]
    fn only_unfixable_vulnerabilities_means_no_update() {
        let choice = run(
            "1.2.0",
            &[vuln("CVE-1", &[])],
            &["1.2.3", "9.0.0"],
            Bump::Major,
        );
        assert_eq!(choice.to, None);
        assert!(choice.fixes.is_empty());
    }

    #[test]
    fn unparseable_fixed_versions() {
        let vulns = [
            vuln("CVE-1", &["1.x", "latest"]),
            vuln("CVE-2", &["oops", "1.2.3"]),
        ];
        let choice = run("1.2.0", &vulns, &["1.2.3"], Bump::Patch);
        assert_eq!(choice.to, Some(v("1.2.3")));
        assert_eq!(choice.fixes, ids(&["CVE-2"]));
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "no fixed version could be read from \"1.x, latest\""
            )]
        );
    }

    #[test]
    fn installed_already_at_or_above_candidates() {
        let vulns = [vuln("CVE-1", &["1.2.3"])];
        let choice = run("1.2.3", &vulns, &["1.2.3", "1.2.4"], Bump::Patch);
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "no release fixes it within --library-patch-level patch"
            )]
        );
        let choice = run("1.2.5", &vulns, &["1.2.3", "1.2.6"], Bump::Patch);
        assert_eq!(choice.to, None);
    }

    #[test]
    fn no_vulnerabilities_no_update() {
        let choice = run("1.2.0", &[], &["1.2.3"], Bump::Major);
        assert_eq!(
            choice,
            Choice {
                to: None,
                fixes: vec![],
                skipped: vec![]
            }
        );
    }

    #[test]
    fn always_newest_ignores_level_and_takes_newest_usable() {
        let vulns = [vuln("CVE-1", &["2022.12.7"])];
        let entries = ["2022.12.7", "2023.7.22", "2024.2.2", "2024.8.30=is yanked"];
        let choice = choose(
            &v::<Triple>("2022.9.24"),
            &vulns,
            &index(&entries),
            Bump::Patch,
            true,
        );
        assert_eq!(choice.to, Some(v("2024.2.2")));
        assert_eq!(choice.fixes, ids(&["CVE-1"]));
        assert!(choice.skipped.is_empty());
    }

    #[test]
    fn always_newest_not_above_installed() {
        let vulns = [vuln("CVE-1", &["2024.7.4"])];
        let choice = choose(
            &v::<Triple>("2024.2.2"),
            &vulns,
            &index(&["2023.7.22", "2024.2.2"]),
            Bump::Major,
            true,
        );
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "fixed version 2024.7.4 is not on the index"
            )]
        );
    }

    #[test]
    fn always_newest_that_fixes_nothing_is_no_update() {
        let vulns = [vuln("CVE-1", &["2025.1.1"])];
        let choice = choose(
            &v::<Triple>("2024.2.2"),
            &vulns,
            &index(&["2024.8.30", "2025.1.1=is yanked"]),
            Bump::Major,
            true,
        );
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped,
            vec![skip(&["CVE-1"], "fixed version 2025.1.1 is yanked")]
        );
    }

    #[test]
    fn fixes_keep_input_order() {
        let vulns = [
            vuln("GHSA-b", &["1.2.4"]),
            vuln("CVE-a", &["1.2.3"]),
            vuln("CVE-c", &["1.3.0"]),
            vuln("GHSA-d", &["1.2.2"]),
        ];
        let choice = run(
            "1.2.0",
            &vulns,
            &["1.2.2", "1.2.3", "1.2.4", "1.3.0"],
            Bump::Patch,
        );
        assert_eq!(choice.to, Some(v("1.2.4")));
        assert_eq!(choice.fixes, ids(&["GHSA-b", "CVE-a", "GHSA-d"]));
    }

    #[test]
    fn duplicate_candidates_are_harmless() {
        let vulns = [
            vuln("CVE-1", &["1.2.3"]),
            vuln("CVE-2", &["1.2.3", "1.3.0"]),
        ];
        let choice = run("1.2.0", &vulns, &["1.2.3", "1.3.0"], Bump::Patch);
        assert_eq!(choice.to, Some(v("1.2.3")));
        assert_eq!(choice.fixes, ids(&["CVE-1", "CVE-2"]));
    }

    #[test]
    fn bump_display_and_order() {
        assert_eq!(Bump::Patch.to_string(), "patch");
        assert_eq!(Bump::Minor.to_string(), "minor");
        assert_eq!(Bump::Major.to_string(), "major");
        assert!(Bump::Patch < Bump::Minor && Bump::Minor < Bump::Major);
        assert_eq!(v::<Triple>("1.2.0").bump_to(&v("1.2.9")), Bump::Patch);
        assert_eq!(v::<Triple>("1.2.0").bump_to(&v("1.3.0")), Bump::Minor);
        assert_eq!(v::<Triple>("1.2.0").bump_to(&v("2.2.0")), Bump::Major);
    }

    fn run_pep440(
        installed: &str,
        vulns: &[Vulnerability],
        entries: &[&str],
        level: PatchLevel,
    ) -> Choice<Pep440Version> {
        choose(&v(installed), vulns, &index(entries), level, false)
    }

    #[test]
    fn pep440_comma_list() {
        let vulns = [vuln("CVE-1", &["1.22.7", "1.23.1"])];
        let entries = ["1.21.0", "1.22.3", "1.22.7", "1.23.0", "1.23.1"];
        let choice = run_pep440("1.22.3", &vulns, &entries, Bump::Patch);
        assert_eq!(choice.to, Some(v("1.22.7")));
        let choice = run_pep440("1.21.0", &vulns, &entries, Bump::Patch);
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "fix needs a minor bump to 1.22.7; --library-patch-level is patch"
            )]
        );
        let choice = run_pep440("1.21.0", &vulns, &entries, Bump::Minor);
        assert_eq!(choice.to, Some(v("1.22.7")));
    }

    #[test]
    fn pep440_release_candidate_is_not_the_fix() {
        let vulns = [vuln("CVE-1", &["2.0.0"])];
        let choice = run_pep440("1.9.0", &vulns, &["1.9.0", "2.0.0rc1"], Bump::Major);
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped,
            vec![skip(&["CVE-1"], "fixed version 2.0.0 is not on the index")]
        );
    }

    #[test]
    fn pep440_post_release_replaces_yanked_fix() {
        let vulns = [vuln("CVE-1", &["2.0.1"])];
        let entries = ["2.0.0", "2.0.1=is yanked", "2.0.1.post1"];
        let choice = run_pep440("2.0.0", &vulns, &entries, Bump::Patch);
        assert_eq!(choice.to, Some(v("2.0.1.post1")));
        assert_eq!(choice.fixes, ids(&["CVE-1"]));
    }

    #[test]
    fn pep440_equal_spellings_match_the_index() {
        let vulns = [vuln("CVE-1", &["2.1"])];
        let choice = run_pep440("2.0", &vulns, &["2.1.0"], Bump::Minor);
        assert_eq!(
            choice.to.map(|to| to.to_string()),
            Some("2.1.0".to_string())
        );
    }

    #[test]
    fn pep440_epoch_change_is_a_major_bump() {
        let vulns = [vuln("CVE-1", &["1!1.2.3"])];
        let choice = run_pep440("1.2.0", &vulns, &["1.2.0", "1!1.2.3"], Bump::Minor);
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped,
            vec![skip(
                &["CVE-1"],
                "fix needs a major bump to 1!1.2.3; --library-patch-level is minor"
            )]
        );
        let choice = run_pep440("1.2.0", &vulns, &["1.2.0", "1!1.2.3"], Bump::Major);
        assert_eq!(choice.to, Some(v("1!1.2.3")));
    }

    #[test]
    fn a_choice_becomes_an_update_and_skips() {
        let installed: Triple = v("1.2.3");
        let vulns = [vuln("CVE-PATCH", &["1.2.5"]), vuln("CVE-MAJOR", &["2.0.0"])];
        let choice = choose(
            &installed,
            &vulns,
            &index(&["1.2.5", "2.0.0"]),
            Bump::Patch,
            false,
        );
        let (update, skips) = choice.into_plan("/env", "pkg", "1.2.3");
        let update = update.unwrap();
        assert_eq!(
            (
                update.target_id.as_str(),
                update.package.as_str(),
                update.from_version.as_str(),
                update.to_version.as_str(),
                update.fixes.clone()
            ),
            ("/env", "pkg", "1.2.3", "1.2.5", ids(&["CVE-PATCH"]))
        );
        assert_eq!(skips.len(), 1);
        assert_eq!(
            (
                skips[0].target_id.as_str(),
                skips[0].package.as_str(),
                skips[0].vulnerabilities.clone(),
                skips[0].reason.as_str()
            ),
            (
                "/env",
                "pkg",
                ids(&["CVE-MAJOR"]),
                "fix needs a major bump to 2.0.0; --library-patch-level is patch"
            )
        );
        // Nothing chosen: skips only.
        let choice = choose(
            &installed,
            &vulns[1..],
            &index(&["2.0.0"]),
            Bump::Patch,
            false,
        );
        let (update, skips) = choice.into_plan("/env", "pkg", "1.2.3");
        assert!(update.is_none());
        assert_eq!(skips[0].vulnerabilities, ids(&["CVE-MAJOR"]));
    }
}
