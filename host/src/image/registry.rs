//! Container registries (`docker://REF`), through oci-client: pulling an image for patching and
//! pushing the patched one, uploading only the blobs the registry lacks.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use futures_util::TryStreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::Value;
use tokio::sync::Mutex;

use super::credentials::{self, Credentials};
use super::oci::{INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES};
use super::{Blob, BlobContent};

/// How to reach registries: which hosts speak plain http, and an extra CA to trust.
#[derive(Clone, Debug, Default)]
pub struct RegistrySettings {
    /// `--insecure-registry HOST[:PORT]`: plain http.
    pub insecure: Vec<String>,
    /// PEM certificates trusted besides the system's (`--ca-cert`).
    pub extra_ca_pem: Option<Vec<u8>>,
}

/// What a push did with each blob: how many were uploaded, mounted from the source repository
/// or already there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushCounts {
    pub uploaded: usize,
    pub mounted: usize,
    pub present: usize,
}

/// A manifest or image index pulled from a registry.
pub struct PulledManifest {
    pub manifest: Value,
    /// The document exactly as served.
    pub bytes: Vec<u8>,
    /// The manifest's own digest.
    pub digest: String,
}

pub struct Registry {
    client: Client,
    /// Credentials per registry host, read from the Docker config once.
    logged_in: Mutex<HashSet<(String, bool)>>,
}

impl Registry {
    pub fn new(settings: &RegistrySettings) -> Result<Registry> {
        // reqwest is built without a default crypto provider; use ring, as the index client does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if settings.insecure.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(settings.insecure.clone())
            },
            extra_root_certificates: settings
                .extra_ca_pem
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            platform_resolver: None,
            https_proxy: std::env::var("HTTPS_PROXY")
                .or_else(|_| std::env::var("https_proxy"))
                .ok(),
            http_proxy: std::env::var("HTTP_PROXY")
                .or_else(|_| std::env::var("http_proxy"))
                .ok(),
            no_proxy: std::env::var("NO_PROXY")
                .or_else(|_| std::env::var("no_proxy"))
                .ok(),
            ..Default::default()
        };
        Ok(Registry {
            client: Client::new(config),
            logged_in: Mutex::new(HashSet::new()),
        })
    }

    /// Logs in for `operation` on the reference's repository once: basic credentials from the
    /// Docker config, exchanged for a token when the registry asks for one.
    async fn login(&self, reference: &Reference, operation: RegistryOperation) -> Result<()> {
        let key = (
            format!(
                "{}/{}",
                reference.resolve_registry(),
                reference.repository()
            ),
            matches!(operation, RegistryOperation::Push),
        );
        let mut logged_in = self.logged_in.lock().await;
        if logged_in.contains(&key) {
            return Ok(());
        }
        let auth = match credentials::for_registry(reference.registry())? {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username, password),
        };
        self.client
            .auth(reference, &auth, operation)
            .await
            .map_err(|e| registry_error(reference, e))?;
        logged_in.insert(key);
        Ok(())
    }

    /// The manifest or image index `reference` names, as the registry serves it.
    pub async fn top(&self, reference: &Reference) -> Result<PulledManifest> {
        let accepted: Vec<&str> = MANIFEST_MEDIA_TYPES
            .iter()
            .chain(INDEX_MEDIA_TYPES)
            .copied()
            .collect();
        self.document(reference, &accepted).await
    }

    /// The image manifest with `digest` in the reference's repository.
    pub async fn manifest(&self, reference: &Reference, digest: &str) -> Result<PulledManifest> {
        self.document(
            &reference.clone_with_digest(digest.to_owned()),
            MANIFEST_MEDIA_TYPES,
        )
        .await
    }

    async fn document(&self, reference: &Reference, accepted: &[&str]) -> Result<PulledManifest> {
        self.login(reference, RegistryOperation::Pull).await?;
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(reference, &RegistryAuth::Anonymous, accepted)
            .await
            .map_err(|e| registry_error(reference, e))?;
        let manifest: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("image docker://{reference}: parsing its manifest"))?;
        Ok(PulledManifest {
            manifest,
            bytes: bytes.to_vec(),
            digest,
        })
    }

    /// Downloads a blob of the reference's repository into memory (configs), of at most `limit`
    /// bytes, checking its digest on the way.
    pub async fn blob_bytes(
        &self,
        reference: &Reference,
        digest: &str,
        limit: u64,
    ) -> Result<Vec<u8>> {
        self.login(reference, RegistryOperation::Pull).await?;
        let mut out = Bounded::new(Vec::new(), limit);
        self.client
            .pull_blob(reference, digest, &mut out)
            .await
            .map_err(|e| registry_error(reference, e))?;
        Ok(out.inner)
    }

    /// Downloads a blob into a new file in `dir`, checking its digest on the way; a blob longer
    /// than `size` (its descriptor's) is refused as soon as it passes it.
    pub async fn blob_to_file(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        dir: &Path,
    ) -> Result<std::fs::File> {
        self.login(reference, RegistryOperation::Pull).await?;
        let file = tempfile::tempfile_in(dir)?;
        let mut out = Bounded::new(tokio::fs::File::from_std(file.try_clone()?), size);
        self.client
            .pull_blob(reference, digest, &mut out)
            .await
            .map_err(|e| registry_error(reference, e))?;
        tokio::io::AsyncWriteExt::flush(&mut out).await?;
        if out.written != size {
            anyhow::bail!(
                "image docker://{reference}: blob {digest} has {} bytes, its descriptor says {size}",
                out.written
            );
        }
        Ok(file)
    }

    /// Pushes an image: each blob the target repository lacks is mounted from `source` (same
    /// registry) or uploaded; then the manifest goes up under the target's tag.
    pub async fn push(
        &self,
        target: &Reference,
        source: Option<&Reference>,
        blobs: &[Blob<'_>],
        manifest: &[u8],
        manifest_media_type: &str,
    ) -> Result<PushCounts> {
        self.login(target, RegistryOperation::Push).await?;
        let mountable = source.filter(|s| {
            s.resolve_registry() == target.resolve_registry()
                && s.repository() != target.repository()
        });
        if let Some(source) = mountable {
            self.login(source, RegistryOperation::Pull).await?;
        }
        let mut counts = PushCounts::default();
        for blob in blobs {
            let exists = self
                .client
                .blob_exists(target, blob.digest)
                .await
                .map_err(|e| registry_error(target, e))?;
            if exists {
                counts.present += 1;
                continue;
            }
            if let Some(source) = mountable.filter(|_| blob.from_source)
                && self
                    .client
                    .mount_blob(target, source, blob.digest)
                    .await
                    .is_ok()
                && self
                    .client
                    .blob_exists(target, blob.digest)
                    .await
                    .unwrap_or(false)
            {
                counts.mounted += 1;
                continue;
            }
            self.upload(target, blob).await?;
            counts.uploaded += 1;
        }
        self.client
            .push_manifest_raw(
                target,
                manifest.to_vec(),
                manifest_media_type
                    .parse()
                    .map_err(|_| anyhow!("bad media type {manifest_media_type}"))?,
            )
            .await
            .map_err(|e| registry_error(target, e))?;
        Ok(counts)
    }

    async fn upload(&self, target: &Reference, blob: &Blob<'_>) -> Result<()> {
        let result = match blob.content {
            BlobContent::Bytes(bytes) => {
                self.client
                    .push_blob(target, bytes.to_vec(), blob.digest)
                    .await
            }
            BlobContent::File(tar) => {
                // Streamed from the file in chunks: a layer is never held in memory whole.
                let reader = tokio::fs::File::from_std(tar.file.try_clone()?);
                let mut reader = reader;
                tokio::io::AsyncSeekExt::seek(&mut reader, std::io::SeekFrom::Start(tar.offset))
                    .await?;
                let limited = tokio::io::AsyncReadExt::take(reader, tar.len);
                let stream = tokio_util::io::ReaderStream::with_capacity(limited, 1 << 20)
                    .map_err(oci_client::errors::OciDistributionError::from);
                self.client
                    .push_blob_stream(target, stream, blob.digest, Some(blob.size))
                    .await
            }
        };
        result
            .map(|_| ())
            .map_err(|e| registry_error(target, e))
            .with_context(|| format!("uploading {}", blob.digest))
    }
}

/// One line that names the image and what the registry said.
/// A writer that takes at most `limit` bytes: a registry cannot make a blob longer than the
/// manifest said, or fill memory or disk before the digest check at the end.
struct Bounded<W> {
    inner: W,
    limit: u64,
    written: u64,
}

impl<W> Bounded<W> {
    fn new(inner: W, limit: u64) -> Self {
        Bounded {
            inner,
            limit,
            written: 0,
        }
    }
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Bounded<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.written + buf.len() as u64 > self.limit {
            return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "the blob is longer than the {} bytes its descriptor gives",
                self.limit
            ))));
        }
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &polled {
            self.written += *n as u64;
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn registry_error(
    reference: &Reference,
    error: oci_client::errors::OciDistributionError,
) -> anyhow::Error {
    use oci_client::errors::OciDistributionError as E;
    match error {
        E::AuthenticationFailure(message) => anyhow!(
            "registry {}: authentication failed ({message}); log in with `docker login {}` or fix the credentials in the Docker config",
            reference.resolve_registry(),
            reference.registry()
        ),
        E::UnauthorizedError { .. } => anyhow!(
            "registry {}: not authorized for {}; log in with `docker login {}`",
            reference.resolve_registry(),
            reference.repository(),
            reference.registry()
        ),
        E::ImageManifestNotFoundError(_) => anyhow!("image docker://{reference} does not exist"),
        other => {
            let text = other.to_string();
            let lower = text.to_ascii_lowercase();
            if [
                "manifest_unknown",
                "manifest unknown",
                "name_unknown",
                "name unknown",
            ]
            .iter()
            .any(|code| lower.contains(code))
            {
                anyhow!("image docker://{reference} does not exist")
            } else {
                anyhow!("registry {}: {text}", reference.resolve_registry())
            }
        }
    }
}

/// Parses the reference part of `docker://REF`.
pub fn parse_reference(text: &str) -> Result<Reference> {
    text.parse::<Reference>()
        .map_err(|e| anyhow!("image docker://{text}: not a valid reference ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_blob_stops_at_its_descriptors_size() {
        let mut out = Bounded::new(Vec::new(), 8);
        out.write_all(b"12345678").await.unwrap();
        assert_eq!(out.written, 8);
        let err = out.write_all(b"9").await.unwrap_err().to_string();
        assert!(err.contains("longer than the 8 bytes"), "{err}");
        assert_eq!(out.inner, b"12345678", "nothing past the limit was kept");
    }
}
