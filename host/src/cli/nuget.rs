//! `--nuget-source` and `--nuget-config` (and the user-level `~/.nuget/NuGet/NuGet.Config` the
//! dotnet CLI reads), which stand for what the dotnet plugin reads over `http`: each source is an
//! `--index nuget=URL` (a folder a `file://` URL), each source's credential the credential of its
//! origin, and the config's package source mapping the plugin's option `source-mapping`
//! (`PATTERN=SOURCE-URL`, see `copa_plugin_sdk::nuget_feed::SourceMapping`).
//!
//! Credentials of a named source come from `NuGetPackageSourceCredentials_<name>`
//! (`Username=..;Password=..`), as the dotnet CLI reads them, or else from the config's
//! `packageSourceCredentials`.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use copa_plugin_sdk::nuget_config::NuGetConfig;
use copa_plugin_sdk::nuget_feed::folder_url;

use crate::http::{Credential, Origin, split_credential};

/// The plugin and option the package source mapping goes to.
pub const MAPPING_OPTION: (&str, &str) = ("dotnet", "source-mapping");

/// Where the `nuget.config` comes from, which decides when its errors count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigFile {
    /// `--nuget-config FILE`: the user asked for it, so a broken one fails the run at once.
    Given(PathBuf),
    /// The user-level config the dotnet CLI reads: read the same way, but a broken one leaves
    /// the NuGet packages on no feed (with a warning) instead of failing a run that may patch
    /// no .NET app.
    UserLevel(PathBuf),
}

/// What the NuGet flags stand for.
#[derive(Debug, Default)]
pub struct Feeds {
    /// The `--index nuget=URL`s, in the order NuGet tries them.
    pub indexes: Vec<String>,
    pub credentials: Vec<(Origin, Credential)>,
    /// The values of the dotnet plugin's option `source-mapping`.
    pub mapping: Vec<String>,
    pub warnings: Vec<String>,
}

/// The user-level config the dotnet CLI reads on Linux and macOS: `~/.nuget/NuGet/NuGet.Config`
/// (the CLI creates it in that case; some tools write `nuget.config`).
pub fn user_config(home: &Path) -> Option<PathBuf> {
    let dir = home.join(".nuget/NuGet");
    ["NuGet.Config", "nuget.config", "NuGet.config"]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// `sources` (`[NAME=]URL-or-folder`, tried first), then `config`'s sources; `env` looks up
/// variables (the process environment outside tests).
pub fn feeds(
    sources: &[String],
    config: Option<&ConfigFile>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Feeds> {
    let read = |path: &Path| -> Result<NuGetConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("reading NuGet config {}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        let config = NuGetConfig::parse(&text, dir, env)
            .map_err(|e| anyhow!("NuGet config {}: {e}", path.display()))?;
        if config.sources.is_empty() && sources.is_empty() {
            bail!(
                "NuGet config {}: it enables no package source and no --nuget-source is given",
                path.display()
            );
        }
        Ok(config)
    };
    let config = match config {
        None => None,
        Some(ConfigFile::Given(path)) => Some(read(path)?),
        Some(ConfigFile::UserLevel(path)) => match read(path) {
            Ok(config) => Some(config),
            // Nothing is looked up rather than everything on nuget.org: the config may exist
            // to keep private names off the public feed.
            Err(e) => {
                return Ok(Feeds {
                    mapping: vec!["*=".to_string()],
                    warnings: vec![format!(
                        "{e:#}; NuGet packages are looked up on no feed (give --nuget-config or --nuget-source)"
                    )],
                    ..Feeds::default()
                });
            }
        },
    };
    let mut named: Vec<(String, Option<String>, String)> = sources
        .iter()
        .map(|spec| {
            let (name, location) = split_name(spec);
            (format!("--nuget-source {spec}"), name, location.to_string())
        })
        .collect();
    if let Some(config) = &config {
        named.extend(config.sources.iter().map(|source| {
            (
                format!("nuget.config source {:?}", source.name),
                Some(source.name.clone()),
                source.location.clone(),
            )
        }));
    }
    let mut feeds = Feeds::default();
    let mut urls: Vec<(Option<String>, String)> = Vec::new();
    for (what, name, location) in named {
        let (url, login) = source_url(&location).map_err(|e| anyhow!("{what}: {e}"))?;
        let credential = match &name {
            Some(name) => credential(name, config.as_ref(), env)?.or(login),
            None => login,
        };
        if let Some(credential) = credential {
            let origin = Origin::of(&url).map_err(|_| {
                anyhow!("{what}: credentials are for feeds on a server, not folders")
            })?;
            feeds.credentials.push((origin, credential));
        }
        feeds.indexes.push(url.clone());
        urls.push((name, url));
    }
    if let Some(config) = &config {
        feeds.warnings.extend(config.warnings.iter().cloned());
        let url_of = |name: &str| {
            urls.iter()
                .find(|(n, _)| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
                .map(|(_, url)| url.clone())
        };
        feeds.mapping = config.source_mapping(url_of).to_options();
    }
    Ok(feeds)
}

/// `NAME=LOCATION`, when what precedes the `=` is a source name (a URL's query may hold `=`).
fn split_name(spec: &str) -> (Option<String>, &str) {
    match spec.split_once('=') {
        Some((name, rest))
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) =>
        {
            (Some(name.to_string()), rest)
        }
        _ => (None, spec),
    }
}

/// A source's URL (a folder's `file://` URL) and the login written in it.
fn source_url(location: &str) -> Result<(String, Option<Credential>)> {
    if location.starts_with("http://") || location.starts_with("https://") {
        let (url, login) = split_credential(location)?;
        Origin::of(&url).map_err(|e| anyhow!("{e}"))?;
        return Ok((url, login));
    }
    let path = location.strip_prefix("file://").unwrap_or(location);
    if !Path::new(path).is_absolute() {
        bail!("a folder feed must be an absolute path");
    }
    if !Path::new(path).is_dir() {
        bail!("no such directory");
    }
    Ok((folder_url(path), None))
}

/// The credential of source `name`: the environment's, else the config's.
fn credential(
    name: &str,
    config: Option<&NuGetConfig>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Credential>> {
    let variable = format!("NuGetPackageSourceCredentials_{name}");
    if let Some(value) = env(&variable) {
        let (user, password) = parse_credentials(&value).map_err(|e| anyhow!("{variable}: {e}"))?;
        return Ok(Some(Credential::new(format!("{user}:{password}"))));
    }
    Ok(config
        .and_then(|c| c.credentials(name))
        .map(|(user, password)| Credential::new(format!("{user}:{password}"))))
}

/// `Username=..;Password=..` (the dotnet CLI's format; other keys such as
/// `ValidAuthenticationTypes` are ignored) as (username, password).
fn parse_credentials(value: &str) -> Result<(&str, &str), String> {
    let mut username = None;
    let mut password = None;
    for part in value.split(';') {
        let Some((key, val)) = part.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "username" => username = Some(val),
            "password" | "cleartextpassword" => password = Some(val),
            _ => {}
        }
    }
    match (username, password) {
        (Some(user), Some(password)) => Ok((user, password)),
        _ => Err("expected Username=...;Password=...".into()),
    }
}

#[cfg(test)]
mod tests;
