//! Finding Python environments and their installed packages in the image.

use copa_plugin_sdk::{InstalledPackage, Target, fs};

use crate::attr;
use crate::metadata::{name_and_version, python_dir_version, venv_python_version};

/// Directories that never hold an environment worth patching, or that are huge and irrelevant.
const PRUNE: &[&str] = &[
    "proc",
    "sys",
    "dev",
    "node_modules",
    "__pycache__",
    ".git",
    "site-packages",
    "dist-packages",
];

/// Prefixes whose `lib/pythonX.Y/{site,dist}-packages` belong to a system interpreter.
const SYSTEM_PREFIXES: &[&str] = &["/usr", "/usr/local"];

pub fn environments() -> Vec<Target> {
    let mut targets = Vec::new();
    for cfg in fs::find("/", "pyvenv.cfg", PRUNE) {
        let root = cfg.trim_end_matches("/pyvenv.cfg");
        targets.extend(virtual_environment(root, &cfg));
    }
    targets.extend(system_environments());
    targets
}

fn virtual_environment(root: &str, cfg: &str) -> Option<Target> {
    let version = fs::read_to_string(cfg)
        .ok()
        .and_then(|t| venv_python_version(&t));
    let lib = format!("{root}/lib");
    let site = fs::read_dir(&lib)
        .ok()?
        .into_iter()
        .filter(|d| python_dir_version(d).is_some())
        .map(|d| format!("{lib}/{d}/site-packages"))
        .find(|s| fs::is_dir(s))?;
    let packages = installed_packages(&site);
    let python = format!("{root}/bin/python");
    let unpatchable_reason = if !fs::exists(&python) {
        Some(format!("no interpreter at {python}"))
    } else if !has_pip(&[site.as_str()]) {
        Some(
            "the virtual environment has no pip (a tooling-image path is not supported yet)".into(),
        )
    } else {
        None
    };
    Some(Target {
        id: root.to_string(),
        kind: "venv".into(),
        runtime_version: version,
        packages,
        unpatchable_reason,
        attributes: vec![
            (attr::PYTHON.into(), python),
            (attr::SYSTEM.into(), "0".into()),
            (attr::OWNER.into(), owner(&site)),
            ("site-packages".into(), site),
        ],
    })
}

/// Every `site-packages` / `dist-packages` directory of every `pythonX.Y` under the system
/// prefixes, plus Debian's version-independent `/usr/lib/python3/dist-packages`.
fn system_environments() -> Vec<Target> {
    let mut targets = Vec::new();
    for prefix in SYSTEM_PREFIXES {
        let lib = format!("{prefix}/lib");
        let Ok(entries) = fs::read_dir(&lib) else {
            continue;
        };
        for dir in entries {
            let Some((major, minor)) = python_dir_version(&dir) else {
                continue;
            };
            for flavour in ["site-packages", "dist-packages"] {
                let site = format!("{lib}/{dir}/{flavour}");
                if fs::is_dir(&site) {
                    targets.extend(system_environment(site, major, minor));
                }
            }
        }
    }
    let debian_shared = "/usr/lib/python3/dist-packages".to_string();
    if fs::is_dir(&debian_shared) {
        let newest = newest_system_python(3);
        if let Some((major, minor)) = newest {
            targets.extend(system_environment(debian_shared, major, minor));
        }
    }
    targets
}

fn system_environment(site: String, major: u32, minor: u32) -> Option<Target> {
    let packages = installed_packages(&site);
    if packages.is_empty() {
        return None;
    }
    let python = ["/usr/local/bin", "/usr/bin"]
        .iter()
        .map(|bin| format!("{bin}/python{major}.{minor}"))
        .find(|p| fs::exists(p));
    let unpatchable_reason = match &python {
        None => Some(format!("no python{major}.{minor} interpreter in the image")),
        Some(_)
            if !has_pip(
                &system_site_dirs(major, minor)
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ) =>
        {
            Some(format!(
                "python{major}.{minor} has no pip (a tooling-image path is not supported yet)"
            ))
        }
        Some(_) => None,
    };
    Some(Target {
        id: site.clone(),
        kind: "site-packages".into(),
        runtime_version: Some(format!("{major}.{minor}")),
        packages,
        unpatchable_reason,
        attributes: vec![
            (attr::PYTHON.into(), python.unwrap_or_default()),
            (attr::SYSTEM.into(), "1".into()),
            (attr::OWNER.into(), owner(&site)),
            ("site-packages".into(), site),
        ],
    })
}

fn system_site_dirs(major: u32, minor: u32) -> Vec<String> {
    let mut dirs = vec![format!("/usr/lib/python{major}/dist-packages")];
    for prefix in SYSTEM_PREFIXES {
        for flavour in ["site-packages", "dist-packages"] {
            dirs.push(format!("{prefix}/lib/python{major}.{minor}/{flavour}"));
        }
    }
    dirs
}

fn newest_system_python(major: u32) -> Option<(u32, u32)> {
    ["/usr/bin", "/usr/local/bin"]
        .iter()
        .filter_map(|bin| fs::read_dir(bin).ok())
        .flatten()
        .filter_map(|name| python_dir_version(&name))
        .filter(|(m, _)| *m == major)
        .max()
}

fn owner(path: &str) -> String {
    fs::stat(path)
        .map(|s| format!("{}:{}", s.uid, s.gid))
        .unwrap_or_else(|| "0:0".into())
}

fn has_pip(site_dirs: &[&str]) -> bool {
    site_dirs
        .iter()
        .any(|site| fs::is_dir(&format!("{site}/pip")))
}

fn installed_packages(site: &str) -> Vec<InstalledPackage> {
    let Ok(entries) = fs::read_dir(site) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let location = format!("{site}/{entry}");
            let metadata = if entry.ends_with(".dist-info") {
                format!("{location}/METADATA")
            } else if entry.ends_with(".egg-info") {
                if fs::is_dir(&location) {
                    format!("{location}/PKG-INFO")
                } else {
                    location.clone()
                }
            } else {
                return None;
            };
            let text = fs::read_to_string(&metadata).ok()?;
            let (name, version) = name_and_version(&text)?;
            Some(InstalledPackage {
                name,
                version,
                location,
            })
        })
        .collect()
}
