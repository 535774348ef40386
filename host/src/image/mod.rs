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
        for transport in [
            "docker://",
            "docker-archive:",
            "oci-archive:",
            "containers-storage:",
            "dir:",
        ] {
            if s.starts_with(transport) {
                bail!(
                    "image {s}: the {} transport is not supported yet (supported: a plain reference or docker-daemon:REF for the local daemon, oci:DIR[:TAG])",
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
        }
    }
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
                })
            }
            ImageRef::OciLayout { dir, tag } => {
                let (dir, tag, workdir) = (dir.clone(), tag.clone(), workdir.to_path_buf());
                let image =
                    tokio::task::spawn_blocking(move || oci::read(&dir, tag.as_deref(), &workdir))
                        .await?
                        .with_context(|| format!("image {reference}"))?;
                Ok(SourceImage {
                    reference: reference.clone(),
                    config: image.config,
                    layers: image.layers,
                    daemon_id: None,
                    manifest: Some(image.manifest),
                })
            }
        }
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
    /// image ID (config digest) in the daemon, the manifest digest in an OCI layout.
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
                let mut manifest = self.manifest.clone().ok_or_else(|| {
                    anyhow!("an image from the daemon cannot be written to an OCI layout yet")
                })?;
                if self.previous_patch().is_some()
                    && let Some(layers) = manifest["layers"].as_array_mut()
                {
                    layers.pop();
                }
                let tag = tag.clone().unwrap_or_else(|| "latest".into());
                return oci::write(
                    dir,
                    &manifest,
                    config,
                    &layer.blob,
                    &layer.digest,
                    layer.compressed_size,
                    &tag,
                );
            }
        }
        Ok(image_id)
    }
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
