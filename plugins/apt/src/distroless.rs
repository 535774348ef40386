//! Images with a dpkg database but no apt or dpkg: the distroless form, one status file per
//! package in `/var/lib/dpkg/status.d/`, with its checksum list beside it.
//!
//! No package manager can run in such an image, and none is needed: the host places the files
//! of the exact .deb the plan chose (a `download` step naming the repository's SHA256), and this
//! module writes what dpkg would have written, so scanners see the new version:
//! - the package's status entry, from the repository's own record of the new version;
//! - its `.md5sums` list, computed from the new files (when the image keeps such lists);
//! - removals of the files the old version had and the new one does not.
//!
//! Maintainer scripts do not run, as in every distroless build; configuration files are
//! replaced like any other file, since such images have no user-edited configuration.

use std::collections::BTreeSet;

use copa_plugin_sdk::apt_repo::Repository;
use copa_plugin_sdk::archive::{Artifact, ExpectedDigest};
use copa_plugin_sdk::{DownloadStep, Placement, Step, Update, WriteStep, fs, http};
use md5::{Digest, Md5};

use crate::keys::SignedBy;
use crate::repositories::Offers;
use crate::sources::Source;

/// The largest .deb read: the most the host's `http` returns.
const MAX_DEB_BYTES: u64 = 64 * 1024 * 1024;

/// Fields of a repository's Packages record that describe the archive, not the package; dpkg
/// leaves them out of its status.
const ARCHIVE_ONLY_FIELDS: &[&str] = &[
    "Filename",
    "Size",
    "MD5sum",
    "SHA1",
    "SHA256",
    "SHA512",
    "Description-md5",
    "Tag",
    "Task",
    "Phased-Update-Percentage",
];

/// The repositories a Debian or Ubuntu release is built from, for images that list none (no
/// apt, so no sources), signed by the release's archive keys. A mirror (`--apt-mirror`) still
/// replaces their origin.
pub fn default_sources(os: &str, codename: &str, arch: &str) -> Vec<Source> {
    let suites: Vec<(&str, String)> = match os {
        "ubuntu" => {
            let archive = if matches!(arch, "amd64" | "i386") {
                "http://archive.ubuntu.com/ubuntu"
            } else {
                "http://ports.ubuntu.com/ubuntu-ports"
            };
            ["", "-updates", "-security"]
                .iter()
                .map(|suffix| (archive, format!("{codename}{suffix}")))
                .collect()
        }
        _ => vec![
            ("http://deb.debian.org/debian", codename.to_string()),
            (
                "http://deb.debian.org/debian",
                format!("{codename}-updates"),
            ),
            (
                "http://deb.debian.org/debian-security",
                format!("{codename}-security"),
            ),
        ],
    };
    suites
        .into_iter()
        .map(|(uri, suite)| Source {
            repository: Repository {
                uri: uri.into(),
                suite,
                component: "main".into(),
                arch: arch.into(),
            },
            signed_by: SignedBy::Archive,
        })
        .collect()
}

/// The status entry dpkg would write for `version` (a repository record), keeping the
/// `Status` line when the image's entries have one.
pub fn status_entry(record: &[(String, String)], with_status: bool) -> String {
    let mut text = String::new();
    for (name, value) in record {
        if ARCHIVE_ONLY_FIELDS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
        {
            continue;
        }
        text.push_str(&format!("{name}: {value}\n"));
        if with_status && name.eq_ignore_ascii_case("Package") {
            text.push_str("Status: install ok installed\n");
        }
    }
    text
}

/// The paths an `.md5sums` list names, absolute.
pub fn md5sums_paths(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.split_once("  ").map(|(_, path)| path.trim()))
        .filter(|path| !path.is_empty())
        .map(|path| format!("/{}", path.trim_start_matches('/')))
        .collect()
}

/// The steps that install `update` (planned at an exact version) into a distroless image whose
/// status entry for the package is `entry` (a file in status.d), from what `offers` records.
pub fn steps(
    update: &Update,
    update_index: u32,
    entry: &str,
    offers: &Offers<'_>,
) -> Result<Vec<Step>, String> {
    let name = update.package.split(':').next().unwrap_or(&update.package);
    let version = &update.to_version;
    let record = offers
        .record(name, version)
        .ok_or_else(|| format!("no repository offers {name} {version} any more"))?;
    let deb = record.deb.as_ref().ok_or_else(|| {
        format!("the repository names no .deb with a SHA256 for {name} {version}")
    })?;
    // The host serves the download step from this same answer, and checks the digest again.
    let response = http::get(&deb.url, &[], MAX_DEB_BYTES)
        .map_err(|e| format!("downloading {}: {e}", deb.url))?;
    if response.status != 200 {
        return Err(format!("downloading {}: HTTP {}", deb.url, response.status));
    }
    let artifact = Artifact::from_bytes(
        &deb.url,
        &response.body,
        Some(&ExpectedDigest::Sha256(deb.sha256.clone())),
    )?;
    let members: Vec<&str> = artifact.file_members().collect();

    let mut steps = Vec::new();
    let write = |path: String, contents: Option<Vec<u8>>, what: String| {
        Step::Write(WriteStep {
            description: what,
            path,
            contents,
            mode: 0o644,
            uid: 0,
            gid: 0,
            updates: vec![update_index],
        })
    };

    let new_files: BTreeSet<String> = members
        .iter()
        .map(|m| format!("/{}", m.trim_start_matches("./")))
        .collect();
    // Removals go first: the .deb's files are placed after them, so a file the old list names
    // under another path that lands in the same place (/lib is /usr/lib) stays.
    let md5sums_path = format!("{entry}.md5sums");
    let mut md5sums = None;
    if let Ok(old) = fs::read_to_string(&md5sums_path) {
        for gone in md5sums_paths(&old).difference(&new_files) {
            steps.push(write(
                gone.clone(),
                None,
                format!("remove {gone}, which {name} {version} no longer ships"),
            ));
        }
        let mut list = String::new();
        for member in &members {
            let bytes = artifact
                .read_member(member)
                .map_err(|e| format!("{}: {e}", deb.url))?;
            let digest = Md5::digest(&bytes);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            list.push_str(&format!("{hex}  {}\n", member.trim_start_matches("./")));
        }
        md5sums = Some(write(
            md5sums_path,
            Some(list.into_bytes()),
            format!("record the files of {name} {version}"),
        ));
    }
    steps.push(Step::Download(DownloadStep {
        description: format!("unpack {name} {version} (no apt in the image)"),
        url: deb.url.clone(),
        sha256: deb.sha256.clone(),
        placements: vec![Placement {
            member: String::new(),
            path: "/".into(),
            mode: None,
            uid: 0,
            gid: 0,
            replace: false,
        }],
        updates: vec![update_index],
    }));
    steps.extend(md5sums);
    let with_status = fs::read_to_string(entry)
        .map(|old| old.lines().any(|l| l.starts_with("Status:")))
        .unwrap_or(false);
    steps.push(write(
        entry.to_string(),
        Some(status_entry(&record.fields, with_status).into_bytes()),
        format!("record {name} {version} in {entry}"),
    ));
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_entries_leave_out_archive_fields() {
        let record = vec![
            ("Package".to_string(), "libz1".to_string()),
            ("Version".into(), "1.2-3+deb12u1".into()),
            ("Architecture".into(), "amd64".into()),
            ("Filename".into(), "pool/main/z/z/libz1.deb".into()),
            ("SHA256".into(), "ab".into()),
            ("Description".into(), "compression\n more".into()),
        ];
        assert_eq!(
            status_entry(&record, false),
            "Package: libz1\nVersion: 1.2-3+deb12u1\nArchitecture: amd64\n\
             Description: compression\n more\n"
        );
        assert!(
            status_entry(&record, true)
                .starts_with("Package: libz1\nStatus: install ok installed\nVersion:")
        );
    }

    #[test]
    fn default_sources_follow_the_release() {
        let lines = |os, codename, arch| -> Vec<String> {
            default_sources(os, codename, arch)
                .iter()
                .map(|source| source.repository.line())
                .collect()
        };
        let debian = default_sources("debian", "bookworm", "amd64");
        assert!(debian.iter().all(|s| s.signed_by == SignedBy::Archive));
        assert_eq!(
            lines("debian", "bookworm", "amd64"),
            [
                "deb http://deb.debian.org/debian bookworm main amd64",
                "deb http://deb.debian.org/debian bookworm-updates main amd64",
                "deb http://deb.debian.org/debian-security bookworm-security main amd64",
            ]
        );
        assert_eq!(
            lines("ubuntu", "noble", "arm64")[2],
            "deb http://ports.ubuntu.com/ubuntu-ports noble-security main arm64"
        );
    }

    #[test]
    fn reads_md5sums_lists() {
        let paths = md5sums_paths(
            "d41d8cd98f00b204e9800998ecf8427e  usr/lib/libz.so.1\n\
             0123456789abcdef0123456789abcdef  usr/share/doc/z/copyright\n\n",
        );
        assert_eq!(
            paths.into_iter().collect::<Vec<_>>(),
            ["/usr/lib/libz.so.1", "/usr/share/doc/z/copyright"]
        );
    }
}
