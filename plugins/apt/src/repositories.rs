//! The image's APT repositories as this plugin reads them: over `http`, with the SDK's
//! [`apt_repo`], from the origins the run grants.
//!
//! The manifest declares the index `deb` once per archive Debian and Ubuntu images name (each
//! grants its origin). The user's `--index deb=URL` (or `--apt-mirror URL`) replaces them: the
//! first such URL is a mirror that serves every repository of the image at its path, in planning
//! and in the run. Without one, a repository on another origin is not read: the run would have
//! to reach an origin nobody granted. Each Release must be signed by the keys its source names
//! ([`Keys`]); one that is not is not read, like a repository that cannot be reached.

use std::cell::OnceCell;
use std::collections::{BTreeSet, HashSet};

use copa_plugin_sdk::apt_repo::{self, Offered, Packages, Repository};
use copa_plugin_sdk::dpkg::DpkgVersion;
use copa_plugin_sdk::{IndexSpec, Policy, index_urls, ospkg};

use crate::keys::Keys;

/// The archives Debian and Ubuntu images name in their sources, one `deb` index each: (default
/// URL, what it is).
pub const ARCHIVES: &[(&str, &str)] = &[
    ("http://deb.debian.org/debian", "Debian's archive"),
    (
        "http://deb.debian.org/debian-security",
        "Debian's security updates",
    ),
    (
        "http://security.debian.org/debian-security",
        "Debian's security updates, as older images name them",
    ),
    ("http://archive.ubuntu.com/ubuntu", "Ubuntu's archive"),
    (
        "http://security.ubuntu.com/ubuntu",
        "Ubuntu's security updates",
    ),
    (
        "http://ports.ubuntu.com/ubuntu-ports",
        "Ubuntu's archive for architectures other than amd64 and i386",
    ),
];

/// The indexes of the manifest; the first says what the user's URL does.
pub fn declared() -> Vec<IndexSpec> {
    ARCHIVES
        .iter()
        .enumerate()
        .map(|(i, (url, what))| IndexSpec {
            ecosystem: apt_repo::ECOSYSTEM.into(),
            default_url: (*url).into(),
            description: if i == 0 {
                format!(
                    "{what}; the first URL given (also --apt-mirror) is a mirror serving every \
                     repository of the image instead of all of these"
                )
            } else {
                (*what).into()
            },
        })
        .collect()
}

/// Where the repositories are read under a policy.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    /// At their own URIs, when on one of these origins.
    Direct(Vec<String>),
    /// All at this mirror, keeping their paths.
    Mirror(String),
}

impl Access {
    pub fn of(policy: &Policy) -> Result<Self, String> {
        let mut urls: Vec<&str> = Vec::new();
        for url in index_urls(policy, apt_repo::ECOSYSTEM) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        let defaults: BTreeSet<&str> = ARCHIVES.iter().map(|(url, _)| *url).collect();
        if urls.iter().all(|url| defaults.contains(url)) {
            return Ok(Access::Direct(urls.iter().map(|url| origin(url)).collect()));
        }
        let mirror = apt_repo::mirror_url(urls[0]).map_err(|e| format!("--index deb: {e}"))?;
        Ok(Access::Mirror(mirror))
    }

    /// The mirror, for apt in the run.
    pub fn mirror(&self) -> Option<&str> {
        match self {
            Access::Mirror(mirror) => Some(mirror),
            Access::Direct(_) => None,
        }
    }

    /// Where `repository` is read, or `None` when its origin is not granted.
    fn locate(&self, repository: Repository) -> Option<Repository> {
        match self {
            Access::Mirror(mirror) => Some(repository.at_mirror(mirror)),
            Access::Direct(origins) => origins
                .contains(&origin(&repository.uri))
                .then_some(repository),
        }
    }

    /// Why the repositories of `lines` cannot all be read in this run, when one is on an origin
    /// that is not granted: one reason, naming the first such repository and what grants it.
    pub fn refusal(&self, lines: &[&str]) -> Option<String> {
        let ungranted = lines
            .iter()
            .filter_map(|line| Repository::parse(line).ok())
            .find(|repository| self.locate(repository.clone()).is_none())?;
        Some(format!(
            "the image's repository {} is on {}, which this run does not grant; \
             --apt-mirror URL (or --index deb=URL) names a mirror that serves it",
            ungranted.uri,
            origin(&ungranted.uri)
        ))
    }
}

/// `scheme://host[:port]` of a URI, lower case, without a login or the scheme's default port.
pub fn origin(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let host_port = host_port.strip_suffix(default_port).unwrap_or(host_port);
    format!("{scheme}://{}", host_port.to_ascii_lowercase())
}

/// What the image's repositories offer of some packages, read on first use: each repository's
/// versions, or why it could not be read.
pub struct Offers<'a> {
    lines: &'a [&'a str],
    access: &'a Access,
    keys: &'a Keys<'a>,
    wanted: &'a dyn Fn(&str) -> bool,
    read: OnceCell<Vec<Result<Packages, String>>>,
}

impl<'a> Offers<'a> {
    /// The repositories of `lines` under `access`, signed by the `keys` their sources name,
    /// keeping the packages `wanted`.
    pub fn new(
        lines: &'a [&'a str],
        access: &'a Access,
        keys: &'a Keys<'a>,
        wanted: &'a dyn Fn(&str) -> bool,
    ) -> Self {
        Offers {
            lines,
            access,
            keys,
            wanted,
            read: OnceCell::new(),
        }
    }

    fn repositories(&self) -> &[Result<Packages, String>] {
        self.read.get_or_init(|| {
            self.lines
                .iter()
                .map(|line| {
                    let repository = Repository::parse(line)?;
                    let at = self
                        .access
                        .locate(repository)
                        .ok_or_else(|| format!("{line}: not granted in this run"))?;
                    let trust = self.keys.trust(line).map_err(|e| format!("{line}: {e}"))?;
                    apt_repo::read_over_http(&at, &trust, self.wanted)
                })
                .collect()
        })
    }

    /// Why the first repository that could not be read was not.
    pub fn failure(&self) -> Option<&str> {
        self.repositories()
            .iter()
            .find_map(|read| read.as_ref().err())
            .map(String::as_str)
    }

    /// The first repository's record of `name` at exactly `version`.
    pub fn record(&self, name: &str, version: &str) -> Option<&Offered> {
        self.repositories()
            .iter()
            .filter_map(|read| read.as_ref().ok())
            .filter_map(|packages| packages.get(name))
            .flatten()
            .find(|offered| offered.version == version)
    }
}

impl ospkg::Repositories for Offers<'_> {
    /// Every repository must have been read: a newest version from a partial view could be
    /// older than what apt installs.
    fn newest(&self, package: &str) -> Result<Option<String>, String> {
        if self.lines.is_empty() {
            return Err("the image configures no apt repository".into());
        }
        // A multiarch name ("libc6:i386") is asked for by its package name.
        let name = package.split(':').next().unwrap_or(package);
        let mut offered: Vec<&str> = Vec::new();
        for read in self.repositories() {
            let packages = read.as_ref().map_err(Clone::clone)?;
            offered.extend(
                packages
                    .get(name)
                    .into_iter()
                    .flatten()
                    .map(|o| o.version.as_str()),
            );
        }
        Ok(ospkg::newest::<DpkgVersion>(offered))
    }

    fn refusal(&self) -> Option<String> {
        self.access.refusal(self.lines)
    }
}

/// Names as the repositories list them: without a multiarch suffix.
pub fn wanted<'a>(names: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
    names
        .into_iter()
        .map(|name| name.split(':').next().unwrap_or(name).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use copa_plugin_sdk::PatchLevel;

    fn policy(indexes: &[(&str, &str)]) -> Policy {
        Policy {
            library_patch_level: PatchLevel::Patch,
            update_all: false,
            toolchain_patch_level: None,
            options: Vec::new(),
            indexes: indexes
                .iter()
                .map(|(e, u)| (e.to_string(), u.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_declared_archives_are_read_directly_and_a_user_url_is_a_mirror() {
        let defaults: Vec<(&str, &str)> = ARCHIVES.iter().map(|(url, _)| ("deb", *url)).collect();
        let direct = Access::of(&policy(&defaults)).unwrap();
        assert_eq!(direct.mirror(), None);
        let lines = [
            "deb http://deb.debian.org/debian bookworm main amd64",
            "deb http://DEB.debian.org:80/debian-security bookworm-security main amd64",
        ];
        assert_eq!(direct.refusal(&lines), None);
        let third_party = "deb https://download.docker.com/linux/debian bookworm stable amd64";
        assert_eq!(
            direct.refusal(&[lines[0], third_party]).unwrap(),
            "the image's repository https://download.docker.com/linux/debian is on \
             https://download.docker.com, which this run does not grant; --apt-mirror URL (or \
             --index deb=URL) names a mirror that serves it"
        );

        let mirror = Access::of(&policy(&[
            ("deb", "http://127.0.0.1:3142/"),
            ("deb", "http://other.example"),
        ]))
        .unwrap();
        assert_eq!(mirror.mirror(), Some("http://127.0.0.1:3142"));
        assert_eq!(mirror.refusal(&[lines[0], third_party]), None);
        let err = Access::of(&policy(&[("deb", "http://m.example/a#b")])).unwrap_err();
        assert!(err.starts_with("--index deb: "), "{err}");
    }

    #[test]
    fn origins_are_compared_as_the_host_grants_them() {
        assert_eq!(
            origin("HTTP://User@Deb.Debian.org:80/debian"),
            "http://deb.debian.org"
        );
        assert_eq!(origin("https://m.example:443"), "https://m.example");
        assert_eq!(origin("https://m.example:8443/x"), "https://m.example:8443");
    }
}
