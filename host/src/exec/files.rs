//! Changes the host makes itself, without a container: members of a package artifact placed by
//! a `fetch` step, bytes from a `write` step, and what a `tooling` step's container produced.
//! Each becomes a layer diff (a tar with OCI whiteouts) that the patch layer squashes together
//! with the diffs of the containers.
//!
//! Every path stays inside the image: it must be absolute, `..` never leaves the root, and
//! directory symlinks of the image are followed the way a package manager would (a .deb's
//! `lib/x` lands in `/usr/lib/x` when `/lib` links there), so a diff never turns an image's
//! symlink into a directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

use crate::image::{EntryKind, ImageView, LayerTar, StepDiff};
use crate::index::{Artifact, EntryKind as MemberKind, PREALLOCATE_AT_MOST};
use crate::plugin::{Placement, WriteStep};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const DEFAULT_DIR_MODE: u32 = 0o755;
const DEFAULT_FILE_MODE: u32 = 0o644;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Directory,
    File(Vec<u8>),
    Symlink(String),
    HardLink(String),
    /// An OCI whiteout or opaque marker (an empty file with a reserved name).
    Marker,
}

#[derive(Clone, Debug)]
struct Placed {
    item: Item,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The changes of one host-made step, keyed by absolute path.
pub struct Diff<'a> {
    view: &'a ImageView,
    entries: BTreeMap<String, Placed>,
}

impl<'a> Diff<'a> {
    pub fn new(view: &'a ImageView) -> Self {
        Diff {
            view,
            entries: BTreeMap::new(),
        }
    }

    /// Where `path` really lands in the image (directory symlinks followed).
    fn land(&self, path: &str) -> Result<String> {
        if !path.starts_with('/') {
            bail!("{path:?} is not an absolute path");
        }
        if path.split('/').any(|c| c == "..") {
            bail!("{path:?} climbs out of its directory");
        }
        self.view.real_path(path)
    }

    /// What the image has at `path`, unless this diff already removed or replaced it (or a
    /// directory above it).
    fn in_image(&self, path: &str) -> Option<&crate::image::Entry> {
        let mut current = path;
        while let Some((dir, name)) = current.rsplit_once('/') {
            let dir_key = if dir.is_empty() { "" } else { dir };
            if self
                .entries
                .contains_key(&format!("{dir_key}/{WHITEOUT_PREFIX}{name}"))
                || (current != path
                    && self
                        .entries
                        .contains_key(&format!("{current}/{OPAQUE_MARKER}")))
            {
                return None;
            }
            current = dir;
        }
        self.view.stat(path)
    }

    fn is_directory(&self, path: &str) -> bool {
        match self.entries.get(path) {
            Some(placed) => placed.item == Item::Directory,
            None => self
                .in_image(path)
                .is_some_and(|e| e.kind == EntryKind::Directory),
        }
    }

    /// Creates the missing directories above `path`, owned like the placement.
    fn parents(&mut self, path: &str, uid: u32, gid: u32) {
        let mut dir = String::new();
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for component in &components[..components.len().saturating_sub(1)] {
            dir.push('/');
            dir.push_str(component);
            if !self.is_directory(&dir) {
                self.insert(dir.clone(), Item::Directory, DEFAULT_DIR_MODE, uid, gid);
            }
        }
    }

    fn insert(&mut self, path: String, item: Item, mode: u32, uid: u32, gid: u32) {
        self.entries.insert(
            path,
            Placed {
                item,
                mode,
                uid,
                gid,
            },
        );
    }

    fn place(&mut self, path: &str, item: Item, mode: u32, uid: u32, gid: u32) -> Result<()> {
        let landed = self.land(path)?;
        self.parents(&landed, uid, gid);
        // A directory placed over an existing one keeps that one's mode unless told otherwise
        // by the caller, which passes the mode it wants.
        self.insert(landed, item, mode, uid, gid);
        Ok(())
    }

    pub fn file(
        &mut self,
        path: &str,
        bytes: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<()> {
        self.place(path, Item::File(bytes), mode, uid, gid)
    }

    /// A directory the image already has stays as it is (mode and owner), and so does a
    /// symlink to one (merged /usr's /lib), as with dpkg.
    pub fn directory(&mut self, path: &str, mode: u32, uid: u32, gid: u32) -> Result<()> {
        let landed = self.land(path)?;
        if self.is_directory(&landed) {
            return Ok(());
        }
        if self
            .in_image(&landed)
            .is_some_and(|e| e.kind == EntryKind::Symlink)
            && let Ok(target) = self.view.real_path_followed(&landed)
            && self.is_directory(&target)
        {
            return Ok(());
        }
        self.place(path, Item::Directory, mode, uid, gid)
    }

    pub fn symlink(&mut self, path: &str, target: &str, uid: u32, gid: u32) -> Result<()> {
        self.place(path, Item::Symlink(target.to_string()), 0o777, uid, gid)
    }

    /// Removes `path` from the image (a whiteout), and whatever this diff placed there.
    pub fn remove(&mut self, path: &str) -> Result<()> {
        let landed = self.land(path)?;
        self.drop_below(&landed);
        self.entries.remove(&landed);
        if self.in_image(&landed).is_some() {
            let (dir, name) = landed.rsplit_once('/').unwrap_or(("", &landed));
            let marker = format!("{dir}/{WHITEOUT_PREFIX}{name}");
            self.insert(marker, Item::Marker, 0o644, 0, 0);
        }
        Ok(())
    }

    /// Hides everything the image has below the directory `path` (an opaque directory), so that
    /// only what this diff places there remains; `path` keeps its mode and owner.
    pub fn replace_directory(&mut self, path: &str, uid: u32, gid: u32) -> Result<()> {
        let landed = self.land(path)?;
        self.drop_below(&landed);
        let existing = self
            .in_image(&landed)
            .filter(|e| e.kind == EntryKind::Directory)
            .map(|e| e.mode);
        let mode = match existing {
            Some(existing_mode) => {
                self.insert(
                    format!("{landed}/{OPAQUE_MARKER}"),
                    Item::Marker,
                    0o644,
                    0,
                    0,
                );
                existing_mode & 0o7777
            }
            None => DEFAULT_DIR_MODE,
        };
        self.parents(&landed, uid, gid);
        self.insert(landed, Item::Directory, mode, uid, gid);
        Ok(())
    }

    fn drop_below(&mut self, dir: &str) {
        let prefix = format!("{dir}/");
        self.entries.retain(|k, _| !k.starts_with(&prefix));
    }

    /// Writes the diff as a layer tar in `workdir`.
    pub fn into_step_diff(self, workdir: &Path) -> Result<StepDiff> {
        let file = tempfile::tempfile_in(workdir).context("creating a diff file")?;
        let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
        for (path, placed) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(placed.mode);
            header.set_uid(placed.uid.into());
            header.set_gid(placed.gid.into());
            header.set_mtime(0);
            let name = &path[1..];
            match &placed.item {
                Item::Directory => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{name}/"), std::io::empty())?;
                }
                Item::File(bytes) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(bytes.len() as u64);
                    builder.append_data(&mut header, name, bytes.as_slice())?;
                }
                Item::Marker => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(0);
                    builder.append_data(&mut header, name, std::io::empty())?;
                }
                Item::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, name, target)?;
                }
                Item::HardLink(target) => {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_size(0);
                    builder.append_link(&mut header, name, &target[1..])?;
                }
            }
        }
        let file = builder
            .into_inner()?
            .into_inner()
            .map_err(|e| anyhow!("writing a diff file: {e}"))?;
        Ok(StepDiff {
            tar: LayerTar::whole(file)?,
            exclude: Vec::new(),
        })
    }
}

/// The diff of a `fetch` or `download` step: the placements of `artifact`'s members.
pub fn place<'a>(
    placements: &[Placement],
    artifact: &Artifact,
    view: &'a ImageView,
) -> Result<Diff<'a>> {
    let mut diff = Diff::new(view);
    for placement in placements {
        let (uid, gid) = (placement.uid, placement.gid);
        let member = placement
            .member
            .trim_start_matches("./")
            .trim_start_matches('/');
        if member.is_empty() || member.ends_with('/') {
            if placement.replace {
                diff.replace_directory(&placement.path, uid, gid)?;
            } else {
                diff.directory(&placement.path, DEFAULT_DIR_MODE, uid, gid)?;
            }
            let base = placement.path.trim_end_matches('/');
            let mut placed = 0;
            for (relative, entry) in artifact.entries_below(member) {
                let path = format!("{base}/{relative}");
                match &entry.kind {
                    MemberKind::Directory => {
                        diff.directory(&path, entry.mode.unwrap_or(DEFAULT_DIR_MODE), uid, gid)?
                    }
                    MemberKind::File(bytes) => {
                        let mode = placement.mode.or(entry.mode).unwrap_or(DEFAULT_FILE_MODE);
                        diff.file(&path, bytes.clone(), mode, uid, gid)?;
                    }
                    MemberKind::Symlink(target) => diff.symlink(&path, target, uid, gid)?,
                    MemberKind::HardLink(target) => {
                        // A link inside the placed tree stays a link; one to elsewhere in the
                        // archive becomes a copy, since the target is not placed.
                        match target.strip_prefix(member) {
                            Some(inside) if artifact.entry(target).is_some() => {
                                let landed = diff.land(&format!("{base}/{inside}"))?;
                                diff.place(&path, Item::HardLink(landed), 0o644, uid, gid)?;
                            }
                            _ => {
                                let bytes = artifact.read_member(target)?;
                                let mode =
                                    placement.mode.or(entry.mode).unwrap_or(DEFAULT_FILE_MODE);
                                diff.file(&path, bytes, mode, uid, gid)?;
                            }
                        }
                    }
                }
                placed += 1;
            }
            if placed == 0 {
                bail!("{}: no members below {member:?}", artifact.url);
            }
        } else {
            let bytes = artifact.read_member(member).map_err(|e| anyhow!("{e}"))?;
            let mode = placement
                .mode
                .or(artifact.entry(member).and_then(|e| e.mode))
                .unwrap_or(DEFAULT_FILE_MODE);
            if placement.replace {
                diff.remove(&placement.path)?;
            }
            diff.file(&placement.path, bytes, mode, uid, gid)?;
        }
    }
    Ok(diff)
}

/// The diff of a `write` step.
pub fn write<'a>(step: &WriteStep, view: &'a ImageView) -> Result<Diff<'a>> {
    let mut diff = Diff::new(view);
    match &step.contents {
        Some(bytes) => diff.file(&step.path, bytes.clone(), step.mode, step.uid, step.gid)?,
        None => diff.remove(&step.path)?,
    }
    Ok(diff)
}

/// The tar of `path` as the image has it (a file, or a directory with everything below it),
/// named by its absolute path, for copying into a container at "/".
pub fn image_tree(view: &ImageView, path: &str) -> Result<Vec<u8>> {
    let root = view.real_path(path)?;
    let top = view
        .stat(&root)
        .ok_or_else(|| anyhow!("{path}: not in the image"))?
        .clone();
    let below: Vec<(String, crate::image::Entry)> = if top.kind == EntryKind::Directory {
        view.walk(&root)
            .map(|(p, e)| (p.to_string(), e.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let mut builder = tar::Builder::new(Vec::new());
    for (entry_path, entry) in std::iter::once((root.clone(), top)).chain(below) {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode & 0o7777);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(0);
        let name = &entry_path[1..];
        match entry.kind {
            EntryKind::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{name}/"), std::io::empty())?;
            }
            EntryKind::File => {
                let bytes = view.read_file(&entry_path)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, name, bytes.as_slice())?;
            }
            EntryKind::Symlink => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                let target = entry.link_target.clone().unwrap_or_default();
                builder.append_link(&mut header, name, target)?;
            }
            EntryKind::Other => {}
        }
    }
    Ok(builder.into_inner()?)
}

/// Adds what a container produced (a tar as the Docker archive API returns it: the copied
/// file or directory under its own name) at `to`. A directory replaces the one there: files
/// the image has below `to` and the output lacks are removed.
pub fn container_output(
    diff: &mut Diff<'_>,
    archive: impl Read,
    to: &str,
    mode: Option<u32>,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let mut archive = tar::Archive::new(archive);
    let mut produced = std::collections::BTreeSet::new();
    let mut is_directory = false;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let relative = raw
            .trim_end_matches('/')
            .split_once('/')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default();
        if relative.split('/').any(|c| c == "..") {
            bail!("the container's output {raw:?} climbs out of {to}");
        }
        let path = if relative.is_empty() {
            to.trim_end_matches('/').to_string()
        } else {
            format!("{}/{relative}", to.trim_end_matches('/'))
        };
        let entry_mode = entry.header().mode().unwrap_or(DEFAULT_FILE_MODE) & 0o7777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                if relative.is_empty() {
                    is_directory = true;
                }
                diff.directory(&path, entry_mode, uid, gid)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // The header's size is the container's word: reserve at most a little up front.
                let mut bytes = Vec::with_capacity(entry.size().min(PREALLOCATE_AT_MOST) as usize);
                entry.read_to_end(&mut bytes)?;
                let mode = if relative.is_empty() {
                    mode.unwrap_or(entry_mode)
                } else {
                    entry_mode
                };
                diff.file(&path, bytes, mode, uid, gid)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default();
                diff.symlink(&path, &target, uid, gid)?;
            }
            _ => continue,
        }
        produced.insert(diff.land(&path)?);
    }
    if is_directory {
        let root = diff.land(to.trim_end_matches('/'))?;
        let gone: Vec<String> = diff
            .view
            .walk(&root)
            .map(|(path, _)| path.to_string())
            .filter(|path| !produced.contains(path))
            .collect();
        let mut removed: Vec<String> = Vec::new();
        for path in gone {
            // Below a removed directory, the whiteout of the directory covers everything.
            if removed
                .iter()
                .any(|dir| path.starts_with(&format!("{dir}/")))
            {
                continue;
            }
            diff.remove(&path)?;
            removed.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(entries: &[(&str, Option<&str>)]) -> ImageView {
        // (path, symlink target); paths ending in "/" are directories.
        let mut builder = tar::Builder::new(Vec::new());
        for (path, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            match link {
                Some(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    builder.append_link(&mut header, path, target).unwrap();
                }
                None if path.ends_with('/') => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o750);
                    builder
                        .append_data(&mut header, path, std::io::empty())
                        .unwrap();
                }
                None => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    builder
                        .append_data(&mut header, path, std::io::empty())
                        .unwrap();
                }
            }
        }
        let bytes = builder.into_inner().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        ImageView::new(vec![LayerTar::whole(file).unwrap()]).unwrap()
    }

    fn listing(diff: &Diff<'_>) -> Vec<String> {
        diff.entries
            .iter()
            .map(|(path, placed)| match &placed.item {
                Item::Directory => format!("{path}/ {:o} {}", placed.mode, placed.uid),
                Item::File(bytes) => format!(
                    "{path} {:o} {} {}",
                    placed.mode,
                    placed.uid,
                    String::from_utf8_lossy(bytes)
                ),
                Item::Symlink(t) => format!("{path} -> {t}"),
                Item::HardLink(t) => format!("{path} => {t}"),
                Item::Marker => path.clone(),
            })
            .collect()
    }

    fn npm_tarball() -> Artifact {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            Default::default(),
        ));
        for (path, contents, mode) in [
            (
                "package/package.json",
                &b"{\"version\":\"6.7.3\"}"[..],
                0o644,
            ),
            ("package/lib/index.js", &b"js"[..], 0o600),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(mode);
            builder.append_data(&mut header, path, contents).unwrap();
        }
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        Artifact::from_bytes("https://r/qs.tgz", &bytes, None).unwrap()
    }

    #[test]
    fn fetch_replaces_a_package_directory_with_an_opaque_one() {
        let view = view(&[
            ("app/", None),
            ("app/node_modules/", None),
            ("app/node_modules/qs/", None),
            ("app/node_modules/qs/old.js", None),
        ]);
        let placements = [Placement {
            member: "package/".into(),
            path: "/app/node_modules/qs".into(),
            mode: None,
            uid: 1000,
            gid: 1000,
            replace: true,
        }];
        let diff = place(&placements, &npm_tarball(), &view).unwrap();
        assert_eq!(
            listing(&diff),
            [
                "/app/node_modules/qs/ 750 1000",
                "/app/node_modules/qs/.wh..wh..opq",
                "/app/node_modules/qs/lib/ 755 1000",
                "/app/node_modules/qs/lib/index.js 600 1000 js",
                "/app/node_modules/qs/package.json 644 1000 {\"version\":\"6.7.3\"}",
            ]
        );
        let layer = diff.into_step_diff(&std::env::temp_dir()).unwrap();
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(layer.tar.reader().unwrap());
        for entry in archive.entries().unwrap() {
            names.push(entry.unwrap().path().unwrap().display().to_string());
        }
        assert_eq!(names[0], "app/node_modules/qs/");
        assert_eq!(names.len(), 5);
    }

    #[test]
    fn new_directories_are_created_and_image_symlinks_followed() {
        // merged /usr: /lib -> usr/lib
        let view = view(&[("usr/", None), ("usr/lib/", None), ("lib", Some("usr/lib"))]);
        let mut diff = Diff::new(&view);
        diff.file("/lib/x86_64/libz.so.1", b"z".to_vec(), 0o644, 0, 0)
            .unwrap();
        assert_eq!(
            listing(&diff),
            [
                "/usr/lib/x86_64/ 755 0",
                "/usr/lib/x86_64/libz.so.1 644 0 z"
            ]
        );
        assert!(diff.file("relative", Vec::new(), 0o644, 0, 0).is_err());
        assert!(
            diff.file("/a/../../etc/passwd", Vec::new(), 0o644, 0, 0)
                .is_err()
        );
    }

    #[test]
    fn write_and_remove() {
        let view = view(&[("etc/", None), ("etc/old.conf", None)]);
        let step = |path: &str, contents: Option<&[u8]>| WriteStep {
            description: String::new(),
            path: path.into(),
            contents: contents.map(<[u8]>::to_vec),
            mode: 0o640,
            uid: 0,
            gid: 42,
            updates: vec![],
        };
        assert_eq!(
            listing(&write(&step("/etc/new.conf", Some(b"x")), &view).unwrap()),
            ["/etc/new.conf 640 0 x"]
        );
        assert_eq!(
            listing(&write(&step("/etc/old.conf", None), &view).unwrap()),
            ["/etc/.wh.old.conf"]
        );
        // Removing what the image does not have changes nothing.
        assert!(listing(&write(&step("/etc/none", None), &view).unwrap()).is_empty());
    }

    #[test]
    fn a_directory_output_replaces_the_directory() {
        let view = view(&[
            ("src/", None),
            ("src/go.mod", None),
            ("src/gone.go", None),
            ("src/old/", None),
            ("src/old/a.go", None),
        ]);
        let mut archive = tar::Builder::new(Vec::new());
        for (path, contents) in [("src/", None), ("src/go.mod", Some(&b"module x"[..]))] {
            let mut header = tar::Header::new_gnu();
            match contents {
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_mode(0o755);
                    archive
                        .append_data(&mut header, path, std::io::empty())
                        .unwrap();
                }
                Some(bytes) => {
                    header.set_size(bytes.len() as u64);
                    header.set_mode(0o644);
                    archive.append_data(&mut header, path, bytes).unwrap();
                }
            }
        }
        let bytes = archive.into_inner().unwrap();
        let mut diff = Diff::new(&view);
        container_output(&mut diff, bytes.as_slice(), "/src", None, 1000, 1000).unwrap();
        assert_eq!(
            listing(&diff),
            // The directory the image has stays as it is.
            [
                "/src/.wh.gone.go",
                "/src/.wh.old",
                "/src/go.mod 644 1000 module x",
            ]
        );
    }
}
