//! Package artifacts: the file behind one version of a package (an npm tarball, a .nupkg, a
//! .deb, a wheel), checked against the digest its index publishes and unpacked in memory, so
//! that a plugin can read its members (after fetching it over [`crate::http`]) and the host can
//! place them for `fetch` and `download` steps: both read archives with this same code.
//!
//! The archive format is recognised from the bytes, not from the ecosystem: gzip'd tar (npm),
//! zip (.nupkg, wheels) and ar (.deb, whose `data.tar.{gz,xz,zst}` holds the files).

use std::io::{self, Read};

use sha2::{Digest, Sha256, Sha512};

/// Digests as indexes publish them, as lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedDigest {
    Sha256(String),
    Sha512(String),
    /// Old npm packages have only `shasum`.
    Sha1(String),
}

/// Packages are at most a few hundred MB; the limit stops a broken server streaming forever.
/// A member's size comes from its archive's header, which anyone can write: memory is reserved
/// for at most this much up front, and grows with what is really read.
pub const PREALLOCATE_AT_MOST: u64 = 1 << 20;

pub const MAX_ARTIFACT_BYTES: u64 = 1024 * 1024 * 1024;

/// The most an artifact unpacks to, all members together: a few MB of gzip can claim to
/// inflate to gigabytes (a decompression bomb), and packages do not.
pub const MAX_UNPACKED_BYTES: u64 = 1024 * 1024 * 1024;

/// What an archive may still unpack to.
struct Budget {
    left: u64,
    limit: u64,
}

impl Budget {
    fn of(limit: u64) -> Self {
        Budget { left: limit, limit }
    }

    /// A member's bytes (`claimed` is its header's word, trusted only up to a little), counted
    /// against what is left.
    fn read(&mut self, reader: impl Read, claimed: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(claimed.min(PREALLOCATE_AT_MOST) as usize);
        reader.take(self.left + 1).read_to_end(&mut bytes)?;
        let read = bytes.len() as u64;
        if read > self.left {
            return Err(invalid(format!(
                "the archive unpacks to more than {} bytes",
                self.limit
            )));
        }
        self.left -= read;
        Ok(bytes)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File(Vec<u8>),
    Directory,
    Symlink(String),
    /// A hard link to another entry (path as in the archive).
    HardLink(String),
}

/// One entry of an unpacked artifact. Paths are relative, without "./" or a leading "/".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveEntry {
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits the archive records (zip usually records none).
    pub mode: Option<u32>,
}

#[derive(Debug)]
pub struct Artifact {
    pub url: String,
    pub size: u64,
    /// Lower-case hex of the exact downloaded bytes.
    pub sha256: String,
    pub sha512: String,
    /// Sorted by path.
    pub entries: Vec<ArchiveEntry>,
}

impl Artifact {
    /// A `download` step's file: its SHA-256 must be `sha256`; an archive is unpacked, any other
    /// file is one member named by the URL's last path segment.
    pub fn from_download(url: &str, bytes: &[u8], sha256: &str) -> Result<Self, String> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{url}: {sha256:?} is not a SHA-256 digest (64 hex digits)"
            ));
        }
        let expected = ExpectedDigest::Sha256(sha256.to_ascii_lowercase());
        // The digest is checked before anything is unpacked (`from_bytes` does so too).
        if is_archive(bytes) {
            return Self::from_bytes(url, bytes, Some(&expected));
        }
        let checked = Self::from_bytes_unpacked(url, bytes, Some(&expected))?;
        let name = url
            .split(['?', '#'])
            .next()
            .and_then(|path| path.rsplit('/').next())
            .filter(|name| !name.is_empty() && *name != "." && *name != "..")
            .ok_or_else(|| format!("{url}: the URL names no file"))?;
        Ok(Artifact {
            entries: vec![ArchiveEntry {
                path: name.to_owned(),
                kind: EntryKind::File(bytes.to_vec()),
                mode: None,
            }],
            ..checked
        })
    }

    /// Checks the bytes against the index's digest and unpacks them.
    pub fn from_bytes(
        url: &str,
        bytes: &[u8],
        expected: Option<&ExpectedDigest>,
    ) -> Result<Self, String> {
        let checked = Self::from_bytes_unpacked(url, bytes, expected)?;
        let mut entries = unpack(bytes).map_err(|e| format!("{url}: {e}"))?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Artifact { entries, ..checked })
    }

    /// The digests of the bytes, checked against `expected`; no entries yet.
    fn from_bytes_unpacked(
        url: &str,
        bytes: &[u8],
        expected: Option<&ExpectedDigest>,
    ) -> Result<Self, String> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let sha512 = hex::encode(Sha512::digest(bytes));
        if let Some(expected) = expected {
            let (algorithm, want, got) = match expected {
                ExpectedDigest::Sha256(want) => ("sha256", want, sha256.clone()),
                ExpectedDigest::Sha512(want) => ("sha512", want, sha512.clone()),
                ExpectedDigest::Sha1(want) => (
                    "sha1",
                    want,
                    hex::encode(sha1_smol::Sha1::from(bytes).digest().bytes()),
                ),
            };
            if !want.eq_ignore_ascii_case(&got) {
                return Err(format!(
                    "{url}: {algorithm} digest mismatch (index says {want}, downloaded {got})"
                ));
            }
        }
        Ok(Artifact {
            url: url.to_string(),
            size: bytes.len() as u64,
            sha256,
            sha512,
            entries: Vec::new(),
        })
    }

    /// Paths of the regular files, sorted.
    pub fn file_members(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::File(_)))
            .map(|e| e.path.as_str())
    }

    /// The bytes of a regular file member (a hard link is followed).
    pub fn read_member(&self, member: &str) -> io::Result<Vec<u8>> {
        let member = normalize(member);
        let entry = self.entry(&member).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no member {member}", self.url),
            )
        })?;
        match &entry.kind {
            EntryKind::File(bytes) => Ok(bytes.clone()),
            EntryKind::HardLink(target) => self.read_member(&target.clone()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: member {member} is not a regular file", self.url),
            )),
        }
    }

    pub fn entry(&self, path: &str) -> Option<&ArchiveEntry> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The entries below `prefix` (a directory member ending in "/", or "" for all), with their
    /// paths relative to it.
    pub fn entries_below<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a ArchiveEntry)> + 'a {
        self.entries.iter().filter_map(move |e| {
            let relative = e.path.strip_prefix(prefix)?;
            (!relative.is_empty()).then_some((relative, e))
        })
    }
}

/// "./usr/bin/x" and "/usr/bin/x" are both "usr/bin/x"; a directory loses its trailing "/".
fn normalize(path: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    path.trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

fn unpack(bytes: &[u8]) -> io::Result<Vec<ArchiveEntry>> {
    unpack_within(bytes, MAX_UNPACKED_BYTES)
}

/// [`unpack`], with all members together at most `limit` bytes.
fn unpack_within(bytes: &[u8], limit: u64) -> io::Result<Vec<ArchiveEntry>> {
    unpack_archive(bytes, limit).unwrap_or_else(|| Err(invalid("not a tar.gz, zip or deb archive")))
}

/// Whether the bytes start like an archive [`unpack_archive`] reads.
fn is_archive(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
        || bytes.starts_with(b"PK\x03\x04")
        || bytes.starts_with(b"PK\x05\x06")
        || bytes.starts_with(b"!<arch>\n")
}

/// The entries of a gzip'd tar, zip or deb; none when the bytes are none of them.
fn unpack_archive(bytes: &[u8], limit: u64) -> Option<io::Result<Vec<ArchiveEntry>>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Some(read_tar(flate2::read::MultiGzDecoder::new(bytes), limit))
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Some(read_zip(bytes, limit))
    } else if bytes.starts_with(b"!<arch>\n") {
        Some(read_deb(bytes, limit))
    } else {
        None
    }
}

/// An xz decoder of `input` whose dictionary is bounded: xz's largest preset (-9) uses 64 MiB,
/// and a hostile header cannot make the decoder allocate more (up to 3 GiB otherwise).
/// The decoder holds its input for good (`'static`), hence the copy.
pub(crate) fn xz_reader(input: &[u8]) -> impl Read + use<> {
    let decoder = xz4rust::XzDecoder::in_heap_with_alloc_dict_size(
        xz4rust::DICT_SIZE_MIN,
        xz4rust::DICT_SIZE_PROFILE_9,
    );
    let buffer = std::num::NonZeroUsize::new(64 * 1024).expect("non-zero");
    xz4rust::XzReader::new_with_buffer_size_and_decoder(
        io::Cursor::new(input.to_vec()),
        buffer,
        decoder,
    )
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Rejects paths that would climb out of wherever the entry is placed.
fn safe_path(path: &str) -> io::Result<String> {
    let normalized = normalize(path);
    if normalized.split('/').any(|c| c == "..") {
        return Err(invalid(format!(
            "archive member {path:?} climbs out of its directory"
        )));
    }
    Ok(normalized)
}

fn read_tar(reader: impl Read, limit: u64) -> io::Result<Vec<ArchiveEntry>> {
    let mut archive = tar::Archive::new(reader);
    let mut entries = Vec::new();
    let mut budget = Budget::of(limit);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = safe_path(&String::from_utf8_lossy(&entry.path_bytes()))?;
        if path.is_empty() {
            continue;
        }
        let header = entry.header();
        let mode = header.mode().ok().map(|m| m & 0o7777);
        let link = || -> io::Result<String> {
            Ok(entry
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File(Vec::new()),
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Symlink => EntryKind::Symlink(link()?),
            tar::EntryType::Link => EntryKind::HardLink(safe_path(&link()?)?),
            // Devices, fifos and pax/GNU metadata entries are not package content.
            _ => continue,
        };
        let kind = match kind {
            EntryKind::File(_) => {
                let claimed = entry.size();
                EntryKind::File(budget.read(&mut entry, claimed)?)
            }
            other => other,
        };
        entries.push(ArchiveEntry { path, kind, mode });
    }
    Ok(entries)
}

fn read_zip(bytes: &[u8], limit: u64) -> io::Result<Vec<ArchiveEntry>> {
    let mut archive = zip::ZipArchive::new(io::Cursor::new(bytes)).map_err(io::Error::other)?;
    let mut entries = Vec::new();
    let mut budget = Budget::of(limit);
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(io::Error::other)?;
        let path = safe_path(file.name())?;
        if path.is_empty() {
            continue;
        }
        let mode = file.unix_mode().map(|m| m & 0o7777);
        let kind = if file.is_dir() {
            EntryKind::Directory
        } else {
            let claimed = file.size();
            EntryKind::File(budget.read(&mut file, claimed)?)
        };
        entries.push(ArchiveEntry { path, kind, mode });
    }
    Ok(entries)
}

/// A .deb is an ar archive; the installed files are in its `data.tar` member.
fn read_deb(bytes: &[u8], limit: u64) -> io::Result<Vec<ArchiveEntry>> {
    let mut offset = 8;
    while offset + 60 <= bytes.len() {
        let header = &bytes[offset..offset + 60];
        let name = String::from_utf8_lossy(&header[0..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: usize = String::from_utf8_lossy(&header[48..58])
            .trim()
            .parse()
            .map_err(|_| invalid("malformed ar member header"))?;
        let start = offset + 60;
        let data = start
            .checked_add(size)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| invalid("truncated ar member"))?;
        match name.as_str() {
            "data.tar" => return read_tar(data, limit),
            "data.tar.gz" => return read_tar(flate2::read::GzDecoder::new(data), limit),
            "data.tar.xz" => return read_tar(xz_reader(data), limit),
            "data.tar.zst" => {
                let decoder =
                    ruzstd::decoding::StreamingDecoder::new(data).map_err(io::Error::other)?;
                return read_tar(decoder, limit);
            }
            _ => {}
        }
        // Members are aligned to even offsets.
        offset = start + size + (size & 1);
    }
    Err(invalid("no data.tar member in the .deb"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_gz(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            Default::default(),
        ));
        for (path, contents, mode) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(*mode);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, *contents).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        // 3 MiB of zeros across two members gzip to a few KB.
        let zeros = vec![0u8; 3 << 19];
        let bomb = tar_gz(&[("a", &zeros, 0o644), ("b", &zeros, 0o644)]);
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let err = unpack_within(&bomb, 2 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the archive unpacks to more than 2097152 bytes"
        );
        // Exactly the limit is fine.
        assert_eq!(unpack_within(&bomb, 3 << 20).unwrap().len(), 2);
        let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        zip.start_file("a", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&zeros).unwrap();
        let zip = zip.finish().unwrap().into_inner();
        assert!(unpack_within(&zip, 1 << 20).is_err());
        assert!(unpack_within(&zip, 2 << 20).is_ok());
    }

    #[test]
    fn unpacks_npm_tarballs_and_checks_digests() {
        let bytes = tar_gz(&[
            ("package/package.json", b"{}", 0o644),
            ("package/bin/x", b"#!", 0o755),
        ]);
        let sha512 = hex::encode(Sha512::digest(&bytes));
        let artifact =
            Artifact::from_bytes("u", &bytes, Some(&ExpectedDigest::Sha512(sha512.clone())))
                .unwrap();
        assert_eq!(artifact.sha512, sha512);
        assert_eq!(
            artifact.file_members().collect::<Vec<_>>(),
            ["package/bin/x", "package/package.json"]
        );
        assert_eq!(artifact.read_member("package/package.json").unwrap(), b"{}");
        assert_eq!(artifact.entry("package/bin/x").unwrap().mode, Some(0o755));
        let below: Vec<&str> = artifact.entries_below("package/").map(|(p, _)| p).collect();
        assert_eq!(below, ["bin/x", "package.json"]);

        let err = Artifact::from_bytes("u", &bytes, Some(&ExpectedDigest::Sha256("00".into())))
            .unwrap_err();
        assert!(err.contains("sha256 digest mismatch"), "{err}");
        let sha1 = hex::encode(sha1_smol::Sha1::from(&bytes[..]).digest().bytes());
        Artifact::from_bytes("u", &bytes, Some(&ExpectedDigest::Sha1(sha1))).unwrap();
    }

    #[test]
    fn refuses_members_that_climb_out() {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            Default::default(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses "..", so write the name into the header directly.
        header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../etc/passwd");
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        let err = Artifact::from_bytes("u", &bytes, None).unwrap_err();
        assert!(err.contains("climbs out"), "{err}");
    }

    #[test]
    fn a_download_is_checked_against_its_digest_before_it_is_read() {
        let bytes = b"#!/bin/sh\necho tool\n";
        let sha256 = hex::encode(Sha256::digest(bytes));
        let url = "https://files.example/bin/tool?sig=1";
        let plain = Artifact::from_download(url, bytes, &sha256).unwrap();
        assert_eq!(plain.entries.len(), 1);
        assert_eq!(plain.entries[0].path, "tool");
        assert_eq!(plain.entries[0].kind, EntryKind::File(bytes.to_vec()));
        let wrong = "0".repeat(64);
        let refused = Artifact::from_download(url, bytes, &wrong).unwrap_err();
        assert!(refused.contains("sha256 digest mismatch"), "{refused}");
        // A gzip that would not even unpack is refused for its digest first.
        let bomb = [0x1f, 0x8b, 0, 0, 0, 0];
        let refused = Artifact::from_download(url, &bomb, &wrong).unwrap_err();
        assert!(refused.contains("sha256 digest mismatch"), "{refused}");
        let refused = Artifact::from_download(url, bytes, "abc").unwrap_err();
        assert!(refused.contains("not a SHA-256 digest"), "{refused}");
        let refused =
            Artifact::from_download("https://files.example/", bytes, &sha256).unwrap_err();
        assert!(refused.contains("names no file"), "{refused}");
    }

    #[test]
    fn unpacks_zip_and_deb() {
        let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        zip.start_file("lib/net8.0/A.dll", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"MZ").unwrap();
        let zip = zip.finish().unwrap().into_inner();
        let artifact = Artifact::from_bytes("u", &zip, None).unwrap();
        assert_eq!(artifact.read_member("lib/net8.0/A.dll").unwrap(), b"MZ");

        // A .deb: "debian-binary", "control.tar.gz", "data.tar.gz" in an ar archive.
        let data = tar_gz(&[("./usr/bin/hello", b"hi", 0o755)]);
        let mut deb = b"!<arch>\n".to_vec();
        for (name, contents) in [
            ("debian-binary", &b"2.0\n"[..]),
            ("control.tar.gz", &b"x"[..]),
            ("data.tar.gz", &data[..]),
        ] {
            deb.extend(
                format!(
                    "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                    0,
                    0,
                    0,
                    100644,
                    contents.len()
                )
                .as_bytes(),
            );
            deb.extend(contents);
            if contents.len() % 2 == 1 {
                deb.push(b'\n');
            }
        }
        let artifact = Artifact::from_bytes("u", &deb, None).unwrap();
        assert_eq!(
            artifact.file_members().collect::<Vec<_>>(),
            ["usr/bin/hello"]
        );
        assert_eq!(artifact.entry("usr/bin/hello").unwrap().mode, Some(0o755));

        assert!(
            Artifact::from_bytes("u", b"plain text", None)
                .unwrap_err()
                .contains("not a tar.gz")
        );
    }
}
