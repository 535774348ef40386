//! The VEX document of a patch run (OpenVEX 0.2.0): one statement per vulnerability of the
//! report, about the patched image. A statement says `fixed` only when the update that claims
//! the fix was verified in the patched image; everything else stays `affected`, with what was
//! not done and why. copa-host never says `not_affected`: it did not analyse exploitability.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::NameRule;
use crate::report::{Finding, FindingClass, Report};
use crate::setting::Setting;
use crate::summary::{SkipRecord, Status, UpdateRecord};

/// The author when neither `--vex-author` nor `COPA_VEX_AUTHOR` names one.
pub const DEFAULT_AUTHOR: &str = "copa-host";

/// Where the document goes and who signs it.
#[derive(Clone, Debug)]
pub struct Settings {
    pub path: PathBuf,
    pub author: String,
}

/// The patched image the statements are about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// The repository as the user named it (`registry/path/name`), when there is one.
    pub repository: Option<String>,
    pub name: String,
    pub tag: Option<String>,
    /// `sha256:...`: the image ID in the Docker daemon, the manifest digest in an OCI layout.
    pub digest: String,
}

impl Product {
    /// `pkg:oci/NAME@sha256%3A...?repository_url=...&tag=...` (the purl spec's OCI type).
    pub fn purl(&self) -> String {
        let mut purl = format!(
            "pkg:oci/{}@{}",
            encode(&self.name.to_ascii_lowercase()),
            encode(&self.digest)
        );
        let mut qualifiers = Vec::new();
        if let Some(repository) = self.repository.as_ref().filter(|r| **r != self.name) {
            qualifiers.push(("repository_url", repository.clone()));
        }
        if let Some(tag) = &self.tag {
            qualifiers.push(("tag", tag.clone()));
        }
        push_qualifiers(&mut purl, &qualifiers);
        purl
    }
}

/// Where a patcher found the package of a finding: the update for it, if any, has the same
/// ecosystem (plugin), target and package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub ecosystem: String,
    pub target: String,
    pub package: String,
}

/// What became of one finding in the patched image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every place the package is was updated to a version that fixes the vulnerability, and
    /// the update was verified in the patched image. The versions now installed.
    Fixed { versions: Vec<String> },
    /// Still open: the versions now installed, and why.
    Open {
        versions: Vec<String>,
        reason: String,
    },
}

/// The outcome of `finding`, given where the patchers found its package and what became of
/// their updates; `names` is how the package names of the patcher the finding goes to compare.
/// Fixed needs, in every placement, a verified update whose fix list (the version-choice rule's
/// verdict) names the vulnerability.
pub fn outcome(
    finding: &Finding,
    names: &NameRule,
    placements: &[Placement],
    updates: &[UpdateRecord],
    skipped: &[SkipRecord],
) -> Outcome {
    let names_match = |a: &str, b: &str| names.same(a, b);
    let skip_reason = |placement: Option<&Placement>| {
        skipped
            .iter()
            .filter(|s| {
                names_match(&s.package, &finding.package_name)
                    && s.vulnerabilities.contains(&finding.vulnerability_id)
            })
            .find(|s| placement.is_none_or(|p| s.ecosystem == p.ecosystem && s.target == p.target))
            .map(|s| s.reason.clone())
    };
    if placements.is_empty() {
        return Outcome::Open {
            versions: vec![finding.installed_version.clone()],
            reason: skip_reason(None)
                .unwrap_or_else(|| "no patcher found the package in the image".to_owned()),
        };
    }
    let mut fixed_versions = Vec::new();
    let mut open_versions = Vec::new();
    let mut reason = None;
    for placement in placements {
        let update = updates.iter().find(|u| {
            u.ecosystem == placement.ecosystem
                && u.target == placement.target
                && names_match(&u.package, &placement.package)
        });
        let (version, open) = match update {
            Some(u)
                if u.status == Status::Patched && u.fixes.contains(&finding.vulnerability_id) =>
            {
                (u.to.clone(), None)
            }
            Some(u) if u.status == Status::Patched => (
                u.to.clone(),
                Some(match skip_reason(Some(placement)) {
                    Some(why) => format!("updated to {}, which does not fix it: {why}", u.to),
                    None => format!("updated to {}, which does not fix it", u.to),
                }),
            ),
            Some(u) if u.status == Status::Failed => (
                u.from.clone(),
                Some(format!(
                    "the update to {} failed: {}",
                    u.to,
                    u.error
                        .as_deref()
                        .unwrap_or("not verified in the patched image")
                )),
            ),
            Some(u) => (
                u.from.clone(),
                Some(format!("the update to {} was not applied", u.to)),
            ),
            None => (
                finding.installed_version.clone(),
                Some(
                    skip_reason(Some(placement))
                        .or_else(|| skip_reason(None))
                        .unwrap_or_else(|| "no update was planned for it".to_owned()),
                ),
            ),
        };
        match open {
            None => fixed_versions.push(version),
            Some(why) => {
                open_versions.push(version);
                reason.get_or_insert(why);
            }
        }
    }
    match reason {
        None => Outcome::Fixed {
            versions: dedup(fixed_versions),
        },
        Some(reason) => {
            // Every version now in the image is still affected somewhere: list them all.
            open_versions.extend(fixed_versions);
            Outcome::Open {
                versions: dedup(open_versions),
                reason,
            }
        }
    }
}

fn dedup(mut versions: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    versions.retain(|v| seen.insert(v.clone()));
    versions
}

/// The OpenVEX document: `outcomes[i]` is the outcome of `report.findings[i]`. `None` when the
/// report has no vulnerability to state anything about (OpenVEX needs at least one statement).
/// `declared_purl_type`: the package-URL type the patcher that handled a finding declares, used
/// for a package whose finding has no PURL and whose report type names no known one (a
/// third-party ecosystem).
pub fn document(
    report: &Report,
    outcomes: &[Outcome],
    declared_purl_type: &dyn Fn(&Finding) -> Option<String>,
    product: &Product,
    author: &str,
    timestamp: &str,
) -> Option<Value> {
    // One statement per vulnerability and status: a vulnerability fixed in one place and open
    // in another gets both, each with its own packages.
    let mut groups: BTreeMap<(&str, bool), Vec<(&Finding, &Outcome)>> = BTreeMap::new();
    for (finding, outcome) in report.findings.iter().zip(outcomes) {
        let fixed = matches!(outcome, Outcome::Fixed { .. });
        groups
            .entry((finding.vulnerability_id.as_str(), fixed))
            .or_default()
            .push((finding, outcome));
    }
    if groups.is_empty() {
        return None;
    }
    let product_id = product.purl();
    let statements: Vec<Value> = groups
        .into_iter()
        .map(|((vulnerability, fixed), members)| {
            let mut subcomponents: Vec<Value> = Vec::new();
            let mut notes: Vec<String> = Vec::new();
            for (finding, outcome) in &members {
                let (versions, note) = match outcome {
                    Outcome::Fixed { versions } => (
                        versions,
                        format!(
                            "{}{} updated to {}",
                            finding.package_name,
                            place(finding),
                            versions.join(", ")
                        ),
                    ),
                    Outcome::Open { versions, reason } => (
                        versions,
                        format!(
                            "{}{}: {reason}; {}",
                            finding.package_name,
                            place(finding),
                            remedy(finding)
                        ),
                    ),
                };
                let declared = declared_purl_type(finding);
                for version in versions {
                    let purl = package_purl(finding, version, report, declared.as_deref());
                    let id = json!({"@id": purl});
                    if !subcomponents.contains(&id) {
                        subcomponents.push(id);
                    }
                }
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
            let mut statement = json!({
                "vulnerability": {"name": vulnerability},
                "products": [{"@id": product_id, "subcomponents": subcomponents}],
            });
            if fixed {
                statement["status"] = json!("fixed");
                statement["status_notes"] = json!(format!(
                    "copa-host verified the fixed versions in the patched image: {}.",
                    notes.join("; ")
                ));
            } else {
                statement["status"] = json!("affected");
                statement["action_statement"] =
                    json!(format!("Not fixed by copa-host. {}.", notes.join(". ")));
            }
            statement
        })
        .collect();
    let mut document = json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "",
        "author": author,
        "timestamp": timestamp,
        "version": 1,
        "tooling": format!("copa-host {}", env!("CARGO_PKG_VERSION")),
        "statements": statements,
    });
    // The content names the document: the same run gives the same ID, another run another.
    let digest = hex::encode(Sha256::digest(document.to_string().as_bytes()));
    document["@id"] = json!(format!("https://openvex.dev/docs/public/vex-{digest}"));
    Some(document)
}

/// ` (in PATH)` for a finding with a location, so packages in several places stay apart.
fn place(finding: &Finding) -> String {
    match &finding.pkg_path {
        Some(path) => format!(" (in {path})"),
        None => String::new(),
    }
}

fn remedy(finding: &Finding) -> String {
    if finding.fixed_versions.is_empty() {
        "no fixed version is known: mitigate, or accept the risk until one is released".to_owned()
    } else {
        format!(
            "update it to a fixed version ({}) or rebuild the image",
            finding.fixed_versions.join(", ")
        )
    }
}

/// Writes the document through a temporary file in the same directory, so a reader sees the
/// whole document or none.
pub fn write(path: &Path, document: &Value) -> Result<()> {
    let error = |e: &dyn std::fmt::Display| anyhow!("{} {}: {e}", Setting::Vex, path.display());
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| error(&e))?;
    let mut text = crate::http::redact_logins(
        &serde_json::to_string_pretty(document).expect("the document is plain data"),
    );
    text.push('\n');
    tmp.write_all(text.as_bytes()).map_err(|e| error(&e))?;
    tmp.persist(path).map_err(|e| error(&e.error))?;
    Ok(())
}

/// The package URL of the finding's package at `version` (the version now in the image): the
/// scanner's own PURL with the version replaced, else one built from the report (of the
/// `declared` type when the report's type is not one this host knows).
pub fn package_purl(
    finding: &Finding,
    version: &str,
    report: &Report,
    declared: Option<&str>,
) -> String {
    if let Some(purl) = &finding.purl
        && let Some(replaced) = with_version(purl, version)
    {
        return replaced;
    }
    build_purl(finding, version, report, declared)
}

/// Distribution families (Trivy's names) by package-URL type.
const DEB_FAMILIES: &[&str] = &["debian", "ubuntu"];
const APK_FAMILIES: &[&str] = &["alpine", "wolfi", "chainguard"];
const RPM_FAMILIES: &[(&str, &str)] = &[
    ("redhat", "redhat"),
    ("centos", "centos"),
    ("rocky", "rocky"),
    ("alma", "almalinux"),
    ("fedora", "fedora"),
    ("amazon", "amazon"),
    ("oracle", "oracle"),
    ("cbl-mariner", "mariner"),
    ("azurelinux", "azurelinux"),
    ("photon", "photon"),
    ("suse linux enterprise server", "sles"),
    ("opensuse.leap", "opensuse"),
    ("opensuse.tumbleweed", "opensuse"),
];

fn build_purl(finding: &Finding, version: &str, report: &Report, declared: Option<&str>) -> String {
    let name = &finding.package_name;
    let family = finding.report_type.to_ascii_lowercase();
    if finding.class == FindingClass::OsPkgs {
        let (kind, namespace) = if DEB_FAMILIES.contains(&family.as_str()) {
            ("deb", family.clone())
        } else if APK_FAMILIES.contains(&family.as_str()) {
            ("apk", family.clone())
        } else if let Some((_, namespace)) = RPM_FAMILIES.iter().find(|(f, _)| *f == family) {
            ("rpm", namespace.to_string())
        } else {
            ("generic", family.clone())
        };
        // dpkg and rpm versions carry an epoch that PURLs keep in a qualifier, as Trivy does.
        let (epoch, bare) = match version.split_once(':') {
            Some((epoch, rest))
                if kind != "apk"
                    && !epoch.is_empty()
                    && epoch.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (Some(epoch), rest)
            }
            _ => (None, version),
        };
        let mut purl = format!(
            "pkg:{kind}/{}/{}@{}",
            encode(&namespace),
            encode(name),
            encode(bare)
        );
        let mut qualifiers = Vec::new();
        if let Some(arch) = &report.architecture {
            qualifiers.push(("arch", arch.clone()));
        }
        if let Some((_, release)) = &report.os {
            qualifiers.push(("distro", format!("{namespace}-{release}")));
        }
        if let Some(epoch) = epoch {
            qualifiers.push(("epoch", epoch.to_owned()));
        }
        push_qualifiers(&mut purl, &qualifiers);
        return purl;
    }
    let version = encode(version);
    match finding.report_type.as_str() {
        "python-pkg" | "pip" | "pipenv" | "poetry" | "uv" => {
            // The purl spec's pypi names: lowercase, `_` as `-`.
            format!(
                "pkg:pypi/{}@{version}",
                encode(&name.to_ascii_lowercase().replace('_', "-"))
            )
        }
        "node-pkg" | "npm" | "yarn" | "pnpm" => format!("pkg:npm/{}@{version}", path_name(name)),
        "gobinary" | "gomod" => format!("pkg:golang/{}@{version}", path_name(name)),
        "dotnet-core" | "nuget" | "packages-props" => {
            format!("pkg:nuget/{}@{version}", encode(name))
        }
        "jar" | "pom" | "gradle" => match name.split_once(':') {
            Some((group, artifact)) => {
                format!("pkg:maven/{}/{}@{version}", encode(group), encode(artifact))
            }
            None => format!("pkg:maven/{}@{version}", encode(name)),
        },
        "cargo" | "rust-binary" => format!("pkg:cargo/{}@{version}", encode(name)),
        "gemspec" | "bundler" => format!("pkg:gem/{}@{version}", encode(name)),
        "composer" => format!("pkg:composer/{}@{version}", path_name(name)),
        other => match declared {
            Some(kind) => format!("pkg:{}/{}@{version}", encode(kind), path_name(name)),
            None => format!(
                "pkg:generic/{}@{version}",
                encode(&format!("{other}-{name}"))
            ),
        },
    }
}

/// A name whose `/`-separated segments are the PURL's namespace and name (`@scope/pkg`,
/// `github.com/x/y`), each segment percent-encoded (so `@` becomes `%40`).
fn path_name(name: &str) -> String {
    name.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// The same PURL at another version; `None` when it is not a PURL with a version.
fn with_version(purl: &str, version: &str) -> Option<String> {
    let end = purl.find(['?', '#']).unwrap_or(purl.len());
    let (path, rest) = purl.split_at(end);
    let at = path
        .rfind('@')
        .filter(|&at| at > path.rfind('/').unwrap_or(0))?;
    let kind = path
        .strip_prefix("pkg:")?
        .trim_start_matches('/')
        .split('/')
        .next()?;
    let old_version = &path[at + 1..];
    let (query, fragment) = match rest.find('#') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut qualifiers: Vec<(String, String)> = query
        .trim_start_matches('?')
        .split('&')
        .filter(|q| !q.is_empty())
        .map(|q| match q.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (q.to_owned(), String::new()),
        })
        .collect();
    let mut new_version = version.to_owned();
    if kind == "deb" || kind == "rpm" {
        let inline = old_version.contains(':') || old_version.contains("%3A");
        let split = version
            .split_once(':')
            .filter(|(e, _)| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()));
        qualifiers.retain(|(k, _)| k != "epoch");
        if let Some((epoch, bare)) = split
            && !inline
        {
            new_version = bare.to_owned();
            qualifiers.push(("epoch".to_owned(), epoch.to_owned()));
            qualifiers.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }
    let mut out = format!("{}@{}", &path[..at], encode(&new_version));
    if !qualifiers.is_empty() {
        out.push('?');
        let joined: Vec<String> = qualifiers
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        out.push_str(&joined.join("&"));
    }
    out.push_str(fragment);
    Some(out)
}

fn push_qualifiers(purl: &mut String, qualifiers: &[(&str, String)]) {
    let mut sorted = qualifiers.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (key, value)) in sorted.iter().enumerate() {
        purl.push(if i == 0 { '?' } else { '&' });
        purl.push_str(key);
        purl.push('=');
        purl.push_str(&encode_qualifier(value));
    }
}

/// Percent-encodes everything but the characters the purl spec leaves as they are.
fn encode(text: &str) -> String {
    encode_except(text, b".-_~")
}

/// Qualifier values may keep `/` (`repository_url=docker.io/library/debian`).
fn encode_qualifier(text: &str) -> String {
    encode_except(text, b".-_~/")
}

fn encode_except(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || keep.contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Scanner, read};

    /// How the pip plugin declares its names compare.
    fn pep_503() -> NameRule {
        NameRule {
            ignore_case: true,
            separators: "-_.".into(),
        }
    }

    /// Validates against the OpenVEX 0.2.0 schema shipped as test data (see
    /// tests/data/README.md for where it came from), formats (`uri`, `date-time`) included.
    pub(crate) fn assert_valid_openvex(document: &Value) {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/openvex_json_schema.json");
        let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.enable_format_assertions();
        compiler
            .add_resource("openvex.json", schema)
            .expect("the schema is JSON");
        let index = compiler
            .compile("openvex.json", &mut schemas)
            .expect("the schema compiles");
        if let Err(error) = schemas.validate(document, index) {
            panic!("not valid OpenVEX: {error:#}\n{document:#}");
        }
    }

    fn finding(id: &str, package: &str, installed: &str, fixed: &[&str]) -> Finding {
        Finding {
            vulnerability_id: id.to_owned(),
            package_name: package.to_owned(),
            installed_version: installed.to_owned(),
            fixed_versions: fixed.iter().map(|v| v.to_string()).collect(),
            pkg_path: Some(format!(
                "/app/venv/lib/python3.11/site-packages/{package}-{installed}.dist-info/METADATA"
            )),
            report_target: "Python".to_owned(),
            report_type: "python-pkg".to_owned(),
            class: FindingClass::LangPkgs,
            purl: Some(format!("pkg:pypi/{}@{installed}", package.to_lowercase())),
            severity: "HIGH".to_owned(),
            status: "fixed".to_owned(),
        }
    }

    fn update(package: &str, from: &str, to: &str, fixes: &[&str], status: Status) -> UpdateRecord {
        UpdateRecord {
            ecosystem: "pip".to_owned(),
            target: "/app/venv".to_owned(),
            package: package.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            fixes: fixes.iter().map(|v| v.to_string()).collect(),
            notes: Vec::new(),
            status,
            error: (status == Status::Failed).then(|| "pip exited with status 1".to_owned()),
        }
    }

    fn venv(package: &str) -> Vec<Placement> {
        vec![Placement {
            ecosystem: "pip".to_owned(),
            target: "/app/venv".to_owned(),
            package: package.to_owned(),
        }]
    }

    fn product() -> Product {
        Product {
            repository: Some("registry.example:5000/team/app".to_owned()),
            name: "app".to_owned(),
            tag: Some("1.0-patched".to_owned()),
            digest: "sha256:0123456789abcdef".to_owned(),
        }
    }

    #[test]
    fn a_vulnerability_the_chosen_version_does_not_fix_is_not_fixed() {
        // urllib3 1.26.4 -> 1.26.19 fixes what its line fixes; CVE-2025-50181 is fixed only
        // in 2.5.0, so it stays affected although the package was updated and verified.
        let updates = [update(
            "urllib3",
            "1.26.4",
            "1.26.19",
            &["CVE-2021-33503", "CVE-2024-37891"],
            Status::Patched,
        )];
        let fixed = finding("CVE-2024-37891", "urllib3", "1.26.4", &["1.26.19", "2.2.2"]);
        let open = finding("CVE-2025-50181", "urllib3", "1.26.4", &["2.5.0"]);
        assert_eq!(
            outcome(&fixed, &pep_503(), &venv("urllib3"), &updates, &[]),
            Outcome::Fixed {
                versions: vec!["1.26.19".to_owned()]
            }
        );
        assert_eq!(
            outcome(&open, &pep_503(), &venv("urllib3"), &updates, &[]),
            Outcome::Open {
                versions: vec!["1.26.19".to_owned()],
                reason: "updated to 1.26.19, which does not fix it".to_owned()
            }
        );
    }

    #[test]
    fn a_failed_or_unverified_update_is_not_fixed() {
        let vulnerability = finding("CVE-2020-28493", "Jinja2", "2.11.2", &["2.11.3"]);
        for status in [Status::Failed, Status::Planned] {
            let updates = [update(
                "jinja2",
                "2.11.2",
                "2.11.3",
                &["CVE-2020-28493"],
                status,
            )];
            let Outcome::Open { versions, reason } =
                outcome(&vulnerability, &pep_503(), &venv("Jinja2"), &updates, &[])
            else {
                panic!("{status:?} must not be fixed");
            };
            assert_eq!(versions, ["2.11.2"], "the old version is still there");
            assert!(reason.contains("2.11.3"), "{reason}");
        }
        let updates = [update(
            "jinja2",
            "2.11.2",
            "2.11.3",
            &["CVE-2020-28493"],
            Status::Failed,
        )];
        assert_eq!(
            outcome(&vulnerability, &pep_503(), &venv("Jinja2"), &updates, &[]),
            Outcome::Open {
                versions: vec!["2.11.2".to_owned()],
                reason: "the update to 2.11.3 failed: pip exited with status 1".to_owned()
            }
        );
    }

    #[test]
    fn fixed_needs_every_place_the_package_is() {
        let vulnerability = finding("CVE-2021-33503", "urllib3", "1.26.4", &["1.26.5"]);
        let mut placements = venv("urllib3");
        placements.push(Placement {
            ecosystem: "pip".to_owned(),
            target: "/usr/local/lib/python3.11/dist-packages".to_owned(),
            package: "urllib3".to_owned(),
        });
        let updates = [update(
            "urllib3",
            "1.26.4",
            "1.26.5",
            &["CVE-2021-33503"],
            Status::Patched,
        )];
        assert_eq!(
            outcome(&vulnerability, &pep_503(), &placements, &updates, &[]),
            Outcome::Open {
                versions: vec!["1.26.4".to_owned(), "1.26.5".to_owned()],
                reason: "no update was planned for it".to_owned()
            }
        );
    }

    #[test]
    fn skipped_and_unplaced_findings_carry_the_reason() {
        let requests = finding("CVE-2023-32681", "requests", "2.25.1", &["2.31.0"]);
        let skipped = [SkipRecord {
            ecosystem: "pip".to_owned(),
            target: "/app/venv".to_owned(),
            package: "requests".to_owned(),
            vulnerabilities: vec!["CVE-2023-32681".to_owned()],
            reason: "fix needs a minor bump to 2.31.0; --library-patch-level is patch".to_owned(),
        }];
        assert_eq!(
            outcome(&requests, &pep_503(), &venv("requests"), &[], &skipped),
            Outcome::Open {
                versions: vec!["2.25.1".to_owned()],
                reason: "fix needs a minor bump to 2.31.0; --library-patch-level is patch"
                    .to_owned()
            }
        );
        assert_eq!(
            outcome(&requests, &pep_503(), &[], &[], &[]),
            Outcome::Open {
                versions: vec!["2.25.1".to_owned()],
                reason: "no patcher found the package in the image".to_owned()
            }
        );
    }

    #[test]
    fn document_is_valid_openvex_and_claims_only_what_was_verified() {
        let report = Report {
            artifact_name: "app:1.0".to_owned(),
            os: None,
            architecture: None,
            findings: vec![
                finding("CVE-2024-37891", "urllib3", "1.26.4", &["1.26.19", "2.2.2"]),
                finding("CVE-2025-50181", "urllib3", "1.26.4", &["2.5.0"]),
                finding("CVE-2023-32681", "requests", "2.25.1", &["2.31.0"]),
            ],
        };
        let updates = [update(
            "urllib3",
            "1.26.4",
            "1.26.19",
            &["CVE-2024-37891"],
            Status::Patched,
        )];
        let outcomes: Vec<Outcome> = report
            .findings
            .iter()
            .map(|f| outcome(f, &pep_503(), &venv(&f.package_name), &updates, &[]))
            .collect();
        let document = document(
            &report,
            &outcomes,
            &|_| None,
            &product(),
            "Jane <jane@example.com>",
            "2026-11-29T00:00:00Z",
        )
        .unwrap();
        assert_valid_openvex(&document);
        assert_eq!(document["author"], "Jane <jane@example.com>");
        assert_eq!(document["timestamp"], "2026-11-29T00:00:00Z");
        let statements = document["statements"].as_array().unwrap();
        let status_of = |id: &str| -> Vec<&str> {
            statements
                .iter()
                .filter(|s| s["vulnerability"]["name"] == id)
                .map(|s| s["status"].as_str().unwrap())
                .collect()
        };
        assert_eq!(status_of("CVE-2024-37891"), ["fixed"]);
        assert_eq!(status_of("CVE-2025-50181"), ["affected"]);
        assert_eq!(status_of("CVE-2023-32681"), ["affected"]);
        assert!(statements.iter().all(|s| s["status"] != "not_affected"));
        let open = statements
            .iter()
            .find(|s| s["vulnerability"]["name"] == "CVE-2025-50181")
            .unwrap();
        let action = open["action_statement"].as_str().unwrap();
        assert!(
            action.contains("does not fix it") && action.contains("2.5.0"),
            "{action}"
        );
        assert_eq!(
            open["products"][0]["@id"],
            "pkg:oci/app@sha256%3A0123456789abcdef?repository_url=registry.example%3A5000/team/app&tag=1.0-patched"
        );
        assert_eq!(
            open["products"][0]["subcomponents"],
            json!([{"@id": "pkg:pypi/urllib3@1.26.19"}]),
            "the version now in the image"
        );
        let id = document["@id"].as_str().unwrap();
        assert!(
            id.starts_with("https://openvex.dev/docs/public/vex-"),
            "{id}"
        );
        // The same content gives the same ID; different content another.
        let again = super::document(
            &report,
            &outcomes,
            &|_| None,
            &product(),
            "Jane <jane@example.com>",
            "2026-11-29T00:00:00Z",
        )
        .unwrap();
        assert_eq!(again, document);
        let later = super::document(
            &report,
            &outcomes,
            &|_| None,
            &product(),
            "Jane <jane@example.com>",
            "2026-11-30T00:00:00Z",
        )
        .unwrap();
        assert_ne!(later["@id"], document["@id"]);
    }

    #[test]
    fn a_report_without_vulnerabilities_has_no_document() {
        let report = Report {
            artifact_name: String::new(),
            os: None,
            architecture: None,
            findings: Vec::new(),
        };
        assert_eq!(
            document(
                &report,
                &[],
                &|_| None,
                &product(),
                "a",
                "2026-11-29T00:00:00Z"
            ),
            None
        );
    }

    /// Findings of every ecosystem without the scanner's PURL, for the PURLs copa-host builds.
    fn built(report_type: &str, class: FindingClass, package: &str) -> Finding {
        Finding {
            pkg_path: None,
            report_type: report_type.to_owned(),
            class,
            purl: None,
            ..finding("CVE-1", package, "1.0", &[])
        }
    }

    #[test]
    fn purls_of_each_ecosystem() {
        let debian = Report {
            artifact_name: String::new(),
            os: Some(("debian".to_owned(), "12".to_owned())),
            architecture: Some("amd64".to_owned()),
            findings: Vec::new(),
        };
        let alpine = Report {
            os: Some(("alpine".to_owned(), "3.21.3".to_owned())),
            architecture: Some("arm64".to_owned()),
            ..debian.clone()
        };
        let rocky = Report {
            os: Some(("rocky".to_owned(), "9.3".to_owned())),
            architecture: Some("x86_64".to_owned()),
            ..debian.clone()
        };
        let os = FindingClass::OsPkgs;
        let lang = FindingClass::LangPkgs;
        let cases: &[(&Finding, &str, &Report, &str)] = &[
            (
                &built("debian", os, "libssl3"),
                "3.0.15-1~deb12u1",
                &debian,
                "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12",
            ),
            (
                &built("debian", os, "login"),
                "1:4.13+dfsg1-1+b1",
                &debian,
                "pkg:deb/debian/login@4.13%2Bdfsg1-1%2Bb1?arch=amd64&distro=debian-12&epoch=1",
            ),
            (
                &built("alpine", os, "libcrypto3"),
                "3.3.3-r0",
                &alpine,
                "pkg:apk/alpine/libcrypto3@3.3.3-r0?arch=arm64&distro=alpine-3.21.3",
            ),
            (
                &built("rocky", os, "openssl-libs"),
                "1:3.0.7-27.el9",
                &rocky,
                "pkg:rpm/rocky/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rocky-9.3&epoch=1",
            ),
            (
                &built("python-pkg", lang, "Typing_Extensions"),
                "4.12.2",
                &debian,
                "pkg:pypi/typing-extensions@4.12.2",
            ),
            (
                &built("node-pkg", lang, "@babel/traverse"),
                "7.23.2",
                &debian,
                "pkg:npm/%40babel/traverse@7.23.2",
            ),
            (
                &built("node-pkg", lang, "qs"),
                "6.5.3",
                &debian,
                "pkg:npm/qs@6.5.3",
            ),
            (
                &built("gobinary", lang, "golang.org/x/net"),
                "v0.33.0",
                &debian,
                "pkg:golang/golang.org/x/net@v0.33.0",
            ),
            (
                &built("dotnet-core", lang, "System.Text.Json"),
                "8.0.5",
                &debian,
                "pkg:nuget/System.Text.Json@8.0.5",
            ),
            (
                &built("jar", lang, "org.apache.logging.log4j:log4j-core"),
                "2.17.1",
                &debian,
                "pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1",
            ),
        ];
        for (finding, version, report, expected) in cases {
            assert_eq!(&package_purl(finding, version, report, None), expected);
        }
        // A report type this host does not know: the type its patcher declares, else generic.
        let toy = built("toy-pkg", lang, "acme/widget");
        assert_eq!(
            package_purl(&toy, "1.2", &debian, Some("toy")),
            "pkg:toy/acme/widget@1.2"
        );
        assert_eq!(
            package_purl(&toy, "1.2", &debian, None),
            "pkg:generic/toy-pkg-acme%2Fwidget@1.2"
        );
    }

    #[test]
    fn the_scanners_purl_keeps_its_qualifiers_with_the_new_version() {
        let debian = Report {
            artifact_name: String::new(),
            os: Some(("debian".to_owned(), "13.2".to_owned())),
            architecture: Some("amd64".to_owned()),
            findings: Vec::new(),
        };
        let with = |purl: &str| Finding {
            purl: Some(purl.to_owned()),
            class: FindingClass::OsPkgs,
            report_type: "debian".to_owned(),
            ..finding("CVE-1", "x", "1", &[])
        };
        // Trivy keeps the epoch in a qualifier.
        assert_eq!(
            package_purl(
                &with("pkg:deb/debian/bsdutils@2.41-5?arch=amd64&distro=debian-13.2&epoch=1"),
                "1:2.41-6",
                &debian,
                None
            ),
            "pkg:deb/debian/bsdutils@2.41-6?arch=amd64&distro=debian-13.2&epoch=1"
        );
        assert_eq!(
            package_purl(
                &with("pkg:deb/debian/curl@8.14.1-2%2Bdeb13u2?arch=amd64&distro=debian-13.2"),
                "8.14.1-2+deb13u3",
                &debian,
                None
            ),
            "pkg:deb/debian/curl@8.14.1-2%2Bdeb13u3?arch=amd64&distro=debian-13.2"
        );
        // Grype writes it inside the version.
        assert_eq!(
            package_purl(
                &with("pkg:deb/debian/bsdutils@1:2.41-5?arch=amd64&distro=debian-13"),
                "1:2.41-6",
                &debian,
                None
            ),
            "pkg:deb/debian/bsdutils@1%3A2.41-6?arch=amd64&distro=debian-13"
        );
        let npm = Finding {
            purl: Some("pkg:npm/%40babel/core@7.0.0".to_owned()),
            ..built("node-pkg", FindingClass::LangPkgs, "@babel/core")
        };
        assert_eq!(
            package_purl(&npm, "7.26.0", &debian, None),
            "pkg:npm/%40babel/core@7.26.0"
        );
    }

    #[test]
    fn product_purl_for_a_daemon_image_and_an_oci_layout() {
        let local = Product {
            repository: Some("copa-e2e-pip".to_owned()),
            name: "copa-e2e-pip".to_owned(),
            tag: Some("patched".to_owned()),
            digest: "sha256:ab".to_owned(),
        };
        assert_eq!(local.purl(), "pkg:oci/copa-e2e-pip@sha256%3Aab?tag=patched");
        let layout = Product {
            repository: None,
            name: "Layout".to_owned(),
            tag: None,
            digest: "sha256:cd".to_owned(),
        };
        assert_eq!(layout.purl(), "pkg:oci/layout@sha256%3Acd");
    }

    #[test]
    fn document_of_a_real_report_is_valid_with_every_finding_open() {
        let report = read(
            &crate::report::tests::shared_report("trivy-python-debian13-fueltime.json"),
            &Scanner::Trivy,
        )
        .unwrap();
        let outcomes: Vec<Outcome> = report
            .findings
            .iter()
            .map(|f| outcome(f, &pep_503(), &[], &[], &[]))
            .collect();
        let document = document(
            &report,
            &outcomes,
            &|_| None,
            &product(),
            DEFAULT_AUTHOR,
            "1970-01-01T00:00:00Z",
        )
        .unwrap();
        assert_valid_openvex(&document);
        let statements = document["statements"].as_array().unwrap();
        assert!(statements.iter().all(|s| s["status"] == "affected"));
        let ids: std::collections::BTreeSet<&str> = report
            .findings
            .iter()
            .map(|f| f.vulnerability_id.as_str())
            .collect();
        assert_eq!(
            statements.len(),
            ids.len(),
            "one statement per vulnerability"
        );
        let openssl = statements
            .iter()
            .find(|s| s["vulnerability"]["name"] == "CVE-2025-15467")
            .unwrap();
        assert_eq!(
            openssl["products"][0]["subcomponents"]
                .as_array()
                .unwrap()
                .len(),
            3,
            "libssl3t64, openssl, openssl-provider-legacy"
        );
    }

    #[test]
    fn write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vex.json");
        std::fs::write(&path, "old").unwrap();
        write(&path, &json!({"a": 1})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"a\": 1\n}\n"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        let error = write(&dir.path().join("missing/vex.json"), &json!({})).unwrap_err();
        assert!(error.to_string().starts_with("the VEX output "), "{error}");
    }
}
