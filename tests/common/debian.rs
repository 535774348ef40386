//! Debian fixtures' facts the OS tests share: what apt in the base image says is outdated, a
//! Trivy report of it, and the distroless fixture's status.d records.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::docker::*;

pub const BASE: &str = "copa-fixture-base:bookworm";
pub const DISTROLESS: &str = "copa-fixture-distroless:bookworm";

/// `apt-get -s upgrade` inside `image`: package -> (installed, candidate).
pub fn upgradable(image: &str) -> BTreeMap<String, (String, String)> {
    let text = run_in(
        image,
        &[
            "sh",
            "-c",
            "apt-get -qq update >/dev/null && apt-get -s upgrade",
        ],
    );
    // "Inst libpam0g [1.5.2-6+deb12u2] (1.5.2-6+deb12u3 Debian-Security:12/stable-security [amd64])"
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Inst ")?;
            let (name, rest) = rest.split_once(" [")?;
            let (installed, rest) = rest.split_once("] (")?;
            let candidate = rest.split_whitespace().next()?;
            Some((
                name.to_string(),
                (installed.to_string(), candidate.to_string()),
            ))
        })
        .collect()
}

/// A Trivy JSON v2 report of OS findings: (id, package, installed, fixed, status).
pub fn os_report(
    family: &str,
    release: &str,
    findings: &[(String, String, String, String, &str)],
) -> String {
    let vulnerabilities: Vec<Value> = findings
        .iter()
        .map(|(id, package, installed, fixed, status)| {
            json!({
                "VulnerabilityID": id,
                "PkgName": package,
                "PkgIdentifier": {"PURL": format!("pkg:deb/{family}/{package}@{installed}?arch=amd64&distro={family}-{release}")},
                "InstalledVersion": installed,
                "FixedVersion": fixed,
                "Status": status,
                "Severity": "HIGH",
            })
        })
        .collect();
    json!({
        "SchemaVersion": 2,
        "ArtifactName": BASE,
        "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": family, "Name": release}},
        "Results": [{
            "Target": format!("{BASE} ({family} {release})"),
            "Class": "os-pkgs",
            "Type": family,
            "Vulnerabilities": vulnerabilities,
        }],
    })
    .to_string()
}

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A status.d entry's field.
pub fn status_d_field(image: &str, package: &str, field: &str) -> String {
    let entry = run_in(
        image,
        &["cat", &format!("/var/lib/dpkg/status.d/{package}")],
    );
    entry
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}: ")))
        .unwrap_or_default()
        .to_string()
}

/// A report naming the distroless fixture's outdated ncurses-base: (path, installed, fixed).
pub fn distroless_report(dir: &Path) -> (String, String, String) {
    // The distroless fixture has the base's packages, so apt in the base says what is outdated.
    let outdated = upgradable(BASE);
    let (installed, candidate) = outdated
        .get("ncurses-base")
        .expect("the fixture's ncurses-base comes from bullseye")
        .clone();
    let release = run_in(BASE, &["cat", "/etc/debian_version"]);
    let report = write(
        dir,
        "report.json",
        &os_report(
            "debian",
            &release,
            &[(
                "TEST-ncurses".into(),
                "ncurses-base".into(),
                installed.clone(),
                candidate.clone(),
                "fixed",
            )],
        ),
    );
    (report, installed, candidate)
}

/// The ncurses-base the image has, by its status entry and its files' checksums.
pub fn assert_ncurses_base(image: &str, version: &str) {
    assert_eq!(status_d_field(image, "ncurses-base", "Version"), version);
    let check = docker(&[
        "run",
        "--rm",
        "-w",
        "/",
        image,
        "md5sum",
        "--check",
        "--quiet",
        "/var/lib/dpkg/status.d/ncurses-base.md5sums",
    ]);
    assert!(
        check.status.success(),
        "md5sums of the new files in {image}"
    );
}

/// The seed of the key the test archives sign with ([`archive_key`]).
pub const ARCHIVE_KEY: u64 = 1;

/// An Ed25519 signing key, the same for the same seed: its creation time (part of its
/// fingerprint) is fixed too.
pub fn archive_key(seed: u64) -> pgp::composed::SignedSecretKey {
    use pgp::composed::{KeyType, SecretKeyParamsBuilder};
    use rand::SeedableRng;
    SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519)
        .created_at(pgp::types::Timestamp::from_secs(1_700_000_000))
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(format!("Test archive {seed} <archive@example.org>"))
        .build()
        .unwrap()
        .generate(rand::rngs::StdRng::seed_from_u64(seed))
        .unwrap()
}

/// The public key of [`archive_key`]`(seed)`, ASCII-armored (a `.asc` keyring).
pub fn armored_public_key(seed: u64) -> String {
    archive_key(seed)
        .to_public_key()
        .to_armored_string(pgp::composed::ArmorOptions::default())
        .unwrap()
}

/// The key id of [`archive_key`]`(seed)`, as refusals name it.
pub fn key_id(seed: u64) -> String {
    use pgp::types::KeyDetails;
    hex::encode_upper(archive_key(seed).primary_key.legacy_key_id().as_ref())
}

/// How a test suite's Release is served.
#[derive(Clone, Copy)]
pub enum Release {
    /// As an `InRelease` clear-signed by [`archive_key`]`(seed)`.
    SignedBy(u64),
    /// As a plain `Release`, with no signature.
    Unsigned,
}

/// The files of one suite of an APT repository at `/{archive}/dists/{suite}/`: an `InRelease`
/// signed by the test archive key ([`ARCHIVE_KEY`]) listing the index files `indexes` (name in
/// `main/binary-amd64/`, bytes) by their size and SHA256, and those files, as (path, bytes) for
/// `serve_static`.
pub fn apt_suite(
    archive: &str,
    suite: &str,
    indexes: &[(&str, Vec<u8>)],
) -> Vec<(String, Vec<u8>)> {
    apt_suite_with(Release::SignedBy(ARCHIVE_KEY), archive, suite, indexes)
}

/// [`apt_suite`], its Release served as `release` says.
pub fn apt_suite_with(
    release: Release,
    archive: &str,
    suite: &str,
    indexes: &[(&str, Vec<u8>)],
) -> Vec<(String, Vec<u8>)> {
    use sha2::Digest;
    let dir = format!("/{archive}/dists/{suite}");
    let mut text = format!("Suite: {suite}\nSHA256:\n");
    let mut files = Vec::new();
    for (name, bytes) in indexes {
        let path = format!("main/binary-amd64/{name}");
        let sha256 = hex::encode(sha2::Sha256::digest(bytes));
        text.push_str(&format!(" {sha256} {} {path}\n", bytes.len()));
        files.push((format!("{dir}/{path}"), bytes.clone()));
    }
    files.push(match release {
        Release::SignedBy(seed) => (format!("{dir}/InRelease"), clear_sign(seed, &text)),
        Release::Unsigned => (format!("{dir}/Release"), text.into_bytes()),
    });
    files
}

/// `text` clear-signed by [`archive_key`]`(seed)`, as an `InRelease`.
pub fn clear_sign(seed: u64, text: &str) -> Vec<u8> {
    use rand::SeedableRng;
    let key = archive_key(seed);
    pgp::composed::CleartextSignedMessage::sign(
        rand::rngs::StdRng::seed_from_u64(seed),
        text,
        &key.primary_key,
        &pgp::types::Password::empty(),
    )
    .unwrap()
    .to_armored_bytes(pgp::composed::ArmorOptions::default())
    .unwrap()
}
