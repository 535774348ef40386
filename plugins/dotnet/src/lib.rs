//! The .NET patcher: NuGet packages of every .NET app in the image, replaced straight from a
//! NuGet feed — no SDK, no container. The feeds are read over `http` like any plugin's index
//! (index `nuget`; folder feeds as `file://` URLs the user configured). The fixed package's
//! assemblies are placed at the app's paths (`download` steps naming the .nupkg read and its
//! SHA-256) and the app's deps.json is rewritten to name them truthfully (`write`), because the
//! .NET host loads what deps.json lists, at the versions it states.

mod assets;
mod deps;
mod detect;
mod feed;
mod framework;
mod nuspec;
mod package;
mod pe;
mod plan;

use std::collections::HashMap;

use copa_plugin_sdk::nuget_feed;
use copa_plugin_sdk::{
    DownloadStep, Finding, IndexSpec, Manifest, OptionKind, OptionSpec, PackageClass, Placement,
    Plan, PluginInfo, Policy, Step, Target, WriteStep, attribute, fs, register_patcher,
    updates_for,
};

use crate::deps::{DepsJson, PackageEntry};
use crate::framework::Framework;
use crate::package::Contents;

#[derive(Default)]
struct Dotnet;

register_patcher!(Dotnet);

/// Names of the target attributes this plugin writes in `detect` and reads back later.
mod attr {
    /// The directory the app's assemblies load from.
    pub const APP_DIR: &str = "app-dir";
    /// `uid:gid` owning the deps.json.
    pub const OWNER: &str = "owner";
    /// The app's target framework, short form ("net8.0").
    pub const TFM: &str = "tfm";
    /// The RID of a RID-specific app ("linux-x64").
    pub const RID: &str = "rid";
    /// "framework-dependent" or "self-contained".
    pub const DEPLOYMENT: &str = "deployment";
    /// A runtime pack a self-contained app lists as a library (one attribute per pack).
    pub const RUNTIME_PACK: &str = "runtime-pack";
}

impl copa_plugin_sdk::Patcher for Dotnet {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "dotnet".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            package_class: PackageClass::Library,
            report_types: vec!["dotnet-core".into()],
            purl_types: vec!["nuget".into()],
            description: ".NET apps (deps.json): NuGet packages replaced from a NuGet feed, no SDK"
                .into(),
        }
    }

    fn manifest(&self) -> Manifest {
        Manifest {
            indexes: vec![IndexSpec {
                ecosystem: nuget_feed::ECOSYSTEM.into(),
                default_url: nuget_feed::DEFAULT_SOURCE.into(),
                description: "a NuGet v3 service index, or a folder of .nupkg files as \
                              file:///DIR; the versions of all, each from the first that has it"
                    .into(),
            }],
            options: vec![OptionSpec {
                key: feed::MAPPING_OPTION.into(),
                kind: OptionKind::Text,
                repeatable: true,
                description: "package source mapping, PATTERN=SOURCE-URL (Contoso.*=URL): a \
                              package is looked up only on the sources of its most specific \
                              pattern; --nuget-config fills it from the config's"
                    .into(),
            }],
            ..copa_plugin_sdk::asks_for_nothing(self.info())
        }
    }

    fn detect(&self) -> Result<Vec<Target>, String> {
        Ok(detect::targets())
    }

    fn plan(
        &self,
        targets: Vec<Target>,
        findings: Vec<Finding>,
        policy: Policy,
    ) -> Result<Plan, String> {
        feed::use_policy(&policy)?;
        Ok(plan::plan(&targets, &findings, policy))
    }

    fn emit_commands(
        &self,
        targets: Vec<Target>,
        plan: Plan,
        policy: Policy,
    ) -> Result<Vec<Step>, String> {
        feed::use_policy(&policy)?;
        let mut steps = Vec::new();
        for target in &targets {
            let updates = updates_for(&plan, target);
            if !updates.is_empty() {
                steps.extend(emit_app(target, &plan, &updates)?);
            }
        }
        Ok(steps)
    }
}

fn owner_of(text: Option<&str>) -> (u32, u32) {
    text.and_then(|o| o.split_once(':'))
        .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
        .unwrap_or((0, 0))
}

/// The steps of one app: a download per updated package, removal of files the old versions had
/// and the new ones do not, and the rewritten deps.json.
fn emit_app(target: &Target, plan: &Plan, updates: &[u32]) -> Result<Vec<Step>, String> {
    let app_dir = attribute(target, attr::APP_DIR).ok_or("target without app directory")?;
    let framework = attribute(target, attr::TFM)
        .and_then(Framework::parse)
        .ok_or_else(|| format!("{}: unknown target framework", target.id))?;
    let rid = attribute(target, attr::RID);
    let deps_stat = fs::stat(&target.id).ok_or_else(|| format!("{} is gone", target.id))?;
    let mut deps =
        DepsJson::parse(&fs::read_file(&target.id)?).map_err(|e| format!("{}: {e}", target.id))?;
    let (uid, gid) = owner_of(attribute(target, attr::OWNER));

    // The versions the app ends up with, for the dependency versions deps.json records.
    let mut resolved: HashMap<String, String> = target
        .packages
        .iter()
        .map(|p| (p.name.to_ascii_lowercase(), p.version.clone()))
        .collect();
    for &i in updates {
        let update = &plan.updates[i as usize];
        resolved.insert(
            update.package.to_ascii_lowercase(),
            update.to_version.clone(),
        );
    }

    let mut fetches = Vec::new();
    let mut removals = Vec::new();
    for &i in updates {
        let update = &plan.updates[i as usize];
        let contents = Contents::load(&update.package, &update.to_version)?;
        let selection = contents.select(&framework, rid)?;
        let (mut portable, mut rid_specific) = (selection.portable, selection.rid_specific);
        contents.read_versions(&mut portable)?;
        contents.read_versions(&mut rid_specific)?;
        let dependencies = contents
            .dependencies(&framework)
            .into_iter()
            .map(|(id, range)| {
                let version = resolved
                    .get(&id.to_ascii_lowercase())
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "{} needs {id} {range}, which was not planned",
                            update.package
                        )
                    })?;
                Ok((id, version))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let placed = if rid.is_some() {
            &rid_specific
        } else {
            &portable
        };
        let entry = PackageEntry {
            name: update.package.clone(),
            version: update.to_version.clone(),
            sha512: contents.sha512_base64()?,
            dependencies,
            portable_assets: portable.clone(),
            rid_assets: rid_specific.clone(),
        };

        let mut placements = Vec::new();
        for asset in placed {
            let path = format!("{app_dir}/{}", asset.app_relative_path());
            // A replaced file keeps its owner and mode; a new one gets the deps.json's owner.
            let (mode, uid, gid) = match fs::stat(&path) {
                Some(existing) => (existing.mode & 0o7777, existing.uid, existing.gid),
                None => (0o644, uid, gid),
            };
            placements.push(Placement {
                member: asset.path.clone(),
                path,
                mode: Some(mode),
                uid,
                gid,
                replace: true,
            });
        }
        if update.from_version.is_empty() {
            deps.add_package(&entry)?;
        } else {
            let old: Vec<String> = deps
                .assets(&update.package, &update.from_version)
                .iter()
                .map(|a| format!("{app_dir}/{}", a.app_relative_path()))
                .collect();
            for path in old {
                if !placements.iter().any(|p| p.path == path) && fs::exists(&path) {
                    removals.push(Step::Write(WriteStep {
                        description: format!(
                            "remove {path}: {} {} no longer has it",
                            update.package, update.to_version
                        ),
                        path,
                        contents: None,
                        mode: 0,
                        uid: 0,
                        gid: 0,
                        updates: vec![i],
                    }));
                }
            }
            deps.replace_package(&update.from_version, &entry)?;
        }
        let (url, sha256) = contents.download()?;
        fetches.push(Step::Download(DownloadStep {
            description: format!(
                "{} {} -> {} in {app_dir}",
                update.package,
                if update.from_version.is_empty() {
                    "(new)"
                } else {
                    &update.from_version
                },
                update.to_version
            ),
            url: url.to_string(),
            sha256: sha256.to_string(),
            placements,
            updates: vec![i],
        }));
    }
    let mut steps = fetches;
    steps.extend(removals);
    steps.push(Step::Write(WriteStep {
        description: format!("rewrite {}", target.id),
        path: target.id.clone(),
        contents: Some(deps.to_bytes()),
        mode: deps_stat.mode & 0o7777,
        uid: deps_stat.uid,
        gid: deps_stat.gid,
        updates: updates.to_vec(),
    }));
    Ok(steps)
}
