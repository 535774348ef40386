//! The apk patcher: Alpine, Wolfi and Chainguard packages, upgraded with the image's own apk
//! from the image's own repositories.

mod db;

use copa_plugin_sdk::apk::ApkVersion;
use copa_plugin_sdk::ospkg::{self, OsRelease, Repositories, exact_version};
use copa_plugin_sdk::{
    Finding, InstalledPackage, Manifest, OPENSSL_CA_VARIABLES, PackageClass, Plan, PluginInfo,
    Policy, RunStep, Step, Target, Update, attribute, fs, register_patcher, updates_for,
};

use db::{WorldEntry, parse_installed, parse_repositories, parse_world};

#[derive(Default)]
struct Apk;

register_patcher!(Apk);

const INSTALLED: &str = "/lib/apk/db/installed";
const WORLD: &str = "/etc/apk/world";
const ARCH: &str = "/etc/apk/arch";
const REPOSITORIES: &str = "/etc/apk/repositories";
/// apk-tools 3 also reads `*.list` files from these directories.
const REPOSITORIES_D: &[&str] = &["/etc/apk/repositories.d", "/lib/apk/repositories.d"];
/// Where distributions put the apk binary (Alpine: /sbin, Wolfi and Chainguard: /usr/bin).
const APK_BINARIES: &[&str] = &["/sbin/apk", "/usr/sbin/apk", "/usr/bin/apk", "/bin/apk"];
const SHELLS: &[&str] = &["/bin/sh", "/usr/bin/sh"];

/// Names of the target attributes this plugin writes in `detect` and reads back later.
mod attr {
    pub const OS: &str = "os";
    pub const ARCH: &str = "arch";
    /// The apk binary found in the image.
    pub const APK: &str = "apk";
    /// The shell that runs the upgrade script.
    pub const SHELL: &str = "shell";
    /// One repository a line: its `package-index` ecosystem (`apk <url> <arch>`), led by
    /// `@tag ` when the repository is tagged.
    pub const REPOSITORIES: &str = "repositories";
    /// The world file's dependencies, one a line, as written.
    pub const WORLD: &str = "world";
}

/// What apk writes besides the packages and its database: downloaded indexes and packages
/// (`--no-cache` avoids most, a configured cache would not), the database lock, the scratch
/// directory where package scripts run from, and apk-tools 3's log. `/lib/apk/db/installed`,
/// `scripts.tar` and `triggers` are the database itself and stay, as does `/etc/apk/world`.
const NOT_IN_LAYER: &[&str] = &[
    "/var/cache/apk",
    "/etc/apk/cache",
    "/lib/apk/db/lock",
    "/lib/apk/exec",
    "/var/log/apk.log",
];

/// The virtual package that carries the patch's constraints for one `apk add`.
const VIRTUAL: &str = ".copa-patch";

/// Installs the planned versions without leaving them pinned.
///
/// `apk upgrade NAME` upgrades only to the newest build (its arguments are names, not
/// constraints), and `apk add NAME=VERSION` installs an exact build but writes that constraint
/// into /etc/apk/world, which pins the package at that version for every later `apk upgrade`
/// and promotes dependencies to world entries. So the constraints go into a virtual package
/// (`apk add --virtual`, the mechanism apk documents for temporary dependencies): apk must
/// satisfy them, exactly (`name=1.2.3-r1`) or as a minimum (`name>=1.2.3-r1`, when no index
/// told the plan which build the repositories have), and fails rather than install anything
/// else. `--upgrade` makes apk take the newest build that meets a minimum, and upgrades the
/// named packages' dependencies as far as needed. Deleting the virtual package afterwards
/// returns world to what it was; the packages stay, since apk never downgrades by itself.
/// `--no-cache` fetches the indexes in memory and keeps nothing; both flags exist in apk-tools
/// 2 and 3 (unlike `--no-interactive` or `--no-logfile`, which apk-tools 2 rejects).
/// The apk binary and then the constraints follow the script as positional parameters, never
/// parsed by the shell.
fn upgrade_script() -> String {
    format!(
        "set -e\napk=$1\nshift\n\
         \"$apk\" add --no-cache --upgrade --virtual {VIRTUAL} \"$@\"\n\
         \"$apk\" del --no-cache {VIRTUAL}"
    )
}

impl copa_plugin_sdk::Patcher for Apk {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "apk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            package_class: PackageClass::Os,
            report_types: vec!["alpine".into(), "wolfi".into(), "chainguard".into()],
            purl_types: vec!["apk".into()],
            description: "Alpine, Wolfi and Chainguard packages (apk database), upgraded with apk"
                .into(),
        }
    }

    /// apk runs as root (it owns the apk database); the repositories are the image's own, read
    /// through `package-index`, so no index, tooling or option of its own.
    fn manifest(&self) -> Manifest {
        Manifest {
            root_run_steps: true,
            ..copa_plugin_sdk::asks_for_nothing(self.info())
        }
    }

    fn detect(&self) -> Result<Vec<Target>, String> {
        Ok(detect().into_iter().collect())
    }

    fn plan(
        &self,
        targets: Vec<Target>,
        findings: Vec<Finding>,
        policy: Policy,
    ) -> Result<Plan, String> {
        let Some(target) = targets.first() else {
            return Ok(ospkg::skip_all(&findings, "no apk database in the image"));
        };
        let world = parse_world(attribute(target, attr::WORLD).unwrap_or_default());
        let repositories = ImageRepositories::of(target, &world);
        let held = |name: &str| {
            world
                .iter()
                .find(|entry| entry.name == name && entry.pins())
                .map(|entry| format!("pinned in {WORLD} ({})", entry.text))
        };
        ospkg::plan::<ApkVersion>(target, &findings, policy.update_all, &repositories, &held)
    }

    fn emit_commands(
        &self,
        targets: Vec<Target>,
        plan: Plan,
        _policy: Policy,
    ) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        for target in &targets {
            let updates = updates_for(&plan, target);
            if updates.is_empty() {
                continue;
            }
            if let Some(reason) = &target.unpatchable_reason {
                return Err(reason.clone());
            }
            let (Some(shell), Some(apk)) =
                (attribute(target, attr::SHELL), attribute(target, attr::APK))
            else {
                return Err(format!("target {} has no apk or no shell", target.id));
            };
            let mut argv: Vec<String> = vec![
                shell.into(),
                "-c".into(),
                upgrade_script(),
                "copa-apk".into(),
                apk.into(),
            ];
            argv.extend(
                updates
                    .iter()
                    .map(|&i| &plan.updates[i as usize])
                    .map(constraint),
            );
            steps.push(Step::Run(RunStep {
                description: format!("apk add --upgrade (virtual {VIRTUAL}) in {}", target.id),
                argv,
                env: Vec::new(),
                workdir: None,
                user: None,
                index_ecosystem: Some("apk".into()),
                ca_variables: OPENSSL_CA_VARIABLES.iter().map(|s| s.to_string()).collect(),
                // Packages hold files anywhere, and their install scripts run as root.
                changes: vec!["/".into()],
                exclude: NOT_IN_LAYER.iter().map(|s| s.to_string()).collect(),
                updates,
            }));
        }
        Ok(steps)
    }
}

/// The apk dependency that installs a planned version: exactly it (`name=1.2.3-r1`), or, when
/// the plan only knows a minimum (`at_least`), apk's own `>=` constraint, which apk meets with
/// the newest build it has.
fn constraint(update: &Update) -> String {
    let package = &update.package;
    match exact_version(update) {
        Some(version) => format!("{package}={version}"),
        None => format!("{package}>={}", update.to_version),
    }
}

/// The apk database of an Alpine-family image, or none.
fn detect() -> Option<Target> {
    let os = OsRelease::read()?;
    if !os.is_like(&["alpine", "wolfi", "chainguard"]) {
        return None;
    }
    let installed = fs::read_to_string(INSTALLED).ok()?;
    let packages = parse_installed(&installed);
    let arch = db::architecture(fs::read_to_string(ARCH).ok().as_deref(), &packages)
        .unwrap_or_else(|| "x86_64".into());

    let mut repositories = Vec::new();
    if let Ok(text) = fs::read_to_string(REPOSITORIES) {
        repositories.extend(parse_repositories(&text));
    }
    for dir in REPOSITORIES_D {
        for name in fs::read_dir(dir).unwrap_or_default() {
            if name.ends_with(".list")
                && let Ok(text) = fs::read_to_string(&format!("{dir}/{name}"))
            {
                repositories.extend(parse_repositories(&text));
            }
        }
    }
    repositories.dedup();
    let repository_lines: Vec<String> = repositories
        .iter()
        .map(|r| db::repository_line(r, &arch))
        .collect();

    let world = fs::read_to_string(WORLD).unwrap_or_default();
    let world_lines: Vec<&str> = world.split_whitespace().collect();

    let apk = APK_BINARIES.iter().find(|p| fs::exists(p));
    let shell = SHELLS.iter().find(|p| fs::exists(p));
    let unpatchable_reason = match (apk, shell) {
        (None, _) => Some(
            "no apk in the image (distroless); patching through a tooling container is not \
             supported yet"
                .to_string(),
        ),
        (Some(apk), None) => Some(format!(
            "the image has {apk} but no /bin/sh to run the upgrade with"
        )),
        _ => None,
    };
    let mut attributes = vec![
        (attr::OS.to_string(), os.id.clone()),
        (attr::ARCH.to_string(), arch),
        (attr::REPOSITORIES.to_string(), repository_lines.join("\n")),
        (attr::WORLD.to_string(), world_lines.join("\n")),
    ];
    if let Some(apk) = apk {
        attributes.push((attr::APK.to_string(), apk.to_string()));
    }
    if let Some(shell) = shell {
        attributes.push((attr::SHELL.to_string(), shell.to_string()));
    }
    Some(Target {
        id: INSTALLED.to_string(),
        kind: "apk".into(),
        runtime_version: os.version_id.clone(),
        packages: packages
            .iter()
            .map(|p| InstalledPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                location: INSTALLED.to_string(),
            })
            .collect(),
        unpatchable_reason,
        attributes,
    })
}

/// The repositories the image's apk is configured with, asked through the host's index.
struct ImageRepositories {
    /// (tag, ecosystem) of each repository.
    repositories: Vec<(Option<String>, String)>,
    /// The tag each world entry allows its package to come from.
    tags: Vec<(String, String)>,
}

impl ImageRepositories {
    fn of(target: &Target, world: &[WorldEntry]) -> Self {
        Self {
            repositories: attribute(target, attr::REPOSITORIES)
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.is_empty())
                .map(|line| {
                    let (tag, ecosystem) = db::parse_repository_line(line);
                    (tag.map(String::from), ecosystem.to_string())
                })
                .collect(),
            tags: world
                .iter()
                .filter_map(|e| Some((e.name.clone(), e.tag.clone()?)))
                .collect(),
        }
    }
}

impl Repositories for ImageRepositories {
    /// What apk would install: the newest version among the untagged repositories and the one
    /// tagged repository world names for this package.
    fn newest(&self, package: &str) -> Result<Option<String>, String> {
        let tag = self
            .tags
            .iter()
            .find(|(name, _)| name == package)
            .map(|(_, tag)| tag.as_str());
        let usable: Vec<&str> = self
            .repositories
            .iter()
            .filter(|(t, _)| t.is_none() || t.as_deref() == tag)
            .map(|(_, ecosystem)| ecosystem.as_str())
            .collect();
        if usable.is_empty() {
            return Err("the image configures no apk repository".into());
        }
        ospkg::newest_offered::<ApkVersion>(&usable, package)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_adds_and_deletes_the_same_virtual_package() {
        assert_eq!(
            upgrade_script(),
            "set -e\napk=$1\nshift\n\
             \"$apk\" add --no-cache --upgrade --virtual .copa-patch \"$@\"\n\
             \"$apk\" del --no-cache .copa-patch"
        );
    }

    #[test]
    fn exact_versions_and_minimums_become_apk_constraints() {
        let update = |at_least| Update {
            target_id: INSTALLED.into(),
            package: "musl".into(),
            from_version: "1.2.4-r1".into(),
            to_version: "1.2.4-r2".into(),
            at_least,
            fixes: vec!["CVE-1".into()],
            notes: Vec::new(),
        };
        assert_eq!(constraint(&update(false)), "musl=1.2.4-r2");
        assert_eq!(constraint(&update(true)), "musl>=1.2.4-r2");
    }
}
