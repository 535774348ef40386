//! The image's apt sources: `/etc/apt/sources.list` and `/etc/apt/sources.list.d/*.list` in the
//! one-line format, `*.sources` in the deb822 format (sources.list(5)).

use copa_plugin_sdk::apt_repo::Repository;
use copa_plugin_sdk::fs;

use crate::dpkg_db::stanzas;

/// Every enabled `deb` repository of the image, for the native architecture. Flat repositories
/// (a suite ending in `/`) are left out with a warning: they have no per-architecture index.
pub fn read(native_arch: &str) -> Vec<Repository> {
    let mut repositories = Vec::new();
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list") {
        repositories.extend(parse_one_line(&text, native_arch));
    }
    let dir = "/etc/apt/sources.list.d";
    for name in fs::read_dir(dir).unwrap_or_default() {
        let path = format!("{dir}/{name}");
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        if name.ends_with(".list") {
            repositories.extend(parse_one_line(&text, native_arch));
        } else if name.ends_with(".sources") {
            repositories.extend(parse_deb822(&text, native_arch));
        }
    }
    repositories.dedup();
    repositories
}

pub fn parse_one_line(text: &str, native_arch: &str) -> Vec<Repository> {
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
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                continue;
            };
            for option in options.split_whitespace() {
                if let Some(list) = option.strip_prefix("arch=") {
                    architectures = Some(list.split(',').map(String::from).collect());
                }
            }
            rest = after.trim_start();
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
            &mut out,
        );
    }
    out
}

pub fn parse_deb822(text: &str, native_arch: &str) -> Vec<Repository> {
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
        expand(
            &field("URIs"),
            &field("Suites"),
            &field("Components"),
            (!architectures.is_empty()).then_some(architectures.as_slice()),
            native_arch,
            &mut out,
        );
    }
    out
}

fn expand(
    uris: &[String],
    suites: &[String],
    components: &[String],
    architectures: Option<&[String]>,
    native_arch: &str,
    out: &mut Vec<Repository>,
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
                out.push(Repository {
                    uri: uri.trim_end_matches('/').to_string(),
                    suite: suite.clone(),
                    component: component.clone(),
                    arch: native_arch.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            parse_deb822(text, "amd64"),
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
        assert_eq!(
            parse_one_line(text, "amd64"),
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
