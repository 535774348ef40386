//! The patch layer: what the executor's steps changed, squashed into one reproducible layer
//! (sorted entries, fixed mtimes, numeric owners) with junk filtered out.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};
use flate2::Compression;
use sha2::{Digest, Sha256};

use super::view::{EntryKind, ImageView, LayerTar, normalize_path};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Paths that never belong in a patch layer whatever the step: scratch space and kernel
/// filesystems the container runtime touches.
pub const ALWAYS_EXCLUDED: &[&str] = &[
    "/tmp",
    "/var/tmp",
    "/run",
    "/proc",
    "/sys",
    "/dev",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/.dockerenv",
];

/// One step's changes, as a layer tar, with the paths that step declared as junk.
pub struct StepDiff {
    pub tar: LayerTar,
    pub exclude: Vec<String>,
}

#[derive(Clone, Debug)]
enum Content {
    Directory {
        opaque: bool,
    },
    File {
        layer: usize,
        offset: u64,
        size: u64,
    },
    Symlink(String),
    HardLink(String),
    Whiteout,
}

#[derive(Clone, Debug)]
struct Change {
    content: Content,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// A written patch layer.
pub struct PatchLayer {
    /// The uncompressed tar (for verification through an ImageView).
    pub tar: LayerTar,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// The blob as it is distributed (compressed as asked).
    pub blob: File,
    /// `sha256:` of the blob.
    pub digest: String,
    /// The OCI media type of the blob.
    pub media_type: &'static str,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub entries: usize,
}

/// Squashes the steps' diffs into one layer on top of `original`; `None` when nothing is left
/// after filtering. `mtime` is stamped on every entry.
pub fn squash(
    diffs: &[StepDiff],
    original: &ImageView,
    mtime: u64,
    compression: LayerCompression,
    workdir: &Path,
) -> Result<Option<PatchLayer>> {
    let mut changes: BTreeMap<String, Change> = BTreeMap::new();
    let mut exclude: Vec<String> = ALWAYS_EXCLUDED.iter().map(|s| s.to_string()).collect();
    for (index, diff) in diffs.iter().enumerate() {
        apply_diff(&mut changes, index, &diff.tar, original)
            .with_context(|| format!("reading the changes of step {}", index + 1))?;
        exclude.extend(diff.exclude.iter().map(|p| normalize_path(p)));
    }
    changes.retain(|path, _| !is_excluded(path, &exclude));
    drop_orphan_bytecode(&mut changes);
    drop_unchanged_files(&mut changes, diffs, original)?;
    drop_untouched_directories(&mut changes, original);
    if changes.is_empty() {
        return Ok(None);
    }
    write(&changes, diffs, mtime, compression, workdir).map(Some)
}

/// How the patch layer's blob is compressed (`--compression`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayerCompression {
    #[default]
    Gzip,
    Zstd,
    None,
}

impl std::str::FromStr for LayerCompression {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gzip" => Ok(LayerCompression::Gzip),
            "zstd" => Ok(LayerCompression::Zstd),
            "none" => Ok(LayerCompression::None),
            other => anyhow::bail!("unknown compression {other:?} (gzip, zstd or none)"),
        }
    }
}

impl LayerCompression {
    pub fn media_type(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            LayerCompression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            LayerCompression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

fn is_excluded(path: &str, exclude: &[String]) -> bool {
    exclude.iter().any(|prefix| is_at_or_below(path, prefix))
}

/// Whether `path` is `dir` or inside it (every path is inside "/").
pub fn is_at_or_below(path: &str, dir: &str) -> bool {
    dir == "/"
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn remove_below(changes: &mut BTreeMap<String, Change>, dir: &str) {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    let doomed: Vec<String> = changes
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for key in doomed {
        changes.remove(&key);
    }
}

fn apply_diff(
    changes: &mut BTreeMap<String, Change>,
    index: usize,
    tar: &LayerTar,
    original: &ImageView,
) -> Result<()> {
    let mut archive = tar::Archive::new(tar.reader()?);
    for entry in archive.entries_with_seek()? {
        let entry = entry?;
        let path = normalize_path(&entry.path()?.to_string_lossy());
        if path == "/" {
            continue;
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        let dir = if dir.is_empty() { "/" } else { dir };
        let header = entry.header();
        let (mode, uid, gid) = (
            header.mode().unwrap_or(0o644),
            header.uid().unwrap_or(0),
            header.gid().unwrap_or(0),
        );
        if name == OPAQUE_MARKER {
            remove_below(changes, dir);
            if let Some(Change {
                content: Content::Directory { opaque },
                ..
            }) = changes.get_mut(dir)
            {
                *opaque = true;
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let hidden = if dir == "/" {
                format!("/{hidden}")
            } else {
                format!("{dir}/{hidden}")
            };
            remove_below(changes, &hidden);
            changes.remove(&hidden);
            // A path an earlier step created needs no whiteout: the original never had it.
            if original.stat(&hidden).is_some() {
                changes.insert(
                    hidden,
                    Change {
                        content: Content::Whiteout,
                        mode: 0,
                        uid: 0,
                        gid: 0,
                    },
                );
            }
            continue;
        }
        let link = entry
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned());
        let content = match header.entry_type() {
            tar::EntryType::Directory => {
                // Deleted and recreated in this run: the new directory replaces the old one whole.
                let replaced = matches!(
                    changes.get(&path),
                    Some(Change {
                        content: Content::Whiteout,
                        ..
                    })
                );
                let opaque = replaced
                    || matches!(
                        changes.get(&path),
                        Some(Change {
                            content: Content::Directory { opaque: true },
                            ..
                        })
                    );
                Content::Directory { opaque }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => Content::File {
                layer: index,
                offset: entry.raw_file_position(),
                size: entry.size(),
            },
            tar::EntryType::Symlink => Content::Symlink(link.unwrap_or_default()),
            tar::EntryType::Link => Content::HardLink(normalize_path(&link.unwrap_or_default())),
            // Device nodes and fifos are never what a package manager is asked to patch.
            _ => continue,
        };
        if !matches!(content, Content::Directory { .. }) {
            remove_below(changes, &path);
        }
        changes.insert(
            path,
            Change {
                content,
                mode,
                uid,
                gid,
            },
        );
    }
    Ok(())
}

/// Python writes `__pycache__/x.cpython-311.pyc` for whatever it imports; only bytecode whose
/// source this layer also carries belongs to the patch.
fn drop_orphan_bytecode(changes: &mut BTreeMap<String, Change>) {
    let orphans: Vec<String> = changes
        .iter()
        .filter(|(path, change)| {
            matches!(change.content, Content::File { .. })
                && bytecode_source(path).is_some_and(|src| {
                    !matches!(
                        changes.get(&src),
                        Some(Change {
                            content: Content::File { .. },
                            ..
                        })
                    )
                })
        })
        .map(|(path, _)| path.clone())
        .collect();
    for path in orphans {
        changes.remove(&path);
    }
}

/// `/a/__pycache__/mod.cpython-311.pyc` -> `/a/mod.py`.
fn bytecode_source(path: &str) -> Option<String> {
    let (cache_dir, file) = path.rsplit_once('/')?;
    let dir = cache_dir.strip_suffix("/__pycache__")?;
    let module = file.strip_suffix(".pyc")?.split('.').next()?;
    Some(format!("{dir}/{module}.py"))
}

/// Files a package manager rewrote with the very bytes, mode and owner they already had: an
/// upgrade reinstalls every file of a package, and most are the same in the new version
/// (time zones, Perl modules, documentation). Leaving them out keeps the layer to what changed.
fn drop_unchanged_files(
    changes: &mut BTreeMap<String, Change>,
    diffs: &[StepDiff],
    original: &ImageView,
) -> Result<()> {
    // A hard link in the layer needs its target in the same layer.
    let link_targets: std::collections::HashSet<String> = changes
        .values()
        .filter_map(|c| match &c.content {
            Content::HardLink(target) => Some(target.clone()),
            _ => None,
        })
        .collect();
    let mut unchanged = Vec::new();
    for (path, change) in changes.iter() {
        let Content::File {
            layer,
            offset,
            size,
        } = change.content
        else {
            continue;
        };
        if link_targets.contains(path) || below_opaque_directory(changes, path) {
            continue;
        }
        let same_metadata = original.stat(path).is_some_and(|e| {
            e.kind == EntryKind::File
                && e.size == size
                && e.mode & 0o7777 == change.mode & 0o7777
                && e.uid == change.uid
                && e.gid == change.gid
        });
        if same_metadata && original.read_file(path)? == diffs[layer].tar.read_at(offset, size)? {
            unchanged.push(path.clone());
        }
    }
    for path in unchanged {
        changes.remove(&path);
    }
    Ok(())
}

/// Whether an ancestor of `path` is opaque in the layer: the original's files below it are
/// hidden, so even an unchanged file must be in the layer to stay visible.
fn below_opaque_directory(changes: &BTreeMap<String, Change>, path: &str) -> bool {
    let mut dir = path;
    while let Some(i) = dir.rfind('/') {
        dir = &dir[..i];
        if let Some(Change {
            content: Content::Directory { opaque: true },
            ..
        }) = changes.get(dir)
        {
            return true;
        }
    }
    false
}

/// Directories that appear only because something below them changed and was filtered out.
fn drop_untouched_directories(changes: &mut BTreeMap<String, Change>, original: &ImageView) {
    let dirs: Vec<String> = changes
        .iter()
        .rev()
        .filter(|(_, c)| matches!(c.content, Content::Directory { opaque: false }))
        .map(|(p, _)| p.clone())
        .collect();
    // Reverse path order visits children before their parents.
    for dir in dirs {
        let prefix = format!("{dir}/");
        let has_children = changes
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix));
        if has_children {
            continue;
        }
        let change = &changes[&dir];
        let unchanged = original.stat(&dir).is_some_and(|e| {
            e.kind == EntryKind::Directory
                && e.mode & 0o7777 == change.mode & 0o7777
                && e.uid == change.uid
                && e.gid == change.gid
        });
        let empty_bytecode_dir = dir.ends_with("/__pycache__");
        if unchanged || empty_bytecode_dir {
            changes.remove(&dir);
        }
    }
}

fn write(
    changes: &BTreeMap<String, Change>,
    diffs: &[StepDiff],
    mtime: u64,
    compression: LayerCompression,
    workdir: &Path,
) -> Result<PatchLayer> {
    let tar_file = tempfile::tempfile_in(workdir)?;
    let mut hasher = HashingWriter::new(BufWriter::new(tar_file));
    let mut builder = tar::Builder::new(&mut hasher);
    builder.mode(tar::HeaderMode::Deterministic);
    // Tree order of the names as written (a directory's subtree stays together, whiteouts sort
    // by their `.wh.` name), so the same changes always give the same bytes.
    let mut ordered: Vec<(Vec<String>, &String, &Change)> = changes
        .iter()
        .map(|(path, change)| {
            let written = match change.content {
                Content::Whiteout => match path.rsplit_once('/') {
                    Some((dir, name)) => format!("{dir}/{WHITEOUT_PREFIX}{name}"),
                    None => path.clone(),
                },
                _ => path.clone(),
            };
            (written.split('/').map(String::from).collect(), path, change)
        })
        .collect();
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, path, change) in ordered {
        let relative = &path[1..];
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(change.uid);
        header.set_gid(change.gid);
        header.set_mode(change.mode);
        match &change.content {
            Content::Directory { opaque } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{relative}/"), std::io::empty())?;
                // Right after its directory, as Docker writes it, so that no sibling from this
                // same layer is extracted before the marker clears the directory.
                if *opaque {
                    empty_file(&mut builder, &format!("{relative}/{OPAQUE_MARKER}"), mtime)?;
                }
            }
            Content::File {
                layer,
                offset,
                size,
            } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(*size);
                let source = &diffs[*layer].tar;
                let mut reader = source.file.try_clone()?;
                reader.seek(SeekFrom::Start(source.offset + offset))?;
                builder.append_data(&mut header, relative, reader.take(*size))?;
            }
            Content::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, relative, target)?;
            }
            Content::HardLink(target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                builder.append_link(&mut header, relative, &target[1..])?;
            }
            Content::Whiteout => {
                let (dir, name) = relative.rsplit_once('/').unwrap_or(("", relative));
                let marker = if dir.is_empty() {
                    format!("{WHITEOUT_PREFIX}{name}")
                } else {
                    format!("{dir}/{WHITEOUT_PREFIX}{name}")
                };
                empty_file(&mut builder, &marker, mtime)?;
            }
        }
    }
    builder.finish()?;
    drop(builder);
    let (writer, diff_digest, uncompressed_size) = hasher.finish();
    let mut tar_file = writer.into_inner().map_err(|e| e.into_error())?;
    tar_file.flush()?;

    tar_file.seek(SeekFrom::Start(0))?;
    let (blob, digest, compressed_size) = match compression {
        LayerCompression::None => (
            tar_file.try_clone()?,
            diff_digest.clone(),
            uncompressed_size,
        ),
        LayerCompression::Gzip | LayerCompression::Zstd => {
            let blob = tempfile::tempfile_in(workdir)?;
            let mut hasher = HashingWriter::new(BufWriter::new(blob));
            if compression == LayerCompression::Gzip {
                // A fixed header (no name, mtime 0) keeps the compressed digest reproducible.
                let mut encoder = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(&mut hasher, Compression::default());
                std::io::copy(&mut (&tar_file), &mut encoder)?;
                encoder.finish()?;
            } else {
                ruzstd::encoding::compress(
                    BufReader::new(&tar_file),
                    &mut hasher,
                    ruzstd::encoding::CompressionLevel::Fastest,
                );
            }
            let (writer, digest, size) = hasher.finish();
            (
                writer.into_inner().map_err(|e| e.into_error())?,
                digest,
                size,
            )
        }
    };
    Ok(PatchLayer {
        tar: LayerTar::whole(tar_file)?,
        diff_id: format!("sha256:{diff_digest}"),
        blob,
        digest: format!("sha256:{digest}"),
        media_type: compression.media_type(),
        compressed_size,
        uncompressed_size,
        entries: changes.len(),
    })
}

fn empty_file<W: Write>(builder: &mut tar::Builder<W>, path: &str, mtime: u64) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(0);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    builder.append_data(&mut header, path, std::io::empty())?;
    Ok(())
}

/// Hashes (SHA-256) and counts what passes through.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The inner writer, the hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            hex::encode(self.hasher.finalize()),
            self.written,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::view::tests::layer;

    /// The layer of `diffs` at mtime 0, gzip-compressed; the tests' changes always leave one.
    fn squashed_gzip(diffs: &[StepDiff], original: &ImageView, dir: &Path) -> PatchLayer {
        squash(diffs, original, 0, LayerCompression::Gzip, dir)
            .unwrap()
            .unwrap()
    }

    fn paths(layer: &PatchLayer) -> Vec<String> {
        let mut archive = tar::Archive::new(layer.tar.reader().unwrap());
        archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn original() -> ImageView {
        ImageView::new(vec![layer(&[
            ("usr/", None),
            ("usr/lib/", None),
            ("usr/lib/site/", None),
            ("usr/lib/site/urllib3/", None),
            ("usr/lib/site/urllib3/__init__.py", Some("old")),
            ("usr/lib/site/urllib3/old.py", Some("old")),
            (
                "usr/lib/site/urllib3-1.26.4.dist-info/METADATA",
                Some("1.26.4"),
            ),
            ("usr/lib/python3.11/os.py", Some("os")),
            ("root/", None),
        ])])
        .unwrap()
    }

    #[test]
    fn squashes_steps_filters_junk_and_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let original = original();
        let step = || StepDiff {
            tar: layer(&[
                ("root/", None),
                ("root/.cache/pip/http/x", Some("cache")),
                ("tmp/pip-xyz/junk", Some("junk")),
                ("usr/", None),
                ("usr/lib/", None),
                (
                    "usr/lib/python3.11/__pycache__/os.cpython-311.pyc",
                    Some("pyc"),
                ),
                ("usr/lib/site/", None),
                ("usr/lib/site/.wh.urllib3-1.26.4.dist-info", Some("")),
                ("usr/lib/site/urllib3/", None),
                ("usr/lib/site/urllib3/.wh..wh..opq", Some("")),
                ("usr/lib/site/urllib3/__init__.py", Some("new")),
                (
                    "usr/lib/site/urllib3/__pycache__/__init__.cpython-311.pyc",
                    Some("pyc"),
                ),
                (
                    "usr/lib/site/urllib3-1.26.5.dist-info/METADATA",
                    Some("1.26.5"),
                ),
            ]),
            exclude: vec!["/root/.cache".into()],
        };
        let first = squashed_gzip(&[step()], &original, dir.path());
        assert_eq!(
            paths(&first),
            vec![
                "usr/",
                "usr/lib/",
                "usr/lib/site/",
                "usr/lib/site/.wh.urllib3-1.26.4.dist-info",
                "usr/lib/site/urllib3/",
                "usr/lib/site/urllib3/.wh..wh..opq",
                "usr/lib/site/urllib3/__init__.py",
                "usr/lib/site/urllib3/__pycache__/__init__.cpython-311.pyc",
                "usr/lib/site/urllib3-1.26.5.dist-info/METADATA",
            ]
        );
        let second = squashed_gzip(&[step()], &original, dir.path());
        assert_eq!(first.diff_id, second.diff_id);
        assert_eq!(first.digest, second.digest);

        // Every compression carries the same tar; zstd is reproducible too, and "none" is the
        // tar itself.
        let tar_bytes = first.tar.read_at(0, first.tar.len).unwrap();
        for compression in [LayerCompression::Zstd, LayerCompression::None] {
            let layer = |_| {
                squash(&[step()], &original, 0, compression, dir.path())
                    .unwrap()
                    .unwrap()
            };
            let (one, two) = (layer(1), layer(2));
            assert_eq!(
                (one.diff_id.as_str(), one.digest.as_str()),
                (first.diff_id.as_str(), two.digest.as_str())
            );
            assert_eq!(one.media_type, compression.media_type());
            let blob = LayerTar::whole(one.blob.try_clone().unwrap()).unwrap();
            let blob = blob.read_at(0, blob.len).unwrap();
            let unpacked = match compression {
                LayerCompression::Zstd => {
                    let mut out = Vec::new();
                    ruzstd::decoding::StreamingDecoder::new(&blob[..])
                        .unwrap()
                        .read_to_end(&mut out)
                        .unwrap();
                    assert!(blob.len() < out.len());
                    out
                }
                _ => blob,
            };
            assert_eq!(unpacked, tar_bytes);
        }

        let mut patched = original;
        patched.push_layer(first.tar.clone()).unwrap();
        assert_eq!(
            patched.read_dir("/usr/lib/site/urllib3").unwrap(),
            vec!["__init__.py", "__pycache__"]
        );
        assert_eq!(
            patched
                .read_file("/usr/lib/site/urllib3-1.26.5.dist-info/METADATA")
                .unwrap(),
            b"1.26.5"
        );
        assert!(
            patched
                .stat("/usr/lib/site/urllib3-1.26.4.dist-info")
                .is_none()
        );
    }

    #[test]
    fn later_steps_win_and_transient_paths_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let original = original();
        let first = StepDiff {
            tar: layer(&[
                ("opt/", None),
                ("opt/new/", None),
                ("opt/new/a.txt", Some("1")),
                ("usr/lib/site/urllib3/old.py", Some("2")),
            ]),
            exclude: vec![],
        };
        let second = StepDiff {
            tar: layer(&[
                ("etc/", None),
                ("etc/x", Some("3")),
                ("opt/.wh.new", Some("")),
                ("usr/lib/site/urllib3/.wh.old.py", Some("")),
            ]),
            exclude: vec![],
        };
        let squashed = squashed_gzip(&[first, second], &original, dir.path());
        assert_eq!(
            paths(&squashed),
            vec!["etc/", "etc/x", "opt/", "usr/lib/site/urllib3/.wh.old.py"]
        );
    }

    #[test]
    fn files_rewritten_with_the_same_bytes_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let reinstall = StepDiff {
            tar: layer(&[
                ("usr/", None),
                ("usr/lib/", None),
                ("usr/lib/site/", None),
                ("usr/lib/site/urllib3/", None),
                ("usr/lib/site/urllib3/__init__.py", Some("old")),
                ("usr/lib/python3.11/", None),
                ("usr/lib/python3.11/os.py", Some("os, new")),
            ]),
            exclude: vec![],
        };
        let squashed = squashed_gzip(&[reinstall], &original(), dir.path());
        // The same urllib3 file is gone, and with it its untouched directories.
        // (Below an opaque directory, the same file stays: see the test after this one.)
        assert_eq!(
            paths(&squashed),
            vec![
                "usr/",
                "usr/lib/",
                "usr/lib/python3.11/",
                "usr/lib/python3.11/os.py"
            ]
        );
    }

    #[test]
    fn an_unchanged_file_in_a_recreated_directory_stays() {
        let dir = tempfile::tempdir().unwrap();
        // pip removes the package directory and writes it anew: an opaque directory.
        let reinstall = StepDiff {
            tar: layer(&[
                ("usr/lib/site/urllib3/", None),
                ("usr/lib/site/urllib3/.wh..wh..opq", Some("")),
                ("usr/lib/site/urllib3/__init__.py", Some("old")),
            ]),
            exclude: vec![],
        };
        let squashed = squashed_gzip(&[reinstall], &original(), dir.path());
        assert!(
            paths(&squashed).contains(&"usr/lib/site/urllib3/__init__.py".to_string()),
            "{:?}",
            paths(&squashed)
        );
    }

    #[test]
    fn nothing_left_is_no_layer() {
        let dir = tempfile::tempdir().unwrap();
        let step = StepDiff {
            tar: layer(&[
                ("root/", None),
                ("root/.cache/pip/x", Some("c")),
                ("tmp/x", Some("t")),
            ]),
            exclude: vec!["/root/.cache".into()],
        };
        assert!(
            squash(&[step], &original(), 0, LayerCompression::Gzip, dir.path())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn finds_bytecode_sources() {
        assert_eq!(
            bytecode_source("/a/__pycache__/mod.cpython-311.pyc").as_deref(),
            Some("/a/mod.py")
        );
        assert_eq!(
            bytecode_source("/a/__pycache__/mod.cpython-311.opt-1.pyc").as_deref(),
            Some("/a/mod.py")
        );
        assert_eq!(bytecode_source("/a/mod.pyc"), None);
    }
}
