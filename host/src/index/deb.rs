//! APT repositories: the binary `Packages` index of one suite, component and architecture.
//!
//! A plugin names the repository as a one-line `sources.list` entry without options,
//! `deb <uri> <suite> <component> <arch>`, and asks for a binary package by its exact name. The
//! host has no other way to learn which versions a repository offers: unlike PyPI there is no
//! per-package page, only the whole index, so it is downloaded once and kept for the run.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use ureq::Agent;
use ureq::http::{StatusCode, Uri};
use xz4rust::{XzDecoder, XzReader};

use super::{ArtifactSource, ExpectedDigest, PackageVersion, one_line};

/// Tried in this order, moving on only after a 404. gzip comes first because it decodes several
/// times faster than xz (bookworm main's 50 MB: ~1 s against ~2.6 s); xz is still needed because
/// debian-security and the -updates suites publish nothing else (their `Release` files list the
/// uncompressed `Packages`, but the mirrors answer 404 for it).
const INDEX_FILES: &[&str] = &["Packages.gz", "Packages.xz", "Packages"];

/// A whole download may take this long: bookworm's main index is 12 MB compressed, which the
/// agent's 30 s budget for small pages does not cover on a slow link.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Connecting, waiting for the headers and each read must still make progress within this,
/// so that a dead mirror fails in seconds rather than after the whole download budget.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Indexes are tens of MB (bookworm main: 12 MB gzip, 50 MB text); the limits only stop a
/// broken or hostile server from streaming without end.
const MAX_DOWNLOAD_BYTES: u64 = 512 * 1024 * 1024;
const MAX_TEXT_BYTES: u64 = 1024 * 1024 * 1024;

/// xz's largest preset (-9) uses a 64 MiB dictionary; the decoder would otherwise allocate
/// whatever size the stream header asks for, up to 3 GiB.
const MAX_XZ_DICTIONARY: usize = xz4rust::DICT_SIZE_PROFILE_9;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// One version of a binary package in an index, with its whole stanza: the fields a status
/// entry needs (distroless images have no dpkg to write one) and where the .deb is.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Offered {
    version: String,
    stanza: Box<str>,
}

/// Binary package name -> its versions in the order the index lists them.
type PackageVersions = HashMap<String, Vec<Offered>>;

/// One repository's index, loaded by the first caller; the error of a failed load is kept too,
/// so that a plugin asking about 200 packages does not trigger 200 downloads of a broken index.
type Slot = Arc<OnceLock<Result<PackageVersions, String>>>;

/// Whether `ecosystem` names an APT repository. Decided on the first word alone, so that a
/// malformed repository line gets an error about its syntax instead of "no package index".
pub(super) fn is_deb_ecosystem(ecosystem: &str) -> bool {
    ecosystem.split_ascii_whitespace().next() == Some("deb")
}

#[derive(Default)]
pub(super) struct Repositories {
    /// Keyed by the normalized repository line.
    loaded: Mutex<HashMap<String, Slot>>,
    mirror: Option<String>,
}

/// `uri` with its origin (`scheme://host[:port]`) replaced by `mirror`, keeping the path: the
/// layout of apt-cacher-ng and of artifact managers' Debian remotes.
pub fn with_mirror(uri: &str, mirror: &str) -> String {
    let path = uri
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map(|i| &rest[i..]).unwrap_or(""))
        .unwrap_or(uri);
    format!("{}{path}", mirror.trim_end_matches('/'))
}

impl Repositories {
    pub(super) fn new(mirror: Option<String>) -> Self {
        Self {
            loaded: Mutex::default(),
            mirror,
        }
    }

    /// Versions of the binary package `name` in the repository `ecosystem` names; a package the
    /// index does not list is an empty list.
    pub(super) fn versions(
        &self,
        agent: &Agent,
        ecosystem: &str,
        name: &str,
    ) -> Result<Vec<PackageVersion>, String> {
        let mut repository = Repository::parse(ecosystem)?;
        if let Some(mirror) = &self.mirror {
            repository.uri = with_mirror(&repository.uri, mirror);
        }
        let slot = Arc::clone(
            self.loaded
                .lock()
                // Slots are inserted whole, so a panic elsewhere cannot leave the map inconsistent.
                .unwrap_or_else(PoisonError::into_inner)
                .entry(repository.key())
                .or_default(),
        );
        // The map lock is released before loading so that different repositories load in
        // parallel, while callers of the same one wait for its single download.
        let packages = slot
            .get_or_init(|| load(agent, &repository))
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(packages
            .get(name)
            .into_iter()
            .flatten()
            .map(|offered| {
                let metadata = stanza_fields(&offered.stanza);
                let field = |name: &str| {
                    metadata
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                };
                let artifact = field("Filename").map(|filename| ArtifactSource {
                    url: format!("{}/{}", repository.uri, filename.trim_start_matches('/')),
                    digest: field("SHA256").map(ExpectedDigest::Sha256),
                });
                PackageVersion {
                    version: offered.version.clone(),
                    artifact,
                    metadata,
                    ..PackageVersion::default()
                }
            })
            .collect())
    }
}

/// The fields of a deb822 stanza in order; a multi-line value keeps its continuation lines
/// (without the first space), joined by newlines, as dpkg writes them back.
fn stanza_fields(stanza: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in stanza.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// A validated `deb <uri> <suite> <component> <arch>` line.
#[derive(Debug, PartialEq, Eq)]
struct Repository {
    /// Without trailing slashes, so that `.../debian` and `.../debian/` share one download.
    uri: String,
    suite: String,
    component: String,
    arch: String,
}

impl Repository {
    fn parse(ecosystem: &str) -> Result<Self, String> {
        let words: Vec<&str> = ecosystem.split(' ').collect();
        if words.get(1).is_some_and(|word| word.starts_with('[')) {
            return Err(format!(
                "repository options are not supported in {ecosystem:?}: expected \"deb <uri> \
                 <suite> <component> <arch>\""
            ));
        }
        let ["deb", uri, suite, component, arch] = words[..] else {
            return Err(format!(
                "invalid repository {ecosystem:?}: expected \"deb <uri> <suite> <component> \
                 <arch>\" separated by single spaces"
            ));
        };

        let parsed = uri.parse::<Uri>().ok();
        let is_http = parsed.as_ref().is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https"))
                && u.host().is_some_and(|h| !h.is_empty())
                && u.query().is_none()
        });
        // `Uri` also accepts scheme-less forms such as `/path`, hence the explicit prefix check.
        if !is_http || !(uri.starts_with("http://") || uri.starts_with("https://")) {
            return Err(format!(
                "unsupported repository URI {uri:?} in {ecosystem:?}: only plain http:// and \
                 https:// URIs (no query) can be fetched"
            ));
        }
        if suite.ends_with('/') {
            return Err(format!(
                "flat repository {ecosystem:?} is not supported: the suite {suite:?} ends with \
                 \"/\", but only repositories with a dists/ tree have per-architecture indexes"
            ));
        }
        // The suite becomes URL path segments, so keep it to what archive suites use.
        let suite_ok = !suite.starts_with('/')
            && suite
                .split('/')
                .all(|segment| !matches!(segment, "" | "." | ".."))
            && suite
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~+-/".contains(&b));
        if !suite_ok {
            return Err(format!("invalid suite {suite:?} in {ecosystem:?}"));
        }
        if !is_archive_word(component) {
            return Err(format!("invalid component {component:?} in {ecosystem:?}"));
        }
        if !is_archive_word(arch) {
            return Err(format!("invalid architecture {arch:?} in {ecosystem:?}"));
        }
        Ok(Self {
            uri: uri.trim_end_matches('/').to_owned(),
            suite: suite.to_owned(),
            component: component.to_owned(),
            arch: arch.to_owned(),
        })
    }

    fn key(&self) -> String {
        format!(
            "deb {} {} {} {}",
            self.uri, self.suite, self.component, self.arch
        )
    }

    /// The directory holding the `Packages` files, with a trailing slash.
    fn index_dir(&self) -> String {
        format!(
            "{}/dists/{}/{}/binary-{}/",
            self.uri, self.suite, self.component, self.arch
        )
    }
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

fn load(agent: &Agent, repository: &Repository) -> Result<PackageVersions, String> {
    let dir = repository.index_dir();
    for file in INDEX_FILES {
        let url = format!("{dir}{file}");
        let started = Instant::now();
        tracing::debug!(%url, "fetching Debian package index");
        let response = agent
            .get(&url)
            .config()
            .timeout_global(Some(DOWNLOAD_TIMEOUT))
            .timeout_connect(Some(STALL_TIMEOUT))
            .timeout_recv_response(Some(STALL_TIMEOUT))
            .timeout_per_read(Some(STALL_TIMEOUT))
            .build()
            .call()
            .map_err(|e| one_line(format!("fetching {url}: {e}")))?;

        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            tracing::debug!(%url, "no such index file");
            continue;
        }
        if !status.is_success() {
            return Err(format!("fetching {url}: HTTP {status}"));
        }
        let downloaded = Rc::new(Cell::new(0));
        let body = Counted {
            inner: response
                .into_body()
                .into_with_config()
                .limit(MAX_DOWNLOAD_BYTES)
                .reader(),
            count: Rc::clone(&downloaded),
        };
        let (packages, text_bytes) =
            read_index(body).map_err(|e| one_line(format!("reading {url}: {e}")))?;
        tracing::info!(
            %url,
            downloaded_bytes = downloaded.get(),
            text_bytes,
            packages = packages.len(),
            seconds = started.elapsed().as_secs_f64(),
            "loaded Debian package index"
        );
        return Ok(packages);
    }
    Err(format!(
        "no Packages index for {} at {dir} (tried {})",
        repository.key(),
        INDEX_FILES.join(", ")
    ))
}

/// Counts the bytes that came over the network, for the log.
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count.set(self.count.get() + read as u64);
        Ok(read)
    }
}

/// Decompresses and parses an index as it streams in. Returns the packages and the size of the
/// decompressed text.
///
/// The encoding is taken from the content rather than the file name: a server that labels
/// `Packages.gz` with `Content-Encoding: gzip` gets it decompressed by ureq already.
fn read_index(mut body: impl Read + 'static) -> io::Result<(PackageVersions, u64)> {
    let mut magic = [0; 6];
    let mut sniffed = 0;
    while sniffed < magic.len() {
        match body.read(&mut magic[sniffed..]) {
            Ok(0) => break,
            Ok(read) => sniffed += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = &magic[..sniffed];
    let stream = io::Cursor::new(magic).take(sniffed as u64).chain(body);
    let text: Box<dyn Read> = if head.starts_with(GZIP_MAGIC) {
        Box::new(MultiGzDecoder::new(stream))
    } else if head == XZ_MAGIC {
        let decoder =
            XzDecoder::in_heap_with_alloc_dict_size(xz4rust::DICT_SIZE_MIN, MAX_XZ_DICTIONARY);
        let buffer = NonZeroUsize::new(64 * 1024).expect("non-zero");
        Box::new(XzReader::new_with_buffer_size_and_decoder(
            stream, buffer, decoder,
        ))
    } else {
        Box::new(stream)
    };

    // One byte over the limit is enough to tell that the text was cut short.
    let limited = BufReader::with_capacity(64 * 1024, text.take(MAX_TEXT_BYTES + 1));
    let (packages, text_bytes) = parse_packages(limited)?;
    if text_bytes > MAX_TEXT_BYTES {
        return Err(io::Error::other(format!(
            "index text exceeds {} MiB",
            MAX_TEXT_BYTES / 1024 / 1024
        )));
    }
    Ok((packages, text_bytes))
}

/// Collects `Package` -> versions with their stanzas from deb822 text, a line at a time, so
/// that only the stanzas (not the decompressed text) are held. Returns the packages and the
/// number of bytes read.
fn parse_packages(mut input: impl BufRead) -> io::Result<(PackageVersions, u64)> {
    let mut packages = PackageVersions::new();
    let mut line = Vec::with_capacity(256);
    let mut stanza = String::new();
    let mut text_bytes = 0;
    let mut package = None;
    let mut version = None;
    loop {
        line.clear();
        let read = input.read_until(b'\n', &mut line)?;
        text_bytes += read as u64;
        // apt also takes a whitespace-only line as the end of a stanza.
        if line.trim_ascii().is_empty() {
            if let (Some(package), Some(version)) = (package.take(), version.take()) {
                let versions: &mut Vec<Offered> = packages.entry(package).or_default();
                // The same version recurs when an index lists a package more than once (e.g.
                // built for several multiarch variants); plugins want each version once.
                if !versions.iter().any(|o| o.version == version) {
                    versions.push(Offered {
                        version,
                        stanza: stanza.as_str().into(),
                    });
                }
            }
            stanza.clear();
            (package, version) = (None, None);
            if read == 0 {
                return Ok((packages, text_bytes));
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        stanza.push_str(text.trim_end_matches(['\r', '\n']));
        stanza.push('\n');
        // A continuation line belongs to the field above it (e.g. a multi-line Description),
        // even when its text looks like "Package: something".
        if matches!(line[0], b' ' | b'\t') {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (field, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        // deb822 field names are case-insensitive.
        if field.eq_ignore_ascii_case(b"Package") {
            package = Some(String::from_utf8_lossy(value).into_owned());
        } else if field.eq_ignore_ascii_case(b"Version") {
            version = Some(String::from_utf8_lossy(value).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
    use crate::index::test_server::{Reply, local_index, serve};
    use crate::index::{IndexSettings, PackageIndex};
    use copa_plugin_sdk::dpkg::DpkgVersion;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;
    use std::sync::Barrier;

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

    const INDEX_DIR: &str = "/debian/dists/bookworm/main/binary-amd64";

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn parse(text: &str) -> HashMap<String, Vec<String>> {
        versions_only(parse_packages(text.as_bytes()).unwrap().0)
    }

    fn versions_only(packages: PackageVersions) -> HashMap<String, Vec<String>> {
        packages
            .into_iter()
            .map(|(name, offered)| (name, offered.into_iter().map(|o| o.version).collect()))
            .collect()
    }

    fn reply(status: &'static str, body: impl Into<Vec<u8>>) -> Reply<Vec<u8>> {
        Reply {
            status,
            content_type: "application/octet-stream",
            body: body.into(),
        }
    }

    fn ok(body: impl Into<Vec<u8>>) -> Reply<Vec<u8>> {
        reply("200 OK", body)
    }

    fn version_strings(versions: &[PackageVersion]) -> Vec<&str> {
        assert!(
            versions
                .iter()
                .all(|v| !v.yanked && v.requires_python.is_none()),
            "{versions:?}"
        );
        versions.iter().map(|v| v.version.as_str()).collect()
    }

    /// An index for the test server at `origin`, and the repository line for bookworm main.
    fn bookworm(origin: &str) -> (PackageIndex, String) {
        (
            local_index(&format!("{origin}/simple/")),
            format!("deb {origin}/debian bookworm main amd64"),
        )
    }

    fn paths(seen: &crate::index::test_server::RequestLog) -> Vec<String> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    #[test]
    fn versions_carry_the_stanza_and_where_the_deb_is() {
        let text = "Package: libfoo1\nVersion: 1.2-3\nArchitecture: amd64\n\
                    Filename: pool/main/f/foo/libfoo1_1.2-3_amd64.deb\nSHA256: abcd\n\
                    Description: foo library\n more text\n";
        let (origin, _) = serve(
            vec![(
                "/debian/dists/bookworm/main/binary-amd64/Packages.gz",
                ok(gzip(text)),
            )],
            1,
        );
        let (index, line) = bookworm(&origin);
        let versions = index.versions(&line, "libfoo1").unwrap();
        assert_eq!(
            versions[0].artifact,
            Some(ArtifactSource {
                url: format!("{origin}/debian/pool/main/f/foo/libfoo1_1.2-3_amd64.deb"),
                digest: Some(ExpectedDigest::Sha256("abcd".into())),
            })
        );
        assert_eq!(
            versions[0].metadata,
            [
                ("Package".into(), "libfoo1".into()),
                ("Version".into(), "1.2-3".into()),
                ("Architecture".into(), "amd64".into()),
                (
                    "Filename".into(),
                    "pool/main/f/foo/libfoo1_1.2-3_amd64.deb".into()
                ),
                ("SHA256".into(), "abcd".into()),
                ("Description".into(), "foo library\n more text".into()),
            ]
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
    fn keeps_architecture_all_packages() {
        let packages = parse(FIXTURE);
        assert_eq!(packages["foo-doc"], ["1.2-3+deb12u1"]);
        assert_eq!(packages["libfoo1"], ["1.2-3", "1.2-3+deb12u1"]);
        assert_eq!(packages.len(), 2);
    }

    #[test]
    fn tolerates_odd_stanzas() {
        let (packages, bytes) = parse_packages(
            &b"package: lower\r\nVERSION:  2:1.0-1 \r\n \t \r\n\
               Package: no-version\n\nVersion: 3\n\nnot a field\nPackage: last\nVersion: 4"[..],
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
        let plain = read_index(io::Cursor::new(FIXTURE)).unwrap();
        assert_eq!(versions_only(plain.0.clone()), parse(FIXTURE));
        assert_eq!(plain.1, FIXTURE.len() as u64);
        assert_eq!(read_index(io::Cursor::new(gzip(FIXTURE))).unwrap(), plain);
        assert_eq!(read_index(io::Cursor::new(FIXTURE_XZ)).unwrap(), plain);
        assert_eq!(
            read_index(io::empty()).unwrap(),
            (PackageVersions::new(), 0)
        );

        let mut truncated = gzip(FIXTURE);
        truncated.truncate(truncated.len() / 2);
        assert!(read_index(io::Cursor::new(truncated)).is_err());
        assert!(read_index(io::Cursor::new(&FIXTURE_XZ[..100])).is_err());
    }

    #[test]
    fn validates_repository_lines() {
        let repository = Repository::parse(
            "deb https://deb.debian.org/debian-security/ bookworm-security main amd64",
        )
        .unwrap();
        assert_eq!(
            repository.index_dir(),
            "https://deb.debian.org/debian-security/dists/bookworm-security/main/binary-amd64/"
        );
        assert_eq!(
            repository.key(),
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
    fn loads_a_gzip_index() {
        let routes = vec![(
            "/debian/dists/bookworm/main/binary-amd64/Packages.gz",
            ok(gzip(FIXTURE)),
        )];
        let (origin, seen) = serve(routes, 1);
        let (index, repository) = bookworm(&origin);

        let libfoo = index.versions(&repository, "libfoo1").unwrap();
        assert_eq!(version_strings(&libfoo), ["1.2-3", "1.2-3+deb12u1"]);
        assert_eq!(
            version_strings(&index.versions(&repository, "foo-doc").unwrap()),
            ["1.2-3+deb12u1"]
        );
        // Names are exact: no normalization as for PyPI.
        assert_eq!(index.versions(&repository, "LibFoo1").unwrap(), []);
        assert_eq!(index.versions(&repository, "not-a-package").unwrap(), []);
        // A trailing slash on the URI is the same repository, so still no new download.
        let with_slash = repository.replacen("/debian ", "/debian/ ", 1);
        assert_eq!(index.versions(&with_slash, "libfoo1").unwrap(), libfoo);

        assert_eq!(paths(&seen), [format!("{INDEX_DIR}/Packages.gz")]);
    }

    #[test]
    fn loads_an_xz_index_when_there_is_no_gzip() {
        let routes = vec![(
            "/debian/dists/bookworm/main/binary-amd64/Packages.xz",
            ok(FIXTURE_XZ),
        )];
        let (origin, seen) = serve(routes, 2);
        let (index, repository) = bookworm(&origin);

        assert_eq!(
            version_strings(&index.versions(&repository, "libfoo1").unwrap()),
            ["1.2-3", "1.2-3+deb12u1"]
        );
        assert_eq!(
            paths(&seen),
            [
                format!("{INDEX_DIR}/Packages.gz"),
                format!("{INDEX_DIR}/Packages.xz")
            ]
        );
    }

    #[test]
    fn falls_back_to_the_uncompressed_index() {
        let routes = vec![(
            "/debian/dists/bookworm/main/binary-amd64/Packages",
            ok(FIXTURE),
        )];
        let (origin, seen) = serve(routes, 3);
        let (index, repository) = bookworm(&origin);

        assert_eq!(
            version_strings(&index.versions(&repository, "foo-doc").unwrap()),
            ["1.2-3+deb12u1"]
        );
        assert_eq!(index.versions(&repository, "bar").unwrap(), []);
        assert_eq!(
            paths(&seen),
            [
                format!("{INDEX_DIR}/Packages.gz"),
                format!("{INDEX_DIR}/Packages.xz"),
                format!("{INDEX_DIR}/Packages"),
            ]
        );
    }

    #[test]
    fn missing_index_is_an_error_naming_the_directory() {
        let (origin, seen) = serve(Vec::<(&str, Reply<Vec<u8>>)>::new(), 3);
        let (index, repository) = bookworm(&origin);

        let err = index.versions(&repository, "libfoo1").unwrap_err();
        assert!(
            err.starts_with(&format!(
                "no Packages index for {repository} at {origin}{INDEX_DIR}/ "
            )),
            "{err}"
        );
        // The failure is remembered: asking again, for any package, costs no request.
        assert_eq!(index.versions(&repository, "foo-doc").unwrap_err(), err);
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[test]
    fn server_error_names_the_url() {
        let routes = vec![
            (
                "/debian/dists/bookworm/main/binary-amd64/Packages.gz",
                reply("500 Internal Server Error", "boom"),
            ),
            (
                "/debian/dists/bookworm/main/binary-amd64/Packages",
                ok(FIXTURE),
            ),
        ];
        let (origin, seen) = serve(routes, 3);
        let (index, repository) = bookworm(&origin);

        let err = index.versions(&repository, "libfoo1").unwrap_err();
        assert!(
            err.contains(&format!("{origin}{INDEX_DIR}/Packages.gz")),
            "{err}"
        );
        assert!(err.contains("500"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        // Only a 404 means "try the next encoding"; a failing server is not worked around,
        // and not asked again.
        assert_eq!(index.versions(&repository, "libfoo1").unwrap_err(), err);
        assert_eq!(paths(&seen), [format!("{INDEX_DIR}/Packages.gz")]);
    }

    #[test]
    fn loads_each_repository_once_under_concurrency() {
        let routes = vec![
            (
                "/debian/dists/bookworm/main/binary-amd64/Packages.gz",
                ok(gzip(FIXTURE)),
            ),
            (
                "/debian/dists/bookworm/contrib/binary-amd64/Packages.gz",
                ok(gzip("Package: contrib-tool\nVersion: 7\n")),
            ),
        ];
        let (origin, seen) = serve(routes, 10);
        let (index, main) = bookworm(&origin);
        let contrib = main.replace(" main ", " contrib ");

        const THREADS: usize = 8;
        let barrier = Barrier::new(THREADS);
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let (index, barrier) = (&index, &barrier);
                let (main, contrib) = (&main, &contrib);
                scope.spawn(move || {
                    barrier.wait();
                    if thread % 2 == 0 {
                        let versions = index.versions(main, "libfoo1").unwrap();
                        assert_eq!(version_strings(&versions), ["1.2-3", "1.2-3+deb12u1"]);
                    } else {
                        let versions = index.versions(contrib, "contrib-tool").unwrap();
                        assert_eq!(version_strings(&versions), ["7"]);
                    }
                });
            }
        });

        let mut paths = paths(&seen);
        paths.sort();
        assert_eq!(
            paths,
            [
                "/debian/dists/bookworm/contrib/binary-amd64/Packages.gz",
                "/debian/dists/bookworm/main/binary-amd64/Packages.gz",
            ]
        );
    }

    #[test]
    fn unreachable_repository_names_the_url() {
        // Bind then drop to get a loopback port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (index, repository) = bookworm(&format!("http://127.0.0.1:{port}"));
        let err = index.versions(&repository, "libfoo1").unwrap_err();
        assert!(
            err.starts_with(&format!(
                "fetching http://127.0.0.1:{port}{INDEX_DIR}/Packages.gz: "
            )),
            "{err}"
        );
    }

    #[test]
    fn queries_the_real_debian_security_mirror() {
        if std::env::var("COPA_OFFLINE").as_deref() == Ok("1") {
            eprintln!("COPA_OFFLINE=1: skipping the real Debian mirror query");
            return;
        }
        let index = PackageIndex::new(IndexSettings::default()).unwrap();
        let versions = index
            .versions(
                "deb http://deb.debian.org/debian-security bookworm-security main amd64",
                "libssl3",
            )
            .unwrap();
        // bookworm's point release carries 3.0.11-1~deb12u2; security updates are newer.
        let baseline: DpkgVersion = "3.0.11-1~deb12u2".parse().unwrap();
        assert!(
            versions
                .iter()
                .any(|v| v.version.parse::<DpkgVersion>().unwrap() > baseline),
            "{versions:?}"
        );
    }
}
