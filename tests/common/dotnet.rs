//! .NET test material: the packages and apps of tests/fixtures/dotnet/packages.py (compiled with
//! mono-mcs, byte-identical to the fixture image's), served as a NuGet v3 feed on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::docker::repo_root;
use super::{serve_static_requiring, serve_static_with};

/// Builds the test feed (and, with `apps`, the two apps) into `dir`: `dir/feed`, `dir/apps`.
pub fn build_packages(dir: &Path, apps: bool) -> (PathBuf, PathBuf) {
    let feed = dir.join("feed");
    let app_dir = dir.join("apps");
    let script = repo_root().join("tests/fixtures/dotnet/packages.py");
    let mut command = Command::new("python3");
    command.arg(&script).arg(&feed);
    if apps {
        command.arg(&app_dir);
    }
    let status = command
        .status()
        .expect("running python3 tests/fixtures/dotnet/packages.py (needs python3 and mono-mcs)");
    assert!(status.success(), "packages.py failed");
    (feed, app_dir)
}

/// (id, version) of a feed file such as "Copa.Fixture.Lib.1.0.0.nupkg".
fn id_and_version(file: &str) -> (String, String) {
    let stem = file.strip_suffix(".nupkg").unwrap();
    let at = stem
        .match_indices('.')
        .find(|(i, _)| stem[i + 1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(|(i, _)| i)
        .unwrap();
    (stem[..at].to_string(), stem[at + 1..].to_string())
}

/// The flat container's files of `feed` (a folder of .nupkg files), under `/flat/`.
fn flat_container(feed: &Path) -> Vec<(String, Vec<u8>)> {
    let mut versions: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(feed).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let (id, version) = id_and_version(&name);
        let (id, version) = (id.to_lowercase(), version.to_lowercase());
        files.push((
            format!("/flat/{id}/{version}/{id}.{version}.nupkg"),
            std::fs::read(&path).unwrap(),
        ));
        versions.entry(id).or_default().push(version);
    }
    for (id, list) in &versions {
        files.push((
            format!("/flat/{id}/index.json"),
            serde_json::to_vec(&serde_json::json!({ "versions": list })).unwrap(),
        ));
    }
    files
}

fn service_index(flat: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"version": "3.0.0", "resources": [
        {"@id": format!("{flat}/flat/"), "@type": "PackageBaseAddress/3.0.0"}
    ]}))
    .unwrap()
}

/// Serves `feed` (a folder of .nupkg files) as a NuGet v3 feed: the service index and the flat
/// container it points at, on one origin (the only one a plugin reading it is granted). Returns
/// the service index URL and the request log.
pub fn serve_v3_feed(feed: &Path) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let feed = feed.to_path_buf();
    let (origin, log) = serve_static_with(move |origin| {
        let mut files = flat_container(&feed);
        files.push(("/v3/index.json".to_string(), service_index(origin)));
        files
    });
    (format!("{origin}/v3/index.json"), log)
}

/// Serves `feed` as a private NuGet v3 feed: service index and flat container on one server
/// that answers 401 unless the request carries basic auth of `user`:`password`. Returns the
/// service index URL and the request log.
pub fn serve_private_v3_feed(
    feed: &Path,
    user: &str,
    password: &str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use base64::Engine as _;
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let feed = feed.to_path_buf();
    let (origin, log) = serve_static_requiring(Some(authorization), move |origin| {
        let mut files = flat_container(&feed);
        files.push(("/v3/index.json".to_string(), service_index(origin)));
        files
    });
    (format!("{origin}/v3/index.json"), log)
}

/// A Trivy report of `dotnet-core` results: `(deps.json path without leading slash, package,
/// installed, vulnerability, fixed versions)`, one result per deps.json as Trivy writes them.
pub fn trivy_dotnet_report(findings: &[(&str, &str, &str, &str, &str)]) -> String {
    let mut results: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for (target, name, installed, id, fixed) in findings {
        let vulnerability = serde_json::json!({
            "VulnerabilityID": id, "PkgName": name, "InstalledVersion": installed,
            "FixedVersion": fixed, "Status": if fixed.is_empty() { "affected" } else { "fixed" },
            "Severity": "HIGH",
            "PkgIdentifier": {"PURL": format!("pkg:nuget/{name}@{installed}")}
        });
        match results.iter_mut().find(|(t, _)| t == target) {
            Some((_, list)) => list.push(vulnerability),
            None => results.push((target.to_string(), vec![vulnerability])),
        }
    }
    let results: Vec<serde_json::Value> = results
        .into_iter()
        .map(|(target, vulnerabilities)| {
            serde_json::json!({"Target": target, "Class": "lang-pkgs", "Type": "dotnet-core",
                               "Vulnerabilities": vulnerabilities})
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "SchemaVersion": 2, "ArtifactName": "fixture", "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": "debian", "Name": "12.0"}}, "Results": results
    }))
    .unwrap()
}
