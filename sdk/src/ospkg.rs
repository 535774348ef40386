//! What the OS package patchers (apt, apk, rpm) share: reading `/etc/os-release`, and the rule
//! that turns a scanner's OS findings, or no report at all, into updates.
//!
//! OS fixes are not chosen by release line as library fixes are: a distribution publishes one
//! fixed build per release, and its package manager installs the newest build its repositories
//! offer. So a finding's fixed version is a minimum, several findings for one package collapse
//! into one update to the highest minimum, and the version planned is the repositories' newest
//! when the host can read their index.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::{
    Finding, Plan, Skip, Target, Update, apk::ApkVersion, dpkg::DpkgVersion, rpm::RpmVersion,
};

/// The exact version a planned update installs, or `None` when its `to_version` is only a
/// minimum (`at_least`): the repositories' index could not be read when planning, so the package
/// manager picks the newest build and the host verifies that what it installed is at least that.
pub fn exact_version(update: &Update) -> Option<&str> {
    (!update.at_least).then_some(update.to_version.as_str())
}

/// A version as a distribution's package manager orders it.
pub trait OsVersion: Ord + Clone + fmt::Display + FromStr<Err = String> {
    /// Whether `self`, installed, meets a fix published as `required`.
    fn satisfies(&self, required: &Self) -> bool {
        self >= required
    }
    /// The family's name for messages ("dpkg").
    const KIND: &'static str;
}

impl OsVersion for DpkgVersion {
    const KIND: &'static str = "dpkg";
}

impl OsVersion for ApkVersion {
    const KIND: &'static str = "apk";
}

impl OsVersion for RpmVersion {
    const KIND: &'static str = "rpm";
    /// rpm's own rule: a fix announced without a release is in every release of that version.
    fn satisfies(&self, required: &Self) -> bool {
        self.satisfies_at_least(required)
    }
}

/// Where os-release(5) lives: `/etc/os-release`, else `/usr/lib/os-release` (its usual target).
pub const OS_RELEASE_PATHS: &[&str] = &["/etc/os-release", "/usr/lib/os-release"];

/// The identification of the image's distribution (os-release(5)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: String,
    pub id_like: Vec<String>,
    pub version_id: Option<String>,
    pub version_codename: Option<String>,
    pub pretty_name: Option<String>,
}

impl OsRelease {
    /// Parses the `KEY=value` lines of an os-release file (quotes and backslash escapes as in
    /// shell, comments and blank lines ignored).
    pub fn parse(text: &str) -> OsRelease {
        let mut release = OsRelease::default();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            let non_empty = (!value.is_empty()).then(|| value.clone());
            match key.trim() {
                "ID" => release.id = value.to_ascii_lowercase(),
                "ID_LIKE" => {
                    release.id_like = value
                        .split_whitespace()
                        .map(|s| s.to_ascii_lowercase())
                        .collect()
                }
                "VERSION_ID" => release.version_id = non_empty,
                "VERSION_CODENAME" => release.version_codename = non_empty,
                "PRETTY_NAME" => release.pretty_name = non_empty,
                _ => {}
            }
        }
        release
    }

    /// The image's os-release (see [`OS_RELEASE_PATHS`]).
    pub fn read() -> Option<OsRelease> {
        OS_RELEASE_PATHS
            .iter()
            .find_map(|path| crate::fs::read_to_string(path).ok())
            .map(|text| OsRelease::parse(&text))
            .filter(|release| !release.id.is_empty())
    }

    /// Whether the distribution is one of `ids` or derives from one of them.
    pub fn is_like(&self, ids: &[&str]) -> bool {
        ids.contains(&self.id.as_str()) || self.id_like.iter().any(|l| ids.contains(&l.as_str()))
    }
}

fn unquote(value: &str) -> String {
    let inner = match value.as_bytes() {
        [b'"', .., b'"'] | [b'\'', .., b'\''] if value.len() >= 2 => &value[1..value.len() - 1],
        _ => value,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the repositories configured in the image offer, as far as the plugin can learn it.
pub trait Repositories {
    /// The newest version of `package` the repositories offer (what the package manager would
    /// install), `None` when none offers it, an error when the index cannot be read.
    fn newest(&self, package: &str) -> Result<Option<String>, String>;

    /// Why the repositories are not read in this run at all (one is on an origin the run does
    /// not grant): the packages that need them are skipped with this reason, rather than
    /// planned as a minimum for the package manager to reach what planning could not.
    fn refusal(&self) -> Option<String> {
        None
    }
}

/// The newest version of `package` that any of the repositories (`package-index` ecosystems)
/// offers: what apt, apk or dnf installs with default priorities. Every repository must
/// answer: a newest version taken from a partial view could be older than what the package
/// manager will install, so an error makes the plan fall back to minimums instead.
pub fn newest_offered<V: OsVersion>(
    ecosystems: &[&str],
    package: &str,
) -> Result<Option<String>, String> {
    let mut offered = Vec::new();
    for ecosystem in ecosystems {
        offered.extend(
            crate::index::versions(ecosystem, package)?
                .into_iter()
                .map(|v| v.version),
        );
    }
    Ok(newest::<V>(offered.iter().map(String::as_str)))
}

/// The newest of `versions` as the package manager orders them (what it installs); versions it
/// cannot read are left out.
pub fn newest<'a, V: OsVersion>(versions: impl IntoIterator<Item = &'a str>) -> Option<String> {
    versions
        .into_iter()
        .filter_map(|v| v.parse::<V>().ok())
        // The first of equal versions ("1.0" and "1.00" are one dpkg version).
        .reduce(|newest, v| if v > newest { v } else { newest })
        .map(|v| v.to_string())
}

/// Repositories named one `package-index` ecosystem a line (the form OS plugins keep in a
/// target attribute), for a package manager whose versions order as `V`.
pub struct ConfiguredRepositories<V> {
    ecosystems: Vec<String>,
    /// For the error when there are none ("apt").
    manager: &'static str,
    order: std::marker::PhantomData<V>,
}

impl<V> ConfiguredRepositories<V> {
    pub fn from_lines(lines: &str, manager: &'static str) -> Self {
        Self {
            ecosystems: lines
                .lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            manager,
            order: std::marker::PhantomData,
        }
    }
}

impl<V: OsVersion> Repositories for ConfiguredRepositories<V> {
    fn newest(&self, package: &str) -> Result<Option<String>, String> {
        if self.ecosystems.is_empty() {
            return Err(format!(
                "the image configures no {} repository",
                self.manager
            ));
        }
        // A multiarch dpkg name ("libc6:i386") is asked for by its package name; apk and rpm
        // names have no colon.
        let name = package.split(':').next().unwrap_or(package);
        let ecosystems: Vec<&str> = self.ecosystems.iter().map(String::as_str).collect();
        newest_offered::<V>(&ecosystems, name)
    }
}

/// A plan that skips every finding for `reason` (the image has no database of this kind).
pub fn skip_all(findings: &[Finding], reason: &str) -> Plan {
    Plan {
        updates: Vec::new(),
        skips: findings
            .iter()
            .map(|f| Skip {
                target_id: f.report_target.clone(),
                package: f.package_name.clone(),
                vulnerabilities: vec![f.vulnerability_id.clone()],
                reason: reason.to_string(),
            })
            .collect(),
    }
}

/// Turns the findings routed to an OS patcher into a plan for its one target (the package
/// database). With `update_all` (no report given), every installed package the repositories
/// offer a newer version of is updated, as `apt-get upgrade` would, never to another release.
///
/// `held` names the packages the image pins (`apt-mark hold`), with the reason they are left.
pub fn plan<V: OsVersion>(
    target: &Target,
    findings: &[Finding],
    update_all: bool,
    repositories: &dyn Repositories,
    held: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, String> {
    let mut plan = Plan {
        updates: Vec::new(),
        skips: Vec::new(),
    };
    if update_all {
        upgrade_all::<V>(target, repositories, held, &mut plan)?;
    } else {
        let mut by_package: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
        for finding in findings {
            by_package
                .entry(finding.package_name.as_str())
                .or_default()
                .push(finding);
        }
        for (package, findings) in by_package {
            plan_package::<V>(target, package, &findings, repositories, held, &mut plan);
        }
    }
    Ok(plan)
}

fn upgrade_all<V: OsVersion>(
    target: &Target,
    repositories: &dyn Repositories,
    held: &dyn Fn(&str) -> Option<String>,
    plan: &mut Plan,
) -> Result<(), String> {
    if let Some(reason) = target.unpatchable_reason.clone().or(repositories.refusal()) {
        return Err(reason);
    }
    for installed in &target.packages {
        let Ok(version) = installed.version.parse::<V>() else {
            continue;
        };
        let newest = repositories.newest(&installed.name).map_err(|e| {
            format!(
                "without a report the repositories' index is needed to know what is upgradable: {e}"
            )
        })?;
        let Some(newest) = newest.and_then(|n| n.parse::<V>().ok()) else {
            continue;
        };
        if newest <= version {
            continue;
        }
        if let Some(reason) = held(&installed.name) {
            plan.skips.push(Skip {
                target_id: target.id.clone(),
                package: installed.name.clone(),
                vulnerabilities: Vec::new(),
                reason,
            });
            continue;
        }
        plan.updates.push(Update {
            target_id: target.id.clone(),
            package: installed.name.clone(),
            from_version: installed.version.clone(),
            to_version: newest.to_string(),
            at_least: false,
            fixes: Vec::new(),
            notes: Vec::new(),
        });
    }
    Ok(())
}

fn plan_package<V: OsVersion>(
    target: &Target,
    package: &str,
    findings: &[&Finding],
    repositories: &dyn Repositories,
    held: &dyn Fn(&str) -> Option<String>,
    plan: &mut Plan,
) {
    let mut skip = |vulnerabilities: Vec<String>, reason: String| {
        if !vulnerabilities.is_empty() {
            plan.skips.push(Skip {
                target_id: target.id.clone(),
                package: package.to_string(),
                vulnerabilities,
                reason,
            });
        }
    };
    let all_ids: Vec<String> = unique_ids(findings.iter().copied());
    if let Some(reason) = &target.unpatchable_reason {
        return skip(all_ids, reason.clone());
    }
    let Some(installed) = target.packages.iter().find(|p| p.name == package) else {
        return skip(all_ids, format!("not installed in {}", target.id));
    };
    let Ok(installed_version) = installed.version.parse::<V>() else {
        return skip(
            all_ids,
            format!(
                "installed version {} is not a valid {} version",
                installed.version,
                V::KIND
            ),
        );
    };

    // Each finding's minimum: the lowest fixed version it names above what is installed.
    let mut open: Vec<(&Finding, V)> = Vec::new();
    for finding in findings {
        if finding.fixed_versions.is_empty() {
            skip(
                vec![finding.vulnerability_id.clone()],
                no_fix_reason(&finding.status),
            );
            continue;
        }
        let parsed: Result<Vec<V>, String> = finding
            .fixed_versions
            .iter()
            .map(|v| v.parse::<V>())
            .collect();
        let Ok(parsed) = parsed else {
            skip(
                vec![finding.vulnerability_id.clone()],
                format!(
                    "fixed version {} is not a valid {} version",
                    finding.fixed_versions.join(", "),
                    V::KIND
                ),
            );
            continue;
        };
        if parsed
            .iter()
            .any(|fixed| installed_version.satisfies(fixed))
        {
            crate::log::info(&format!(
                "{package} {} already has the fix for {}",
                installed.version, finding.vulnerability_id
            ));
            continue;
        }
        let required = parsed
            .into_iter()
            .min()
            .expect("fixed versions are not empty");
        open.push((finding, required));
    }
    let Some(required) = open.iter().map(|(_, v)| v.clone()).max() else {
        return;
    };
    let open_ids = unique_ids(open.iter().map(|(f, _)| *f));
    if let Some(reason) = held(package).or_else(|| repositories.refusal()) {
        return skip(open_ids, reason);
    }
    // `at_least`: only the minimum is known, the package manager picks the build.
    let (to_version, at_least) = match repositories.newest(package) {
        Ok(Some(newest)) => match newest.parse::<V>() {
            Ok(newest) if newest.satisfies(&required) => (newest.to_string(), false),
            Ok(newest) => {
                return skip(
                    open_ids,
                    format!(
                        "the image's repositories offer {newest} at most; the fix needs {required}"
                    ),
                );
            }
            Err(e) => return skip(open_ids, format!("the repositories' version {newest}: {e}")),
        },
        Ok(None) => {
            return skip(
                open_ids,
                "none of the image's repositories offers this package".into(),
            );
        }
        Err(e) => {
            crate::log::warn(&format!(
                "{package}: repository index unavailable ({e}); planning at least {required}"
            ));
            (required.to_string(), true)
        }
    };
    plan.updates.push(Update {
        target_id: target.id.clone(),
        package: package.to_string(),
        from_version: installed.version.clone(),
        to_version,
        at_least,
        fixes: open_ids,
        notes: Vec::new(),
    });
}

fn unique_ids<'a>(findings: impl Iterator<Item = &'a Finding>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for finding in findings {
        if !ids.contains(&finding.vulnerability_id) {
            ids.push(finding.vulnerability_id.clone());
        }
    }
    ids
}

fn no_fix_reason(status: &str) -> String {
    match status {
        "" | "affected" => "the distribution has published no fix yet".into(),
        "will_not_fix" => "the distribution will not fix it (status will_not_fix)".into(),
        "fix_deferred" => "the distribution deferred the fix (status fix_deferred)".into(),
        "end_of_life" => "the distribution release is end of life (status end_of_life)".into(),
        other => format!("no fixed version published (status {other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InstalledPackage;
    use std::cell::RefCell;

    #[test]
    fn parses_os_release() {
        let release = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n# comment\n\n",
        );
        assert_eq!(release.id, "debian");
        assert_eq!(release.version_id.as_deref(), Some("12"));
        assert_eq!(release.version_codename.as_deref(), Some("bookworm"));
        assert_eq!(
            release.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        let ubuntu = OsRelease::parse("ID=ubuntu\nID_LIKE=debian\nVERSION_ID='22.04'\n");
        assert!(ubuntu.is_like(&["debian"]));
        assert_eq!(ubuntu.version_id.as_deref(), Some("22.04"));
        let rocky = OsRelease::parse("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n");
        assert!(rocky.is_like(&["fedora"]));
        assert!(!rocky.is_like(&["debian"]));
        assert_eq!(OsRelease::parse("NAME=\"a \\\"b\\\"\"").id, "");
    }

    struct Repo {
        newest: Vec<(&'static str, &'static str)>,
        fail: bool,
        refused: Option<String>,
        asked: RefCell<Vec<String>>,
    }

    impl Repositories for Repo {
        fn newest(&self, package: &str) -> Result<Option<String>, String> {
            self.asked.borrow_mut().push(package.to_string());
            if self.fail {
                return Err("mirror unreachable".into());
            }
            Ok(self
                .newest
                .iter()
                .find(|(n, _)| *n == package)
                .map(|(_, v)| v.to_string()))
        }

        fn refusal(&self) -> Option<String> {
            self.refused.clone()
        }
    }

    fn repo(newest: &[(&'static str, &'static str)]) -> Repo {
        Repo {
            newest: newest.to_vec(),
            fail: false,
            refused: None,
            asked: RefCell::new(Vec::new()),
        }
    }

    fn target(packages: &[(&str, &str)]) -> Target {
        Target {
            id: "/var/lib/dpkg/status".into(),
            kind: "dpkg".into(),
            runtime_version: None,
            packages: packages
                .iter()
                .map(|(name, version)| InstalledPackage {
                    name: name.to_string(),
                    version: version.to_string(),
                    location: "/var/lib/dpkg/status".into(),
                })
                .collect(),
            unpatchable_reason: None,
            attributes: Vec::new(),
        }
    }

    fn finding(id: &str, package: &str, installed: &str, fixed: &[&str], status: &str) -> Finding {
        Finding {
            vulnerability_id: id.into(),
            package_name: package.into(),
            installed_version: installed.into(),
            fixed_versions: fixed.iter().map(|s| s.to_string()).collect(),
            pkg_path: None,
            report_target: "img (debian 12.1)".into(),
            report_type: "debian".into(),
            purl: None,
            severity: "HIGH".into(),
            status: status.into(),
        }
    }

    fn not_held(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn findings_of_one_package_collapse_to_the_newest_build() {
        let target = target(&[
            ("libssl3", "3.0.11-1~deb12u1"),
            ("openssl", "3.0.11-1~deb12u1"),
        ]);
        let findings = [
            finding(
                "CVE-1",
                "libssl3",
                "3.0.11-1~deb12u1",
                &["3.0.11-1~deb12u2"],
                "fixed",
            ),
            finding(
                "CVE-2",
                "libssl3",
                "3.0.11-1~deb12u1",
                &["3.0.13-1~deb12u1"],
                "fixed",
            ),
            finding("CVE-3", "libssl3", "3.0.11-1~deb12u1", &[], "affected"),
            finding(
                "CVE-4",
                "libssl3",
                "3.0.11-1~deb12u1",
                &["3.0.9-1"],
                "fixed",
            ),
        ];
        let repos = repo(&[("libssl3", "3.0.15-1~deb12u1")]);
        let plan = plan::<DpkgVersion>(&target, &findings, false, &repos, &not_held).unwrap();
        assert_eq!(plan.updates.len(), 1);
        let update = &plan.updates[0];
        assert_eq!(update.to_version, "3.0.15-1~deb12u1");
        assert!(!update.at_least);
        assert_eq!(update.fixes, ["CVE-1", "CVE-2"]);
        assert_eq!(plan.skips.len(), 1);
        assert_eq!(plan.skips[0].vulnerabilities, ["CVE-3"]);
        assert!(plan.skips[0].reason.contains("no fix yet"));
    }

    #[test]
    fn a_mirror_behind_the_fix_is_a_skip_that_names_both_versions() {
        let target = target(&[("tzdata", "2024a-0+deb12u1")]);
        let findings = [finding(
            "CVE-9",
            "tzdata",
            "2024a-0+deb12u1",
            &["2025b-0+deb12u1"],
            "fixed",
        )];
        let repos = repo(&[("tzdata", "2025a-0+deb12u1")]);
        let plan = plan::<DpkgVersion>(&target, &findings, false, &repos, &not_held).unwrap();
        assert!(plan.updates.is_empty());
        assert_eq!(
            plan.skips[0].reason,
            "the image's repositories offer 2025a-0+deb12u1 at most; the fix needs 2025b-0+deb12u1"
        );
    }

    #[test]
    fn without_an_index_the_fix_is_a_minimum() {
        let target = target(&[("musl", "1.2.4-r1")]);
        let findings = [finding("CVE-5", "musl", "1.2.4-r1", &["1.2.4-r2"], "fixed")];
        let mut repos = repo(&[]);
        repos.fail = true;
        let plan = plan::<ApkVersion>(&target, &findings, false, &repos, &not_held).unwrap();
        let update = &plan.updates[0];
        assert_eq!(
            (update.to_version.as_str(), update.at_least),
            ("1.2.4-r2", true)
        );
        assert_eq!(exact_version(update), None);
        let exact = Update {
            at_least: false,
            ..update.clone()
        };
        assert_eq!(exact_version(&exact), Some("1.2.4-r2"));
    }

    #[test]
    fn fixed_installed_held_and_missing_packages() {
        let target = target(&[("bash", "5.2.15-2+b2"), ("perl-base", "5.36.0-7")]);
        let findings = [
            finding("CVE-6", "bash", "5.2.15-2+b2", &["5.2.15-2"], "fixed"),
            finding(
                "CVE-7",
                "perl-base",
                "5.36.0-7",
                &["5.36.0-7+deb12u1"],
                "fixed",
            ),
            finding(
                "CVE-8",
                "curl",
                "7.88.1-10",
                &["7.88.1-10+deb12u5"],
                "fixed",
            ),
        ];
        let repos = repo(&[("perl-base", "5.36.0-7+deb12u2")]);
        let held = |name: &str| (name == "perl-base").then(|| "held (apt-mark hold)".to_string());
        let plan = plan::<DpkgVersion>(&target, &findings, false, &repos, &held).unwrap();
        assert!(plan.updates.is_empty());
        let reasons: Vec<(&str, &str)> = plan
            .skips
            .iter()
            .map(|s| (s.package.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("curl", "not installed in /var/lib/dpkg/status"),
                ("perl-base", "held (apt-mark hold)")
            ]
        );
        // The fixed bash was never looked up.
        assert!(!repos.asked.borrow().contains(&"bash".to_string()));
    }

    #[test]
    fn repositories_the_run_may_not_read_skip_what_needs_them() {
        let target = target(&[("bash", "5.2.15-2+b2"), ("perl-base", "5.36.0-7")]);
        let findings = [
            finding("CVE-6", "bash", "5.2.15-2+b2", &["5.2.15-2"], "fixed"),
            finding("CVE-7", "perl-base", "5.36.0-7", &["5.36.0-8"], "fixed"),
        ];
        let mut repos = repo(&[("perl-base", "5.36.0-7+deb12u2")]);
        repos.refused = Some("not granted".into());
        let plan = plan::<DpkgVersion>(&target, &findings, false, &repos, &not_held).unwrap();
        assert!(plan.updates.is_empty());
        // The fixed bash needs no repository; perl-base is skipped without asking.
        assert_eq!(plan.skips.len(), 1);
        assert_eq!(
            (
                plan.skips[0].package.as_str(),
                plan.skips[0].reason.as_str()
            ),
            ("perl-base", "not granted")
        );
        assert!(repos.asked.borrow().is_empty());
        let err = super::plan::<DpkgVersion>(&target, &[], true, &repos, &not_held).unwrap_err();
        assert_eq!(err, "not granted");
    }

    #[test]
    fn rpm_fix_without_release_is_met_by_any_release() {
        let target = target(&[("openssl-libs", "1:3.0.7-27.el9")]);
        let findings = [finding(
            "CVE-1",
            "openssl-libs",
            "1:3.0.7-27.el9",
            &["1:3.0.7"],
            "fixed",
        )];
        let plan = plan::<RpmVersion>(&target, &findings, false, &repo(&[]), &not_held).unwrap();
        assert!(plan.updates.is_empty() && plan.skips.is_empty());
    }

    #[test]
    fn no_report_upgrades_everything_upgradable() {
        let target = target(&[
            ("apt", "2.6.1"),
            ("tzdata", "2024a-0+deb12u1"),
            ("libc6", "2.36-9+deb12u9"),
            ("vim", "2:9.0.1378-2"),
        ]);
        let repos = repo(&[
            ("apt", "2.6.1"),
            ("tzdata", "2025b-0+deb12u1"),
            ("libc6", "2.36-9+deb12u4"),
            ("vim", "2:9.0.1378-2+deb12u1"),
        ]);
        let held = |name: &str| (name == "vim").then(|| "held".to_string());
        let plan = plan::<DpkgVersion>(&target, &[], true, &repos, &held).unwrap();
        let updates: Vec<(&str, &str)> = plan
            .updates
            .iter()
            .map(|u| (u.package.as_str(), u.to_version.as_str()))
            .collect();
        assert_eq!(updates, [("tzdata", "2025b-0+deb12u1")]);
        assert_eq!(plan.skips[0].package, "vim");

        let mut failing = repo(&[]);
        failing.fail = true;
        let err = super::plan::<DpkgVersion>(&target, &[], true, &failing, &held).unwrap_err();
        assert!(err.contains("mirror unreachable"), "{err}");
    }
}
