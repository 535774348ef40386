//! APT repositories, as apt reads them: a suite's `InRelease` (or `Release`) lists the digest
//! and size of each index file; the binary `Packages` index of one component and architecture,
//! fetched by the name the Release lists and checked against it, holds one stanza per package
//! version, naming its .deb (`Filename`, relative to the repository's URI) and the .deb's SHA256.
//!
//! A repository is named as a one-line `sources.list` entry without options,
//! `deb <uri> <suite> <component> <arch>` ([`Repository::parse`]). A plugin reads one with
//! [`read`] over the host's granted [`crate::http`] ([`read_over_http`]); [`read`] takes the
//! request as a `get` closure so that the host's own client (for plugins of older contracts)
//! reads a repository exactly the same way.
//!
//! Whose signature a Release must carry is the caller's [`Trust`]: with the `openpgp` feature, a
//! keyring ([`Trust::Keys`]): an `InRelease` must be clear-signed, a `Release` (after a 404 on
//! `InRelease`) needs its detached `Release.gpg`, each by a key of the keyring, as apt requires.
//! Everything read afterwards is trusted through the Release's digests, so only the text that
//! the signature covers is read.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
#[cfg(feature = "openpgp")]
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// The index id the apt plugin declares and users name in `--index deb=URL` (a mirror).
pub const ECOSYSTEM: &str = "deb";

/// A suite's Release lists every index file of the suite, a line each: Debian's largest are a
/// few hundred KB.
pub const MAX_RELEASE_BYTES: u64 = 16 * 1024 * 1024;

/// The most a compressed `Packages` is fetched at: the host's `http` returns no more (bookworm
/// main is 12 MB as gzip, 9 MB as xz).
pub const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;

/// The most a `Packages` decompresses to (bookworm main: 50 MB; Ubuntu's universe about twice
/// that): a gzip bomb stops here, having used no more memory than the stanzas kept.
pub const MAX_TEXT_BYTES: u64 = 512 * 1024 * 1024;

/// Index files in the order they are chosen among those the Release lists, moving on only
/// after a 404: gzip decodes several times faster than xz; debian-security and the -updates
/// suites publish no gzip, and mirrors answer 404 for the uncompressed file they list.
const INDEX_FILES: &[&str] = &["Packages.gz", "Packages.xz", "Packages"];

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// Whose signature a suite's Release must carry.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Nobody's: the Release is read as served. A repository marked `[trusted=yes]`
    /// (`Trusted: yes`), and the host's reads for plugins of older contracts.
    Unchecked,
    /// A key of this keyring: its primary key or one of its signing subkeys.
    #[cfg(feature = "openpgp")]
    Keys(Arc<crate::openpgp::Keyring>),
}

/// A validated `deb <uri> <suite> <component> <arch>` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// Without trailing slashes, so that `.../debian` and `.../debian/` are one repository.
    pub uri: String,
    pub suite: String,
    pub component: String,
    pub arch: String,
}

/// One version of a binary package in a `Packages` index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offered {
    pub version: String,
    /// The stanza's fields in order (a status entry is written from them); a multi-line value
    /// keeps its continuation lines, joined by newlines, as dpkg writes them back.
    pub fields: Vec<(String, String)>,
    /// The .deb, when the stanza names one safely (a `Filename` inside the repository and a
    /// SHA256).
    pub deb: Option<DebFile>,
}

/// Where a version's .deb is and what its bytes must hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebFile {
    pub url: String,
    /// Lower-case hex.
    pub sha256: String,
}

impl Offered {
    /// The value of field `name` (case-insensitive, as deb822 field names are).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Binary package name -> its versions in the order the index lists them, each once.
pub type Packages = HashMap<String, Vec<Offered>>;

/// `uri` with its origin (`scheme://[user@]host[:port]`) replaced by `mirror`, keeping the path:
/// the layout of apt-cacher-ng and of artifact managers' Debian remotes.
pub fn with_mirror(uri: &str, mirror: &str) -> String {
    let path = uri
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map(|i| &rest[i..]).unwrap_or(""))
        .unwrap_or(uri);
    format!("{}{path}", mirror.trim_end_matches('/'))
}

/// A mirror URL as the apt plugin's run substitutes it into the image's sources (a `sed`
/// replacement): a plain http(s) URL without whitespace or a character sed or the shell treats
/// specially. Returned without trailing slashes.
pub fn mirror_url(url: &str) -> Result<String, String> {
    let url = url.trim_end_matches('/');
    let plain = url
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~:/%@+=,".contains(c));
    let scheme = url.starts_with("http://") || url.starts_with("https://");
    if !plain || !scheme || url.split("://").nth(1).is_none_or(str::is_empty) {
        return Err(format!(
            "{url:?}: expected a plain http:// or https:// URL for an APT mirror"
        ));
    }
    Ok(url.to_string())
}

impl Repository {
    /// Checks a repository line: only what can become a URL below the repository's URI.
    pub fn parse(line: &str) -> Result<Self, String> {
        let words: Vec<&str> = line.split(' ').collect();
        if words.get(1).is_some_and(|word| word.starts_with('[')) {
            return Err(format!(
                "repository options are not supported in {line:?}: expected \"deb <uri> \
                 <suite> <component> <arch>\""
            ));
        }
        let ["deb", uri, suite, component, arch] = words[..] else {
            return Err(format!(
                "invalid repository {line:?}: expected \"deb <uri> <suite> <component> \
                 <arch>\" separated by single spaces"
            ));
        };
        if !is_plain_http_uri(uri) {
            return Err(format!(
                "unsupported repository URI {uri:?} in {line:?}: only plain http:// and \
                 https:// URIs (no query) can be fetched"
            ));
        }
        if suite.ends_with('/') {
            return Err(format!(
                "flat repository {line:?} is not supported: the suite {suite:?} ends with \
                 \"/\", but only repositories with a dists/ tree have per-architecture indexes"
            ));
        }
        if !is_relative_path(suite) {
            return Err(format!("invalid suite {suite:?} in {line:?}"));
        }
        if !is_archive_word(component) {
            return Err(format!("invalid component {component:?} in {line:?}"));
        }
        if !is_archive_word(arch) {
            return Err(format!("invalid architecture {arch:?} in {line:?}"));
        }
        Ok(Self {
            uri: uri.trim_end_matches('/').to_owned(),
            suite: suite.to_owned(),
            component: component.to_owned(),
            arch: arch.to_owned(),
        })
    }

    /// The line naming this repository (the form [`Repository::parse`] reads).
    pub fn line(&self) -> String {
        format!(
            "deb {} {} {} {}",
            self.uri, self.suite, self.component, self.arch
        )
    }

    /// This repository at `mirror` instead of its own origin ([`with_mirror`]).
    pub fn at_mirror(&self, mirror: &str) -> Self {
        Self {
            uri: with_mirror(&self.uri, mirror),
            ..self.clone()
        }
    }

    /// The suite's directory, with a trailing slash.
    fn suite_dir(&self) -> String {
        format!("{}/dists/{}/", self.uri, self.suite)
    }

    /// The index file `file` as the Release names it, relative to the suite's directory.
    fn index_path(&self, file: &str) -> String {
        format!("{}/binary-{}/{file}", self.component, self.arch)
    }
}

/// `http://` or `https://`, a host, no query, fragment, whitespace or backslash.
fn is_plain_http_uri(uri: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    !host.is_empty()
        && !host.starts_with(':')
        && !uri.contains(['?', '#', '\\'])
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A relative path of archive words: no empty, `.` or `..` segment (so it stays below where
/// it is appended), only characters archives use.
fn is_relative_path(path: &str) -> bool {
    !path.starts_with('/')
        && path
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~+-/".contains(&b))
}

/// Component and architecture names: `main`, `non-free-firmware`, `amd64`, `hurd-i386`.
fn is_archive_word(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".+-".contains(b))
}

/// One file a Release lists under `SHA256`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedFile {
    /// Relative to the suite's directory (`main/binary-amd64/Packages.xz`).
    pub path: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// The text of a Release: an `InRelease` without its OpenPGP clear-signature framing (dash
/// escapes undone), or a plain `Release` as it is. A framing that is not closed is an error.
pub fn release_text(body: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(body);
    let Some(rest) = text.strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----") else {
        return Ok(text.into_owned());
    };
    // Armor headers ("Hash: SHA512") end at the first empty line.
    let Some((_, signed)) = rest
        .split_once("\n\n")
        .or_else(|| rest.split_once("\r\n\r\n"))
    else {
        return Err("the InRelease has no signed text".into());
    };
    let Some((signed, _signature)) = signed.split_once("\n-----BEGIN PGP SIGNATURE-----") else {
        return Err("the InRelease's signed text is not followed by a signature".into());
    };
    Ok(signed
        .lines()
        .map(|line| line.strip_prefix("- ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The files a Release lists under `SHA256`. A line that is not `<64 hex> <size> <path>` is
/// left out.
pub fn listed_files(release: &str) -> Vec<ListedFile> {
    let mut files = Vec::new();
    let mut in_sha256 = false;
    for line in release.lines() {
        if !line.starts_with([' ', '\t']) {
            in_sha256 = line
                .split_once(':')
                .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("SHA256"));
            continue;
        }
        if !in_sha256 {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let [sha256, size, path] = words[..] else {
            continue;
        };
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(size) = size.parse::<u64>() else {
            continue;
        };
        files.push(ListedFile {
            path: path.to_owned(),
            size,
            sha256: sha256.to_ascii_lowercase(),
        });
    }
    files
}

/// The suite's Release as listed files: `InRelease`, else (after a 404) `Release`, signed as
/// `trust` requires.
pub fn read_release(
    repository: &Repository,
    trust: &Trust,
    get: &mut impl FnMut(&str) -> Result<(u16, Vec<u8>), String>,
) -> Result<Vec<ListedFile>, String> {
    let dir = repository.suite_dir();
    for file in ["InRelease", "Release"] {
        let url = format!("{dir}{file}");
        let Some(body) = fetch_release(&url, get)? else {
            continue;
        };
        let text = if file == "InRelease" {
            trust.signed_text(&url, &body)?
        } else {
            trust.detached_text(&url, &body, get)?
        };
        return Ok(listed_files(&text));
    }
    Err(format!(
        "no InRelease or Release for {} at {dir}",
        repository.line()
    ))
}

/// A Release-sized file at `url` (an InRelease, Release or Release.gpg), or `None` after a 404.
fn fetch_release(
    url: &str,
    get: &mut impl FnMut(&str) -> Result<(u16, Vec<u8>), String>,
) -> Result<Option<Vec<u8>>, String> {
    let (status, body) = get(url).map_err(|e| format!("fetching {url}: {e}"))?;
    match status {
        200..=299 => {}
        404 => return Ok(None),
        status => return Err(format!("fetching {url}: HTTP {status}")),
    }
    if body.len() as u64 > MAX_RELEASE_BYTES {
        return Err(format!(
            "{url}: larger than {MAX_RELEASE_BYTES} bytes, not a Release"
        ));
    }
    Ok(Some(body))
}

impl Trust {
    /// The text of the InRelease at `url`: what its signature covers.
    fn signed_text(&self, url: &str, body: &[u8]) -> Result<String, String> {
        match self {
            Trust::Unchecked => release_text(body).map_err(|e| format!("{url}: {e}")),
            #[cfg(feature = "openpgp")]
            Trust::Keys(keyring) => keyring
                .verify_cleartext(body)
                .map_err(|refusal| refused(url, &refusal)),
        }
    }

    /// The text of the Release at `url`, once its detached signature (`Release.gpg`, fetched
    /// with `get`) is checked.
    // Without the feature no arm fetches anything.
    #[cfg_attr(not(feature = "openpgp"), allow(unused_variables))]
    fn detached_text(
        &self,
        url: &str,
        body: &[u8],
        get: &mut impl FnMut(&str) -> Result<(u16, Vec<u8>), String>,
    ) -> Result<String, String> {
        match self {
            Trust::Unchecked => release_text(body).map_err(|e| format!("{url}: {e}")),
            #[cfg(feature = "openpgp")]
            Trust::Keys(keyring) => {
                let signature_url = format!("{url}.gpg");
                let signature = fetch_release(&signature_url, get)?.ok_or_else(|| {
                    format!("{url}: not signed (no InRelease, and {signature_url} is not found)")
                })?;
                keyring
                    .verify_detached(body, &signature)
                    .map_err(|refusal| refused(&signature_url, &refusal))?;
                Ok(String::from_utf8_lossy(body).into_owned())
            }
        }
    }
}

/// A refused signature as one line naming the URL, in apt's terms.
#[cfg(feature = "openpgp")]
fn refused(url: &str, refusal: &crate::openpgp::Refusal) -> String {
    use crate::openpgp::Refusal;
    let untrusted = "not signed by a key the image trusts for this repository";
    match refusal {
        Refusal::UnknownKeys(ids) if ids.is_empty() => {
            format!("{url}: {untrusted} (its signatures name no key)")
        }
        Refusal::UnknownKeys(ids) => format!("{url}: {untrusted} (key ids {})", ids.join(", ")),
        refusal => format!("{url}: {refusal}"),
    }
}

/// The versions of the packages `wanted` says are of interest in `repository`, read as apt
/// reads them: the Release first, then the first index file it lists (in the order gzip, xz,
/// plain; the next only after a 404), checked against the Release's size and SHA256. Any other
/// failure is an error naming the URL. The Release is not checked ([`Trust::Unchecked`]): the
/// host's reads for plugins of older contracts; see [`read_trusting`].
pub fn read(
    repository: &Repository,
    wanted: &dyn Fn(&str) -> bool,
    get: impl FnMut(&str) -> Result<(u16, Vec<u8>), String>,
) -> Result<Packages, String> {
    read_trusting(repository, &Trust::Unchecked, wanted, get)
}

/// [`read`], the Release signed as `trust` requires.
pub fn read_trusting(
    repository: &Repository,
    trust: &Trust,
    wanted: &dyn Fn(&str) -> bool,
    mut get: impl FnMut(&str) -> Result<(u16, Vec<u8>), String>,
) -> Result<Packages, String> {
    let listed = read_release(repository, trust, &mut get)?;
    let dir = repository.suite_dir();
    let candidates: Vec<&ListedFile> = INDEX_FILES
        .iter()
        .filter_map(|file| {
            let path = repository.index_path(file);
            listed.iter().find(|l| l.path == path)
        })
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "the Release of {} lists no Packages index for {}",
            repository.line(),
            repository.index_path("")
        ));
    }
    for file in candidates {
        let url = format!("{dir}{}", file.path);
        if file.size > MAX_INDEX_BYTES {
            return Err(format!(
                "{url}: the Release lists {} bytes, more than the {MAX_INDEX_BYTES} read",
                file.size
            ));
        }
        let (status, body) = get(&url).map_err(|e| format!("fetching {url}: {e}"))?;
        match status {
            200..=299 => {}
            404 => continue,
            status => return Err(format!("fetching {url}: HTTP {status}")),
        }
        check_listed(&body, file).map_err(|e| format!("{url}: {e}"))?;
        let (packages, _) = read_index(&body, &repository.uri, wanted)
            .map_err(|e| format!("reading {url}: {}", one_line(&e.to_string())))?;
        return Ok(packages);
    }
    Err(format!(
        "no Packages index for {} at {dir}{} (the Release lists some, the server has none)",
        repository.line(),
        repository.index_path("")
    ))
}

/// The versions `wanted` in `repository`, its Release signed as `trust` requires, over the
/// host's [`crate::http`] (see [`read_trusting`]).
pub fn read_over_http(
    repository: &Repository,
    trust: &Trust,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Packages, String> {
    read_trusting(repository, trust, wanted, |url| {
        let response = crate::http::get(url, &[], MAX_INDEX_BYTES).map_err(|e| e.to_string())?;
        Ok((response.status, response.body))
    })
}

/// Whether `body` is the file the Release lists: its size, then its SHA256.
fn check_listed(body: &[u8], file: &ListedFile) -> Result<(), String> {
    if body.len() as u64 != file.size {
        return Err(format!(
            "{} bytes, and the Release lists {}",
            body.len(),
            file.size
        ));
    }
    let sha256 = hex::encode(Sha256::digest(body));
    if sha256 != file.sha256 {
        return Err(format!(
            "sha256 digest mismatch (the Release lists {}, the file has {sha256})",
            file.sha256
        ));
    }
    Ok(())
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decompresses and parses an index of the repository at `uri` (the encoding taken from the
/// bytes). Returns the packages `wanted` and the size of the decompressed text.
pub fn read_index(
    body: &[u8],
    uri: &str,
    wanted: &dyn Fn(&str) -> bool,
) -> io::Result<(Packages, u64)> {
    read_index_within(body, uri, wanted, MAX_TEXT_BYTES)
}

/// [`read_index`], the text at most `limit` bytes.
fn read_index_within(
    body: &[u8],
    uri: &str,
    wanted: &dyn Fn(&str) -> bool,
    limit: u64,
) -> io::Result<(Packages, u64)> {
    let text: Box<dyn Read + '_> = if body.starts_with(GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(body))
    } else if body.starts_with(XZ_MAGIC) {
        Box::new(crate::archive::xz_reader(body))
    } else {
        Box::new(body)
    };
    // One byte over the limit is enough to tell that the text was cut short.
    let limited = BufReader::with_capacity(64 * 1024, text.take(limit + 1));
    let (packages, text_bytes) = parse_packages(limited, uri, wanted)?;
    if text_bytes > limit {
        return Err(io::Error::other(format!(
            "the index text exceeds {limit} bytes"
        )));
    }
    Ok((packages, text_bytes))
}

/// The longest line and the longest stanza read: the longest real ones (a `Provides` of
/// hundreds of names) are tens of KB.
const MAX_LINE_BYTES: u64 = 1024 * 1024;
const MAX_STANZA_BYTES: usize = 4 * 1024 * 1024;

/// Collects the stanzas of the packages `wanted` from deb822 text, a line at a time, so that
/// only those stanzas (not the text) are held. Returns them and the number of bytes read.
pub fn parse_packages(
    mut input: impl BufRead,
    uri: &str,
    wanted: &dyn Fn(&str) -> bool,
) -> io::Result<(Packages, u64)> {
    let mut packages = Packages::new();
    let mut line = Vec::with_capacity(256);
    let mut stanza = Stanza::default();
    let mut text_bytes = 0;
    loop {
        line.clear();
        let read = (&mut input)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)?;
        if read as u64 > MAX_LINE_BYTES {
            return Err(io::Error::other(format!(
                "a line longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        text_bytes += read as u64;
        // apt also takes a whitespace-only line as the end of a stanza.
        if line.trim_ascii().is_empty() {
            if stanza.keep {
                add_stanza(&mut packages, std::mem::take(&mut stanza.fields), uri);
            }
            stanza = Stanza::default();
            if read == 0 {
                return Ok((packages, text_bytes));
            }
            continue;
        }
        stanza.add_line(&line, wanted)?;
    }
}

/// The stanza being read: its fields, and whether its Package is wanted (until it is known, it
/// is kept).
struct Stanza {
    fields: Vec<(String, String)>,
    keep: bool,
    bytes: usize,
}

impl Default for Stanza {
    fn default() -> Self {
        Stanza {
            fields: Vec::new(),
            keep: true,
            bytes: 0,
        }
    }
}

impl Stanza {
    fn add_line(&mut self, line: &[u8], wanted: &dyn Fn(&str) -> bool) -> io::Result<()> {
        if !self.keep {
            return Ok(());
        }
        self.bytes += line.len();
        if self.bytes > MAX_STANZA_BYTES {
            return Err(io::Error::other(format!(
                "a stanza longer than {MAX_STANZA_BYTES} bytes"
            )));
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        // A continuation line belongs to the field above it (e.g. a multi-line Description),
        // even when its text looks like "Package: something".
        if text.starts_with([' ', '\t']) {
            if let Some((_, value)) = self.fields.last_mut() {
                value.push('\n');
                value.push_str(text);
            }
            return Ok(());
        }
        let Some((name, value)) = text.split_once(':') else {
            return Ok(());
        };
        if name.eq_ignore_ascii_case("Package") && !wanted(value.trim()) {
            (self.keep, self.fields) = (false, Vec::new());
            return Ok(());
        }
        self.fields.push((name.to_owned(), value.trim().to_owned()));
        Ok(())
    }
}

/// Adds a stanza with a Package and a Version, once per version: an index lists a version more
/// than once when it is built for several multiarch variants.
fn add_stanza(packages: &mut Packages, fields: Vec<(String, String)>, uri: &str) {
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let (Some(package), Some(version)) = (value("Package"), value("Version")) else {
        return;
    };
    let versions = packages.entry(package.to_owned()).or_default();
    if versions.iter().any(|o| o.version == version) {
        return;
    }
    let deb = match (value("Filename"), value("SHA256")) {
        (Some(filename), Some(sha256))
            if is_pool_path(filename)
                && sha256.len() == 64
                && sha256.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Some(DebFile {
                url: format!("{uri}/{filename}"),
                sha256: sha256.to_ascii_lowercase(),
            })
        }
        _ => None,
    };
    versions.push(Offered {
        version: version.to_owned(),
        deb,
        fields,
    });
}

/// A `Filename` that stays inside the repository: relative, no `.`/`..` segment, nothing a URL
/// would read as a query, fragment or escape.
fn is_pool_path(filename: &str) -> bool {
    !filename.starts_with('/')
        && filename
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
        && filename
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~+-/:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::io::Write;

    /// A small index in the shape of the real ones: a multi-line Description whose continuation
    /// looks like a field, an `Architecture: all` package, and a package listed twice.
    const FIXTURE: &str = "\
Package: libfoo1
Source: foo
Version: 1.2-3
Architecture: amd64
Description: foo library
 Package: not-a-package

Package: foo-doc
Version: 1.2-3+deb12u1
Architecture: all

Package: libfoo1
Version: 1.2-3+deb12u1
Architecture: amd64
";

    /// `FIXTURE` compressed with `xz -6 --check=crc64`, as Debian's archive tools do; the crate
    /// used here only decodes, so the bytes are stored.
    const FIXTURE_XZ: &[u8] = &[
        0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04, 0xe6, 0xd6, 0xb4, 0x46, 0x02, 0x00, 0x21,
        0x01, 0x16, 0x00, 0x00, 0x00, 0x74, 0x2f, 0xe5, 0xa3, 0xe0, 0x00, 0xe8, 0x00, 0x7d, 0x5d,
        0x00, 0x28, 0x18, 0x48, 0x66, 0xdb, 0xda, 0x30, 0x85, 0xfe, 0x16, 0xe9, 0x14, 0x89, 0x3a,
        0xb6, 0xda, 0x7a, 0xd2, 0x40, 0x53, 0x15, 0x4a, 0xda, 0xdd, 0x1e, 0xb9, 0x6c, 0x14, 0x9e,
        0x16, 0xd7, 0x14, 0xcc, 0x25, 0x3c, 0x5b, 0x27, 0x76, 0xbf, 0xcb, 0x98, 0xc3, 0xb8, 0x89,
        0x88, 0xe0, 0xcb, 0xee, 0x69, 0xde, 0x82, 0xe6, 0x45, 0xf9, 0x01, 0x95, 0x4f, 0x3a, 0x6f,
        0xbb, 0x48, 0x95, 0xaa, 0xa3, 0x03, 0x19, 0x91, 0x74, 0xb5, 0x1f, 0xdf, 0x91, 0xf2, 0x09,
        0xd4, 0x51, 0xb1, 0x50, 0x49, 0xe8, 0x37, 0xc9, 0x10, 0xff, 0xd4, 0xe0, 0xdd, 0x20, 0x73,
        0xf3, 0xcd, 0xe7, 0x03, 0xa4, 0x4d, 0xe7, 0x6b, 0x49, 0x75, 0x13, 0xab, 0x34, 0xeb, 0xe5,
        0x2b, 0xc2, 0x22, 0xff, 0x21, 0xd8, 0x80, 0x2a, 0xd1, 0x01, 0x05, 0xc7, 0x51, 0x4b, 0xc2,
        0xec, 0x42, 0xf4, 0x37, 0x6e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x66, 0xd5, 0x23, 0xad,
        0xdf, 0xe6, 0x62, 0x00, 0x01, 0x99, 0x01, 0xe9, 0x01, 0x00, 0x00, 0x63, 0xde, 0xe9, 0x6e,
        0xb1, 0xc4, 0x67, 0xfb, 0x02, 0x00, 0x00, 0x00, 0x00, 0x04, 0x59, 0x5a,
    ];

    const URI: &str = "http://deb.example/debian";
    const DIR: &str = "http://deb.example/debian/dists/bookworm/";

    fn everything(_: &str) -> bool {
        true
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn parse(text: &str) -> HashMap<String, Vec<String>> {
        versions_only(parse_packages(text.as_bytes(), URI, &everything).unwrap().0)
    }

    fn versions_only(packages: Packages) -> HashMap<String, Vec<String>> {
        packages
            .into_iter()
            .map(|(name, offered)| (name, offered.into_iter().map(|o| o.version).collect()))
            .collect()
    }

    fn bookworm() -> Repository {
        Repository::parse(&format!("deb {URI} bookworm main amd64")).unwrap()
    }

    /// A Release listing `files` (path below the suite, bytes) by their real size and SHA256.
    fn release(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut text =
            "Origin: Debian\nSuite: stable\nMD5Sum:\n 0123 1 main/x\nSHA256:\n".to_string();
        for (path, bytes) in files {
            let sha256 = hex::encode(Sha256::digest(bytes));
            text.push_str(&format!(" {sha256} {:>8} {path}\n", bytes.len()));
        }
        text.into_bytes()
    }

    /// A server of `files` (URL -> status and body), recording the URLs asked for.
    struct Server {
        files: Vec<(String, u16, Vec<u8>)>,
        asked: RefCell<Vec<String>>,
    }

    impl Server {
        fn new(files: Vec<(String, Vec<u8>)>) -> Self {
            Server {
                files: files.into_iter().map(|(u, b)| (u, 200, b)).collect(),
                asked: RefCell::default(),
            }
        }

        fn get(&self, url: &str) -> Result<(u16, Vec<u8>), String> {
            self.asked.borrow_mut().push(url.to_string());
            Ok(self
                .files
                .iter()
                .find(|(u, _, _)| u == url)
                .map_or((404, Vec::new()), |(_, status, body)| {
                    (*status, body.clone())
                }))
        }

        fn read(&self, wanted: &dyn Fn(&str) -> bool) -> Result<Packages, String> {
            read(&bookworm(), wanted, |url| self.get(url))
        }

        fn asked(&self) -> Vec<String> {
            self.asked
                .borrow()
                .iter()
                .map(|u| u.trim_start_matches(DIR).to_string())
                .collect()
        }
    }

    /// A suite with `Release` and the index files `files` (name in binary-amd64, bytes), all
    /// listed; `served` says which of them the server has.
    fn suite(files: &[(&str, &[u8])], served: &[&str]) -> Server {
        let listed: Vec<(String, &[u8])> = files
            .iter()
            .map(|(name, bytes)| (format!("main/binary-amd64/{name}"), *bytes))
            .collect();
        let listed_refs: Vec<(&str, &[u8])> =
            listed.iter().map(|(p, b)| (p.as_str(), *b)).collect();
        let mut served_files = vec![(format!("{DIR}Release"), release(&listed_refs))];
        for (path, bytes) in &listed {
            if served.iter().any(|s| path.ends_with(&format!("/{s}"))) {
                served_files.push((format!("{DIR}{path}"), bytes.to_vec()));
            }
        }
        Server::new(served_files)
    }

    #[test]
    fn versions_carry_the_stanza_and_where_the_deb_is() {
        let sha = "ab".repeat(32);
        let text = format!(
            "Package: libfoo1\nVersion: 1.2-3\nArchitecture: amd64\n\
             Filename: pool/main/f/foo/libfoo1_1.2-3_amd64.deb\nSHA256: {}\n\
             Description: foo library\n more text\n",
            sha.to_uppercase()
        );
        let server = suite(&[("Packages.gz", &gzip(text.as_bytes()))], &["Packages.gz"]);
        let packages = server.read(&everything).unwrap();
        let offered = &packages["libfoo1"][0];
        assert_eq!(
            offered.deb,
            Some(DebFile {
                url: format!("{URI}/pool/main/f/foo/libfoo1_1.2-3_amd64.deb"),
                sha256: sha.clone(),
            })
        );
        assert_eq!(
            offered.field("description"),
            Some("foo library\n more text")
        );
        assert_eq!(
            offered.fields[..3],
            [
                ("Package".into(), "libfoo1".into()),
                ("Version".into(), "1.2-3".into()),
                ("Architecture".into(), "amd64".into()),
            ]
        );
        assert_eq!(
            server.asked(),
            ["InRelease", "Release", "main/binary-amd64/Packages.gz"]
        );
    }

    #[test]
    fn dedupes_repeated_versions() {
        let packages = parse(
            "Package: a\nVersion: 1\n\nPackage: a\nVersion: 2\n\nPackage: a\nVersion: 1\n\n\
             Package: b\nVersion: 1\n",
        );
        assert_eq!(packages["a"], ["1", "2"]);
        assert_eq!(packages["b"], ["1"]);
        assert_eq!(packages.len(), 2);
    }

    #[test]
    fn ignores_continuation_lines() {
        let packages = parse(
            "Package: real\nDescription: short\n Package: fake\n\tVersion: 0\n .\n\
             Version: 1.0\nConffiles:\n /etc/x 0123\n",
        );
        assert_eq!(packages.len(), 1, "{packages:?}");
        assert_eq!(packages["real"], ["1.0"]);
    }

    #[test]
    fn keeps_architecture_all_packages_and_only_what_is_wanted() {
        let packages = parse(FIXTURE);
        assert_eq!(packages["foo-doc"], ["1.2-3+deb12u1"]);
        assert_eq!(packages["libfoo1"], ["1.2-3", "1.2-3+deb12u1"]);
        assert_eq!(packages.len(), 2);
        let (only, bytes) =
            parse_packages(FIXTURE.as_bytes(), URI, &|name| name == "foo-doc").unwrap();
        assert_eq!(
            versions_only(only),
            parse("Package: foo-doc\nVersion: 1.2-3+deb12u1\n")
        );
        assert_eq!(bytes, FIXTURE.len() as u64);
    }

    #[test]
    fn tolerates_odd_stanzas() {
        let (packages, bytes) = parse_packages(
            &b"package: lower\r\nVERSION:  2:1.0-1 \r\n \t \r\n\
               Package: no-version\n\nVersion: 3\n\nnot a field\nPackage: last\nVersion: 4"[..],
            URI,
            &everything,
        )
        .unwrap();
        let packages = versions_only(packages);
        assert_eq!(packages["lower"], ["2:1.0-1"]);
        assert_eq!(packages["last"], ["4"]);
        assert_eq!(packages.len(), 2, "{packages:?}");
        assert_eq!(bytes, 110);
    }

    #[test]
    fn detects_the_compression_from_the_content() {
        let plain = read_index(FIXTURE.as_bytes(), URI, &everything).unwrap();
        assert_eq!(versions_only(plain.0.clone()), parse(FIXTURE));
        assert_eq!(plain.1, FIXTURE.len() as u64);
        assert_eq!(
            read_index(&gzip(FIXTURE.as_bytes()), URI, &everything).unwrap(),
            plain
        );
        assert_eq!(read_index(FIXTURE_XZ, URI, &everything).unwrap(), plain);
        assert_eq!(
            read_index(b"", URI, &everything).unwrap(),
            (Packages::new(), 0)
        );
        let mut truncated = gzip(FIXTURE.as_bytes());
        truncated.truncate(truncated.len() / 2);
        assert!(read_index(&truncated, URI, &everything).is_err());
        assert!(read_index(&FIXTURE_XZ[..100], URI, &everything).is_err());
    }

    #[test]
    fn validates_repository_lines() {
        let repository = Repository::parse(
            "deb https://deb.debian.org/debian-security/ bookworm-security main amd64",
        )
        .unwrap();
        assert_eq!(
            repository.suite_dir(),
            "https://deb.debian.org/debian-security/dists/bookworm-security/"
        );
        assert_eq!(
            repository.line(),
            "deb https://deb.debian.org/debian-security bookworm-security main amd64"
        );
        let old_security = Repository::parse(
            "deb http://security.debian.org/debian-security buster/updates non-free-firmware \
             hurd-i386",
        )
        .unwrap();
        assert_eq!(old_security.suite, "buster/updates");

        let cases: [(&str, &[&str]); 6] = [
            (
                "separated by single spaces",
                &[
                    "deb http://x/debian bookworm main",
                    "deb http://x/debian bookworm main amd64 i386",
                    "deb  http://x/debian bookworm main amd64",
                    "deb http://x/debian bookworm main amd64 ",
                    "deb-src http://x/debian bookworm main amd64",
                ],
            ),
            (
                "options are not supported",
                &["deb [arch=amd64] http://x/debian bookworm main"],
            ),
            (
                "unsupported repository URI",
                &[
                    "deb file:/srv/repo bookworm main amd64",
                    "deb cdrom:[Debian]/ bookworm main amd64",
                    "deb mirror+http://x/list bookworm main amd64",
                    "deb ftp://x/debian bookworm main amd64",
                    "deb http:/x/debian bookworm main amd64",
                    "deb http://x/debian?a=b bookworm main amd64",
                    "deb http:///debian bookworm main amd64",
                    "deb http://u@/debian bookworm main amd64",
                ],
            ),
            (
                "flat repository",
                &[
                    "deb http://x/debian ./ main amd64",
                    "deb http://x/debian bookworm/ main amd64",
                ],
            ),
            (
                "invalid suite",
                &[
                    "deb http://x/debian ../../etc main amd64",
                    "deb http://x/debian /bookworm main amd64",
                    "deb http://x/debian book?worm main amd64",
                ],
            ),
            (
                "invalid component",
                &[
                    "deb http://x/debian bookworm Main amd64",
                    "deb http://x/debian bookworm main/x amd64",
                ],
            ),
        ];
        for (expected, lines) in cases {
            for line in lines {
                let err = Repository::parse(line).unwrap_err();
                assert!(err.contains(expected), "{line}: {err}");
                assert!(err.contains(&format!("{line:?}")), "{line}: {err}");
            }
        }
        for arch in ["binary-amd64/", "-amd64", "AMD64"] {
            let line = format!("deb http://x/debian bookworm main {arch}");
            let err = Repository::parse(&line).unwrap_err();
            assert!(err.contains("invalid architecture"), "{line}: {err}");
        }
    }

    #[test]
    fn a_mirror_replaces_the_origin_and_keeps_the_path() {
        let mirror = "http://127.0.0.1:3142/";
        assert_eq!(
            with_mirror("http://deb.debian.org/debian-security", mirror),
            "http://127.0.0.1:3142/debian-security"
        );
        assert_eq!(
            with_mirror(
                "https://user@archive.ubuntu.com:8443/ubuntu",
                "https://m.corp/apt"
            ),
            "https://m.corp/apt/ubuntu"
        );
        assert_eq!(
            with_mirror("http://deb.debian.org", mirror),
            "http://127.0.0.1:3142"
        );
        assert_eq!(
            bookworm().at_mirror(mirror).line(),
            "deb http://127.0.0.1:3142/debian bookworm main amd64"
        );
        assert_eq!(
            mirror_url("https://u:p@m.corp/apt/").unwrap(),
            "https://u:p@m.corp/apt"
        );
        for bad in [
            "ftp://m",
            "http://",
            "http://m/a#b",
            "http://m/a b",
            "http://m/$x",
            "m.corp",
        ] {
            assert!(mirror_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_the_signed_text_of_an_inrelease() {
        let listed = release(&[("main/binary-amd64/Packages", FIXTURE.as_bytes())]);
        let mut signed = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n".to_vec();
        signed.extend(b"- -dash-escaped: yes\n");
        signed.extend(&listed);
        signed.extend(
            b"-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCgAdFiEE\n-----END PGP SIGNATURE-----\n",
        );
        let text = release_text(&signed).unwrap();
        assert!(
            text.starts_with("-dash-escaped: yes\nOrigin: Debian\n"),
            "{text}"
        );
        assert_eq!(
            listed_files(&text),
            listed_files(&String::from_utf8(listed).unwrap())
        );

        let server = Server::new(vec![
            (format!("{DIR}InRelease"), signed),
            (
                format!("{DIR}main/binary-amd64/Packages"),
                FIXTURE.as_bytes().to_vec(),
            ),
        ]);
        assert_eq!(
            versions_only(server.read(&everything).unwrap()),
            parse(FIXTURE)
        );
        // The InRelease is enough; the gzip and xz files are not listed, so not asked for.
        assert_eq!(server.asked(), ["InRelease", "main/binary-amd64/Packages"]);

        for broken in [
            &b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\nOrigin: x\n"[..],
            &b"-----BEGIN PGP SIGNED MESSAGE-----\n\nSHA256:\n"[..],
        ] {
            assert!(release_text(broken).is_err());
        }
    }

    #[test]
    fn lists_only_well_formed_sha256_lines() {
        let sha = "0f".repeat(32);
        let text = format!(
            "MD5Sum:\n {} 10 main/binary-amd64/Packages\nSHA256:\n {sha} 10 a/Packages\n \
             {sha} 99999999999999999999999 b/Packages\n nothex 10 c/Packages\n {sha} 10\n\
             Acquire-By-Hash: yes\n {sha} 10 d/Packages\n",
            "0f".repeat(16)
        );
        let listed = listed_files(&text);
        assert_eq!(
            listed,
            [ListedFile {
                path: "a/Packages".into(),
                size: 10,
                sha256: sha
            }]
        );
    }

    #[test]
    fn prefers_gzip_then_xz_then_plain_moving_on_only_after_a_404() {
        let gz = gzip(FIXTURE.as_bytes());
        let files: [(&str, &[u8]); 3] = [
            ("Packages", FIXTURE.as_bytes()),
            ("Packages.xz", FIXTURE_XZ),
            ("Packages.gz", &gz),
        ];
        for (served, expected) in [
            (
                &["Packages.gz", "Packages.xz", "Packages"][..],
                &["Packages.gz"][..],
            ),
            (
                &["Packages.xz", "Packages"],
                &["Packages.gz", "Packages.xz"],
            ),
            (&["Packages"], &["Packages.gz", "Packages.xz", "Packages"]),
        ] {
            let server = suite(&files, served);
            assert_eq!(
                versions_only(server.read(&everything).unwrap()),
                parse(FIXTURE)
            );
            let asked: Vec<String> = server.asked()[2..]
                .iter()
                .map(|u| u.trim_start_matches("main/binary-amd64/").to_string())
                .collect();
            assert_eq!(asked, expected);
        }
        // Only what the Release lists is asked for.
        let server = suite(&[("Packages.xz", FIXTURE_XZ)], &["Packages.xz"]);
        server.read(&everything).unwrap();
        assert_eq!(server.asked()[2..], ["main/binary-amd64/Packages.xz"]);

        let server = suite(&files, &[]);
        let err = server.read(&everything).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "no Packages index for deb {URI} bookworm main amd64 at {DIR}main/binary-amd64/"
            )),
            "{err}"
        );
    }

    #[test]
    fn failures_name_the_url_on_one_line() {
        // No Release at all.
        let err = Server::new(Vec::new()).read(&everything).unwrap_err();
        assert_eq!(
            err,
            format!("no InRelease or Release for deb {URI} bookworm main amd64 at {DIR}")
        );
        // A server error is not worked around.
        let mut server = suite(&[("Packages", FIXTURE.as_bytes())], &["Packages"]);
        server.files[1].1 = 500;
        let err = server.read(&everything).unwrap_err();
        assert_eq!(
            err,
            format!("fetching {DIR}main/binary-amd64/Packages: HTTP 500")
        );
        // The transport's error, on one line.
        let err = read(&bookworm(), &everything, |_| {
            Err("connection refused".to_string())
        })
        .unwrap_err();
        assert_eq!(err, format!("fetching {DIR}InRelease: connection refused"));
        // A Release without this component's index.
        let other = release(&[("contrib/binary-amd64/Packages", b"")]);
        let server = Server::new(vec![(format!("{DIR}Release"), other)]);
        let err = server.read(&everything).unwrap_err();
        assert_eq!(
            err,
            format!(
                "the Release of deb {URI} bookworm main amd64 lists no Packages index for \
                 main/binary-amd64/"
            )
        );
    }

    #[test]
    fn an_index_that_is_not_the_one_the_release_lists_is_refused() {
        let mut server = suite(&[("Packages", FIXTURE.as_bytes())], &["Packages"]);
        // Same size, other bytes.
        server.files[1].2 = FIXTURE.replace("1.2-3", "9.9-9").into_bytes();
        let err = server.read(&everything).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "{DIR}main/binary-amd64/Packages: sha256 digest mismatch (the Release lists "
            )),
            "{err}"
        );
        server.files[1].2 = format!("{FIXTURE}\n").into_bytes();
        let err = server.read(&everything).unwrap_err();
        assert!(
            err.ends_with(&format!(
                "{} bytes, and the Release lists {}",
                FIXTURE.len() + 1,
                FIXTURE.len()
            )),
            "{err}"
        );
    }

    #[test]
    fn absurd_sizes_are_refused_before_anything_is_fetched() {
        let sha = "0f".repeat(32);
        let release = format!(
            "SHA256:\n {sha} {} main/binary-amd64/Packages.gz\n",
            u64::MAX
        );
        let server = Server::new(vec![(format!("{DIR}Release"), release.into_bytes())]);
        let err = server.read(&everything).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{DIR}main/binary-amd64/Packages.gz: the Release lists {} bytes, more than the \
                 {MAX_INDEX_BYTES} read",
                u64::MAX
            )
        );
        assert_eq!(server.asked(), ["InRelease", "Release"]);

        let huge = vec![b'x'; MAX_RELEASE_BYTES as usize + 1];
        let server = Server::new(vec![(format!("{DIR}InRelease"), huge)]);
        let err = server.read(&everything).unwrap_err();
        assert!(err.contains("not a Release"), "{err}");
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        // 8 MiB of text (lines of a package nobody wants) in a few KB of gzip.
        let line = format!("Package: bomb\nDescription: {}\n\n", "a".repeat(1000));
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..(8 << 20) / line.len() {
            encoder.write_all(line.as_bytes()).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        let err = read_index_within(&bomb, URI, &everything, 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "the index text exceeds 1048576 bytes");
        // One line without end, or one stanza without end, is refused as it grows.
        let endless_line = gzip(&vec![b'a'; 2 << 20]);
        let err = read_index(&endless_line, URI, &everything).unwrap_err();
        assert_eq!(err.to_string(), "a line longer than 1048576 bytes");
        let endless_stanza = gzip("Package: x\nTag: y\n".repeat(300_000).as_bytes());
        let err = read_index(&endless_stanza, URI, &everything).unwrap_err();
        assert_eq!(err.to_string(), "a stanza longer than 4194304 bytes");
    }

    #[test]
    fn a_deb_outside_the_repository_is_not_offered_for_download() {
        let sha = "ab".repeat(32);
        let stanza = |filename: &str, sha256: &str| {
            format!("Package: x\nVersion: 1\nFilename: {filename}\nSHA256: {sha256}\n\n")
        };
        let mut text = String::new();
        for filename in [
            "../../x",
            "pool/../../../etc/passwd",
            "/etc/passwd",
            "pool//x.deb",
            "pool/x.deb?y",
            "pool/%2e%2e/x.deb",
            "pool/x y.deb",
        ] {
            text.push_str(&stanza(filename, &sha));
        }
        text.push_str(&stanza("pool/x.deb", "not-a-digest"));
        let (packages, _) = read_index(text.as_bytes(), URI, &everything).unwrap();
        // The first stanza of the version counts; it names no safe file.
        assert_eq!(packages["x"].len(), 1);
        assert_eq!(packages["x"][0].deb, None);
        let each: Vec<Option<DebFile>> = text
            .split("\n\n")
            .filter(|s| !s.is_empty())
            .map(|s| {
                read_index(s.as_bytes(), URI, &everything).unwrap().0["x"][0]
                    .deb
                    .clone()
            })
            .collect();
        assert_eq!(each, vec![None; 8]);
        let (good, _) = read_index(
            stanza("pool/main/x/x_1_amd64.deb", &sha).as_bytes(),
            URI,
            &everything,
        )
        .unwrap();
        assert_eq!(
            good["x"][0].deb.as_ref().unwrap().url,
            format!("{URI}/pool/main/x/x_1_amd64.deb")
        );
    }

    #[cfg(feature = "openpgp")]
    mod signed {
        use super::*;
        use crate::openpgp::Keyring;
        use crate::openpgp::tests::{
            binary_keyring, clear_sign, detached_sign, key_id, secret_key,
        };

        fn trusting(seed: u64) -> Trust {
            let keyring = Keyring::parse(&binary_keyring(&secret_key(seed))).unwrap();
            Trust::Keys(Arc::new(keyring))
        }

        /// A suite whose Release lists FIXTURE as its Packages, served as the files
        /// `release_files` makes of the Release's text (an InRelease, or Release and
        /// Release.gpg).
        fn signed_suite(release_files: impl Fn(&str) -> Vec<(&'static str, Vec<u8>)>) -> Server {
            let listed = release(&[("main/binary-amd64/Packages", FIXTURE.as_bytes())]);
            let mut files: Vec<(String, Vec<u8>)> =
                release_files(std::str::from_utf8(&listed).unwrap())
                    .into_iter()
                    .map(|(name, body)| (format!("{DIR}{name}"), body))
                    .collect();
            files.push((
                format!("{DIR}main/binary-amd64/Packages"),
                FIXTURE.as_bytes().to_vec(),
            ));
            Server::new(files)
        }

        fn read_trusted(server: &Server, trust: &Trust) -> Result<Packages, String> {
            read_trusting(&bookworm(), trust, &everything, |url| server.get(url))
        }

        #[test]
        fn an_inrelease_signed_by_a_trusted_key_or_subkey_is_read() {
            let key = secret_key(1);
            for by_subkey in [false, true] {
                let server =
                    signed_suite(|text| vec![("InRelease", clear_sign(&key, text, by_subkey))]);
                let packages = read_trusted(&server, &trusting(1)).unwrap();
                assert_eq!(versions_only(packages), parse(FIXTURE));
                assert_eq!(server.asked(), ["InRelease", "main/binary-amd64/Packages"]);
            }
        }

        #[test]
        fn an_inrelease_by_another_key_altered_or_unsigned_is_refused() {
            let key = secret_key(1);
            let server = signed_suite(|text| vec![("InRelease", clear_sign(&key, text, false))]);
            let err = read_trusted(&server, &trusting(2)).unwrap_err();
            let id = key_id(&key);
            assert_eq!(
                err,
                format!(
                    "{DIR}InRelease: not signed by a key the image trusts for this repository \
                     (key ids {id})"
                )
            );
            // Nothing the Release lists is read.
            assert_eq!(server.asked(), ["InRelease"]);

            let altered = signed_suite(|text| {
                let signed = String::from_utf8(clear_sign(&key, text, false)).unwrap();
                // One character of the signed text (in the MD5Sum list).
                let forged = signed.replacen(" 0", " 1", 1);
                assert_ne!(forged, signed);
                vec![("InRelease", forged.into_bytes())]
            });
            let err = read_trusted(&altered, &trusting(1)).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "{DIR}InRelease: the signature by key {id} does not match the signed text \
                     (altered)"
                )
            );

            let unsigned = signed_suite(|text| vec![("InRelease", text.as_bytes().to_vec())]);
            let err = read_trusted(&unsigned, &trusting(1)).unwrap_err();
            assert!(
                err.starts_with(&format!("{DIR}InRelease: not an OpenPGP signature: ")),
                "{err}"
            );
        }

        #[test]
        fn a_release_needs_its_detached_signature() {
            let key = secret_key(1);
            let server = signed_suite(|text| {
                vec![
                    ("Release", text.as_bytes().to_vec()),
                    ("Release.gpg", detached_sign(&key, text.as_bytes())),
                ]
            });
            let packages = read_trusted(&server, &trusting(1)).unwrap();
            assert_eq!(versions_only(packages), parse(FIXTURE));
            assert_eq!(
                server.asked(),
                [
                    "InRelease",
                    "Release",
                    "Release.gpg",
                    "main/binary-amd64/Packages"
                ]
            );
            let err = read_trusted(&server, &trusting(2)).unwrap_err();
            assert!(
                err.starts_with(&format!(
                    "{DIR}Release.gpg: not signed by a key the image trusts for this repository"
                )),
                "{err}"
            );

            let unsigned = signed_suite(|text| vec![("Release", text.as_bytes().to_vec())]);
            let err = read_trusted(&unsigned, &trusting(1)).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "{DIR}Release: not signed (no InRelease, and {DIR}Release.gpg is not found)"
                )
            );
            // Unchecked, the same Release is read.
            read_trusted(&unsigned, &Trust::Unchecked).unwrap();
        }
    }
}
