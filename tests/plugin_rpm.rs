//! The real rpm plugin (.wasm) through the real host, against fixture filesystems holding real
//! rpm databases: built at test time with Debian's rpm and rpmbuild (rpmdb.sqlite, rpm 4.18),
//! and with Berkeley DB's own db_load for the older `Packages` hash format (see tests/setup.sh).
//! No rpm repository is reachable and the host has no rpm index, so every planned version is a
//! minimum (`>=`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{Node, PluginSetup, builtin_plugin, default_index, layer_tar, target_attribute};
use copa_host::plugin::{Finding, Step, Target};

const SQLITE_DB: &str = "/var/lib/rpm/rpmdb.sqlite";
const FILLERS: usize = 120;

/// (name, epoch, version, release, arch, extra preamble) of one fixture package.
type Package = (
    &'static str,
    Option<u32>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const PACKAGES: &[Package] = &[
    ("openssl-libs", Some(1), "3.0.7", "24.el9", "x86_64", ""),
    ("bash", None, "5.1.8", "6.el9", "x86_64", ""),
    ("curl", None, "7.76.1", "26.el9", "x86_64", ""),
    ("glibc", None, "2.34", "100.el9", "x86_64", ""),
    ("tzdata", Some(0), "2024a", "1.el9", "noarch", ""),
    (
        "rocky-release",
        None,
        "9.3",
        "1.2.el9",
        "noarch",
        "Provides: system-release = %{version}-%{release}\nProvides: system-release(releasever) = 9\n",
    ),
    // Imported signing keys are entries of the database, not packages.
    ("gpg-pubkey", None, "8483c65d", "5ccc5b19", "noarch", ""),
];

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (installed by tests/setup.sh?)"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn spec(name: &str, epoch: Option<u32>, version: &str, release: &str, extra: &str) -> String {
    let epoch = epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
    format!(
        "Name: {name}\n{epoch}Version: {version}\nRelease: {release}\nSummary: fixture\n\
         License: MIT\n{extra}\n%description\nA fixture package.\n\n%files\n"
    )
}

/// One package with a description far larger than a database page (its header spills onto
/// overflow pages), and one spec of many small packages (the table needs interior pages).
fn large_specs() -> Vec<(String, String)> {
    let long = "This description is long on purpose. ".repeat(800);
    let big = format!(
        "Name: big-description\nVersion: 1.0\nRelease: 1.el9\nSummary: fixture\nLicense: MIT\n\n\
         %description\n{long}\n\n%files\n"
    );
    let mut fillers = String::from(
        "Name: filler\nVersion: 2.0\nRelease: 3.el9\nSummary: fixture\nLicense: MIT\n\n\
         %description\nfiller\n",
    );
    for i in 0..FILLERS {
        fillers.push_str(&format!(
            "\n%package -n filler-{i:03}\nSummary: filler {i}\n%description -n filler-{i:03}\n\
             Filler number {i}.\n%files -n filler-{i:03}\n"
        ));
    }
    vec![("big-description".into(), big), ("filler".into(), fillers)]
}

struct Fixture {
    /// rpmdb.sqlite, -shm and -wal as rpm left them.
    sqlite: Vec<(&'static str, Vec<u8>)>,
    /// The same headers in a Berkeley DB hash file.
    bdb: Vec<u8>,
    /// `rpm -qa` of the database: (name, [epoch:]version-release, arch), sorted.
    listed: Vec<(String, String, String)>,
}

/// Builds the packages and the databases once for all tests.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let top = root.join("top");
        let mut specs: Vec<(String, String, &str)> = PACKAGES
            .iter()
            .map(|(name, epoch, version, release, arch, extra)| {
                (
                    name.to_string(),
                    spec(name, *epoch, version, release, extra),
                    *arch,
                )
            })
            .collect();
        specs.extend(large_specs().into_iter().map(|(n, s)| (n, s, "x86_64")));
        for (name, text, arch) in &specs {
            let path = root.join(format!("{name}.spec"));
            std::fs::write(&path, text).unwrap();
            run(Command::new("rpmbuild")
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .args(["--target", arch, "-bb", "--quiet"])
                .arg(&path));
        }
        let rpms: Vec<PathBuf> = ["x86_64", "noarch"]
            .iter()
            .flat_map(|arch| std::fs::read_dir(top.join("RPMS").join(arch)).unwrap())
            .map(|e| e.unwrap().path())
            .collect();
        let db = root.join("db");
        std::fs::create_dir_all(&db).unwrap();
        let dbpath = |c: &mut Command| {
            c.arg("--dbpath").arg(&db);
        };
        let mut init = Command::new("rpm");
        init.arg("--initdb");
        dbpath(&mut init);
        run(&mut init);
        let mut install = Command::new("rpm");
        install.args([
            "-i",
            "--justdb",
            "--nodeps",
            "--noscripts",
            "--notriggers",
            "--ignorearch",
            "--ignoreos",
            "--nosignature",
        ]);
        dbpath(&mut install);
        install.args(&rpms);
        run(&mut install);
        let mut query = Command::new("rpm");
        query.args([
            "-qa",
            "--qf",
            "%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE} %{ARCH}\\n",
        ]);
        dbpath(&mut query);
        let mut listed: Vec<(String, String, String)> = run(&mut query)
            .lines()
            .map(|line| {
                let parts: Vec<&str> = line.split(' ').collect();
                // Trivy's spelling: no epoch when there is none or it is 0.
                let evr = parts[1]
                    .strip_prefix("(none):")
                    .or_else(|| parts[1].strip_prefix("0:"))
                    .unwrap_or(parts[1]);
                (parts[0].into(), evr.into(), parts[2].into())
            })
            .collect();
        listed.sort();

        let sqlite = ["rpmdb.sqlite", "rpmdb.sqlite-shm", "rpmdb.sqlite-wal"]
            .into_iter()
            .map(|name| (name, std::fs::read(db.join(name)).unwrap()))
            .collect();
        let bdb = berkeley_db(&db.join("rpmdb.sqlite"), root);
        Fixture {
            sqlite,
            bdb,
            listed,
        }
    })
}

/// The headers of `sqlite` written into a Berkeley DB hash file by db_load, keyed as rpm keys
/// them (the header number, a native-endian 32-bit integer).
fn berkeley_db(sqlite: &Path, dir: &Path) -> Vec<u8> {
    let rows = run(Command::new("sqlite3")
        .arg(sqlite)
        .arg("SELECT hnum, hex(blob) FROM Packages;"));
    let mut dump =
        String::from("VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize=4096\nHEADER=END\n");
    for row in rows.lines() {
        let (hnum, blob) = row.split_once('|').unwrap();
        let key: u32 = hnum.parse().unwrap();
        let key: String = key
            .to_le_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        dump.push_str(&format!(" {key}\n {}\n", blob.to_lowercase()));
    }
    dump.push_str("DATA=END\n");
    let input = dir.join("dump.txt");
    std::fs::write(&input, dump).unwrap();
    let output = dir.join("Packages");
    run(Command::new("db5.3_load")
        .arg("-f")
        .arg(&input)
        .arg(&output));
    std::fs::read(output).unwrap()
}

/// A second layer of binary files (the text fixtures' `Node` holds text only).
fn binary_layer(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_size(bytes.len() as u64);
        builder
            .append_data(&mut header, path, bytes.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

const ROCKY_REPO: &str = "\
[baseos]
name=Rocky Linux $releasever - BaseOS
mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever$rltype
#baseurl=http://dl.rockylinux.org/$contentdir/$releasever/BaseOS/$basearch/os/
gpgcheck=1
enabled=1

[appstream]
name=Rocky Linux $releasever - AppStream
baseurl=http://dl.rockylinux.org/$contentdir/$releasever/AppStream/$basearch/os/
gpgcheck=1

[crb]
name=Rocky Linux $releasever - CRB
baseurl=http://dl.rockylinux.org/$contentdir/$releasever/CRB/$basearch/os/
enabled=0
";

fn rocky(manager: &[Node]) -> Vec<Vec<u8>> {
    let mut nodes = vec![
        Node::File(
            "etc/os-release",
            "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\n\
             ID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n",
        ),
        Node::File("etc/yum.repos.d/rocky.repo", ROCKY_REPO),
        Node::File("etc/dnf/vars/contentdir", "pub/rocky\n"),
        Node::File("etc/dnf/vars/rltype", "\n"),
        Node::File(
            "etc/dnf/plugins/versionlock.list",
            "# Added lock\nbash-0:5.1.8-6.el9.*\n",
        ),
        Node::File("etc/dnf/dnf.conf", "[main]\ngpgcheck=1\nexclude=tzdata\n"),
    ];
    nodes.extend(manager.iter().map(|n| match n {
        Node::File(p, c) => Node::File(p, c),
        Node::Link(p, t) => Node::Link(p, t),
        Node::Dir(p) => Node::Dir(p),
        Node::OwnedDir(p, u) => Node::OwnedDir(p, *u),
    }));
    let database = fixture()
        .sqlite
        .iter()
        .map(|(name, bytes)| (format!("var/lib/rpm/{name}"), bytes.clone()))
        .collect::<Vec<_>>();
    vec![layer_tar(&nodes), binary_layer(&database)]
}

fn setup(layers: Vec<Vec<u8>>) -> PluginSetup {
    builtin_plugin("rpm", layers, default_index())
}

fn finding(id: &str, package: &str, installed: &str, fixed: &str, status: &str) -> Finding {
    Finding {
        vulnerability_id: id.into(),
        package_name: package.into(),
        installed_version: installed.into(),
        fixed_versions: fixed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        pkg_path: None,
        report_target: "rockylinux:9 (rocky 9.3)".into(),
        report_type: "rocky".into(),
        purl: Some(format!(
            "pkg:rpm/rocky/{package}@{installed}?arch=x86_64&distro=rocky-9.3"
        )),
        severity: "HIGH".into(),
        status: status.into(),
    }
}

/// Trivy-shaped findings (binary package names, `[epoch:]version-release`): two fixes of one
/// package collapsing to the higher, a finding with no fix, one already fixed (by release and by
/// a fix announced without release), a locked and an excluded package, one not installed.
fn findings() -> Vec<Finding> {
    vec![
        finding(
            "CVE-2023-5678",
            "openssl-libs",
            "1:3.0.7-24.el9",
            "1:3.0.7-25.el9",
            "fixed",
        ),
        finding(
            "CVE-2024-0727",
            "openssl-libs",
            "1:3.0.7-24.el9",
            "1:3.0.7-27.el9",
            "fixed",
        ),
        finding(
            "CVE-2023-38546",
            "curl",
            "7.76.1-26.el9",
            "7.76.1-26.el9_3.2",
            "fixed",
        ),
        finding("CVE-2024-2398", "curl", "7.76.1-26.el9", "", "will_not_fix"),
        finding(
            "CVE-2022-3715",
            "bash",
            "5.1.8-6.el9",
            "5.1.8-9.el9",
            "fixed",
        ),
        finding(
            "CVE-2023-4911",
            "glibc",
            "2.34-100.el9",
            "2.34-83.el9_3.7",
            "fixed",
        ),
        finding("CVE-2024-2961", "glibc", "2.34-100.el9", "2.34", "fixed"),
        finding(
            "CVE-2024-0000",
            "tzdata",
            "2024a-1.el9",
            "2024b-1.el9",
            "fixed",
        ),
        finding(
            "CVE-2023-45322",
            "libxml2",
            "2.9.13-5.el9",
            "2.9.13-6.el9",
            "fixed",
        ),
    ]
}

/// The packages of a target as (name, version), sorted, for comparing with `rpm -qa`.
fn packages_of(target: &Target) -> Vec<(String, String)> {
    let mut packages: Vec<(String, String)> = target
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    packages.sort();
    packages
}

fn rpm_listing() -> Vec<(String, String)> {
    fixture()
        .listed
        .iter()
        .filter(|(name, _, _)| name != "gpg-pubkey")
        .map(|(name, evr, _)| (name.clone(), evr.clone()))
        .collect()
}

const DNF: Node<'static> = Node::File("usr/bin/dnf", "#!/usr/bin/python3\n");

#[test]
fn info_routes_the_rpm_distributions() {
    let setup = setup(rocky(&[DNF]));
    let types = &setup.plugin.info.report_types;
    for family in [
        "redhat", "centos", "rocky", "alma", "fedora", "amazon", "oracle",
    ] {
        assert!(types.iter().any(|t| t == family), "{family}");
    }
    for family in [
        "azurelinux",
        "cbl-mariner",
        "photon",
        "sles",
        "opensuse.leap",
    ] {
        assert!(types.iter().any(|t| t == family), "{family}");
    }
    assert_eq!(setup.plugin.info.purl_types, ["rpm"]);
}

#[test]
fn reads_every_package_of_a_real_rpmdb_sqlite() {
    let setup = setup(rocky(&[DNF]));
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    assert_eq!(targets.len(), 1);
    let target = &targets[0];
    assert_eq!(target.id, SQLITE_DB);
    assert_eq!(target.kind, "rpm");
    assert_eq!(target.runtime_version.as_deref(), Some("9.3"));
    assert_eq!(target.unpatchable_reason, None);
    // Exactly what rpm itself lists, gpg-pubkey aside: the header spilling onto overflow pages
    // and the 120 fillers spread over leaf pages under an interior page included.
    let packages = packages_of(target);
    assert_eq!(packages, rpm_listing());
    assert_eq!(packages.len(), PACKAGES.len() - 1 + 1 + FILLERS);
    assert!(packages.contains(&("openssl-libs".into(), "1:3.0.7-24.el9".into())));
    assert!(packages.contains(&("tzdata".into(), "2024a-1.el9".into())));
    assert!(packages.contains(&("big-description".into(), "1.0-1.el9".into())));
    assert!(target.packages.iter().all(|p| p.location == SQLITE_DB));

    assert_eq!(target_attribute(target, "os"), "rocky");
    assert_eq!(target_attribute(target, "basearch"), "x86_64");
    assert_eq!(
        target_attribute(target, "releasever"),
        "9",
        "from rocky-release's system-release(releasever), not VERSION_ID"
    );
    assert_eq!(target_attribute(target, "manager"), "dnf");
    assert_eq!(target_attribute(target, "manager-path"), "/usr/bin/dnf");
    assert_eq!(
        target_attribute(target, "repositories"),
        "rpm https://mirrors.rockylinux.org/mirrorlist?arch=x86_64&repo=BaseOS-9 x86_64\n\
         rpm http://dl.rockylinux.org/pub/rocky/9/AppStream/x86_64/os/ x86_64"
    );
}

/// An update as (package, from, (only a minimum, to), fixes).
type Planned<'a> = (&'a str, &'a str, (bool, &'a str), Vec<&'a str>);

#[test]
fn plans_minimums_collapsed_per_package_with_skips_and_reasons() {
    let setup = setup(rocky(&[DNF]));
    let (_, plan) = setup.detect_and_plan(&findings());
    let updates: Vec<Planned> = plan
        .updates
        .iter()
        .map(|u| {
            assert_eq!(u.target_id, SQLITE_DB);
            (
                u.package.as_str(),
                u.from_version.as_str(),
                (u.at_least, u.to_version.as_str()),
                u.fixes.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        updates,
        [
            (
                "curl",
                "7.76.1-26.el9",
                (true, "7.76.1-26.el9_3.2"),
                vec!["CVE-2023-38546"]
            ),
            (
                "openssl-libs",
                "1:3.0.7-24.el9",
                (true, "1:3.0.7-27.el9"),
                vec!["CVE-2023-5678", "CVE-2024-0727"]
            ),
        ]
    );
    let skips: Vec<(&str, Vec<&str>, &str)> = plan
        .skips
        .iter()
        .map(|s| {
            (
                s.package.as_str(),
                s.vulnerabilities.iter().map(String::as_str).collect(),
                s.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        skips,
        [
            (
                "bash",
                vec!["CVE-2022-3715"],
                "locked by versionlock (bash-0:5.1.8-6.el9.* in /etc/dnf/plugins/versionlock.list)"
            ),
            (
                "curl",
                vec!["CVE-2024-2398"],
                "the distribution will not fix it (status will_not_fix)"
            ),
            (
                "libxml2",
                vec!["CVE-2023-45322"],
                "not installed in /var/lib/rpm/rpmdb.sqlite"
            ),
            (
                "tzdata",
                vec!["CVE-2024-0000"],
                "excluded from updates (exclude=tzdata in /etc/dnf/dnf.conf)"
            ),
        ],
        "glibc already has both fixes"
    );
}

#[test]
fn emits_one_dnf_upgrade_with_the_caches_excluded() {
    let setup = setup(rocky(&[DNF]));
    let (targets, plan) = setup.detect_and_plan(&findings());
    let steps = setup
        .host
        .emit_commands(
            &setup.plugin,
            &setup.caps,
            &targets,
            &plan,
            &common::default_policy(),
        )
        .unwrap();
    assert_eq!(steps.len(), 1);
    let Step::Run(run) = &steps[0] else {
        panic!("expected a run step: {:?}", steps[0]);
    };
    // Minimums: dnf takes the newest build of each, the host verifies the fix afterwards.
    assert_eq!(
        run.argv,
        [
            "/usr/bin/dnf",
            "upgrade",
            "-y",
            "--refresh",
            "--setopt=install_weak_deps=False",
            "curl",
            "openssl-libs"
        ]
    );
    assert!(run.env.is_empty());
    assert_eq!(run.user, None);
    assert_eq!(run.workdir, None);
    assert_eq!(run.index_ecosystem.as_deref(), Some("rpm"));
    assert_eq!(run.updates, [0, 1]);
    assert_eq!(run.description, "dnf upgrade in /var/lib/rpm/rpmdb.sqlite");
    assert_eq!(
        run.exclude,
        [
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
        ]
    );
}

#[test]
fn the_package_manager_decides_the_command() {
    let only_openssl = &findings()[..2];
    let argv_with = |manager: &[Node]| {
        let setup = setup(rocky(manager));
        let (targets, plan) = setup.detect_and_plan(only_openssl);
        let steps = setup
            .host
            .emit_commands(
                &setup.plugin,
                &setup.caps,
                &targets,
                &plan,
                &common::default_policy(),
            )
            .unwrap();
        let Step::Run(run) = &steps[0] else {
            panic!("expected a run step: {:?}", steps[0]);
        };
        run.argv.clone()
    };
    // RHEL 8 and later: yum is a link to dnf-3, and so speaks dnf.
    assert_eq!(
        argv_with(&[
            Node::Link("usr/bin/yum", "dnf-3"),
            Node::File("usr/bin/dnf-3", "#!/usr/bin/python3\n"),
        ])[..2],
        ["/usr/bin/dnf-3", "upgrade"]
    );
    assert_eq!(
        argv_with(&[Node::Link("usr/bin/yum", "dnf-3")])[..5],
        [
            "/usr/bin/yum",
            "upgrade",
            "-y",
            "--refresh",
            "--setopt=install_weak_deps=False"
        ]
    );
    assert_eq!(
        argv_with(&[Node::File("usr/bin/yum", "#!/usr/bin/python2\n")]),
        ["/usr/bin/yum", "update", "-y", "openssl-libs"]
    );
    assert_eq!(
        argv_with(&[Node::File("usr/bin/tdnf", "ELF")]),
        [
            "/usr/bin/tdnf",
            "upgrade",
            "-y",
            "--refresh",
            "openssl-libs"
        ]
    );
    assert_eq!(
        argv_with(&[Node::File("usr/bin/microdnf", "ELF")]),
        ["/usr/bin/microdnf", "update", "-y", "openssl-libs"]
    );
}

#[test]
fn images_without_a_package_manager_are_detected_but_unpatchable() {
    let setup = setup(rocky(&[]));
    let (targets, plan) = setup.detect_and_plan(&findings()[..2]);
    let reason = "no dnf, yum, tdnf or microdnf in the image (distroless); patching through a \
                  tooling container is not supported yet";
    assert_eq!(targets[0].unpatchable_reason.as_deref(), Some(reason));
    assert_eq!(packages_of(&targets[0]), rpm_listing());
    assert!(plan.updates.is_empty());
    assert_eq!(plan.skips.len(), 1);
    assert_eq!(plan.skips[0].reason, reason);
    assert_eq!(
        plan.skips[0].vulnerabilities,
        ["CVE-2023-5678", "CVE-2024-0727"]
    );

    let setup = self::setup(rocky(&[Node::File("usr/bin/zypper", "ELF")]));
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    assert!(
        targets[0]
            .unpatchable_reason
            .as_deref()
            .unwrap()
            .starts_with("the image's package manager is zypper"),
        "{targets:#?}"
    );
}

#[test]
fn reads_the_berkeley_db_packages_file_of_older_releases() {
    let text = layer_tar(&[
        Node::File(
            "etc/os-release",
            "NAME=\"Amazon Linux\"\nVERSION=\"2\"\nID=\"amzn\"\nID_LIKE=\"centos rhel fedora\"\n\
             VERSION_ID=\"2\"\n",
        ),
        Node::File(
            "etc/yum.repos.d/amzn2-core.repo",
            "[amzn2-core]\nname=Amazon Linux 2 core repository\n\
             mirrorlist=$awsproto://$amazonlinux.$awsregion.$awsdomain/$releasever/$product/$target$basearch/mirror.list\n\
             enabled=1\n",
        ),
        Node::File("etc/yum/vars/awsproto", "https\n"),
        Node::File("usr/bin/yum", "#!/usr/bin/python\n"),
    ]);
    let binary = binary_layer(&[("var/lib/rpm/Packages".into(), fixture().bdb.clone())]);
    let setup = setup(vec![text, binary]);
    let (targets, plan) = setup.detect_and_plan(&findings()[..3]);
    let target = &targets[0];
    assert_eq!(target.id, "/var/lib/rpm/Packages");
    assert_eq!(target.unpatchable_reason, None);
    assert_eq!(packages_of(target), rpm_listing());
    assert_eq!(target_attribute(target, "manager"), "yum");
    assert_eq!(
        target_attribute(target, "repositories"),
        "rpm https://$amazonlinux.$awsregion.$awsdomain/9/$product/$targetx86_64/mirror.list x86_64",
        "known variables expanded, unknown ones left for the index to reject"
    );
    let updates: Vec<(&str, (bool, &str))> = plan
        .updates
        .iter()
        .map(|u| (u.package.as_str(), (u.at_least, u.to_version.as_str())))
        .collect();
    assert_eq!(
        updates,
        [
            ("curl", (true, "7.76.1-26.el9_3.2")),
            ("openssl-libs", (true, "1:3.0.7-27.el9"))
        ]
    );
}

#[test]
fn an_ndb_database_is_named_as_unreadable() {
    let setup = setup(vec![layer_tar(&[
        Node::File(
            "usr/lib/os-release",
            "NAME=\"openSUSE Tumbleweed\"\nID=\"opensuse-tumbleweed\"\nID_LIKE=\"opensuse suse\"\n",
        ),
        Node::Link("etc/os-release", "../usr/lib/os-release"),
        Node::File("usr/lib/sysimage/rpm/Packages.db", "RpmP"),
        Node::File("usr/bin/zypper", "ELF"),
    ])]);
    let targets = setup.host.detect(&setup.plugin, &setup.caps).unwrap();
    assert_eq!(targets[0].id, "/usr/lib/sysimage/rpm/Packages.db");
    assert!(targets[0].packages.is_empty());
    assert_eq!(
        targets[0].unpatchable_reason.as_deref(),
        Some(
            "cannot read the rpm database /usr/lib/sysimage/rpm/Packages.db: the rpm database \
             /usr/lib/sysimage/rpm/Packages.db is in the ndb format, which this plugin cannot \
             read yet"
        )
    );
}

#[test]
fn debian_and_alpine_images_are_not_rpm_targets() {
    let setup = setup(vec![common::python_image_tar()]);
    assert!(
        setup
            .host
            .detect(&setup.plugin, &setup.caps)
            .unwrap()
            .is_empty()
    );
}
