//! NuGet feeds for plugins of contracts before 0.4, which ask the host's `package-index`: read
//! with the SDK's client ([`copa_plugin_sdk::nuget_feed`], the one the dotnet plugin reads its
//! feeds with over `http`) over this index's agent. The sources are the `--index nuget=` URLs
//! (nuget.org when none): `file://` folders read as the plugins' `http` reads them, servers
//! with the user's credential for their origin only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use copa_plugin_sdk::nuget_feed::{self, Answer};
use ureq::Agent;

use super::{ArtifactSource, PackageVersion, one_line};
use crate::http::{Credential, Origin, read_folder_url};
use crate::setting::Setting;

pub(super) struct Feeds {
    sources: Vec<String>,
    /// The folders among the sources: the only files of this machine an index may name.
    folders: Vec<PathBuf>,
    /// The user's credential of each source's origin.
    credentials: HashMap<Origin, Credential>,
    /// Service indexes as fetched: each is read once per run, not once per package.
    service_indexes: Mutex<HashMap<String, (u16, Vec<u8>)>>,
}

impl Feeds {
    /// `sources` in order (none: nuget.org); `credentials` of the run, of which those of the
    /// sources' origins are kept.
    pub(super) fn new(
        sources: &[String],
        credentials: &HashMap<Origin, Credential>,
    ) -> Result<Self, String> {
        let sources = if sources.is_empty() {
            vec![nuget_feed::DEFAULT_SOURCE.to_string()]
        } else {
            sources.to_vec()
        };
        let mut folders = Vec::new();
        let mut own = HashMap::new();
        for source in &sources {
            if source.starts_with("file://") {
                folders.push(crate::http::folder_of(source)?);
                continue;
            }
            let origin = Origin::of(source)
                .map_err(|e| format!("{} nuget={source}: {e}", Setting::Index))?;
            if let Some(credential) = credentials.get(&origin) {
                own.insert(origin, credential.clone());
            }
        }
        Ok(Feeds {
            sources,
            folders,
            credentials: own,
            service_indexes: Mutex::default(),
        })
    }

    /// Every version of `id` on the sources, first source first.
    pub(super) fn versions(&self, agent: &Agent, id: &str) -> Result<Vec<PackageVersion>, String> {
        let listing = nuget_feed::versions(self.sources.iter().map(String::as_str), id, |url| {
            self.get(agent, url)
        })?;
        for warning in &listing.warnings {
            tracing::warn!("{warning}");
        }
        Ok(listing
            .versions
            .into_iter()
            .map(|v| PackageVersion {
                version: v.version,
                yanked: !v.listed,
                deprecated: v.deprecated,
                published: v.published,
                artifact: Some(ArtifactSource {
                    url: v.nupkg_url,
                    digest: None,
                }),
                ..PackageVersion::default()
            })
            .collect())
    }

    /// The `Authorization` header for `url`, when it lies on a source's origin that has a
    /// credential: private feeds serve their packages only to the same login.
    pub(super) fn authorization_for(&self, url: &str) -> Option<String> {
        let origin = Origin::of(url).ok()?;
        self.credentials.get(&origin).map(Credential::header)
    }

    /// The bytes of a `file://` URL inside a folder source; anything else is refused.
    pub(super) fn read_file(&self, url: &str, max: u64) -> Result<Vec<u8>, String> {
        let response = read_folder_url(&self.folders, url, max).map_err(|e| e.to_string())?;
        if response.status != 200 {
            return Err(format!("{url}: no such file"));
        }
        Ok(response.body)
    }

    fn get(&self, agent: &Agent, url: &str) -> Answer {
        if url.starts_with("file://") {
            let response = read_folder_url(&self.folders, url, nuget_feed::MAX_LISTING_BYTES)
                .map_err(|e| e.to_string())?;
            return Ok((response.status, response.body));
        }
        let is_service_index = self.sources.iter().any(|s| s == url);
        let known = || {
            self.service_indexes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(url)
                .cloned()
        };
        if let Some(answer) = is_service_index.then(known).flatten() {
            return Ok(answer);
        }
        let answer = self.fetch(agent, url)?;
        if is_service_index {
            self.service_indexes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(url.to_string(), answer.clone());
        }
        Ok(answer)
    }

    fn fetch(&self, agent: &Agent, url: &str) -> Answer {
        tracing::debug!(%url, "querying NuGet feed");
        let mut request = agent.get(url).header("accept", "application/json");
        if let Some(authorization) = self.authorization_for(url) {
            request = request.header("authorization", authorization);
        }
        let mut response = request.call().map_err(|e| one_line(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(nuget_feed::MAX_JSON_BYTES)
            .read_to_vec()
            .map_err(|e| one_line(format!("reading the answer: {e}")))?;
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::test_server::{Reply, serve_recording};
    use crate::index::{IndexSettings, PackageIndex};

    fn json(body: String) -> Reply<String> {
        Reply {
            status: "200 OK",
            content_type: "application/json",
            body,
        }
    }

    #[test]
    fn older_plugins_get_the_sdk_reading_with_credentials_for_the_source_origin_only() {
        let (cdn, cdn_seen) = serve_recording(
            vec![(
                "/flat/a/index.json",
                json(r#"{"versions":["1.0.0","2.0.0"]}"#.into()),
            )],
            2,
            "authorization",
        );
        let service_index = serde_json::json!({"resources": [
            {"@id": format!("{cdn}/flat/"), "@type": "PackageBaseAddress/3.0.0"}
        ]});
        let (origin, seen) = serve_recording(
            vec![("/v3/index.json", json(service_index.to_string()))],
            1,
            "authorization",
        );
        let credentials = HashMap::from([(
            Origin::of(&origin).unwrap(),
            Credential::new("ci:s3cr=t".into()),
        )]);
        let index = PackageIndex::with_proxy(
            IndexSettings {
                credentials,
                ..IndexSettings::default()
            }
            .with_user_indexes(&[("nuget".into(), format!("{origin}/v3/index.json"))]),
            None,
        )
        .unwrap();
        let versions = index.versions("nuget", "A").unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(
            versions[1].artifact.as_ref().unwrap().url,
            format!("{cdn}/flat/a/2.0.0/a.2.0.0.nupkg")
        );
        // base64("ci:s3cr=t")
        assert_eq!(seen.lock().unwrap()[0].1, "Basic Y2k6czNjcj10");
        assert_eq!(cdn_seen.lock().unwrap()[0].1, "");
        assert!(index.authorization_for(&format!("{cdn}/x.nupkg")).is_none());
        // Another id costs one listing: the service index is read once.
        assert!(index.versions("nuget", "B").unwrap().is_empty());
        assert!(index.versions("nuget", "../x").is_err());
    }

    #[test]
    fn older_plugins_read_folder_feeds_and_nothing_beside_them() {
        let root = tempfile::tempdir().unwrap();
        let feed = root.path().join("feed");
        std::fs::create_dir(&feed).unwrap();
        std::fs::write(feed.join("A.1.0.0.nupkg"), b"not a zip").unwrap();
        std::fs::write(root.path().join("A.2.0.0.nupkg"), b"secret").unwrap();
        let url = nuget_feed::folder_url(&feed.display().to_string());
        let feeds = Feeds::new(std::slice::from_ref(&url), &HashMap::new()).unwrap();
        let agent =
            crate::index::agent_with(None, None, std::time::Duration::from_secs(5), 0).unwrap();
        let versions = feeds.versions(&agent, "a").unwrap();
        let urls: Vec<&str> = versions
            .iter()
            .map(|v| v.artifact.as_ref().unwrap().url.as_str())
            .collect();
        assert_eq!(urls, [format!("{url}A.1.0.0.nupkg")]);
        assert_eq!(feeds.read_file(urls[0], 100).unwrap(), b"not a zip");
        let outside = format!("{url}../A.2.0.0.nupkg");
        assert!(feeds.read_file(&outside, 100).unwrap_err().contains(".."));
        let err = Feeds::new(&["file:///no/such/dir".into()], &HashMap::new())
            .err()
            .unwrap();
        assert!(err.ends_with("not a directory"), "{err}");
    }
}
