//! # quill: an example patcher for an ecosystem the host has never heard of
//!
//! This crate is a complete, small patcher written only against `copa-plugin-sdk`. Quill is a
//! toy package ecosystem: copa-host knows nothing about it (no file of the host names it), yet
//! with this plugin in a `--plugin-dir` it finds quill packages in an image, reads a quill
//! index over the network, and replaces vulnerable packages with fixed ones. Copy it to start a
//! patcher of your own.
//!
//! ## The ecosystem
//!
//! **In the image**, each installed package is a directory `/opt/quill/packages/<name>/`
//! holding a file `QUILL-PACKAGE` and the package's other files:
//!
//! ```text
//! name=widget
//! version=1.2.0
//! ```
//!
//! **Versions** are dotted whole numbers (`1.2.10`), compared numerically component by
//! component (a missing component is 0). Anything else is not a quill version: such a package
//! is reported but never updated.
//!
//! **The index** serves one JSON document per package at `<index-url>/<name>.json`:
//!
//! ```json
//! {"name": "widget", "versions": [
//!   {"version": "1.2.0", "url": "https://files.example/widget-1.2.0.tar.gz", "sha256": "<lower hex>"}
//! ]}
//! ```
//!
//! The index URL is `https://packages.quill.example/index/` unless the user names others with
//! `--index quill=URL` (repeatable: tried in order, the first to answer 200 wins, 404 from all
//! means the package is unknown). A credential for a private index is the user's business
//! (`--index-credential ORIGIN=ENV`): the host adds it, the plugin never sees it.
//!
//! **A package file** is a gzip'd tar whose root holds `QUILL-PACKAGE` and the package's files
//! directly (no leading directory).
//!
//! ## What the plugin does
//!
//! - [`manifest`](copa_plugin_sdk::Patcher::manifest): declares the `quill` index (which grants
//!   the plugin its origin, or those of the user's `--index quill=URL`s), no tooling, no root
//!   `run` step, no options. The host refuses anything beyond it. Package names compare exactly,
//!   as `plan` compares them, so the VEX document matches a finding to a package the same way.
//! - `detect`: one target, `/opt/quill/packages`, with a package per directory.
//! - `plan`: findings match installed packages by exact name. A version fixes a finding when it
//!   is at or above one of its fixed versions on the same major.minor line, or at or above all
//!   of them. Candidates are the index's versions above the installed one, within
//!   `--library-patch-level`, that fix at least one finding; the one fixing the most wins, then
//!   the smallest bump, then the lowest version. What it cannot fix is skipped with the reason.
//! - `emit-commands`: one `download` step per update. The host downloads the chosen version's
//!   file from the URL the index gives (an origin the plugin was granted), checks its SHA-256,
//!   unpacks it and replaces the package's directory with it. No container runs.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p copa-plugin-quill`.

mod index;
mod plan;
mod version;

use copa_plugin_sdk::choose::Bump;
use copa_plugin_sdk::{
    DownloadStep, Finding, IndexSpec, InstalledPackage, Manifest, NameRule, PackageClass,
    Placement, Plan, PluginInfo, Policy, Step, Target, fs, log, register_patcher,
};

use version::QuillVersion;

/// Where quill keeps its installed packages, one directory each; also the target's id.
const PACKAGES: &str = "/opt/quill/packages";
/// The metadata file in each package directory.
const METADATA: &str = "QUILL-PACKAGE";

#[derive(Default)]
struct Quill;

register_patcher!(Quill);

impl copa_plugin_sdk::Patcher for Quill {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "quill".into(),
            version: "0.1.0".into(),
            package_class: PackageClass::Library,
            // The report's result type and the PURL type ("pkg:quill/widget@1.2.0") that route
            // findings here; the PURL type also names the packages in the VEX document.
            report_types: vec!["quill".into()],
            purl_types: vec!["quill".into()],
            description: "quill packages (/opt/quill/packages), replaced from a quill index".into(),
        }
    }

    /// The index is all the plugin asks for: its `download` steps need no container, so no
    /// tooling and no root `run` step. A quill name is its directory's, so "Widget" and
    /// "widget" are two packages: names compare byte for byte.
    fn manifest(&self) -> Manifest {
        Manifest {
            indexes: vec![IndexSpec {
                ecosystem: index::ECOSYSTEM.into(),
                default_url: index::DEFAULT_URL.into(),
                description: "a quill package index (JSON)".into(),
            }],
            package_names: NameRule {
                ignore_case: false,
                separators: String::new(),
            },
            ..copa_plugin_sdk::asks_for_nothing(self.info())
        }
    }

    fn detect(&self) -> Result<Vec<Target>, String> {
        if !fs::is_dir(PACKAGES) {
            return Ok(Vec::new());
        }
        let mut packages = Vec::new();
        for entry in fs::read_dir(PACKAGES)? {
            let location = format!("{PACKAGES}/{entry}");
            if !fs::is_dir(&location) {
                continue;
            }
            let metadata = match fs::read_to_string(&format!("{location}/{METADATA}")) {
                Ok(text) => text,
                Err(e) => {
                    log::warn(&format!(
                        "{location}: no readable {METADATA} ({e}); ignored"
                    ));
                    continue;
                }
            };
            match parse_metadata(&metadata) {
                // The directory is what quill (and the download step) goes by, so a package
                // whose metadata names another is not taken for either.
                Some((name, version)) if name == entry => packages.push(InstalledPackage {
                    name,
                    version,
                    location,
                }),
                Some((name, _)) => log::warn(&format!(
                    "{location}: {METADATA} names the package {name:?}; ignored"
                )),
                None => log::warn(&format!(
                    "{location}: {METADATA} has no name= or version= line; ignored"
                )),
            }
        }
        Ok(vec![Target {
            id: PACKAGES.into(),
            kind: "quill".into(),
            runtime_version: None,
            packages,
            unpatchable_reason: None,
            attributes: Vec::new(),
        }])
    }

    fn plan(
        &self,
        targets: Vec<Target>,
        findings: Vec<Finding>,
        policy: Policy,
    ) -> Result<Plan, String> {
        let level = Bump::from(policy.library_patch_level);
        plan::plan(&targets, &findings, level, |name| {
            Ok(index::fetch(&policy, name)?.map(|document| {
                document
                    .versions()
                    .into_iter()
                    .map(|(version, _)| version)
                    .collect()
            }))
        })
    }

    fn emit_commands(
        &self,
        _targets: Vec<Target>,
        plan: Plan,
        policy: Policy,
    ) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        for (i, update) in plan.updates.iter().enumerate() {
            let name = &update.package;
            let to: QuillVersion = update.to_version.parse()?;
            // Asked again rather than carried from `plan`: the host caches the answer for the
            // run, and a plugin keeps no state between calls.
            let document = index::fetch(&policy, name)?
                .ok_or_else(|| format!("{name} is no longer in the quill index"))?;
            let release = document
                .release(&to)
                .ok_or_else(|| format!("the quill index no longer has {name} {to}"))?;
            steps.push(Step::Download(DownloadStep {
                description: format!(
                    "quill: {name} {} -> {}",
                    update.from_version, update.to_version
                ),
                url: release.url.clone(),
                sha256: release.sha256.clone(),
                placements: vec![Placement {
                    // Every member of the tarball, into the package's directory, which is
                    // emptied first so that files the old version had and the new one does
                    // not disappear.
                    member: "".into(),
                    path: format!("{PACKAGES}/{name}"),
                    mode: None,
                    uid: 0,
                    gid: 0,
                    replace: true,
                }],
                updates: vec![i as u32],
            }));
        }
        Ok(steps)
    }
}

/// The `name=` and `version=` lines of a `QUILL-PACKAGE` file (other lines are the package's
/// own business).
fn parse_metadata(text: &str) -> Option<(String, String)> {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let name = value("name").filter(|n| !n.is_empty())?;
    let version = value("version").filter(|v| !v.is_empty())?;
    Some((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use copa_plugin_sdk::Patcher;

    #[test]
    fn reads_the_metadata_file() {
        assert_eq!(
            parse_metadata("name=widget\nversion=1.2.0\n"),
            Some(("widget".into(), "1.2.0".into()))
        );
        assert_eq!(
            parse_metadata("# quill\nsummary=a = b\r\nversion = 1.2.10\r\nname = widget\r\n"),
            Some(("widget".into(), "1.2.10".into()))
        );
        assert_eq!(parse_metadata("name=widget\n"), None);
        assert_eq!(parse_metadata("name=\nversion=1\n"), None);
    }

    #[test]
    fn the_manifest_asks_for_the_index_only() {
        let manifest = Quill.manifest();
        assert_eq!(manifest.info.name, "quill");
        assert_eq!(manifest.info.version, "0.1.0");
        assert_eq!(manifest.info.report_types, ["quill"]);
        assert_eq!(manifest.info.purl_types, ["quill"]);
        assert_eq!(manifest.indexes.len(), 1);
        assert_eq!(manifest.indexes[0].ecosystem, "quill");
        assert_eq!(
            manifest.indexes[0].default_url,
            "https://packages.quill.example/index/"
        );
        assert!(manifest.tooling.is_empty() && manifest.options.is_empty());
        assert!(!manifest.root_run_steps);
    }
}
