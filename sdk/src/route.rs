//! The steps every library patcher's plan takes around [`choose`](crate::choose::choose): route
//! each finding to the places in the image that hold its package (or skip it, saying why), skip
//! a whole package when something stops it, and turn the choice into the plan's updates and
//! skips ([`Choice::into_plan`](crate::choose::Choice::into_plan)).

use std::collections::BTreeMap;

use crate::choose::{Bump, Vulnerability};
use crate::{Finding, Plan, Skip, Update};

impl From<crate::PatchLevel> for Bump {
    /// `--library-patch-level` as the choice rule's largest bump.
    fn from(level: crate::PatchLevel) -> Self {
        match level {
            crate::PatchLevel::Patch => Bump::Patch,
            crate::PatchLevel::Minor => Bump::Minor,
            crate::PatchLevel::Major => Bump::Major,
        }
    }
}

/// Groups `findings` by the places they concern, in key order. `owners` names the places a
/// finding is about, by the plugin's own rule (a target and a package name; a target and the
/// directory of one installed copy); a finding it names none for is skipped with `unheld` as the
/// reason, under its `PkgPath` (else the report's target), never guessed onto another place.
pub fn route<'a, K: Ord>(
    findings: &'a [Finding],
    plan: &mut Plan,
    unheld: &str,
    mut owners: impl FnMut(&Finding) -> Vec<K>,
) -> BTreeMap<K, Vec<&'a Finding>> {
    let mut groups: BTreeMap<K, Vec<&Finding>> = BTreeMap::new();
    for finding in findings {
        let places = owners(finding);
        if places.is_empty() {
            plan.skips.push(Skip {
                target_id: finding
                    .pkg_path
                    .clone()
                    .unwrap_or_else(|| finding.report_target.clone()),
                package: finding.package_name.clone(),
                vulnerabilities: vec![finding.vulnerability_id.clone()],
                reason: unheld.to_string(),
            });
        }
        for place in places {
            groups.entry(place).or_default().push(finding);
        }
    }
    groups
}

/// The skip of every one of `vulnerabilities` of `package` in `target_id`: for what stops the
/// package as a whole (an unpatchable target, an unreadable version, an index that fails).
pub fn skip_all(
    target_id: &str,
    package: &str,
    vulnerabilities: &[Vulnerability],
    reason: impl Into<String>,
) -> Skip {
    Skip {
        target_id: target_id.to_string(),
        package: package.to_string(),
        vulnerabilities: vulnerabilities.iter().map(|v| v.id.clone()).collect(),
        reason: reason.into(),
    }
}

/// An update that turns out impossible after the choice (the new version cannot be installed
/// there), as the skip of what it would have fixed.
pub fn skip_instead(update: Update, reason: impl Into<String>) -> Skip {
    Skip {
        target_id: update.target_id,
        package: update.package,
        vulnerabilities: update.fixes,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, name: &str, path: Option<&str>) -> Finding {
        Finding {
            vulnerability_id: id.into(),
            package_name: name.into(),
            installed_version: "1.0.0".into(),
            fixed_versions: vec!["1.0.1".into()],
            pkg_path: path.map(String::from),
            report_target: "report-target".into(),
            report_type: "test".into(),
            purl: None,
            severity: "HIGH".into(),
            status: "fixed".into(),
        }
    }

    fn empty_plan() -> Plan {
        Plan {
            updates: Vec::new(),
            skips: Vec::new(),
        }
    }

    #[test]
    fn routes_findings_to_their_places_and_skips_the_unheld() {
        let findings = [
            finding("CVE-1", "a", Some("/t1/a")),
            finding("CVE-2", "b", None),
            finding("CVE-3", "a", Some("/t2/a")),
            finding("CVE-4", "c", Some("/nowhere/c")),
            finding("CVE-5", "d", None),
        ];
        let mut plan = empty_plan();
        // "a" is held by the target its path names; "b" (no path) by both targets.
        let groups = route(&findings, &mut plan, "nothing holds it", |f| {
            match (f.package_name.as_str(), f.pkg_path.as_deref()) {
                ("a", Some(path)) => vec![(usize::from(path.starts_with("/t2")), "a")],
                ("b", None) => vec![(1, "b"), (0, "b")],
                _ => vec![],
            }
        });
        let ids = |key: (usize, &str)| -> Vec<&str> {
            groups[&key]
                .iter()
                .map(|f| f.vulnerability_id.as_str())
                .collect()
        };
        assert_eq!(
            groups.keys().copied().collect::<Vec<_>>(),
            [(0, "a"), (0, "b"), (1, "a"), (1, "b")]
        );
        assert_eq!(ids((0, "a")), ["CVE-1"]);
        assert_eq!(ids((1, "b")), ["CVE-2"]);
        let skips: Vec<(&str, &str, &[String], &str)> = plan
            .skips
            .iter()
            .map(|s| {
                (
                    s.target_id.as_str(),
                    s.package.as_str(),
                    &s.vulnerabilities[..],
                    s.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            skips,
            [
                (
                    "/nowhere/c",
                    "c",
                    &["CVE-4".to_string()][..],
                    "nothing holds it"
                ),
                (
                    "report-target",
                    "d",
                    &["CVE-5".to_string()][..],
                    "nothing holds it"
                ),
            ]
        );
        assert!(plan.updates.is_empty());
    }

    #[test]
    fn skips_all_or_instead() {
        let vulnerabilities = Vulnerability::from_findings(&[
            &finding("CVE-1", "a", None),
            &finding("CVE-2", "a", None),
            &finding("CVE-1", "a", Some("/x")),
        ]);
        let skip = skip_all("/t", "a", &vulnerabilities, "the index failed");
        assert_eq!(
            (
                skip.target_id.as_str(),
                skip.package.as_str(),
                skip.vulnerabilities.clone(),
                skip.reason.as_str()
            ),
            (
                "/t",
                "a",
                vec!["CVE-1".to_string(), "CVE-2".to_string()],
                "the index failed"
            )
        );
        let update = Update {
            target_id: "/t".into(),
            package: "a".into(),
            from_version: "1.0.0".into(),
            to_version: "1.0.1".into(),
            at_least: false,
            fixes: vec!["CVE-2".into()],
            notes: Vec::new(),
        };
        let skip = skip_instead(update, "1.0.1 needs a newer runtime");
        assert_eq!(
            (skip.vulnerabilities, skip.reason),
            (
                vec!["CVE-2".to_string()],
                "1.0.1 needs a newer runtime".to_string()
            )
        );
    }

    #[test]
    fn patch_levels_are_bumps() {
        assert_eq!(Bump::from(crate::PatchLevel::Patch), Bump::Patch);
        assert_eq!(Bump::from(crate::PatchLevel::Minor), Bump::Minor);
        assert_eq!(Bump::from(crate::PatchLevel::Major), Bump::Major);
    }
}
