//! A `nuget.config` file as the dotnet CLI reads it: package sources, their credentials, which
//! are disabled, and package source mapping.
//!
//! - `<packageSources>`: `<add key="NAME" value="URL-or-folder" />` in order; `<clear />` drops
//!   every source named before it (the user-level and machine-wide ones, for NuGet). A
//!   relative folder is relative to the config file's directory. `protocolVersion="2"` sources
//!   are v2 OData feeds, which copa-host does not speak: they are left out with a warning.
//! - `<disabledPackageSources>`: `<add key="NAME" value="true" />` leaves a source out.
//! - `<packageSourceCredentials>`: one element per source, named by its key (characters an XML
//!   name cannot hold written `_xHHHH_`, as NuGet writes a space `_x0020_`), holding
//!   `Username` and `ClearTextPassword`. An encrypted `Password` is Windows DPAPI data that
//!   only the Windows user who wrote it can read: refused with what to write instead.
//! - `<packageSourceMapping>`: `<packageSource key="NAME"><package pattern="Contoso.*" />`. When
//!   present, a package is looked up only on the sources of its most specific pattern (an exact
//!   id beats the longest prefix), and on no source when no pattern matches, which is what keeps
//!   a private package's name from being resolved on a public feed.
//!
//! Values may name environment variables as `%NAME%`, as NuGet expands them; one that is not set
//! stays as written.
//!
//! [`NuGetConfig::parse`] is a pure function of the text, so that whoever reads the file (the
//! host, for `--nuget-config`) gets what the dotnet CLI would.

use std::path::Path;

use crate::nuget_feed::SourceMapping;

/// What one config file says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NuGetConfig {
    /// Enabled sources, in order.
    pub sources: Vec<ConfigSource>,
    /// (source name, username, password). A source given on the command line may have its
    /// credentials here too.
    pub credentials: Vec<(String, String, String)>,
    /// (pattern, source names), in file order; empty when the file has no mapping.
    pub mapping: Vec<(String, Vec<String>)>,
    /// What the file says that is left out, a line each (a v2 feed).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSource {
    pub name: String,
    /// A URL, or an absolute folder path.
    pub location: String,
}

impl NuGetConfig {
    /// The config `text`, of a file in `dir` (which relative folders are relative to); `env`
    /// looks up the variables `%NAME%` refers to.
    pub fn parse(
        text: &str,
        dir: &Path,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let document = roxmltree::Document::parse(text).map_err(|e| format!("not XML: {e}"))?;
        let root = document.root_element();
        if !root.has_tag_name("configuration") {
            return Err(format!(
                "the root element is <{}>, not <configuration>",
                root.tag_name().name()
            ));
        }
        let section = |name: &'static str| root.children().filter(move |n| n.has_tag_name(name));
        let expand = |value: &str| expand_variables(value, env);

        let mut sources: Vec<(String, String)> = Vec::new();
        let mut warnings = Vec::new();
        for node in section("packageSources").flat_map(|s| s.children()) {
            if node.has_tag_name("clear") {
                sources.clear();
            } else if node.has_tag_name("add") {
                let (Some(key), Some(value)) = (node.attribute("key"), node.attribute("value"))
                else {
                    return Err("a <packageSources> <add> without key or value".into());
                };
                if node.attribute("protocolVersion") == Some("2") {
                    warnings.push(format!(
                        "NuGet source {key:?} is a v2 feed: only v3 feeds and folders are read; left out"
                    ));
                    continue;
                }
                // A later <add> of the same key replaces the earlier one, in its place.
                let location = location(&expand(value), dir);
                match sources
                    .iter_mut()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                {
                    Some(existing) => existing.1 = location,
                    None => sources.push((key.to_string(), location)),
                }
            }
        }

        let disabled: Vec<&str> = section("disabledPackageSources")
            .flat_map(|s| s.children())
            .filter(|n| n.has_tag_name("add"))
            .filter(|n| {
                n.attribute("value")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            })
            .filter_map(|n| n.attribute("key"))
            .collect();

        let mut credentials: Vec<(String, String, String)> = Vec::new();
        for node in section("packageSourceCredentials")
            .flat_map(|s| s.children())
            .filter(roxmltree::Node::is_element)
        {
            let name = decode_name(node.tag_name().name());
            let setting = |wanted: &str| {
                node.children()
                    .filter(|n| n.has_tag_name("add"))
                    .find(|n| {
                        n.attribute("key")
                            .is_some_and(|k| k.eq_ignore_ascii_case(wanted))
                    })
                    .and_then(|n| n.attribute("value"))
                    .map(expand)
            };
            let username = setting("Username");
            let password = match (setting("ClearTextPassword"), setting("Password")) {
                (Some(clear), _) => Some(clear),
                (None, Some(_)) => {
                    return Err(format!(
                        "the credentials of {name:?} hold an encrypted Password, which only \
                         Windows can decrypt; write ClearTextPassword (it may name an \
                         environment variable: %FEED_TOKEN%) or set \
                         NuGetPackageSourceCredentials_{name}"
                    ));
                }
                (None, None) => None,
            };
            match (username, password) {
                (Some(user), Some(password)) => credentials.push((name, user, password)),
                _ => {
                    return Err(format!(
                        "the credentials of {name:?} need both Username and ClearTextPassword"
                    ));
                }
            }
        }

        let mut mapping: Vec<(String, Vec<String>)> = Vec::new();
        for source in section("packageSourceMapping")
            .flat_map(|s| s.children())
            .filter(|n| n.has_tag_name("packageSource"))
        {
            let key = source
                .attribute("key")
                .ok_or("a <packageSourceMapping> <packageSource> without key")?;
            for pattern in source
                .children()
                .filter(|n| n.has_tag_name("package"))
                .filter_map(|n| n.attribute("pattern"))
            {
                match mapping
                    .iter_mut()
                    .find(|(p, _)| p.eq_ignore_ascii_case(pattern))
                {
                    Some((_, keys)) => keys.push(key.to_string()),
                    None => mapping.push((pattern.to_string(), vec![key.to_string()])),
                }
            }
        }

        Ok(NuGetConfig {
            sources: sources
                .into_iter()
                .filter(|(name, _)| !disabled.iter().any(|d| d.eq_ignore_ascii_case(name)))
                .map(|(name, location)| ConfigSource { name, location })
                .collect(),
            credentials,
            mapping,
            warnings,
        })
    }

    /// The (username, password) the file gives source `name`.
    pub fn credentials(&self, name: &str) -> Option<(&str, &str)> {
        self.credentials
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, user, password)| (user.as_str(), password.as_str()))
    }

    /// The package source mapping over the URLs of the sources: `url_of` gives a source name's
    /// URL. A pattern naming a source the run does not read keeps its place with an empty URL,
    /// which serves nothing: its packages must not fall through to a less specific pattern's
    /// (public) source.
    pub fn source_mapping(&self, url_of: impl Fn(&str) -> Option<String>) -> SourceMapping {
        let rules = self
            .mapping
            .iter()
            .flat_map(|(pattern, names)| {
                names
                    .iter()
                    .map(|name| (pattern.clone(), url_of(name).unwrap_or_default()))
            })
            .collect();
        SourceMapping { rules }
    }
}

/// `%NAME%` replaced by the variable's value where it is set.
fn expand_variables(value: &str, env: &impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('%') else {
            break;
        };
        let name = &after[..end];
        match (!name.is_empty()).then(|| env(name)).flatten() {
            Some(expanded) => {
                out.push_str(&rest[..start]);
                out.push_str(&expanded);
                rest = &after[end + 1..];
            }
            None => {
                // Not a variable: keep the first '%' and look again from the second.
                out.push_str(&rest[..start + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A URL stays as written; a folder is made absolute against the config's directory.
fn location(value: &str, dir: &Path) -> String {
    if value.contains("://") || Path::new(value).is_absolute() {
        value.to_string()
    } else {
        dir.join(value).display().to_string()
    }
}

/// An element name with NuGet's `_xHHHH_` escapes decoded ("My_x0020_Feed" -> "My Feed").
fn decode_name(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(at) = rest.find("_x") {
        let code = rest
            .get(at + 2..at + 6)
            .filter(|_| rest.get(at + 6..at + 7) == Some("_"))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .and_then(char::from_u32);
        out.push_str(&rest[..at]);
        match code {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 7..];
            }
            None => {
                out.push_str("_x");
                rest = &rest[at + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="from-user-level" value="https://user.example/v3/index.json" />
    <clear />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
    <add key="Contoso Feed" value="https://pkgs.contoso.example/v3/index.json" />
    <add key="legacy" value="https://old.example/api/v2" protocolVersion="2" />
    <add key="local" value="packages" />
    <add key="off" value="/srv/off" />
  </packageSources>
  <disabledPackageSources>
    <add key="off" value="true" />
    <add key="nuget.org" value="false" />
  </disabledPackageSources>
  <packageSourceCredentials>
    <Contoso_x0020_Feed>
      <add key="Username" value="ci" />
      <add key="ClearTextPassword" value="%FEED_TOKEN%;x=y" />
    </Contoso_x0020_Feed>
  </packageSourceCredentials>
  <packageSourceMapping>
    <packageSource key="nuget.org">
      <package pattern="*" />
    </packageSource>
    <packageSource key="Contoso Feed">
      <package pattern="Contoso.*" />
      <package pattern="Newtonsoft.Json" />
    </packageSource>
    <packageSource key="gone">
      <package pattern="Contoso.Internal.*" />
    </packageSource>
  </packageSourceMapping>
</configuration>
"#;

    fn env(name: &str) -> Option<String> {
        (name == "FEED_TOKEN").then(|| "t0k&n".to_string())
    }

    #[test]
    fn reads_sources_credentials_and_mapping() {
        let config = NuGetConfig::parse(CONFIG, Path::new("/etc/app"), &env).unwrap();
        let sources: Vec<(&str, &str)> = config
            .sources
            .iter()
            .map(|s| (s.name.as_str(), s.location.as_str()))
            .collect();
        assert_eq!(
            sources,
            [
                ("nuget.org", "https://api.nuget.org/v3/index.json"),
                ("Contoso Feed", "https://pkgs.contoso.example/v3/index.json"),
                ("local", "/etc/app/packages"),
            ]
        );
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("\"legacy\" is a v2 feed"));
        assert_eq!(
            config.credentials("contoso feed"),
            Some(("ci", "t0k&n;x=y"))
        );
        assert_eq!(config.credentials("nuget.org"), None);
        // The exact id and the longer prefix go to the private feed only; a pattern of a source
        // not read ("Contoso.Internal.*" of "gone") serves nothing, not the public feed.
        let url_of = |name: &str| {
            config
                .sources
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(name))
                .map(|s| s.location.clone())
        };
        let mapping = config.source_mapping(url_of);
        for (id, source, allowed) in [
            ("Contoso.Lib", "Contoso Feed", true),
            ("Contoso.Lib", "nuget.org", false),
            ("newtonsoft.json", "Contoso Feed", true),
            ("Newtonsoft.Json", "nuget.org", false),
            ("Serilog", "nuget.org", true),
            ("Serilog", "Contoso Feed", false),
            ("Serilog", "local", false),
            ("Contoso.Internal.X", "Contoso Feed", false),
            ("Contoso.Internal.X", "nuget.org", false),
        ] {
            let url = url_of(source).unwrap_or_else(|| "file:///etc/app/packages".into());
            assert_eq!(mapping.allows(id, &url), allowed, "{id} on {source}");
        }
        assert!(
            NuGetConfig::default()
                .source_mapping(url_of)
                .allows("Anything", "https://api.nuget.org/v3/index.json")
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let encrypted = r#"<configuration><packageSources><add key="a" value="https://a.example/v3/index.json"/></packageSources>
            <packageSourceCredentials><a><add key="Username" value="u"/><add key="Password" value="AQAAANCMnd8BFdERjHoAwE"/></a></packageSourceCredentials></configuration>"#;
        let err = NuGetConfig::parse(encrypted, Path::new("/"), &env).unwrap_err();
        assert!(err.contains("ClearTextPassword"), "{err}");
        let half = r#"<configuration><packageSourceCredentials><a><add key="Username" value="u"/></a></packageSourceCredentials></configuration>"#;
        assert!(
            NuGetConfig::parse(half, Path::new("/"), &env)
                .unwrap_err()
                .contains("need both")
        );
        assert!(
            NuGetConfig::parse("<settings/>", Path::new("/"), &env)
                .unwrap_err()
                .contains("not <configuration>")
        );
        assert!(
            NuGetConfig::parse("<configuration>", Path::new("/"), &env)
                .unwrap_err()
                .contains("not XML")
        );
    }

    #[test]
    fn expands_variables_and_decodes_names() {
        assert_eq!(expand_variables("%FEED_TOKEN%", &env), "t0k&n");
        assert_eq!(
            expand_variables("a%UNSET%b%FEED_TOKEN%", &env),
            "a%UNSET%bt0k&n"
        );
        assert_eq!(expand_variables("100%", &env), "100%");
        assert_eq!(decode_name("My_x0020_Feed"), "My Feed");
        assert_eq!(decode_name("a_xZZZZ_b"), "a_xZZZZ_b");
        assert_eq!(decode_name("plain"), "plain");
    }
}
