//! OCI image layouts (`oci:DIR[:TAG]`): reading an image from one and adding the patched image
//! to it. Blobs are content-addressed, so writing only ever adds files and swaps index.json.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::view::LayerTar;
use super::{Blob, BlobContent};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const INDEX_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    MANIFEST_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The OCI media type of a Docker layer media type (the same bytes).
pub fn layer_media_type(docker: &str) -> Option<&'static str> {
    Some(match docker {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        _ => return None,
    })
}
const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub struct LayoutImage {
    pub manifest: Value,
    pub config: Vec<u8>,
    /// Uncompressed layer tars, base first.
    pub layers: Vec<LayerTar>,
    /// The layer blobs as stored (digest, file), in the same order.
    pub blobs: Vec<(String, LayerTar)>,
}

fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| anyhow!("bad digest {digest}"))?;
    if algorithm != "sha256" || hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("unsupported digest {digest}");
    }
    Ok(dir.join("blobs").join(algorithm).join(hex))
}

fn read_json(dir: &Path, digest: &str) -> Result<(Vec<u8>, Value)> {
    let path = blob_path(dir, digest)?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading blob {}", path.display()))?;
    let value = serde_json::from_slice(&bytes).with_context(|| format!("parsing blob {digest}"))?;
    Ok((bytes, value))
}

/// The manifest descriptor in index.json named `tag`, or the only one when no tag is given.
fn select<'a>(index: &'a Value, tag: Option<&str>, dir: &Path) -> Result<&'a Value> {
    let manifests = index["manifests"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    match tag {
        Some(tag) => manifests
            .iter()
            .find(|m| m["annotations"][REF_NAME].as_str() == Some(tag))
            .ok_or_else(|| anyhow!("OCI layout {} has no image tagged {tag}", dir.display())),
        None => match manifests {
            [only] => Ok(only),
            [] => bail!("OCI layout {} holds no image", dir.display()),
            _ => bail!(
                "OCI layout {} holds {} images; name one with oci:DIR:TAG",
                dir.display(),
                manifests.len()
            ),
        },
    }
}

/// What a layout's tag names: one image manifest, or an image index (several platforms).
pub enum Top {
    Manifest(Value),
    Index { bytes: Vec<u8>, index: Value },
}

/// The manifest or index that index.json names `tag` (or its only entry).
pub fn read_top(dir: &Path, tag: Option<&str>) -> Result<Top> {
    let index_path = dir.join("index.json");
    let index: Value = serde_json::from_slice(
        &std::fs::read(&index_path)
            .with_context(|| format!("{} is not an OCI layout", dir.display()))?,
    )
    .with_context(|| format!("parsing {}", index_path.display()))?;
    let descriptor = select(&index, tag, dir)?.clone();
    let (bytes, top) = read_json(dir, descriptor["digest"].as_str().unwrap_or_default())?;
    if is_index(&top)
        || descriptor["mediaType"]
            .as_str()
            .is_some_and(|t| INDEX_MEDIA_TYPES.contains(&t))
    {
        Ok(Top::Index { bytes, index: top })
    } else {
        Ok(Top::Manifest(top))
    }
}

/// Whether a manifest document is an image index.
pub fn is_index(document: &Value) -> bool {
    INDEX_MEDIA_TYPES.contains(&document["mediaType"].as_str().unwrap_or_default())
        || (document["manifests"].is_array() && !document["layers"].is_array())
}

/// The image manifest with digest `digest` in the layout.
pub fn read_manifest(dir: &Path, digest: &str) -> Result<Value> {
    Ok(read_json(dir, digest)?.1)
}

/// Reads the image `manifest` describes: its config and layers.
pub fn read(dir: &Path, manifest: Value, workdir: &Path) -> Result<LayoutImage> {
    let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let config =
        std::fs::read(blob_path(dir, config_digest)?).context("reading the image config")?;
    let mut layers = Vec::new();
    let mut blobs = Vec::new();
    for layer in manifest["layers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let digest = layer["digest"].as_str().unwrap_or_default();
        let path = blob_path(dir, digest)?;
        let file =
            File::open(&path).with_context(|| format!("opening layer {}", path.display()))?;
        let blob = LayerTar::whole(file)?;
        layers.push(super::uncompressed(blob.clone(), workdir)?);
        blobs.push((digest.to_owned(), blob));
    }
    Ok(LayoutImage {
        manifest,
        config,
        layers,
        blobs,
    })
}

/// Adds an image to the layout under `tag` (creating the layout when `dir` holds none).
pub fn write(dir: &Path, blobs: &[Blob], manifest: &[u8], tag: &str) -> Result<()> {
    let digest = write_untagged(dir, blobs, manifest)?;
    tag_document(dir, MANIFEST_MEDIA_TYPE, &digest, manifest.len(), tag)
}

/// Adds the blobs the layout lacks and the manifest (or index) itself, without naming it in
/// index.json; returns its digest.
pub fn write_untagged(dir: &Path, blobs: &[Blob], manifest: &[u8]) -> Result<String> {
    let index_path = dir.join("index.json");
    if !index_path.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the OCI layout {}", dir.display()))?;
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        std::fs::write(&index_path, br#"{"schemaVersion":2,"manifests":[]}"#)?;
    }
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    for blob in blobs {
        let path = blob_path(dir, blob.digest)?;
        if path.exists() {
            continue;
        }
        match blob.content {
            BlobContent::Bytes(bytes) => write_blob(&path, &mut &bytes[..])?,
            BlobContent::File(tar) => write_blob(&path, &mut tar.reader()?)?,
        }
    }
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(manifest)));
    write_blob(&blob_path(dir, &digest)?, &mut &manifest[..])?;
    Ok(digest)
}

/// Names a manifest or index of the layout `tag` in index.json (written to a temporary file
/// and renamed, so readers never see half), replacing what had that tag.
pub fn tag_document(
    dir: &Path,
    media_type: &str,
    digest: &str,
    size: usize,
    tag: &str,
) -> Result<()> {
    let index_path = dir.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path)?)
        .with_context(|| format!("parsing {}", index_path.display()))?;
    let manifests = index["manifests"]
        .as_array_mut()
        .ok_or_else(|| anyhow!("index.json has no manifests"))?;
    manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
    manifests.push(json!({
        "mediaType": media_type,
        "digest": digest,
        "size": size,
        "annotations": {REF_NAME: tag},
    }));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut tmp, &index)?;
    tmp.persist(&index_path).map_err(|e| e.error)?;
    Ok(())
}

fn write_blob(path: &Path, content: &mut impl std::io::Read) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::copy(content, &mut tmp)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The OCI name of this machine's architecture.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
