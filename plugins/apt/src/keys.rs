//! Which keys a repository's Release must be signed by, chosen as apt chooses them
//! (sources.list(5), apt-secure(8)): the keyrings its `Signed-By` names (files in the image, or
//! a key block written into a deb822 source), else every keyring of the image's
//! `/etc/apt/trusted.gpg.d` (`*.gpg`, `*.asc`) and `/etc/apt/trusted.gpg`; none for a source
//! marked `[trusted=yes]` (`Trusted: yes`).
//!
//! A distroless image has no apt, so no sources and usually no keyring: its release's own
//! repositories ([`crate::distroless::default_sources`]) are trusted by the archive
//! keyrings of Debian and Ubuntu this plugin carries (`keys/`), and by the image's keyrings if
//! it has any. A mirror serves the archives' signed files, so the same keys apply to it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use copa_plugin_sdk::apt_repo::Trust;
use copa_plugin_sdk::openpgp::{Keyring, MAX_KEYRING_BYTES};
use copa_plugin_sdk::{Target, attribute, fs, log};

/// debian-archive-keyring's `/usr/share/keyrings/debian-archive-keyring.gpg` (see keys/README.md).
const DEBIAN_ARCHIVE: &[u8] = include_bytes!("../keys/debian-archive-keyring.gpg");
/// ubuntu-keyring's `/usr/share/keyrings/ubuntu-archive-keyring.gpg` (see keys/README.md).
const UBUNTU_ARCHIVE: &[u8] = include_bytes!("../keys/ubuntu-archive-keyring.gpg");

const TRUSTED_GPG: &str = "/etc/apt/trusted.gpg";
const TRUSTED_GPG_D: &str = "/etc/apt/trusted.gpg.d";

/// The prefix of the target attribute that records, for one repository line, how its source
/// says it is signed ([`SignedBy::attribute`]); a line without one is [`SignedBy::Image`].
pub const ATTRIBUTE_PREFIX: &str = "signed-by ";

/// How a repository's source says its Release is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignedBy {
    /// No `Signed-By`: by a key of the image's trusted keyrings.
    Image,
    /// By a key of these keyring files of the image (absolute paths). A `Signed-By` may also
    /// name key fingerprints, which are not supported: such a repository is not read.
    Files(Vec<String>),
    /// By a key of this ASCII-armored block, written into a deb822 source.
    Inline(String),
    /// By a key of the archive keyrings this plugin carries, or of the image's.
    Archive,
    /// Not checked: `[trusted=yes]`, `Trusted: yes`.
    Anyone,
}

impl SignedBy {
    /// A `signed-by=` option or a deb822 `Signed-By` field (continuation lines joined by
    /// newlines, where deb822 writes an empty line as ".").
    pub fn from_source(value: &str) -> Self {
        let value = value.trim();
        if value.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            let block: Vec<&str> = value
                .lines()
                .map(|line| match line.trim() {
                    "." => "",
                    line => line,
                })
                .collect();
            return SignedBy::Inline(block.join("\n"));
        }
        SignedBy::Files(
            value
                .split([',', ' ', '\t', '\n'])
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        )
    }

    /// The value of its attribute, or `None` for [`SignedBy::Image`], the default.
    pub fn attribute(&self) -> Option<String> {
        match self {
            SignedBy::Image => None,
            SignedBy::Anyone => Some("trusted=yes".into()),
            SignedBy::Archive => Some("archive".into()),
            SignedBy::Inline(block) => Some(block.clone()),
            SignedBy::Files(paths) => Some(paths.join(" ")),
        }
    }

    fn from_attribute(value: Option<&str>) -> Self {
        match value {
            None => SignedBy::Image,
            Some("trusted=yes") => SignedBy::Anyone,
            Some("archive") => SignedBy::Archive,
            Some(value) => SignedBy::from_source(value),
        }
    }
}

/// The keys that the repositories of a target trust, read from the image when first asked
/// for, once per kind of `Signed-By`.
pub struct Keys<'a> {
    target: &'a Target,
    read: RefCell<HashMap<Option<String>, Result<Trust, String>>>,
}

impl<'a> Keys<'a> {
    pub fn of(target: &'a Target) -> Self {
        Keys {
            target,
            read: RefCell::default(),
        }
    }

    /// What the Release of the repository `line` must be signed by, or why the keys cannot be
    /// read.
    pub fn trust(&self, line: &str) -> Result<Trust, String> {
        let value = attribute(self.target, &format!("{ATTRIBUTE_PREFIX}{line}"));
        let key = value.map(String::from);
        if let Some(known) = self.read.borrow().get(&key) {
            return known.clone();
        }
        let trust = trust(&SignedBy::from_attribute(value));
        self.read.borrow_mut().insert(key, trust.clone());
        trust
    }
}

/// What the Release of a repository whose source says `signed_by` must carry.
fn trust(signed_by: &SignedBy) -> Result<Trust, String> {
    let keyring = match signed_by {
        SignedBy::Anyone => return Ok(Trust::Unchecked),
        SignedBy::Image => image_keyring(),
        SignedBy::Archive => {
            let mut keyring = archive_keyring();
            keyring.extend(&image_keyring());
            keyring
        }
        SignedBy::Inline(block) => {
            Keyring::parse(block.as_bytes()).map_err(|e| format!("the Signed-By key block: {e}"))?
        }
        SignedBy::Files(entries) => files_keyring(entries)?,
    };
    Ok(Trust::Keys(Arc::new(keyring)))
}

/// The keys of the keyring files a `Signed-By` names.
fn files_keyring(entries: &[String]) -> Result<Keyring, String> {
    let mut keyring = Keyring::default();
    for entry in entries {
        if !entry.starts_with('/') {
            return Err(format!(
                "Signed-By names {entry:?}, not a keyring file: key fingerprints are not \
                 supported"
            ));
        }
        keyring.extend(&read_keyring(entry)?);
    }
    Ok(keyring)
}

/// The image's trusted keyrings. One that cannot be read is left out with a warning, as apt
/// leaves it out.
fn image_keyring() -> Keyring {
    let mut paths = vec![TRUSTED_GPG.to_string()];
    let mut names = fs::read_dir(TRUSTED_GPG_D).unwrap_or_default();
    names.sort();
    paths.extend(
        names
            .iter()
            .filter(|name| name.ends_with(".gpg") || name.ends_with(".asc"))
            .map(|name| format!("{TRUSTED_GPG_D}/{name}")),
    );
    let mut keyring = Keyring::default();
    for path in paths.iter().filter(|path| fs::exists(path)) {
        match read_keyring(path) {
            Ok(keys) => keyring.extend(&keys),
            Err(e) => log::warn(&format!("{e}; its keys are not trusted")),
        }
    }
    keyring
}

/// The archive keyrings of Debian and Ubuntu this plugin carries.
fn archive_keyring() -> Keyring {
    let mut keyring = Keyring::default();
    for carried in [DEBIAN_ARCHIVE, UBUNTU_ARCHIVE] {
        // Parsed in the tests: a failure here is a broken build.
        keyring.extend(&Keyring::parse(carried).expect("the carried archive keyrings parse"));
    }
    keyring
}

/// A keyring file of the image, at most [`MAX_KEYRING_BYTES`].
fn read_keyring(path: &str) -> Result<Keyring, String> {
    let stat = fs::stat(path).ok_or_else(|| format!("keyring {path}: not in the image"))?;
    if stat.size > MAX_KEYRING_BYTES {
        return Err(format!(
            "keyring {path}: {} bytes, more than the {MAX_KEYRING_BYTES} a keyring is read at",
            stat.size
        ));
    }
    let bytes = fs::read_file(path).map_err(|e| format!("keyring {path}: {e}"))?;
    Keyring::parse(&bytes).map_err(|e| format!("keyring {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_carried_archive_keyrings_hold_the_archives_keys() {
        let debian = Keyring::parse(DEBIAN_ARCHIVE).unwrap();
        // bullseye, bookworm and trixie: archive, security and release keys; the archive and
        // security keys sign with a subkey.
        assert_eq!((debian.keys(), debian.signing_keys()), (9, 15));
        let ubuntu = Keyring::parse(UBUNTU_ARCHIVE).unwrap();
        assert_eq!((ubuntu.keys(), ubuntu.signing_keys()), (3, 3));
        assert_eq!(archive_keyring().keys(), 12);
    }

    #[test]
    fn signed_by_is_kept_as_an_attribute() {
        let block =
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----";
        let deb822 =
            "\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n.\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----";
        assert_eq!(
            SignedBy::from_source(deb822),
            SignedBy::Inline(block.into())
        );
        let files = SignedBy::from_source("/a.gpg,/b.asc");
        assert_eq!(
            files,
            SignedBy::Files(vec!["/a.gpg".into(), "/b.asc".into()])
        );
        for signed_by in [
            SignedBy::Inline(block.into()),
            files,
            SignedBy::Archive,
            SignedBy::Anyone,
            SignedBy::Image,
        ] {
            let value = signed_by.attribute();
            assert_eq!(SignedBy::from_attribute(value.as_deref()), signed_by);
        }
    }

    #[test]
    fn a_fingerprint_is_refused_with_the_reason() {
        let err = trust(&SignedBy::Files(vec!["0123ABCD".into()])).unwrap_err();
        assert_eq!(
            err,
            "Signed-By names \"0123ABCD\", not a keyring file: key fingerprints are not supported"
        );
    }
}
