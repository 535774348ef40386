//! Trivy JSON reports (SchemaVersion 2).

use serde::Deserialize;
use serde_json::Value;

use super::{Finding, FindingClass, Report};

/// Why a byte string is not a usable Trivy report. Every message is a single line.
#[derive(Debug, thiserror::Error)]
pub enum TrivyError {
    #[error("malformed JSON: {0}")]
    Json(serde_json::Error),
    #[error("not a Trivy JSON report: top level is {0}, not an object")]
    NotObject(&'static str),
    #[error("not a Trivy JSON report (SchemaVersion missing)")]
    MissingSchemaVersion,
    #[error("unsupported Trivy SchemaVersion {0} (copa-host reads version 2)")]
    UnsupportedSchemaVersion(String),
    #[error("invalid Trivy report: {0}")]
    Invalid(serde_json::Error),
    #[error("result {target:?}: Vulnerabilities[{index}] has no {field}")]
    MissingField {
        target: String,
        index: usize,
        field: &'static str,
    },
}

/// Parses a Trivy JSON report (SchemaVersion 2) into its OS and language-package findings.
pub fn parse(json: &[u8]) -> Result<Report, TrivyError> {
    check_header(json)?;
    // Parsing the bytes a second time (rather than converting the checked `Value`) keeps
    // serde's line and column in errors about fields of the wrong type.
    let raw: RawReport = serde_json::from_slice(json).map_err(TrivyError::Invalid)?;

    let mut findings = Vec::new();
    for result in raw.results.unwrap_or_default() {
        let class = match result.class.as_deref() {
            Some("os-pkgs") => FindingClass::OsPkgs,
            Some("lang-pkgs") => FindingClass::LangPkgs,
            // Misconfigurations, secrets and licenses are nothing a package patcher can fix.
            _ => continue,
        };
        let target = result.target.unwrap_or_default();
        let report_type = result.kind.unwrap_or_default();
        for (index, vuln) in result
            .vulnerabilities
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let required = |value: Option<String>, field: &'static str| {
                value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| TrivyError::MissingField {
                        target: target.clone(),
                        index,
                        field,
                    })
            };
            findings.push(Finding {
                vulnerability_id: required(vuln.vulnerability_id, "VulnerabilityID")?,
                package_name: required(vuln.pkg_name, "PkgName")?,
                installed_version: required(vuln.installed_version, "InstalledVersion")?,
                fixed_versions: vuln
                    .fixed_version
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .collect(),
                pkg_path: vuln.pkg_path.filter(|p| !p.is_empty()).map(|p| {
                    if p.starts_with('/') {
                        p
                    } else {
                        format!("/{p}")
                    }
                }),
                report_target: target.clone(),
                report_type: report_type.clone(),
                class,
                purl: vuln
                    .pkg_identifier
                    .and_then(|id| id.purl)
                    .filter(|p| !p.is_empty()),
                severity: vuln
                    .severity
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "UNKNOWN".to_owned()),
                status: vuln.status.unwrap_or_default(),
            });
        }
    }

    let metadata = raw.metadata.unwrap_or_default();
    Ok(Report {
        artifact_name: raw.artifact_name.unwrap_or_default(),
        os: metadata.os.and_then(|os| match (os.family, os.name) {
            (Some(family), Some(name)) if !family.is_empty() && !name.is_empty() => {
                Some((family, name))
            }
            _ => None,
        }),
        architecture: metadata
            .image_config
            .and_then(|config| config.architecture)
            .filter(|a| !a.is_empty()),
        findings,
    })
}

/// Checks the shape and version before the typed parse, so a report of another schema is
/// refused for its version rather than for whichever field happens to differ first.
fn check_header(json: &[u8]) -> Result<(), TrivyError> {
    let value: Value = serde_json::from_slice(json).map_err(TrivyError::Json)?;
    let object = match &value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(TrivyError::NotObject("an array")),
        Value::String(_) => return Err(TrivyError::NotObject("a string")),
        Value::Number(_) => return Err(TrivyError::NotObject("a number")),
        Value::Bool(_) => return Err(TrivyError::NotObject("a boolean")),
        Value::Null => return Err(TrivyError::NotObject("null")),
    };
    match object.get("SchemaVersion") {
        None | Some(Value::Null) => Err(TrivyError::MissingSchemaVersion),
        Some(version) if version.as_u64() == Some(2) => Ok(()),
        Some(version) => Err(TrivyError::UnsupportedSchemaVersion(version.to_string())),
    }
}

#[derive(Deserialize)]
struct RawReport {
    #[serde(rename = "ArtifactName")]
    artifact_name: Option<String>,
    #[serde(rename = "Metadata")]
    metadata: Option<RawMetadata>,
    #[serde(rename = "Results")]
    results: Option<Vec<RawResult>>,
}

#[derive(Default, Deserialize)]
struct RawMetadata {
    #[serde(rename = "OS")]
    os: Option<RawOs>,
    #[serde(rename = "ImageConfig")]
    image_config: Option<RawImageConfig>,
}

#[derive(Deserialize)]
struct RawOs {
    #[serde(rename = "Family")]
    family: Option<String>,
    #[serde(rename = "Name")]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawImageConfig {
    architecture: Option<String>,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(rename = "Target")]
    target: Option<String>,
    #[serde(rename = "Class")]
    class: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Vulnerabilities")]
    vulnerabilities: Option<Vec<RawVulnerability>>,
}

#[derive(Deserialize)]
struct RawVulnerability {
    #[serde(rename = "VulnerabilityID")]
    vulnerability_id: Option<String>,
    #[serde(rename = "PkgName")]
    pkg_name: Option<String>,
    #[serde(rename = "InstalledVersion")]
    installed_version: Option<String>,
    #[serde(rename = "FixedVersion")]
    fixed_version: Option<String>,
    #[serde(rename = "PkgPath")]
    pkg_path: Option<String>,
    #[serde(rename = "PkgIdentifier")]
    pkg_identifier: Option<RawPkgIdentifier>,
    #[serde(rename = "Severity")]
    severity: Option<String>,
    #[serde(rename = "Status")]
    status: Option<String>,
}

#[derive(Deserialize)]
struct RawPkgIdentifier {
    #[serde(rename = "PURL")]
    purl: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::shared_report;

    fn parse_shared(name: &str) -> Report {
        crate::report::read(&shared_report(name), &crate::report::Scanner::Trivy)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_err(json: &str) -> String {
        parse(json.as_bytes())
            .expect_err("report should be refused")
            .to_string()
    }

    fn finding<'a>(report: &'a Report, id: &str, package: &str) -> &'a Finding {
        report
            .findings
            .iter()
            .find(|f| f.vulnerability_id == id && f.package_name == package)
            .unwrap_or_else(|| panic!("no finding {id} for {package}"))
    }

    #[test]
    fn python_debian_report() {
        let report = parse_shared("trivy-python-debian13-fueltime.json");
        assert_eq!(report.artifact_name, "fueltime-fueltime:latest");
        assert_eq!(report.os, Some(("debian".to_owned(), "13.2".to_owned())));
        assert_eq!(report.architecture.as_deref(), Some("amd64"));
        assert_eq!(report.findings.len(), 74);

        let (os, lang): (Vec<&Finding>, Vec<&Finding>) = report
            .findings
            .iter()
            .partition(|f| f.class == FindingClass::OsPkgs);
        assert_eq!(os.len(), 68);
        assert!(os.iter().all(|f| f.report_type == "debian"
            && f.report_target == "fueltime-fueltime:latest (debian 13.2)"
            && f.pkg_path.is_none()));
        assert_eq!(lang.len(), 6);
        assert!(lang.iter().all(|f| {
            f.report_type == "python-pkg"
                && f.report_target == "Python"
                && f.purl_type() == Some("pypi")
                && f.pkg_path
                    .as_deref()
                    .is_some_and(|p| p.starts_with("/usr/local/lib/python3.11/site-packages/"))
        }));

        assert_eq!(
            finding(&report, "CVE-2026-21860", "Werkzeug"),
            &Finding {
                vulnerability_id: "CVE-2026-21860".to_owned(),
                package_name: "Werkzeug".to_owned(),
                installed_version: "3.1.4".to_owned(),
                fixed_versions: vec!["3.1.5".to_owned()],
                pkg_path: Some(
                    "/usr/local/lib/python3.11/site-packages/werkzeug-3.1.4.dist-info/METADATA"
                        .to_owned()
                ),
                report_target: "Python".to_owned(),
                report_type: "python-pkg".to_owned(),
                class: FindingClass::LangPkgs,
                purl: Some("pkg:pypi/werkzeug@3.1.4".to_owned()),
                severity: "MEDIUM".to_owned(),
                status: "fixed".to_owned(),
            }
        );

        let unfixed = finding(&report, "CVE-2025-14104", "bsdutils");
        assert_eq!(unfixed.installed_version, "1:2.41-5");
        assert_eq!(unfixed.status, "affected");
        assert!(unfixed.fixed_versions.is_empty());
        assert_eq!(unfixed.purl_type(), Some("deb"));

        let openssl = finding(&report, "CVE-2025-15467", "openssl");
        assert_eq!(openssl.fixed_versions, ["3.5.4-1~deb13u2"]);
    }

    #[test]
    fn node_alpine_report() {
        let report = parse_shared("trivy-node-alpine-nodejs-project.json");
        assert_eq!(report.artifact_name, "purevdorj4422/nodejs-project:43");
        assert_eq!(report.os, Some(("alpine".to_owned(), "3.21.3".to_owned())));
        assert_eq!(report.findings.len(), 9);
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.class == FindingClass::LangPkgs
                    && f.report_type == "node-pkg"
                    && f.report_target == "Node.js"
                    && f.purl_type() == Some("npm"))
        );

        assert_eq!(
            finding(&report, "CVE-2022-24999", "qs").fixed_versions,
            [
                "6.10.3", "6.9.7", "6.8.3", "6.7.3", "6.6.1", "6.5.3", "6.4.1", "6.3.3", "6.2.4"
            ]
        );
        assert_eq!(
            finding(&report, "CVE-2024-45296", "path-to-regexp").fixed_versions,
            ["1.9.0", "0.1.10", "8.0.0", "3.3.0", "6.3.0"]
        );
        // A range, not a list: it must stay one entry.
        assert_eq!(
            finding(&report, "NSWG-ECO-516", "lodash").fixed_versions,
            [">=4.17.19"]
        );

        let cross_spawn = finding(&report, "CVE-2024-21538", "cross-spawn");
        assert_eq!(cross_spawn.fixed_versions, ["7.0.5", "6.0.6"]);
        assert_eq!(
            cross_spawn.pkg_path.as_deref(),
            Some("/usr/local/lib/node_modules/npm/node_modules/cross-spawn/package.json")
        );
        assert_eq!(
            finding(&report, "CVE-2024-45590", "body-parser")
                .pkg_path
                .as_deref(),
            Some("/app/node_modules/body-parser/package.json")
        );
    }

    #[test]
    fn gobinary_report_without_vulnerabilities() {
        let report = parse_shared("trivy-gobinary-alpine-extension-k6.json");
        assert_eq!(report.artifact_name, "ghcr.io/steadybit/extension-k6:main");
        assert_eq!(report.os, Some(("alpine".to_owned(), "3.23.4".to_owned())));
        assert_eq!(report.architecture.as_deref(), Some("amd64"));
        assert!(report.findings.is_empty());
    }

    #[test]
    fn minimal_report_fills_defaults_and_ignores_the_rest() {
        let report = parse(
            br#"{
              "SchemaVersion": 2,
              "Unknown": {"nested": [1, 2]},
              "Metadata": {"OS": {"Family": "alpine"}, "ImageConfig": {"os": "linux"}},
              "Results": [
                {"Target": "etc/app.yaml", "Class": "config", "Type": "yaml",
                 "Misconfigurations": [{"ID": "KSV001"}]},
                {"Target": "secrets", "Class": "secret",
                 "Vulnerabilities": [{"VulnerabilityID": "not-a-package"}]},
                {"Target": "Python", "Class": "lang-pkgs", "Type": "python-pkg",
                 "Vulnerabilities": null},
                {"Target": "Java", "Class": "lang-pkgs", "Type": "jar"},
                {"Target": "/opt/app", "Class": "lang-pkgs", "Type": "gobinary",
                 "Vulnerabilities": [
                   {"VulnerabilityID": "GO-1", "PkgName": "golang.org/x/net",
                    "InstalledVersion": "v0.1.0", "FixedVersion": " , 0.2.0,, 0.3.0 ,",
                    "PkgPath": "", "PkgIdentifier": {"UID": "abc"}, "Extra": true},
                   {"VulnerabilityID": "GO-2", "PkgName": "stdlib",
                    "InstalledVersion": "1.21.0", "PkgPath": "/opt/app",
                    "Severity": "", "Status": "affected"}
                 ]}
              ]
            }"#,
        )
        .unwrap();
        assert_eq!(report.artifact_name, "");
        assert_eq!(report.os, None);
        assert_eq!(report.architecture, None);
        assert_eq!(report.findings.len(), 2);

        let first = &report.findings[0];
        assert_eq!(first.fixed_versions, ["0.2.0", "0.3.0"]);
        assert_eq!(first.pkg_path, None);
        assert_eq!(first.purl, None);
        assert_eq!(first.severity, "UNKNOWN");
        assert_eq!(first.status, "");
        assert_eq!(first.report_target, "/opt/app");

        let second = &report.findings[1];
        assert!(second.fixed_versions.is_empty());
        assert_eq!(second.pkg_path.as_deref(), Some("/opt/app"));
        assert_eq!(second.severity, "UNKNOWN");
        assert_eq!(second.status, "affected");
    }

    #[test]
    fn absent_or_null_results_mean_no_findings() {
        for json in [
            r#"{"SchemaVersion": 2}"#,
            r#"{"SchemaVersion": 2, "Results": null}"#,
        ] {
            assert!(parse(json.as_bytes()).unwrap().findings.is_empty());
        }
    }

    #[test]
    fn malformed_json_is_refused_with_its_position() {
        assert_eq!(
            parse_err("{\n  \"SchemaVersion\": 2,\n  \"Results\": [\n}"),
            "malformed JSON: expected value at line 4 column 1"
        );
        assert_eq!(
            parse_err(""),
            "malformed JSON: EOF while parsing a value at line 1 column 0"
        );
    }

    #[test]
    fn non_object_is_refused() {
        assert_eq!(
            parse_err(r#"[{"SchemaVersion": 2}]"#),
            "not a Trivy JSON report: top level is an array, not an object"
        );
        assert_eq!(
            parse_err("2"),
            "not a Trivy JSON report: top level is a number, not an object"
        );
    }

    #[test]
    fn schema_version_must_be_two() {
        assert_eq!(
            parse_err(r#"{"SchemaVersion": 1, "Results": "whatever v1 had"}"#),
            "unsupported Trivy SchemaVersion 1 (copa-host reads version 2)"
        );
        assert_eq!(
            parse_err(r#"{"SchemaVersion": "2"}"#),
            r#"unsupported Trivy SchemaVersion "2" (copa-host reads version 2)"#
        );
        assert_eq!(
            parse_err(r#"{"ArtifactName": "x", "Results": []}"#),
            "not a Trivy JSON report (SchemaVersion missing)"
        );
    }

    #[test]
    fn vulnerability_without_required_field_names_target_and_index() {
        let json = r#"{"SchemaVersion": 2, "Results": [
            {"Target": "Python", "Class": "lang-pkgs", "Type": "python-pkg", "Vulnerabilities": [
              {"VulnerabilityID": "CVE-1", "PkgName": "a", "InstalledVersion": "1"},
              {"VulnerabilityID": "CVE-2", "InstalledVersion": "1"}
            ]}]}"#;
        assert_eq!(
            parse_err(json),
            r#"result "Python": Vulnerabilities[1] has no PkgName"#
        );
        assert_eq!(
            parse_err(&json.replace(r#""VulnerabilityID": "CVE-1", "#, "")),
            r#"result "Python": Vulnerabilities[0] has no VulnerabilityID"#
        );
        assert_eq!(
            parse_err(&json.replace(
                r#""PkgName": "a", "InstalledVersion": "1""#,
                r#""PkgName": "a", "InstalledVersion": """#
            )),
            r#"result "Python": Vulnerabilities[0] has no InstalledVersion"#
        );
    }

    #[test]
    fn field_of_wrong_type_is_refused_with_its_position() {
        assert_eq!(
            parse_err("{\"SchemaVersion\": 2,\n\"Results\": {}}"),
            "invalid Trivy report: invalid type: map, expected a sequence at line 2 column 11"
        );
    }

    #[test]
    fn file_errors_are_one_line_and_name_the_file() {
        let missing =
            std::env::temp_dir().join(format!("copa-report-missing-{}.json", std::process::id()));
        let err = crate::report::read(&missing, &crate::report::Scanner::Trivy).unwrap_err();
        let expected = format!(
            "report {}: cannot read: No such file or directory (os error 2)",
            missing.display()
        );
        assert_eq!(err.to_string(), expected);
        assert_eq!(format!("{err:#}"), expected);

        let v1 = std::env::temp_dir().join(format!("copa-report-v1-{}.json", std::process::id()));
        std::fs::write(&v1, r#"{"SchemaVersion": 1}"#).unwrap();
        let err = crate::report::read(&v1, &crate::report::Scanner::Trivy).unwrap_err();
        std::fs::remove_file(&v1).unwrap();
        let expected = format!(
            "report {}: unsupported Trivy SchemaVersion 1 (copa-host reads version 2)",
            v1.display()
        );
        assert_eq!(err.to_string(), expected);
        assert_eq!(format!("{err:#}"), expected);
    }
}
