//! A read-only, merged view of an image's layers: whiteouts applied, files served straight from
//! the uncompressed layer tars by offset, nothing unpacked to disk.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

/// An uncompressed layer tar: a byte range of a file on disk (a docker-save member, an
/// unpacked OCI blob, a freshly written patch layer).
#[derive(Clone, Debug)]
pub struct LayerTar {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

impl LayerTar {
    pub fn whole(file: File) -> Result<Self> {
        let len = file.metadata()?.len();
        Ok(LayerTar {
            file: Arc::new(file),
            offset: 0,
            len,
        })
    }

    /// The `len` bytes at `offset` of `file` (a member of an archive), which must lie within
    /// the file: the offset and length come from the archive's headers.
    pub fn member(file: Arc<File>, offset: u64, len: u64) -> Result<Self> {
        let file_len = file.metadata()?.len();
        if offset.checked_add(len).is_none_or(|end| end > file_len) {
            bail!(
                "a member claims {len} bytes at offset {offset}, past the end of the {file_len}-byte archive"
            );
        }
        Ok(LayerTar { file, offset, len })
    }

    /// A reader over the layer's bytes; it seeks, so tar listings skip file contents instead
    /// of reading them.
    pub fn reader(&self) -> Result<RangeReader> {
        Ok(RangeReader {
            file: self.file.try_clone()?,
            start: self.offset,
            len: self.len,
            pos: 0,
        })
    }

    /// `len` bytes at `offset` of the layer. Sizes come from tar headers, which anyone can
    /// write: a range past the layer's end is an error before anything is allocated.
    pub fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            bail!(
                "an entry claims {len} bytes at offset {offset}, past the end of its {}-byte layer",
                self.len
            );
        }
        let mut buf = vec![0; len as usize];
        self.file.read_exact_at(&mut buf, self.offset + offset)?;
        Ok(buf)
    }
}

/// A byte range of a file as a seekable stream of its own.
pub struct RangeReader {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min(self.len.saturating_sub(self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        self.pos = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// One path of the merged filesystem.
#[derive(Clone, Debug)]
pub struct Entry {
    pub kind: EntryKind,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link_target: Option<String>,
    /// Which layer holds the bytes, and where in it (files only).
    data: Option<(usize, u64)>,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const MAX_SYMLINK_HOPS: usize = 40;

pub struct ImageView {
    layers: Vec<LayerTar>,
    entries: BTreeMap<String, Entry>,
}

/// `./usr//lib/` -> `/usr/lib`; the root is `/`. `..` is resolved lexically and never leaves `/`.
pub fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Keys strictly below `dir` start with this prefix.
fn child_prefix(dir: &str) -> String {
    if dir == "/" {
        "/".into()
    } else {
        format!("{dir}/")
    }
}

impl ImageView {
    pub fn new(layers: Vec<LayerTar>) -> Result<Self> {
        let mut view = ImageView {
            layers: Vec::new(),
            entries: BTreeMap::new(),
        };
        view.entries.insert("/".into(), directory_entry(0o755));
        for layer in layers {
            view.push_layer(layer)?;
        }
        Ok(view)
    }

    /// Applies one more layer on top (the patch layer, for verification).
    pub fn push_layer(&mut self, layer: LayerTar) -> Result<()> {
        let index = self.layers.len();
        let mut additions: Vec<(String, Entry, Option<String>)> = Vec::new();
        let mut removals: Vec<String> = Vec::new();
        let mut opaque_dirs: Vec<String> = Vec::new();
        let reader = layer.reader()?;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries_with_seek().context("reading layer tar")? {
            let entry = entry.context("reading layer tar entry")?;
            let header = entry.header();
            let raw_path = entry.path().context("layer tar entry path")?;
            let path = normalize_path(&raw_path.to_string_lossy());
            let name = path.rsplit('/').next().unwrap_or_default();
            if name == OPAQUE_MARKER {
                opaque_dirs.push(parent(&path).to_string());
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                removals.push(join(parent(&path), hidden));
                continue;
            }
            let entry_type = header.entry_type();
            let link = entry
                .link_name()
                .ok()
                .flatten()
                .map(|l| l.to_string_lossy().into_owned());
            let (kind, hardlink) = match entry_type {
                tar::EntryType::Regular | tar::EntryType::Continuous => (EntryKind::File, None),
                tar::EntryType::Directory => (EntryKind::Directory, None),
                tar::EntryType::Symlink => (EntryKind::Symlink, None),
                tar::EntryType::Link => (EntryKind::File, link.as_deref().map(normalize_path)),
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
                _ => (EntryKind::Other, None),
            };
            let e = Entry {
                kind,
                size: if kind == EntryKind::File {
                    entry.size()
                } else {
                    0
                },
                mode: header.mode().unwrap_or(0o644),
                uid: header.uid().unwrap_or(0),
                gid: header.gid().unwrap_or(0),
                link_target: if kind == EntryKind::Symlink {
                    link
                } else {
                    None
                },
                data: (kind == EntryKind::File).then(|| (index, entry.raw_file_position())),
            };
            additions.push((path, e, hardlink));
        }
        // Whiteouts hide what the lower layers had; entries of this same layer stay visible.
        for dir in opaque_dirs {
            self.remove_below(&dir);
        }
        for path in removals {
            self.remove_below(&path);
            self.entries.remove(&path);
        }
        for (path, mut entry, hardlink) in additions {
            if let Some(target) = hardlink {
                let Some(original) = self.entries.get(&target) else {
                    bail!("layer {index}: hard link {path} points at missing {target}");
                };
                entry.size = original.size;
                entry.data = original.data;
                entry.mode = original.mode;
            }
            if entry.kind != EntryKind::Directory {
                self.remove_below(&path);
            }
            self.ensure_parents(&path);
            self.entries.insert(path, entry);
        }
        self.layers.push(layer);
        Ok(())
    }

    fn remove_below(&mut self, dir: &str) {
        let prefix = child_prefix(dir);
        if prefix == "/" {
            self.entries.retain(|k, _| k == "/");
            return;
        }
        let doomed: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            self.entries.remove(&key);
        }
    }

    /// Layers may omit directory entries; the merged view still has the directories.
    fn ensure_parents(&mut self, path: &str) {
        let mut dir = parent(path);
        while dir != "/" && !self.entries.contains_key(dir) {
            self.entries.insert(dir.to_string(), directory_entry(0o755));
            dir = parent(dir);
        }
    }

    /// Resolves symlinks in every component but the last, inside the image root.
    fn resolve_parent(&self, path: &str, hops: &mut usize) -> Result<String> {
        let path = normalize_path(path);
        if path == "/" {
            return Ok(path);
        }
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        let dir = self.resolve(parent(&path), hops)?;
        Ok(join(&dir, &name))
    }

    /// Resolves symlinks in every component, inside the image root.
    fn resolve(&self, path: &str, hops: &mut usize) -> Result<String> {
        let path = self.resolve_parent(path, hops)?;
        match self.entries.get(&path) {
            Some(entry) if entry.kind == EntryKind::Symlink => {
                *hops += 1;
                if *hops > MAX_SYMLINK_HOPS {
                    bail!("{path}: too many levels of symbolic links");
                }
                let target = entry.link_target.as_deref().unwrap_or_default();
                let next = if target.starts_with('/') {
                    target.to_string()
                } else {
                    join(parent(&path), target)
                };
                self.resolve(&next, hops)
            }
            _ => Ok(path),
        }
    }

    /// `path` with symlinks in its directories resolved inside the image root (the last
    /// component is kept as it is): where a file written at `path` really lands.
    pub fn real_path(&self, path: &str) -> Result<String> {
        self.resolve_parent(path, &mut 0)
    }

    /// `path` with every symlink resolved inside the image root, the last component too.
    pub fn real_path_followed(&self, path: &str) -> Result<String> {
        self.resolve(path, &mut 0)
    }

    /// Every entry strictly below the directory `root` (resolved through symlinks), in path
    /// order, with absolute paths.
    pub fn walk(&self, root: &str) -> impl Iterator<Item = (&str, &Entry)> {
        let prefix = self
            .resolve(root, &mut 0)
            .map(|r| child_prefix(&r))
            .unwrap_or_else(|_| "/nonexistent/".into());
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(k, e)| (k.as_str(), e))
    }

    /// Metadata of `path` (a final symlink is not followed).
    pub fn stat(&self, path: &str) -> Option<&Entry> {
        let resolved = self.resolve_parent(path, &mut 0).ok()?;
        self.entries.get(&resolved)
    }

    pub fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        let resolved = self.resolve(path, &mut 0)?;
        let Some(entry) = self.entries.get(&resolved) else {
            bail!("{path}: no such file in the image");
        };
        match (entry.kind, entry.data) {
            (EntryKind::File, Some((layer, offset))) => {
                self.layers[layer].read_at(offset, entry.size)
            }
            (EntryKind::Directory, _) => bail!("{path}: is a directory"),
            _ => bail!("{path}: not a regular file"),
        }
    }

    /// Names of the entries of a directory, sorted.
    pub fn read_dir(&self, path: &str) -> Result<Vec<String>> {
        let resolved = self.resolve(path, &mut 0)?;
        match self.entries.get(&resolved) {
            Some(e) if e.kind == EntryKind::Directory => {}
            Some(_) => bail!("{path}: not a directory"),
            None => bail!("{path}: no such directory in the image"),
        }
        let prefix = child_prefix(&resolved);
        let mut names = Vec::new();
        let mut cursor = Bound::Excluded(prefix.clone());
        while let Some((key, _)) = self
            .entries
            .range((cursor.clone(), Bound::Unbounded))
            .next()
        {
            let Some(rest) = key.strip_prefix(&prefix) else {
                break;
            };
            match rest.split_once('/') {
                // A descendant of a child already listed: skip that child's whole subtree,
                // which sorts between "child/" and "child0".
                Some((child, _)) => cursor = Bound::Included(format!("{prefix}{child}0")),
                None => {
                    names.push(rest.to_string());
                    cursor = Bound::Excluded(key.clone());
                }
            }
        }
        Ok(names)
    }

    /// Every path under `root` whose last component is `name`, not descending into directories
    /// whose name is in `prune`. `root` itself is resolved through symlinks; nothing below is.
    pub fn find(&self, root: &str, name: &str, prune: &[String]) -> Vec<String> {
        let Ok(resolved) = self.resolve(root, &mut 0) else {
            return Vec::new();
        };
        let prefix = child_prefix(&resolved);
        self.entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(key, _)| {
                let rest = &key[prefix.len()..];
                let mut components: Vec<&str> = rest.split('/').collect();
                let last = components.pop()?;
                let pruned = components.iter().any(|c| prune.iter().any(|p| p == c));
                (last == name && !pruned).then(|| key.clone())
            })
            .collect()
    }
}

fn directory_entry(mode: u32) -> Entry {
    Entry {
        kind: EntryKind::Directory,
        size: 0,
        mode,
        uid: 0,
        gid: 0,
        link_target: None,
        data: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A layer tar built in a temp file from (path, content) pairs; `None` content = directory,
    /// `Some("->target")` = symlink.
    pub(crate) fn layer(entries: &[(&str, Option<&str>)]) -> LayerTar {
        let file = tempfile::tempfile().unwrap();
        let mut builder = tar::Builder::new(file);
        for (path, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            match content {
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, path, std::io::empty())
                        .unwrap();
                }
                Some(text) if text.starts_with("->") => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder.append_link(&mut header, path, &text[2..]).unwrap();
                }
                Some(text) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    header.set_size(text.len() as u64);
                    builder
                        .append_data(&mut header, path, text.as_bytes())
                        .unwrap();
                }
            }
        }
        let file = builder.into_inner().unwrap();
        LayerTar::whole(file).unwrap()
    }

    #[test]
    fn merges_layers_and_serves_files() {
        let view = ImageView::new(vec![
            layer(&[
                ("etc/", None),
                ("etc/os-release", Some("debian")),
                ("usr/lib/a.txt", Some("a")),
            ]),
            layer(&[
                ("etc/os-release", Some("patched")),
                ("usr/lib/b.txt", Some("b")),
            ]),
        ])
        .unwrap();
        assert_eq!(view.read_file("/etc/os-release").unwrap(), b"patched");
        assert_eq!(view.read_file("usr/lib/../lib/a.txt").unwrap(), b"a");
        assert_eq!(view.read_dir("/usr/lib").unwrap(), vec!["a.txt", "b.txt"]);
        assert_eq!(view.read_dir("/").unwrap(), vec!["etc", "usr"]);
        assert!(view.read_file("/nope").is_err());
    }

    #[test]
    fn whiteouts_hide_lower_files_and_directories() {
        let view = ImageView::new(vec![
            layer(&[
                ("site/", None),
                ("site/urllib3/", None),
                ("site/urllib3/__init__.py", Some("old")),
                (
                    "site/urllib3-1.26.4.dist-info/METADATA",
                    Some("Version: 1.26.4"),
                ),
                ("keep.txt", Some("k")),
            ]),
            layer(&[
                ("site/.wh.urllib3-1.26.4.dist-info", Some("")),
                (
                    "site/urllib3-1.26.5.dist-info/METADATA",
                    Some("Version: 1.26.5"),
                ),
                ("site/.wh.urllib3", Some("")),
                ("site/urllib3/", None),
                ("site/urllib3/new.py", Some("new")),
            ]),
        ])
        .unwrap();
        assert_eq!(
            view.read_dir("/site").unwrap(),
            vec!["urllib3", "urllib3-1.26.5.dist-info"]
        );
        assert_eq!(view.read_dir("/site/urllib3").unwrap(), vec!["new.py"]);
        assert!(
            view.stat("/site/urllib3-1.26.4.dist-info/METADATA")
                .is_none()
        );
        assert_eq!(view.read_file("/keep.txt").unwrap(), b"k");
    }

    #[test]
    fn opaque_directories_drop_lower_children_only() {
        let view = ImageView::new(vec![
            layer(&[("d/", None), ("d/old", Some("o")), ("d/sub/x", Some("x"))]),
            layer(&[
                ("d/", None),
                ("d/.wh..wh..opq", Some("")),
                ("d/new", Some("n")),
            ]),
        ])
        .unwrap();
        assert_eq!(view.read_dir("/d").unwrap(), vec!["new"]);
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let view = ImageView::new(vec![layer(&[
            ("usr/lib/python3.11/os.py", Some("os")),
            ("lib", Some("->usr/lib")),
            ("usr/bin/python3", Some("->python3.11")),
            ("usr/bin/python3.11", Some("ELF")),
            ("escape", Some("->../../../usr/lib/python3.11/os.py")),
            ("loop", Some("->loop")),
        ])])
        .unwrap();
        assert_eq!(view.read_file("/lib/python3.11/os.py").unwrap(), b"os");
        assert_eq!(view.read_dir("/lib").unwrap(), vec!["python3.11"]);
        assert_eq!(view.read_file("/usr/bin/python3").unwrap(), b"ELF");
        assert_eq!(
            view.stat("/usr/bin/python3").unwrap().kind,
            EntryKind::Symlink
        );
        assert_eq!(view.read_file("/escape").unwrap(), b"os");
        assert!(view.read_file("/loop").is_err());
    }

    #[test]
    fn read_dir_keeps_siblings_that_sort_inside_a_subtree() {
        let view = ImageView::new(vec![layer(&[
            ("usr/", None),
            ("usr/x", Some("")),
            ("usr-old/y", Some("")),
            ("usr.d/z", Some("")),
        ])])
        .unwrap();
        assert_eq!(view.read_dir("/").unwrap(), vec!["usr", "usr-old", "usr.d"]);
    }

    #[test]
    fn find_prunes_and_matches_last_component() {
        let view = ImageView::new(vec![layer(&[
            ("app/venv/pyvenv.cfg", Some("")),
            ("opt/x/node_modules/y/pyvenv.cfg", Some("")),
            ("srv/pyvenv.cfg.bak", Some("")),
        ])])
        .unwrap();
        assert_eq!(
            view.find("/", "pyvenv.cfg", &["node_modules".into()]),
            vec!["/app/venv/pyvenv.cfg"]
        );
    }

    #[test]
    fn hard_links_share_content() {
        let file = tempfile::tempfile().unwrap();
        let mut builder = tar::Builder::new(file);
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o755);
        builder
            .append_data(&mut header, "bin/a", &b"hi"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Link);
        link.set_size(0);
        builder.append_link(&mut link, "bin/b", "bin/a").unwrap();
        let view = ImageView::new(vec![
            LayerTar::whole(builder.into_inner().unwrap()).unwrap(),
        ])
        .unwrap();
        assert_eq!(view.read_file("/bin/b").unwrap(), b"hi");
    }
}
