//! Copa's native update manifests (`apiVersion` `v1alpha1` and `v1alpha2`): the list of
//! packages to update, which Copa's scanner plugins also print.

use serde::Deserialize;
use serde_json::Value;

use super::{Finding, FindingClass, Report, TopLevelError, json_object, language_target};

/// Why a byte string is not a usable update manifest. Every message is a single line.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error(transparent)]
    TopLevel(#[from] TopLevelError),
    #[error("not a Copa update manifest (apiVersion missing)")]
    MissingApiVersion,
    #[error("unsupported update manifest apiVersion {0} (copa-host reads v1alpha1 and v1alpha2)")]
    UnsupportedApiVersion(String),
    #[error("invalid update manifest: {0}")]
    Invalid(serde_json::Error),
    #[error("{list}[{index}] has no {field}")]
    MissingField {
        list: &'static str,
        index: usize,
        field: &'static str,
    },
}

/// Parses an update manifest. Its entries are findings with a fix: the manifest carries no
/// path, PURL or severity, so the patchers find the packages by name and version.
pub fn parse(json: &[u8]) -> Result<Report, NativeError> {
    let object = json_object(json, "Copa update manifest")?;
    let version = match object.get("apiVersion") {
        None | Some(Value::Null) => return Err(NativeError::MissingApiVersion),
        Some(Value::String(v)) if v == "v1alpha1" || v == "v1alpha2" => v.clone(),
        Some(other) => return Err(NativeError::UnsupportedApiVersion(other.to_string())),
    };
    let raw: RawManifest = serde_json::from_slice(json).map_err(NativeError::Invalid)?;
    let metadata = raw.metadata.unwrap_or_default();
    let os_type = metadata
        .os
        .as_ref()
        .and_then(|os| os.kind.clone())
        .filter(|t| !t.is_empty())
        .map(|t| t.to_ascii_lowercase());
    let os = match (&os_type, metadata.os.and_then(|os| os.version)) {
        (Some(kind), Some(version)) if !version.is_empty() => Some((kind.clone(), version)),
        _ => None,
    };
    let os_target = os
        .as_ref()
        .map(|(family, version)| format!("{family} {version}"))
        .unwrap_or_default();

    // v1alpha1 has OS updates and (later) Node.js updates; v1alpha2 OS and typed language ones.
    let lists: [(&'static str, Option<Vec<RawUpdate>>, FindingClass); 2] = if version == "v1alpha1"
    {
        [
            ("updates", raw.updates, FindingClass::OsPkgs),
            ("nodeUpdates", raw.node_updates, FindingClass::LangPkgs),
        ]
    } else {
        [
            ("osupdates", raw.os_updates, FindingClass::OsPkgs),
            ("langupdates", raw.lang_updates, FindingClass::LangPkgs),
        ]
    };
    let mut findings = Vec::new();
    for (list, updates, class) in lists {
        for (index, update) in updates.unwrap_or_default().into_iter().enumerate() {
            let required = |value: Option<String>, field: &'static str| {
                value
                    .filter(|v| !v.is_empty())
                    .ok_or(NativeError::MissingField { list, index, field })
            };
            let report_type = match (class, list) {
                (FindingClass::OsPkgs, _) => required(os_type.clone(), "metadata.os.type")?,
                (FindingClass::LangPkgs, "nodeUpdates") => "node-pkg".to_owned(),
                (FindingClass::LangPkgs, _) => trivy_type(&required(update.kind, "type")?),
            };
            let report_target = match class {
                FindingClass::OsPkgs => os_target.clone(),
                FindingClass::LangPkgs => {
                    language_target(&report_type).unwrap_or_default().to_owned()
                }
            };
            let fixed_versions: Vec<String> = update
                .fixed_version
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect();
            findings.push(Finding {
                vulnerability_id: required(update.vulnerability_id, "vulnerabilityID")?,
                package_name: required(update.name, "name")?,
                installed_version: required(update.installed_version, "installedVersion")?,
                status: if fixed_versions.is_empty() {
                    "affected"
                } else {
                    "fixed"
                }
                .to_owned(),
                fixed_versions,
                pkg_path: None,
                report_target,
                report_type,
                class,
                purl: None,
                severity: "UNKNOWN".to_owned(),
            });
        }
    }
    Ok(Report {
        artifact_name: String::new(),
        os,
        architecture: metadata
            .config
            .and_then(|c| c.arch)
            .filter(|a| !a.is_empty()),
        findings,
    })
}

/// Copa writes Trivy's result type for language updates, or a short name in hand-written
/// manifests (its own tests use `python`).
fn trivy_type(kind: &str) -> String {
    match kind {
        "python" | "pip" | "pypi" => "python-pkg",
        "node" | "nodejs" | "npm" => "node-pkg",
        "dotnet" => "dotnet-core",
        "go" | "golang" => "gobinary",
        other => other,
    }
    .to_owned()
}

#[derive(Deserialize)]
struct RawManifest {
    metadata: Option<RawMetadata>,
    updates: Option<Vec<RawUpdate>>,
    #[serde(rename = "nodeUpdates")]
    node_updates: Option<Vec<RawUpdate>>,
    #[serde(rename = "osupdates")]
    os_updates: Option<Vec<RawUpdate>>,
    #[serde(rename = "langupdates")]
    lang_updates: Option<Vec<RawUpdate>>,
}

#[derive(Default, Deserialize)]
struct RawMetadata {
    os: Option<RawOs>,
    config: Option<RawConfig>,
}

#[derive(Deserialize)]
struct RawOs {
    #[serde(rename = "type")]
    kind: Option<String>,
    version: Option<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    arch: Option<String>,
}

#[derive(Deserialize)]
struct RawUpdate {
    name: Option<String>,
    #[serde(rename = "installedVersion")]
    installed_version: Option<String>,
    #[serde(rename = "fixedVersion")]
    fixed_version: Option<String>,
    #[serde(rename = "vulnerabilityID")]
    vulnerability_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}
