//! Routing and planning: which plugin takes which finding (by the report's type and PURL, never
//! a guess), each plugin's targets and plan under the run's policy, and a skip with its reason
//! for every finding no plugin takes.

use std::sync::Arc;

use anyhow::{Result, bail};

use super::Options;
use crate::image::ImageView;
use crate::plugin::{
    Capabilities, Finding, PackageClass, Plan, Plugin, PluginHost, Policy, Target, Update, grants,
};
use crate::report::{self, Report};
use crate::setting::Setting;
use crate::summary::{SkipRecord, Status};
use copa_plugin_sdk::ospkg::{self, OsRelease};

/// One plugin's share of the run.
pub(super) struct PluginWork {
    pub(super) plugin: usize,
    pub(super) targets: Vec<Target>,
    /// The findings routed to the plugin (none without a report); verification plans again
    /// with them.
    pub(super) findings: Vec<Finding>,
    /// The policy the plan was made under; emitting and verifying use it again.
    pub(super) policy: Policy,
    pub(super) plan: Plan,
    pub(super) status: Vec<(Status, Option<String>)>,
}

/// The updates of all plugins that ended in `status`, with their error when they failed.
pub(super) fn updates_with(
    work: &[PluginWork],
    status: Status,
) -> impl Iterator<Item = (&Update, Option<&str>)> {
    work.iter().flat_map(move |w| {
        w.plan
            .updates
            .iter()
            .zip(&w.status)
            .filter(move |(_, s)| s.0 == status)
            .map(|(u, s)| (u, s.1.as_deref()))
    })
}

/// Detect and plan with every plugin of the chosen classes; findings no plugin takes are
/// reported as skipped with the reason.
pub(super) fn plan_all(
    host: &PluginHost,
    plugins: &[Plugin],
    caps: &Arc<Capabilities>,
    report: Option<&Report>,
    options: &Options,
) -> Result<(Vec<PluginWork>, Vec<SkipRecord>)> {
    let mut skipped = Vec::new();
    let findings: Vec<&report::Finding> = report
        .map(|r| r.findings.iter().collect())
        .unwrap_or_default();
    let update_all = report.is_none();
    if update_all && !options.package_classes.contains(&PackageClass::Os) {
        bail!(
            "without a report ({}) only OS packages are updated, and {} excludes os",
            Setting::Report,
            Setting::PkgTypes
        );
    }
    if let Some(report) = report {
        check_os_matches(report, &caps.image)?;
    }
    let mut routed = vec![false; findings.len()];
    let mut work = Vec::new();
    for (plugin_index, plugin) in plugins.iter().enumerate() {
        let chosen: Vec<usize> = (0..findings.len())
            .filter(|&i| routes_to(findings[i], plugin))
            .collect();
        for &i in &chosen {
            routed[i] = true;
        }
        // Without a report, every OS patcher looks for what is upgradable in its database.
        let wanted = if update_all {
            plugin.info.package_class == PackageClass::Os
        } else {
            !chosen.is_empty()
        };
        if !wanted || !options.package_classes.contains(&plugin.info.package_class) {
            continue;
        }
        let targets = host.detect(plugin, caps)?;
        if update_all && targets.is_empty() {
            continue;
        }
        let plugin_findings: Vec<Finding> = chosen
            .iter()
            .map(|&i| to_plugin_finding(findings[i]))
            .collect();
        let policy = policy(options, plugin);
        let plan = host.plan(plugin, caps, &targets, &plugin_findings, &policy)?;
        for skip in &plan.skips {
            skipped.push(SkipRecord {
                ecosystem: plugin.info.name.clone(),
                target: skip.target_id.clone(),
                package: skip.package.clone(),
                vulnerabilities: skip.vulnerabilities.clone(),
                reason: skip.reason.clone(),
            });
        }
        let status = vec![(Status::Planned, None); plan.updates.len()];
        work.push(PluginWork {
            plugin: plugin_index,
            targets,
            findings: plugin_findings,
            policy,
            plan,
            status,
        });
    }
    for (finding, routed) in findings.iter().zip(routed) {
        let class_wanted = match finding.class {
            report::FindingClass::OsPkgs => options.package_classes.contains(&PackageClass::Os),
            report::FindingClass::LangPkgs => {
                options.package_classes.contains(&PackageClass::Library)
            }
        };
        let reason = if !class_wanted {
            let class = match finding.class {
                report::FindingClass::OsPkgs => "os",
                report::FindingClass::LangPkgs => "library",
            };
            format!("{} does not include {class}", Setting::PkgTypes)
        } else if !routed {
            format!("no plugin handles {} packages", finding.report_type)
        } else {
            continue;
        };
        skipped.push(SkipRecord {
            ecosystem: finding.report_type.clone(),
            target: finding
                .pkg_path
                .clone()
                .unwrap_or_else(|| finding.report_target.clone()),
            package: finding.package_name.clone(),
            vulnerabilities: vec![finding.vulnerability_id.clone()],
            reason,
        });
    }
    merge_skips(&mut skipped);
    Ok((work, skipped))
}

/// The policy of the run for one plugin: with the options meant for it.
fn policy(options: &Options, plugin: &Plugin) -> Policy {
    Policy {
        library_patch_level: options.library_patch_level,
        update_all: options.report.is_none(),
        toolchain_patch_level: options.toolchain_patch_level,
        options: options_for(&options.plugin_options, &plugin.info.name),
        indexes: grants::index_urls(plugin, &options.indexes),
    }
}

/// The (key, value) options of `plugin`, in the order given.
fn options_for(options: &[(String, String, String)], plugin: &str) -> Vec<(String, String)> {
    options
        .iter()
        .filter(|(name, _, _)| name == plugin)
        .map(|(_, key, value)| (key.clone(), value.clone()))
        .collect()
}

/// Trivy's OS family names and the os-release IDs of the same distributions.
const OS_FAMILIES: &[(&str, &[&str])] = &[
    ("debian", &["debian"]),
    ("ubuntu", &["ubuntu"]),
    ("alpine", &["alpine"]),
    ("wolfi", &["wolfi"]),
    ("chainguard", &["chainguard"]),
    ("redhat", &["rhel"]),
    ("centos", &["centos"]),
    ("rocky", &["rocky"]),
    ("alma", &["almalinux"]),
    ("fedora", &["fedora"]),
    ("amazon", &["amzn"]),
    ("oracle", &["ol"]),
    ("azurelinux", &["azurelinux"]),
    ("cbl-mariner", &["mariner"]),
    ("photon", &["photon"]),
    ("suse linux enterprise server", &["sles"]),
    ("opensuse.leap", &["opensuse-leap", "opensuse"]),
    ("opensuse.tumbleweed", &["opensuse-tumbleweed"]),
];

/// A report of another distribution (or another major release) than the image is a mistake
/// that would patch the wrong packages: refuse it, naming both.
fn check_os_matches(report: &Report, image: &ImageView) -> Result<()> {
    let Some((family, name)) = &report.os else {
        return Ok(());
    };
    let Some(release) = ospkg::OS_RELEASE_PATHS
        .iter()
        .find_map(|p| view_text(image, p))
        .map(|text| OsRelease::parse(&text))
    else {
        return Ok(());
    };
    let family = family.to_ascii_lowercase();
    let same_family = match OS_FAMILIES.iter().find(|(f, _)| *f == family) {
        Some((_, ids)) => ids.contains(&release.id.as_str()),
        None => family == release.id,
    };
    let major = |v: &str| v.split(['.', ' ']).next().unwrap_or_default().to_string();
    let same_release = match &release.version_id {
        Some(version) if !name.is_empty() => major(name) == major(version),
        _ => true,
    };
    if !same_family || !same_release {
        bail!(
            "the report is for {family} {name}, but the image is {} (/etc/os-release)",
            release.pretty_name.clone().unwrap_or_else(|| format!(
                "{} {}",
                release.id,
                release.version_id.clone().unwrap_or_default()
            ))
        );
    }
    Ok(())
}

fn view_text(image: &ImageView, path: &str) -> Option<String> {
    image
        .read_file(path)
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Routing uses what the scanner said (result type, PURL type), never a guess.
pub(super) fn routes_to(finding: &report::Finding, plugin: &Plugin) -> bool {
    plugin
        .info
        .report_types
        .iter()
        .any(|t| t == &finding.report_type)
        || finding
            .purl_type()
            .is_some_and(|p| plugin.info.purl_types.iter().any(|t| t == p))
}

/// One row per (ecosystem, target, package, reason).
fn merge_skips(skipped: &mut Vec<SkipRecord>) {
    let mut merged: Vec<SkipRecord> = Vec::new();
    for skip in skipped.drain(..) {
        match merged.iter_mut().find(|m| {
            m.ecosystem == skip.ecosystem
                && m.target == skip.target
                && m.package == skip.package
                && m.reason == skip.reason
        }) {
            Some(m) => {
                for v in skip.vulnerabilities {
                    if !m.vulnerabilities.contains(&v) {
                        m.vulnerabilities.push(v);
                    }
                }
            }
            None => merged.push(skip),
        }
    }
    *skipped = merged;
}

fn to_plugin_finding(f: &report::Finding) -> Finding {
    Finding {
        vulnerability_id: f.vulnerability_id.clone(),
        package_name: f.package_name.clone(),
        installed_version: f.installed_version.clone(),
        fixed_versions: f.fixed_versions.clone(),
        pkg_path: f.pkg_path.clone(),
        report_target: f.report_target.clone(),
        report_type: f.report_type.clone(),
        purl: f.purl.clone(),
        severity: f.severity.clone(),
        status: f.status.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_gets_its_own_options_in_order() {
        let option = |plugin: &str, key: &str, value: &str| {
            (plugin.to_string(), key.to_string(), value.to_string())
        };
        let options = [
            option("go", "source", "a=https://a"),
            option("npm", "source", "elsewhere"),
            option("go", "source", "b=https://b@v1"),
            option("go", "other", ""),
        ];
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            options_for(&options, "go"),
            pairs(&[
                ("source", "a=https://a"),
                ("source", "b=https://b@v1"),
                ("other", "")
            ])
        );
        assert_eq!(
            options_for(&options, "npm"),
            pairs(&[("source", "elsewhere")])
        );
        assert!(options_for(&options, "pip").is_empty());
    }
}
