//! Finding every .NET app in the image: each `X.deps.json` next to its `X.runtimeconfig.json`
//! (outside SDK and NuGet caches), and the single-file bundles and Native AOT executables that
//! cannot be patched by replacing files.

use copa_plugin_sdk::fs::{self, EntryKind};
use copa_plugin_sdk::{InstalledPackage, Target, log};
use serde_json::Value;

use crate::attr;
use crate::deps::{AssetKind, DepsJson};
use crate::framework::Framework;
use crate::pe::{self, FourPart};

pub const KIND_APP: &str = "dotnet-app";
pub const KIND_BUNDLE: &str = "dotnet-bundle";
pub const KIND_AOT: &str = "dotnet-native-aot";

/// Directory names never searched: kernel filesystems, package caches, and a .NET
/// installation's own trees (SDK, packs, templates), whose deps.json files belong to tools.
const PRUNE: &[&str] = &[
    "proc",
    "sys",
    "dev",
    ".nuget",
    "NuGetScratch",
    ".git",
    "node_modules",
    "sdk",
    "sdk-manifests",
    "packs",
    "templates",
    "library-packs",
];
/// System trees where a self-contained executable is never an app of the image's own.
const SYSTEM_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/lib",
    "/lib",
    "/lib64",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/share",
    "/etc",
    "/var/lib",
    "/var/cache",
];

/// The apphost's bundle marker (SHA-256 of ".net core bundle"), preceded in every apphost by
/// the 8-byte offset of the bundle header: zero unless files were bundled into it.
const BUNDLE_SIGNATURE: [u8; 32] = [
    0x8b, 0x12, 0x02, 0xb9, 0x6a, 0x61, 0x20, 0x38, 0x72, 0x7b, 0x93, 0x02, 0x14, 0xd7, 0xa0, 0x32,
    0x13, 0xf5, 0xb9, 0xe6, 0xef, 0xae, 0x33, 0x18, 0xee, 0x3b, 0x2d, 0xce, 0x24, 0xb3, 0x6a, 0xae,
];
/// Exported by every Native AOT executable for debuggers and diagnostics tools.
const NATIVE_AOT_MARKER: &[u8] = b"DotNetRuntimeDebugHeader";
/// Smaller executables are no .NET bundle (the apphost alone is ~70 KB).
const MIN_BUNDLE_SIZE: u64 = 64 * 1024;

pub fn targets() -> Vec<Target> {
    let mut found = Vec::new();
    walk("/", &mut found);
    found
}

fn walk(dir: &str, found: &mut Vec<Target>) {
    let Ok(names) = fs::read_dir(dir) else {
        return;
    };
    let join = |name: &str| {
        if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        }
    };
    // A .NET installation (dotnet muxer plus host/fxr): its shared frameworks carry deps.json
    // files of their own that are no app.
    let dotnet_root = names.iter().any(|n| n == "dotnet") && names.iter().any(|n| n == "host");
    for name in &names {
        let path = join(name);
        let Some(stat) = fs::stat(&path) else {
            continue;
        };
        match stat.kind {
            EntryKind::Directory => {
                if PRUNE.contains(&name.as_str()) || (dotnet_root && name == "shared") {
                    continue;
                }
                walk(&path, found);
            }
            EntryKind::File => {
                if let Some(base) = name.strip_suffix(".deps.json") {
                    let config = join(&format!("{base}.runtimeconfig.json"));
                    if fs::exists(&config) {
                        found.push(app(&path, &config, stat.uid, stat.gid));
                    } else {
                        log::debug(&format!("{path}: no {config}, not an app; skipped"));
                    }
                } else if stat.mode & 0o111 != 0
                    && stat.size >= MIN_BUNDLE_SIZE
                    && !SYSTEM_DIRS
                        .iter()
                        .any(|d| path.starts_with(&format!("{d}/")))
                    && !(dotnet_root && name == "dotnet")
                    && let Some(target) = unpatchable_executable(&path)
                {
                    found.push(target);
                }
            }
            _ => {}
        }
    }
}

/// The runtimeconfig's facts: target framework, shared frameworks, self-contained or not.
struct RuntimeConfig {
    tfm: Option<String>,
    /// (name, version) of the shared frameworks a framework-dependent app runs on.
    frameworks: Vec<(String, String)>,
    self_contained: bool,
}

fn runtime_config(bytes: &[u8]) -> Result<RuntimeConfig, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let options = value.get("runtimeOptions").ok_or("no \"runtimeOptions\"")?;
    let list = |key: &str| -> Vec<(String, String)> {
        let one = options.get(key.trim_end_matches('s')).into_iter();
        let many = options
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        one.chain(many)
            .filter_map(|f| {
                Some((
                    f.get("name")?.as_str()?.to_string(),
                    f.get("version")?.as_str()?.to_string(),
                ))
            })
            .collect()
    };
    let included = options
        .get("includedFrameworks")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    Ok(RuntimeConfig {
        tfm: options.get("tfm").and_then(Value::as_str).map(String::from),
        frameworks: if included {
            Vec::new()
        } else {
            list("frameworks")
        },
        self_contained: included,
    })
}

/// Written after a package's version when its files disagree with deps.json, and before the
/// reason: "1.0.1 (but /app/X.dll is missing)". Such a version is never the planned one, so
/// verification reports the update failed, with the reason.
const DISAGREES: &str = " (but ";

/// The version deps.json lists, and why its files disagree with it, if they do.
pub fn listed_version(version: &str) -> (&str, Option<&str>) {
    match version.split_once(DISAGREES) {
        Some((listed, problem)) => (listed, Some(problem.trim_end_matches(')'))),
        None => (version, None),
    }
}

/// Why a package's files disagree with what deps.json says of them: a listed file that is
/// missing (the host stops the app), or a managed assembly whose own versions are not the ones
/// deps.json states (the host compares those against the shared framework's copy, so a wrong
/// one decides which copy loads).
fn disagreement(deps: &DepsJson, library: &crate::deps::Library, dir: &str) -> Option<String> {
    for asset in deps.assets(&library.name, &library.version) {
        let path = format!("{dir}/{}", asset.app_relative_path());
        if !fs::exists(&path) {
            return Some(format!("{path} is missing"));
        }
        let managed = asset.kind == AssetKind::Runtime
            || (asset.kind == AssetKind::RuntimeTarget
                && asset.asset_type.as_deref() == Some("runtime"));
        if !managed || (asset.assembly_version.is_none() && asset.file_version.is_none()) {
            continue;
        }
        let own = match fs::read_file(&path).and_then(|bytes| pe::read_versions(&bytes)) {
            Ok(own) => own,
            Err(e) => return Some(format!("{path}: {e}")),
        };
        if differs(&asset.assembly_version, Some(own.assembly)) {
            return Some(format!(
                "{path} is assembly version {}, deps.json says {}",
                own.assembly,
                asset.assembly_version.as_deref().unwrap_or_default()
            ));
        }
        if differs(&asset.file_version, own.file) {
            return Some(format!(
                "{path} is file version {}, deps.json says {}",
                own.file.map_or("(none)".to_string(), |v| v.to_string()),
                asset.file_version.as_deref().unwrap_or_default()
            ));
        }
    }
    None
}

/// Whether a version deps.json lists (none: it lists none, which says nothing) is not the
/// file's own. A file without a version resource is "0.0.0.0" to the SDK that wrote deps.json.
fn differs(listed: &Option<String>, actual: Option<FourPart>) -> bool {
    match listed {
        Some(listed) => FourPart::parse(listed) != Some(actual.unwrap_or(FourPart([0, 0, 0, 0]))),
        None => false,
    }
}

fn app(deps_path: &str, config_path: &str, uid: u32, gid: u32) -> Target {
    let dir = deps_path
        .rsplit_once('/')
        .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
    let mut target = Target {
        id: deps_path.to_string(),
        kind: KIND_APP.into(),
        runtime_version: None,
        packages: Vec::new(),
        unpatchable_reason: None,
        attributes: vec![
            (attr::APP_DIR.into(), dir.to_string()),
            (attr::OWNER.into(), format!("{uid}:{gid}")),
        ],
    };
    let read = |path: &str| fs::read_file(path).map_err(|e| format!("reading {path}: {e}"));
    let deps = match read(deps_path)
        .and_then(|b| DepsJson::parse(&b).map_err(|e| format!("{deps_path}: {e}")))
    {
        Ok(deps) => deps,
        Err(e) => {
            target.unpatchable_reason = Some(e);
            return target;
        }
    };
    let config = match read(config_path)
        .and_then(|b| runtime_config(&b).map_err(|e| format!("{config_path}: {e}")))
    {
        Ok(config) => config,
        Err(e) => {
            target.unpatchable_reason = Some(e);
            return target;
        }
    };
    // The runtimeconfig names the app's framework; deps.json's runtime target says the same in
    // long form and is the fallback for hand-written runtimeconfigs.
    let framework = config
        .tfm
        .as_deref()
        .and_then(Framework::parse)
        .or_else(|| deps.runtime_target().and_then(Framework::parse));
    match &framework {
        Some(framework) => target
            .attributes
            .push((attr::TFM.into(), framework.short_name())),
        None => {
            target.unpatchable_reason = Some(format!(
                "{config_path}: no target framework (runtimeOptions.tfm) to choose package assets for"
            ))
        }
    }
    if let Some(rid) = deps.rid() {
        target.attributes.push((attr::RID.into(), rid.to_string()));
    }
    target.attributes.push((
        attr::DEPLOYMENT.into(),
        if config.self_contained {
            "self-contained"
        } else {
            "framework-dependent"
        }
        .into(),
    ));
    target.runtime_version = config
        .frameworks
        .iter()
        .find(|(name, _)| name == "Microsoft.NETCore.App")
        .or(config.frameworks.first())
        .map(|(_, version)| version.clone());
    for library in deps.libraries() {
        if library.kind != "package" && library.kind != "runtimepack" {
            continue;
        }
        // Verification reads this: what deps.json says must be what the files are.
        let version = match (library.kind == "package")
            .then(|| disagreement(&deps, &library, dir))
            .flatten()
        {
            Some(problem) => format!("{}{DISAGREES}{problem})", library.version),
            None => library.version.clone(),
        };
        target.packages.push(InstalledPackage {
            name: library.name,
            version,
            location: deps_path.to_string(),
        });
        if library.kind == "runtimepack" {
            let name = &target.packages.last().unwrap().name;
            target
                .attributes
                .push((attr::RUNTIME_PACK.into(), name.clone()));
        }
    }
    target
}

/// A single-file bundle or Native AOT executable, as a target that says why it cannot be patched.
fn unpatchable_executable(path: &str) -> Option<Target> {
    let bytes = fs::read_file(path).ok()?;
    if !bytes.starts_with(b"\x7fELF") && !bytes.starts_with(b"MZ") {
        return None;
    }
    let (kind, reason) = if is_bundle(&bytes) {
        (
            KIND_BUNDLE,
            "a single-file bundle: its assemblies and deps.json are inside the executable and \
             cannot be replaced file by file; republish the app with the fixed packages",
        )
    } else if contains(&bytes, NATIVE_AOT_MARKER) {
        (
            KIND_AOT,
            "a Native AOT executable: the packages are compiled into the machine code; rebuild \
             the app with the fixed packages",
        )
    } else {
        return None;
    };
    Some(Target {
        id: path.to_string(),
        kind: kind.into(),
        runtime_version: None,
        packages: Vec::new(),
        unpatchable_reason: Some(reason.into()),
        attributes: Vec::new(),
    })
}

/// An apphost with files bundled into it: the signature is preceded by a non-zero header offset
/// that points inside the file.
pub fn is_bundle(bytes: &[u8]) -> bool {
    let mut from = 0;
    while let Some(at) = find(&bytes[from..], &BUNDLE_SIGNATURE).map(|i| i + from) {
        if at >= 8 {
            let offset = u64::from_le_bytes(bytes[at - 8..at].try_into().unwrap());
            if offset != 0 && offset < bytes.len() as u64 {
                return true;
            }
        }
        from = at + 1;
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_runtime_configs() {
        let framework_dependent = br#"{"runtimeOptions": {"tfm": "net8.0",
            "framework": {"name": "Microsoft.NETCore.App", "version": "8.0.0"}}}"#;
        let config = runtime_config(framework_dependent).unwrap();
        assert_eq!(config.tfm.as_deref(), Some("net8.0"));
        assert_eq!(
            config.frameworks,
            [("Microsoft.NETCore.App".into(), "8.0.0".into())]
        );
        assert!(!config.self_contained);
        let aspnet = br#"{"runtimeOptions": {"tfm": "net8.0", "frameworks": [
            {"name": "Microsoft.NETCore.App", "version": "8.0.0"},
            {"name": "Microsoft.AspNetCore.App", "version": "8.0.0"}]}}"#;
        assert_eq!(runtime_config(aspnet).unwrap().frameworks.len(), 2);
        let self_contained = br#"{"runtimeOptions": {"tfm": "net8.0", "includedFrameworks": [
            {"name": "Microsoft.NETCore.App", "version": "8.0.4"}]}}"#;
        let config = runtime_config(self_contained).unwrap();
        assert!(config.self_contained && config.frameworks.is_empty());
        assert!(runtime_config(b"{}").is_err());
        assert!(runtime_config(b"nope").is_err());
    }

    #[test]
    fn compares_listed_versions_with_the_files_own() {
        let v = |text: &str| FourPart::parse(text);
        let listed = |text: &str| Some(text.to_string());
        assert!(!differs(&listed("8.0.0.0"), v("8.0.0.0")));
        assert!(!differs(&listed("8.0"), v("8.0.0.0")));
        assert!(differs(&listed("8.0.0.0"), v("8.0.0.1")));
        assert!(differs(&listed("not.a.version"), v("1.0.0.0")));
        // Nothing listed says nothing; no version resource is what the SDK writes as 0.0.0.0.
        assert!(!differs(&None, v("1.0.0.0")));
        assert!(!differs(&listed("0.0.0.0"), None));
        assert!(differs(&listed("1.0.0.0"), None));
    }

    #[test]
    fn tells_bundles_from_plain_apphosts() {
        // An apphost: the marker with a zero header offset.
        let mut apphost = b"\x7fELF".to_vec();
        apphost.resize(4096, 0);
        apphost.extend_from_slice(&0u64.to_le_bytes());
        apphost.extend_from_slice(&BUNDLE_SIGNATURE);
        apphost.resize(8192, 0);
        assert!(!is_bundle(&apphost));
        // The bundler writes the header's offset in front of the marker.
        let mut bundle = apphost.clone();
        bundle[4096..4104].copy_from_slice(&6000u64.to_le_bytes());
        assert!(is_bundle(&bundle));
        // An offset past the end is no header.
        bundle[4096..4104].copy_from_slice(&999_999u64.to_le_bytes());
        assert!(!is_bundle(&bundle));
    }
}
