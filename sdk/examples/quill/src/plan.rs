//! From findings to updates: which version each vulnerable quill package moves to.
//!
//! The SDK's `choose` takes only the fixed versions (or the next release on their line) as
//! candidates. Quill's rule is plainer: every version in the index that fixes something is a
//! candidate. The SDK's pieces that fit are reused: its release lines and bumps
//! (`LibraryVersion`, `Bump`), its "fixed" test (`is_fixed_by`), its grouping of findings
//! (`route`, `Vulnerability::from_findings`) and its conversion of a choice into the plan's
//! update and skips (`Choice::into_plan`).

use std::cmp::Reverse;

use copa_plugin_sdk::choose::{Bump, Choice, LibraryVersion, Skipped, Vulnerability, is_fixed_by};
use copa_plugin_sdk::route::{route, skip_all};
use copa_plugin_sdk::{Finding, Plan, Target, log};

use crate::version::QuillVersion;

/// Plans the updates for `findings`. `lookup` gives the versions the index has for a package
/// name (`None`: the index does not know it); its error fails the whole plan.
pub fn plan(
    targets: &[Target],
    findings: &[Finding],
    level: Bump,
    mut lookup: impl FnMut(&str) -> Result<Option<Vec<QuillVersion>>, String>,
) -> Result<Plan, String> {
    let mut plan = Plan {
        updates: Vec::new(),
        skips: Vec::new(),
    };
    let unheld = match targets.first() {
        Some(target) => format!("not installed in {}", target.id),
        None => format!("the image has no {}", crate::PACKAGES),
    };
    // Keyed by (target, package name): a finding belongs to the package of exactly its name.
    let groups = route(findings, &mut plan, &unheld, |finding| {
        targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.packages.iter().any(|p| p.name == finding.package_name))
            .map(|(i, _)| (i, finding.package_name.clone()))
            .collect()
    });
    for ((target_index, name), findings) in groups {
        let target = &targets[target_index];
        let Some(installed) = target.packages.iter().find(|p| p.name == name) else {
            continue;
        };
        let vulnerabilities = Vulnerability::from_findings(&findings);
        let Ok(installed_version) = installed.version.parse::<QuillVersion>() else {
            plan.skips.push(skip_all(
                &target.id,
                &name,
                &vulnerabilities,
                format!(
                    "installed version {:?} is not a quill version (dotted whole numbers)",
                    installed.version
                ),
            ));
            continue;
        };
        // A finding the installed version already fixes needs nothing (a stale report).
        let (already, open): (Vec<Vulnerability>, Vec<Vulnerability>) = vulnerabilities
            .into_iter()
            .partition(|v| is_fixed_by(&installed_version, v));
        for vulnerability in already {
            log::info(&format!(
                "{name} {} already has the fix for {}",
                installed.version, vulnerability.id
            ));
        }
        if open.is_empty() {
            continue;
        }
        let Some(available) = lookup(&name)? else {
            plan.skips
                .push(skip_all(&target.id, &name, &open, "not in the quill index"));
            continue;
        };
        let choice = choose(&installed_version, &open, &available, level);
        let (update, skips) = choice.into_plan(&target.id, &name, &installed.version);
        plan.updates.extend(update);
        plan.skips.extend(skips);
    }
    Ok(plan)
}

/// Chooses the version to move `installed` to.
///
/// A version fixes a vulnerability when it is at or above the fixed version on its own
/// major.minor line, or at or above all of them (the SDK's `is_fixed_by`). Candidates are the
/// versions of `available` above `installed`, within `level`, that fix at least one
/// vulnerability; the one fixing the most wins, then the smallest bump, then the lowest version.
pub fn choose(
    installed: &QuillVersion,
    vulnerabilities: &[Vulnerability],
    available: &[QuillVersion],
    level: Bump,
) -> Choice<QuillVersion> {
    let newer: Vec<&QuillVersion> = available.iter().filter(|v| *v > installed).collect();
    let fixed_count = |candidate: &QuillVersion| {
        vulnerabilities
            .iter()
            .filter(|v| is_fixed_by(candidate, v))
            .count()
    };
    let to = newer
        .iter()
        .filter(|candidate| installed.bump_to(candidate) <= level)
        .map(|candidate| (fixed_count(candidate), *candidate))
        .filter(|&(count, _)| count > 0)
        .min_by_key(|&(count, candidate)| (Reverse(count), installed.bump_to(candidate), candidate))
        .map(|(_, candidate)| candidate.clone());

    let mut fixes = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    for vulnerability in vulnerabilities {
        if to.as_ref().is_some_and(|to| is_fixed_by(to, vulnerability)) {
            fixes.push(vulnerability.id.clone());
            continue;
        }
        let reason = skip_reason(installed, vulnerability, &newer, to.as_ref(), level);
        match skipped.iter_mut().find(|group| group.reason == reason) {
            Some(group) => group.vulnerabilities.push(vulnerability.id.clone()),
            None => skipped.push(Skipped {
                vulnerabilities: vec![vulnerability.id.clone()],
                reason,
            }),
        }
    }
    Choice { to, fixes, skipped }
}

/// Why `vulnerability` stays open once `to` is chosen from the `newer` versions.
fn skip_reason(
    installed: &QuillVersion,
    vulnerability: &Vulnerability,
    newer: &[&QuillVersion],
    to: Option<&QuillVersion>,
    level: Bump,
) -> String {
    let fixed_versions = vulnerability.fixed_versions.join(", ");
    if vulnerability.fixed_versions.is_empty() {
        return "no fixed version published".into();
    }
    if !vulnerability
        .fixed_versions
        .iter()
        .any(|f| f.trim().parse::<QuillVersion>().is_ok())
    {
        return format!("no fixed version could be read from \"{fixed_versions}\"");
    }
    // The smallest update that would fix it: beyond the level, or passed over for `to`.
    let smallest = newer
        .iter()
        .copied()
        .filter(|v| is_fixed_by(*v, vulnerability))
        .min_by_key(|v| (installed.bump_to(v), *v));
    match (smallest, to) {
        (None, _) => format!("no version in the quill index fixes it (fixed in {fixed_versions})"),
        (Some(smallest), Some(to)) if installed.bump_to(smallest) <= level => format!(
            "the update to {to} (chosen for the package's other findings) does not fix it; \
             {smallest} would"
        ),
        (Some(smallest), _) => format!(
            "fix needs a {} bump to {smallest}; --library-patch-level is {level}",
            installed.bump_to(smallest)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use copa_plugin_sdk::InstalledPackage;

    fn v(text: &str) -> QuillVersion {
        text.parse().unwrap()
    }

    fn vs(texts: &[&str]) -> Vec<QuillVersion> {
        texts.iter().map(|t| v(t)).collect()
    }

    fn vuln(id: &str, fixed: &[&str]) -> Vulnerability {
        Vulnerability {
            id: id.into(),
            fixed_versions: fixed.iter().map(|f| f.to_string()).collect(),
        }
    }

    fn skip(ids: &[&str], reason: &str) -> Skipped {
        Skipped {
            vulnerabilities: ids.iter().map(|id| id.to_string()).collect(),
            reason: reason.into(),
        }
    }

    #[test]
    fn the_lowest_fix_within_the_level() {
        let choice = choose(
            &v("1.0.0"),
            &[vuln("CVE-1", &["1.0.5"])],
            &vs(&["1.0.5", "1.0.6", "1.1.0"]),
            Bump::Patch,
        );
        assert_eq!(choice.to, Some(v("1.0.5")));
        assert_eq!(choice.fixes, ["CVE-1"]);
        assert!(choice.skipped.is_empty());
    }

    #[test]
    fn any_index_version_that_fixes_is_a_candidate() {
        // The fixed version itself is not in the index; a later one on its line is, and so is
        // one on a later line that is past every fix.
        let choice = choose(
            &v("1.2.0"),
            &[vuln("CVE-1", &["1.2.5"])],
            &vs(&["1.2.7", "1.4.0"]),
            Bump::Minor,
        );
        assert_eq!(choice.to, Some(v("1.2.7")));
        let choice = choose(
            &v("1.2.0"),
            &[vuln("CVE-1", &["1.2.5"])],
            &vs(&["1.4.0"]),
            Bump::Minor,
        );
        assert_eq!(choice.to, Some(v("1.4.0")));
    }

    #[test]
    fn fixes_are_judged_per_release_line() {
        // 1.23.0 is past the 1.22 fix but not the 1.23 one: it fixes nothing.
        let vulns = [vuln("CVE-1", &["1.22.7", "1.23.1"])];
        let choice = choose(&v("1.22.3"), &vulns, &vs(&["1.23.0"]), Bump::Major);
        assert_eq!(choice.to, None);
        assert_eq!(
            choice.skipped,
            [skip(
                &["CVE-1"],
                "no version in the quill index fixes it (fixed in 1.22.7, 1.23.1)"
            )]
        );
        let choice = choose(
            &v("1.22.3"),
            &vulns,
            &vs(&["1.23.0", "1.23.1"]),
            Bump::Minor,
        );
        assert_eq!(choice.to, Some(v("1.23.1")));
    }

    #[test]
    fn most_fixes_then_smallest_bump_then_lowest_version() {
        let vulns = [
            vuln("CVE-1", &["1.2.5", "1.3.9"]),
            vuln("CVE-2", &["1.3.0"]),
        ];
        // 1.3.9 fixes both: it wins over the patch bump that fixes one.
        let choice = choose(
            &v("1.2.0"),
            &vulns,
            &vs(&["1.2.5", "1.2.6", "1.3.0", "1.3.9"]),
            Bump::Minor,
        );
        assert_eq!(choice.to, Some(v("1.3.9")));
        assert_eq!(choice.fixes, ["CVE-1", "CVE-2"]);
        // Without it, one each: the patch bump, and its lowest version.
        let choice = choose(
            &v("1.2.0"),
            &vulns,
            &vs(&["1.2.6", "1.2.5", "1.3.0"]),
            Bump::Minor,
        );
        assert_eq!(choice.to, Some(v("1.2.5")));
        assert_eq!(choice.fixes, ["CVE-1"]);
        assert_eq!(
            choice.skipped,
            [skip(
                &["CVE-2"],
                "the update to 1.2.5 (chosen for the package's other findings) does not fix it; \
                 1.3.0 would"
            )]
        );
    }

    #[test]
    fn the_level_bounds_the_bump() {
        let vulns = [vuln("CVE-1", &["2.0.1"])];
        let available = vs(&["1.9.5", "2.0.1", "2.1.0"]);
        for level in [Bump::Patch, Bump::Minor] {
            let choice = choose(&v("1.9.0"), &vulns, &available, level);
            assert_eq!(choice.to, None);
            assert_eq!(
                choice.skipped,
                [skip(
                    &["CVE-1"],
                    &format!("fix needs a major bump to 2.0.1; --library-patch-level is {level}")
                )]
            );
        }
        let choice = choose(&v("1.9.0"), &vulns, &available, Bump::Major);
        assert_eq!(choice.to, Some(v("2.0.1")));
    }

    #[test]
    fn unfixable_findings_say_why() {
        let vulns = [
            vuln("CVE-1", &[]),
            vuln("CVE-2", &["latest"]),
            vuln("CVE-3", &["1.0.1"]),
            vuln("CVE-4", &[]),
        ];
        let choice = choose(&v("1.0.0"), &vulns, &vs(&["0.9.0", "1.0.1"]), Bump::Patch);
        assert_eq!(choice.to, Some(v("1.0.1")));
        assert_eq!(choice.fixes, ["CVE-3"]);
        assert_eq!(
            choice.skipped,
            [
                skip(&["CVE-1", "CVE-4"], "no fixed version published"),
                skip(&["CVE-2"], "no fixed version could be read from \"latest\""),
            ]
        );
    }

    #[test]
    fn never_down_or_sideways() {
        let choice = choose(
            &v("1.0.5"),
            &[vuln("CVE-1", &["1.0.7"])],
            &vs(&["1.0.0", "1.0.5"]),
            Bump::Major,
        );
        assert_eq!(choice.to, None);
    }

    fn finding(id: &str, name: &str, fixed: &[&str]) -> Finding {
        Finding {
            vulnerability_id: id.into(),
            package_name: name.into(),
            installed_version: "1.0.0".into(),
            fixed_versions: fixed.iter().map(|f| f.to_string()).collect(),
            pkg_path: None,
            report_target: "quill".into(),
            report_type: "quill".into(),
            purl: None,
            severity: "HIGH".into(),
            status: "fixed".into(),
        }
    }

    fn target(packages: &[(&str, &str)]) -> Target {
        Target {
            id: crate::PACKAGES.into(),
            kind: "quill".into(),
            runtime_version: None,
            packages: packages
                .iter()
                .map(|(name, version)| InstalledPackage {
                    name: name.to_string(),
                    version: version.to_string(),
                    location: format!("{}/{name}", crate::PACKAGES),
                })
                .collect(),
            unpatchable_reason: None,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn plans_per_installed_package() {
        let targets = [target(&[
            ("widget", "1.0.0"),
            ("gadget", "1.0.0"),
            ("odd", "1.0-beta"),
            ("fresh", "1.0.9"),
        ])];
        let findings = [
            finding("CVE-1", "widget", &["1.0.5"]),
            finding("CVE-2", "widget", &["1.1.0"]),
            finding("CVE-3", "gadget", &["1.0.5"]),
            finding("CVE-4", "absent", &["1.0.5"]),
            finding("CVE-5", "odd", &["1.0.5"]),
            finding("CVE-6", "fresh", &["1.0.5"]),
            finding("CVE-1", "widget", &["1.0.5"]),
        ];
        let mut asked = Vec::new();
        let plan = plan(&targets, &findings, Bump::Patch, |name| {
            asked.push(name.to_string());
            Ok(match name {
                "widget" => Some(vs(&["1.0.5", "1.1.0"])),
                _ => None,
            })
        })
        .unwrap();
        assert_eq!(plan.updates.len(), 1);
        let update = &plan.updates[0];
        assert_eq!(
            (
                update.target_id.as_str(),
                update.package.as_str(),
                update.from_version.as_str(),
                update.to_version.as_str(),
                update.at_least,
            ),
            ("/opt/quill/packages", "widget", "1.0.0", "1.0.5", false)
        );
        assert_eq!(update.fixes, ["CVE-1"]);
        assert!(update.notes.is_empty());
        let skips: Vec<(&str, &str, Vec<String>, &str)> = plan
            .skips
            .iter()
            .map(|s| {
                (
                    s.target_id.as_str(),
                    s.package.as_str(),
                    s.vulnerabilities.clone(),
                    s.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            skips,
            [
                (
                    "quill",
                    "absent",
                    vec!["CVE-4".to_string()],
                    "not installed in /opt/quill/packages"
                ),
                (
                    "/opt/quill/packages",
                    "gadget",
                    vec!["CVE-3".to_string()],
                    "not in the quill index"
                ),
                (
                    "/opt/quill/packages",
                    "odd",
                    vec!["CVE-5".to_string()],
                    "installed version \"1.0-beta\" is not a quill version (dotted whole numbers)"
                ),
                (
                    "/opt/quill/packages",
                    "widget",
                    vec!["CVE-2".to_string()],
                    "fix needs a minor bump to 1.1.0; --library-patch-level is patch"
                ),
            ]
        );
        // The already fixed package was never looked up.
        assert_eq!(asked, ["gadget", "widget"]);
    }

    #[test]
    fn an_index_error_fails_the_plan() {
        let targets = [target(&[("widget", "1.0.0")])];
        let findings = [finding("CVE-1", "widget", &["1.0.5"])];
        let error = plan(&targets, &findings, Bump::Patch, |_| {
            Err("GET http://h/widget.json: failed: refused".to_string())
        })
        .unwrap_err();
        assert_eq!(error, "GET http://h/widget.json: failed: refused");
    }

    #[test]
    fn without_packages_every_finding_is_skipped() {
        let findings = [finding("CVE-1", "widget", &["1.0.5"])];
        let plan = plan(&[], &findings, Bump::Major, |_| unreachable!()).unwrap();
        assert!(plan.updates.is_empty());
        assert_eq!(plan.skips[0].reason, "the image has no /opt/quill/packages");
    }
}
