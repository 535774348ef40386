//! Where a binary's source comes from for a rebuild: a git repository (named by the user with
//! `--go-source MODULE=GIT-URL[@REF]`, the plugin option `source`, or the public repository of a
//! module on a well-known host), checked out at the binary's `vcs.revision`; or, for modules no
//! repository is known for, the module proxy's copy.

use copa_plugin_sdk::{Policy, Target, attribute, goproxy, options};

use crate::attr;

/// The plugin option that maps a module to a git repository: "MODULE=GIT-URL[@REF]".
pub const OPTION: &str = "source";

/// One `--go-source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configured {
    pub module: String,
    pub url: String,
    /// A commit, tag or branch; none: the binary's own revision.
    pub reference: Option<String>,
}

/// Where one binary's source comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A git repository checked out at `reference`; the module's go.mod is in `subdir` of it
    /// (empty: the root).
    Git {
        url: String,
        reference: String,
        subdir: String,
    },
    /// The module proxy's copy of the module at `reference` (a revision or a version).
    Proxy { reference: String },
}

/// "MODULE=GIT-URL[@REF]". The ref is what follows the last `@` when it holds no `/` or `:`, so
/// `git@host:org/app.git` and `https://user@host/app.git` keep their `@`.
pub fn parse(value: &str) -> Result<Configured, String> {
    let (module, rest) = value
        .split_once('=')
        .ok_or_else(|| format!("go source {value:?}: expected MODULE=GIT-URL[@REF]"))?;
    let (url, reference) = match rest.rsplit_once('@') {
        Some((url, reference))
            if !url.is_empty() && !reference.is_empty() && !reference.contains(['/', ':']) =>
        {
            (url, Some(reference.to_string()))
        }
        _ => (rest, None),
    };
    let module = module.trim();
    if !goproxy::is_valid_module_path(module) {
        return Err(format!(
            "go source {value:?}: {module:?} is not a module path"
        ));
    }
    if url.is_empty() || url.starts_with('-') {
        return Err(format!("go source {value:?}: {url:?} is not a git URL"));
    }
    if let Some(reference) = &reference {
        check_reference(reference)?;
    }
    Ok(Configured {
        module: module.to_string(),
        url: url.to_string(),
        reference,
    })
}

/// A ref reaches git as an argument: one that looks like an option is refused.
fn check_reference(reference: &str) -> Result<(), String> {
    if reference.starts_with('-') || reference.chars().any(char::is_whitespace) {
        return Err(format!("{reference:?} is not a git revision"));
    }
    Ok(())
}

/// Every `--go-source` of the policy, in order.
pub fn configured(policy: &Policy) -> Result<Vec<Configured>, String> {
    options(policy, OPTION).map(parse).collect()
}

/// The `--go-source` for `module`: the one naming the module itself, else the one naming the
/// longest path the module is below (a module in a subdirectory of a repository), with that
/// subdirectory.
pub fn configured_for<'a>(
    sources: &'a [Configured],
    module: &str,
) -> Option<(&'a Configured, String)> {
    // `max_by_key` keeps the last of equals: a later --go-source of a module wins.
    sources
        .iter()
        .filter_map(|s| {
            if s.module == module {
                Some((s, String::new()))
            } else {
                let sub = module.strip_prefix(&s.module)?.strip_prefix('/')?;
                Some((s, sub.to_string()))
            }
        })
        .max_by_key(|(s, _)| s.module.len())
}

/// The public repository of a module on a well-known host, and the module's subdirectory in it:
/// `github.com/org/app/v2` -> (`https://github.com/org/app`, `v2`).
pub fn public_repository(module: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = module.split('/').collect();
    let (url, used) = match parts.as_slice() {
        ["github.com" | "gitlab.com" | "bitbucket.org", org, repo, ..] => {
            (format!("https://{}/{org}/{repo}", parts[0]), 3)
        }
        ["golang.org", "x", repo, ..] => (format!("https://go.googlesource.com/{repo}"), 3),
        _ => return None,
    };
    Some((url, parts[used..].join("/")))
}

/// Where the source of a binary target comes from, or why there is none.
pub fn of(target: &Target, sources: &[Configured]) -> Result<Source, String> {
    let module = attribute(target, attr::MODULE)
        .ok_or_else(|| format!("{} has no main module", target.id))?;
    let revision = attribute(target, &format!("{}vcs.revision", attr::SETTING))
        .filter(|_| target.unpatchable_reason.is_none());
    let version = attribute(target, attr::MODULE_VERSION).unwrap_or_default();
    if let Some((configured, subdir)) = configured_for(sources, module) {
        let reference = match (&configured.reference, revision) {
            (Some(reference), _) => reference.clone(),
            (None, Some(revision)) => revision.to_string(),
            (None, None) if target.unpatchable_reason.is_some() => {
                return Err(format!(
                    "{}: name the revision to build: --go-source {module}={}@REF",
                    target.id, configured.url
                ));
            }
            (None, None) => tag(&subdir, version).ok_or_else(|| {
                format!(
                    "{} records no revision; name one: --go-source {module}={}@REF",
                    target.id, configured.url
                )
            })?,
        };
        check_reference(&reference)?;
        return Ok(Source::Git {
            url: configured.url.clone(),
            reference,
            subdir,
        });
    }
    let reference = attribute(target, attr::SOURCE_REF)
        .ok_or_else(|| format!("{} has no source revision", target.id))?;
    match (revision, public_repository(module)) {
        (Some(revision), Some((url, subdir))) => {
            check_reference(revision)?;
            Ok(Source::Git {
                url,
                reference: revision.to_string(),
                subdir,
            })
        }
        _ => Ok(Source::Proxy {
            reference: reference.to_string(),
        }),
    }
}

/// The git tag of a released module version (`sub/v1.2.3` for a module in a subdirectory), or
/// the commit of a pseudo-version.
fn tag(subdir: &str, version: &str) -> Option<String> {
    if version.is_empty() || version == "(devel)" {
        return None;
    }
    let base = version.split('+').next().unwrap_or(version);
    // vX.Y.Z-[pre.]0.yyyymmddhhmmss-abcdefabcdef: the last part is the commit.
    if let Some(commit) = base.rsplit('-').next().filter(|c| {
        c.len() == 12 && c.bytes().all(|b| b.is_ascii_hexdigit()) && base.matches('-').count() >= 2
    }) {
        return Some(commit.to_string());
    }
    Some(if subdir.is_empty() || is_major_suffix(subdir) {
        base.to_string()
    } else {
        format!("{subdir}/{base}")
    })
}

/// `v2`, `v3`, ...: a major version suffix, which the repository may keep at its root.
fn is_major_suffix(subdir: &str) -> bool {
    subdir
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources_with_and_without_a_ref() {
        let parsed = parse("example.com/app=https://git.example.com/app.git@v1.2.0").unwrap();
        assert_eq!(parsed.module, "example.com/app");
        assert_eq!(parsed.url, "https://git.example.com/app.git");
        assert_eq!(parsed.reference.as_deref(), Some("v1.2.0"));
        let scp = parse("corp.example/app=git@git.corp.example:team/app.git").unwrap();
        assert_eq!(scp.url, "git@git.corp.example:team/app.git");
        assert_eq!(scp.reference, None);
        let user = parse("corp.example/app=https://me@git.corp.example/app.git").unwrap();
        assert_eq!(user.url, "https://me@git.corp.example/app.git");
        let path = parse("corp.example/app=/srv/git/app.git@0123abcd").unwrap();
        assert_eq!(
            (path.url.as_str(), path.reference.as_deref()),
            ("/srv/git/app.git", Some("0123abcd"))
        );
        assert!(parse("example.com/app").is_err());
        assert!(parse("example.com/app=").is_err());
        assert!(parse("-x=https://a/b").is_err());
        assert!(parse("example.com/app=--upload-pack=x").is_err());
        assert!(parse("example.com/app=https://a/b@--force").is_err());
    }

    #[test]
    fn a_source_covers_the_modules_below_it() {
        let sources = vec![
            parse("corp.example/mono=https://git.corp.example/mono.git").unwrap(),
            parse("corp.example/mono/tools=https://git.corp.example/tools.git").unwrap(),
        ];
        let (s, sub) = configured_for(&sources, "corp.example/mono/svc/api").unwrap();
        assert_eq!(
            (s.url.as_str(), sub.as_str()),
            ("https://git.corp.example/mono.git", "svc/api")
        );
        let (s, sub) = configured_for(&sources, "corp.example/mono/tools").unwrap();
        assert_eq!(
            (s.url.as_str(), sub.as_str()),
            ("https://git.corp.example/tools.git", "")
        );
        assert!(configured_for(&sources, "corp.example/monorepo").is_none());
    }

    #[test]
    fn public_repositories_of_well_known_hosts() {
        assert_eq!(
            public_repository("github.com/org/app/v2"),
            Some(("https://github.com/org/app".into(), "v2".into()))
        );
        assert_eq!(
            public_repository("golang.org/x/tools/gopls"),
            Some(("https://go.googlesource.com/tools".into(), "gopls".into()))
        );
        assert_eq!(public_repository("example.com/copa/hello"), None);
        assert_eq!(public_repository("github.com/org"), None);
    }

    #[test]
    fn tags_of_versions() {
        assert_eq!(tag("", "v1.2.3").as_deref(), Some("v1.2.3"));
        assert_eq!(tag("v2", "v2.0.1").as_deref(), Some("v2.0.1"));
        assert_eq!(tag("tools", "v0.3.0").as_deref(), Some("tools/v0.3.0"));
        assert_eq!(
            tag("", "v0.0.0-20240102030405-0123456789ab").as_deref(),
            Some("0123456789ab")
        );
        assert_eq!(tag("", "(devel)"), None);
    }
}
