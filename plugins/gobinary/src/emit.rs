//! From a plan to tooling steps: a Go toolchain container rebuilds each binary from its source,
//! or updates a module tree copied into it. The shell scripts are fixed text; everything that
//! comes from the image or the plan reaches them as environment variables, never as code.

use copa_plugin_sdk::gomod::ModuleVersion;
use copa_plugin_sdk::goproxy;
use copa_plugin_sdk::{
    Plan, Policy, Step, Target, ToolingOutput, ToolingStep, attribute, fs, updates_for,
};

use crate::plan::STDLIB;
use crate::source::{self, Source};
use crate::{attr, kind};

/// What `--tooling-image go=REF` replaces; the manifest declares it.
pub const TOOLING: &str = "go";
/// Where the rebuilt binary is written inside the container.
const OUTPUT: &str = "/copa-go/out/binary";

/// Rebuilds one binary. The source is a git checkout of the recorded revision (COPA_SOURCE=git)
/// or the module proxy's copy of the module (proxy: the go command fetches it, through GOPROXY
/// or the VCS directly for GOPRIVATE modules). The module updates are applied with `go get`
/// (replace directives stay as they are: `go get` never edits them) and the main package is
/// built with the original flags.
///
/// In a checkout the go.mod changes go to a copy outside it (`-modfile`), so the checkout stays
/// exactly the revision and the go command stamps vcs.revision, vcs.time and vcs.modified=false
/// like the original build; the dependencies it records are the new ones.
const REBUILD_SCRIPT: &str = r#"set -eu
rm -rf /copa-go/src /copa-go/mod
mkdir -p /copa-go/mod "$(dirname "$COPA_OUTPUT")"
if [ "$COPA_SOURCE" = git ]; then
  # A repository the user named may belong to another user (copied in from the image).
  git -c safe.directory='*' clone -q --no-checkout -- "$COPA_GIT_URL" /copa-go/src
  cd /copa-go/src
  git -c advice.detachedHead=false checkout -q --detach "$COPA_GIT_REF" 2>/dev/null ||
    git -c advice.detachedHead=false checkout -q --detach "origin/$COPA_GIT_REF" ||
    { echo "copa-go: $COPA_GIT_URL has no revision $COPA_GIT_REF" >&2; exit 1; }
  if [ -n "$COPA_GIT_SUBDIR" ] && [ -f "$COPA_GIT_SUBDIR/go.mod" ]; then cd "./$COPA_GIT_SUBDIR"; fi
  cp go.mod /copa-go/mod/go.mod
  if [ -f go.sum ]; then cp go.sum /copa-go/mod/go.sum; fi
  export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod -modfile=/copa-go/mod/go.mod" GOWORK=off
  vcs=-buildvcs=true
else
  export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
  cd /tmp
  dir=$(GOTOOLCHAIN=local go mod download -json "$COPA_MODULE@$COPA_REF" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ -n "$dir" ] || { echo "copa-go: no source for $COPA_MODULE@$COPA_REF" >&2; exit 1; }
  cp -R "$dir" /copa-go/src
  chmod -R u+w /copa-go/src
  cd /copa-go/src
  vcs=
fi
module=$(sed -n 's/^module[[:space:]]\{1,\}"\{0,1\}\([^"[:space:]]*\).*/\1/p' go.mod | head -n 1)
[ "$module" = "$COPA_MODULE" ] || { echo "copa-go: the source holds module $module, not $COPA_MODULE" >&2; exit 1; }
# Inside the module: the go command accepts a toolchain there without a checksum database
# (GOSUMDB=off for private proxies), and records it in go.sum like any module.
export GOTOOLCHAIN="$COPA_GOTOOLCHAIN"
set -f
# The binary's own dependency versions first (one patched before has newer ones than its
# source's go.mod), then the fixes.
if [ -n "$COPA_KEEP" ]; then go get $COPA_KEEP; fi
if [ -n "$COPA_GET" ]; then go get $COPA_GET; fi
set +f
if [ -z "$vcs" ] && [ -f vendor/modules.txt ]; then go mod vendor; fi
if [ "$COPA_PACKAGE" = "$COPA_MODULE" ]; then pkg=.; else pkg="./${COPA_PACKAGE#"$COPA_MODULE"/}"; fi
set -- build -o "$COPA_OUTPUT"
if [ -n "$vcs" ]; then set -- "$@" "$vcs"; fi
if [ -n "${COPA_TAGS:-}" ]; then set -- "$@" -tags "$COPA_TAGS"; fi
if [ -n "${COPA_LDFLAGS:-}" ]; then set -- "$@" -ldflags "$COPA_LDFLAGS"; fi
if [ -n "${COPA_GCFLAGS:-}" ]; then set -- "$@" -gcflags "$COPA_GCFLAGS"; fi
if [ -n "${COPA_ASMFLAGS:-}" ]; then set -- "$@" -asmflags "$COPA_ASMFLAGS"; fi
if [ -n "${COPA_BUILDMODE:-}" ]; then set -- "$@" -buildmode "$COPA_BUILDMODE"; fi
if [ "${COPA_TRIMPATH:-}" = true ]; then set -- "$@" -trimpath; fi
go "$@" "$pkg"
go version -m "$COPA_OUTPUT"
"#;

/// Updates a module tree copied in from the image: `go get` the fixed versions (outside any
/// workspace, so only this go.mod changes) and re-vendor when it vendors. A go.work that uses
/// the module (COPA_WORK: its directory) must list a go at least as new as the module's, or
/// the go command refuses the workspace: its go line is raised when the module's now is newer.
const MODULE_SCRIPT: &str = r#"set -eu
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" GOWORK=off
cd "$COPA_DIR"
set -f
go get $COPA_GET
set +f
if [ -f vendor/modules.txt ]; then go mod vendor; fi
if [ -n "${COPA_WORK:-}" ]; then
  go_line() { sed -n 's/^go[[:space:]]\{1,\}\([0-9][^[:space:]]*\).*/\1/p' "$1" | head -n 1; }
  need=$(go_line go.mod)
  have=$(go_line "$COPA_WORK/go.work")
  if [ -n "$need" ] && [ "$need" != "$have" ] &&
     [ "$(printf '%s\n%s\n' "$have" "$need" | sort -V | tail -n 1)" = "$need" ]; then
    go work edit -go="$need" "$COPA_WORK/go.work"
  fi
fi
"#;

/// Build settings that become plain environment variables of the build.
const ENV_SETTINGS: &[&str] = &[
    "CGO_ENABLED",
    "CGO_CFLAGS",
    "CGO_CPPFLAGS",
    "CGO_CXXFLAGS",
    "CGO_LDFLAGS",
    "GOOS",
    "GOARCH",
    "GOAMD64",
    "GOARM",
    "GOARM64",
    "GO386",
    "GOMIPS",
    "GOMIPS64",
    "GOPPC64",
    "GORISCV64",
    "GOWASM",
    "GOEXPERIMENT",
];
/// Build flags and the variables the script turns back into flags.
const FLAG_SETTINGS: &[(&str, &str)] = &[
    ("-tags", "COPA_TAGS"),
    ("-ldflags", "COPA_LDFLAGS"),
    ("-gcflags", "COPA_GCFLAGS"),
    ("-asmflags", "COPA_ASMFLAGS"),
    ("-buildmode", "COPA_BUILDMODE"),
    ("-trimpath", "COPA_TRIMPATH"),
];

pub fn steps(targets: &[Target], plan: &Plan, policy: &Policy) -> Result<Vec<Step>, String> {
    let sources = source::configured(policy)?;
    let mut steps = Vec::new();
    for target in targets {
        let updates = updates_for(plan, target);
        if updates.is_empty() {
            continue;
        }
        let planned: Vec<_> = updates.iter().map(|&i| &plan.updates[i as usize]).collect();
        let modules: Vec<String> = planned
            .iter()
            .filter(|u| u.package != STDLIB)
            .map(|u| format!("{}@{}", u.package, u.to_version))
            .collect();
        let step = match target.kind.as_str() {
            kind::BINARY => {
                let toolchain = planned
                    .iter()
                    .find(|u| u.package == STDLIB)
                    .map(|u| format!("go{}", u.to_version.trim_start_matches('v')));
                let source = source::of(target, &sources)?;
                let updated: Vec<&str> = planned.iter().map(|u| u.package.as_str()).collect();
                let keep = kept_dependencies(target, &updated);
                rebuild(target, &source, &modules, &keep, toolchain, updates)?
            }
            _ => update_module(target, &modules, updates),
        };
        steps.push(Step::Tooling(step));
    }
    Ok(steps)
}

/// The dependencies of a binary to build at the versions it records ("path@version"): all but
/// the updated and the replaced ones (a replace directive decides those), and none whose path
/// or version is not one (they become arguments of `go get`).
fn kept_dependencies(target: &Target, updated: &[&str]) -> Vec<String> {
    target
        .packages
        .iter()
        .filter(|p| p.name != STDLIB && !updated.contains(&p.name.as_str()))
        .filter(|p| attribute(target, &format!("{}{}", attr::REPLACED, p.name)).is_none())
        .filter(|p| {
            goproxy::is_valid_module_path(&p.name) && p.version.parse::<ModuleVersion>().is_ok()
        })
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect()
}

fn required<'a>(target: &'a Target, key: &str) -> Result<&'a str, String> {
    attribute(target, key).ok_or_else(|| format!("target {} has no {key}", target.id))
}

fn owner(target: &Target) -> (u32, u32) {
    attribute(target, attr::OWNER)
        .and_then(|o| o.split_once(':'))
        .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
        .unwrap_or((0, 0))
}

fn rebuild(
    target: &Target,
    source: &Source,
    modules: &[String],
    keep: &[String],
    toolchain: Option<String>,
    updates: Vec<u32>,
) -> Result<ToolingStep, String> {
    let go_version = required(target, attr::GO_VERSION)?;
    // The original toolchain unless the plan moves it: the go command fetches it from the
    // module proxy when the tooling image has another one.
    let toolchain = toolchain.unwrap_or_else(|| {
        go_version
            .split_whitespace()
            .next()
            .unwrap_or(go_version)
            .to_string()
    });
    let module = required(target, attr::MODULE)?;
    let mut copy_in = Vec::new();
    let mut env = vec![("COPA_MODULE".to_string(), module.to_string())];
    match source {
        Source::Git {
            url,
            reference,
            subdir,
        } => {
            env.extend([
                ("COPA_SOURCE".to_string(), "git".to_string()),
                ("COPA_GIT_URL".to_string(), url.clone()),
                ("COPA_GIT_REF".to_string(), reference.clone()),
                ("COPA_GIT_SUBDIR".to_string(), subdir.clone()),
            ]);
            // A repository path that the image itself holds comes along into the container.
            if url.starts_with('/') && fs::exists(url) {
                copy_in.push(url.clone());
            }
        }
        Source::Proxy { reference } => env.extend([
            ("COPA_SOURCE".to_string(), "proxy".to_string()),
            ("COPA_REF".to_string(), reference.clone()),
        ]),
    }
    env.extend([
        (
            "COPA_PACKAGE".to_string(),
            required(target, attr::MAIN_PACKAGE)?.to_string(),
        ),
        ("COPA_KEEP".to_string(), keep.join(" ")),
        ("COPA_GET".to_string(), modules.join(" ")),
        ("COPA_GOTOOLCHAIN".to_string(), toolchain.clone()),
        ("COPA_OUTPUT".to_string(), OUTPUT.to_string()),
    ]);
    let setting = |key: &str| attribute(target, &format!("{}{key}", attr::SETTING));
    for key in ENV_SETTINGS {
        if let Some(value) = setting(key) {
            env.push((key.to_string(), value.to_string()));
        }
    }
    for (key, variable) in FLAG_SETTINGS {
        if let Some(value) = setting(key) {
            env.push((variable.to_string(), value.to_string()));
        }
    }
    let (uid, gid) = owner(target);
    let mode = attribute(target, attr::MODE)
        .and_then(|m| u32::from_str_radix(m, 8).ok())
        .unwrap_or(0o755);
    let mut what = modules.to_vec();
    if toolchain != go_version {
        what.push(toolchain.clone());
    }
    let from = match source {
        Source::Git { url, reference, .. } => format!("{url} at {reference}"),
        Source::Proxy { reference } => format!("the module proxy's {module}@{reference}"),
    };
    Ok(ToolingStep {
        description: format!("rebuild {} from {from} with {}", target.id, what.join(", ")),
        tooling: TOOLING.into(),
        default_image: default_image(&toolchain),
        argv: vec![
            "sh".into(),
            "-c".into(),
            REBUILD_SCRIPT.into(),
            "copa-go-rebuild".into(),
        ],
        env,
        workdir: None,
        // The host gives the go command a GOPROXY naming the proxies the plan read, and the
        // logins the user gave for them.
        index_ecosystem: Some(goproxy::ECOSYSTEM.into()),
        ca_variables: goproxy::CA_VARIABLES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        copy_in,
        outputs: vec![ToolingOutput {
            from: OUTPUT.into(),
            to: target.id.clone(),
            mode: Some(mode),
            uid,
            gid,
        }],
        updates,
    })
}

/// The official Go image of the toolchain's release line ("golang:1.22"); any Go from 1.21 on
/// works, since it fetches the exact toolchain itself.
fn default_image(toolchain: &str) -> String {
    let bare = toolchain.trim_start_matches("go");
    let line: Vec<&str> = bare.split('.').take(2).collect();
    format!("golang:{}", line.join("."))
}

fn update_module(target: &Target, modules: &[String], updates: Vec<u32>) -> ToolingStep {
    let dir = target.id.clone();
    let (uid, gid) = owner(target);
    let vendored = attribute(target, attr::VENDORED) == Some("1");
    let mut outputs: Vec<ToolingOutput> = ["go.mod", "go.sum"]
        .iter()
        .map(|file| {
            let path = format!("{}/{file}", dir.trim_end_matches('/'));
            ToolingOutput {
                from: path.clone(),
                to: path,
                mode: Some(0o644),
                uid,
                gid,
            }
        })
        .collect();
    if vendored {
        let path = format!("{}/vendor", dir.trim_end_matches('/'));
        outputs.push(ToolingOutput {
            from: path.clone(),
            to: path,
            mode: None,
            uid,
            gid,
        });
    }
    let mut copy_in = vec![dir.clone()];
    let mut env = vec![
        ("COPA_DIR".to_string(), dir.clone()),
        ("COPA_GET".to_string(), modules.join(" ")),
    ];
    let mut workspace = String::new();
    if let Some(work) = attribute(target, attr::WORKSPACE) {
        let path = format!("{}/go.work", work.trim_end_matches('/'));
        let stat = fs::stat(&path);
        outputs.push(ToolingOutput {
            from: path.clone(),
            to: path.clone(),
            mode: Some(stat.as_ref().map_or(0o644, |s| s.mode & 0o7777)),
            uid: stat.as_ref().map_or(0, |s| s.uid),
            gid: stat.as_ref().map_or(0, |s| s.gid),
        });
        workspace = format!(", and the go line of {path} when the module now needs a newer Go");
        copy_in.push(path);
        env.push(("COPA_WORK".to_string(), work.to_string()));
    }
    let go = target.runtime_version.as_deref().unwrap_or("1.21");
    ToolingStep {
        description: format!(
            "update {}/go.mod: {}{workspace} (binaries built from it still hold the old code until rebuilt)",
            dir.trim_end_matches('/'),
            modules.join(", ")
        ),
        tooling: TOOLING.into(),
        default_image: default_image(go),
        argv: vec![
            "sh".into(),
            "-c".into(),
            MODULE_SCRIPT.into(),
            "copa-go-mod".into(),
        ],
        env,
        workdir: None,
        index_ecosystem: Some(goproxy::ECOSYSTEM.into()),
        ca_variables: goproxy::CA_VARIABLES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        copy_in,
        outputs,
        updates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use copa_plugin_sdk::InstalledPackage;

    #[test]
    fn a_rebuild_keeps_the_dependency_versions_the_binary_records() {
        let package = |name: &str, version: &str| InstalledPackage {
            name: name.into(),
            version: version.into(),
            location: "/app/x".into(),
        };
        let target = Target {
            id: "/app/x".into(),
            kind: kind::BINARY.into(),
            runtime_version: None,
            packages: vec![
                package(STDLIB, "v1.21.13"),
                package("golang.org/x/crypto", "v0.25.0"),
                package("golang.org/x/text", "v0.16.0"),
                package("example.com/forked", "v1.0.0"),
                package("-toolexec=evil", "v1.0.0"),
                package("example.com/odd", "not-a-version"),
            ],
            unpatchable_reason: None,
            attributes: vec![(
                format!("{}example.com/forked", attr::REPLACED),
                "../forked".into(),
            )],
        };
        assert_eq!(
            kept_dependencies(&target, &["golang.org/x/text"]),
            ["golang.org/x/crypto@v0.25.0"]
        );
    }

    #[test]
    fn default_images_follow_the_release_line() {
        assert_eq!(default_image("go1.22.12"), "golang:1.22");
        assert_eq!(default_image("go1.21rc2"), "golang:1.21rc2");
        assert_eq!(default_image("1.21"), "golang:1.21");
    }
}
