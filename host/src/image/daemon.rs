//! The local Docker daemon as an image source and sink.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use bollard::query_parameters::ImportImageOptionsBuilder;
use futures_util::StreamExt;
use std::io::Write;

use super::archive;

/// Connects to the daemon (`DOCKER_HOST` honoured) and agrees on an API version both speak.
pub async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_defaults()
        .map_err(|e| anyhow!("cannot reach the Docker daemon: {e}"))?;
    docker
        .negotiate_version()
        .await
        .map_err(|e| anyhow!("cannot reach the Docker daemon (is dockerd running?): {e}"))
}

/// The image ID of `reference`, or a one-line error when the daemon does not have it.
pub async fn image_id(docker: &Docker, reference: &str) -> Result<String> {
    match docker.inspect_image(reference).await {
        Ok(inspect) => inspect
            .id
            .ok_or_else(|| anyhow!("the daemon returned no ID for {reference}")),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            bail!("image {reference} not found in the local Docker daemon")
        }
        Err(e) => bail!("inspecting image {reference}: {e}"),
    }
}

/// `docker save` of one image into a file in `workdir`, read in place.
pub async fn save(
    docker: &Docker,
    reference: &str,
    workdir: &Path,
) -> Result<archive::ArchiveImage> {
    let path = workdir.join(format!("save-{}.tar", sanitize(reference)));
    let started = std::time::Instant::now();
    {
        // Plain buffered writes: they land in the page cache in microseconds, while a trip to
        // the blocking pool per chunk (tokio::fs) halves the throughput.
        let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        let mut stream = docker.export_image(reference);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| anyhow!("saving {reference} from the daemon: {e}"))?;
            file.write_all(&chunk)?;
        }
        file.flush()?;
    }
    let file = std::fs::File::open(&path)?;
    tracing::debug!(
        reference,
        bytes = file.metadata()?.len(),
        seconds = started.elapsed().as_secs_f64(),
        "saved from the daemon"
    );
    let workdir = workdir.to_path_buf();
    tokio::task::spawn_blocking(move || archive::read(file, None, &workdir))
        .await?
        .with_context(|| format!("reading the saved image {reference}"))
}

/// `docker load` of an archive file, streamed from disk.
pub async fn load(docker: &Docker, archive_path: &Path) -> Result<()> {
    let file = tokio::fs::File::open(archive_path).await?;
    let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
    let options = ImportImageOptionsBuilder::default().quiet(true).build();
    let mut stream = docker.import_image_stream(options, body, None);
    while let Some(message) = stream.next().await {
        let message = message.map_err(|e| anyhow!("loading an image into the daemon: {e}"))?;
        if let Some(error) = message.error_detail.and_then(|d| d.message) {
            bail!("loading an image into the daemon: {error}");
        }
    }
    Ok(())
}

pub async fn remove_image(docker: &Docker, reference: &str) {
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
        .force(true)
        .build();
    if let Err(e) = docker.remove_image(reference, Some(options), None).await {
        tracing::debug!("removing image {reference}: {e}");
    }
}

fn sanitize(reference: &str) -> String {
    reference
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
