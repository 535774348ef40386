//! Which files of a .nupkg an app loads: `lib/<tfm>/` for the nearest compatible framework, and
//! `runtimes/<rid>/lib/<tfm>/` and `runtimes/<rid>/native/` by RID. Never `ref/` (compile-time
//! only) nor build or analyzer folders.

use std::collections::BTreeMap;

use crate::deps::{Asset, AssetKind};
use crate::framework::{Framework, nearest, rid_fallbacks};

/// The assets of one package version for one app.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// For a portable app: lib assets plus every RID's assets as runtime targets.
    pub portable: Vec<Asset>,
    /// For a RID-specific app: the nearest RID's assets in place of the portable ones.
    pub rid_specific: Vec<Asset>,
}

fn asset(kind: AssetKind, path: &str) -> Asset {
    Asset {
        kind,
        path: path.to_string(),
        qualifier: None,
        asset_type: None,
        assembly_version: None,
        file_version: None,
    }
}

/// Managed files of a `lib/<tfm>/` folder: assemblies directly in it, satellite assemblies in a
/// culture folder below it. `_._` marks a folder that is deliberately empty.
fn managed(members: &[&str], folder: &str) -> Vec<Asset> {
    let prefix = format!("{folder}/");
    let mut assets = Vec::new();
    for member in members.iter().filter_map(|m| m.strip_prefix(&prefix)) {
        let lower = member.to_ascii_lowercase();
        let assembly =
            lower.ends_with(".dll") || lower.ends_with(".exe") || lower.ends_with(".winmd");
        match member.split_once('/') {
            None if assembly => {
                assets.push(asset(AssetKind::Runtime, &format!("{prefix}{member}")))
            }
            Some((culture, file)) if !file.contains('/') && lower.ends_with(".resources.dll") => {
                let mut resource = asset(AssetKind::Resource, &format!("{prefix}{member}"));
                resource.qualifier = Some(culture.to_string());
                assets.push(resource);
            }
            _ => {}
        }
    }
    assets
}

/// Framework folders directly below `root` ("lib", "runtimes/linux-x64/lib") that hold files.
fn framework_folders<'a>(members: &[&'a str], root: &str) -> Vec<&'a str> {
    let prefix = format!("{root}/");
    let mut folders: Vec<&str> = members
        .iter()
        .filter_map(|m| m.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once('/').map(|(tfm, _)| tfm))
        .collect();
    folders.sort();
    folders.dedup();
    folders
}

/// Chooses the assets of a package (its artifact's `members`) for an app on `app` (and `rid`
/// when RID-specific). Errors say why the package cannot be used by this app.
pub fn select(members: &[&str], app: &Framework, rid: Option<&str>) -> Result<Selection, String> {
    let lib_folders = framework_folders(members, "lib");
    let lib = nearest(app, lib_folders.iter().copied());
    let mut portable = match lib {
        Some(tfm) => managed(members, &format!("lib/{tfm}")),
        None => Vec::new(),
    };

    // runtimes/<rid>/lib/<tfm> and runtimes/<rid>/native, per RID.
    let mut rids: BTreeMap<&str, (Option<String>, Vec<&str>)> = BTreeMap::new();
    for member in members {
        let Some(rest) = member.strip_prefix("runtimes/") else {
            continue;
        };
        let Some((rid_name, inside)) = rest.split_once('/') else {
            continue;
        };
        let slot = rids.entry(rid_name).or_default();
        if inside.starts_with("native/") && !inside.ends_with('/') {
            slot.1.push(member);
        }
    }
    for (rid_name, slot) in rids.iter_mut() {
        let root = format!("runtimes/{rid_name}/lib");
        let folders = framework_folders(members, &root);
        slot.0 = nearest(app, folders.iter().copied()).map(|tfm| format!("{root}/{tfm}"));
    }

    let any_managed_rid = rids.values().any(|(lib, _)| lib.is_some());
    if lib.is_none() && !lib_folders.is_empty() && !any_managed_rid {
        let newer: Vec<&str> = lib_folders
            .iter()
            .copied()
            .filter(|f| Framework::parse(f).is_some_and(|fw| fw.needs_newer_than(app)))
            .collect();
        return Err(if newer.is_empty() {
            format!(
                "no assemblies for {app}: the package has only {}",
                lib_folders.join(", ")
            )
        } else {
            format!(
                "its assemblies need a newer framework ({}) than the app's {app}",
                newer.join(", ")
            )
        });
    }

    // Portable apps carry every RID's files; the host picks at run time.
    for (rid_name, (lib, natives)) in &rids {
        let mut add = |path: &str, asset_type: &str| {
            let mut target = asset(AssetKind::RuntimeTarget, path);
            target.qualifier = Some(rid_name.to_string());
            target.asset_type = Some(asset_type.to_string());
            portable.push(target);
        };
        if let Some(lib) = lib {
            for managed in managed(members, lib) {
                if managed.kind == AssetKind::Runtime {
                    add(&managed.path, "runtime");
                }
            }
        }
        for native in natives {
            add(native, "native");
        }
    }

    // RID-specific apps get the nearest RID's managed files instead of lib/, and its natives.
    let rid_specific = match rid {
        None => Vec::new(),
        Some(rid) => {
            let chain = rid_fallbacks(rid);
            let managed_rid = chain
                .iter()
                .find_map(|r| rids.get(r.as_str()).and_then(|(lib, _)| lib.clone()));
            let mut chosen = match managed_rid {
                Some(folder) => managed(members, &folder),
                None => match lib {
                    Some(tfm) => managed(members, &format!("lib/{tfm}")),
                    None => Vec::new(),
                },
            };
            if let Some((_, natives)) = chain.iter().find_map(|r| {
                rids.get(r.as_str())
                    .filter(|(_, natives)| !natives.is_empty())
            }) {
                chosen.extend(natives.iter().map(|n| asset(AssetKind::Native, n)));
            }
            chosen
        }
    };
    Ok(Selection {
        portable,
        rid_specific,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(text: &str) -> Framework {
        Framework::parse(text).unwrap()
    }

    fn paths(assets: &[Asset]) -> Vec<(AssetKind, &str, Option<&str>)> {
        assets
            .iter()
            .map(|a| (a.kind, a.path.as_str(), a.qualifier.as_deref()))
            .collect()
    }

    const MEMBERS: &[&str] = &[
        "My.Lib.nuspec",
        "lib/net462/My.Lib.dll",
        "lib/net6.0/My.Lib.dll",
        "lib/net6.0/My.Lib.xml",
        "lib/net6.0/de/My.Lib.resources.dll",
        "lib/netstandard2.0/My.Lib.dll",
        "ref/net8.0/My.Lib.dll",
        "runtimes/linux-x64/native/libmy.so",
        "runtimes/win-x64/native/my.dll",
        "runtimes/unix/lib/net6.0/My.Lib.dll",
        "build/My.Lib.targets",
    ];

    #[test]
    fn portable_app_gets_nearest_lib_and_every_rid() {
        let selection = select(MEMBERS, &fw("net8.0"), None).unwrap();
        assert_eq!(
            paths(&selection.portable),
            [
                (AssetKind::Runtime, "lib/net6.0/My.Lib.dll", None),
                (
                    AssetKind::Resource,
                    "lib/net6.0/de/My.Lib.resources.dll",
                    Some("de")
                ),
                (
                    AssetKind::RuntimeTarget,
                    "runtimes/linux-x64/native/libmy.so",
                    Some("linux-x64")
                ),
                (
                    AssetKind::RuntimeTarget,
                    "runtimes/unix/lib/net6.0/My.Lib.dll",
                    Some("unix")
                ),
                (
                    AssetKind::RuntimeTarget,
                    "runtimes/win-x64/native/my.dll",
                    Some("win-x64")
                ),
            ]
        );
        assert!(selection.rid_specific.is_empty());
        assert_eq!(selection.portable[3].asset_type.as_deref(), Some("runtime"));
        assert_eq!(
            selection.portable[1].app_relative_path(),
            "de/My.Lib.resources.dll"
        );
        assert_eq!(
            selection.portable[2].app_relative_path(),
            "runtimes/linux-x64/native/libmy.so"
        );
    }

    #[test]
    fn rid_specific_app_gets_nearest_rid() {
        let selection = select(MEMBERS, &fw("net8.0"), Some("linux-x64")).unwrap();
        assert_eq!(
            paths(&selection.rid_specific),
            [
                (
                    AssetKind::Runtime,
                    "runtimes/unix/lib/net6.0/My.Lib.dll",
                    None
                ),
                (
                    AssetKind::Native,
                    "runtimes/linux-x64/native/libmy.so",
                    None
                ),
            ]
        );
        assert_eq!(selection.rid_specific[1].app_relative_path(), "libmy.so");
        // No managed RID folder on the chain: lib/ stays.
        let selection = select(MEMBERS, &fw("net8.0"), Some("win-x64")).unwrap();
        assert_eq!(
            paths(&selection.rid_specific),
            [
                (AssetKind::Runtime, "lib/net6.0/My.Lib.dll", None),
                (
                    AssetKind::Resource,
                    "lib/net6.0/de/My.Lib.resources.dll",
                    Some("de")
                ),
                (AssetKind::Native, "runtimes/win-x64/native/my.dll", None),
            ]
        );
    }

    #[test]
    fn older_apps_fall_back_to_netstandard_or_fail() {
        let selection = select(MEMBERS, &fw("netcoreapp3.1"), None).unwrap();
        assert_eq!(selection.portable[0].path, "lib/netstandard2.0/My.Lib.dll");
        let only_new = ["lib/net9.0/New.dll", "New.nuspec"];
        assert_eq!(
            select(&only_new, &fw("net8.0"), None).unwrap_err(),
            "its assemblies need a newer framework (net9.0) than the app's net8.0"
        );
        let windows = ["lib/net8.0-windows7.0/W.dll"];
        assert_eq!(
            select(&windows, &fw("net8.0"), None).unwrap_err(),
            "no assemblies for net8.0: the package has only net8.0-windows7.0"
        );
        // A .NET Framework-only package loads through AssetTargetFallback (Newtonsoft 6).
        let old = [
            "lib/net45/Newtonsoft.Json.dll",
            "lib/net45/Newtonsoft.Json.xml",
        ];
        assert_eq!(
            paths(&select(&old, &fw("net8.0"), None).unwrap().portable),
            [(AssetKind::Runtime, "lib/net45/Newtonsoft.Json.dll", None)]
        );
        // Meta-packages have no lib at all, and that is fine.
        assert_eq!(
            select(&["Meta.nuspec"], &fw("net8.0"), None).unwrap(),
            Selection::default()
        );
        // `_._`: the framework provides it.
        assert!(
            select(&["lib/net8.0/_._"], &fw("net8.0"), None)
                .unwrap()
                .portable
                .is_empty()
        );
    }
}
