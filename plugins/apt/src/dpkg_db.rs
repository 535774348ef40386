//! The dpkg database: `/var/lib/dpkg/status`, or the distroless form `/var/lib/dpkg/status.d/*`
//! (one file per package, written by image builders such as Bazel's rules_distroless).

/// One installed binary package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpkgPackage {
    /// The binary package name, with `:arch` for a package of a foreign architecture
    /// (multiarch), as dpkg-query names it.
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Selected "hold" (`apt-mark hold`): apt must not upgrade it.
    pub held: bool,
}

/// The packages of a status file that are installed (`Status: <want> ok installed`).
/// A status.d entry has no Status field: being listed means installed.
pub fn parse_status(text: &str, native_arch: Option<&str>) -> Vec<DpkgPackage> {
    let mut packages = Vec::new();
    for stanza in stanzas(text) {
        let field = |name: &str| {
            stanza
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        };
        let (Some(name), Some(version)) = (field("Package"), field("Version")) else {
            continue;
        };
        let status: Vec<&str> = field("Status")
            .unwrap_or("install ok installed")
            .split_whitespace()
            .collect();
        if status.get(2) != Some(&"installed") {
            continue;
        }
        let architecture = field("Architecture").unwrap_or("all").to_string();
        let foreign = architecture != "all" && native_arch.is_some_and(|n| n != architecture);
        packages.push(DpkgPackage {
            name: if foreign {
                format!("{name}:{architecture}")
            } else {
                name.to_string()
            },
            version: version.to_string(),
            architecture,
            held: status.first() == Some(&"hold"),
        });
    }
    packages
}

/// The machine's architecture: dpkg's own package records it; otherwise the commonest
/// architecture among the packages (distroless images carry no dpkg).
pub fn native_architecture(text: &str) -> Option<String> {
    let all = parse_status(text, None);
    if let Some(dpkg) = all.iter().find(|p| p.name == "dpkg") {
        return Some(dpkg.architecture.clone());
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for p in all.iter().filter(|p| p.architecture != "all") {
        match counts.iter_mut().find(|(a, _)| *a == p.architecture) {
            Some((_, n)) => *n += 1,
            None => counts.push((&p.architecture, 1)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(a, _)| a.to_string())
}

/// The stanzas of a deb822-style file as (field, value) lists; continuation lines are joined
/// to their field with newlines.
pub fn stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut all = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                all.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        all.push(current);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: libssl3
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation.
 .
 It provides libssl and libcrypto.

Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21.22

Package: tzdata
Status: hold ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: old-removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9+deb12u4
";

    #[test]
    fn reads_installed_packages_holds_and_foreign_architectures() {
        let native = native_architecture(STATUS);
        assert_eq!(native.as_deref(), Some("amd64"));
        let packages = parse_status(STATUS, native.as_deref());
        let summary: Vec<(&str, &str, bool)> = packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.held))
            .collect();
        assert_eq!(
            summary,
            [
                ("libssl3", "3.0.11-1~deb12u2", false),
                ("dpkg", "1.21.22", false),
                ("tzdata", "2024a-0+deb12u1", true),
                ("libc6:i386", "2.36-9+deb12u4", false),
            ]
        );
    }

    #[test]
    fn a_status_d_entry_without_status_is_installed() {
        let entry = "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: arm64\n";
        assert_eq!(native_architecture(entry).as_deref(), Some("arm64"));
        let packages = parse_status(entry, Some("arm64"));
        assert_eq!(packages[0].name, "base-files");
        assert!(!packages[0].held);
    }

    #[test]
    fn continuation_lines_stay_with_their_field() {
        let stanzas = stanzas("A: 1\nB: x\n y\n\n\nC: 3\n");
        assert_eq!(stanzas.len(), 2);
        assert_eq!(stanzas[0][1], ("B".to_string(), "x\ny".to_string()));
    }
}
