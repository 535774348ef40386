//! The rpm patcher: packages of rpm-based distributions (RHEL and its rebuilds, Fedora, Amazon
//! Linux, Oracle Linux, Azure Linux / CBL-Mariner, Photon), read from the image's rpm database
//! and upgraded with the image's own dnf, yum, tdnf or microdnf.

mod bdb;
mod header;
mod repos;
mod sqlite;

use copa_plugin_sdk::ospkg::{self, ConfiguredRepositories, OsRelease, exact_version};
use copa_plugin_sdk::rpm::RpmVersion;
use copa_plugin_sdk::{
    Finding, InstalledPackage, Manifest, OPENSSL_CA_VARIABLES, PackageClass, Plan, PluginInfo,
    Policy, RunStep, Step, Target, Update, attribute, fs, register_patcher, updates_for,
};

use header::Package;

#[derive(Default)]
struct Rpm;

register_patcher!(Rpm);

/// Names of the target attributes this plugin writes in `detect` and reads back later.
mod attr {
    pub const OS: &str = "os";
    /// dnf's `$basearch` of the image.
    pub const BASEARCH: &str = "basearch";
    pub const RELEASEVER: &str = "releasever";
    /// `dnf`, `yum`, `tdnf` or `microdnf`.
    pub const MANAGER: &str = "manager";
    /// The package manager's path in the image.
    pub const MANAGER_PATH: &str = "manager-path";
    /// One `package-index` ecosystem (`rpm <url> <basearch>`) a line.
    pub const REPOSITORIES: &str = "repositories";
    /// `pattern<TAB>reason` lines: packages the image's configuration keeps from updates.
    pub const HOLDS: &str = "holds";
}

/// The rpm database formats, newest first, and where each lives. Fedora ≥ 36 and openSUSE keep
/// the database in /usr/lib/sysimage/rpm (with /var/lib/rpm a symlink to it on Fedora), RHEL 9
/// and its rebuilds in /var/lib/rpm.
const DATABASES: &[(&str, Format)] = &[
    ("/usr/lib/sysimage/rpm/rpmdb.sqlite", Format::Sqlite),
    ("/var/lib/rpm/rpmdb.sqlite", Format::Sqlite),
    ("/usr/lib/sysimage/rpm/Packages.db", Format::Ndb),
    ("/var/lib/rpm/Packages.db", Format::Ndb),
    ("/usr/lib/sysimage/rpm/Packages", Format::BerkeleyDb),
    ("/var/lib/rpm/Packages", Format::BerkeleyDb),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Sqlite,
    Ndb,
    BerkeleyDb,
}

const REPO_DIRS: &[&str] = &[
    "/etc/yum.repos.d",
    "/etc/yum/repos.d",
    "/etc/distro.repos.d",
];
/// Variable directories; dnf's are read last, so they win.
const VAR_DIRS: &[&str] = &["/etc/yum/vars", "/etc/dnf/vars"];
const VERSIONLOCK_LISTS: &[&str] = &[
    "/etc/dnf/plugins/versionlock.list",
    "/etc/yum/pluginconf.d/versionlock.list",
];
const MAIN_CONFIGS: &[&str] = &["/etc/dnf/dnf.conf", "/etc/yum.conf"];

/// What the package managers and rpm write besides the packages and their databases: metadata
/// and package caches, logs, lock files, and ldconfig's auxiliary cache (rewritten by every
/// library package's scriptlet). The databases stay: the rpm database, and also dnf's and yum's
/// history (/var/lib/dnf, /var/lib/yum). That history is state, not a cache: dnf records there
/// why each package is installed (a dependency pulled in by the patch stays marked as one, so a
/// later `dnf autoremove` can still clean it up), and without it dnf would see an rpm database
/// changed behind its back and `dnf history` would not show the patch.
const NOT_IN_LAYER: &[&str] = &[
    "/var/cache/dnf",
    "/var/cache/yum",
    "/var/cache/tdnf",
    "/var/cache/libdnf5",
    "/var/log/dnf.log",
    "/var/log/dnf.librepo.log",
    "/var/log/dnf.rpm.log",
    "/var/log/dnf5.log",
    "/var/log/hawkey.log",
    "/var/log/yum.log",
    "/var/log/tdnf.log",
    "/var/cache/ldconfig/aux-cache",
    "/var/lib/rpm/.rpm.lock",
    "/var/lib/rpm/.dbenv.lock",
    "/usr/lib/sysimage/rpm/.rpm.lock",
];

impl copa_plugin_sdk::Patcher for Rpm {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "rpm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            package_class: PackageClass::Os,
            // Trivy's OS families of rpm distributions, and the older spellings still found in
            // reports (`opensuse.leap`, `suse linux enterprise server`).
            report_types: [
                "redhat",
                "centos",
                "centos-stream",
                "rocky",
                "alma",
                "fedora",
                "amazon",
                "oracle",
                "azurelinux",
                "cbl-mariner",
                "photon",
                "sles",
                "opensuse",
                "opensuse-leap",
                "opensuse-tumbleweed",
                "suse linux enterprise server",
                "opensuse.leap",
                "opensuse.tumbleweed",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            purl_types: vec!["rpm".into()],
            description: "rpm packages (rpm database), upgraded with dnf, yum, tdnf or microdnf"
                .into(),
        }
    }

    /// The package manager runs as root (it owns the rpm database); the repositories are the
    /// image's own, read through `package-index`, so no index, tooling or option of its own.
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
            return Ok(ospkg::skip_all(&findings, "no rpm database in the image"));
        };
        let repositories = ConfiguredRepositories::<RpmVersion>::from_lines(
            attribute(target, attr::REPOSITORIES).unwrap_or_default(),
            "enabled rpm",
        );
        let holds: Vec<(&str, &str)> = attribute(target, attr::HOLDS)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .collect();
        let held = |name: &str| {
            holds
                .iter()
                .find(|(pattern, _)| repos::glob_matches(pattern, name))
                .map(|(_, reason)| reason.to_string())
        };
        ospkg::plan::<RpmVersion>(target, &findings, policy.update_all, &repositories, &held)
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
            let (Some(manager), Some(path)) = (
                attribute(target, attr::MANAGER),
                attribute(target, attr::MANAGER_PATH),
            ) else {
                return Err(format!("target {} has no package manager", target.id));
            };
            let manager = Manager::from_name(manager)
                .ok_or_else(|| format!("unknown package manager {manager}"))?;
            let specs = updates
                .iter()
                .map(|&i| &plan.updates[i as usize])
                .map(|u| manager.spec(u))
                .collect::<Result<Vec<_>, _>>()?;
            let mut argv: Vec<String> = vec![path.to_string()];
            argv.extend(manager.arguments().iter().map(|s| s.to_string()));
            argv.extend(specs);
            steps.push(Step::Run(RunStep {
                description: format!(
                    "{} {} in {}",
                    manager.name(),
                    manager.arguments()[0],
                    target.id
                ),
                argv,
                env: Vec::new(),
                workdir: None,
                user: None,
                index_ecosystem: Some("rpm".into()),
                ca_variables: OPENSSL_CA_VARIABLES.iter().map(|s| s.to_string()).collect(),
                // Packages hold files anywhere, and their scriptlets run as root.
                changes: vec!["/".into()],
                exclude: NOT_IN_LAYER.iter().map(|s| s.to_string()).collect(),
                updates,
            }));
        }
        Ok(steps)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Manager {
    /// dnf 4 or dnf5 (also `yum` on RHEL 8 and later, a link to dnf).
    Dnf,
    /// yum 3 (RHEL/CentOS 7, Amazon Linux 2).
    Yum,
    Tdnf,
    Microdnf,
}

impl Manager {
    fn name(self) -> &'static str {
        match self {
            Manager::Dnf => "dnf",
            Manager::Yum => "yum",
            Manager::Tdnf => "tdnf",
            Manager::Microdnf => "microdnf",
        }
    }

    fn from_name(name: &str) -> Option<Manager> {
        [Manager::Dnf, Manager::Yum, Manager::Tdnf, Manager::Microdnf]
            .into_iter()
            .find(|m| m.name() == name)
    }

    /// The command and options before the packages.
    ///
    /// - dnf: `--refresh` so that cached metadata older than the fix is not trusted, and no
    ///   weak dependencies, which an upgrade has no business adding.
    /// - yum 3 knows neither option (no weak dependencies, and `--refresh` is dnf's), and its
    ///   metadata expires on its own.
    /// - tdnf has `--refresh`, and no weak dependencies.
    /// - microdnf: only what every release accepts; `--refresh` and `--setopt` came late.
    fn arguments(self) -> &'static [&'static str] {
        match self {
            Manager::Dnf => &[
                "upgrade",
                "-y",
                "--refresh",
                "--setopt=install_weak_deps=False",
            ],
            Manager::Yum => &["update", "-y"],
            Manager::Tdnf => &["upgrade", "-y", "--refresh"],
            Manager::Microdnf => &["update", "-y"],
        }
    }

    /// How the command names one planned update.
    ///
    /// An exact version is pinned where the tool can pin it, so that the result is the plan:
    /// dnf takes `name-[epoch:]version-release` (its NEVR form); yum 3 takes
    /// `name-version-release` but not an epoch without an arch, and a name-version-release
    /// names one build anyway. tdnf's `upgrade` resolves names only (to the newest build), and
    /// older microdnf releases (RHEL 7's, early RHEL 8's) match no versioned spec at all, so
    /// both get the bare name: the
    /// newest build is what the plan picked from the same repositories. A minimum (`at_least`,
    /// no index was readable) is a bare name for every tool: the package manager takes the
    /// newest build, and the host verifies that what it installed is at least the minimum.
    fn spec(self, update: &Update) -> Result<String, String> {
        let package = &update.package;
        let Some(exact) = exact_version(update) else {
            return Ok(package.to_string());
        };
        let version: RpmVersion = exact.parse()?;
        Ok(match self {
            Manager::Dnf => format!("{package}-{version}"),
            Manager::Yum => match version.release() {
                Some(release) => format!("{package}-{}-{release}", version.version()),
                None => format!("{package}-{}", version.version()),
            },
            Manager::Tdnf | Manager::Microdnf => package.to_string(),
        })
    }
}

/// The package manager the image has: the first of dnf, yum, tdnf and microdnf present.
fn package_manager() -> Result<(Manager, String), String> {
    for path in ["/usr/bin/dnf", "/usr/bin/dnf5", "/usr/bin/dnf-3"] {
        if fs::exists(path) {
            return Ok((Manager::Dnf, path.into()));
        }
    }
    if let Some(stat) = fs::stat("/usr/bin/yum") {
        // On RHEL 8 and later, yum is dnf under its old name.
        let is_dnf = stat
            .link_target
            .as_deref()
            .is_some_and(|t| t.contains("dnf"));
        let manager = if is_dnf { Manager::Dnf } else { Manager::Yum };
        return Ok((manager, "/usr/bin/yum".into()));
    }
    for (manager, path) in [
        (Manager::Tdnf, "/usr/bin/tdnf"),
        (Manager::Microdnf, "/usr/bin/microdnf"),
    ] {
        if fs::exists(path) {
            return Ok((manager, path.into()));
        }
    }
    if fs::exists("/usr/bin/zypper") {
        return Err(
            "the image's package manager is zypper, which this plugin does not drive \
                    yet (it drives dnf, yum, tdnf and microdnf)"
                .into(),
        );
    }
    Err(
        "no dnf, yum, tdnf or microdnf in the image (distroless); patching through a tooling \
         container is not supported yet"
            .into(),
    )
}

/// Reads the packages of an rpm database, in any format this plugin knows; `gpg-pubkey`
/// entries (imported signing keys, not packages) are left out.
fn read_database(path: &str, format: Format) -> Result<Vec<Package>, String> {
    let blobs: Vec<Vec<u8>> = match format {
        Format::Ndb => {
            return Err(format!(
                "the rpm database {path} is in the ndb format, which this plugin cannot read yet"
            ));
        }
        Format::BerkeleyDb => bdb::values(&fs::read_file(path)?)?,
        Format::Sqlite => {
            let main = fs::read_file(path)?;
            let wal = fs::read_file(&format!("{path}-wal")).ok();
            let db = sqlite::Database::open(&main, wal.as_deref())?;
            let (_, columns) = db.table_schema("Packages")?;
            let column = columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case("blob"))
                .ok_or("the Packages table has no blob column")?;
            db.table("Packages")?
                .into_iter()
                .filter_map(|(_, mut values)| match values.get_mut(column) {
                    Some(sqlite::Value::Blob(blob)) => Some(std::mem::take(blob)),
                    _ => None,
                })
                .collect()
        }
    };
    let mut packages = Vec::new();
    for blob in blobs {
        match Package::from_header(&blob) {
            Ok(package) if package.name != "gpg-pubkey" => packages.push(package),
            Ok(_) => {}
            // Berkeley DB keeps a 4-byte counter beside the headers; anything else unreadable
            // is worth a line in the log, not the whole database.
            Err(e) if blob.len() > 8 => {
                copa_plugin_sdk::log::warn(&format!("{path}: skipping an entry: {e}"))
            }
            Err(_) => {}
        }
    }
    Ok(packages)
}

/// The architecture most installed packages are built for (`noarch` does not count).
fn machine_arch(packages: &[Package]) -> Option<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for arch in packages
        .iter()
        .filter_map(|p| p.arch.as_deref())
        .filter(|a| !matches!(*a, "noarch" | "(none)" | ""))
    {
        match counts.iter_mut().find(|(a, _)| *a == arch) {
            Some((_, n)) => *n += 1,
            None => counts.push((arch, 1)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(a, _)| a.to_string())
}

/// Reads every regular file of a directory, sorted by name.
fn files_in(dir: &str, suffix: &str) -> Vec<(String, String)> {
    fs::read_dir(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|name| name.ends_with(suffix))
        .filter_map(|name| {
            let text = fs::read_to_string(&format!("{dir}/{name}")).ok()?;
            Some((name, text))
        })
        .collect()
}

/// The rpm database of an rpm-based image, or none.
fn detect() -> Option<Target> {
    let os = OsRelease::read();
    // A Debian or Alpine image with rpm installed as a tool is not an rpm distribution.
    if os
        .as_ref()
        .is_some_and(|os| os.is_like(&["debian", "ubuntu", "alpine", "wolfi", "chainguard"]))
    {
        return None;
    }
    let (path, format) = DATABASES.iter().find(|(path, _)| fs::exists(path))?;
    let (packages, read_error) = match read_database(path, *format) {
        Ok(packages) => (packages, None),
        Err(e) => (
            Vec::new(),
            Some(format!("cannot read the rpm database {path}: {e}")),
        ),
    };
    let arch = machine_arch(&packages).unwrap_or_else(|| "x86_64".into());
    let basearch = repos::basearch(&arch).to_string();
    let releasever = repos::releasever(packages.iter())
        .or_else(|| os.as_ref().and_then(|os| os.version_id.clone()))
        .unwrap_or_default();

    let mut vars = repos::Vars::builtin(&arch, &releasever);
    for dir in VAR_DIRS {
        for (name, value) in files_in(dir, "") {
            vars.set(&name, value.lines().next().unwrap_or_default());
        }
    }
    let mut ecosystems: Vec<String> = Vec::new();
    for dir in REPO_DIRS {
        for (_, text) in files_in(dir, ".repo") {
            for repository in repos::repositories(&text, &vars) {
                let ecosystem = repository.ecosystem(&basearch);
                if !ecosystems.contains(&ecosystem) {
                    ecosystems.push(ecosystem);
                }
            }
        }
    }

    let mut holds: Vec<String> = Vec::new();
    for list in VERSIONLOCK_LISTS {
        if let Ok(text) = fs::read_to_string(list) {
            for (pattern, line) in repos::versionlocks(&text) {
                holds.push(format!(
                    "{pattern}\tlocked by versionlock ({line} in {list})"
                ));
            }
        }
    }
    for config in MAIN_CONFIGS {
        if let Ok(text) = fs::read_to_string(config) {
            for pattern in repos::main_excludes(&text) {
                holds.push(format!(
                    "{pattern}\texcluded from updates (exclude={pattern} in {config})"
                ));
            }
        }
    }

    let manager = package_manager();
    let unpatchable_reason = read_error.or_else(|| manager.as_ref().err().cloned());
    let mut attributes = vec![
        (
            attr::OS.to_string(),
            os.as_ref().map(|os| os.id.clone()).unwrap_or_default(),
        ),
        (attr::BASEARCH.to_string(), basearch),
        (attr::RELEASEVER.to_string(), releasever),
        (attr::REPOSITORIES.to_string(), ecosystems.join("\n")),
        (attr::HOLDS.to_string(), holds.join("\n")),
    ];
    if let Ok((manager, path)) = &manager {
        attributes.push((attr::MANAGER.to_string(), manager.name().to_string()));
        attributes.push((attr::MANAGER_PATH.to_string(), path.clone()));
    }
    Some(Target {
        id: path.to_string(),
        kind: "rpm".into(),
        runtime_version: os.and_then(|os| os.version_id),
        packages: packages
            .iter()
            .map(|p| InstalledPackage {
                name: p.name.clone(),
                version: p.evr(),
                location: path.to_string(),
            })
            .collect(),
        unpatchable_reason,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(package: &str, to_version: &str, at_least: bool) -> Update {
        Update {
            target_id: "/var/lib/rpm".into(),
            package: package.into(),
            from_version: "0-0".into(),
            to_version: to_version.into(),
            at_least,
            fixes: vec!["CVE-1".into()],
            notes: Vec::new(),
        }
    }

    #[test]
    fn each_manager_names_an_exact_version_its_own_way() {
        let exact = update("openssl-libs", "1:3.0.7-27.el9", false);
        let curl = update("curl", "1:3.0.7-27.el9", false);
        assert_eq!(
            Manager::Dnf.spec(&exact).unwrap(),
            "openssl-libs-1:3.0.7-27.el9"
        );
        assert_eq!(
            Manager::Dnf
                .spec(&update("bash", "5.1.8-9.el9", false))
                .unwrap(),
            "bash-5.1.8-9.el9"
        );
        assert_eq!(
            Manager::Yum.spec(&exact).unwrap(),
            "openssl-libs-3.0.7-27.el9"
        );
        assert_eq!(
            Manager::Tdnf
                .spec(&update("curl", "8.8.0-1.azl3", false))
                .unwrap(),
            "curl"
        );
        assert_eq!(Manager::Microdnf.spec(&curl).unwrap(), "curl");
        for manager in [Manager::Dnf, Manager::Yum, Manager::Tdnf, Manager::Microdnf] {
            let minimum = update("curl", "7.76.1-29.el9", true);
            assert_eq!(manager.spec(&minimum).unwrap(), "curl");
            assert_eq!(Manager::from_name(manager.name()), Some(manager));
        }
        assert!(Manager::Dnf.spec(&update("curl", "1:", false)).is_err());
    }

    #[test]
    fn machine_arch_ignores_noarch() {
        let package = |arch: &str| Package {
            name: "x".into(),
            epoch: None,
            version: "1".into(),
            release: "1".into(),
            arch: Some(arch.into()),
            provides: Vec::new(),
        };
        let packages = [
            package("noarch"),
            package("noarch"),
            package("aarch64"),
            package("aarch64"),
            package("noarch"),
        ];
        assert_eq!(machine_arch(&packages).as_deref(), Some("aarch64"));
        assert_eq!(machine_arch(&packages[..2]), None);
    }
}
