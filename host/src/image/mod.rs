//! Images: references, where they are read from and written to, the merged read-only view of
//! their layers, and the patch layer.

mod archive;
pub mod credentials;
pub mod daemon;
pub mod layer;
mod oci;
mod platform;
pub mod registry;
pub mod view;

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::setting::Setting;
pub use layer::{LayerCompression, PatchLayer, StepDiff};
pub use platform::Platform;
use platform::select as select_platform;
pub use registry::{PushCounts, Registry, RegistrySettings};
pub use view::{Entry, EntryKind, ImageView, LayerTar};

/// Where an image lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// A plain reference: the local Docker daemon when it has the image, else the registry.
    Plain(String),
    /// The local Docker daemon only (`docker-daemon:REF`).
    Daemon(String),
    /// A registry only (`docker://REF`).
    Registry(String),
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
        if let Some(rest) = s.strip_prefix("docker://") {
            registry::parse_reference(rest)?;
            return Ok(ImageRef::Registry(rest.to_string()));
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (path, reference) = file_and_name(s, rest, "docker-archive")?;
            return Ok(ImageRef::DockerArchive { path, reference });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = file_and_name(s, rest, "oci-archive")?;
            return Ok(ImageRef::OciArchive { path, tag });
        }
        for transport in ["containers-storage:", "dir:"] {
            if s.starts_with(transport) {
                bail!(
                    "image {s}: the {} transport is not supported yet (supported: a plain reference, docker-daemon:REF, docker://REF, oci:DIR[:TAG], docker-archive:FILE[:REF], oci-archive:FILE[:TAG])",
                    transport.trim_end_matches(':')
                );
            }
        }
        if s.is_empty() {
            bail!("empty image reference");
        }
        Ok(ImageRef::Plain(s.to_string()))
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageRef::Plain(r) | ImageRef::Daemon(r) => f.write_str(r),
            ImageRef::Registry(r) => write!(f, "docker://{r}"),
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

/// `-t` (a full reference, or a tag on the same repository), else the source tag plus
/// `-<suffix>`.
fn patched_reference(reference: &str, tag: Option<&str>, suffix: &str) -> Result<String> {
    let (repository, source_tag) = split_reference(reference);
    if let Some(tag) = tag {
        return Ok(if tag.contains(['/', ':']) {
            tag.to_string()
        } else {
            format!("{repository}:{tag}")
        });
    }
    if reference.starts_with("sha256:")
        || (reference.len() >= 12 && reference.chars().all(|c| c.is_ascii_hexdigit()))
    {
        bail!("image {reference} is an ID; name the patched image with -t");
    }
    Ok(format!(
        "{repository}:{}-{suffix}",
        source_tag.unwrap_or("latest")
    ))
}

impl ImageRef {
    /// The reference the patched image gets: `-t` (a full reference, or a tag on the same
    /// repository), else the source tag plus `-<suffix>`.
    pub fn patched(&self, tag: Option<&str>, suffix: &str) -> Result<ImageRef> {
        match self {
            ImageRef::Plain(reference) | ImageRef::Daemon(reference) => {
                Ok(ImageRef::Daemon(patched_reference(reference, tag, suffix)?))
            }
            ImageRef::Registry(reference) => Ok(ImageRef::Registry(patched_reference(
                reference, tag, suffix,
            )?)),
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
                    (None, Some(reference)) => Some(patched_reference(reference, None, suffix)?),
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

    /// The same image name in a registry (`--push`).
    pub fn in_registry(&self) -> Result<ImageRef> {
        match self {
            ImageRef::Plain(reference) | ImageRef::Daemon(reference) => {
                Ok(ImageRef::Registry(reference.clone()))
            }
            ImageRef::Registry(_) => Ok(self.clone()),
            other => bail!(
                "{} needs an image name for the registry; {other} has none (use {} docker://REF)",
                Setting::Push,
                Setting::OutputImage
            ),
        }
    }

    /// Whether reading or writing this image needs the Docker daemon.
    pub fn needs_daemon(&self) -> bool {
        matches!(self, ImageRef::Daemon(_))
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

/// A blob the patched image consists of, with where its bytes are, for sinks that store blobs
/// (OCI layouts, registries).
pub struct Blob<'a> {
    pub digest: &'a str,
    pub size: u64,
    pub content: BlobContent<'a>,
    /// A blob of the source image (a registry may have it in the source's repository).
    pub from_source: bool,
}

pub enum BlobContent<'a> {
    File(&'a LayerTar),
    Bytes(&'a [u8]),
}

/// A layer as the source distributes it: its descriptor, and the bytes behind it (the
/// compressed blob from a layout or registry, the uncompressed tar from a daemon or archive).
#[derive(Clone)]
struct LayerBlob {
    digest: String,
    content: LayerTar,
}

/// The patched image as sinks that store blobs take it.
pub struct PatchedImage<'a> {
    pub config: &'a [u8],
    pub layer: &'a PatchLayer,
}

/// How images are reached: the daemon (when it runs), registries, and a work directory.
pub struct Stores<'a> {
    pub docker: Option<&'a Docker>,
    pub registry: &'a Registry,
    pub workdir: &'a Path,
}

/// An image opened for patching.
pub struct SourceImage {
    /// Where the image was found (a plain reference resolved to the daemon or the registry).
    pub reference: ImageRef,
    pub config: Vec<u8>,
    /// Uncompressed layer tars, base first.
    pub layers: Vec<LayerTar>,
    /// The layers as distributed, in the same order.
    blobs: Vec<LayerBlob>,
    /// The image ID in the daemon, when the image is there.
    pub daemon_id: Option<String>,
    /// The image manifest: the source's own, or one describing the layers as they are.
    manifest: Value,
    /// An oci-archive unpacked into the run's work directory: the patched image is added to it
    /// and the whole layout archived again.
    unpacked_layout: Option<PathBuf>,
}

impl SourceImage {
    /// Opens an image to patch: for an image index, the images of the `platforms` asked for
    /// (this machine's when none) with the index to rebuild; a single image as it is.
    pub async fn open(
        reference: &ImageRef,
        stores: &Stores<'_>,
        platforms: &[Platform],
    ) -> Result<OpenedImage> {
        let workdir = stores.workdir;
        let (home, index, bytes) = match reference {
            ImageRef::Plain(name) => {
                // The daemon first, as `docker run` would; then the registry.
                if let Some(docker) = stores.docker
                    && let Ok(id) = daemon::image_id(docker, name).await
                {
                    let image =
                        Self::open_daemon(ImageRef::Daemon(name.clone()), docker, id, workdir)
                            .await?;
                    return OpenedImage::single(image, platforms);
                }
                let registry = ImageRef::Registry(name.clone());
                return Box::pin(Self::open(&registry, stores, platforms))
                    .await
                    .map_err(|e| {
                        anyhow!(
                            "image {name} is not in the local Docker daemon{}, and from the registry: {e:#}",
                            if stores.docker.is_none() { " (not reachable)" } else { "" }
                        )
                    });
            }
            ImageRef::Daemon(name) => {
                let docker = stores.docker.ok_or_else(|| {
                    anyhow!("image {name} is in the Docker daemon, which is not reachable")
                })?;
                let id = daemon::image_id(docker, name).await?;
                let image = Self::open_daemon(reference.clone(), docker, id, workdir).await?;
                return OpenedImage::single(image, platforms);
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
                let image = Self::from_tars(reference.clone(), image.config, image.layers, None)?;
                return OpenedImage::single(image, platforms);
            }
            ImageRef::Registry(name) => {
                let remote = registry::parse_reference(name)?;
                let top = stores.registry.top(&remote).await?;
                if !oci::is_index(&top.manifest) {
                    let image =
                        Self::open_registry_manifest(reference, &remote, top.manifest, stores)
                            .await?;
                    return OpenedImage::single(image, platforms);
                }
                (IndexHome::Registry(remote), top.manifest, top.bytes)
            }
            ImageRef::OciLayout { dir, tag } | ImageRef::OciArchive { path: dir, tag } => {
                // An oci-archive is unpacked into the work directory and read as a layout.
                let (dir, unpacked) = match reference {
                    ImageRef::OciArchive { path, .. } => {
                        let dir = workdir.join("oci-archive");
                        let (archive, target) = (path.clone(), dir.clone());
                        tokio::task::spawn_blocking(move || unpack(&archive, &target))
                            .await?
                            .with_context(|| format!("image {reference}"))?;
                        (dir.clone(), Some(dir))
                    }
                    _ => (dir.clone(), None),
                };
                let top = oci::read_top(&dir, tag.as_deref())
                    .with_context(|| format!("image {reference}"))?;
                match top {
                    oci::Top::Manifest(manifest) => {
                        let image =
                            Self::open_layout_manifest(reference, dir, manifest, workdir, unpacked)
                                .await?;
                        return OpenedImage::single(image, platforms);
                    }
                    oci::Top::Index { bytes, index } => {
                        (IndexHome::Layout { dir, unpacked }, index, bytes)
                    }
                }
            }
        };
        let wanted: Vec<Platform> = if platforms.is_empty() {
            vec![Platform::host()]
        } else {
            platforms.to_vec()
        };
        let mut images = Vec::new();
        let mut entries = Vec::new();
        for platform in &wanted {
            let (entry, digest) = select_platform(&index, platform, reference)?;
            let image = match &home {
                IndexHome::Registry(remote) => {
                    let manifest = stores.registry.manifest(remote, digest).await?.manifest;
                    Self::open_registry_manifest(reference, remote, manifest, stores).await?
                }
                IndexHome::Layout { dir, unpacked } => {
                    let manifest = oci::read_manifest(dir, digest)
                        .with_context(|| format!("image {reference}"))?;
                    Self::open_layout_manifest(
                        reference,
                        dir.clone(),
                        manifest,
                        workdir,
                        unpacked.clone(),
                    )
                    .await?
                }
            };
            images.push((platform.clone(), image));
            entries.push(entry);
        }
        Ok(OpenedImage {
            images,
            index: Some(SourceIndex {
                reference: reference.clone(),
                home,
                index,
                bytes,
                entries,
            }),
        })
    }

    async fn open_daemon(
        reference: ImageRef,
        docker: &Docker,
        id: String,
        workdir: &Path,
    ) -> Result<SourceImage> {
        let saved = daemon::save(docker, &id, workdir).await?;
        Self::from_tars(reference, saved.config, saved.layers, Some(id))
    }

    /// An image known only as uncompressed layer tars (daemon, docker archive): each tar is
    /// its own blob, described by an OCI manifest.
    fn from_tars(
        reference: ImageRef,
        config: Vec<u8>,
        layers: Vec<LayerTar>,
        daemon_id: Option<String>,
    ) -> Result<SourceImage> {
        let diff_ids = diff_ids(&config)?;
        if diff_ids.len() != layers.len() {
            bail!(
                "image {reference}: its config lists {} layers, but it has {}",
                diff_ids.len(),
                layers.len()
            );
        }
        let blobs: Vec<LayerBlob> = diff_ids
            .iter()
            .zip(&layers)
            .map(|(diff_id, tar)| LayerBlob {
                digest: diff_id.clone(),
                content: tar.clone(),
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": oci::MANIFEST_MEDIA_TYPE,
            "config": descriptor(oci::CONFIG_MEDIA_TYPE, &digest_of(&config), config.len() as u64),
            "layers": blobs.iter().map(|b| descriptor(LayerCompression::None.media_type(), &b.digest, b.content.len)).collect::<Vec<_>>(),
        });
        Ok(SourceImage {
            reference,
            config,
            layers,
            blobs,
            daemon_id,
            manifest,
            unpacked_layout: None,
        })
    }

    /// A descriptor's `size`: how many bytes its blob has.
    fn descriptor_size(descriptor: &Value, image: &ImageRef) -> Result<u64> {
        descriptor["size"].as_u64().ok_or_else(|| {
            anyhow!(
                "image {image}: its manifest gives no size for {}",
                descriptor["digest"]
            )
        })
    }

    async fn open_registry_manifest(
        reference: &ImageRef,
        remote: &oci_client::Reference,
        manifest: Value,
        stores: &Stores<'_>,
    ) -> Result<SourceImage> {
        let registry = stores.registry;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| anyhow!("image {reference}: its manifest names no config"))?;
        let config = registry
            .blob_bytes(
                remote,
                config_digest,
                Self::descriptor_size(&manifest["config"], reference)?
                    .min(archive::MAX_METADATA_BYTES),
            )
            .await?;
        let mut layers = Vec::new();
        let mut blobs = Vec::new();
        for descriptor in manifest["layers"].as_array().into_iter().flatten() {
            let digest = descriptor["digest"]
                .as_str()
                .ok_or_else(|| anyhow!("image {reference}: a layer without a digest"))?;
            let size = Self::descriptor_size(descriptor, reference)?;
            let file = registry
                .blob_to_file(remote, digest, size, stores.workdir)
                .await?;
            let blob = LayerTar::whole(file)?;
            let workdir = stores.workdir.to_path_buf();
            let compressed = blob.clone();
            layers.push(
                tokio::task::spawn_blocking(move || uncompressed(compressed, &workdir)).await??,
            );
            blobs.push(LayerBlob {
                digest: digest.to_owned(),
                content: blob,
            });
        }
        Ok(SourceImage {
            reference: reference.clone(),
            config,
            layers,
            blobs,
            daemon_id: None,
            manifest,
            unpacked_layout: None,
        })
    }

    async fn open_layout_manifest(
        reference: &ImageRef,
        dir: PathBuf,
        manifest: Value,
        workdir: &Path,
        unpacked_layout: Option<PathBuf>,
    ) -> Result<SourceImage> {
        let workdir = workdir.to_path_buf();
        let image = tokio::task::spawn_blocking(move || oci::read(&dir, manifest, &workdir))
            .await?
            .with_context(|| format!("image {reference}"))?;
        let blobs = image
            .blobs
            .into_iter()
            .map(|(digest, content)| LayerBlob { digest, content })
            .collect();
        Ok(SourceImage {
            reference: reference.clone(),
            config: image.config,
            layers: image.layers,
            blobs,
            daemon_id: None,
            manifest: image.manifest,
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

    /// How many layers the patched image keeps from this one: all, except an earlier
    /// copa-host patch layer, whose changes the new layer takes over.
    fn kept_layers(&self) -> usize {
        self.previous_patch().unwrap_or(self.layers.len())
    }

    /// The layers a new patch layer goes on (see [`Self::kept_layers`]).
    pub fn base_view(&self) -> Result<ImageView> {
        ImageView::new(self.layers[..self.kept_layers()].to_vec())
    }

    /// The earlier copa-host patch layer, to be merged under the new changes: re-patching
    /// replaces it instead of stacking another layer.
    pub fn previous_patch_layer(&self) -> Option<LayerTar> {
        self.previous_patch().map(|i| self.layers[i].clone())
    }

    pub fn diff_ids(&self) -> Result<Vec<String>> {
        diff_ids(&self.config)
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
        let id = digest_of(&self.config);
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
                content: Some(tar),
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

    /// The patched image's OCI manifest: the source's, with the layers it keeps, the patch
    /// layer on top and the new config. Docker media types become their OCI equals (same
    /// bytes, same digests), so that a zstd layer can sit beside them.
    fn patched_manifest(&self, image: &PatchedImage) -> Result<Vec<u8>> {
        let mut manifest = self.manifest.clone();
        manifest["schemaVersion"] = json!(2);
        manifest["mediaType"] = json!(oci::MANIFEST_MEDIA_TYPE);
        manifest["config"] = descriptor(
            oci::CONFIG_MEDIA_TYPE,
            &digest_of(image.config),
            image.config.len() as u64,
        );
        let layers = manifest["layers"]
            .as_array_mut()
            .ok_or_else(|| anyhow!("the image manifest lists no layers"))?;
        layers.truncate(self.kept_layers());
        for layer in layers.iter_mut() {
            if let Some(oci_type) = layer["mediaType"].as_str().and_then(oci::layer_media_type) {
                layer["mediaType"] = json!(oci_type);
            }
        }
        layers.push(descriptor(
            image.layer.media_type,
            &image.layer.digest,
            image.layer.compressed_size,
        ));
        Ok(serde_json::to_vec(&manifest)?)
    }

    /// Every blob of the patched image, with where its bytes are: the kept layers, the patch
    /// layer (`patch`, its blob) and the config (`config_digest`, its digest).
    fn patched_blobs<'a>(
        &'a self,
        image: &PatchedImage<'a>,
        patch: &'a LayerTar,
        config_digest: &'a str,
    ) -> Vec<Blob<'a>> {
        let mut blobs: Vec<Blob> = self.blobs[..self.kept_layers()]
            .iter()
            .map(|b| Blob {
                digest: &b.digest,
                size: b.content.len,
                content: BlobContent::File(&b.content),
                from_source: true,
            })
            .collect();
        blobs.push(Blob {
            digest: &image.layer.digest,
            size: image.layer.compressed_size,
            content: BlobContent::File(patch),
            from_source: false,
        });
        blobs.push(Blob {
            digest: config_digest,
            size: image.config.len() as u64,
            content: BlobContent::Bytes(image.config),
            from_source: false,
        });
        blobs
    }

    /// Writes the patched image to `target` and returns the digest it is known by there: the
    /// image ID (config digest) in the daemon and in a docker archive, the manifest digest in an
    /// OCI layout or archive and in a registry.
    pub async fn write_patched(
        &self,
        target: &ImageRef,
        image: &PatchedImage<'_>,
        stores: &Stores<'_>,
    ) -> Result<WrittenImage> {
        let (config, layer, workdir) = (image.config, image.layer, stores.workdir);
        let image_id = digest_of(config);
        let patch_blob = LayerTar::whole(layer.blob.try_clone()?)?;
        let manifest = self.patched_manifest(image)?;
        let manifest_digest = digest_of(&manifest);
        match target {
            ImageRef::Plain(tag) | ImageRef::Daemon(tag) => {
                let docker = stores
                    .docker
                    .ok_or_else(|| anyhow!("the Docker daemon is not reachable"))?;
                // When the daemon already has the original layers (the image came from it or
                // was loaded for the run) only the patch layer travels.
                let daemon_has_base = self.daemon_id.is_some()
                    || daemon::image_id(docker, &digest_of(&self.config))
                        .await
                        .is_ok();
                let diff_ids = self.diff_ids()?;
                let layers = self.archive_layers(&diff_ids, layer, !daemon_has_base);
                let path = workdir.join("patched-load.tar");
                archive::write(
                    std::io::BufWriter::new(File::create(&path)?),
                    config,
                    &layers,
                    Some(tag),
                )?;
                daemon::load(docker, &path).await?;
                Ok(WrittenImage::digest(image_id))
            }
            ImageRef::Registry(name) => {
                let remote = registry::parse_reference(name)?;
                let source = match &self.reference {
                    ImageRef::Registry(source) => Some(registry::parse_reference(source)?),
                    _ => None,
                };
                let blobs = self.patched_blobs(image, &patch_blob, &image_id);
                let pushed = stores
                    .registry
                    .push(
                        &remote,
                        source.as_ref(),
                        &blobs,
                        &manifest,
                        oci::MANIFEST_MEDIA_TYPE,
                    )
                    .await?;
                Ok(WrittenImage {
                    digest: manifest_digest,
                    pushed: Some(pushed),
                })
            }
            ImageRef::OciLayout { dir, tag } => {
                self.write_to_layout(dir, tag, image, &patch_blob, &manifest)?;
                Ok(WrittenImage::digest(manifest_digest))
            }
            ImageRef::OciArchive { path, tag } => {
                // Into the layout this archive was read from (the patched archive then carries
                // the original images too), or a new one.
                let dir = self
                    .unpacked_layout
                    .clone()
                    .unwrap_or_else(|| workdir.join("oci-archive-out"));
                self.write_to_layout(&dir, tag, image, &patch_blob, &manifest)?;
                write_atomically(path, |out| pack(&dir, out))?;
                Ok(WrittenImage::digest(manifest_digest))
            }
            ImageRef::DockerArchive { path, reference } => {
                // A file on its own: every layer travels.
                let diff_ids = self.diff_ids()?;
                let layers = self.archive_layers(&diff_ids, layer, true);
                write_atomically(path, |out| {
                    archive::write(out, config, &layers, reference.as_deref())
                })?;
                Ok(WrittenImage::digest(image_id))
            }
        }
    }

    /// The patched image's layers for a docker archive, uncompressed as `docker save` writes
    /// them (the daemon, Docker 20.10, reads no zstd): the kept original layers, carried only
    /// `with_originals`, then the patch layer.
    fn archive_layers<'a>(
        &'a self,
        diff_ids: &'a [String],
        layer: &'a PatchLayer,
        with_originals: bool,
    ) -> Vec<archive::ArchiveLayer<'a>> {
        let mut layers: Vec<archive::ArchiveLayer> = diff_ids[..self.kept_layers()]
            .iter()
            .zip(&self.layers)
            .map(|(diff_id, tar)| archive::ArchiveLayer {
                diff_id,
                content: with_originals.then_some(tar),
            })
            .collect();
        layers.push(archive::ArchiveLayer {
            diff_id: &layer.diff_id,
            content: Some(&layer.tar),
        });
        layers
    }

    fn write_to_layout(
        &self,
        dir: &Path,
        tag: &Option<String>,
        image: &PatchedImage,
        patch_blob: &LayerTar,
        manifest: &[u8],
    ) -> Result<()> {
        let config_digest = digest_of(image.config);
        let blobs = self.patched_blobs(image, patch_blob, &config_digest);
        let tag = tag.clone().unwrap_or_else(|| "latest".into());
        oci::write(dir, &blobs, manifest, &tag)
    }
}

/// Where an image index was found: its platforms' manifests are read from there.
enum IndexHome {
    Registry(oci_client::Reference),
    Layout {
        dir: PathBuf,
        unpacked: Option<PathBuf>,
    },
}

/// What a patch run opens: the images of the platforms to patch, and for an image index the
/// index they belong to.
pub struct OpenedImage {
    pub images: Vec<(Platform, SourceImage)>,
    pub index: Option<SourceIndex>,
}

impl OpenedImage {
    /// A single image: `--platform` may only name its own platform.
    fn single(image: SourceImage, asked: &[Platform]) -> Result<OpenedImage> {
        let platform = Platform::of_config(&image.config).unwrap_or_else(Platform::host);
        if let Some(other) = asked
            .iter()
            .find(|p| p.os != platform.os || p.architecture != platform.architecture)
        {
            bail!(
                "image {} is a single {platform} image, not an index with a {other} image",
                image.reference
            );
        }
        Ok(OpenedImage {
            images: vec![(platform, image)],
            index: None,
        })
    }
}

/// A multi-platform image (an image index) being patched: the platforms patched get new
/// manifests, every other entry is carried over byte for byte, and the index keeps its
/// annotations.
pub struct SourceIndex {
    pub reference: ImageRef,
    home: IndexHome,
    index: Value,
    /// The index exactly as read.
    bytes: Vec<u8>,
    /// The position in `index.manifests` of each opened image, in order.
    entries: Vec<usize>,
}

impl SourceIndex {
    /// Writes the patched platforms' images and the rebuilt index to `target` (the same
    /// registry repository or OCI layout the index came from: the carried-over platforms' blobs
    /// are there). `patched[i]` belongs to the i-th opened image. Returns the index digest.
    pub async fn write_patched(
        &self,
        target: &ImageRef,
        images: &[(Platform, SourceImage)],
        patched: &[Option<PatchedImage<'_>>],
        stores: &Stores<'_>,
    ) -> Result<WrittenImage> {
        if !self.is_home(target)? {
            bail!(
                "a multi-platform image is written back where it came from (the same repository or layout), not to {target}; choose one platform with {} to write it elsewhere",
                Setting::Platform
            );
        }
        let mut index = self.index.clone();
        let mut pushed = PushCounts::default();
        for ((entry, (_, source)), image) in self.entries.iter().zip(images).zip(patched) {
            let Some(image) = image else { continue };
            let patch_blob = LayerTar::whole(image.layer.blob.try_clone()?)?;
            let manifest = source.patched_manifest(image)?;
            let digest = digest_of(&manifest);
            let config_digest = digest_of(image.config);
            let blobs = source.patched_blobs(image, &patch_blob, &config_digest);
            match target {
                ImageRef::Registry(name) => {
                    let remote = registry::parse_reference(name)?.clone_with_digest(digest.clone());
                    let counts = stores
                        .registry
                        .push(&remote, None, &blobs, &manifest, oci::MANIFEST_MEDIA_TYPE)
                        .await?;
                    pushed.uploaded += counts.uploaded;
                    pushed.present += counts.present;
                }
                _ => {
                    oci::write_untagged(self.layout_dir()?, &blobs, &manifest)?;
                }
            }
            let descriptor = &mut index["manifests"][*entry];
            descriptor["mediaType"] = json!(oci::MANIFEST_MEDIA_TYPE);
            descriptor["digest"] = json!(digest);
            descriptor["size"] = json!(manifest.len());
        }
        // The index keeps its media type, annotations and other entries; only the patched
        // entries' descriptors change.
        let media_type = index["mediaType"]
            .as_str()
            .unwrap_or("application/vnd.oci.image.index.v1+json")
            .to_owned();
        let bytes = if index == self.index {
            self.bytes.clone()
        } else {
            serde_json::to_vec(&index)?
        };
        let digest = digest_of(&bytes);
        match target {
            ImageRef::Registry(name) => {
                let remote = registry::parse_reference(name)?;
                let counts = stores
                    .registry
                    .push(&remote, None, &[], &bytes, &media_type)
                    .await?;
                pushed.present += counts.present;
                Ok(WrittenImage {
                    digest,
                    pushed: Some(pushed),
                })
            }
            ImageRef::OciLayout { tag, .. } | ImageRef::OciArchive { tag, .. } => {
                let dir = self.layout_dir()?;
                oci::write_untagged(dir, &[], &bytes)?;
                let tag = tag.clone().unwrap_or_else(|| "latest".into());
                oci::tag_document(dir, &media_type, &digest, bytes.len(), &tag)?;
                if let ImageRef::OciArchive { path, .. } = target {
                    write_atomically(path, |out| pack(dir, out))?;
                }
                Ok(WrittenImage::digest(digest))
            }
            _ => unreachable!("checked above"),
        }
    }

    /// Whether `target` is where the index came from (its repository or layout), where the
    /// carried-over platforms' blobs already are.
    pub fn is_home(&self, target: &ImageRef) -> Result<bool> {
        Ok(match (&self.reference, target) {
            (ImageRef::Registry(a), ImageRef::Registry(b)) => {
                let (a, b) = (registry::parse_reference(a)?, registry::parse_reference(b)?);
                a.resolve_registry() == b.resolve_registry() && a.repository() == b.repository()
            }
            (ImageRef::OciLayout { dir: a, .. }, ImageRef::OciLayout { dir: b, .. }) => a == b,
            (ImageRef::OciArchive { .. }, ImageRef::OciArchive { .. }) => true,
            _ => false,
        })
    }

    /// The layout the index was read from (an oci-archive's unpacked copy).
    fn layout_dir(&self) -> Result<&Path> {
        match &self.home {
            IndexHome::Layout { dir, .. } => Ok(dir),
            IndexHome::Registry(_) => bail!("{} is not an OCI layout", self.reference),
        }
    }
}

/// What writing the patched image gave: its digest there, and for a push what travelled.
pub struct WrittenImage {
    pub digest: String,
    pub pushed: Option<PushCounts>,
}

impl WrittenImage {
    fn digest(digest: String) -> WrittenImage {
        WrittenImage {
            digest,
            pushed: None,
        }
    }
}

fn diff_ids(config: &[u8]) -> Result<Vec<String>> {
    let config: Value = serde_json::from_slice(config).context("parsing the image config")?;
    Ok(config["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": digest, "size": size})
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
        // An OCI layout is files and directories. A link would be followed when the layout is
        // read or packed again, and could put a file of this machine in the output.
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            bail!(
                "{}: member {} is a {kind:?}; an OCI layout holds only files and directories",
                archive.display(),
                entry.path()?.display()
            );
        }
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
            let entry = entry?;
            let path = entry.path();
            // Never followed: only what the layout itself holds is packed.
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                files.push(path);
            } else {
                bail!("{}: not a file or directory; not packed", path.display());
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
/// files by offset needs random access. At most [`unpack_limit`] bytes are unpacked: a few
/// megabytes of gzip can claim terabytes.
fn uncompressed(layer: LayerTar, workdir: &Path) -> Result<LayerTar> {
    let limit = unpack_limit(layer.len);
    let magic = layer.read_at(0, 4.min(layer.len)).unwrap_or_default();
    if magic.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::read::GzDecoder::new(layer.reader()?);
        return unpack_layer(decoder, workdir, limit).context("unpacking a gzip layer");
    }
    if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        let decoder = ruzstd::decoding::StreamingDecoder::new(layer.reader()?)
            .map_err(|e| anyhow!("unpacking a zstd layer: {e}"))?;
        return unpack_layer(decoder, workdir, limit).context("unpacking a zstd layer");
    }
    Ok(layer)
}

/// The most a layer of `compressed` bytes may unpack to: 64 times its size (real layers
/// compress far less), and never less than 4 GiB (a layer may hold large runs of zeros).
fn unpack_limit(compressed: u64) -> u64 {
    compressed.saturating_mul(64).max(4 << 30)
}

/// `decoder`'s bytes in a temporary file of `workdir`, refused past `limit`.
fn unpack_layer(decoder: impl std::io::Read, workdir: &Path, limit: u64) -> Result<LayerTar> {
    let mut out = tempfile::tempfile_in(workdir)?;
    let unpacked = std::io::copy(&mut decoder.take(limit.saturating_add(1)), &mut out)?;
    if unpacked > limit {
        bail!("the layer unpacks to more than {limit} bytes, 64 times its size; not read");
    }
    LayerTar::whole(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_unpacks_only_to_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = vec![0u8; 1 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &zeros).unwrap();
        let bomb = gz.finish().unwrap();
        let decoder = || flate2::read::GzDecoder::new(&bomb[..]);
        let error = unpack_layer(decoder(), dir.path(), (1 << 20) - 1)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("more than 1048575 bytes"),
            "{error}"
        );
        let whole = unpack_layer(decoder(), dir.path(), 1 << 20).unwrap();
        assert_eq!(whole.len, 1 << 20);
        assert_eq!(unpack_limit(1 << 20), 4 << 30);
        assert_eq!(unpack_limit(1 << 30), 64 << 30);
    }

    #[test]
    fn parses_references() {
        assert_eq!(
            "python:3.11".parse::<ImageRef>().unwrap(),
            ImageRef::Plain("python:3.11".into())
        );
        assert_eq!(
            "docker://127.0.0.1:5000/team/app:1"
                .parse::<ImageRef>()
                .unwrap(),
            ImageRef::Registry("127.0.0.1:5000/team/app:1".into())
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
            "dir:/tmp/x"
                .parse::<ImageRef>()
                .unwrap_err()
                .to_string()
                .contains("not supported yet")
        );
        assert!("docker://UPPER/Case:tag".parse::<ImageRef>().is_err());
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
            "docker://localhost:5000/app:1",
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
        // A plain reference is written back to the daemon, or pushed under the same name.
        let plain = ImageRef::Plain("app:1.0".into());
        assert_eq!(
            plain.patched(None, "patched").unwrap(),
            daemon("app:1.0-patched")
        );
        assert_eq!(
            plain
                .patched(None, "patched")
                .unwrap()
                .in_registry()
                .unwrap(),
            ImageRef::Registry("app:1.0-patched".into())
        );
        let remote = ImageRef::Registry("r.example/team/app:1.0".into());
        assert_eq!(
            remote.patched(Some("fixed"), "patched").unwrap(),
            ImageRef::Registry("r.example/team/app:fixed".into())
        );
        assert!(
            "oci:/tmp/l"
                .parse::<ImageRef>()
                .unwrap()
                .in_registry()
                .is_err()
        );
    }
}
