//! The apt patcher: Debian and Ubuntu packages, upgraded with the image's own apt from the
//! image's own repositories, never to another release.

mod distroless;
mod dpkg_db;
mod keys;
mod repositories;
mod sources;

use copa_plugin_sdk::dpkg::DpkgVersion;
use copa_plugin_sdk::ospkg::{self, OsRelease, exact_version};
use copa_plugin_sdk::{
    Finding, InstalledPackage, Manifest, PackageClass, Plan, PluginInfo, Policy, RunStep, Skip,
    Step, Target, attribute, fs, register_patcher, updates_for,
};

use dpkg_db::{native_architecture, parse_status};
use keys::Keys;
use repositories::{Access, Offers};
use sources::Source;

#[derive(Default)]
struct Apt;

register_patcher!(Apt);

const STATUS: &str = "/var/lib/dpkg/status";
const STATUS_D: &str = "/var/lib/dpkg/status.d";
const APT_GET: &str = "/usr/bin/apt-get";

/// Names of the target attributes this plugin writes in `detect` and reads back later.
mod attr {
    pub const OS: &str = "os";
    pub const CODENAME: &str = "codename";
    pub const ARCH: &str = "arch";
    /// One repository line per line, `deb <uri> <suite> <component> <arch>`
    /// (`copa_plugin_sdk::apt_repo::Repository`). How each is signed, when its source says so,
    /// is the attribute `signed-by <line>` (`crate::keys`).
    pub const REPOSITORIES: &str = "repositories";
    /// Comma-separated names of held packages.
    pub const HELD: &str = "held";
    /// Present (as "true") when the database is the distroless status.d form with no apt.
    pub const DISTROLESS: &str = "distroless";
}

/// What apt and dpkg write besides the packages themselves: downloaded lists and archives,
/// logs, locks and backup copies. None of it belongs in a patch layer.
const NOT_IN_LAYER: &[&str] = &[
    "/var/lib/apt/lists",
    "/var/cache/apt",
    "/var/log/apt",
    "/var/log/dpkg.log",
    "/var/log/alternatives.log",
    "/var/cache/ldconfig/aux-cache",
    "/var/cache/debconf/config.dat-old",
    "/var/cache/debconf/templates.dat-old",
    "/var/lib/dpkg/status-old",
    "/var/lib/dpkg/lock",
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/triggers/Lock",
];

/// Upgrades exactly the named packages; `--only-upgrade` keeps apt from installing a package
/// the image does not have, and the configuration-file options keep the image's own edits
/// without asking. The package arguments come after the script, as positional parameters, so
/// no package text is ever parsed by the shell.
///
/// The host sets `COPA_CA_BUNDLE` (`--ca-cert`) for this run only, the plugin `COPA_APT_MIRROR`
/// (the mirror of `--index deb=URL` or `--apt-mirror`, a plain URL [`Access::of`] has checked).
/// A mirror replaces the origin of every repository in copies of the image's sources under
/// /.copa-host, which never reaches the layer; the image's own sources stay as they are.
///
/// The lists and downloaded archives never reach the layer either way (see [`NOT_IN_LAYER`]);
/// removing them in the run keeps the container's changes, which the host reads back, small
/// (the lists alone are about 190 MB for bookworm).
const UPGRADE_SCRIPT: &str = r#"set -e
opts=
if [ -n "${COPA_CA_BUNDLE:-}" ]; then
  opts="-o Acquire::https::CAInfo=$COPA_CA_BUNDLE"
fi
if [ -n "${COPA_APT_MIRROR:-}" ]; then
  dir=/.copa-host/apt
  mkdir -p "$dir/sources.list.d"
  rewrite() { sed -E "s#(^|[[:space:]])https?://[^/[:space:]]+#\1$COPA_APT_MIRROR#g" "$1"; }
  : >"$dir/sources.list"
  if [ -f /etc/apt/sources.list ]; then rewrite /etc/apt/sources.list >"$dir/sources.list"; fi
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    if [ -f "$f" ]; then rewrite "$f" >"$dir/sources.list.d/${f##*/}"; fi
  done
  opts="$opts -o Dir::Etc::SourceList=$dir/sources.list -o Dir::Etc::SourceParts=$dir/sources.list.d"
fi
apt-get $opts -q update
apt-get $opts -q -y install --only-upgrade --no-install-recommends   -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
apt-get $opts clean
rm -rf /var/lib/apt/lists/*"#;

impl copa_plugin_sdk::Patcher for Apt {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "apt".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            package_class: PackageClass::Os,
            report_types: vec!["debian".into(), "ubuntu".into()],
            purl_types: vec!["deb".into()],
            description: "Debian and Ubuntu packages (dpkg database), upgraded with apt".into(),
        }
    }

    /// apt-get runs as root (it owns the dpkg database); the repositories are the image's own,
    /// read over `http` from the archives' origins (see [`repositories`]).
    fn manifest(&self) -> Manifest {
        Manifest {
            root_run_steps: true,
            indexes: repositories::declared(),
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
            return Ok(ospkg::skip_all(&findings, "no dpkg database in the image"));
        };
        let lines = repository_lines(target);
        let access = Access::of(&policy)?;
        let keys = Keys::of(target);
        let wanted = repositories::wanted(target.packages.iter().map(|p| p.name.as_str()));
        let wanted = |name: &str| wanted.contains(name);
        let offers = Offers::new(&lines, &access, &keys, &wanted);
        let held: Vec<&str> = attribute(target, attr::HELD)
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .collect();
        let held = |name: &str| {
            held.contains(&name)
                .then(|| "held in the image (apt-mark hold); apt leaves it as it is".to_string())
        };
        let mut plan =
            ospkg::plan::<DpkgVersion>(target, &findings, policy.update_all, &offers, &held)?;
        if attribute(target, attr::DISTROLESS).is_some() {
            // Without apt only an exact version from a readable index can be unpacked.
            let (exact, minimums): (Vec<_>, Vec<_>) = plan
                .updates
                .into_iter()
                .partition(|u| exact_version(u).is_some());
            plan.updates = exact;
            let reason = format!(
                "the repositories' package lists could not be read ({}), and without apt in the \
                 image only an exact version can be installed",
                offers
                    .failure()
                    .unwrap_or("the image names no repository, and its release has no codename")
            );
            plan.skips.extend(minimums.into_iter().map(|u| Skip {
                target_id: u.target_id,
                package: u.package,
                vulnerabilities: u.fixes,
                reason: reason.clone(),
            }));
        }
        Ok(plan)
    }

    fn emit_commands(
        &self,
        targets: Vec<Target>,
        plan: Plan,
        policy: Policy,
    ) -> Result<Vec<Step>, String> {
        let access = Access::of(&policy)?;
        let mut steps = Vec::new();
        for target in &targets {
            let updates = updates_for(&plan, target);
            if updates.is_empty() {
                continue;
            }
            if let Some(reason) = &target.unpatchable_reason {
                return Err(reason.clone());
            }
            if attribute(target, attr::DISTROLESS).is_some() {
                // Each export runs in a fresh instance: the records of the updated packages are
                // read again (the host answers from the GETs planning made).
                let wanted = repositories::wanted(
                    updates
                        .iter()
                        .map(|&i| plan.updates[i as usize].package.as_str()),
                );
                let wanted = |name: &str| wanted.contains(name);
                let lines = repository_lines(target);
                let keys = Keys::of(target);
                let offers = Offers::new(&lines, &access, &keys, &wanted);
                for &i in &updates {
                    let update = &plan.updates[i as usize];
                    let entry = target
                        .packages
                        .iter()
                        .find(|p| p.name == update.package)
                        .map(|p| p.location.clone())
                        .ok_or_else(|| format!("{} is not in {}", update.package, target.id))?;
                    steps.extend(distroless::steps(update, i, &entry, &offers)?);
                }
                continue;
            }
            let mut argv: Vec<String> = vec![
                "/bin/sh".into(),
                "-c".into(),
                UPGRADE_SCRIPT.into(),
                "copa-apt".into(),
            ];
            argv.extend(updates.iter().map(|&i| {
                let update = &plan.updates[i as usize];
                // A pinned version makes the result exactly the plan; a minimum (no index was
                // readable) leaves the choice to apt, which takes its candidate.
                match exact_version(update) {
                    Some(version) => format!("{}={version}", update.package),
                    None => update.package.clone(),
                }
            }));
            steps.push(Step::Run(RunStep {
                description: format!("apt-get install --only-upgrade in {}", target.id),
                argv,
                env: [
                    ("DEBIAN_FRONTEND", "noninteractive"),
                    ("DEBCONF_NONINTERACTIVE_SEEN", "true"),
                ]
                .into_iter()
                .chain(access.mirror().map(|mirror| ("COPA_APT_MIRROR", mirror)))
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
                workdir: None,
                user: None,
                index_ecosystem: Some("deb".into()),
                // apt reads no variable: the script passes COPA_CA_BUNDLE as an option.
                ca_variables: Vec::new(),
                // Packages hold files anywhere, and their maintainer scripts run as root.
                changes: vec!["/".into()],
                exclude: NOT_IN_LAYER.iter().map(|s| s.to_string()).collect(),
                updates,
            }));
        }
        Ok(steps)
    }
}

/// The repository lines `detect` found for `target`.
fn repository_lines(target: &Target) -> Vec<&str> {
    attribute(target, attr::REPOSITORIES)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.is_empty())
        .collect()
}

/// The attribute of the repositories of `sources` (a line each, once), and the attributes of
/// those whose source says how they are signed (the first source of a line counts).
fn repository_attributes(sources: &[Source]) -> (String, Vec<(String, String)>) {
    let mut lines: Vec<String> = Vec::new();
    let mut signed_by = Vec::new();
    for source in sources {
        let line = source.repository.line();
        if lines.contains(&line) {
            continue;
        }
        if let Some(value) = source.signed_by.attribute() {
            signed_by.push((format!("{}{line}", keys::ATTRIBUTE_PREFIX), value));
        }
        lines.push(line);
    }
    (lines.join("\n"), signed_by)
}

/// The dpkg database of a Debian-family image, or none.
fn detect() -> Option<Target> {
    let os = OsRelease::read()?;
    if !os.is_like(&["debian", "ubuntu"]) {
        return None;
    }
    // The status text, and for distroless images which status.d file holds which package.
    let (id, status, entries) = if let Ok(text) = fs::read_to_string(STATUS) {
        (STATUS, text, None)
    } else if fs::is_dir(STATUS_D) {
        // One stanza per file; their checksum lists sit beside them.
        let mut text = String::new();
        let mut entries = Vec::new();
        for name in fs::read_dir(STATUS_D).unwrap_or_default() {
            if name.ends_with(".md5sums") {
                continue;
            }
            let path = format!("{STATUS_D}/{name}");
            if let Ok(entry) = fs::read_to_string(&path) {
                text.push_str(&entry);
                text.push_str("\n\n");
                entries.push((path, entry));
            }
        }
        (STATUS_D, text, Some(entries))
    } else {
        return None;
    };
    let distroless = entries.is_some();
    let arch = native_architecture(&status).unwrap_or_else(|| "amd64".into());
    let packages = parse_status(&status, Some(&arch));
    let location = |name: &str| -> String {
        entries
            .iter()
            .flatten()
            .find(|(_, entry)| {
                parse_status(entry, Some(&arch))
                    .iter()
                    .any(|p| p.name == name)
            })
            .map(|(path, _)| path.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let held: Vec<&str> = packages
        .iter()
        .filter(|p| p.held)
        .map(|p| p.name.as_str())
        .collect();
    let mut sources = sources::read(&arch);
    if distroless
        && sources.is_empty()
        && let Some(codename) = &os.version_codename
    {
        // No apt, so no sources: the release's own repositories.
        sources = distroless::default_sources(&os.id, codename, &arch);
    }
    let (repositories, signed_by) = repository_attributes(&sources);
    let unpatchable_reason = if !distroless && !fs::exists(APT_GET) {
        Some(format!("the image has a dpkg database but no {APT_GET}"))
    } else {
        None
    };
    let mut attributes = vec![
        (attr::OS.to_string(), os.id.clone()),
        (attr::ARCH.to_string(), arch.clone()),
        (attr::REPOSITORIES.to_string(), repositories),
        (attr::HELD.to_string(), held.join(",")),
    ];
    attributes.extend(signed_by);
    if distroless {
        attributes.push((attr::DISTROLESS.to_string(), "true".into()));
    }
    if let Some(codename) = &os.version_codename {
        attributes.push((attr::CODENAME.to_string(), codename.clone()));
    }
    Some(Target {
        id: id.to_string(),
        kind: "dpkg".into(),
        runtime_version: os.version_id.clone(),
        packages: packages
            .iter()
            .map(|p| InstalledPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                location: location(&p.name),
            })
            .collect(),
        unpatchable_reason,
        attributes,
    })
}
