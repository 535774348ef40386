//! What apk keeps on disk, parsed without the image: the installed database
//! (`/lib/apk/db/installed`), the world file (`/etc/apk/world`) and the repository lists
//! (`/etc/apk/repositories`, `repositories.d/*.list`). Pure text functions, tested natively.

/// One package record of the installed database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
    /// The source package (`o:`), which is what security trackers name.
    pub origin: Option<String>,
}

/// Parses apk's installed database: records separated by blank lines, one `K:value` per line.
/// Only `P:` (name), `V:` (version), `A:` (arch) and `o:` (origin) matter here; the file lists
/// (`F:`, `R:`, `Z:`, ...) are skipped. A record without a name or version is not a package
/// (a torn write) and is left out rather than guessed at.
pub fn parse_installed(text: &str) -> Vec<Installed> {
    let mut packages = Vec::new();
    let mut current = Record::default();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if let Some(package) = current.take() {
                packages.push(package);
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "P" => current.name = Some(value.to_string()),
            "V" => current.version = Some(value.to_string()),
            "A" => current.arch = Some(value.to_string()),
            "o" => current.origin = Some(value.to_string()),
            _ => {}
        }
    }
    packages
}

#[derive(Default)]
struct Record {
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    origin: Option<String>,
}

impl Record {
    fn take(&mut self) -> Option<Installed> {
        let record = std::mem::take(self);
        Some(Installed {
            name: record.name.filter(|n| !n.is_empty())?,
            version: record.version.filter(|v| !v.is_empty())?,
            arch: record.arch,
            origin: record.origin,
        })
    }
}

/// The machine architecture apk installs for: `/etc/apk/arch` when the image has it, else the
/// architecture most of the installed packages are built for (`noarch` does not count).
pub fn architecture(arch_file: Option<&str>, packages: &[Installed]) -> Option<String> {
    if let Some(arch) = arch_file
        .and_then(|text| text.split_whitespace().next())
        .filter(|a| !a.is_empty())
    {
        return Some(arch.to_string());
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for arch in packages
        .iter()
        .filter_map(|p| p.arch.as_deref())
        .filter(|a| *a != "noarch")
    {
        match counts.iter_mut().find(|(a, _)| *a == arch) {
            Some((_, n)) => *n += 1,
            None => counts.push((arch, 1)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(a, _)| a.to_string())
}

/// One dependency of the world file: `[!]name[@tag][op version]`, apk-world(5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldEntry {
    pub name: String,
    pub tag: Option<String>,
    /// The operator as written (`=`, `~`, `=~`, `<`, `>=`, `><` for a checksum, ...), empty
    /// when the entry names the package alone.
    pub op: String,
    pub version: String,
    /// A `!name` entry forbids the package.
    pub conflict: bool,
    /// The entry as written, for messages.
    pub text: String,
}

impl WorldEntry {
    /// Whether the entry fixes the package at one version (`=`), a version prefix (`~`, `=~`)
    /// or one exact file (`><` checksum): apk then never moves it, so a patch must not either.
    /// Ranges (`<`, `>=`) leave room to upgrade and are not pins.
    pub fn pins(&self) -> bool {
        !self.conflict && matches!(self.op.as_str(), "=" | "~" | "=~" | "~=" | "><")
    }
}

/// Parses the world file: whitespace-separated dependencies (apk writes one per line).
pub fn parse_world(text: &str) -> Vec<WorldEntry> {
    text.split_whitespace()
        .filter_map(parse_dependency)
        .collect()
}

fn parse_dependency(token: &str) -> Option<WorldEntry> {
    let (conflict, rest) = match token.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let is_op = |c: char| matches!(c, '<' | '>' | '=' | '~');
    let name_end = rest
        .find(|c: char| c == '@' || is_op(c))
        .unwrap_or(rest.len());
    let name = &rest[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &rest[name_end..];
    let mut tag = None;
    if let Some(after) = rest.strip_prefix('@') {
        let tag_end = after.find(is_op).unwrap_or(after.len());
        tag = Some(after[..tag_end].to_string()).filter(|t| !t.is_empty());
        rest = &after[tag_end..];
    }
    let op_end = rest.find(|c: char| !is_op(c)).unwrap_or(rest.len());
    Some(WorldEntry {
        name: name.to_string(),
        tag,
        op: rest[..op_end].to_string(),
        version: rest[op_end..].to_string(),
        conflict,
        text: token.to_string(),
    })
}

/// One repository line: where the index lives and the tag that gates it. Packages of a tagged
/// repository (`@edge https://...`) are installed only for world entries that name the tag
/// (`name@edge`); apk ignores it for everything else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    pub tag: Option<String>,
    pub url: String,
}

impl Repository {
    /// The `package-index` ecosystem naming this repository: `apk <url> <arch>`, where apk
    /// reads `<url>/<arch>/APKINDEX.tar.gz`.
    pub fn ecosystem(&self, arch: &str) -> String {
        format!("apk {} {arch}", self.url)
    }
}

/// Parses a repositories file (apk-repositories(5)): one repository a line, `#` comments and
/// blank lines skipped, an optional leading `@tag`. apk-tools 3 also allows a type keyword
/// (`v2`, `v3`) before the URL and components after it, each component its own repository
/// below the URL.
pub fn parse_repositories(text: &str) -> Vec<Repository> {
    let mut repositories = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace().peekable();
        let tag = words
            .next_if(|w| w.starts_with('@'))
            .map(|w| w[1..].to_string())
            .filter(|t| !t.is_empty());
        words.next_if(|w| matches!(*w, "v2" | "v3"));
        let Some(url) = words.next() else {
            continue;
        };
        let url = url.trim_end_matches('/');
        let components: Vec<&str> = words.collect();
        if components.is_empty() {
            repositories.push(Repository {
                tag,
                url: url.to_string(),
            });
        } else {
            repositories.extend(components.iter().map(|component| Repository {
                tag: tag.clone(),
                url: format!("{url}/{component}"),
            }));
        }
    }
    repositories
}

/// The repository attribute line for one repository: its ecosystem, led by `@tag ` when tagged.
pub fn repository_line(repository: &Repository, arch: &str) -> String {
    match &repository.tag {
        Some(tag) => format!("@{tag} {}", repository.ecosystem(arch)),
        None => repository.ecosystem(arch),
    }
}

/// Reads a repository attribute line back: (tag, ecosystem).
pub fn parse_repository_line(line: &str) -> (Option<&str>, &str) {
    match line.strip_prefix('@').and_then(|l| l.split_once(' ')) {
        Some((tag, ecosystem)) => (Some(tag), ecosystem),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &str = "\
C:Q1a9UWnsAh0p2Q8aTCc3ZmuGnm+Xc=
P:musl
V:1.2.4-r1
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1681228881
c:f93af038c3de7146121c2ea8124ba5ce29b4b058
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1gFIVv+o8pBGWOW5BNxNRR3l8ZWE=

P:libssl3
V:3.1.0-r4
A:x86_64
o:openssl
D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3

P:alpine-baselayout-data
V:3.4.3-r1
A:x86_64
o:alpine-baselayout

P:ca-certificates-bundle
V:20230506-r0
A:noarch
o:ca-certificates

V:9.9-r0
A:x86_64
";

    #[test]
    fn reads_name_version_arch_and_origin_of_each_record() {
        let packages = parse_installed(INSTALLED);
        let summary: Vec<(&str, &str, Option<&str>, Option<&str>)> = packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.arch.as_deref(),
                    p.origin.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("musl", "1.2.4-r1", Some("x86_64"), Some("musl")),
                ("libssl3", "3.1.0-r4", Some("x86_64"), Some("openssl")),
                (
                    "alpine-baselayout-data",
                    "3.4.3-r1",
                    Some("x86_64"),
                    Some("alpine-baselayout")
                ),
                (
                    "ca-certificates-bundle",
                    "20230506-r0",
                    Some("noarch"),
                    Some("ca-certificates")
                ),
            ],
            "the nameless last record is dropped"
        );
        // Windows line ends and a missing final newline change nothing.
        let crlf = "P:a\r\nV:1-r0\r\n\r\nP:b\r\nV:2-r0";
        let names: Vec<String> = parse_installed(crlf).into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn the_arch_file_wins_over_the_packages() {
        let packages = parse_installed(INSTALLED);
        assert_eq!(
            architecture(Some("aarch64\n"), &packages).as_deref(),
            Some("aarch64")
        );
        assert_eq!(architecture(None, &packages).as_deref(), Some("x86_64"));
        assert_eq!(architecture(Some(""), &[]), None);
    }

    #[test]
    fn world_entries_with_tags_operators_and_conflicts() {
        let world = parse_world(
            "alpine-baselayout\nbusybox=1.36.1-r2\ncurl~8.5\nzlib=~1.3\nlibxml2@edge\n\
             !sudo\nfoo><Q1abc=\nbash>=5.2\nopenssl@edge<3.2\n",
        );
        let summary: Vec<String> = world
            .iter()
            .map(|e| {
                format!(
                    "{} tag={} op={} version={} conflict={} pins={}",
                    e.name,
                    e.tag.as_deref().unwrap_or("-"),
                    e.op,
                    e.version,
                    e.conflict,
                    e.pins()
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "alpine-baselayout tag=- op= version= conflict=false pins=false",
                "busybox tag=- op== version=1.36.1-r2 conflict=false pins=true",
                "curl tag=- op=~ version=8.5 conflict=false pins=true",
                "zlib tag=- op==~ version=1.3 conflict=false pins=true",
                "libxml2 tag=edge op= version= conflict=false pins=false",
                "sudo tag=- op= version= conflict=true pins=false",
                "foo tag=- op=>< version=Q1abc= conflict=false pins=true",
                "bash tag=- op=>= version=5.2 conflict=false pins=false",
                "openssl tag=edge op=< version=3.2 conflict=false pins=false",
            ]
        );
        assert_eq!(world[1].text, "busybox=1.36.1-r2");
    }

    #[test]
    fn repositories_with_comments_tags_and_components() {
        let repositories = parse_repositories(
            "# main repositories\n\
             https://dl-cdn.alpinelinux.org/alpine/v3.18/main\n\
             \n\
             https://dl-cdn.alpinelinux.org/alpine/v3.18/community/\n\
             @edge https://dl-cdn.alpinelinux.org/alpine/edge/testing\n\
             @x v2 https://mirror.example/alpine/v3.19 main community\n\
             /media/cdrom/apks\n",
        );
        let lines: Vec<String> = repositories
            .iter()
            .map(|r| repository_line(r, "x86_64"))
            .collect();
        assert_eq!(
            lines,
            [
                "apk https://dl-cdn.alpinelinux.org/alpine/v3.18/main x86_64",
                "apk https://dl-cdn.alpinelinux.org/alpine/v3.18/community x86_64",
                "@edge apk https://dl-cdn.alpinelinux.org/alpine/edge/testing x86_64",
                "@x apk https://mirror.example/alpine/v3.19/main x86_64",
                "@x apk https://mirror.example/alpine/v3.19/community x86_64",
                "apk /media/cdrom/apks x86_64",
            ]
        );
        assert_eq!(
            parse_repository_line(&lines[2]),
            (
                Some("edge"),
                "apk https://dl-cdn.alpinelinux.org/alpine/edge/testing x86_64"
            )
        );
        assert_eq!(parse_repository_line(&lines[0]), (None, lines[0].as_str()));
    }
}
