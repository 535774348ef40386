//! An app's `*.deps.json`: what the .NET host reads to decide which assemblies load.
//!
//! Read: the runtime target (framework and, for RID-specific apps, the RID), the packages and
//! each package's assets. Rewritten: a package's entries renamed to the new version in `targets`
//! and `libraries` (a `targets` entry without its `libraries` entry is silently dropped by the
//! host), its assets and their versions replaced, dependents pointed at it, new dependencies
//! added. Key order and formatting stay as the SDK wrote them, so the diff is the change only.

use serde_json::{Map, Value, json};

pub struct DepsJson {
    root: Map<String, Value>,
    /// Whether the file ended with a newline / started with a UTF-8 BOM, to write it back alike.
    trailing_newline: bool,
    bom: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Library {
    pub name: String,
    pub version: String,
    /// "package", "project", "reference", "runtimepack".
    pub kind: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssetKind {
    /// `runtime`: managed assemblies, loaded from the app directory by file name.
    Runtime,
    /// `native`: native libraries of RID-specific apps, also by file name.
    Native,
    /// `resources`: satellite assemblies, in a folder named after the culture.
    Resource,
    /// `runtimeTargets`: RID-specific assets of portable apps, kept at their package path.
    RuntimeTarget,
}

/// One file of a package as deps.json lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    pub kind: AssetKind,
    /// Path inside the package ("lib/net6.0/My.Lib.dll").
    pub path: String,
    /// RID (runtime targets) or culture (resources).
    pub qualifier: Option<String>,
    /// runtimeTargets' "runtime" or "native".
    pub asset_type: Option<String>,
    pub assembly_version: Option<String>,
    pub file_version: Option<String>,
}

impl Asset {
    /// Where the host looks for this file, relative to the app's directory.
    pub fn app_relative_path(&self) -> String {
        let file_name = self.path.rsplit('/').next().unwrap_or(&self.path);
        match self.kind {
            AssetKind::Runtime | AssetKind::Native => file_name.to_string(),
            AssetKind::Resource => match &self.qualifier {
                Some(culture) => format!("{culture}/{file_name}"),
                None => file_name.to_string(),
            },
            AssetKind::RuntimeTarget => self.path.clone(),
        }
    }
}

/// Everything deps.json says about a new package version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageEntry {
    pub name: String,
    pub version: String,
    /// "sha512-" + base64 of the .nupkg's SHA-512.
    pub sha512: String,
    /// (id, resolved version).
    pub dependencies: Vec<(String, String)>,
    /// Assets for sections without a RID (portable apps).
    pub portable_assets: Vec<Asset>,
    /// Assets for RID-specific sections.
    pub rid_assets: Vec<Asset>,
}

fn split_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('/')
}

impl DepsJson {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let bom = bytes.starts_with(b"\xEF\xBB\xBF");
        let text = if bom { &bytes[3..] } else { bytes };
        let value: Value =
            serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(root) = value else {
            return Err("not a JSON object".into());
        };
        if !root.get("targets").is_some_and(Value::is_object) {
            return Err("no \"targets\" object".into());
        }
        Ok(DepsJson {
            root,
            trailing_newline: text.ends_with(b"\n"),
            bom,
        })
    }

    /// The bytes to write back: two-space indentation like the SDK, same BOM and last newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        out.extend(serde_json::to_vec_pretty(&self.root).expect("a JSON value serializes"));
        if self.trailing_newline {
            out.push(b'\n');
        }
        out
    }

    /// `runtimeTarget.name`: ".NETCoreApp,Version=v8.0" or ".NETCoreApp,Version=v8.0/linux-x64".
    pub fn runtime_target(&self) -> Option<&str> {
        self.root.get("runtimeTarget")?.get("name")?.as_str()
    }

    /// The RID of a RID-specific (self-contained or `-r` published) app.
    pub fn rid(&self) -> Option<&str> {
        self.runtime_target()?
            .split_once('/')
            .map(|(_, rid)| rid)
            .filter(|rid| !rid.is_empty())
    }

    pub fn libraries(&self) -> Vec<Library> {
        let Some(Value::Object(libraries)) = self.root.get("libraries") else {
            return Vec::new();
        };
        libraries
            .iter()
            .filter_map(|(key, value)| {
                let (name, version) = split_key(key)?;
                Some(Library {
                    name: name.to_string(),
                    version: version.to_string(),
                    kind: value.get("type")?.as_str()?.to_string(),
                })
            })
            .collect()
    }

    fn targets(&self) -> &Map<String, Value> {
        self.root["targets"].as_object().expect("checked in parse")
    }

    fn targets_mut(&mut self) -> &mut Map<String, Value> {
        self.root
            .get_mut("targets")
            .and_then(Value::as_object_mut)
            .expect("checked in parse")
    }

    /// The `targets` key of a package ("Name/Version"), in the spelling the file uses.
    fn key_of(map: &Map<String, Value>, name: &str, version: &str) -> Option<String> {
        map.keys()
            .find(|key| {
                split_key(key).is_some_and(|(n, v)| n.eq_ignore_ascii_case(name) && v == version)
            })
            .cloned()
    }

    /// Every asset of a package over all target sections (deduplicated).
    pub fn assets(&self, name: &str, version: &str) -> Vec<Asset> {
        let mut assets: Vec<Asset> = Vec::new();
        for section in self.targets().values() {
            let Some(section) = section.as_object() else {
                continue;
            };
            let Some(key) = Self::key_of(section, name, version) else {
                continue;
            };
            for asset in entry_assets(&section[&key]) {
                if !assets.contains(&asset) {
                    assets.push(asset);
                }
            }
        }
        assets
    }

    /// Replaces package `name` at `old_version` with `new` (renamed in place, so the order of
    /// entries stays), and points every dependent at the new version.
    pub fn replace_package(&mut self, old_version: &str, new: &PackageEntry) -> Result<(), String> {
        let name = new.name.clone();
        let mut seen = false;
        for (section_name, section) in self.targets_mut().iter_mut() {
            let rid_specific = section_name
                .split_once('/')
                .is_some_and(|(_, rid)| !rid.is_empty());
            let Some(section) = section.as_object_mut() else {
                continue;
            };
            if let Some(key) = Self::key_of(section, &name, old_version) {
                seen = true;
                let entry = target_entry(new, rid_specific);
                let new_key = format!("{}/{}", split_key(&key).unwrap().0, new.version);
                rename_in_place(section, &key, new_key, entry);
            }
            point_dependents(section, &name, &new.version);
        }
        if !seen {
            return Err(format!(
                "{name}/{old_version} is not in the deps.json targets"
            ));
        }
        let libraries = self
            .root
            .get_mut("libraries")
            .and_then(Value::as_object_mut)
            .ok_or("the deps.json has no \"libraries\" object")?;
        let key = Self::key_of(libraries, &name, old_version)
            .ok_or_else(|| format!("{name}/{old_version} is not in the deps.json libraries"))?;
        let mut library = libraries[&key].clone();
        set_library_fields(&mut library, new);
        let new_key = format!("{}/{}", split_key(&key).unwrap().0, new.version);
        rename_in_place(libraries, &key, new_key, library);
        Ok(())
    }

    /// Adds a package that was not there (a new dependency of an updated package) to every
    /// target section that lists anything (the app's own entry is always there), and to
    /// `libraries`.
    pub fn add_package(&mut self, new: &PackageEntry) -> Result<(), String> {
        let key = format!("{}/{}", new.name, new.version);
        let mut added = false;
        for (section_name, section) in self.targets_mut().iter_mut() {
            let rid_specific = section_name
                .split_once('/')
                .is_some_and(|(_, rid)| !rid.is_empty());
            let Some(section) = section.as_object_mut() else {
                continue;
            };
            if !section.is_empty() {
                section.insert(key.clone(), target_entry(new, rid_specific));
                added = true;
            }
        }
        if !added {
            return Err("the deps.json targets are all empty".into());
        }
        let libraries = self
            .root
            .get_mut("libraries")
            .and_then(Value::as_object_mut)
            .ok_or("the deps.json has no \"libraries\" object")?;
        let mut library = json!({"type": "package", "serviceable": true});
        set_library_fields(&mut library, new);
        libraries.insert(key, library);
        Ok(())
    }
}

fn set_library_fields(library: &mut Value, new: &PackageEntry) {
    let lower = format!(
        "{}/{}",
        new.name.to_ascii_lowercase(),
        new.version.to_ascii_lowercase()
    );
    library["sha512"] = Value::String(new.sha512.clone());
    library["path"] = Value::String(lower.clone());
    library["hashPath"] = Value::String(format!("{}.nupkg.sha512", lower.replace('/', ".")));
}

/// Renames `old` to `new_key` keeping its position (serde_json's preserve_order map has no
/// rename: rebuild it).
fn rename_in_place(map: &mut Map<String, Value>, old: &str, new_key: String, value: Value) {
    let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
    for (key, existing) in entries {
        if key == old {
            map.insert(new_key.clone(), value.clone());
        } else {
            map.insert(key, existing);
        }
    }
}

fn point_dependents(section: &mut Map<String, Value>, name: &str, version: &str) {
    for entry in section.values_mut() {
        if let Some(Value::Object(deps)) = entry.get_mut("dependencies") {
            for (id, v) in deps.iter_mut() {
                if id.eq_ignore_ascii_case(name) {
                    *v = Value::String(version.to_string());
                }
            }
        }
    }
}

/// A targets entry in the SDK's shape: dependencies, runtime, runtimeTargets, resources,
/// native; empty parts left out.
fn target_entry(new: &PackageEntry, rid_specific: bool) -> Value {
    let mut entry = Map::new();
    if !new.dependencies.is_empty() {
        let deps: Map<String, Value> = new
            .dependencies
            .iter()
            .map(|(id, v)| (id.clone(), Value::String(v.clone())))
            .collect();
        entry.insert("dependencies".into(), Value::Object(deps));
    }
    let assets = if rid_specific {
        &new.rid_assets
    } else {
        &new.portable_assets
    };
    let versions = |asset: &Asset| {
        let mut fields = Map::new();
        if let Some(v) = &asset.assembly_version {
            fields.insert("assemblyVersion".into(), Value::String(v.clone()));
        }
        if let Some(v) = &asset.file_version {
            fields.insert("fileVersion".into(), Value::String(v.clone()));
        }
        fields
    };
    for (section, kind) in [
        ("runtime", AssetKind::Runtime),
        ("runtimeTargets", AssetKind::RuntimeTarget),
        ("resources", AssetKind::Resource),
        ("native", AssetKind::Native),
    ] {
        let mut files = Map::new();
        for asset in assets.iter().filter(|a| a.kind == kind) {
            let mut fields = Map::new();
            match kind {
                AssetKind::RuntimeTarget => {
                    fields.insert("rid".into(), json!(asset.qualifier));
                    fields.insert("assetType".into(), json!(asset.asset_type));
                    fields.extend(versions(asset));
                }
                AssetKind::Resource => {
                    fields.insert("locale".into(), json!(asset.qualifier));
                }
                _ => fields.extend(versions(asset)),
            }
            files.insert(asset.path.clone(), Value::Object(fields));
        }
        if !files.is_empty() {
            entry.insert(section.into(), Value::Object(files));
        }
    }
    Value::Object(entry)
}

fn entry_assets(entry: &Value) -> Vec<Asset> {
    let mut assets = Vec::new();
    for (section, kind) in [
        ("runtime", AssetKind::Runtime),
        ("native", AssetKind::Native),
        ("resources", AssetKind::Resource),
        ("runtimeTargets", AssetKind::RuntimeTarget),
    ] {
        let Some(Value::Object(files)) = entry.get(section) else {
            continue;
        };
        for (path, fields) in files {
            let text = |name: &str| fields.get(name).and_then(Value::as_str).map(String::from);
            assets.push(Asset {
                kind,
                path: path.clone(),
                qualifier: match kind {
                    AssetKind::Resource => text("locale"),
                    AssetKind::RuntimeTarget => text("rid"),
                    _ => None,
                },
                asset_type: text("assetType"),
                assembly_version: text("assemblyVersion"),
                file_version: text("fileVersion"),
            });
        }
    }
    assets
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHONNET: &[u8] = include_bytes!("../tests/data/Python.Runtime.deps.json");

    #[test]
    fn round_trips_an_sdk_written_file_byte_for_byte() {
        let deps = DepsJson::parse(PYTHONNET).unwrap();
        assert_eq!(deps.to_bytes(), PYTHONNET);
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(PYTHONNET);
        with_bom.push(b'\n');
        assert_eq!(DepsJson::parse(&with_bom).unwrap().to_bytes(), with_bom);
    }

    #[test]
    fn reads_libraries_and_assets() {
        let deps = DepsJson::parse(PYTHONNET).unwrap();
        assert_eq!(deps.runtime_target(), Some(".NETStandard,Version=v2.0/"));
        assert_eq!(deps.rid(), None);
        let libraries = deps.libraries();
        assert_eq!(libraries[0].kind, "project");
        assert!(libraries.contains(&Library {
            name: "System.Reflection.Emit".into(),
            version: "4.3.0".into(),
            kind: "package".into()
        }));
        assert_eq!(
            deps.assets("Microsoft.CSharp", "4.7.0"),
            [Asset {
                kind: AssetKind::Runtime,
                path: "lib/netstandard2.0/Microsoft.CSharp.dll".into(),
                qualifier: None,
                asset_type: None,
                assembly_version: Some("4.0.5.0".into()),
                file_version: Some("4.700.19.56404".into()),
            }]
        );
        assert_eq!(
            deps.assets("Microsoft.CSharp", "4.7.0")[0].app_relative_path(),
            "Microsoft.CSharp.dll"
        );
    }

    fn csharp_480() -> PackageEntry {
        PackageEntry {
            name: "Microsoft.CSharp".into(),
            version: "4.8.0".into(),
            sha512: "sha512-AAAA".into(),
            dependencies: vec![("System.Memory".into(), "4.5.5".into())],
            portable_assets: vec![Asset {
                kind: AssetKind::Runtime,
                path: "lib/netstandard2.0/Microsoft.CSharp.dll".into(),
                qualifier: None,
                asset_type: None,
                assembly_version: Some("4.0.6.0".into()),
                file_version: Some("4.800.1.1".into()),
            }],
            rid_assets: Vec::new(),
        }
    }

    #[test]
    fn replaces_a_package_in_targets_and_libraries() {
        let mut deps = DepsJson::parse(PYTHONNET).unwrap();
        deps.replace_package("4.7.0", &csharp_480()).unwrap();
        let memory = PackageEntry {
            name: "System.Memory".into(),
            version: "4.5.5".into(),
            sha512: "sha512-BBBB".into(),
            dependencies: vec![],
            portable_assets: vec![],
            rid_assets: vec![],
        };
        deps.add_package(&memory).unwrap();
        let text = String::from_utf8(deps.to_bytes()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let section = &value["targets"][".NETStandard,Version=v2.0/"];
        assert!(section.get("Microsoft.CSharp/4.7.0").is_none());
        assert_eq!(
            section["Microsoft.CSharp/4.8.0"]["runtime"]["lib/netstandard2.0/Microsoft.CSharp.dll"],
            json!({"assemblyVersion": "4.0.6.0", "fileVersion": "4.800.1.1"})
        );
        assert_eq!(
            section["Python.Runtime/3.0.3"]["dependencies"]["Microsoft.CSharp"],
            "4.8.0"
        );
        assert_eq!(section["System.Memory/4.5.5"], json!({}));
        // The renamed entry keeps its place: still right after Microsoft.Build.Tasks.Git.
        let keys: Vec<&String> = section.as_object().unwrap().keys().collect();
        let at = keys
            .iter()
            .position(|k| *k == "Microsoft.CSharp/4.8.0")
            .unwrap();
        assert_eq!(keys[at - 1], "Microsoft.Build.Tasks.Git/1.1.1");
        let library = &value["libraries"]["Microsoft.CSharp/4.8.0"];
        assert_eq!(
            library,
            &json!({"type": "package", "serviceable": true, "sha512": "sha512-AAAA",
                    "path": "microsoft.csharp/4.8.0", "hashPath": "microsoft.csharp.4.8.0.nupkg.sha512"})
        );
        assert!(value["libraries"].get("Microsoft.CSharp/4.7.0").is_none());
        assert_eq!(
            value["libraries"]["System.Memory/4.5.5"]["path"],
            "system.memory/4.5.5"
        );
        // Nothing else changed: only the lines of the two packages differ.
        let before: Vec<&str> = std::str::from_utf8(PYTHONNET).unwrap().lines().collect();
        let after: Vec<&str> = text.lines().collect();
        let changed = after.iter().filter(|l| !before.contains(l)).count();
        assert!(changed <= 20, "{changed} lines changed:\n{text}");
        assert!(!text.ends_with('\n'));
    }

    #[test]
    fn refuses_what_it_cannot_find() {
        let mut deps = DepsJson::parse(PYTHONNET).unwrap();
        assert!(deps.replace_package("9.9.9", &csharp_480()).is_err());
        let mut empty = DepsJson::parse(br#"{"targets": {"x": {}}, "libraries": {}}"#).unwrap();
        assert!(empty.add_package(&csharp_480()).is_err());
        assert!(DepsJson::parse(b"[]").is_err());
        assert!(DepsJson::parse(b"{}").is_err());
        assert!(DepsJson::parse(b"{").is_err());
    }
}
