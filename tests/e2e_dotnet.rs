//! End to end on a real Docker engine: the .NET fixture (Debian, the real .NET 8.0.4 runtime,
//! two apps built with mono-mcs, a single-file bundle) is patched by the real binary from a NuGet
//! v3 feed on 127.0.0.1, with no SDK and no container step, and then checked by running both
//! apps in the patched image with the real runtime.

mod common;

use common::docker::*;
use common::dotnet::{build_packages, serve_private_v3_feed, serve_v3_feed, trivy_dotnet_report};

const FIXTURE: &str = "copa-fixture-dotnet:bookworm";

/// Patches the fixture's libraries by `report` into `patched`, with the feed options `feed`;
/// the summary.
fn patch(
    report: &std::path::Path,
    patched: &str,
    feed: &[&str],
    cache: &std::path::Path,
) -> serde_json::Value {
    let summary = report.with_file_name("summary.json");
    let mut args = vec![
        "patch",
        "-i",
        FIXTURE,
        "-r",
        report.to_str().unwrap(),
        "--pkg-types",
        "library",
        "-t",
        patched,
        "--summary",
        summary.to_str().unwrap(),
    ];
    args.extend_from_slice(feed);
    let output = copa(&args, cache);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap()
}

#[test]
fn patches_both_apps_from_a_nuget_feed_and_they_run_fixed() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // The same bytes as the fixture's packages: packages.py is deterministic.
    let (feed, _) = build_packages(work.path(), false);
    let (source, downloads) = serve_v3_feed(&feed);
    let patched = "copa-e2e-dotnet:patched";
    remove_image(patched);

    // Before: both apps run the vulnerable library.
    assert_eq!(
        run_in(FIXTURE, &["dotnet", "/app/app1.dll"]),
        "app1: vulnerable-1.0.0 greeter-1.0.0 newer-1.0.0"
    );
    let bundle_before = run_in(FIXTURE, &["sha256sum", "/opt/tool/tool"]);

    let mut findings = Vec::new();
    for target in ["app/app1.deps.json", "srv/app2/app2.deps.json"] {
        findings.push((target, "Copa.Fixture.Lib", "1.0.0", "CVE-LIB", "1.0.1"));
        findings.push((
            target,
            "Copa.Fixture.Greeter",
            "1.0.0",
            "CVE-GREET",
            "1.0.1",
        ));
        findings.push((target, "Copa.Fixture.Newer", "1.0.0", "CVE-NEWER", "1.0.1"));
    }
    findings.push((
        "opt/tool/tool",
        "Copa.Fixture.Lib",
        "1.0.0",
        "CVE-BUNDLED",
        "1.0.1",
    ));
    let report = work.path().join("report.json");
    std::fs::write(&report, trivy_dotnet_report(&findings)).unwrap();
    let summary = patch(&report, patched, &["--nuget-source", &source], cache.path());
    assert_eq!(summary["patched_image"], patched);
    let statuses: Vec<(String, String, String)> = summary["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["package"].as_str().unwrap().to_string(),
                u["to"].as_str().unwrap().to_string(),
                u["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(statuses.len(), 6, "{statuses:?}");
    assert!(
        statuses.iter().all(|(_, _, s)| s == "patched"),
        "{statuses:?}"
    );
    let skipped = summary["skipped"].as_array().unwrap();
    let skip = |vulnerability: &str| {
        skipped
            .iter()
            .find(|s| {
                s["vulnerabilities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v == vulnerability)
            })
            .unwrap_or_else(|| panic!("{vulnerability} not skipped: {skipped:?}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(skip("CVE-NEWER").contains("newer framework (net9.0)"));
    assert!(skip("CVE-BUNDLED").contains("single-file bundle"));
    // Each package version was downloaded once for both apps.
    let nupkgs = downloads
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.ends_with(".nupkg"))
        .count();
    assert!(nupkgs <= 4, "{:?}", downloads.lock().unwrap());

    // What the patched image does, with the real runtime.
    assert_eq!(
        run_in(patched, &["dotnet", "/app/app1.dll"]),
        "app1: fixed-1.0.1 greeter-1.0.1+helper-1.0.0 newer-1.0.0"
    );
    assert_eq!(
        run_in(patched, &["dotnet", "/srv/app2/app2.dll"]),
        "app2: fixed-1.0.1 greeter-1.0.1+helper-1.0.0 newer-1.0.0"
    );
    // deps.json names the new versions with the real digests and the DLLs' own versions.
    let deps: serde_json::Value =
        serde_json::from_str(&run_in(patched, &["cat", "/srv/app2/app2.deps.json"])).unwrap();
    let section = &deps["targets"][".NETCoreApp,Version=v8.0"];
    assert_eq!(
        section["Copa.Fixture.Lib/1.0.1"]["runtime"]["lib/net6.0/Copa.Fixture.Lib.dll"]["assemblyVersion"],
        "1.0.1.0"
    );
    assert!(section.get("Copa.Fixture.Helper/1.0.0").is_some());
    let nupkg_sha512 = {
        use base64::Engine as _;
        use sha2::{Digest, Sha512};
        let bytes = std::fs::read(feed.join("Copa.Fixture.Lib.1.0.1.nupkg")).unwrap();
        format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
        )
    };
    assert_eq!(
        deps["libraries"]["Copa.Fixture.Lib/1.0.1"]["sha512"],
        nupkg_sha512
    );
    // Owners kept: the second app belongs to its user.
    let owner = |path: &str| run_in(patched, &["stat", "-c", "%u:%g %a", path]);
    assert_eq!(owner("/srv/app2/Copa.Fixture.Lib.dll"), "1000:1000 644");
    assert_eq!(owner("/srv/app2/Copa.Fixture.Helper.dll"), "1000:1000 644");
    assert_eq!(owner("/srv/app2/app2.deps.json"), "1000:1000 644");
    assert_eq!(owner("/app/Copa.Fixture.Lib.dll"), "0:0 644");
    // The bundle is left exactly as it was.
    assert_eq!(
        run_in(patched, &["sha256sum", "/opt/tool/tool"]),
        bundle_before
    );
    // The original layers, untouched, plus exactly one.
    let original = layers(FIXTURE);
    let new = layers(patched);
    assert_eq!(new.len(), original.len() + 1);
    assert_eq!(&new[..original.len()], &original[..]);
    remove_image(patched);
}

/// The framework-conflict case: /opt/app3 carries System.Text.Json (a stand-in built by the
/// tests) as an app-local package while the shared framework has its own copy. The runtime loads
/// the app-local one only when the versions deps.json states for it beat the framework's, so a
/// patch that replaced the DLL but not those versions would leave the framework's copy loaded.
/// The feed is private (basic auth) and named in a nuget.config, as users configure one.
#[test]
fn an_app_local_framework_assembly_really_loads_the_patched_copy() {
    let _daemon = exclusive_daemon();
    require_fixture(FIXTURE);
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (feed, _) = build_packages(work.path(), false);
    let (source, requests) = serve_private_v3_feed(&feed, "ci-bot", "p@ss;word");
    let config = work.path().join("nuget.config");
    std::fs::write(
        &config,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="Team Feed" value="{source}" />
  </packageSources>
  <packageSourceCredentials>
    <Team_x0020_Feed>
      <add key="Username" value="ci-bot" />
      <add key="ClearTextPassword" value="p@ss;word" />
    </Team_x0020_Feed>
  </packageSourceCredentials>
</configuration>
"#
        ),
    )
    .unwrap();
    let patched = "copa-e2e-dotnet:framework-conflict";
    remove_image(patched);

    // Before: deps.json states the framework's own versions for the app-local copy, so the
    // framework's copy is the one that loads.
    assert_eq!(
        run_in(FIXTURE, &["dotnet", "/opt/app3/app3.dll"]),
        "app3: /usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.4/System.Text.Json.dll"
    );

    let report = work.path().join("report.json");
    std::fs::write(
        &report,
        trivy_dotnet_report(&[(
            "opt/app3/app3.deps.json",
            "System.Text.Json",
            "8.0.4",
            "CVE-STJ",
            "8.0.5",
        )]),
    )
    .unwrap();
    let summary = patch(
        &report,
        patched,
        &["--nuget-config", config.to_str().unwrap()],
        cache.path(),
    );
    let updates: Vec<(&str, &str, &str, &str)> = summary["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["package"].as_str().unwrap(),
                u["from"].as_str().unwrap(),
                u["to"].as_str().unwrap(),
                u["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        updates,
        [("System.Text.Json", "8.0.4", "8.0.5", "patched")],
        "{summary:#}"
    );
    assert!(
        requests
            .lock()
            .unwrap()
            .iter()
            .any(|p| p == "/flat/system.text.json/8.0.5/system.text.json.8.0.5.nupkg")
    );

    // After: the app-local copy is the patched one and it is what loads.
    assert_eq!(
        run_in(patched, &["dotnet", "/opt/app3/app3.dll"]),
        "app3: /opt/app3/System.Text.Json.dll fixed-8.0.5"
    );
    let deps: serde_json::Value =
        serde_json::from_str(&run_in(patched, &["cat", "/opt/app3/app3.deps.json"])).unwrap();
    assert_eq!(
        deps["targets"][".NETCoreApp,Version=v8.0"]["System.Text.Json/8.0.5"]["runtime"]["lib/net8.0/System.Text.Json.dll"],
        serde_json::json!({"assemblyVersion": "8.0.0.0", "fileVersion": "8.0.524.21615"})
    );
    // The other apps were not touched.
    assert_eq!(
        run_in(patched, &["dotnet", "/app/app1.dll"]),
        "app1: vulnerable-1.0.0 greeter-1.0.0 newer-1.0.0"
    );
    remove_image(patched);
}
