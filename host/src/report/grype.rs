//! Grype JSON reports (`grype IMAGE -o json`).

use serde::Deserialize;

use super::{Finding, FindingClass, Report, TopLevelError, json_object, language_target};

/// Why a byte string is not a usable Grype report. Every message is a single line.
#[derive(Debug, thiserror::Error)]
pub enum GrypeError {
    #[error(transparent)]
    TopLevel(#[from] TopLevelError),
    #[error("not a Grype JSON report (matches missing)")]
    MissingMatches,
    #[error("invalid Grype report: {0}")]
    Invalid(serde_json::Error),
    #[error("matches[{index}] has no {field}")]
    MissingField { index: usize, field: &'static str },
}

/// Parses a Grype JSON report into findings named the way Trivy names them.
pub fn parse(json: &[u8]) -> Result<Report, GrypeError> {
    if !json_object(json, "Grype JSON report")?.contains_key("matches") {
        return Err(GrypeError::MissingMatches);
    }
    let raw: RawReport = serde_json::from_slice(json).map_err(GrypeError::Invalid)?;
    let target = raw.source.and_then(|s| s.target).unwrap_or_default();
    let artifact_name = target.user_input.unwrap_or_default();
    let os = raw.distro.and_then(|d| match (d.name, d.version) {
        (Some(name), Some(version)) if !name.is_empty() && !version.is_empty() => {
            Some((trivy_family(&name).to_owned(), version))
        }
        _ => None,
    });

    let mut findings = Vec::new();
    for (index, entry) in raw.matches.unwrap_or_default().into_iter().enumerate() {
        let required = |value: Option<String>, field: &'static str| {
            value
                .filter(|v| !v.is_empty())
                .ok_or(GrypeError::MissingField { index, field })
        };
        let vulnerability = entry.vulnerability.unwrap_or_default();
        let artifact = entry.artifact.unwrap_or_default();
        let kind = artifact.kind.unwrap_or_default();
        let purl = artifact.purl.filter(|p| !p.is_empty());
        let Some((class, report_type)) = classify(&kind, purl.as_deref(), os.as_ref()) else {
            // Binaries matched by CPE and the like: nothing a package patcher can update.
            continue;
        };
        let fix = vulnerability.fix.unwrap_or_default();
        let path = artifact
            .locations
            .iter()
            .find(|l| l.annotations.evidence.as_deref() == Some("primary"))
            .or_else(|| artifact.locations.first())
            .and_then(|l| l.path.clone())
            .filter(|p| !p.is_empty());
        let report_target = match class {
            FindingClass::OsPkgs => match &os {
                Some((family, version)) => format!("{artifact_name} ({family} {version})"),
                None => artifact_name.clone(),
            },
            FindingClass::LangPkgs => language_target(&report_type)
                .map(str::to_owned)
                .or_else(|| path.clone())
                .unwrap_or_default(),
        };
        findings.push(Finding {
            vulnerability_id: required(vulnerability.id, "vulnerability.id")?,
            package_name: required(artifact.name, "artifact.name")?,
            installed_version: required(artifact.version, "artifact.version")?,
            fixed_versions: fix
                .versions
                .into_iter()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect(),
            // Grype points OS packages at the package database; Trivy, whose meaning the
            // patchers expect, gives them no path.
            pkg_path: match class {
                FindingClass::OsPkgs => None,
                FindingClass::LangPkgs => path.map(|p| {
                    if p.starts_with('/') {
                        p
                    } else {
                        format!("/{p}")
                    }
                }),
            },
            report_target,
            report_type,
            class,
            purl,
            severity: vulnerability
                .severity
                .filter(|s| !s.is_empty())
                .map(|s| s.to_ascii_uppercase())
                .unwrap_or_else(|| "UNKNOWN".to_owned()),
            status: match fix.state.as_deref() {
                Some("fixed") => "fixed",
                Some("not-fixed") => "affected",
                Some("wont-fix") => "will_not_fix",
                Some("unknown") => "unknown",
                _ => "",
            }
            .to_owned(),
        });
    }
    Ok(Report {
        artifact_name,
        os,
        architecture: target.architecture.filter(|a| !a.is_empty()),
        findings,
    })
}

/// Grype's package type as Trivy's class and result type.
fn classify(
    kind: &str,
    purl: Option<&str>,
    os: Option<&(String, String)>,
) -> Option<(FindingClass, String)> {
    let language = match kind {
        "deb" | "apk" | "rpm" => {
            // The distribution the scanner saw; without one, the PURL's namespace says it.
            let family = os.map(|(family, _)| family.clone()).or_else(|| {
                purl.and_then(|p| p.strip_prefix("pkg:"))
                    .and_then(|p| p.split('/').nth(1))
                    .map(|namespace| trivy_family(namespace).to_owned())
            })?;
            return Some((FindingClass::OsPkgs, family));
        }
        "python" => "python-pkg",
        "npm" => "node-pkg",
        "go-module" => "gobinary",
        "dotnet" => "dotnet-core",
        "java-archive" => "jar",
        "gem" => "gemspec",
        "rust-crate" => "cargo",
        "php-composer" => "composer",
        "" | "binary" | "unknown" => return None,
        other => other,
    };
    Some((FindingClass::LangPkgs, language.to_owned()))
}

/// Grype names distributions by their os-release ID; Trivy by its own family names.
fn trivy_family(id: &str) -> &str {
    match id {
        "rhel" => "redhat",
        "rocky" | "rockylinux" => "rocky",
        "almalinux" => "alma",
        "amzn" | "amazonlinux" => "amazon",
        "ol" | "oraclelinux" => "oracle",
        "mariner" => "cbl-mariner",
        "sles" => "suse linux enterprise server",
        "opensuse-leap" => "opensuse.leap",
        "opensuse-tumbleweed" => "opensuse.tumbleweed",
        other => other,
    }
}

#[derive(Deserialize)]
struct RawReport {
    matches: Option<Vec<RawMatch>>,
    source: Option<RawSource>,
    distro: Option<RawDistro>,
}

#[derive(Deserialize)]
struct RawSource {
    target: Option<RawTarget>,
}

/// `source.target` of an image scan; for a directory scan it is a string, which says nothing
/// the engine needs.
#[derive(Default, Deserialize)]
#[serde(from = "serde_json::Value")]
struct RawTarget {
    user_input: Option<String>,
    architecture: Option<String>,
}

impl From<serde_json::Value> for RawTarget {
    fn from(value: serde_json::Value) -> Self {
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        RawTarget {
            user_input: text("userInput"),
            architecture: text("architecture"),
        }
    }
}

#[derive(Deserialize)]
struct RawDistro {
    name: Option<String>,
    version: Option<String>,
}

#[derive(Deserialize)]
struct RawMatch {
    vulnerability: Option<RawVulnerability>,
    artifact: Option<RawArtifact>,
}

#[derive(Default, Deserialize)]
struct RawVulnerability {
    id: Option<String>,
    severity: Option<String>,
    fix: Option<RawFix>,
}

#[derive(Default, Deserialize)]
struct RawFix {
    #[serde(default)]
    versions: Vec<String>,
    state: Option<String>,
}

#[derive(Default, Deserialize)]
struct RawArtifact {
    name: Option<String>,
    version: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    purl: Option<String>,
    #[serde(default)]
    locations: Vec<RawLocation>,
}

#[derive(Deserialize)]
struct RawLocation {
    path: Option<String>,
    #[serde(default)]
    annotations: RawAnnotations,
}

#[derive(Default, Deserialize)]
struct RawAnnotations {
    evidence: Option<String>,
}
