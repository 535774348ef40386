//! What a run reports: one summary row per update with its outcome, the VEX document's
//! statements, and the timestamps both carry.

use anyhow::Result;

use super::plan::{PluginWork, routes_to};
use crate::image::ImageRef;
use crate::plugin::{NameRule, Plugin};
use crate::report::{self, Report};
use crate::summary::{Summary, UpdateRecord};
use crate::vex;

pub(super) fn record_updates(summary: &mut Summary, plugins: &[Plugin], work: &[PluginWork]) {
    for w in work {
        for (update, (status, error)) in w.plan.updates.iter().zip(&w.status) {
            summary.updates.push(UpdateRecord {
                ecosystem: plugins[w.plugin].info.name.clone(),
                target: update.target_id.clone(),
                package: update.package.clone(),
                from: update.from_version.clone(),
                // A minimum still unverified reads as one (">=1.2").
                to: if update.at_least {
                    format!(">={}", update.to_version)
                } else {
                    update.to_version.clone()
                },
                fixes: update.fixes.clone(),
                notes: update.notes.clone(),
                status: *status,
                error: error.clone(),
            });
        }
    }
}

/// Writes the VEX document of a run that wrote `patched` (`digest`): the outcome of each
/// finding from where the patchers found its package and what became of their updates.
pub(super) fn write_vex(
    settings: &vex::Settings,
    report: &Report,
    patched: &ImageRef,
    digest: &str,
    plugins: &[Plugin],
    work: &[PluginWork],
    summary: &Summary,
) -> Result<()> {
    let outcomes: Vec<vex::Outcome> = report
        .findings
        .iter()
        .map(|finding| {
            let placements = placements(finding, plugins, work);
            let names = handler(finding, plugins)
                .map_or_else(NameRule::default, |plugin| plugin.package_names.clone());
            vex::outcome(
                finding,
                &names,
                &placements,
                &summary.updates,
                &summary.skipped,
            )
        })
        .collect();
    let file_name = |path: &std::path::Path| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".to_owned())
    };
    let (repository, name, tag) = match patched {
        ImageRef::Plain(reference)
        | ImageRef::Daemon(reference)
        | ImageRef::Registry(reference)
        | ImageRef::DockerArchive {
            reference: Some(reference),
            ..
        } => {
            let (repository, tag) = crate::image::split_reference(reference);
            let name = repository.rsplit('/').next().unwrap_or(repository);
            (
                Some(repository.to_owned()),
                name.to_owned(),
                tag.map(str::to_owned),
            )
        }
        ImageRef::OciLayout { dir: path, tag } | ImageRef::OciArchive { path, tag } => {
            (None, file_name(path), tag.clone())
        }
        ImageRef::DockerArchive {
            path,
            reference: None,
        } => (None, file_name(path), None),
    };
    let product = vex::Product {
        repository,
        name,
        tag,
        digest: digest.to_owned(),
    };
    let timestamp = rfc3339(now_or_source_date_epoch());
    let declared_purl_type = |finding: &report::Finding| {
        handler(finding, plugins).and_then(|plugin| plugin.info.purl_types.first().cloned())
    };
    match vex::document(
        report,
        &outcomes,
        &declared_purl_type,
        &product,
        &settings.author,
        &timestamp,
    ) {
        Some(document) => vex::write(&settings.path, &document),
        None => {
            eprintln!(
                "No VEX document written to {}: the report lists no vulnerabilities.",
                settings.path.display()
            );
            Ok(())
        }
    }
}

/// The first plugin a finding is routed to: whose names and package-URL type describe it.
fn handler<'a>(finding: &report::Finding, plugins: &'a [Plugin]) -> Option<&'a Plugin> {
    plugins.iter().find(|plugin| routes_to(finding, plugin))
}

/// Where the patchers that handled a finding found its package: the targets holding a package
/// of that name, narrowed to the one whose files hold the finding's path when it has one.
fn placements(
    finding: &report::Finding,
    plugins: &[Plugin],
    work: &[PluginWork],
) -> Vec<vex::Placement> {
    let mut placements = Vec::new();
    for w in work
        .iter()
        .filter(|w| routes_to(finding, &plugins[w.plugin]))
    {
        let names = &plugins[w.plugin].package_names;
        for target in &w.targets {
            let held = target.packages.iter().find(|p| {
                names.same(&p.name, &finding.package_name)
                    && finding.pkg_path.as_deref().is_none_or(|path| {
                        path == p.location
                            || path
                                .strip_prefix(p.location.as_str())
                                .is_some_and(|rest| rest.starts_with('/'))
                    })
            });
            if let Some(package) = held {
                placements.push(vex::Placement {
                    ecosystem: plugins[w.plugin].info.name.clone(),
                    target: target.id.clone(),
                    package: package.name.clone(),
                });
            }
        }
    }
    placements
}

/// Now, unless the user pins time with `SOURCE_DATE_EPOCH`: the layer is reproducible, the
/// image's creation time and the VEX timestamp are real ones otherwise.
pub(super) fn now_or_source_date_epoch() -> u64 {
    source_date_epoch().unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    })
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds). Without it the layer's mtimes are 0, so
/// they never depend on when the patch ran.
pub(super) fn source_date_epoch() -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// Seconds since the epoch as RFC 3339 UTC.
pub(super) fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
