//! Images: references, where they are read from and written to, the merged read-only view of
//! their layers, and the patch layer.

mod archive;
pub mod daemon;
pub mod layer;
mod oci;
pub mod view;

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use layer::{PatchLayer, StepDiff};
pub use view::{Entry, EntryKind, ImageView, LayerTar};

/// Where an image lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// The local Docker daemon (`docker-daemon:REF` or a plain reference).
    Daemon(String),
    /// An OCI image layout directory (`oci:DIR[:TAG]`).
    OciLayout { dir: PathBuf, tag: Option<String> },
    /// A `docker save` tarball (`docker-archive:FILE[:REF]`); REF picks one of several images.
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    /// An OCI layout in a tarball (`oci-archive:FILE[:TAG]`).
    OciArchive { path: PathBuf, tag: Option<String> },
}

/// `FILE[:REST]` of an archive transport: the file ends at the first colon.
fn file_and_name(s: &str, rest: &str, transport: &str) -> Result<(PathBuf, Option<String>)> {
    let (file, name) = match rest.split_once(':') {
        Some((file, name)) if !name.is_empty() => (file, Some(name.to_string())),
        _ => (rest.trim_end_matches(':'), None),
    };
    if file.is_empty() {
        bail!("image {s}: {transport}: needs a file ({transport}:FILE[:NAME])");
    }
    Ok((PathBuf::from(file), name))
}

impl std::str::FromStr for ImageRef {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => {
                    (dir, Some(tag.to_string()))
                }
                _ => (rest, None),
            };
            if dir.is_empty() {
                bail!("image {s}: oci: needs a directory (oci:DIR[:TAG])");
            }
            return Ok(ImageRef::OciLayout {
                dir: PathBuf::from(dir),
                tag,
            });
        }
        if let Some(rest) = s.strip_prefix("docker-daemon:") {
            return Ok(ImageRef::Daemon(rest.to_string()));
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (path, reference) = file_and_name(s, rest, "docker-archive")?;
            return Ok(ImageRef::DockerArchive { path, reference });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = file_and_name(s, rest, "oci-archive")?;
            return Ok(ImageRef::OciArchive { path, tag });
        }
        for transport in ["docker://", "containers-storage:", "dir:"] {
            if s.starts_with(transport) {
                bail!(
                    "image {s}: the {} transport is not supported yet (supported: a plain reference or docker-daemon:REF for the local daemon, oci:DIR[:TAG], docker-archive:FILE[:REF], oci-archive:FILE[:TAG])",
                    transport.trim_end_matches([':', '/'])
                );
            }
        }
        if s.is_empty() {
            bail!("empty image reference");
        }
        Ok(ImageRef::Daemon(s.to_string()))
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageRef::Daemon(r) => f.write_str(r),
            ImageRef::OciLayout {
                dir,
                tag: Some(tag),
            } => write!(f, "oci:{}:{tag}", dir.display()),
            ImageRef::OciLayout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            ImageRef::DockerArchive { path, reference } => {
                write!(f, "docker-archive:{}", path.display())?;
                reference.iter().try_for_each(|r| write!(f, ":{r}"))
            }
            ImageRef::OciArchive { path, tag } => {
                write!(f, "oci-archive:{}", path.display())?;
                tag.iter().try_for_each(|t| write!(f, ":{t}"))
            }
        }
    }
}

impl ImageRef {
    /// The reference the patched image gets: `-t` (a full reference, or a tag on the same
    /// repository), else the source tag plus `-<suffix>`.
    pub fn patched(&self, tag: Option<&str>, suffix: &str) -> Result<ImageRef> {
        match self {
            ImageRef::Daemon(reference) => {
                let (repository, source_tag) = split_reference(reference);
                if let Some(tag) = tag {
                    return Ok(ImageRef::Daemon(if tag.contains(['/', ':']) {
                        tag.to_string()
                    } else {
                        format!("{repository}:{tag}")
                    }));
                }
                if reference.starts_with("sha256:")
                    || (reference.len() >= 12 && reference.chars().all(|c| c.is_ascii_hexdigit()))
                {
                    bail!("image {reference} is an ID; name the patched image with -t");
                }
                Ok(ImageRef::Daemon(format!(
                    "{repository}:{}-{suffix}",
                    source_tag.unwrap_or("latest")
                )))
            }
            ImageRef::OciLayout {
                dir,
                tag: source_tag,
            } => {
                let tag = match tag {
                    Some(tag) => tag.to_string(),
                    None => format!("{}-{suffix}", source_tag.as_deref().unwrap_or("latest")),
                };
                Ok(ImageRef::OciLayout {
                    dir: dir.clone(),
                    tag: Some(tag),
                })
            }
            // An archive is one file: the patched image goes into a new file beside it
            // (app.tar -> app-patched.tar), never into the original.
            ImageRef::DockerArchive { path, reference } => Ok(ImageRef::DockerArchive {
                path: sibling(path, suffix),
                reference: match (tag, reference) {
                    (Some(tag), _) if tag.contains(['/', ':']) => Some(tag.to_string()),
                    (Some(tag), Some(reference)) => {
                        Some(format!("{}:{tag}", split_reference(reference).0))
                    }
                    (Some(tag), None) => Some(format!("patched:{tag}")),
                    (None, Some(reference)) => {
                        let (repository, source_tag) = split_reference(reference);
                        Some(format!(
                            "{repository}:{}-{suffix}",
                            source_tag.unwrap_or("latest")
                        ))
                    }
                    (None, None) => None,
                },
            }),
            ImageRef::OciArchive { path, tag: source } => Ok(ImageRef::OciArchive {
                path: sibling(path, suffix),
                tag: Some(match tag {
                    Some(tag) => tag.to_string(),
                    None => format!("{}-{suffix}", source.as_deref().unwrap_or("latest")),
                }),
            }),
        }
    }
}

/// `dir/app.tar` -> `dir/app-SUFFIX.tar`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{suffix}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{suffix}"),
    };
    path.with_file_name(name)
}

/// `repo/name:tag@digest` -> (`repo/name`, `tag`); a registry port is not a tag.
pub fn split_reference(reference: &str) -> (&str, Option<&str>) {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (without_digest, None),
    }
}

/// An image opened for patching.
pub struct SourceImage {
    pub reference: ImageRef,
    pub config: Vec<u8>,
    /// Uncompressed layer tars, base first.
    pub layers: Vec<LayerTar>,
    /// The image ID in the daemon, when the image is there.
    pub daemon_id: Option<String>,
    /// The manifest, for images read from an OCI layout.
    manifest: Option<Value>,
    /// An oci-archive unpacked into the run's work directory: the patched image is added to it
    /// and the whole layout archived again.
    unpacked_layout: Option<PathBuf>,
}

impl SourceImage {
    pub async fn open(
        reference: &ImageRef,
        docker: Option<&Docker>,
        workdir: &Path,
    ) -> Result<SourceImage> {
        match reference {
            ImageRef::Daemon(name) => {
                let docker = docker.ok_or_else(|| {
                    anyhow!("image {name} is in the Docker daemon, which is not reachable")
                })?;
                let id = daemon::image_id(docker, name).await?;
                let saved = daemon::save(docker, &id, workdir).await?;
                Ok(SourceImage {
                    reference: reference.clone(),
                    config: saved.config,
                    layers: saved.layers,
                    daemon_id: Some(id),
                    manifest: None,
                    unpacked_layout: None,
                })
            }
            ImageRef::OciLayout { dir, tag } => {
                Self::open_layout(reference, dir.clone(), tag.clone(), workdir, None).await
            }
            ImageRef::OciArchive { path, tag } => {
                let dir = workdir.join("oci-archive");
                let (archive, target) = (path.clone(), dir.clone());
                tokio::task::spawn_blocking(move || unpack(&archive, &target))
                    .await?
                    .with_context(|| format!("image {reference}"))?;
                Self::open_layout(reference, dir.clone(), tag.clone(), workdir, Some(dir)).await
            }
            ImageRef::DockerArchive {
                path,
                reference: name,
            } => {
                let file = File::open(path)
                    .with_context(|| format!("image {reference}: opening {}", path.display()))?;
                let (name, workdir) = (name.clone(), workdir.to_path_buf());
                let image = tokio::task::spawn_blocking(move || {
                    archive::read(file, name.as_deref(), &workdir)
                })
                .await?
                .with_context(|| format!("image {reference}"))?;
                Ok(SourceImage {
                    reference: reference.clone(),
                    config: image.config,
                    layers: image.layers,
                    daemon_id: None,
                    manifest: None,
                    unpacked_layout: None,
                })
            }
        }
    }

    async fn open_layout(
        reference: &ImageRef,
        dir: PathBuf,
        tag: Option<String>,
        workdir: &Path,
        unpacked_layout: Option<PathBuf>,
    ) -> Result<SourceImage> {
        let workdir = workdir.to_path_buf();
        let image = tokio::task::spawn_blocking(move || oci::read(&dir, tag.as_deref(), &workdir))
            .await?
            .with_context(|| format!("image {reference}"))?;
        Ok(SourceImage {
            reference: reference.clone(),
            config: image.config,
            layers: image.layers,
            daemon_id: None,
            manifest: Some(image.manifest),
            unpacked_layout,
        })
    }

    pub fn view(&self) -> Result<ImageView> {
        ImageView::new(self.layers.clone())
    }

    /// The position of copa-host's own patch layer, when this image is one copa-host patched:
    /// its label names the top layer.
    pub fn previous_patch(&self) -> Option<usize> {
        let config: Value = serde_json::from_slice(&self.config).ok()?;
        let label = config["config"]["Labels"][PATCHED_LABEL].as_str()?;
        let diff_ids = self.diff_ids().ok()?;
        (diff_ids.last().map(String::as_str) == Some(label) && diff_ids.len() == self.layers.len())
            .then(|| diff_ids.len() - 1)
    }

    /// The layers a new patch layer goes on: all of them, except an earlier copa-host patch
    /// layer, whose changes the new layer takes over (see [`Self::previous_patch_layer`]).
    pub fn base_view(&self) -> Result<ImageView> {
        let keep = self.previous_patch().unwrap_or(self.layers.len());
        ImageView::new(self.layers[..keep].to_vec())
    }

    /// The earlier copa-host patch layer, to be merged under the new changes: re-patching
    /// replaces it instead of stacking another layer.
    pub fn previous_patch_layer(&self) -> Option<LayerTar> {
        self.previous_patch().map(|i| self.layers[i].clone())
    }

    pub fn diff_ids(&self) -> Result<Vec<String>> {
        let config: Value =
            serde_json::from_slice(&self.config).context("parsing the image config")?;
        Ok(config["rootfs"]["diff_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Makes sure the daemon has this image (loading it from its layers when it came from
    /// elsewhere) and returns the reference to run containers from, plus whether it was loaded
    /// for this run only (and must be removed afterwards).
    pub async fn ensure_in_daemon(
        &self,
        docker: &Docker,
        workdir: &Path,
    ) -> Result<(String, bool)> {
        if let Some(id) = &self.daemon_id {
            return Ok((id.clone(), false));
        }
        let id = format!("sha256:{}", hex::encode(Sha256::digest(&self.config)));
        // Already there (the same config was loaded before): use it, and never remove it.
        if daemon::image_id(docker, &id).await.is_ok() {
            return Ok((id, false));
        }
        let diff_ids = self.diff_ids()?;
        let layers: Vec<archive::ArchiveLayer> = diff_ids
            .iter()
            .zip(&self.layers)
            .map(|(diff_id, tar)| archive::ArchiveLayer {
                diff_id,
                content: Some(archive::ArchiveContent::Tar(tar)),
            })
            .collect();
        let path = workdir.join("source-load.tar");
        archive::write(
            std::io::BufWriter::new(File::create(&path)?),
            &self.config,
            &layers,
            None,
        )?;
        daemon::load(docker, &path).await?;
        let _ = std::fs::remove_file(&path);
        Ok((id, true))
    }

    /// The patched image's config: the original with the layer appended, a history entry and
    /// the copa-host label.
    pub fn patched_config(
        &self,
        layer: &PatchLayer,
        created: &str,
        created_by: &str,
    ) -> Result<Vec<u8>> {
        let mut config: Value =
            serde_json::from_slice(&self.config).context("parsing the image config")?;
        let replaces_previous = self.previous_patch().is_some();
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array_mut()
            .ok_or_else(|| anyhow!("image config has no rootfs.diff_ids"))?;
        if replaces_previous {
            diff_ids.pop();
        }
        diff_ids.push(json!(layer.diff_id));
        if !config["history"].is_array() {
            config["history"] = json!([]);
        }
        if let Some(history) = config["history"].as_array_mut() {
            if replaces_previous
                && history
                    .last()
                    .is_some_and(|h| h["comment"] == PATCH_LAYER_COMMENT)
            {
                history.pop();
            }
            history.push(json!({"created": created, "created_by": created_by, "comment": PATCH_LAYER_COMMENT}));
        }
        config["created"] = json!(created);
        if !config["config"].is_object() {
            config["config"] = json!({});
        }
        if !config["config"]["Labels"].is_object() {
            config["config"]["Labels"] = json!({});
        }
        config["config"]["Labels"][PATCHED_LABEL] = json!(layer.diff_id);
        Ok(serde_json::to_vec(&config)?)
    }

    /// Writes the patched image to `target` and returns the digest it is known by there: the
    /// image ID (config digest) in the daemon and in a docker archive, the manifest digest in an
    /// OCI layout or archive.
    pub async fn write_patched(
        &self,
        target: &ImageRef,
        config: &[u8],
        layer: &PatchLayer,
        docker: Option<&Docker>,
        workdir: &Path,
    ) -> Result<String> {
        let image_id = format!("sha256:{}", hex::encode(Sha256::digest(config)));
        match target {
            ImageRef::Daemon(tag) => {
                let docker = docker.ok_or_else(|| anyhow!("the Docker daemon is not reachable"))?;
                let mut diff_ids = self.diff_ids()?;
                if self.previous_patch().is_some() {
                    diff_ids.pop();
                }
                // The daemon already has every original layer (the image came from it or was
                // loaded for the run); only the patch layer travels.
                let mut layers: Vec<archive::ArchiveLayer> = diff_ids
                    .iter()
                    .map(|d| archive::ArchiveLayer {
                        diff_id: d,
                        content: None,
                    })
                    .collect();
                layers.push(archive::ArchiveLayer {
                    diff_id: &layer.diff_id,
                    content: Some(archive::ArchiveContent::Blob(&layer.blob)),
                });
                let path = workdir.join("patched-load.tar");
                archive::write(
                    std::io::BufWriter::new(File::create(&path)?),
                    config,
                    &layers,
                    Some(tag),
                )?;
                daemon::load(docker, &path).await?;
            }
            ImageRef::OciLayout { dir, tag } => {
                return self.write_to_layout(dir, tag, config, layer);
            }
            ImageRef::OciArchive { path, tag } => {
                let dir = self.unpacked_layout.as_ref().ok_or_else(|| {
                    anyhow!("only an image read from an oci-archive can be written to one")
                })?;
                let digest = self.write_to_layout(dir, tag, config, layer)?;
                write_atomically(path, |out| pack(dir, out))?;
                return Ok(digest);
            }
            ImageRef::DockerArchive { path, reference } => {
                let mut diff_ids = self.diff_ids()?;
                let mut originals = self.layers.iter().collect::<Vec<_>>();
                if self.previous_patch().is_some() {
                    diff_ids.pop();
                    originals.pop();
                }
                // A file on its own: every layer travels (uncompressed, as `docker save`
                // writes them).
                let mut layers: Vec<archive::ArchiveLayer> = diff_ids
                    .iter()
                    .zip(originals)
                    .map(|(diff_id, tar)| archive::ArchiveLayer {
                        diff_id,
                        content: Some(archive::ArchiveContent::Tar(tar)),
                    })
                    .collect();
                layers.push(archive::ArchiveLayer {
                    diff_id: &layer.diff_id,
                    content: Some(archive::ArchiveContent::Tar(&layer.tar)),
                });
                write_atomically(path, |out| {
                    archive::write(out, config, &layers, reference.as_deref())
                })?;
            }
        }
        Ok(image_id)
    }

    fn write_to_layout(
        &self,
        dir: &Path,
        tag: &Option<String>,
        config: &[u8],
        layer: &PatchLayer,
    ) -> Result<String> {
        let mut manifest = self.manifest.clone().ok_or_else(|| {
            anyhow!("only an image read from an OCI layout can be written to one")
        })?;
        if self.previous_patch().is_some()
            && let Some(layers) = manifest["layers"].as_array_mut()
        {
            layers.pop();
        }
        let tag = tag.clone().unwrap_or_else(|| "latest".into());
        oci::write(
            dir,
            &manifest,
            config,
            &layer.blob,
            &layer.digest,
            layer.compressed_size,
            &tag,
        )
    }
}

/// Writes `path` through a temporary file beside it, renamed into place when complete: a failed
/// run never leaves half a file.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&mut tempfile::NamedTempFile>) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    {
        let mut out = std::io::BufWriter::new(&mut tmp);
        write(&mut out)?;
        std::io::Write::flush(&mut out)?;
    }
    tmp.persist(path)
        .map_err(|e| anyhow!("writing {}: {}", path.display(), e.error))?;
    Ok(())
}

/// Unpacks a tar (an oci-archive) into `dir`; members may not climb out of it.
fn unpack(archive: &Path, dir: &Path) -> Result<()> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    std::fs::create_dir_all(dir)?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(file));
    for entry in tar.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        // `unpack_in` refuses paths with `..` and absolute paths.
        if !entry.unpack_in(dir)? {
            bail!("{}: a member climbs out of the archive", archive.display());
        }
    }
    Ok(())
}

/// Archives the layout `dir` (sorted names, fixed times) as an oci-archive.
fn pack(dir: &Path, out: &mut impl std::io::Write) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Deterministic);
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for file in files {
        let name = file.strip_prefix(dir).expect("below the layout");
        builder.append_path_with_name(&file, name)?;
    }
    builder.into_inner()?.flush()?;
    Ok(())
}

/// The label copa-host puts on images it patched (value: the patch layer's diff ID).
pub const PATCHED_LABEL: &str = "org.copa-host.patched";

/// The comment of the history entry of copa-host's patch layer.
const PATCH_LAYER_COMMENT: &str = "copa-host patch layer";

/// A layer as an uncompressed tar: gzip layers are unpacked into `workdir` once, since serving
/// files by offset needs random access.
fn uncompressed(layer: LayerTar, workdir: &Path) -> Result<LayerTar> {
    let magic = layer.read_at(0, 4.min(layer.len)).unwrap_or_default();
    if magic.starts_with(&[0x1f, 0x8b]) {
        let mut out = tempfile::tempfile_in(workdir)?;
        let mut decoder = flate2::read::GzDecoder::new(layer.reader()?);
        std::io::copy(&mut decoder, &mut out).context("unpacking a gzip layer")?;
        return LayerTar::whole(out);
    }
    if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        bail!("zstd-compressed layers are not supported yet");
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(
            "python:3.11".parse::<ImageRef>().unwrap(),
            ImageRef::Daemon("python:3.11".into())
        );
        assert_eq!(
            "docker-daemon:x:1".parse::<ImageRef>().unwrap(),
            ImageRef::Daemon("x:1".into())
        );
        assert_eq!(
            "oci:/tmp/layout:v1".parse::<ImageRef>().unwrap(),
            ImageRef::OciLayout {
                dir: "/tmp/layout".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            "oci:/tmp/layout".parse::<ImageRef>().unwrap(),
            ImageRef::OciLayout {
                dir: "/tmp/layout".into(),
                tag: None
            }
        );
        assert!(
            "docker://x"
                .parse::<ImageRef>()
                .unwrap_err()
                .to_string()
                .contains("not supported yet")
        );
        assert_eq!(
            "docker-archive:/tmp/app.tar:app:1.0"
                .parse::<ImageRef>()
                .unwrap(),
            ImageRef::DockerArchive {
                path: "/tmp/app.tar".into(),
                reference: Some("app:1.0".into())
            }
        );
        assert_eq!(
            "oci-archive:app.tar".parse::<ImageRef>().unwrap(),
            ImageRef::OciArchive {
                path: "app.tar".into(),
                tag: None
            }
        );
        assert!("docker-archive:".parse::<ImageRef>().is_err());
        for text in [
            "docker-archive:/tmp/app.tar:app:1.0",
            "oci-archive:a.tar:v1",
        ] {
            assert_eq!(text.parse::<ImageRef>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn an_archive_is_patched_into_a_new_file_beside_it() {
        let archive = |s: &str| s.parse::<ImageRef>().unwrap();
        assert_eq!(
            archive("docker-archive:/d/app.tar:app:1.0")
                .patched(None, "patched")
                .unwrap(),
            archive("docker-archive:/d/app-patched.tar:app:1.0-patched")
        );
        assert_eq!(
            archive("docker-archive:/d/app.tar")
                .patched(Some("fixed"), "patched")
                .unwrap(),
            archive("docker-archive:/d/app-patched.tar:patched:fixed")
        );
        assert_eq!(
            archive("oci-archive:img").patched(None, "p").unwrap(),
            archive("oci-archive:img-p:latest-p")
        );
    }

    #[test]
    fn names_the_patched_image() {
        let daemon = |s: &str| ImageRef::Daemon(s.into());
        assert_eq!(
            daemon("app:1.0").patched(None, "patched").unwrap(),
            daemon("app:1.0-patched")
        );
        assert_eq!(
            daemon("localhost:5000/app")
                .patched(None, "patched")
                .unwrap(),
            daemon("localhost:5000/app:latest-patched")
        );
        assert_eq!(
            daemon("app:1.0").patched(Some("fixed"), "patched").unwrap(),
            daemon("app:fixed")
        );
        assert_eq!(
            daemon("app:1.0")
                .patched(Some("other/app:2"), "patched")
                .unwrap(),
            daemon("other/app:2")
        );
        assert!(daemon("sha256:abcdef").patched(None, "patched").is_err());
    }
}
