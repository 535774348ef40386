//! Finding Go binaries and Go module trees anywhere in the image.

use copa_plugin_sdk::{InstalledPackage, Target, fs, goproxy};

use crate::buildinfo::{self, BuildInfo};
use crate::gomodfile;
use crate::{attr, kind};

/// Trees that hold no programs or module sources of the image's own, or that the kernel or the
/// package managers own.
const PRUNE_PATHS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/usr/share",
    "/usr/include",
    "/usr/lib/locale",
    "/var/cache",
    "/var/log",
    "/var/lib/apt",
    "/var/lib/dpkg",
];
/// Directory names never worth descending into for binaries or go.mod files.
const PRUNE_NAMES: &[&str] = &[
    ".git",
    "node_modules",
    "__pycache__",
    "site-packages",
    "dist-packages",
    "testdata",
];
/// The smallest Go program (runtime included) is over a megabyte; anything well below is not
/// one, and skipping it spares reading thousands of small scripts and libraries.
const MIN_GO_BINARY: u64 = 512 * 1024;

pub fn targets() -> Vec<Target> {
    let mut binaries = Vec::new();
    let mut mod_files = Vec::new();
    walk("/", &mut binaries, &mut mod_files);
    let mut targets: Vec<Target> = binaries
        .iter()
        .filter_map(|path| binary_target(path))
        .collect();
    targets.extend(module_targets(&mod_files));
    targets
}

/// One pass over the tree: executable files big enough to be Go binaries, and go.mod files
/// (outside vendor directories and module caches, whose go.mod files are not the user's).
fn walk(dir: &str, binaries: &mut Vec<String>, mod_files: &mut Vec<String>) {
    let Ok(names) = fs::read_dir(dir) else {
        return;
    };
    for name in names {
        let path = if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        };
        let Some(stat) = fs::stat(&path) else {
            continue;
        };
        match stat.kind {
            fs::EntryKind::Directory => {
                if PRUNE_PATHS.contains(&path.as_str())
                    || PRUNE_NAMES.contains(&name.as_str())
                    || name == "vendor"
                    || path.ends_with("/pkg/mod")
                {
                    continue;
                }
                walk(&path, binaries, mod_files);
            }
            fs::EntryKind::File => {
                if name == "go.mod" {
                    mod_files.push(path);
                } else if stat.mode & 0o111 != 0 && stat.size >= MIN_GO_BINARY {
                    binaries.push(path);
                }
            }
            _ => {}
        }
    }
}

fn binary_target(path: &str) -> Option<Target> {
    let bytes = fs::read_file(path).ok()?;
    if !buildinfo::looks_like_elf(&bytes) {
        return None;
    }
    let info = match buildinfo::read(&bytes) {
        Ok(info) => info,
        Err(buildinfo::Error::NotGo) => return None,
        Err(e) => {
            copa_plugin_sdk::log::warn(&format!("{path}: {e}"));
            return None;
        }
    };
    let stat = fs::stat(path)?;
    Some(binary(path, &info, stat.mode & 0o7777, stat.uid, stat.gid))
}

/// The toolchain as Trivy names the `stdlib` package's version: "v1.21.13".
pub fn stdlib_version(go_version: &str) -> String {
    let bare = go_version.split_whitespace().next().unwrap_or_default();
    format!("v{}", bare.strip_prefix("go").unwrap_or(bare))
}

pub fn binary(path: &str, info: &BuildInfo, mode: u32, uid: u32, gid: u32) -> Target {
    let mut packages = vec![InstalledPackage {
        name: "stdlib".into(),
        version: stdlib_version(&info.go_version),
        location: path.to_string(),
    }];
    packages.extend(info.deps.iter().map(|dep| InstalledPackage {
        name: dep.path.clone(),
        version: dep.version.clone(),
        location: path.to_string(),
    }));
    let mut attributes = vec![
        (attr::GO_VERSION.to_string(), info.go_version.clone()),
        (attr::MAIN_PACKAGE.to_string(), info.path.clone()),
        (attr::MODE.to_string(), format!("{mode:o}")),
        (attr::OWNER.to_string(), format!("{uid}:{gid}")),
    ];
    if let Some(main) = &info.main {
        attributes.push((attr::MODULE.to_string(), main.path.clone()));
        attributes.push((attr::MODULE_VERSION.to_string(), main.version.clone()));
    }
    for dep in &info.deps {
        if let Some(new) = &dep.replace {
            attributes.push((
                format!("{}{}", attr::REPLACED, dep.path),
                format!("{} {}", new.path, new.version),
            ));
        }
    }
    for (key, value) in &info.settings {
        attributes.push((format!("{}{key}", attr::SETTING), value.clone()));
    }
    let source_ref = source_ref(info);
    match &source_ref {
        Ok(reference) => attributes.push((attr::SOURCE_REF.to_string(), reference.clone())),
        Err(NoSource {
            revision_unknown: true,
            ..
        }) => attributes.push((attr::NEEDS_REF.to_string(), "1".to_string())),
        Err(_) => {}
    }
    Target {
        id: path.to_string(),
        kind: kind::BINARY.into(),
        runtime_version: Some(info.go_version.clone()),
        packages,
        unpatchable_reason: source_ref.err().map(|e| e.reason),
        attributes,
    }
}

/// Why a binary's source is unknown.
struct NoSource {
    reason: String,
    /// Only the revision is missing: the module is known and rebuildable from a named ref.
    revision_unknown: bool,
}

impl From<String> for NoSource {
    fn from(reason: String) -> Self {
        NoSource {
            reason,
            revision_unknown: false,
        }
    }
}

/// The module version the binary's source can be fetched at (a commit, or the version
/// `go install module@version` built), or why there is none.
fn source_ref(info: &BuildInfo) -> Result<String, NoSource> {
    let Some(main) = &info.main else {
        return Err(format!(
            "{} was built from files outside a module; there is no source to rebuild it from",
            info.path
        )
        .into());
    };
    if !goproxy::is_valid_module_path(&main.path) {
        return Err(format!(
            "main module path {:?} is not a valid module path",
            main.path
        )
        .into());
    }
    if main.replace.is_some() {
        return Err(format!(
            "the main module {} is replaced by a local directory at build time",
            main.path
        )
        .into());
    }
    if info.path.starts_with("cmd/") && !info.path.contains('.') {
        return Err(format!(
            "{} is part of the Go toolchain; update the toolchain instead",
            info.path
        )
        .into());
    }
    let unknown = |reason: String| NoSource {
        reason,
        revision_unknown: true,
    };
    match (info.setting("vcs"), info.setting("vcs.revision")) {
        (Some("git") | None, Some(revision)) => {
            if info.setting("vcs.modified") == Some("true") {
                return Err(unknown(format!(
                    "built from a modified checkout of {} (vcs.modified=true): the exact source is unknown; name it with --go-source {}=GIT-URL@REF",
                    main.path, main.path
                )));
            }
            Ok(revision.to_string())
        }
        (Some(vcs), Some(_)) => {
            Err(format!("built from a {vcs} checkout; only git is supported").into())
        }
        (_, None) if main.version != "(devel)" && !main.version.is_empty() => {
            Ok(main.version.clone())
        }
        (_, None) => Err(unknown(format!(
            "built without VCS information (no vcs.revision) from {} (devel): the source revision is unknown; build it in a git checkout (go build stamps vcs.revision unless -buildvcs=false), or name it with --go-source {}=GIT-URL@REF",
            main.path, main.path
        ))),
    }
}

/// A target per go.mod: its requirements, whether it vendors, and the workspace it is in.
fn module_targets(mod_files: &[String]) -> Vec<Target> {
    let mut targets = Vec::new();
    for path in mod_files {
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        let dir = path.trim_end_matches("/go.mod");
        let dir = if dir.is_empty() { "/" } else { dir };
        let file = match gomodfile::parse(&text) {
            Ok(file) => file,
            Err(e) => {
                copa_plugin_sdk::log::warn(&format!("{path}: {e}"));
                continue;
            }
        };
        // The standard library's and the go command's own modules (a GOROOT in the image).
        if matches!(file.module.as_deref(), Some("std" | "cmd") | None) {
            continue;
        }
        let vendored = fs::exists(&format!("{dir}/vendor/modules.txt"));
        let packages = file
            .requires
            .iter()
            .map(|r| InstalledPackage {
                name: r.path.clone(),
                version: r.version.clone(),
                location: path.clone(),
            })
            .collect();
        let stat = fs::stat(path);
        let mut attributes = vec![
            (
                attr::MODULE.to_string(),
                file.module.clone().unwrap_or_default(),
            ),
            (
                attr::VENDORED.to_string(),
                if vendored { "1" } else { "0" }.to_string(),
            ),
            (
                attr::OWNER.to_string(),
                stat.map(|s| format!("{}:{}", s.uid, s.gid))
                    .unwrap_or_else(|| "0:0".into()),
            ),
        ];
        for replace in &file.replaces {
            attributes.push((
                format!("{}{}", attr::REPLACED, replace.old),
                format!(
                    "{} {}",
                    replace.new,
                    replace.new_version.as_deref().unwrap_or("")
                )
                .trim_end()
                .to_string(),
            ));
        }
        if let Some(work) = workspace_of(dir) {
            attributes.push((attr::WORKSPACE.to_string(), work));
        }
        targets.push(Target {
            id: dir.to_string(),
            kind: kind::MODULE.into(),
            runtime_version: file.go.clone(),
            packages,
            unpatchable_reason: None,
            attributes,
        });
    }
    targets
}

/// The directory of the go.work above `dir` that uses `dir`, the way the go command finds its
/// workspace (the nearest go.work upwards).
fn workspace_of(dir: &str) -> Option<String> {
    let mut current = dir.to_string();
    loop {
        let candidate = format!("{}/go.work", current.trim_end_matches('/'));
        if let Ok(text) = fs::read_to_string(&candidate) {
            let work = gomodfile::parse(&text).ok()?;
            let root = current.trim_end_matches('/');
            let uses_dir = work.uses.iter().any(|used| {
                let used = used.trim_start_matches("./").trim_end_matches('/');
                let full = if used.is_empty() || used == "." {
                    root.to_string()
                } else {
                    format!("{root}/{used}")
                };
                full == dir || (root.is_empty() && full == format!("/{used}"))
            });
            return uses_dir.then(|| {
                if root.is_empty() {
                    "/".into()
                } else {
                    root.into()
                }
            });
        }
        if current == "/" || current.is_empty() {
            return None;
        }
        current = match current.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => current[..i].to_string(),
            None => return None,
        };
    }
}
