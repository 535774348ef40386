//! The Node.js version of the image, without running `node`: from the headers that official
//! builds install, else from the distribution's package database.

use copa_plugin_sdk::fs;

/// Where Node.js installs its version header: official tarballs and images under /usr/local,
/// distribution dev packages under /usr, distroless under /nodejs.
const HEADERS: &[&str] = &[
    "/usr/local/include/node/node_version.h",
    "/usr/include/node/node_version.h",
    "/nodejs/include/node/node_version.h",
    "/opt/nodejs/include/node/node_version.h",
];

/// Distribution packages that carry the node binary.
const PACKAGES: &[&str] = &["nodejs", "nodejs-current", "nodejs-lts"];

/// The Node.js version ("18.20.4"), or `None` when nothing in the image says.
pub fn version() -> Option<String> {
    HEADERS
        .iter()
        .find_map(|h| fs::read_to_string(h).ok().and_then(|t| from_header(&t)))
        .or_else(from_dpkg)
        .or_else(from_apk)
}

/// `#define NODE_MAJOR_VERSION 18` and its MINOR and PATCH siblings.
pub fn from_header(text: &str) -> Option<String> {
    let number = |name: &str| {
        text.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("#define") && words.next() == Some(name))
                .then(|| words.next()?.parse::<u64>().ok())
                .flatten()
        })
    };
    Some(format!(
        "{}.{}.{}",
        number("NODE_MAJOR_VERSION")?,
        number("NODE_MINOR_VERSION")?,
        number("NODE_PATCH_VERSION")?
    ))
}

fn from_dpkg() -> Option<String> {
    let mut texts: Vec<String> = fs::read_to_string("/var/lib/dpkg/status")
        .into_iter()
        .collect();
    // Distroless images keep one status file per package.
    texts.extend(
        PACKAGES
            .iter()
            .filter_map(|p| fs::read_to_string(&format!("/var/lib/dpkg/status.d/{p}")).ok()),
    );
    texts.iter().find_map(|t| from_dpkg_status(t))
}

/// The upstream version of an installed nodejs package in a dpkg status file
/// ("18.20.4+dfsg-1~deb12u1" -> "18.20.4").
pub fn from_dpkg_status(text: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(str::trim)
            })
        };
        let package = field("Package")?;
        let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
        if !PACKAGES.contains(&package) || !installed {
            return None;
        }
        upstream(field("Version")?)
    })
}

fn from_apk() -> Option<String> {
    let text = fs::read_to_string("/lib/apk/db/installed").ok()?;
    text.split("\n\n").find_map(|entry| {
        let field = |key: &str| entry.lines().find_map(|l| l.strip_prefix(key));
        PACKAGES
            .contains(&field("P:")?)
            .then(|| upstream(field("V:")?))
            .flatten()
    })
}

/// `MAJOR.MINOR.PATCH` at the start of a distribution version ("1:18.20.4+dfsg-1", "20.15.1-r0").
fn upstream(version: &str) -> Option<String> {
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    let numeric: String = version
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts: Vec<&str> = numeric.trim_end_matches('.').split('.').collect();
    (parts.len() >= 3 && parts[..3].iter().all(|p| !p.is_empty())).then(|| parts[..3].join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header() {
        let header = "#ifndef SRC_NODE_VERSION_H_\n#define NODE_MAJOR_VERSION 20\n#define NODE_MINOR_VERSION 15\n#define NODE_PATCH_VERSION 1\n#define NODE_VERSION_IS_LTS 1\n";
        assert_eq!(from_header(header).as_deref(), Some("20.15.1"));
        assert_eq!(from_header("#define NODE_MAJOR_VERSION 20\n"), None);
    }

    #[test]
    fn reads_dpkg_and_apk_versions() {
        let status = "Package: nodejs-doc\nStatus: install ok installed\nVersion: 18.20.4+dfsg-1~deb12u1\n\nPackage: nodejs\nStatus: deinstall ok config-files\nVersion: 12.0.0\n\nPackage: nodejs\nStatus: install ok installed\nVersion: 18.20.4+dfsg-1~deb12u1\n";
        assert_eq!(from_dpkg_status(status).as_deref(), Some("18.20.4"));
        assert_eq!(upstream("1:18.20.4+dfsg-1").as_deref(), Some("18.20.4"));
        assert_eq!(upstream("20.15.1-r0").as_deref(), Some("20.15.1"));
        assert_eq!(upstream("18.20").as_deref(), None);
    }
}
