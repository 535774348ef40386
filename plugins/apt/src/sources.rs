//! The image's apt sources: `/etc/apt/sources.list` and `/etc/apt/sources.list.d/*.list` in the
//! one-line format, `*.sources` in the deb822 format (sources.list(5)).

use copa_plugin_sdk::apt_repo::Repository;
use copa_plugin_sdk::fs;

use crate::dpkg_db::stanzas;
use crate::keys::SignedBy;

/// One repository of the image's sources, and how its source says it is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub repository: Repository,
    pub signed_by: SignedBy,
}

/// Every enabled `deb` repository of the image, for the native architecture. Flat repositories
/// (a suite ending in `/`) are left out with a warning: they have no per-architecture index.
pub fn read(native_arch: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list") {
        sources.extend(parse_one_line(&text, native_arch));
    }
    let dir = "/etc/apt/sources.list.d";
    for name in fs::read_dir(dir).unwrap_or_default() {
        let path = format!("{dir}/{name}");
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        if name.ends_with(".list") {
            sources.extend(parse_one_line(&text, native_arch));
        } else if name.ends_with(".sources") {
            sources.extend(parse_deb822(&text, native_arch));
        }
    }
    sources
}

pub fn parse_one_line(text: &str, native_arch: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut architectures: Option<Vec<String>> = None;
        let (mut signed_by, mut trusted) = (SignedBy::Image, false);
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                continue;
            };
            for option in options.split_whitespace() {
                if let Some(list) = option.strip_prefix("arch=") {
                    architectures = Some(list.split(',').map(String::from).collect());
                } else if let Some(keys) = option.strip_prefix("signed-by=") {
                    signed_by = SignedBy::from_source(keys);
                } else if option == "trusted=yes" {
                    trusted = true;
                }
            }
            rest = after.trim_start();
        }
        if trusted {
            signed_by = SignedBy::Anyone;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let [uri, suite, components @ ..] = words.as_slice() else {
            continue;
        };
        expand(
            &[uri.to_string()],
            &[suite.to_string()],
            &components.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            architectures.as_deref(),
            native_arch,
            &signed_by,
            &mut out,
        );
    }
    out
}

pub fn parse_deb822(text: &str, native_arch: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in stanzas(text) {
        let field = |name: &str| -> Vec<String> {
            stanza
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.split_whitespace().map(String::from).collect())
                .unwrap_or_default()
        };
        if !field("Types").iter().any(|t| t == "deb") {
            continue;
        }
        if field("Enabled").first().is_some_and(|e| e == "no") {
            continue;
        }
        let architectures = field("Architectures");
        let signed_by = if field("Trusted").first().is_some_and(|t| t == "yes") {
            SignedBy::Anyone
        } else {
            stanza
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Signed-By"))
                .map_or(SignedBy::Image, |(_, value)| SignedBy::from_source(value))
        };
        expand(
            &field("URIs"),
            &field("Suites"),
            &field("Components"),
            (!architectures.is_empty()).then_some(architectures.as_slice()),
            native_arch,
            &signed_by,
            &mut out,
        );
    }
    out
}

/// The repositories of one source entry: each URI, suite and component, when the entry's
/// architectures (if it names any) include the native one.
fn expand(
    uris: &[String],
    suites: &[String],
    components: &[String],
    architectures: Option<&[String]>,
    native_arch: &str,
    signed_by: &SignedBy,
    out: &mut Vec<Source>,
) {
    if architectures.is_some_and(|a| !a.iter().any(|a| a == native_arch)) {
        return;
    }
    for uri in uris {
        for suite in suites {
            if suite.ends_with('/') {
                copa_plugin_sdk::log::warn(&format!(
                    "flat repository {uri} {suite} is not indexed; its packages are planned from the report only"
                ));
                continue;
            }
            for component in components {
                let repository = Repository {
                    uri: uri.trim_end_matches('/').to_string(),
                    suite: suite.clone(),
                    component: component.clone(),
                    arch: native_arch.to_string(),
                };
                out.push(Source {
                    repository,
                    signed_by: signed_by.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repositories(sources: &[Source]) -> Vec<Repository> {
        sources.iter().map(|s| s.repository.clone()).collect()
    }

    fn signed_by(sources: &[Source]) -> Vec<SignedBy> {
        sources.iter().map(|s| s.signed_by.clone()).collect()
    }

    fn repo(uri: &str, suite: &str, component: &str) -> Repository {
        Repository {
            uri: uri.into(),
            suite: suite.into(),
            component: component.into(),
            arch: "amd64".into(),
        }
    }

    #[test]
    fn reads_the_official_deb822_sources() {
        let text = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20240101T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
Enabled: no
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main

Types: deb
URIs: http://ports.example/debian
Suites: bookworm
Components: main
Architectures: arm64
";
        let sources = parse_deb822(text, "amd64");
        assert_eq!(
            repositories(&sources),
            [
                repo("http://deb.debian.org/debian", "bookworm", "main"),
                repo("http://deb.debian.org/debian", "bookworm-updates", "main"),
                repo(
                    "http://deb.debian.org/debian-security",
                    "bookworm-security",
                    "main"
                ),
                repo(
                    "http://deb.debian.org/debian-security",
                    "bookworm-security",
                    "contrib"
                ),
            ]
        );
        let keyring = SignedBy::Files(vec![
            "/usr/share/keyrings/debian-archive-keyring.gpg".into(),
        ]);
        assert_eq!(signed_by(&sources), vec![keyring; 4]);
    }

    #[test]
    fn deb822_sources_name_keys_inline_or_trust_everyone() {
        let text = "\
Types: deb
URIs: http://apt.example/x
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZabc
 -----END PGP PUBLIC KEY BLOCK-----

Types: deb
URIs: http://apt.example/y
Suites: stable
Components: main
Trusted: yes
Signed-By: /k.gpg

Types: deb
URIs: http://apt.example/z
Suites: stable
Components: main
";
        assert_eq!(
            signed_by(&parse_deb822(text, "amd64")),
            [
                SignedBy::Inline(
                    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZabc\n\
                     -----END PGP PUBLIC KEY BLOCK-----"
                        .into()
                ),
                SignedBy::Anyone,
                SignedBy::Image,
            ]
        );
    }

    #[test]
    fn reads_one_line_sources() {
        let text = "\
# comment
deb http://archive.ubuntu.com/ubuntu/ jammy main restricted # trailing
deb-src http://archive.ubuntu.com/ubuntu/ jammy main
deb [arch=amd64 signed-by=/k.gpg] http://security.ubuntu.com/ubuntu jammy-security main
deb [arch=arm64] http://ports.ubuntu.com/ubuntu-ports jammy main
deb [trusted=yes] http://127.0.0.1:8080/flat ./
";
        let sources = parse_one_line(text, "amd64");
        assert_eq!(
            repositories(&sources),
            [
                repo("http://archive.ubuntu.com/ubuntu", "jammy", "main"),
                repo("http://archive.ubuntu.com/ubuntu", "jammy", "restricted"),
                repo(
                    "http://security.ubuntu.com/ubuntu",
                    "jammy-security",
                    "main"
                ),
            ]
        );
        assert_eq!(
            signed_by(&sources),
            [
                SignedBy::Image,
                SignedBy::Image,
                SignedBy::Files(vec!["/k.gpg".into()]),
            ]
        );
        let trusted = parse_one_line(
            "deb [ trusted=yes signed-by=/k.gpg ] http://127.0.0.1:8080/debian stable main\n",
            "amd64",
        );
        assert_eq!(signed_by(&trusted), [SignedBy::Anyone]);
    }

    #[test]
    fn names_the_repository_by_its_line() {
        let r = repo("http://deb.debian.org/debian", "bookworm", "main");
        assert_eq!(
            r.line(),
            "deb http://deb.debian.org/debian bookworm main amd64"
        );
    }
}
