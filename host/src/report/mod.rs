//! Vulnerability reports: every input format (Trivy JSON, Grype JSON, Copa's native update
//! manifests, Copa-style scanner plugins) read into one model of findings that the engine
//! routes to patchers. Routing keys (`report_type`, the PURL type) use Trivy's vocabulary, so
//! each format maps its own names onto it.

mod grype;
mod native;
mod plugin;
mod trivy;

use std::path::Path;

use anyhow::{anyhow, bail};

use crate::setting::Setting;

/// Which side of a report a finding came from: the distribution's packages or an application's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingClass {
    OsPkgs,
    LangPkgs,
}

/// One vulnerable package as the scanner reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub vulnerability_id: String,
    pub package_name: String,
    pub installed_version: String,
    /// One fix per release line (Trivy's `FixedVersion` split on `,`, Grype's `fix.versions`).
    pub fixed_versions: Vec<String>,
    /// Absolute path inside the image of the package's metadata, when the scanner names one.
    pub pkg_path: Option<String>,
    pub report_target: String,
    /// Trivy's result type (`debian`, `python-pkg`, `node-pkg`, ...), whatever the format.
    pub report_type: String,
    pub class: FindingClass,
    pub purl: Option<String>,
    pub severity: String,
    /// Trivy's vulnerability status (`fixed`, `affected`, `will_not_fix`, ...).
    pub status: String,
}

impl Finding {
    /// The package-URL type (`pypi`, `npm`, `deb`, ...), the ecosystem a patcher is chosen by.
    pub fn purl_type(&self) -> Option<&str> {
        let rest = self.purl.as_deref()?.strip_prefix("pkg:")?;
        // The purl spec tells parsers to accept and ignore slashes after the scheme.
        let (kind, _) = rest.trim_start_matches('/').split_once('/')?;
        (!kind.is_empty()).then_some(kind)
    }
}

/// The parts of a report the engine needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub artifact_name: String,
    /// `(Family, Name)` in Trivy's words, e.g. `("debian", "13.2")`.
    pub os: Option<(String, String)>,
    pub architecture: Option<String>,
    pub findings: Vec<Finding>,
}

/// The format of `-r`, named as Copa names it (`--scanner`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scanner {
    Trivy,
    Grype,
    /// Copa's update manifest, `v1alpha1` or `v1alpha2`.
    Native,
    /// A Copa-style scanner plugin: the executable `copa-NAME` turns the report into an update
    /// manifest on its standard output.
    Plugin(String),
}

impl std::str::FromStr for Scanner {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "trivy" => Scanner::Trivy,
            "grype" => Scanner::Grype,
            "native" => Scanner::Native,
            // The name becomes part of a program name looked up on PATH: nothing that could
            // name a path or smuggle an option.
            _ if !name.is_empty()
                && !name.starts_with('-')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
            {
                Scanner::Plugin(name.to_owned())
            }
            _ => bail!(
                "{} {name:?}: expected trivy, grype, native or the name of a scanner plugin \
                 (lowercase letters, digits and -, run as copa-NAME)",
                Setting::Scanner
            ),
        })
    }
}

impl std::fmt::Display for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scanner::Trivy => f.write_str("trivy"),
            Scanner::Grype => f.write_str("grype"),
            Scanner::Native => f.write_str("native"),
            Scanner::Plugin(name) => f.write_str(name),
        }
    }
}

/// Reads the report at `path` in the format of `scanner`; every error is one line naming the
/// file (or the scanner plugin).
pub fn read(path: &Path, scanner: &Scanner) -> anyhow::Result<Report> {
    if let Scanner::Plugin(name) = scanner {
        let manifest = plugin::run(name, path)?;
        return native::parse(&manifest)
            .map_err(|e| anyhow!("scanner plugin copa-{name}: its output: {e}"));
    }
    let bytes =
        std::fs::read(path).map_err(|e| anyhow!("report {}: cannot read: {e}", path.display()))?;
    let parsed = match scanner {
        Scanner::Trivy => trivy::parse(&bytes).map_err(anyhow::Error::from),
        Scanner::Grype => grype::parse(&bytes).map_err(anyhow::Error::from),
        Scanner::Native => native::parse(&bytes).map_err(anyhow::Error::from),
        Scanner::Plugin(_) => unreachable!("handled above"),
    };
    parsed.map_err(|e| anyhow!("report {}: {e}", path.display()))
}

/// The report at `path`, or, when `path` is a directory, every report in it (one per platform:
/// each must name its architecture, and no two the same).
pub fn read_all(path: &Path, scanner: &Scanner) -> anyhow::Result<Vec<Report>> {
    if !path.is_dir() {
        return Ok(vec![read(path, scanner)?]);
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| anyhow!("report directory {}: {e}", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut reports: Vec<Report> = Vec::new();
    for file in files {
        let report = read(&file, scanner)?;
        let Some(architecture) = report.architecture.clone() else {
            anyhow::bail!(
                "report {}: names no architecture, which a report directory needs (one report per platform)",
                file.display()
            );
        };
        if reports
            .iter()
            .any(|r| r.architecture.as_deref() == Some(&architecture))
        {
            anyhow::bail!(
                "report directory {}: two reports for {architecture}",
                path.display()
            );
        }
        reports.push(report);
    }
    if reports.is_empty() {
        anyhow::bail!("report directory {} holds no report", path.display());
    }
    Ok(reports)
}

/// The top level of a JSON report of `format`, which every format requires to be an object.
fn json_object(
    json: &[u8],
    format: &'static str,
) -> Result<serde_json::Map<String, serde_json::Value>, TopLevelError> {
    use serde_json::Value;
    let kind = match serde_json::from_slice(json).map_err(TopLevelError::Json)? {
        Value::Object(object) => return Ok(object),
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    };
    Err(TopLevelError::NotObject { format, kind })
}

#[derive(Debug, thiserror::Error)]
pub enum TopLevelError {
    #[error("malformed JSON: {0}")]
    Json(serde_json::Error),
    #[error("not a {format}: top level is {kind}, not an object")]
    NotObject {
        format: &'static str,
        kind: &'static str,
    },
}

/// Trivy's name of the result that holds an ecosystem's findings, for formats that have none.
fn language_target(report_type: &str) -> Option<&'static str> {
    Some(match report_type {
        "python-pkg" | "pip" | "pipenv" | "poetry" | "uv" => "Python",
        "node-pkg" | "npm" | "yarn" | "pnpm" => "Node.js",
        "jar" | "pom" | "gradle" => "Java",
        "gemspec" | "bundler" => "Ruby",
        "dotnet-core" | "nuget" => ".NET",
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// `COPA_SHARED_DIR` lets a crate outside the checkout (or a different layout) find the
    /// shared reports; by default `shared/` sits beside the checkout.
    pub(crate) fn shared_report(name: &str) -> PathBuf {
        std::env::var_os("COPA_SHARED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
            .join("reports")
            .join(name)
    }

    /// Report fixtures of this crate's tests.
    pub(crate) fn test_data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data")
            .join(name)
    }

    fn with_purl(purl: Option<&str>) -> Finding {
        Finding {
            vulnerability_id: "CVE-1".to_owned(),
            package_name: "p".to_owned(),
            installed_version: "1".to_owned(),
            fixed_versions: Vec::new(),
            pkg_path: None,
            report_target: String::new(),
            report_type: String::new(),
            class: FindingClass::LangPkgs,
            purl: purl.map(str::to_owned),
            severity: "UNKNOWN".to_owned(),
            status: String::new(),
        }
    }

    #[test]
    fn purl_type_is_the_segment_after_the_scheme() {
        assert_eq!(
            with_purl(Some("pkg:pypi/urllib3@1.26.4")).purl_type(),
            Some("pypi")
        );
        assert_eq!(
            with_purl(Some("pkg:deb/debian/bsdutils@2.41-5?arch=amd64")).purl_type(),
            Some("deb")
        );
        assert_eq!(
            with_purl(Some("pkg:golang/github.com/x/y@v1")).purl_type(),
            Some("golang")
        );
        assert_eq!(
            with_purl(Some("pkg://npm/qs@6.5.2")).purl_type(),
            Some("npm")
        );
        assert_eq!(with_purl(None).purl_type(), None);
        assert_eq!(with_purl(Some("npm/qs@6.5.2")).purl_type(), None);
        assert_eq!(with_purl(Some("pkg:npm")).purl_type(), None);
    }

    #[test]
    fn scanner_names() {
        assert_eq!("trivy".parse::<Scanner>().unwrap(), Scanner::Trivy);
        assert_eq!("grype".parse::<Scanner>().unwrap(), Scanner::Grype);
        assert_eq!("native".parse::<Scanner>().unwrap(), Scanner::Native);
        assert_eq!(
            "my-scanner2".parse::<Scanner>().unwrap(),
            Scanner::Plugin("my-scanner2".into())
        );
        for bad in ["", "../x", "Qualys", "a b", "-x", "x/y", "x;y"] {
            let error = bad.parse::<Scanner>().unwrap_err().to_string();
            assert!(error.starts_with("the scanner setting"), "{bad}: {error}");
        }
    }

    fn fueltime_subset(with_fix_only: bool) -> Vec<Finding> {
        let trivy = read(
            &shared_report("trivy-python-debian13-fueltime.json"),
            &Scanner::Trivy,
        )
        .unwrap();
        let os: [(&str, &str); 6] = [
            ("CVE-2025-14104", "bsdutils"),
            ("CVE-2025-14831", "libgnutls30t64"),
            ("CVE-2025-9820", "libgnutls30t64"),
            ("CVE-2025-15467", "libssl3t64"),
            ("CVE-2025-15467", "openssl"),
            ("CVE-2026-25646", "libpng16-16t64"),
        ];
        trivy
            .findings
            .into_iter()
            .filter(|f| {
                f.class == FindingClass::LangPkgs
                    || os.contains(&(f.vulnerability_id.as_str(), f.package_name.as_str()))
            })
            .filter(|f| !with_fix_only || !f.fixed_versions.is_empty())
            .collect()
    }

    /// The same findings, ordered the same way whatever order a format lists them in.
    fn sorted(mut findings: Vec<Finding>) -> Vec<Finding> {
        findings.sort_by(|a, b| {
            (&a.vulnerability_id, &a.package_name, &a.pkg_path).cmp(&(
                &b.vulnerability_id,
                &b.package_name,
                &b.pkg_path,
            ))
        });
        findings
    }

    #[test]
    fn grype_report_gives_the_findings_of_the_equivalent_trivy_report() {
        let grype = read(&test_data("fueltime-subset.grype.json"), &Scanner::Grype).unwrap();
        assert_eq!(grype.artifact_name, "fueltime-fueltime:latest");
        assert_eq!(grype.os, Some(("debian".to_owned(), "13".to_owned())));
        assert_eq!(grype.architecture.as_deref(), Some("amd64"));
        let expected = sorted(fueltime_subset(false));
        assert_eq!(expected.len(), 12);
        let got = sorted(grype.findings);
        assert_eq!(got.len(), expected.len());
        for (got, want) in got.iter().zip(&expected) {
            // Grype writes its own PURLs (the epoch inside the version, the major release as
            // the distro) and names the OS target by its major release; the rest is the same.
            assert_eq!(got.purl_type(), want.purl_type(), "{want:?}");
            let comparable = |f: &Finding| Finding {
                purl: None,
                report_target: String::new(),
                ..f.clone()
            };
            assert_eq!(comparable(got), comparable(want));
        }
        let werkzeug = got.iter().find(|f| f.package_name == "Werkzeug").unwrap();
        assert_eq!(werkzeug.report_target, "Python");
        assert_eq!(werkzeug.purl.as_deref(), Some("pkg:pypi/werkzeug@3.1.4"));
    }

    #[test]
    fn native_manifest_gives_the_findings_of_the_equivalent_trivy_report() {
        let native = read(
            &test_data("fueltime-subset.v1alpha2.json"),
            &Scanner::Native,
        )
        .unwrap();
        assert_eq!(native.os, Some(("debian".to_owned(), "13.2".to_owned())));
        assert_eq!(native.architecture.as_deref(), Some("amd64"));
        // A manifest lists what to update: only findings with a fix, and no path, PURL or
        // severity, which the patchers do without.
        let expected = sorted(
            fueltime_subset(true)
                .into_iter()
                .map(|f| Finding {
                    pkg_path: None,
                    purl: None,
                    severity: "UNKNOWN".to_owned(),
                    report_target: String::new(),
                    ..f
                })
                .collect(),
        );
        assert_eq!(expected.len(), 11);
        let got = sorted(
            native
                .findings
                .into_iter()
                .map(|f| Finding {
                    report_target: String::new(),
                    ..f
                })
                .collect(),
        );
        assert_eq!(got, expected);
    }

    #[test]
    fn native_v1alpha1_has_os_and_node_updates() {
        let report = native::parse(
            br#"{"apiVersion": "v1alpha1",
                 "metadata": {"os": {"type": "Alpine", "version": "3.21.3"}, "config": {"arch": "arm64"}},
                 "updates": [{"name": "libssl3", "installedVersion": "3.3.3-r0",
                              "fixedVersion": "3.3.4-r0", "vulnerabilityID": "CVE-2025-1"}],
                 "nodeUpdates": [{"name": "qs", "installedVersion": "6.5.2",
                                  "fixedVersion": "6.10.3, 6.5.3", "vulnerabilityID": "CVE-2022-24999"}]}"#,
        )
        .unwrap();
        assert_eq!(report.os, Some(("alpine".to_owned(), "3.21.3".to_owned())));
        assert_eq!(report.architecture.as_deref(), Some("arm64"));
        let [os, node] = &report.findings[..] else {
            panic!("{:?}", report.findings)
        };
        assert_eq!(
            (os.class, os.report_type.as_str(), os.report_target.as_str()),
            (FindingClass::OsPkgs, "alpine", "alpine 3.21.3")
        );
        assert_eq!(os.fixed_versions, ["3.3.4-r0"]);
        assert_eq!(
            (
                node.class,
                node.report_type.as_str(),
                node.report_target.as_str()
            ),
            (FindingClass::LangPkgs, "node-pkg", "Node.js")
        );
        assert_eq!(node.fixed_versions, ["6.10.3", "6.5.3"]);
        assert_eq!(node.status, "fixed");
    }

    #[test]
    fn native_language_types_are_trivy_types() {
        let report = native::parse(
            br#"{"apiVersion": "v1alpha2", "metadata": {"os": {"type": "debian", "version": "12"}},
                 "osupdates": [],
                 "langupdates": [{"name": "requests", "installedVersion": "2.25.1",
                   "fixedVersion": "2.31.0", "vulnerabilityID": "CVE-2023-32681",
                   "type": "python", "class": "lang-pkgs"}]}"#,
        )
        .unwrap();
        assert_eq!(report.findings[0].report_type, "python-pkg");
        assert_eq!(report.findings[0].report_target, "Python");
    }

    fn read_err(scanner: Scanner, json: &str) -> String {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), json).unwrap();
        let error = read(file.path(), &scanner).unwrap_err();
        let text = format!("{error:#}");
        assert!(!text.contains('\n'), "{text}");
        let prefix = format!("report {}: ", file.path().display());
        text.strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{text}"))
            .to_owned()
    }

    #[test]
    fn malformed_grype_and_native_reports_are_refused_in_one_line() {
        assert_eq!(
            read_err(Scanner::Grype, "{\"matches\": ["),
            "malformed JSON: EOF while parsing a list at line 1 column 13"
        );
        assert_eq!(
            read_err(Scanner::Grype, "[]"),
            "not a Grype JSON report: top level is an array, not an object"
        );
        assert_eq!(
            read_err(Scanner::Grype, r#"{"SchemaVersion": 2, "Results": []}"#),
            "not a Grype JSON report (matches missing)"
        );
        assert_eq!(
            read_err(
                Scanner::Grype,
                r#"{"matches": [{"vulnerability": {"id": "CVE-1"}, "artifact": {"type": "npm", "version": "1"}}]}"#
            ),
            "matches[0] has no artifact.name"
        );
        assert_eq!(
            read_err(Scanner::Grype, r#"{"matches": {}}"#),
            "invalid Grype report: invalid type: map, expected a sequence at line 1 column 12"
        );
        assert_eq!(
            read_err(Scanner::Native, r#"{"updates": []}"#),
            "not a Copa update manifest (apiVersion missing)"
        );
        assert_eq!(
            read_err(Scanner::Native, r#"{"apiVersion": "v1beta1"}"#),
            r#"unsupported update manifest apiVersion "v1beta1" (copa-host reads v1alpha1 and v1alpha2)"#
        );
        assert_eq!(
            read_err(
                Scanner::Native,
                r#"{"apiVersion": "v1alpha2", "metadata": {"os": {"type": "debian", "version": "12"}},
                    "langupdates": [{"name": "x", "installedVersion": "1", "vulnerabilityID": "CVE-1"}]}"#
            ),
            "langupdates[0] has no type"
        );
        assert_eq!(
            read_err(
                Scanner::Native,
                r#"{"apiVersion": "v1alpha1", "updates": [{"name": "x", "installedVersion": "1", "vulnerabilityID": "CVE-1"}]}"#
            ),
            "updates[0] has no metadata.os.type"
        );
        // A Trivy report given as a manifest is refused, not read as an empty manifest.
        assert_eq!(
            read_err(Scanner::Native, r#"{"SchemaVersion": 2}"#),
            "not a Copa update manifest (apiVersion missing)"
        );
    }

    #[test]
    fn grype_skips_what_no_package_patcher_can_update() {
        let report = grype::parse(
            br#"{"matches": [
                 {"vulnerability": {"id": "CVE-1", "fix": {"versions": [], "state": "not-fixed"}},
                  "artifact": {"name": "app", "version": "1.0", "type": "binary"}},
                 {"vulnerability": {"id": "GHSA-1", "severity": "Negligible", "fix": {"versions": ["1.2.3"], "state": "fixed"}},
                  "artifact": {"name": "@babel/core", "version": "1.2.0", "type": "npm",
                               "purl": "pkg:npm/%40babel/core@1.2.0",
                               "locations": [{"path": "app/node_modules/@babel/core/package.json"}]}}],
               "source": {"type": "directory", "target": "/src"}}"#,
        )
        .unwrap();
        assert_eq!(report.artifact_name, "");
        assert_eq!(report.os, None);
        let [npm] = &report.findings[..] else {
            panic!("{:?}", report.findings)
        };
        assert_eq!(npm.report_type, "node-pkg");
        assert_eq!(npm.report_target, "Node.js");
        assert_eq!(npm.severity, "NEGLIGIBLE");
        assert_eq!(
            npm.pkg_path.as_deref(),
            Some("/app/node_modules/@babel/core/package.json")
        );
        assert_eq!(npm.purl_type(), Some("npm"));
    }
}
