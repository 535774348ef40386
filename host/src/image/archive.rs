//! Docker archives (`docker save` / `docker load` format): reading one without unpacking it,
//! and writing one that lists every layer but carries only those the daemon lacks.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::view::LayerTar;

/// The most read of a JSON member (manifest.json, an image config): real ones are kilobytes.
pub(super) const MAX_METADATA_BYTES: u64 = 64 << 20;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// An image read from a docker archive.
pub struct ArchiveImage {
    pub config: Vec<u8>,
    /// Uncompressed layer tars, base first.
    pub layers: Vec<LayerTar>,
}

/// Reads one image of a docker archive: the one tagged `reference`, else the only one. Layers
/// stay inside the archive file and are served by offset; compressed members are unpacked into
/// `workdir`.
pub fn read(file: File, reference: Option<&str>, workdir: &Path) -> Result<ArchiveImage> {
    let file = Arc::new(file);
    let mut members: HashMap<String, (u64, u64)> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut archive = tar::Archive::new(file.try_clone()?);
    for entry in archive
        .entries_with_seek()
        .context("reading docker archive")?
    {
        let entry = entry.context("reading docker archive")?;
        let name = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // Docker links duplicate layers: "<id>/layer.tar -> ../<other>/layer.tar".
                let base = Path::new(&name).parent().unwrap_or(Path::new(""));
                let resolved = super::view::normalize_path(&base.join(target).to_string_lossy());
                links.insert(name, resolved.trim_start_matches('/').to_string());
            }
            _ => {
                members.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
    }
    let member = |name: &str| -> Result<(u64, u64)> {
        let name = name.trim_start_matches("./");
        let name = links.get(name).map(String::as_str).unwrap_or(name);
        members
            .get(name)
            .copied()
            .ok_or_else(|| anyhow!("docker archive has no member {name}"))
    };
    // manifest.json and the config are small JSON documents whatever their headers claim.
    let read_member = |name: &str| -> Result<Vec<u8>> {
        let (offset, len) = member(name)?;
        if len > MAX_METADATA_BYTES {
            bail!(
                "docker archive: {name} claims {len} bytes; at most {MAX_METADATA_BYTES} are read"
            );
        }
        LayerTar::member(file.clone(), offset, len)
            .with_context(|| format!("docker archive: {name}"))?
            .read_at(0, len)
    };
    let manifest: Vec<ManifestEntry> = serde_json::from_slice(&read_member("manifest.json")?)
        .context("docker archive manifest.json")?;
    let image = match reference {
        Some(wanted) => manifest
            .into_iter()
            .find(|m| {
                m.repo_tags
                    .iter()
                    .flatten()
                    .any(|t| t == wanted || t.strip_prefix("docker.io/library/") == Some(wanted))
            })
            .ok_or_else(|| anyhow!("the docker archive has no image tagged {wanted}"))?,
        None if manifest.len() > 1 => bail!(
            "the docker archive holds {} images; name one with docker-archive:FILE:REF",
            manifest.len()
        ),
        None => manifest
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("docker archive holds no image"))?,
    };
    let config = read_member(&image.config)?;
    let mut layers = Vec::new();
    for name in &image.layers {
        let (offset, len) = member(name)?;
        let layer = LayerTar::member(file.clone(), offset, len)
            .with_context(|| format!("docker archive: {name}"))?;
        layers.push(super::uncompressed(layer, workdir)?);
    }
    Ok(ArchiveImage { config, layers })
}

/// A layer of an archive to write: listed always, carried only when `content` is given (the
/// daemon reuses layers it already has, found by chain ID).
pub struct ArchiveLayer<'a> {
    pub diff_id: &'a str,
    /// The uncompressed layer tar.
    pub content: Option<&'a LayerTar>,
}

pub fn write(
    out: impl Write,
    config: &[u8],
    layers: &[ArchiveLayer],
    tag: Option<&str>,
) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    let config_name = format!("{}.json", hex::encode(Sha256::digest(config)));
    let layer_names: Vec<String> = layers
        .iter()
        .map(|l| format!("{}/layer.tar", l.diff_id.trim_start_matches("sha256:")))
        .collect();
    let manifest = vec![ManifestEntry {
        config: config_name.clone(),
        repo_tags: tag.map(|t| vec![t.to_string()]),
        layers: layer_names.clone(),
    }];
    append(&mut builder, &config_name, config.len() as u64, config)?;
    for (layer, name) in layers.iter().zip(&layer_names) {
        match &layer.content {
            None => {}
            Some(tar) => append(&mut builder, name, tar.len, tar.reader()?)?,
        }
    }
    let manifest = serde_json::to_vec(&manifest)?;
    append(
        &mut builder,
        "manifest.json",
        manifest.len() as u64,
        &manifest[..],
    )?;
    builder.into_inner()?.flush()?;
    Ok(())
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    len: u64,
    data: impl Read,
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(len);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data)?;
    Ok(())
}
