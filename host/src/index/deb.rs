//! APT repositories for plugins of contracts before 0.4, which name one as the `package-index`
//! ecosystem `deb <uri> <suite> <component> <arch>`. The protocol is the SDK's
//! ([`copa_plugin_sdk::apt_repo`]), the one the apt plugin reads over `http`; this keeps each
//! repository's packages for the run (unlike PyPI there is no per-package page, only the whole
//! index) and carries the requests with the host's agent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use copa_plugin_sdk::apt_repo::{self, Packages, Repository};
use ureq::Agent;

use super::{ArtifactSource, ExpectedDigest, PackageVersion, one_line};

/// A whole download may take this long: bookworm's main index is 12 MB compressed, which the
/// agent's 30 s budget for small pages does not cover on a slow link.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Connecting, waiting for the headers and each read must still make progress within this,
/// so that a dead mirror fails in seconds rather than after the whole download budget.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One repository's packages, loaded by the first caller; the error of a failed load is kept
/// too, so that a plugin asking about 200 packages does not trigger 200 downloads of a broken
/// index.
type Slot = Arc<OnceLock<Result<Packages, String>>>;

/// Whether `ecosystem` names an APT repository. Decided on the first word alone, so that a
/// malformed repository line gets an error about its syntax instead of "no package index".
pub(super) fn is_deb_ecosystem(ecosystem: &str) -> bool {
    ecosystem.split_ascii_whitespace().next() == Some("deb")
}

#[derive(Default)]
pub(super) struct Repositories {
    /// Keyed by the normalized repository line.
    loaded: Mutex<HashMap<String, Slot>>,
    /// The first `--index deb=URL` (`--apt-mirror`): replaces every repository's origin.
    mirror: Option<String>,
}

impl Repositories {
    pub(super) fn new(mirror: Option<String>) -> Self {
        Self {
            loaded: Mutex::default(),
            mirror,
        }
    }

    /// Versions of the binary package `name` in the repository `ecosystem` names; a package the
    /// index does not list is an empty list.
    pub(super) fn versions(
        &self,
        agent: &Agent,
        ecosystem: &str,
        name: &str,
    ) -> Result<Vec<PackageVersion>, String> {
        let mut repository = Repository::parse(ecosystem)?;
        if let Some(mirror) = &self.mirror {
            repository = repository.at_mirror(mirror);
        }
        let slot = Arc::clone(
            self.loaded
                .lock()
                // Slots are inserted whole, so a panic elsewhere cannot leave the map inconsistent.
                .unwrap_or_else(PoisonError::into_inner)
                .entry(repository.line())
                .or_default(),
        );
        // The map lock is released before loading so that different repositories load in
        // parallel, while callers of the same one wait for its single download.
        let packages = slot
            .get_or_init(|| load(agent, &repository))
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(packages
            .get(name)
            .into_iter()
            .flatten()
            .map(|offered| PackageVersion {
                version: offered.version.clone(),
                artifact: offered.deb.as_ref().map(|deb| ArtifactSource {
                    url: deb.url.clone(),
                    digest: Some(ExpectedDigest::Sha256(deb.sha256.clone())),
                }),
                metadata: offered.fields.clone(),
                ..PackageVersion::default()
            })
            .collect())
    }
}

/// Every package of `repository` (an older plugin may ask for any), read with the SDK.
fn load(agent: &Agent, repository: &Repository) -> Result<Packages, String> {
    let started = Instant::now();
    let packages = apt_repo::read(repository, &|_| true, |url| get(agent, url))?;
    tracing::info!(
        repository = repository.line(),
        packages = packages.len(),
        seconds = started.elapsed().as_secs_f64(),
        "loaded Debian package index"
    );
    Ok(packages)
}

/// One GET with the download budget, its body at most what the SDK reads of an index.
fn get(agent: &Agent, url: &str) -> Result<(u16, Vec<u8>), String> {
    tracing::debug!(%url, "fetching from an APT repository");
    let response = agent
        .get(url)
        .config()
        .timeout_global(Some(DOWNLOAD_TIMEOUT))
        .timeout_connect(Some(STALL_TIMEOUT))
        .timeout_recv_response(Some(STALL_TIMEOUT))
        .timeout_per_read(Some(STALL_TIMEOUT))
        .build()
        .call()
        .map_err(|e| one_line(e.to_string()))?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Ok((status, Vec::new()));
    }
    let body = response
        .into_body()
        .into_with_config()
        .limit(apt_repo::MAX_INDEX_BYTES)
        .read_to_vec()
        .map_err(|e| one_line(e.to_string()))?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::test_server::{Reply, local_index, paths, serve};
    use crate::index::{IndexSettings, PackageIndex};
    use copa_plugin_sdk::dpkg::DpkgVersion;
    use sha2::{Digest, Sha256};
    use std::sync::Barrier;

    const PACKAGES: &str = "Package: libfoo1\nVersion: 1.2-3\nArchitecture: amd64\n\
        Filename: pool/main/f/foo/libfoo1_1.2-3_amd64.deb\n\
        SHA256: abababababababababababababababababababababababababababababababab\n\
        Description: foo library\n more text\n\n\
        Package: libfoo1\nVersion: 1.2-3+deb12u1\nArchitecture: amd64\n";

    /// The routes of a suite `suite` of component `component` with an uncompressed index.
    fn suite(suite: &str, component: &'static str, text: &str) -> Vec<(String, Vec<u8>)> {
        let path = format!("{component}/binary-amd64/Packages");
        let release = format!(
            "SHA256:\n {} {} {path}\n",
            hex::encode(Sha256::digest(text)),
            text.len()
        );
        vec![
            (
                format!("/debian/dists/{suite}/Release"),
                release.into_bytes(),
            ),
            (
                format!("/debian/dists/{suite}/{path}"),
                text.as_bytes().to_vec(),
            ),
        ]
    }

    fn ok(routes: Vec<(String, Vec<u8>)>) -> Vec<(&'static str, Reply<Vec<u8>>)> {
        routes
            .into_iter()
            .map(|(path, body)| {
                let reply = Reply {
                    status: "200 OK",
                    content_type: "application/octet-stream",
                    body,
                };
                (&*path.leak(), reply)
            })
            .collect()
    }

    fn versions(index: &PackageIndex, line: &str, name: &str) -> Vec<String> {
        index
            .versions(line, name)
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect()
    }

    #[test]
    fn versions_carry_the_stanza_and_where_the_deb_is() {
        let (origin, _) = serve(ok(suite("bookworm", "main", PACKAGES)), 3);
        let index = local_index(&format!("{origin}/simple/"));
        let line = format!("deb {origin}/debian bookworm main amd64");
        let found = index.versions(&line, "libfoo1").unwrap();
        assert_eq!(
            found[0].artifact,
            Some(ArtifactSource {
                url: format!("{origin}/debian/pool/main/f/foo/libfoo1_1.2-3_amd64.deb"),
                digest: Some(ExpectedDigest::Sha256("ab".repeat(32))),
            })
        );
        assert_eq!(found[0].metadata[0], ("Package".into(), "libfoo1".into()));
        assert_eq!(
            found[0].metadata.last().unwrap(),
            &("Description".into(), "foo library\n more text".into())
        );
        assert_eq!(found[1].artifact, None);
        // Names are exact: no normalization as for PyPI.
        assert_eq!(index.versions(&line, "LibFoo1").unwrap(), []);
    }

    #[test]
    fn a_mirror_serves_every_repository_at_its_path() {
        let (mirror, seen) = serve(ok(suite("bookworm", "main", PACKAGES)), 3);
        let settings = IndexSettings {
            apt_mirror: Some(mirror),
            ..IndexSettings::default()
        };
        let index = PackageIndex::with_proxy(settings, None).unwrap();
        let line = "deb http://deb.debian.org/debian bookworm main amd64";
        assert_eq!(
            versions(&index, line, "libfoo1"),
            ["1.2-3", "1.2-3+deb12u1"]
        );
        assert_eq!(
            paths(&seen),
            [
                "/debian/dists/bookworm/InRelease",
                "/debian/dists/bookworm/Release",
                "/debian/dists/bookworm/main/binary-amd64/Packages",
            ]
        );
    }

    #[test]
    fn loads_each_repository_once_under_concurrency_and_remembers_failures() {
        let mut routes = suite("bookworm", "main", PACKAGES);
        routes.extend(suite(
            "bookworm-updates",
            "contrib",
            "Package: contrib-tool\nVersion: 7\n",
        ));
        // Two InRelease 404s, two Releases, two indexes; a third suite has nothing: its
        // InRelease and Release are asked for once.
        let (origin, seen) = serve(ok(routes), 8);
        let index = local_index(&format!("{origin}/simple/"));
        let main = format!("deb {origin}/debian bookworm main amd64");
        let contrib = format!("deb {origin}/debian/ bookworm-updates contrib amd64");
        let missing = format!("deb {origin}/debian trixie main amd64");

        const THREADS: usize = 9;
        let barrier = Barrier::new(THREADS);
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let (index, barrier) = (&index, &barrier);
                let (main, contrib, missing) = (&main, &contrib, &missing);
                scope.spawn(move || {
                    barrier.wait();
                    match thread % 3 {
                        0 => assert_eq!(versions(index, main, "libfoo1").len(), 2),
                        1 => assert_eq!(versions(index, contrib, "contrib-tool"), ["7"]),
                        _ => {
                            let err = index.versions(missing, "x").unwrap_err();
                            assert!(err.starts_with("no InRelease or Release for "), "{err}");
                        }
                    }
                });
            }
        });
        assert_eq!(seen.lock().unwrap().len(), 8);
    }

    #[test]
    fn unreachable_repository_names_the_url() {
        // Bind then drop to get a loopback port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let index = local_index(&format!("http://127.0.0.1:{port}/simple/"));
        let line = format!("deb http://127.0.0.1:{port}/debian bookworm main amd64");
        let err = index.versions(&line, "libfoo1").unwrap_err();
        assert!(
            err.starts_with(&format!(
                "fetching http://127.0.0.1:{port}/debian/dists/bookworm/InRelease: "
            )),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn queries_the_real_debian_security_mirror() {
        if std::env::var("COPA_OFFLINE").as_deref() == Ok("1") {
            eprintln!("COPA_OFFLINE=1: skipping the real Debian mirror query");
            return;
        }
        let index = PackageIndex::new(IndexSettings::default()).unwrap();
        let found = index
            .versions(
                "deb http://deb.debian.org/debian-security bookworm-security main amd64",
                "libssl3",
            )
            .unwrap();
        // bookworm's point release carries 3.0.11-1~deb12u2; security updates are newer.
        let baseline: DpkgVersion = "3.0.11-1~deb12u2".parse().unwrap();
        assert!(
            found
                .iter()
                .any(|v| v.version.parse::<DpkgVersion>().unwrap() > baseline),
            "{found:?}"
        );
        assert!(found.iter().all(|v| v.artifact.is_some()), "{found:?}");
    }
}
