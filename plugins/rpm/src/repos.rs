//! The image's package-manager configuration, parsed without the image: `.repo` files (the
//! INI dialect of dnf.conf(5) and yum.conf(5)), the `$variables` in their URLs, and what keeps
//! packages from being updated (versionlock lists, `exclude=`). Pure text functions.

use std::collections::BTreeMap;

/// One `[section]` of an INI file: its name and its `key=value` options, in order.
pub type Section = (String, Vec<(String, String)>);

/// Parses dnf's INI dialect: `[section]` headers, `key=value` options (also `key: value`),
/// `#` and `;` comments, and continuation lines (leading whitespace) that extend the previous
/// value, as multi-URL `baseurl` lists use.
pub fn parse_ini(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for raw in text.lines() {
        let continued = raw.starts_with([' ', '\t']);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.trim().to_string(), Vec::new()));
            continue;
        }
        let Some((_, options)) = sections.last_mut() else {
            continue;
        };
        if continued && let Some((_, value)) = options.last_mut() {
            value.push(' ');
            value.push_str(line);
            continue;
        }
        let Some(split) = line.find(['=', ':']) else {
            continue;
        };
        options.push((
            line[..split].trim().to_ascii_lowercase(),
            line[split + 1..].trim().to_string(),
        ));
    }
    sections
}

fn option<'a>(options: &'a [(String, String)], key: &str) -> Option<&'a str> {
    // The last assignment wins, as in dnf.
    options
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// dnf's booleans: 1/yes/true/on and 0/no/false/off.
fn boolean(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// One enabled repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    pub id: String,
    /// The first `baseurl`, else the `mirrorlist`, else the `metalink`, variables expanded.
    pub url: String,
}

impl Repository {
    /// The `package-index` ecosystem naming this repository: `rpm <url> <basearch>`.
    pub fn ecosystem(&self, basearch: &str) -> String {
        format!("rpm {} {basearch}", self.url)
    }
}

/// The enabled repositories of one `.repo` file (`enabled` defaults to on, as in dnf).
pub fn repositories(text: &str, vars: &Vars) -> Vec<Repository> {
    parse_ini(text)
        .into_iter()
        .filter(|(id, _)| id != "main")
        .filter(|(_, options)| option(options, "enabled").and_then(boolean) != Some(false))
        .filter_map(|(id, options)| {
            let url = option(&options, "baseurl")
                .and_then(|urls| urls.split([' ', ',']).find(|u| !u.is_empty()))
                .or_else(|| option(&options, "mirrorlist").filter(|u| !u.is_empty()))
                .or_else(|| option(&options, "metalink").filter(|u| !u.is_empty()))?;
            Some(Repository {
                id,
                url: vars.expand(url),
            })
        })
        .collect()
}

/// The values of dnf's `$variables`.
#[derive(Clone, Debug, Default)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_string(), value.trim().to_string());
    }

    /// The built-in variables: `$arch`, `$basearch`, `$releasever` (with `$releasever_major`
    /// and `$releasever_minor`, as dnf ≥ 4.18 derives them).
    pub fn builtin(arch: &str, releasever: &str) -> Vars {
        let mut vars = Vars::default();
        vars.set("arch", arch);
        vars.set("basearch", basearch(arch));
        vars.set("releasever", releasever);
        let (major, minor) = releasever.split_once('.').unwrap_or((releasever, ""));
        vars.set("releasever_major", major);
        vars.set("releasever_minor", minor);
        vars
    }

    /// Replaces `$name` and `${name}` of known variables; unknown ones stay as written, so the
    /// index reports a URL it cannot use rather than a wrong one.
    pub fn expand(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            match self.0.get(name).filter(|_| !name.is_empty()) {
                Some(value) => out.push_str(value),
                None => {
                    out.push('$');
                    out.push_str(&after[..consumed]);
                }
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        out
    }
}

/// dnf's `$basearch` for a machine architecture (the base of each arch family in dnf's table).
pub fn basearch(arch: &str) -> &str {
    match arch {
        "i386" | "i486" | "i586" | "i686" | "athlon" | "geode" => "i386",
        "x86_64" | "amd64" | "ia32e" | "x86_64_v2" | "x86_64_v3" | "x86_64_v4" => "x86_64",
        "armv7hl" | "armv7hnl" | "armv6hl" => "armhfp",
        "armv5tel" | "armv5tejl" | "armv6l" | "armv7l" => "arm",
        "ppc64le" => "ppc64le",
        "ppc64" | "ppc64p7" => "ppc64",
        "s390x" => "s390x",
        "aarch64" | "arm64" => "aarch64",
        other => other,
    }
}

/// The package names a versionlock list locks (dnf's `versionlock.list`, yum's too): each line
/// a `name-[epoch:]version-release[.arch]` pattern; `!` lines exclude one version instead and
/// lock nothing. Returns (name pattern, line).
pub fn versionlocks(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|line| {
            // rpm forbids '-' in versions and releases: the name is all before the last two.
            let (rest, _release) = line.rsplit_once('-')?;
            let (name, _version) = rest.rsplit_once('-')?;
            // yum's format may lead with the epoch: `0:bash-5.1.8-6.el9.*`.
            let name = name.split_once(':').map_or(name, |(_, n)| n);
            (!name.is_empty()).then(|| (name.to_string(), line.to_string()))
        })
        .collect()
}

/// The package patterns `exclude=` (or `excludepkgs=`) of the `[main]` section names.
pub fn main_excludes(text: &str) -> Vec<String> {
    parse_ini(text)
        .into_iter()
        .filter(|(section, _)| section == "main")
        .flat_map(|(_, options)| {
            options
                .into_iter()
                .filter(|(k, _)| k == "exclude" || k == "excludepkgs")
                .flat_map(|(_, v)| {
                    v.split([' ', ','])
                        .filter(|p| !p.is_empty())
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
        })
        .collect()
}

/// Shell-style matching of a package name: `*`, `?` and `[...]` sets, as dnf's fnmatch.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(1).position(|&c| c == ']') else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let set = &p[1..close + 1];
                let (negated, set) = match set.first() {
                    Some('!' | '^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let Some(&c) = n.first() else { return false };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negated && go(&p[close + 2..], &n[1..])
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// dnf's `$releasever` from the installed packages (`dnf.rpm.detect_releasever`): the first of
/// these capabilities some package provides decides; the provide's own version when it is an
/// `=` provide of another package's name (`system-release(releasever) = 9`), else the
/// providing package's version.
pub fn releasever<'a>(
    packages: impl Iterator<Item = &'a crate::header::Package> + Clone,
) -> Option<String> {
    const DISTROVERPKG: &[&str] = &[
        "system-release(releasever)",
        "system-release",
        "distribution-release",
        "redhat-release",
        "suse-release",
    ];
    const RPMSENSE_EQUAL: u32 = 8;
    for capability in DISTROVERPKG {
        for package in packages.clone() {
            if let Some((_, flags, version)) =
                package.provides.iter().find(|(n, _, _)| n == capability)
            {
                if *flags == RPMSENSE_EQUAL && !version.is_empty() && package.name != *capability {
                    return Some(version.clone());
                }
                return Some(package.version.clone());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROCKY: &str = "\
[baseos]
name=Rocky Linux $releasever - BaseOS
mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever$rltype
#baseurl=http://dl.rockylinux.org/$contentdir/$releasever/BaseOS/$basearch/os/
gpgcheck=1
enabled=1

[baseos-debuginfo]
name=Rocky Linux $releasever - BaseOS - Debug
baseurl=http://dl.rockylinux.org/$contentdir/$releasever/BaseOS/$basearch/debug/tree/
enabled=0

[appstream]
baseurl = http://dl.rockylinux.org/$contentdir/$releasever/AppStream/$basearch/os/
          http://mirror.example/rocky/$releasever/AppStream/$basearch/os/
gpgcheck=1
; no enabled= line: enabled

[extras]
name=no URL at all
enabled=True
";

    #[test]
    fn enabled_repositories_with_their_first_url_expanded() {
        let mut vars = Vars::builtin("x86_64", "9");
        vars.set("contentdir", "pub/rocky\n");
        vars.set("rltype", "");
        let repos = repositories(ROCKY, &vars);
        let ecosystems: Vec<(String, String)> = repos
            .iter()
            .map(|r| (r.id.clone(), r.ecosystem("x86_64")))
            .collect();
        assert_eq!(
            ecosystems,
            [
                (
                    "baseos".to_string(),
                    "rpm https://mirrors.rockylinux.org/mirrorlist?arch=x86_64&repo=BaseOS-9 x86_64"
                        .to_string()
                ),
                (
                    "appstream".to_string(),
                    "rpm http://dl.rockylinux.org/pub/rocky/9/AppStream/x86_64/os/ x86_64"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn variables_braced_unknown_and_derived() {
        let vars = Vars::builtin("i686", "8.10");
        assert_eq!(
            vars.expand("$basearch/${releasever_major}/$releasever_minor/$arch/$nope/${x"),
            "i386/8/10/i686/$nope/${x"
        );
        assert_eq!(vars.expand("cost$5"), "cost$5");
        assert_eq!(basearch("armv7hl"), "armhfp");
        assert_eq!(basearch("aarch64"), "aarch64");
    }

    #[test]
    fn locks_and_excludes() {
        let locks = versionlocks(
            "# Added lock on Mon\nbash-0:5.1.8-6.el9.*\n!openssl-1:3.0.7-1.el9.*\n\
             0:curl-7.76.1-26.el9.x86_64\nkernel*-5.14.0-*\n",
        );
        let names: Vec<&str> = locks.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["bash", "curl", "kernel*"]);
        let excludes = main_excludes(
            "[main]\ngpgcheck=1\nexclude=kernel* python3-*,  systemd\n[other]\nexclude=bash\n",
        );
        assert_eq!(excludes, ["kernel*", "python3-*", "systemd"]);
        assert!(glob_matches("kernel*", "kernel-core"));
        assert!(glob_matches("python3-?ib*", "python3-libs"));
        assert!(glob_matches("lib[a-c]rypt", "libcrypt"));
        assert!(!glob_matches("lib[!a-c]rypt", "libcrypt"));
        assert!(!glob_matches("systemd", "systemd-libs"));
        assert!(glob_matches("systemd*", "systemd"));
    }

    #[test]
    fn releasever_from_the_release_package() {
        use crate::header::Package;
        let package = |name: &str, version: &str, provides: &[(&str, u32, &str)]| Package {
            name: name.into(),
            epoch: None,
            version: version.into(),
            release: "1.el9".into(),
            arch: Some("noarch".into()),
            provides: provides
                .iter()
                .map(|(n, f, v)| (n.to_string(), *f, v.to_string()))
                .collect(),
        };
        let rocky = [
            package("bash", "5.1.8", &[("bash", 8, "5.1.8-6.el9")]),
            package(
                "rocky-release",
                "9.3",
                &[
                    ("system-release", 8, "9.3-1.2.el9"),
                    ("system-release(releasever)", 8, "9"),
                ],
            ),
        ];
        assert_eq!(releasever(rocky.iter()).as_deref(), Some("9"));
        let amazon = [package(
            "system-release",
            "2023.5.20240805",
            &[("system-release", 8, "2023.5.20240805-0.amzn2023")],
        )];
        assert_eq!(
            releasever(amazon.iter()).as_deref(),
            Some("2023.5.20240805")
        );
        assert_eq!(releasever(rocky[..1].iter()), None);
    }
}
